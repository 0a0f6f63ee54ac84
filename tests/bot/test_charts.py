"""Charts: the data drawn comes from the stored history, the PNG is a chat-size PNG, and the adapters
upload it (the fake Slack records files_upload_v2, the fake Discord a multipart attachment).

The history is real: LMArena's text and vision tables of 2025-07-27, 07-28, 08-01 and 08-04 (the
fboulnois CSV recordings, cut to their top rows in tests/data/recordings), imported the way `leaderwatch
import` does. The expected values below were read off those CSV files by hand, not computed by the code
under test.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot import charts
from leaderwatch.bot.chat.common import image_filename
from leaderwatch.bot.chat.console import write_image
from leaderwatch.bot.chat.discord_bot import CHART_FILE, GROUP, DiscordService
from leaderwatch.bot.chat.slack import (
    CHART_NOT_SHOWN,
    WORKING,
    SlackSender,
    response_type,
    to_message,
    web_client,
    without_private_image,
)
from leaderwatch.bot.cli.main import main
from leaderwatch.bot.commands import COMMANDS, CommandContext, Invocation, dispatch, parse_line
from leaderwatch.bot.pipeline.alert_charts import chart_alerts
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import open_db
from leaderwatch.storage.snapshots import save_snapshot, snapshots_between
from tests.bot.fake_discord import CHANNEL_ID, Failure, FakeDiscord, interaction_json, keep_endpoints
from tests.bot.fake_slack import FakeSlack
from tests.bot.test_discord import embeds_of, shown, started
from tests.bot.test_slack import HttpSlack, serve, slack_settings, texts
from tests.helpers import build_context, recorded_template

NOW = datetime(2025, 8, 5, 12, 0, tzinfo=UTC)
"""A day and a half after the last recorded table."""

RECORDED = tuple(f"lmarena/fboulnois_lmarena_csv/lmarena_{board}_{day}.csv" for board in ("text", "vision")
                 for day in ("2025-07-27", "2025-07-28", "2025-08-01", "2025-08-04"))

GROUPS_CONFIG = {"alibaba": {"organizations": ["Alibaba"]}, "deepseek": {"organizations": ["DeepSeek"]},
                 "zai": {"organizations": ["Z.ai"], "licence": "open"}}
"""The default groups and three organization groups: Alibaba overtakes DeepSeek on 2025-08-01; Z.ai
(Zhipu) had only proprietary GLM-4 models on the board until the open-weights GLM-4.5 of 08-04."""


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00+00:00")


JUL27, JUL28, AUG01, AUG04 = at("2025-07-27"), at("2025-07-28"), at("2025-08-01"), at("2025-08-04")


def event(kind: str, board: str, when: datetime, model: str | None, groups: tuple[str, ...] = ()) -> Event:
    return Event(kind, board, when, kind, model or "board", model, None, groups, None, 1, None, None, "n/a",
                 f"{board}: {kind} {model}", dedupe_key(kind, board, model or "board", "x", when))


EVENTS = (
    event("overtake", "lmarena/text", AUG01, "Qwen3-235B-A22B-Instruct-2507", ("alibaba", "deepseek")),
    event("new_model", "lmarena/text", AUG04, "GLM-4.5", ("china",)),
    event("new_leader", "lmarena/vision", JUL28, "Gemini-2.5-Pro-Preview-05-06", ("us",)),  # other board
    event("board_changed", "lmarena/text", at("2025-05-01"), None),  # long before the tables
)


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_template(excerpts, tmp_path_factory.mktemp("charts"), RECORDED, NOW, snapshots=8,
                             events=EVENTS)


def context(db: Database, identity: Identity) -> CommandContext:
    return build_context(db, lambda: NOW, GROUPS_CONFIG, identity=identity)


@pytest.fixture
def ctx(db: Database, identity: Identity) -> CommandContext:
    return context(db, identity)


async def ask(ctx: CommandContext, text: str, *, channel: str = "C1", manager: bool = False,
              platform: str = "slack") -> Reply:
    return await dispatch(ctx, Invocation(platform, channel, "U1", "ann", text, can_configure=manager))


def png_facts(data: bytes) -> tuple[int, int, dict[str, str]]:
    """Width, height and text chunks of a PNG, read from its chunks (IHDR first, as the format requires)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, size, text = 8, None, {}
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0]
        assert crc == zlib.crc32(kind + chunk)
        if kind == b"IHDR":
            size = struct.unpack(">II", chunk[:8])
        elif kind == b"tEXt":
            key, _, value = chunk.partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        offset += 12 + length
    assert size is not None
    return size[0], size[1], text


