"""The command layer through `dispatch`, on a real database of recorded snapshots, word for word."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Field, Reply
from leaderwatch.alerts.matching import Delivery, delivery_key
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot.commands import COMMANDS, CommandContext, Invocation, UserError, command, dispatch
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import outbox
from leaderwatch.storage.db import to_text
from leaderwatch.storage.subscriptions import channel_settings, channel_subscriptions, disable_channel
from tests.helpers import build_context, recorded_template

NOW = datetime(2025, 8, 26, 12, 0, tzinfo=UTC)
"""The clock of every test: a day after the last aider snapshot, 22 days after the last LMArena one."""

RECORDED = (
    "lmarena/fboulnois_lmarena_csv/lmarena_text_2025-07-27.csv",
    "lmarena/fboulnois_lmarena_csv/lmarena_text_2025-08-04.csv",
    "lmarena/fboulnois_lmarena_csv/lmarena_vision_2025-08-04.csv",
    "aider/polyglot_leaderboard/polyglot_leaderboard_2025-07-18.yml",
    "aider/polyglot_leaderboard/polyglot_leaderboard_2025-08-25.yml",
)
"""A small real subset: two LMArena text tables eight days apart, one vision table, two aider tables."""


def _event(kind: str, board: str, day: str, rule: str, subject: str, value: str, message: str, *,
           model: str | None = None, rank: int | None = None, score: float | None = None,
           groups: tuple[str, ...] = ()) -> Event:
    at = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    return Event(kind, board, at, rule, subject, model, None, groups, None, rank, None, score, "n/a",
                 f"{board}: {message}", dedupe_key(kind, board, subject, value, at))


EVENTS = (
    # What the rules find going from the recorded 2025-07-27 table to the 2025-08-04 one.
    _event("new_model", "lmarena/text", "2025-08-04", "new_model top=10", "glm-4-5", "new",
           "new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3 with 1434", model="GLM-4.5", rank=3,
           score=1434.0, groups=("china",)),
    # ...and from the aider table of 2025-07-18 to the one of 2025-08-25.
    _event("new_leader", "aider/polyglot", "2025-08-25", "new_leader", "leader", "gpt-5",
           "new #1: openai/gpt-5 (OpenAI, US) with 88, taking it from o3-pro (high) (OpenAI, US)",
           model="openai/gpt-5", rank=1, score=88.0, groups=("us", "west")),
    _event("top_n", "aider/polyglot", "2025-08-25", "top_n top=5", "gpt-5", "in",
           "openai/gpt-5 (OpenAI, US) entered the top 5 at #1, new on the board", model="openai/gpt-5",
           rank=1, score=88.0, groups=("us", "west")),
)


def build_database(excerpts: Path, folder: Path) -> Path:
    """A database file holding the recorded subset (imported the way `leaderwatch import` does) and EVENTS."""
    return recorded_template(excerpts, folder, RECORDED, NOW, snapshots=5, events=EVENTS)


def make_context(db: Database, identity: Identity, changes: list[int] | None = None) -> CommandContext:
    """The context the composition root builds, with the test clock."""
    return build_context(db, lambda: NOW, identity=identity,
                         on_config_change=(lambda: None) if changes is None else (lambda: changes.append(1)))


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("commands"))


@pytest.fixture
def db(any_template_db: Database) -> Database:
    """The template on each store (SQLite, PostgreSQL)."""
    return any_template_db


@pytest.fixture
def changes() -> list[int]:
    return []


@pytest.fixture
def ctx(db: Database, identity: Identity, changes: list[int]) -> CommandContext:
    return make_context(db, identity, changes)


async def ask(ctx: CommandContext, text: str, *, manager: bool = False, channel: str = "C1",
              platform: str = "slack") -> Reply:
    return await dispatch(ctx, Invocation(platform, channel, "U42", "alice", text, can_configure=manager))


def rows(db: Database, table: str) -> list[dict[str, object]]:
    """A table's rows in the order they were written (by `id`, or by key for a table without one)."""
    order = "id" if table in ("audit", "subscriptions", "outbox") else "platform, channel_id, key"
    return list(db.table(table).rows_where(order_by=order))


def config(db: Database) -> dict[str, list[dict[str, object]]]:
    return {t: rows(db, t) for t in ("subscriptions", "channel_settings", "audit")}


# --- the registry and help ---------------------------------------------------------------------------

async def test_every_command_has_help_and_appears_in_help(ctx: CommandContext) -> None:
    listed = {f.name for f in (await ask(ctx, "help")).fields}
    for cmd in COMMANDS.values():
        assert cmd.help and cmd.summary, cmd.name
        assert f"/leaderwatch {cmd.usage}" in listed
        shown = await ask(ctx, f"help {cmd.name}")
        assert shown.title == f"/leaderwatch {cmd.usage}" and shown.ephemeral and not shown.error
    assert set(COMMANDS) == {"help", "boards", "top", "race", "model", "gap", "events", "why", "share",
                             "versus", "report", "chart", "chart model", "subscribe", "unsubscribe",
                             "settings", "set", "mute", "unmute", "digest"}


async def test_every_example_in_the_help_works(ctx: CommandContext) -> None:
    placeholders = {"H", "N", "DAYS", "BOARD", "BOARD_PATTERN", "RULE", "COMMAND", "KEY", "VALUE", "GROUP"}
    examples = [line for cmd in COMMANDS.values() for line in re.findall(r"`/leaderwatch ([^`]+)`", cmd.help)
                if not placeholders & set(line.split())]
    assert len(examples) >= 10
    for line in examples:
        reply = await ask(ctx, line, manager=True, channel="C-examples")
        assert not reply.error, (line, reply.text)


def test_a_command_name_cannot_be_registered_twice() -> None:
    with pytest.raises(RuntimeError, match="command `top` is registered twice"):
        command("top", "top")(COMMANDS["top"].handler)