# -- the data drawn ------------------------------------------------------------------------------------

def test_each_groups_best_score_and_the_boards_events_come_from_the_history(ctx: CommandContext) -> None:
    groups = {g: ctx.groups[g] for g in ("china", "west", "europe", "zai")}
    chart = charts.board_chart(ctx.db, "lmarena/text", groups, NOW - timedelta(days=30), NOW)
    assert chart is not None
    assert chart.title == ("lmarena/text: best Arena score of china, west, europe and zai, "
                           "2025-07-27 to 2025-08-04")
    assert (chart.start, chart.end, chart.y_label, chart.inverted) == (JUL27, AUG04, "Arena score", False)
    china, west, europe, zai = chart.series
    assert [s.label for s in chart.series] == ["china", "west", "europe", "zai"]
    for series in chart.series:
        assert series.dates == (JUL27, JUL28, AUG01, AUG04)
    # The first model of the group in each table, by rank: DeepSeek's R1 at #6 and #7 (behind Grok-3
    # with the same 1426 on 07-28), Qwen3 Instruct at #4 on 08-01, GLM-4.5 at #3 on 08-04.
    assert china.values == (1424, 1426, 1430, 1434)
    assert china.models == ("DeepSeek-R1-0528", "DeepSeek-R1-0528", "Qwen3-235B-A22B-Instruct-2507",
                            "GLM-4.5")
    assert west.values == (1472, 1474, 1469, 1470)
    assert west.models == ("Gemini-2.5-Pro",) * 4
    assert europe.values == (1372, 1372, 1369, 1370)
    assert europe.models == ("Mistral Medium 3",) * 4
    assert zai.values == (None, None, None, 1434)  # no open-weights Z.ai model before 08-04: no point
    assert zai.models == (None, None, None, "GLM-4.5")
    # The text board's events in the period, at their dates; not the vision board's, not older ones.
    assert chart.markers == (charts.Marker(AUG01, "Overtake: Qwen3-235B-A22B-Instruct-2507"),
                             charts.Marker(AUG04, "New model: GLM-4.5"))


def test_the_period_limits_the_snapshots_and_the_events(ctx: CommandContext) -> None:
    chart = charts.board_chart(ctx.db, "lmarena/text", {"china": ctx.groups["china"]}, at("2025-07-30"), NOW)
    assert chart is not None
    [china] = chart.series
    assert (china.dates, china.values) == ((AUG01, AUG04), (1430, 1434))
    assert [m.at for m in chart.markers] == [AUG01, AUG04]
    china_only = {"china": ctx.groups["china"]}
    early = charts.board_chart(ctx.db, "lmarena/text", china_only, JUL27, at("2025-07-31"))
    assert early is not None and early.series[0].values == (1424, 1426) and early.markers == ()
    assert charts.board_chart(ctx.db, "lmarena/text", china_only, at("2025-08-05"), NOW) is None