async def test_help_lists_questions_then_configuration(ctx: CommandContext) -> None:
    reply = await ask(ctx, "help")
    assert (reply.title, reply.ephemeral) == ("leaderwatch commands", True)
    assert reply.fields[2] == Field("/leaderwatch top BOARD [N] [GROUP] [at DATE]", "Show a board's top N "
                                    "(default 10, or the channel's `top` setting), optionally one group's "
                                    "models.", False)
    assert reply.fields[13] == Field("/leaderwatch subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]",
                                    "Post alerts from the boards matching a pattern to this channel, by the "
                                    "rules given. (channel managers)", False)
    assert reply.footer == ("Rules: overtake, new_leader, top_n, gap, score, new_model, rank_change, "
                            "board_changed, share, rival (`/leaderwatch help RULE`)")
    assert (await ask(ctx, "")).title == "leaderwatch commands"


@pytest.mark.parametrize(("text", "example"), [
    ("help share", "`/leaderwatch share lmarena/text 10 at 2025-08-04`"),
    ("help rule share", "`/leaderwatch subscribe lmarena/* share group=china count=3 top=10`"),
    ("help rival", "`/leaderwatch subscribe vision rival model=qwen2-vl-72b-instruct rival=gpt-4o-20240513 "
                   "boards=vision`"),
    ("help versus", "`/leaderwatch versus deepseek-r1 west lmarena/*`"),
    ("help report", "`/leaderwatch subscribe report weekly`"),
])
async def test_the_race_commands_and_rules_explain_themselves_with_an_example(
        ctx: CommandContext, text: str, example: str) -> None:
    reply = await ask(ctx, text)
    assert not reply.error and example in reply.plain().replace("\n", " ")


async def test_a_rule_example_subscribes_as_shown(ctx: CommandContext) -> None:
    """The example `help rule share` gives is a subscription that works."""
    reply = await ask(ctx, "subscribe lmarena/* share group=china count=3 top=10", manager=True)
    assert not reply.error and "`share group=china count=3 top=10`" in reply.text


async def test_help_for_a_command_and_for_a_rule(ctx: CommandContext) -> None:
    reply = await ask(ctx, "help top")
    assert reply.plain() == ("*/leaderwatch top BOARD [N] [GROUP] [at DATE]*\nShow a board's top N (default "
                             "10, or the channel's `top` setting), optionally one group's models.\n\n"
                             "Ties at #N are all shown. `/leaderwatch top lmarena/text 5 china`; `at DATE` "
                             "shows the table as\nit stood then: `/leaderwatch top lmarena/text 5 at "
                             "2025-08-01`.")
    assert (await ask(ctx, "help mute")).text.endswith("\n(channel managers only)")
    rule = await ask(ctx, "help OVERTAKE")
    assert rule.plain() == (
        "*Rule `overtake`*\n"
        "The best model of one group now ranks above the best model of the other, both ways.\n"
        "• `groups`: the two groups whose best models race (default china,west)\n"
        "• `confidence`: `clear`: only when the CIs separate (default any)\n"
        "• `confirm`: the condition must hold in this many consecutive snapshots (default 1)\n"
        "• `cooldown`: after firing, the same subject and outcome stays quiet this long (default 1w)\n"
        "e.g. `/leaderwatch subscribe lmarena/* overtake`")
    assert "• `threshold`: the score to cross (required)" in (await ask(ctx, "help score")).text
    wrong = await ask(ctx, "help tpo")
    assert (wrong.text, wrong.error, wrong.ephemeral) == (
        "Unknown command or rule `tpo`. Did you mean `top` or `top_n`? `/leaderwatch help` lists the "
        "commands.", True, True)
    assert (await ask(ctx, "help top race")).text == (
        "`help` takes one command or rule name at most.\nUsage: `/leaderwatch help [COMMAND|RULE]`")


async def test_unknown_command_gets_did_you_mean(ctx: CommandContext) -> None:
    reply = await ask(ctx, "raec lmarena/text")
    assert (reply.text, reply.error, reply.ephemeral) == (
        "Unknown command `raec`. Did you mean `race`? `/leaderwatch help` lists the commands.", True, True)
    assert (await ask(ctx, "/leaderwatch boards")).title == "3 boards"


async def test_messages_from_bots_are_dropped(ctx: CommandContext) -> None:
    reply = await dispatch(ctx, Invocation("slack", "C1", "B1", "bot", "subscribe *", True, is_bot=True))
    assert reply == Reply(text="", ephemeral=True)
    assert rows(ctx.db, "subscriptions") == []


async def test_an_internal_error_is_logged_with_an_id_and_never_shown(
        ctx: CommandContext, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
        """Fails."""
        raise KeyError("secret detail")

    command("_broken", "_broken")(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.commands"):
            reply = await ask(ctx, "_broken")
    finally:
        del COMMANDS["_broken"]
    error_id = reply.text.split("`")[1]
    assert reply.text == ("Sorry, something went wrong on our side. The operator can find it in the log "
                          "under "
                          f"error id `{error_id}`.")
    assert reply.error and "secret" not in reply.text
    assert f"[error id {error_id}]" in caplog.text and "secret detail" in caplog.text


# --- questions ---------------------------------------------------------------------------------------

async def test_boards(ctx: CommandContext) -> None:
    reply = await ask(ctx, "boards")
    # The excerpts' row counts (tests/data/recordings: the top 25, 80 and 60 rows of these tables).
    assert reply.table == (("board", "updated", "models"), ("aider/polyglot", "2025-08-25", "25"),
                           ("lmarena/text", "2025-08-04", "80"), ("lmarena/vision", "2025-08-04", "60"))
    assert not reply.ephemeral
    assert (await ask(ctx, "boards all")).text == (
        "`boards` takes no arguments.\nUsage: `/leaderwatch boards`")


async def test_top_with_a_board_name_a_number_and_a_group(ctx: CommandContext) -> None:
    reply = await ask(ctx, "top text 3 china")
    assert reply.plain() == (
        "*Top 3 on lmarena/text, china only*\n"
        "as of 2025-08-04\n"
        "#  model                          score  org       country\n"
        "3  GLM-4.5                        1434   Z.ai      CN\n"
        "7  Qwen3-235B-A22B-Instruct-2507  1427   Alibaba   CN\n"
        "8  DeepSeek-R1-0528               1427   DeepSeek  CN\n"
        "https://arena.ai/leaderboard/text")
    assert (reply.ephemeral, reply.group) == (False, "china")


async def test_top_names_and_arguments(ctx: CommandContext) -> None:
    assert (await ask(ctx, "top lmarena/txt")).text == (
        "Unknown board `lmarena/txt`. Did you mean `lmarena/text`? "
        "`/leaderwatch boards` lists them.")
    assert (await ask(ctx, "top aider")).text == (
        "`aider` matches several boards: `aider/edit`, `aider/polyglot`. Type more of the name.")
    assert (await ask(ctx, "top aider/poly 2")).title == "Top 2 on aider/polyglot"
    assert (await ask(ctx, "top lmarena/text 0")).text == (
        "N must be between 1 and 50, not 0.\nUsage: `/leaderwatch top BOARD [N] [GROUP] [at DATE]`")
    assert (await ask(ctx, "top lmarena/text martians")).text == (
        "`martians` is neither a number nor a group (china, europe, open-weights, proprietary, us, west)."
        "\nUsage: `/leaderwatch top BOARD [N] [GROUP] [at DATE]`")
    assert (await ask(ctx, "top")).text == ("Which board?\nUsage: `/leaderwatch top BOARD [N] [GROUP] "
                                          "[at DATE]`")
    assert (await ask(ctx, "top lmarena/webdev")).text == (
        "`lmarena/webdev` has no data yet; try again after its next poll.")


async def test_race_on_one_board(ctx: CommandContext) -> None:
    reply = await ask(ctx, "race lmarena/text")
    assert reply.plain() == (
        "*Race on lmarena/text: china, west*\n"
        "As of 2025-08-04. west leads: best west Gemini-2.5-Pro #1 (1470) vs best china GLM-4.5 #3 (1434), "
        "a gap of 36 (Arena score).\n"
        "board         leads  china              west                      gap\n"
        "lmarena/text  west   #3 GLM-4.5 (1434)  #1 Gemini-2.5-Pro (1470)  36")
    assert not reply.ephemeral


async def test_race_defaults_to_lmarena_then_to_the_channels_boards_and_groups(ctx: CommandContext) -> None:
    reply = await ask(ctx, "race")
    assert reply.text == ("2 boards, the LMArena boards (this channel follows none; `/leaderwatch subscribe` "
                          "chooses), as of each one's last snapshot. Leads: china on 0, west on 2.")
    assert reply.table[1:] == (
        ("lmarena/text", "west", "#3 GLM-4.5 (1434)", "#1 Gemini-2.5-Pro (1470)", "36"),
        ("lmarena/vision", "west", "#17 Hunyuan-Large-Vision (1238)", "#1 Gemini-2.5-Pro (1317)", "79"))
    await ask(ctx, "subscribe aider/polyglot", manager=True)
    await ask(ctx, "set groups china,us,europe", manager=True)
    reply = await ask(ctx, "race")
    assert reply.title == "Race on aider/polyglot: china, us, europe"
    assert reply.table == (
        ("board", "leads", "china", "us", "europe", "gap"),
        # No European run in the excerpt's top 25 (the full table has Codestral 25.01 at #62).
        ("aider/polyglot", "us", "#15 DeepSeek R1 (0528) (71.4)", "#1 openai/gpt-5 (88)", "-", "16.6"))
    assert reply.text == ("As of 2025-08-25. us leads: best us openai/gpt-5 #1 (88) vs best china DeepSeek "
                          "R1 "
                          "(0528) #15 (71.4), a gap of 16.6 (percent correct).")
    await ask(ctx, "subscribe lmarena/text", manager=True)
    reply = await ask(ctx, "race")
    assert reply.title == "Race: china, us, europe"
    assert reply.text == ("2 boards, the boards this channel follows, as of each one's last snapshot. Leads: "
                          "china on 0, us on 2, europe on 0.")


async def test_model_with_its_moves_over_the_30_days_before_each_table(ctx: CommandContext) -> None:
    """Each board's last table against the one 30 days before it: aider/polyglot's of 2025-08-25 against
    2025-07-18's; the LMArena history (from 2025-07-27) holds no table 30 days before 2025-08-04."""
    moved = await ask(ctx, "model deepseek-r1-0528")
    assert moved.plain() == (
        "*DeepSeek R1 (0528) on 2 boards*\n"
        "DeepSeek, CN. Each board's table at its last update, against its table 30 days before.\n"
        "board           table of    #   score  30 days before            move\n"
        "aider/polyglot  2025-08-25  15  71.4   #12 (71.4) on 2025-07-18  down 3, 0\n"
        "lmarena/text    2025-08-04  8   1427   no table yet              -")
    new = await ask(ctx, "model openai/gpt-5")
    assert new.table[1] == ("aider/polyglot", "2025-08-25", "1", "88", "not listed (2025-07-18)", "new")
    then = await ask(ctx, "model gemini-2.5-pro at 2025-08-01")
    assert then.text == "Google, US. Each board's table as of 2025-08-01, against its table 30 days before."
    assert then.table[1:] == (("lmarena/text", "2025-07-27", "1", "1472", "no table yet", "-"),)
    assert (await ask(ctx, "model gemini-2.5-pro at 2025-07-01")).text == (
        "Gemini-2.5-Pro was on no board's table as of 2025-07-01.")


async def test_model_names_prefixes_and_did_you_mean(ctx: CommandContext) -> None:
    assert (await ask(ctx, "model glm-4.5-ai")).title == "GLM-4.5-Air on 1 board"
    ambiguous = await ask(ctx, "model glm")
    assert ambiguous.text == ("`glm` matches several models: `glm-4-5`, `glm-4-5-air`, `glm-4-plus-0111`. "
                              "Type more of the name.")
    assert (await ask(ctx, "model glm-4.6")).text == (
        "No model `glm-4.6` on any board's current table. Did you mean `glm-4-5` or `glm-4-5-air` or "
        "`glm-4-plus-0111`?")
    assert (await ask(ctx, "model")).text == "Which model?\nUsage: `/leaderwatch model NAME [at DATE]`"


async def test_gap_now_and_days_before_the_table_it_starts_from(ctx: CommandContext) -> None:
    """DAYS count back from the board's last table (2025-08-04), not from the clock (2025-08-26)."""
    reply = await ask(ctx, "gap text china west 8")
    assert reply.plain() == (
        "*Gap china vs west on lmarena/text*\n"
        "In the table of 2025-08-04, west leads by 36 (Arena score). 8 days before, in the table of "
        "2025-07-27, west led by 48: the gap narrowed by 12.\n"
        "               table of    best china                  best west                 gap\n"
        "start          2025-08-04  #3 GLM-4.5 (1434)           #1 Gemini-2.5-Pro (1470)  west leads by 36\n"
        "8 days before  2025-07-27  #6 DeepSeek-R1-0528 (1424)  #1 Gemini-2.5-Pro (1472)  west led by 48\n"
        "https://arena.ai/leaderboard/text")
    assert (await ask(ctx, "gap text china west")).text == (
        "In the table of 2025-08-04, west leads by 36 (Arena score). No table 30 days before it: the "
        "board's history starts 2025-07-27.")
    assert (await ask(ctx, "gap text chi eu 30d")).title == "Gap china vs europe on lmarena/text"
    at = await ask(ctx, "gap text china west 7 at 2025-08-01")
    assert at.table[1][:2] == ("start", "2025-07-27") and len(at.table) == 2
    assert at.text.startswith("In the table of 2025-07-27, west leads by 48 (Arena score). No table 7 days")


async def test_gap_arguments(ctx: CommandContext) -> None:
    usage = "\nUsage: `/leaderwatch gap BOARD GROUP_A GROUP_B [DAYS] [at DATE]`"
    assert (await ask(ctx, "gap text china")).text == "Give a board and two groups." + usage
    assert (await ask(ctx, "gap text china china")).text == (
        "Give two different groups, not `china` twice." + usage)
    assert (await ask(ctx, "gap text china wset")).text == (
        "Unknown group `wset`. Did you mean `west`? Groups: china, europe, open-weights, proprietary, us, "
        "west.")
    assert (await ask(ctx, "gap text china west 0")).text == (
        "DAYS must be a whole number of days from 1 to 3650, not `0`." + usage)


async def test_any_date_and_stale_boards(ctx: CommandContext) -> None:
    """`at DATE` reads a board as it stood then; a board not updated for twice its poll interval says so."""
    then = await ask(ctx, "top text 2 at 2025-07-30")
    assert then.text == "as of 2025-07-27" and then.table[1][:2] == ("1", "Gemini-2.5-Pro")
    assert (await ask(ctx, "top text at 2025-07-01")).text == (
        "lmarena/text has no snapshot as of 2025-07-01: its history starts 2025-07-27.")
    assert (await ask(ctx, "top text at 2025-31-01")).text == (
        "`2025-31-01` is not a date: give one like 2025-01-24 (or 2025-01-24T12:00Z)\n"
        "Usage: `/leaderwatch top BOARD [N] [GROUP] [at DATE]`")
    assert (await ask(ctx, "race text at")).text == (
        "`at` needs a date, e.g. `at 2025-01-24`.\nUsage: `/leaderwatch race [BOARD|SUITE] [at DATE]`")
    assert (await ask(ctx, "race text at 2025-07-28")).text.startswith("As of 2025-07-27. west leads")
    # Polled hourly, lmarena's table last seen on 2025-08-04 is stale on 2025-08-26; polled every 30
    # days, aider's table of 2025-08-25 is not.
    hourly = dataclasses.replace(ctx, intervals={"lmarena": 3600, "aider": 30 * 86400})
    assert (await ask(hourly, "top text 1")).text == "as of 2025-08-04 (stale: last updated 2025-08-04)"
    assert (await ask(hourly, "top aider/polyglot 1")).text == "as of 2025-08-25"
    assert "(stale" not in (await ask(hourly, "top text 1 at 2025-08-04")).text
    assert (await ask(hourly, "race text")).text.startswith(
        "As of 2025-08-04 (stale: last updated 2025-08-04).")


async def test_events_up_to_a_date(ctx: CommandContext) -> None:
    assert (await ask(ctx, "events aider/polyglot 3 at 2025-08-25")).plain() == (
        "*Events on aider/polyglot in the 3 days up to 2025-08-25*\n"
        "• 2025-08-25 aider/polyglot: new #1: openai/gpt-5 (OpenAI, US) with 88, taking it from o3-pro "
        "(high) (OpenAI, US)\n"
        "• 2025-08-25 aider/polyglot: openai/gpt-5 (OpenAI, US) entered the top 5 at #1, new on the board")
    assert (await ask(ctx, "events aider/polyglot 3 at 2025-08-24")).text == (
        "No events on aider/polyglot in the 3 days up to 2025-08-24.")


async def test_events_newest_first_by_board_and_days(ctx: CommandContext) -> None:
    reply = await ask(ctx, "events")
    assert reply.plain() == (
        "*Events on all boards in the last 7 days*\n"
        "• 2025-08-25 aider/polyglot: new #1: openai/gpt-5 (OpenAI, US) with 88, taking it from o3-pro "
        "(high) "
        "(OpenAI, US)\n"
        "• 2025-08-25 aider/polyglot: openai/gpt-5 (OpenAI, US) entered the top 5 at #1, new on the board")
    assert not reply.ephemeral
    assert (await ask(ctx, "events 30 text")).plain() == (
        "*Events on lmarena/text in the last 30 days*\n"
        "• 2025-08-04 lmarena/text: new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3 with 1434")
    assert (await ask(ctx, "events lmarena/text")).text == "No events on lmarena/text in the last 7 days."
    await ask(ctx, "subscribe lmarena/*", manager=True)
    assert (await ask(ctx, "events 1")).text == "No events on this channel's boards in the last 1 day."
    assert (await ask(ctx, "events 30")).title == "Events on this channel's boards in the last 30 days"
    assert (await ask(ctx, "events text vision")).text == (
        "Give one board at most.\nUsage: `/leaderwatch events [BOARD] [DAYS] [at DATE]`")


async def test_why_says_which_rule_fired_and_why_the_others_did_not(ctx: CommandContext) -> None:
    assert (await ask(ctx, "why text")).text == (
        "This channel follows no rule on lmarena/text, so nothing from it is posted here. A channel manager "
        "can run `/leaderwatch subscribe lmarena/text`.")
    await ask(ctx, "subscribe lmarena/text", manager=True)
    await ask(ctx, "subscribe lmarena/* top_n top=5", manager=True)
    await ask(ctx, "subscribe text rank_change by=3", manager=True)
    reply = await ask(ctx, "why text")
    assert reply.title == "Why on lmarena/text"
    assert reply.text == ("The last snapshot (2025-08-04, compared with the one of 2025-07-27), through the "
                          "5 rules this channel follows there:")
    # The recorded history was imported, not polled: no rule ran at these snapshots, so each is run
    # as it would have been, from the previous snapshot (tests/bot/test_alerting.py has polled ones).
    later = " (had it been there: the rule was added after this snapshot arrived)"
    assert [(f.name, f.value) for f in reply.fields] == [
        ("new_leader", f"quiet: #1 is Gemini-2.5-Pro (1470), as before{later}"),
        ("new_model top=10", "fired: new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3 with "
                             f"1434{later}"),
        ("overtake groups=china,west", "quiet: west leads: best west Gemini-2.5-Pro #1 vs best china GLM-4.5 "
                                       f"#3, as before{later}"),
        ("rank_change by=3", "fired: Qwen3-235B-A22B-Instruct-2507 (Alibaba, CN) passed 21 of the models "
                             "listed in both updates (rank as published: #27 -> #7) (and 4 more)" + later),
        ("top_n top=5", f"fired: GLM-4.5 (Z.ai, CN) entered the top 5 at #3, new on the board{later}"),
    ]
    aider = await ask(ctx, "why aider/polyglot")
    assert aider.text == ("This channel follows no rule on aider/polyglot, so nothing from it is posted "
                          "here. A channel manager can run `/leaderwatch subscribe aider/polyglot`.")
    await ask(ctx, "subscribe aider/polyglot new_leader top_n top=5", manager=True)
    fields = (await ask(ctx, "why aider/polyglot")).fields
    assert [(f.name, f.value) for f in fields] == [
        ("new_leader", "fired: new #1: openai/gpt-5 (OpenAI, US) with 88, taking it from o3-pro (high) "
                       f"(OpenAI, US){later}"),
        ("top_n top=5", f"fired: openai/gpt-5 (OpenAI, US) entered the top 5 at #1, new on the board (and 1 "
                        f"more){later}"),
    ]


async def test_why_on_a_board_with_one_snapshot(ctx: CommandContext) -> None:
    await ask(ctx, "subscribe vision overtake", manager=True)
    reply = await ask(ctx, "why vision")
    assert reply.text == ("The last snapshot (2025-08-04, the board's first), through the 1 rule this "
                          "channel "
                          "follows there:")
    assert reply.fields == (Field("overtake groups=china,west",
                                  "quiet: the board's first snapshot: it only sets the baseline (had it been "
                                  "there: the rule was added after this snapshot arrived)", False),)


# --- configuration -----------------------------------------------------------------------------------

async def test_subscribe_with_rules_and_parameters(ctx: CommandContext, changes: list[int]) -> None:
    reply = await ask(ctx, "subscribe lmarena/* overtake top_n top=5 groups=China,west confidence=clear",
                      manager=True)
    assert reply.plain() == (
        "*Subscribed*\n"
        "This channel now follows `lmarena/*` (22 boards) with 2 rules:\n"
        "• `overtake groups=china,west confidence=clear`: the best model of one group now ranks above the "
        "best model of the other, both ways\n"
        "• `top_n top=5`: a model enters or leaves the top N")
    assert (reply.ephemeral, reply.error) == (False, False)
    subs = channel_subscriptions(ctx.db, "slack", "C1")
    assert [(s["board_pattern"], s["rule"], s["created_by"]) for s in subs] == [
        ("lmarena/*", "overtake groups=china,west confidence=clear", "U42"),
        ("lmarena/*", "top_n top=5", "U42")]
    assert [(a["at"], a["platform"], a["channel_id"], a["user_id"], a["user_name"], a["action"], a["detail"])
            for a in rows(ctx.db, "audit")] == [
        (to_text(NOW), "slack", "C1", "U42", "alice", "subscribe",
         "lmarena/*: overtake groups=china,west confidence=clear; top_n top=5")]
    assert changes == [1]
    again = await ask(ctx, "subscribe lmarena/* top_n overtake confidence=clear top=5", manager=True)
    assert again.text == ("This channel already follows `lmarena/*` (22 boards) with `top_n top=5`, "
                          "`overtake groups=china,west confidence=clear`. Nothing changed.")
    assert len(rows(ctx.db, "audit")) == 1 and changes == [1]


async def test_subscribe_without_rules_takes_the_default_set(ctx: CommandContext) -> None:
    reply = await ask(ctx, "subscribe text cooldown=1d", manager=True)
    assert reply.text.splitlines()[0] == "This channel now follows `lmarena/text` with 3 rules:"
    # A new model fires once: the shared cooldown goes only to the rules that take one.
    assert [s["rule"] for s in channel_subscriptions(ctx.db, "slack", "C1")] == [
        "overtake groups=china,west cooldown=1d", "new_leader cooldown=1d", "new_model top=10"]
    plain = await ask(ctx, "subscribe lmarena/vision", manager=True, channel="C2")
    assert [s["rule"] for s in channel_subscriptions(ctx.db, "slack", "C2")] == [
        "overtake groups=china,west", "new_leader", "new_model top=10"]
    assert plain.title == "Subscribed"


@pytest.mark.parametrize(("text", "answer"), [
    ("subscribe", "Which boards? Give a board or a pattern such as `lmarena/*`."
                  "\nUsage: `/leaderwatch subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
    ("subscribe lmarna/*", "`lmarna/*` matches no board. Did you mean `lmarena/*` or `lmarena` or "
                           "`lmarena/text`? `/leaderwatch boards` lists them."),
    ("subscribe lmarena/txt", "Unknown board `lmarena/txt`. Did you mean `lmarena/text`? "
                              "`/leaderwatch boards` lists them."),
    ("subscribe lmarena/text overtak", "Unknown rule `overtak`. Did you mean `overtake`? Rules: overtake, "
                                       "new_leader, top_n, gap, score, new_model, rank_change, "
                                       "board_changed, share, rival."
                                       "\nUsage: `/leaderwatch subscribe BOARD_PATTERN [RULE ...] "
                                       "[KEY=VALUE ...]`"),
    ("subscribe lmarena/text overtake top=5", "No rule here takes `top` (overtake takes confidence, confirm, "
                                              "cooldown, groups).\nUsage: `/leaderwatch subscribe "
                                              "BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
    ("subscribe lmarena/text top_n top=0", "Rule `top_n` top=0: 0 is too small (at least 1).\nUsage: "
                                           "`/leaderwatch subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE "
                                           "...]`"),
    ("subscribe lmarena/text overtake groups=china,mars", "Rule `overtake` groups: unknown group `mars` "
                                                          "(groups: china, europe, open-weights, "
                                                          "proprietary, "
                                                          "us, west).\nUsage: `/leaderwatch subscribe "
                                                          "BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
    ("subscribe lmarena/text score", "Rule `score` needs threshold=VALUE.\nUsage: `/leaderwatch subscribe "
                                     "BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
    ('subscribe lmarena/text score threshold=1400 "model=GPT 4o"',
     "`score threshold=1400 model=GPT 4o` cannot be stored: values cannot contain spaces (give a model's "
     "key, "
     "e.g. `model=gpt-4o`).\nUsage: `/leaderwatch subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
    ("subscribe lmarena/text top_n top=5 top=6", "`top` is given twice.\nUsage: `/leaderwatch subscribe "
                                                 "BOARD_PATTERN [RULE ...] [KEY=VALUE ...]`"),
])
async def test_subscribe_errors_change_nothing(ctx: CommandContext, text: str, answer: str) -> None:
    reply = await ask(ctx, text, manager=True)
    assert (reply.text, reply.error, reply.ephemeral) == (answer, True, True)
    assert config(ctx.db) == {"subscriptions": [], "channel_settings": [], "audit": []}


async def test_a_channel_follows_at_most_max_subscriptions_rules(ctx: CommandContext) -> None:
    # Issue 14: one channel with 10,000 subscriptions queued 2,275 alerts in one poll.
    capped = dataclasses.replace(ctx, max_subscriptions=4)
    # The default set: 3 rules.
    assert (await ask(capped, "subscribe lmarena/text", manager=True)).title == "Subscribed"
    before = config(ctx.db)
    reply = await ask(capped, "subscribe lmarena/vision new_leader overtake", manager=True)
    assert (reply.text, reply.error, reply.ephemeral) == (
        "This channel follows 3 rules and would follow 5 with 2 more rules; a channel may follow at most 4. "
        "Unsubscribe from what it no longer needs (`/leaderwatch settings` lists them, `/leaderwatch "
        "unsubscribe BOARD_PATTERN` removes them), or ask the operator to raise the limit "
        "(`LEADERWATCH_MAX_SUBSCRIPTIONS`, or `max_subscriptions` in leaderwatch.toml).", True, True)
    assert config(ctx.db) == before
    # What the channel already follows does not count again; one more fits; another channel has its own.
    assert "Nothing changed" in (await ask(capped, "subscribe lmarena/text", manager=True)).text
    assert (await ask(capped, "subscribe lmarena/vision new_leader", manager=True)).title == "Subscribed"
    assert (await ask(capped, "subscribe lmarena/vision top_n", manager=True)).error
    assert (await ask(capped, "subscribe lmarena/* top_n", manager=True, channel="C2")).title == "Subscribed"
    assert ctx.max_subscriptions == 200  # the default


async def test_a_non_manager_is_refused_and_nothing_changes(ctx: CommandContext, changes: list[int]) -> None:
    await ask(ctx, "subscribe lmarena/text", manager=True)
    before = config(ctx.db)
    for text in ("subscribe lmarena/* top_n", "unsubscribe all", "set top 5", "mute 1h", "unmute",
                 "digest daily", "settings"):
        reply = await ask(ctx, text)
        name = text.split()[0]
        assert (reply.text, reply.error, reply.ephemeral) == (
            f"Only channel managers can change this channel's configuration (`{name}`). Ask a workspace "
            f"admin or owner (or a user listed in the config). See `/leaderwatch help {name}`.", True, True)
    assert config(ctx.db) == before and changes == [1]


async def test_a_command_that_fails_after_writing_changes_nothing(ctx: CommandContext) -> None:
    async def half(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
        """Writes, then fails."""
        ctx.db.table("channel_settings").insert({"platform": "slack", "channel_id": "C1", "key": "top",
                                                 "value": "3", "updated_at": to_text(NOW)})
        raise UserError("no")

    command("_half", "_half", configures=True)(half)
    try:
        reply = await ask(ctx, "_half", manager=True)
    finally:
        del COMMANDS["_half"]
    assert reply.text == "no" and rows(ctx.db, "channel_settings") == []


async def test_unsubscribe(ctx: CommandContext) -> None:
    assert (await ask(ctx, "unsubscribe all", manager=True)).text == (
        "This channel follows nothing, so there is nothing to unsubscribe from.")
    await ask(ctx, "subscribe lmarena/text", manager=True)
    await ask(ctx, "subscribe lmarena/* top_n", manager=True)
    await ask(ctx, "subscribe aider/polyglot", manager=True, channel="C2")
    missing = await ask(ctx, "unsubscribe lmarena/tex*", manager=True)
    assert (missing.text, missing.error) == (
        "This channel does not follow `lmarena/tex*`. Did you mean `lmarena/text` or `lmarena/*`? It follows "
        "`lmarena/*`, `lmarena/text`.", True)
    reply = await ask(ctx, "unsubscribe text", manager=True)
    assert reply.plain() == "*Unsubscribed*\nThis channel no longer follows `lmarena/text` (3 rules removed)."
    assert [s["board_pattern"] for s in channel_subscriptions(ctx.db, "slack", "C1")] == ["lmarena/*"]
    assert (await ask(ctx, "unsubscribe all", manager=True)).text == (
        "This channel no longer follows anything (1 rule removed).")
    assert {s["board_pattern"] for s in channel_subscriptions(ctx.db, "slack", "C2")} == {"aider/polyglot"}
    assert [(a["action"], a["detail"]) for a in rows(ctx.db, "audit")][-2:] == [
        ("unsubscribe", "lmarena/text: 3 rules"), ("unsubscribe", "all: 1 rule")]
    assert (await ask(ctx, "unsubscribe", manager=True)).text == (
        "Give one board pattern, or `all`.\nUsage: `/leaderwatch unsubscribe BOARD_PATTERN|all`")


async def test_settings_show_everything_the_channel_follows(ctx: CommandContext) -> None:
    empty = await ask(ctx, "settings", manager=True)
    assert empty.fields[0] == Field("Subscriptions", "none yet: `/leaderwatch subscribe BOARD_PATTERN "
                                    "[RULE ...]`", False)
    await ask(ctx, "subscribe lmarena/* overtake top_n top=5 confidence=clear", manager=True)
    await ask(ctx, "subscribe aider/polyglot score threshold=80", manager=True)
    await ask(ctx, "set top 5", manager=True)
    await ask(ctx, "digest weekly", manager=True)
    await ask(ctx, "mute 2h", manager=True)
    await ask(ctx, "subscribe lmarena/text", manager=True, channel="C9")
    disable_channel(ctx.db, "slack", "C9", "channel_not_found", NOW)
    reply = await ask(ctx, "settings", manager=True)
    assert (reply.title, reply.text, reply.ephemeral) == (
        "Settings of this channel", "Follows 2 board patterns with 3 rules.", True)
    assert [(f.name, f.value) for f in reply.fields] == [
        ("aider/polyglot (1 board)", "`score threshold=80`"),
        ("lmarena/* (22 boards)", "`overtake groups=china,west confidence=clear`\n`top_n top=5`"),
        ("groups (the groups `race` compares)", "china,west (default)"),
        ("digest_hour (the hour of the digest, UTC)", "9 (default)"),
        ("top (the N of `top` when none is given)", "5"),
        ("charts (a chart under overtake and new #1 alerts)", "on (default)"),
        ("Digest", "weekly, Mondays at 09:00 UTC"),
        ("Race report", "off"),
        ("Mute", "muted until 2025-08-26 14:00 UTC"),
        ("Default rules (subscribe with no RULE)", "`overtake groups=china,west`, `new_leader`, "
                                                   "`new_model top=10`"),
        ("Recent changes", "2025-08-26 12:00 UTC alice (slack): mute until 2025-08-26T14:00:00+00:00\n"
                           "2025-08-26 12:00 UTC alice (slack): digest weekly (was off)\n"
                           "2025-08-26 12:00 UTC alice (slack): set top=5 (was default)\n"
                           "2025-08-26 12:00 UTC alice (slack): subscribe aider/polyglot: score "
                           "threshold=80\n"
                           "2025-08-26 12:00 UTC alice (slack): subscribe lmarena/*: overtake "
                           "groups=china,west confidence=clear; top_n top=5"),
    ]
    gone = await ask(ctx, "settings", manager=True, channel="C9")
    assert Field("Disabled", "`lmarena/text` `overtake groups=china,west` since 2025-08-26: "
                             "channel_not_found\n"
                             "`lmarena/text` `new_leader` since 2025-08-26: channel_not_found\n"
                             "`lmarena/text` `new_model top=10` since 2025-08-26: channel_not_found",
                 False) in gone.fields


async def test_set_channel_defaults(ctx: CommandContext) -> None:
    reply = await ask(ctx, "set groups China, us europe", manager=True)
    assert reply.plain() == "*Setting changed*\n`groups` is now china,us,europe for this channel."
    assert channel_settings(ctx.db, "slack", "C1") == {"groups": "china,us,europe"}
    assert (await ask(ctx, "set top 3", manager=True)).text == "`top` is now 3 for this channel."
    assert len((await ask(ctx, "top text")).table) == 4
    assert (await ask(ctx, "set top 3", manager=True)).text == "`top` is already 3. Nothing changed."
    assert (await ask(ctx, "set top default", manager=True)).text == (
        "`top` is now 10 (default) for this channel.")
    assert (await ask(ctx, "set digest_hour 18", manager=True)).text == (
        "`digest_hour` is now 18 for this channel.")
    assert [(a["action"], a["detail"]) for a in rows(ctx.db, "audit")] == [
        ("set", "groups=china,us,europe (was default)"), ("set", "top=3 (was default)"),
        ("set", "top=default (was 3)"), ("set", "digest_hour=18 (was default)")]
    assert channel_settings(ctx.db, "slack", "C1") == {"groups": "china,us,europe", "digest_hour": "18"}


@pytest.mark.parametrize(("text", "answer"), [
    ("set top", "Give a setting (groups, digest_hour, top, charts) and a value."),
    ("set color red", "Unknown setting `color`. Settings: groups, digest_hour, top, charts."),
    ("set tpo 5", "Unknown setting `tpo`. Did you mean `top`? Settings: groups, digest_hour, top, charts."),
    ("set top 51", "`top` is a number from 1 to 50, not `51`."),
    ("set top 5 6", "`top` takes one value."),
    ("set digest_hour 24", "`digest_hour` is an hour from 0 to 23 (UTC), not `24`."),
    ("set groups china", "`groups` takes two or more different groups, e.g. `china,west` (groups: china, "
                         "europe, open-weights, proprietary, us, west)."),
])
async def test_set_errors(ctx: CommandContext, text: str, answer: str) -> None:
    reply = await ask(ctx, text, manager=True)
    assert (reply.text, reply.error) == (answer + "\nUsage: `/leaderwatch set KEY VALUE`", True)
    assert config(ctx.db)["channel_settings"] == []
    assert (await ask(ctx, "set groups china,mars", manager=True)).text == (
        "Unknown group `mars`. Groups: china, europe, open-weights, proprietary, us, west.")


async def test_mute_holds_alerts_and_unmute_releases_them(ctx: CommandContext) -> None:
    reply = await ask(ctx, "mute 2h", manager=True)
    until = NOW + timedelta(hours=2)
    assert reply.plain() == ("*Muted*\nThis channel is muted until 2025-08-26 14:00 UTC. Alerts found "
                             "meanwhile "
                             "are kept and posted when the mute ends, or at `/leaderwatch unmute`.")
    assert channel_settings(ctx.db, "slack", "C1") == {"mute_until": to_text(until)}
    event = EVENTS[1]
    delivery = Delivery(event, "slack", "C1", (1,), delivery_key(event.dedupe_key, "slack", "C1"))
    outbox.enqueue(ctx.db, [delivery], NOW, lambda _: (until, None))
    assert outbox.due(ctx.db, NOW) == []
    reply = await ask(ctx, "unmute", manager=True)
    assert reply.plain() == "*Unmuted*\nThis channel is no longer muted. 1 held alert will be posted now."
    assert channel_settings(ctx.db, "slack", "C1") == {}
    assert [i.event_key for i in outbox.due(ctx.db, NOW)] == [event.dedupe_key]
    assert (await ask(ctx, "unmute", manager=True)).text == "This channel is not muted. Nothing changed."
    assert [(a["action"], a["detail"]) for a in rows(ctx.db, "audit")] == [
        ("mute", "until 2025-08-26T14:00:00+00:00"), ("unmute", "1 held alert released")]


GRAMMAR_UNITS = "s, m, h, d or w, e.g. 90s, 30m, 1.5h, 2d, 2w"


@pytest.mark.parametrize(("text", "until"), [
    ("mute 90s", "2025-08-26T12:01:30+00:00"), ("mute 1.5h", "2025-08-26T13:30:00+00:00"),
    ("mute 2w", None), ("mute 30d", "2025-09-25T12:00:00+00:00"),
])
async def test_mute_takes_the_one_duration_grammar(ctx: CommandContext, text: str, until: str | None) -> None:
    """The same grammar as rule cooldowns and source intervals; a mute lasts at most 30 days."""
    reply = await ask(ctx, text, manager=True)
    assert not reply.error, reply.text
    expected = until or to_text(NOW + timedelta(weeks=2))
    assert channel_settings(ctx.db, "slack", "C1") == {"mute_until": expected}


@pytest.mark.parametrize(("text", "answer"), [
    ("mute", "Give how long, e.g. 2h."),
    ("mute soon", f"`soon` is not a duration; write a number and a unit: {GRAMMAR_UNITS}."),
    ("mute 90", f"`90` is not a duration; write a number and a unit: {GRAMMAR_UNITS}."),
    ("mute 45d", "`45d` is too long: at most 30d."),
    ("mute 0s", f"`0s` is too short: at least 1s (a number and a unit: {GRAMMAR_UNITS})."),
])
async def test_mute_errors(ctx: CommandContext, text: str, answer: str) -> None:
    reply = await ask(ctx, text, manager=True)
    usage = "\nUsage: `/leaderwatch mute DURATION [BOARD_PATTERN]`"
    assert (reply.text, reply.error) == (answer + usage, True)
    assert config(ctx.db)["channel_settings"] == []


async def test_digest(ctx: CommandContext) -> None:
    await ask(ctx, "set digest_hour 0", manager=True)
    reply = await ask(ctx, "digest daily", manager=True)
    assert reply.plain() == ("*Digest on*\nAlerts for this channel are now collected into one digest, daily "
                             "at 00:00 UTC. `/leaderwatch set digest_hour H` changes the hour.")
    assert channel_settings(ctx.db, "slack", "C1")["digest"] == "daily"
    assert (await ask(ctx, "digest DAILY", manager=True)).text == (
        "The digest is already daily. Nothing changed.")
    assert (await ask(ctx, "digest off", manager=True)).plain() == (
        "*Digest off*\nAlerts are posted to this channel as they happen.")
    assert "digest" not in channel_settings(ctx.db, "slack", "C1")
    assert (await ask(ctx, "digest hourly", manager=True)).text == (
        "Choose off, daily or weekly.\nUsage: `/leaderwatch digest off|daily|weekly`")
    assert [(a["action"], a["detail"]) for a in rows(ctx.db, "audit")][1:] == [
        ("digest", "daily (was off)"), ("digest", "off (was daily)")]


async def test_channels_and_platforms_are_kept_apart(ctx: CommandContext) -> None:
    await ask(ctx, "subscribe lmarena/text", manager=True, platform="slack", channel="C1")
    await ask(ctx, "mute 1h", manager=True, platform="discord", channel="C1")
    assert channel_subscriptions(ctx.db, "discord", "C1") == []
    assert channel_settings(ctx.db, "slack", "C1") == {}
    assert [a["platform"] for a in rows(ctx.db, "audit")] == ["slack", "discord"]