def test_a_models_rank_on_every_board(ctx: CommandContext) -> None:
    key = ctx.identity.key("o3-2025-04-16")
    boards = ["lmarena/text", "lmarena/vision", "lmarena/image"]
    chart = charts.model_chart(ctx.db, key, "o3-2025-04-16", boards, NOW - timedelta(days=30), NOW)
    assert chart is not None
    assert chart.title == "o3-2025-04-16: rank on 2 boards, 2025-07-27 to 2025-08-04"
    assert chart.inverted and chart.y_label == "rank (1 = best)"
    text, vision = chart.series  # the image board never listed it: no line
    assert (text.label, text.dates) == ("lmarena/text", (JUL27, JUL28, AUG01, AUG04))
    assert text.values == (5, 4, 6, 6)
    assert (vision.label, vision.values) == ("lmarena/vision", (7, 6, 6, 7))


# -- the picture -----------------------------------------------------------------------------------------

def test_the_figure_plots_exactly_the_chart_data(ctx: CommandContext) -> None:
    from matplotlib.dates import date2num

    groups = {g: ctx.groups[g] for g in ("china", "zai")}
    chart = charts.board_chart(ctx.db, "lmarena/text", groups, NOW - timedelta(days=30), NOW)
    assert chart is not None
    fig = charts.figure(chart)
    [ax] = fig.axes
    assert ax.get_title(loc="left") == chart.title
    lines = ax.get_lines()
    series_lines = [line for line in lines if not line.get_label().startswith("_")]
    assert [line.get_label() for line in series_lines] == ["china: GLM-4.5 (1434)", "zai: GLM-4.5 (1434)"]
    dates = list(date2num([JUL27, JUL28, AUG01, AUG04]))
    assert list(series_lines[0].get_xdata()) == dates
    assert list(series_lines[0].get_ydata()) == [1424, 1426, 1430, 1434]
    assert [None if math.isnan(y) else y for y in series_lines[1].get_ydata()] == [None, None, None, 1434]
    markers = [line for line in lines if line.get_label().startswith("_")]  # axvline: unlabelled
    assert [line.get_xdata()[0] for line in markers] == list(date2num([AUG01, AUG04]))
    assert [t.get_text() for t in ax.texts] == ["Overtake: Qwen3-235B-A22B-Instruct-2507",
                                                "New model: GLM-4.5"]
    assert series_lines[0].get_color() != series_lines[1].get_color()
    assert series_lines[0].get_marker() != series_lines[1].get_marker()


def test_a_rank_chart_has_1_on_top(ctx: CommandContext) -> None:
    chart = charts.model_chart(ctx.db, ctx.identity.key("o3-2025-04-16"), "o3", ["lmarena/text"], JUL27, NOW)
    assert chart is not None
    [ax] = charts.figure(chart).axes
    low, high = ax.get_ylim()
    assert low > high  # inverted: the best rank at the top


@pytest.mark.parametrize("size", [charts.CHAT_SIZE, charts.ALERT_SIZE])
def test_the_png_has_the_chat_size(ctx: CommandContext, size: tuple[int, int]) -> None:
    chart = charts.board_chart(ctx.db, "lmarena/text", {"china": ctx.groups["china"]}, JUL27, NOW)
    assert chart is not None
    width, height, text = png_facts(charts.render(chart, size))
    assert (width, height) == size
    assert text["Title"] == chart.title


def test_odd_names_are_drawn_as_written() -> None:
    day = datetime(2025, 1, 1, tzinfo=UTC)
    chart = charts.Chart("a $cost$ chart", "score", (charts.Series("g", (day,), (1.0,), ("m$1$",)),),
                         (charts.Marker(day, "New #1: $x$"),), day, day)
    width, height, _ = png_facts(charts.render(chart))
    assert (width, height) == charts.CHAT_SIZE
    [ax] = charts.figure(chart).axes
    assert ax.get_title(loc="left") == r"a \$cost\$ chart"  # no mathtext


# -- the commands ----------------------------------------------------------------------------------------

async def test_chart_answers_with_a_png_and_a_short_text(ctx: CommandContext) -> None:
    reply = await ask(ctx, "chart lmarena/text china west 30")
    assert not reply.error and not reply.ephemeral
    assert reply.title == "lmarena/text: best Arena score of china and west, 2025-07-27 to 2025-08-04"
    assert reply.text == ("4 snapshots, 2 events marked. Latest: best china GLM-4.5 (1434), "
                          "best west Gemini-2.5-Pro (1470).")
    assert reply.url and reply.image is not None
    assert png_facts(reply.image)[:2] == charts.CHAT_SIZE


async def test_chart_defaults_to_the_channels_groups(ctx: CommandContext) -> None:
    assert not (await ask(ctx, "set groups china,europe", manager=True)).error
    reply = await ask(ctx, "chart text")
    assert reply.title == "lmarena/text: best Arena score of china and europe, 2025-07-27 to 2025-08-04"
    assert (await ask(ctx, "chart text", channel="C2")).title.startswith(
        "lmarena/text: best Arena score of china and west")
    assert (await ask(ctx, "chart text zai,china 10")).title == (
        "lmarena/text: best Arena score of zai and china, 2025-07-27 to 2025-08-04")


@pytest.mark.parametrize(("text", "answer"), [
    ("chart", "Which board?\nUsage: `/leaderwatch chart BOARD [GROUP ...] [DAYS] [at DATE]`"),
    ("chart lmarena/txet", "Unknown board `lmarena/txet`. Did you mean `lmarena/text`? `/leaderwatch boards` "
                           "lists them."),
    ("chart text mars", "Unknown group `mars`. Groups: alibaba, china, deepseek, europe, open-weights, "
                        "proprietary, us, west, zai."),
    ("chart text 30 90", "Give DAYS once.\nUsage: `/leaderwatch chart BOARD [GROUP ...] [DAYS] [at DATE]`"),
    ("chart text china china",
     "`china` is given twice.\nUsage: `/leaderwatch chart BOARD [GROUP ...] [DAYS] [at DATE]`"),
    ("chart text 0", "DAYS must be a whole number of days from 1 to 3650, not `0`.\n"
                     "Usage: `/leaderwatch chart BOARD [GROUP ...] [DAYS] [at DATE]`"),
    ("chart text at 2025-07-01", "lmarena/text has no snapshot as of 2025-07-01: its history starts "
                                 "2025-07-27."),
    ("chart model", "Which model?\nUsage: `/leaderwatch chart model NAME [DAYS] [at DATE]`"),
    ("chart model nosuchmodel", "No model `nosuchmodel` on any board's current table."),
])
async def test_chart_errors_say_what_to_do(ctx: CommandContext, text: str, answer: str) -> None:
    reply = await ask(ctx, text)
    assert (reply.text, reply.error, reply.image) == (answer, True, None)


async def test_a_chart_ends_at_the_boards_last_table_or_at_a_date(ctx: CommandContext) -> None:
    """A window counts back from the board's table in force (2025-08-04 here, before the clock's
    2025-08-05), or in force at the date asked (2025-07-28's on 2025-07-30)."""
    one_day = await ask(ctx, "chart text 1")
    assert one_day.title == "lmarena/text: best Arena score of china and west, 2025-08-04 to 2025-08-04"
    assert one_day.text.startswith("1 snapshot,")
    then = await ask(ctx, "chart text 30 at 2025-07-30")
    assert then.title == "lmarena/text: best Arena score of china and west, 2025-07-27 to 2025-07-28"
    assert then.text.startswith("2 snapshots,")


async def test_chart_model_draws_the_ranks(ctx: CommandContext) -> None:
    reply = await ask(ctx, "chart model o3-2025-04-16 30")
    assert reply.title == "o3-2025-04-16: rank on 2 boards, 2025-07-27 to 2025-08-04"
    assert reply.text == "Latest: lmarena/text #6, lmarena/vision #7."
    assert reply.image is not None and png_facts(reply.image)[:2] == charts.CHAT_SIZE


async def test_both_chart_commands_are_registered_with_help(ctx: CommandContext) -> None:
    assert {"chart", "chart model"} <= set(COMMANDS)
    listed = {f.name for f in (await ask(ctx, "help")).fields}
    assert {"/leaderwatch chart BOARD [GROUP ...] [DAYS] [at DATE]",
            "/leaderwatch chart model NAME [DAYS] [at DATE]"} <= listed
    assert (await ask(ctx, "help chart model")).title == "/leaderwatch chart model NAME [DAYS] [at DATE]"
    assert "each group's best score" in (await ask(ctx, "help chart")).text
    # A command line names a two-word command like any other, whatever the case.
    assert parse_line("/leaderwatch Chart Model o3-2025-04-16 30") == ("chart model", ["o3-2025-04-16", "30"])
    assert parse_line("chart lmarena/text china") == ("chart", ["lmarena/text", "china"])


async def test_the_charts_setting(ctx: CommandContext) -> None:
    assert (await ask(ctx, "set charts off", manager=True)).text == "`charts` is now off for this channel."
    settings = await ask(ctx, "settings", manager=True)
    assert ("charts (a chart under overtake and new #1 alerts)", "off") in [(f.name, f.value)
                                                                             for f in settings.fields]
    assert (await ask(ctx, "set charts maybe", manager=True)).text == (
        "`charts` is on or off, not `maybe`.\nUsage: `/leaderwatch set KEY VALUE`")
    assert (await ask(ctx, "set charts default", manager=True)).text == (
        "`charts` is now on (default) for this channel.")


# -- alerts ----------------------------------------------------------------------------------------------

async def test_overtake_and_new_leader_alerts_get_a_90_day_chart(ctx: CommandContext) -> None:
    decorate = chart_alerts(ctx)
    plain = Reply(text="alert", title="Overtake on lmarena/text")
    overtake = await decorate("slack", "C1", EVENTS[0], plain)
    assert overtake.image is not None
    width, height, text = png_facts(overtake.image)
    assert (width, height) == charts.ALERT_SIZE
    # The overtake's two groups, the 90 days up to the event.
    assert text["Title"] == "lmarena/text: best Arena score of alibaba and deepseek, 2025-07-27 to 2025-08-01"
    assert (await decorate("discord", "C9", EVENTS[0], plain)).image is overtake.image  # drawn once
    leader = event("new_leader", "lmarena/vision", AUG01, "Gemini-2.5-Pro", ("us", "west"))
    assert not (await ask(ctx, "set groups us,europe", manager=True, channel="C2")).error
    chart = png_facts((await decorate("slack", "C2", leader, plain)).image or b"")[2]["Title"]
    assert chart == "lmarena/vision: best Arena score of us and europe, 2025-07-27 to 2025-08-01"
    assert (await decorate("slack", "C1", EVENTS[1], plain)) is plain  # new_model: no chart
    assert not (await ask(ctx, "set charts off", manager=True)).error
    assert (await decorate("slack", "C1", EVENTS[0], plain)) is plain


# -- Slack -----------------------------------------------------------------------------------------------

@pytest.fixture
async def slack(slack_environment: None) -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


@contextlib.asynccontextmanager
async def served(fake: FakeSlack, ctx: CommandContext, **kwargs: Any) -> AsyncIterator[HttpSlack]:
    http = await serve(fake, ctx, **kwargs)
    try:
        yield http
    finally:
        await http.client.aclose()
        await http.runner.cleanup()
        await http.service.stop()


async def test_slack_acks_the_chart_then_uploads_it_to_the_channel(slack: FakeSlack,
                                                                   ctx: CommandContext) -> None:
    async with served(slack, ctx) as http:
        body = (await http.command("chart lmarena/text 30", response_url=slack.response_url())).json()
        assert body["response_type"] == "in_channel"
        title = body["blocks"][0]["text"]["text"]
        assert title.startswith("lmarena/text: best Arena score of china and west")
        assert "4 snapshots, 2 events marked" in texts(body["blocks"])
        await slack.wait_for(lambda: slack.shared("C0GENERAL"))
    [url_call] = slack.called("files.getUploadURLExternal")
    [complete] = slack.called("files.completeUploadExternal")
    [upload] = slack.shared("C0GENERAL")
    assert upload.data is not None and png_facts(upload.data)[:2] == charts.CHAT_SIZE
    assert int(url_call.params["length"]) == len(upload.data)
    assert upload.filename == "lmarena-text-best-arena-score-of-china-and-west-2025-07-27-to-2025-08-04.png"
    assert complete.params["channel_id"] == "C0GENERAL"
    assert complete.params["initial_comment"] == body["blocks"][0]["text"]["text"]
    assert json.loads(complete.params["files"])[0]["id"] == upload.file_id
    assert not slack.responses


async def test_slack_says_privately_why_a_chart_could_not_be_posted(slack: FakeSlack,
                                                                    ctx: CommandContext) -> None:
    slack.errors[("files.completeUploadExternal", "C0GENERAL")] = "not_in_channel"
    async with served(slack, ctx) as http:
        await http.command("chart lmarena/text", response_url=slack.response_url("why"))
        await slack.wait_for(lambda: slack.responses)
    [(hook, message)] = slack.responses
    assert hook == "why" and message["response_type"] == "ephemeral"
    assert message["text"] == ("The chart could not be posted to this channel (`not_in_channel`). Invite the "
                               "bot with `/invite @leaderwatch` and ask again.")
    assert slack.shared() == []


async def test_slack_late_chart_answer_goes_to_response_url_then_the_upload(slack: FakeSlack,
                                                                          ctx: CommandContext) -> None:
    async with served(slack, ctx, budget=0.0) as http:
        body = (await http.command("chart model o3-2025-04-16", response_url=slack.response_url())).json()
        assert body == {"text": WORKING, "response_type": "ephemeral"}
        await slack.wait_for(lambda: slack.responses and slack.shared("C0GENERAL"))
    [(_, message)] = slack.responses
    assert message["response_type"] == "in_channel"
    assert message["blocks"][0]["text"]["text"] == "o3-2025-04-16: rank on 2 boards, 2025-07-27 to 2025-08-04"


def test_slack_private_answers_carry_no_file_and_say_so() -> None:
    reply = without_private_image(Reply(text="x", title="t", ephemeral=True, image=b"png"))
    assert reply.image is None and response_type(reply) == "ephemeral"
    assert CHART_NOT_SHOWN in texts(to_message(reply)["blocks"])
    public = Reply(text="x", image=b"png")
    assert without_private_image(public) is public


async def test_an_overtake_alert_through_the_dispatcher_carries_a_chart_unless_charts_are_off(
        slack: FakeSlack, identity: Identity, tmp_path: Path, template: Path) -> None:
    db = open_db(tmp_path / "alerts.db")
    ctx = context(db, identity)
    for channel in ("C0ALERTS", "C0QUIET"):
        reply = await ask(ctx, "subscribe lmarena/text overtake groups=alibaba,deepseek", channel=channel,
                          manager=True)
        assert not reply.error, reply.text
    assert (await ask(ctx, "set charts off", channel="C0QUIET", manager=True)).text == (
        "`charts` is now off for this channel.")
    # The text tables arrive one by one, as polls would store them; the rules run on each.
    alerter = Alerter(db, ctx.default_rules, ctx.groups, lambda: NOW)
    recorded = open_db(template)
    events = []
    for snap in snapshots_between(recorded, "lmarena/text"):
        with db.atomic():
            events += alerter.on_change(Stored(snap, save_snapshot(db, snap)))
    recorded.close()
    overtakes = [e for e in events if e.kind == "overtake"]
    assert [(e.at, e.model) for e in overtakes] == [(AUG01, "Qwen3-235B-A22B-Instruct-2507")]

    sender = SlackSender(web_client(slack_settings(slack), retry_rate_limits=False), min_interval=0)
    dispatcher = Dispatcher(db, {"slack": sender}, lambda: NOW, decorate=chart_alerts(ctx))
    assert await dispatcher.run_once() == 2
    [alert] = slack.posts("C0ALERTS")[:1]
    assert alert.blocks is not None and alert.blocks[0]["text"]["text"] == "Overtake on lmarena/text"
    [upload] = slack.shared("C0ALERTS")
    assert upload.initial_comment == "Overtake on lmarena/text"
    assert upload.data is not None
    width, height, text = png_facts(upload.data)
    assert (width, height) == charts.ALERT_SIZE
    assert text["Title"] == "lmarena/text: best Arena score of alibaba and deepseek, 2025-07-27 to 2025-08-01"
    # The channel that turned charts off got the alert alone.
    assert [p.blocks[0]["text"]["text"] for p in slack.posts("C0QUIET") if p.blocks] == [
        "Overtake on lmarena/text"]
    assert slack.shared("C0QUIET") == []
    db.close()


async def test_a_failed_chart_upload_never_holds_the_alert_back(slack: FakeSlack) -> None:
    slack.errors[("files.completeUploadExternal", "C0X")] = "not_in_channel"
    sender = SlackSender(web_client(slack_settings(slack), retry_rate_limits=False), min_interval=0)
    await sender.send("C0X", Reply(text="x", title="Overtake", image=b"\x89PNG"), "key-1")
    assert len(slack.called("chat.postMessage")) == 1 and slack.shared() == []


# -- Discord ---------------------------------------------------------------------------------------------

@pytest.fixture
async def discord_fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


@pytest.fixture
async def bot(discord_fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[DiscordService]:
    service = await started(discord_fake, ctx)
    yield service
    await service.stop()


async def test_both_chart_subcommands_are_generated_with_sensible_options(bot: DiscordService,
                                                                          discord_fake: FakeDiscord) -> None:
    [sync] = discord_fake.made("PUT", "applications/")
    questions = next(c for c in sync.body if c["name"] == GROUP)
    options = {o["name"]: o for o in questions["options"]}
    shape = [(o["name"], o["type"], o["required"], o.get("autocomplete", False))
             for o in options["chart"]["options"]]
    assert shape == [("board", 3, True, True), ("groups", 3, False, True), ("days", 4, False, False),
                     ("at", 3, False, False)]
    assert options["chart"]["options"][1]["description"] == (
        "A group of models, e.g. china (several, separated by spaces)")
    assert options["chart"]["options"][2]["min_value"] == 1
    shape = [(o["name"], o["type"], o["required"], o.get("autocomplete", False))
             for o in options["chart-model"]["options"]]
    assert shape == [("name", 3, True, True), ("days", 4, False, False), ("at", 3, False, False)]


async def test_discord_answers_a_chart_with_the_png_attached_and_shown_in_the_embed(
        bot: DiscordService, discord_fake: FakeDiscord) -> None:
    payload = interaction_json(GROUP, "chart", {"board": "lmarena/text", "groups": "china zai", "days": 30})
    callback = await discord_fake.interact(payload)
    assert callback["type"] == 4 and not callback["data"].get("flags", 0) & 64
    [request] = [r for r in discord_fake.made("POST", "interactions/") if r.body == callback]
    [head, *_] = embeds_of(callback)
    assert head["title"] == "lmarena/text: best Arena score of china and zai, 2025-07-27 to 2025-08-04"
    assert head["image"]["url"] == f"attachment://{CHART_FILE}"
    assert callback["data"]["attachments"][0]["filename"] == CHART_FILE
    attachment = discord_fake.attachments(request)[CHART_FILE]
    assert png_facts(attachment.data)[:2] == charts.CHAT_SIZE
    assert "best zai GLM-4.5 (1434)" in shown(embeds_of(callback))


async def test_discord_late_chart_answer_attaches_the_png_to_the_edit(
        discord_fake: FakeDiscord, ctx: CommandContext) -> None:
    service = await started(discord_fake, ctx, budget=0.0)
    try:
        payload = interaction_json(GROUP, "chart-model", {"name": "o3-2025-04-16"})
        assert (await discord_fake.interact(payload))["type"] == 5
        await discord_fake.wait_for(lambda: discord_fake.followups(payload, "PATCH"))
        [edit] = [r for r in discord_fake.requests if r.method == "PATCH"]
        assert embeds_of(edit.body)[0]["image"]["url"] == f"attachment://{CHART_FILE}"
        assert png_facts(discord_fake.attachments(edit)[CHART_FILE].data)[:2] == charts.CHAT_SIZE
    finally:
        await service.stop()


async def test_discord_alerts_attach_the_chart_or_go_without_it_when_files_are_not_allowed(
        bot: DiscordService, discord_fake: FakeDiscord, ctx: CommandContext) -> None:
    reply = await chart_alerts(ctx)("discord", str(CHANNEL_ID), EVENTS[0],
                                    Reply(text="alibaba leads", title="Overtake on lmarena/text"))
    assert reply.image is not None
    await bot.sender.send(str(CHANNEL_ID), reply, "key-chart")
    [post] = discord_fake.made("POST", f"channels/{CHANNEL_ID}/messages")
    assert post.body["embeds"][0]["image"]["url"] == f"attachment://{CHART_FILE}"
    assert png_facts(discord_fake.attachments(post)[CHART_FILE].data)[:2] == charts.ALERT_SIZE
    [message] = discord_fake.posts()
    assert message["attachments"][0]["filename"] == CHART_FILE

    discord_fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(
        403, {"message": "Missing Permissions", "code": 50013}))
    await bot.sender.send(str(CHANNEL_ID), reply, "key-no-files")
    retried = discord_fake.made("POST", f"channels/{CHANNEL_ID}/messages")[1:]
    assert [bool(r.files) for r in retried] == [True, False]
    assert "image" not in retried[1].body["embeds"][0]
    assert len(discord_fake.posts()) == 2


# -- the console -----------------------------------------------------------------------------------------

def test_the_console_writes_the_png_named_from_board_and_dates(tmp_path: Path) -> None:
    title = "lmarena/text: best Arena score of china and west, 2025-07-27 to 2025-08-04"
    reply = Reply(text="x", title=title, image=b"\x89PNG...")
    path = write_image(reply, tmp_path / "charts")
    assert path == tmp_path / "charts" / image_filename(reply)
    assert path.name == "lmarena-text-best-arena-score-of-china-and-west-2025-07-27-to-2025-08-04.png"
    assert path.read_bytes() == b"\x89PNG..."
    assert write_image(Reply(text="no chart"), tmp_path) is None


def test_query_chart_in_the_terminal_saves_the_png_and_prints_its_path(
        template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("LEADERWATCH_")]:
        monkeypatch.delenv(name)
    shutil.copy(template, tmp_path / "cli.db")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--db", str(tmp_path / "cli.db"), "query", "--output", str(tmp_path / "out"),
                     "chart", "lmarena/text", "3650"])
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == "*lmarena/text: best Arena score of china and west, 2025-07-27 to 2025-08-04*"
    name = "lmarena-text-best-arena-score-of-china-and-west-2025-07-27-to-2025-08-04.png"
    assert lines[-1] == f"chart saved to {tmp_path / 'out' / name}"
    assert png_facts((tmp_path / "out" / name).read_bytes())[:2] == charts.CHAT_SIZE

