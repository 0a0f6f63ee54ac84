"""The Discord adapter through the real discord.py 2.7 client against a fake Discord on 127.0.0.1.

The client logs in over REST, syncs its commands, connects to the fake gateway and gets
`INTERACTION_CREATE` dispatches; the interaction callbacks, follow-ups and channel messages that
come out are checked. Nothing in discord.py or in `bot.discord_bot` is mocked.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Field, Reply
from leaderwatch.bot.chat.common import Names, command_line, options_of, rank
from leaderwatch.bot.chat.discord_bot import (
    ADMIN_GROUP,
    ERROR_COLOUR,
    GROUP,
    GROUP_COLOURS,
    MAX_CHOICES,
    DiscordService,
    alert_ref,
    discord_name,
    to_messages,
)
from leaderwatch.bot.commands import COMMANDS, CommandContext
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.bot.settings import ConfigError, Settings
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.lmarena import LmarenaSource
from leaderwatch.storage.snapshots import save_snapshot
from tests.bot.fake_discord import (
    APP_ID,
    CHANNEL_ID,
    GUILD_ID,
    MANAGER,
    MANAGER_ID,
    TOKEN,
    Failure,
    FakeDiscord,
    embed_problems,
    interaction_json,
    keep_endpoints,
    settings_for,
)
from tests.helpers import build_context

NOW = datetime(2025, 12, 12, 9, 0, tzinfo=UTC)
EPHEMERAL = 64


@pytest.fixture(scope="module")
def snapshots(excerpts: Path) -> list[Snapshot]:
    """LMArena's text board on 2025-11-06 and 2025-12-11, and its vision board on 2025-12-11."""
    source = LmarenaSource(Identity.load())
    wanted = ("leaderboard-text_2025-11-06.json", "leaderboard-text_2025-12-11.json",
              "leaderboard-vision_2025-12-11.json")
    recs = sorted((r for r in source.recordings(excerpts) if r.path.name in wanted), key=lambda r: r.as_of)
    return [snap for rec in recs for snap in source.load(rec)]


@pytest.fixture
def ctx(fresh_db: Database, snapshots: list[Snapshot]) -> CommandContext:
    for snap in snapshots:
        save_snapshot(fresh_db, snap)
    return build_context(fresh_db, lambda: NOW)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """The fake, with discord.py's REST base and gateway restored after the test."""
    fake = await FakeDiscord().start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


async def started(fake: FakeDiscord, ctx: CommandContext, **kwargs: Any) -> DiscordService:
    settings = kwargs.pop("settings", None) or settings_for(fake)
    service = DiscordService(settings, ctx, guild_ready_timeout=0.05, reconnect=False, ready_timeout=5.0,
                             **kwargs)
    assert await service.start()
    return service


@pytest.fixture
async def bot(fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[DiscordService]:
    # A budget no answer here needs, so that "answered at once" holds on a loaded machine too; the
    # deferral itself is tested with budget=0 below.
    service = await started(fake, ctx, budget=30.0)
    yield service
    await service.stop()


def embeds_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The embeds of a callback (its `data`) or of a follow-up / message."""
    return (body.get("data") or body).get("embeds") or []


def shown(embeds: list[dict[str, Any]]) -> str:
    """Every text a user reads in some embeds, joined."""
    out: list[str] = []
    for e in embeds:
        out += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        out += [f"{f['name']}\n{f['value']}" for f in e.get("fields") or []]
    return "\n".join(out)


def subscriptions(ctx: CommandContext) -> list[dict[str, Any]]:
    return list(ctx.db.table("subscriptions").rows)


# -- start-up --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("guilds", [(GUILD_ID,), ()])
async def test_commands_are_synced_with_the_admin_group_behind_manage_channels(
        fake: FakeDiscord, ctx: CommandContext, guilds: tuple[int, ...]) -> None:
    service = await started(fake, ctx, settings=settings_for(fake, discord_guilds=guilds))
    await service.stop()
    path = (f"applications/{APP_ID}/guilds/{GUILD_ID}/commands" if guilds
            else f"applications/{APP_ID}/commands")
    [sync] = fake.made("PUT", path)
    assert [r.path for r in fake.made("PUT", "applications/")] == [path]  # one or the other
    synced = {c["name"]: c for c in sync.body}
    assert set(synced) == {GROUP, ADMIN_GROUP}
    questions, admin = synced[GROUP], synced[ADMIN_GROUP]
    assert questions["default_member_permissions"] is None
    assert str(admin["default_member_permissions"]) == "16"  # Manage Channels
    assert admin["dm_permission"] is False
    assert [o["name"] for o in questions["options"]] == [discord_name(c.name) for c in COMMANDS.values()
                                                         if not c.configures]
    assert [o["name"] for o in admin["options"]] == [c.name for c in COMMANDS.values() if c.configures]
    top = next(o for o in questions["options"] if o["name"] == "top")
    assert [(o["name"], o["type"], o["required"], o.get("autocomplete", False)) for o in top["options"]] == [
        ("board", 3, True, True), ("n", 4, False, False), ("group", 3, False, True), ("at", 3, False, False)]
    assert top["options"][1]["min_value"] == 1
    assert top["options"][3]["description"].startswith("A date, YYYY-MM-DD")
    subscribe = next(o for o in admin["options"] if o["name"] == "subscribe")
    assert [(o["name"], o["required"]) for o in subscribe["options"]] == [
        ("board_pattern", True), ("rules", False), ("key_values", False)]
    digest = next(o for o in admin["options"] if o["name"] == "digest")
    assert digest["options"][0]["choices"] == [{"name": c, "value": c} for c in ("off", "daily", "weekly")]
    assert all(len(o["description"]) <= 100 and "`" not in o["description"]
               for c in sync.body for o in c["options"])
    assert fake.identifies and fake.identifies[0]["token"] == TOKEN


def test_a_missing_token_is_a_config_error_naming_the_setting(ctx: CommandContext) -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        DiscordService(Settings(db_path=":memory:"), ctx)


# -- every subcommand ------------------------------------------------------------------------------------

# (group, subcommand, options, as manager, commands run first, ephemeral, words the reply shows)
Options = dict[str, object]
CASES: list[tuple[str, str, Options, bool, list[tuple[str, Options]], bool, list[str]]] = [
    (GROUP, "help", {}, False, [], True, ["leaderwatch commands", "/leaderwatch top BOARD [N] [GROUP]",
                                          "/leaderwatch-admin subscribe BOARD_PATTERN"]),
    (GROUP, "help", {"command_or_rule": "overtake"}, False, [], True, ["Rule `overtake`"]),
    (GROUP, "boards", {}, False, [], False, ["2 boards", "lmarena/text", "lmarena/vision"]),
    (GROUP, "top", {"board": "lmarena/text", "n": 3}, False, [], False,
     ["Top 3 on lmarena/text", "gemini-3-pro", "grok-4.1-thinking", "as of 2025-12-11"]),
    (GROUP, "race", {"board_or_suite": "text"}, False, [], False, ["Race on lmarena/text: china, west"]),
    (GROUP, "race", {"board_or_suite": "vision"}, False, [], False, ["The race on vision: china, west",
                                                                      "lmarena/vision"]),
    (GROUP, "gap", {"board": "lmarena/text", "group_a": "china", "group_b": "west", "days": 35,
                    "at": "2025-12-31"}, False, [], False,
     ["Gap china vs west on lmarena/text", "35 days before", "2025-11-06", "2025-12-11"]),
    (GROUP, "model", {"name": "gemini-3-pro"}, False, [], False,
     ["gemini-3-pro on 2 boards", "lmarena/vision"]),
    (GROUP, "events", {"days": 30}, False, [], False, ["No events on all boards in the last 30 days."]),
    (GROUP, "why", {"board": "lmarena/text"}, False, [], False,
     ["This channel follows no rule on lmarena/text"]),
    (GROUP, "share", {"board": "lmarena/text", "n": 5}, False, [], False,
     ["Who holds the top 5 of lmarena/text", "group china", "gemini-3-pro #1"]),
    (GROUP, "versus", {"model_a": "gemini-3-pro", "model_b": "china"}, False, [], False,
     ["gemini-3-pro vs group china", "is ahead on 2 of 2 boards"]),
    (GROUP, "report", {}, False, [], False,
     ["Race report: china, west, the week to 2025-12-12", "Boards led"]),
    (GROUP, "chart", {"board": "lmarena/text", "groups": "china west", "days": 90}, False, [], False,
     ["lmarena/text: best Arena score of china and west, 2025-11-06 to 2025-12-11", "2 snapshots"]),
    (GROUP, "chart-model", {"name": "gemini-3-pro"}, False, [], False,
     ["gemini-3-pro: rank on 2 boards", "lmarena/text #1"]),
    (ADMIN_GROUP, "subscribe", {"board_pattern": "lmarena/*", "rules": "overtake top_n",
                                "key_values": "top=5 groups=china,west"}, True, [], False,
     ["Subscribed", "This channel now follows `lmarena/*`", "overtake groups=china,west", "top_n top=5"]),
    (ADMIN_GROUP, "unsubscribe", {"board_pattern": "all"}, True, [("subscribe", {"board_pattern": "text"})],
     False, ["Unsubscribed"]),
    (ADMIN_GROUP, "settings", {}, True, [("subscribe", {"board_pattern": "text", "rules": "new_leader"})],
     True, ["Settings of this channel", "lmarena/text (1 board)", "`new_leader`"]),
    (ADMIN_GROUP, "set", {"key": "top", "value": "5"}, True, [], False,
     ["Setting changed", "`top` is now 5"]),
    (ADMIN_GROUP, "mute", {"duration": "2h"}, True, [], False, ["Muted", "2025-12-12 11:00 UTC"]),
    (ADMIN_GROUP, "unmute", {}, True, [("mute", {"duration": "1h"})], False, ["Unmuted"]),
    (ADMIN_GROUP, "digest", {"choice": "daily"}, True, [], False, ["Digest on", "daily at 09:00 UTC"]),
]


def test_the_cases_cover_every_registered_command() -> None:
    assert {(g, s) for g, s, *_ in CASES} == {(ADMIN_GROUP if c.configures else GROUP, discord_name(c.name))
                                              for c in COMMANDS.values()}


@pytest.mark.parametrize(("group", "sub", "options", "manager", "before", "ephemeral", "words"), CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
async def test_each_subcommand_answers_through_the_interaction_callback(
        bot: DiscordService, fake: FakeDiscord, group: str, sub: str, options: Options, manager: bool,
        before: list[tuple[str, Options]], ephemeral: bool, words: list[str]) -> None:
    who = MANAGER if manager else {}
    for setup_sub, setup_options in before:
        await fake.interact(interaction_json(group, setup_sub, setup_options, **who))
    payload = interaction_json(group, sub, options, **who)
    callback = await fake.interact(payload)
    assert callback["type"] == 4  # answered at once, no defer
    assert bool(callback["data"].get("flags", 0) & EPHEMERAL) is ephemeral
    embeds = embeds_of(callback)
    assert embeds and not embed_problems(callback["data"])
    text = shown(embeds)
    for word in words:
        assert word in text
    assert "Traceback" not in text and "error id" not in text


async def test_a_table_is_a_code_block_with_the_board_link_and_the_group_colour(
        bot: DiscordService, fake: FakeDiscord) -> None:
    callback = await fake.interact(interaction_json(GROUP, "top", {"board": "lmarena/text", "n": 5,
                                                                   "group": "china"}))
    head, *rest = embeds_of(callback)
    assert head["title"] == "Top 5 on lmarena/text, china only"
    assert head["url"] == "https://arena.ai/leaderboard/text"
    assert head["color"] == GROUP_COLOURS["china"]
    [table] = [e["description"] for e in [head, *rest] if (e.get("description") or "").startswith("```")]
    lines = table.strip("`\n").splitlines()
    assert lines[0].split()[:3] == ["#", "model", "score"]
    assert len(lines) == 6 and all(line.rstrip().endswith("CN") for line in lines[1:])


async def test_errors_are_ephemeral_red_and_say_what_to_do(bot: DiscordService, fake: FakeDiscord) -> None:
    callback = await fake.interact(interaction_json(GROUP, "top", {"board": "lmarena/txet"}))
    assert callback["data"]["flags"] & EPHEMERAL
    [embed] = embeds_of(callback)
    assert embed["color"] == ERROR_COLOUR
    assert "Unknown board `lmarena/txet`. Did you mean `lmarena/text`" in embed["description"]


async def test_a_member_without_manage_channels_is_refused_and_nothing_changes(
        bot: DiscordService, fake: FakeDiscord, ctx: CommandContext) -> None:
    options: dict[str, object] = {"board_pattern": "lmarena/*", "rules": "overtake"}
    callback = await fake.interact(interaction_json(ADMIN_GROUP, "subscribe", options))
    assert callback["data"]["flags"] & EPHEMERAL
    assert "Only channel managers can change this channel's configuration" in shown(embeds_of(callback))
    assert subscriptions(ctx) == [] and list(ctx.db.table("audit").rows) == []

    callback = await fake.interact(interaction_json(ADMIN_GROUP, "subscribe", options, **MANAGER))
    assert "Subscribed" in shown(embeds_of(callback))
    [row] = subscriptions(ctx)
    assert (row["platform"], row["channel_id"], row["board_pattern"], row["rule"]) == (
        "discord", str(CHANNEL_ID), "lmarena/*", "overtake groups=china,west")
    [audit] = ctx.db.table("audit").rows
    assert (audit["platform"], audit["user_id"], audit["user_name"]) == ("discord", str(MANAGER_ID), "grace")


# -- autocomplete ----------------------------------------------------------------------------------------

async def autocomplete(fake: FakeDiscord, group: str, sub: str, options: dict[str, object],
                       focused: str) -> list[str]:
    callback = await fake.interact(interaction_json(group, sub, options, kind=4, focused=focused))
    assert callback["type"] == 8
    choices = callback["data"]["choices"]
    assert len(choices) <= 25 and all(c["name"] == c["value"] for c in choices)
    return [c["value"] for c in choices]


async def test_board_autocomplete_puts_the_best_matches_first(bot: DiscordService, fake: FakeDiscord,
                                                             ctx: CommandContext) -> None:
    found = await autocomplete(fake, GROUP, "top", {"board": "lmarena/te"}, "board")
    text_boards = sorted((b for b in ctx.boards if b.startswith("lmarena/te")), key=lambda b: (len(b), b))
    assert found == text_boards[:25] and found[0] == "lmarena/text"
    assert (await autocomplete(fake, GROUP, "why", {"board": "text"}, "board"))[0] == "lmarena/text"
    everything = await autocomplete(fake, GROUP, "gap", {"board": ""}, "board")
    assert len(everything) == MAX_CHOICES < len(ctx.boards)
    either = await autocomplete(fake, GROUP, "race", {"board_or_suite": "vis"}, "board_or_suite")
    assert either[:2] == ["vision", "lmarena/vision"]
    assert (await autocomplete(fake, GROUP, "top", {"board": "lmarena/txet"}, "board"))[0] == "lmarena/text"


async def test_group_model_and_pattern_autocomplete(bot: DiscordService, fake: FakeDiscord) -> None:
    assert await autocomplete(fake, GROUP, "gap", {"board": "lmarena/text", "group_a": "ch"}, "group_a") == [
        "china"]
    models = await autocomplete(fake, GROUP, "model", {"name": "gemini-3"}, "name")
    assert models[0] == "gemini-3-pro" and all("gemini-3" in m for m in models)
    patterns = await autocomplete(fake, ADMIN_GROUP, "unsubscribe", {"board_pattern": ""}, "board_pattern",)
    assert patterns[:3] == ["all", "coding", "lmarena"]  # `all` of `unsubscribe`, then the suites
    rules = await autocomplete(fake, ADMIN_GROUP, "subscribe", {"board_pattern": "lmarena/*",
                                                                "rules": "overtake top"}, "rules")
    assert rules == ["overtake top_n"]


# -- slow answers ----------------------------------------------------------------------------------------

async def test_a_slow_answer_is_deferred_then_replaces_the_thinking_message(
        fake: FakeDiscord, ctx: CommandContext) -> None:
    service = await started(fake, ctx, budget=0.0)
    try:
        payload = interaction_json(GROUP, "top", {"board": "lmarena/text", "n": 3})
        callback = await fake.interact(payload)
        assert callback["type"] == 5  # deferred: "leaderwatch is thinking..."
        await fake.wait_for(lambda: fake.followups(payload, "PATCH"))
        [edit] = fake.followups(payload, "PATCH")
        assert "Top 3 on lmarena/text" in shown(embeds_of(edit))

        private = interaction_json(GROUP, "help", {})
        assert (await fake.interact(private))["type"] == 5
        await fake.wait_for(lambda: fake.followups(private))
        assert fake.made("DELETE", f"webhooks/{APP_ID}/{private['token']}/messages/@original")
        [followup] = fake.followups(private)
        assert followup["flags"] & EPHEMERAL and "leaderwatch commands" in shown(embeds_of(followup))
    finally:
        await service.stop()


# -- limits ----------------------------------------------------------------------------------------------

def big_reply() -> Reply:
    rows = (("#", "model", "score", "org", "country"),) + tuple(
        (str(i), f"model-{i:03d}-with-a-rather-long-name", f"{1500 - i}.5", "Some Organization", "US")
        for i in range(1, 201))
    fields = tuple(Field(f"field {i}", "value " * 60, inline=i % 2 == 0) for i in range(40))
    return Reply(title="T" * 300, text="a long line of text\n" * 400, fields=fields, table=rows,
                 footer="f" * 3000, url="https://example.org/board", group="somegroup")


def test_a_200_row_table_and_40_fields_render_within_discords_limits() -> None:
    messages = to_messages(big_reply())
    assert 1 < len(messages) <= 5
    for embeds in messages:
        body = {"embeds": [e.to_dict() for e in embeds]}
        assert not embed_problems(body)
        assert len(embeds) <= 10 and sum(len(e) for e in embeds) <= 6000
    text = shown([e.to_dict() for m in messages for e in m])
    assert "more part(s) not shown" in text  # the rest was cut with a note, never refused


def test_a_table_alone_keeps_every_row_when_it_fits_five_messages() -> None:
    rows = (("#", "model"),) + tuple((str(i), f"model-{i}") for i in range(1, 201))
    messages = to_messages(Reply(text="", title="Top 200", table=rows))
    blocks = [e.description or "" for m in messages for e in m if (e.description or "").startswith("```")]
    body_lines = [line for b in blocks for line in b.strip("`\n").splitlines()[1:]]
    assert [line.split()[1] for line in body_lines] == [f"model-{i}" for i in range(1, 201)]
    assert all(b.strip("`\n").splitlines()[0].split() == ["#", "model"] for b in blocks)  # header repeated


async def test_settings_with_40_subscriptions_stays_within_limits_on_the_wire(
        bot: DiscordService, fake: FakeDiscord, ctx: CommandContext) -> None:
    from leaderwatch.storage.subscriptions import add_subscription
    for i in range(40):
        add_subscription(ctx.db, "discord", str(CHANNEL_ID), f"lmarena/t{i:02d}*", "new_leader", "x", NOW)
    payload = interaction_json(ADMIN_GROUP, "settings", {}, **MANAGER)
    callback = await fake.interact(payload)
    assert callback["data"]["flags"] & EPHEMERAL
    sent = [callback["data"], *fake.followups(payload)]
    fields = [f for body in sent for e in body["embeds"] for f in e.get("fields") or []]
    assert sum(1 for f in fields if f["name"].startswith("lmarena/t")) == 40
    assert not [r for r in fake.requests if r.path.startswith("webhooks") and embed_problems(r.body or {})]


# -- alerts ----------------------------------------------------------------------------------------------

async def test_the_sender_posts_embeds_with_a_nonce_and_finds_them_again(
        bot: DiscordService, fake: FakeDiscord) -> None:
    reply = Reply(text="gemini-3-pro is the new #1", title="New #1 on lmarena/text", group="west",
                  footer="as of 2025-12-11 00:00 UTC · rule: new_leader", url="https://arena.ai/leaderboard/text")
    since = datetime.now(UTC) - timedelta(minutes=5)
    await bot.sender.send(str(CHANNEL_ID), reply, "key-1")
    [message] = fake.posts()
    [post] = fake.made("POST", f"channels/{CHANNEL_ID}/messages")
    assert post.body["nonce"] and len(post.body["nonce"]) <= 25 and post.body["enforce_nonce"] is True
    [embed] = message["embeds"]
    assert embed["title"] == "New #1 on lmarena/text" and embed["color"] == GROUP_COLOURS["west"]
    assert embed["footer"]["text"] == (f"as of 2025-12-11 00:00 UTC · rule: new_leader · "
                                       f"ref {alert_ref('key-1')}")
    assert await bot.sender.already_delivered(str(CHANNEL_ID), "key-1", since)
    assert not await bot.sender.already_delivered(str(CHANNEL_ID), "key-2", since)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert not await bot.sender.already_delivered(str(CHANNEL_ID), "key-1", later)


async def test_a_long_alert_goes_out_in_several_messages_within_limits(bot: DiscordService,
                                                                      fake: FakeDiscord) -> None:
    await bot.sender.send(str(CHANNEL_ID), big_reply(), "key-big")
    posts = fake.posts()
    assert 1 < len(posts) <= 5 and not [r for r in fake.requests if r.path.endswith("messages")
                                        and embed_problems(r.body or {})]
    assert len({p["nonce"] for p in posts}) == len(posts)
    assert alert_ref("key-big") in posts[-1]["embeds"][-1]["footer"]["text"]
    since = datetime.now(UTC) - timedelta(hours=1)
    assert await bot.sender.already_delivered(str(CHANNEL_ID), "key-big", since)


async def test_a_429_from_discord_is_waited_out_in_place(bot: DiscordService, fake: FakeDiscord) -> None:
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(
        429, {"message": "You are being rate limited.", "retry_after": 0.01, "global": False},
        {"Via": "1.1 google"}))
    await bot.sender.send(str(CHANNEL_ID), Reply(text="x", title="t"), "key-429")
    assert len(fake.made("POST", f"channels/{CHANNEL_ID}/messages")) == 2
    assert len(fake.posts()) == 1


async def test_a_cloudflare_429_is_left_to_the_dispatcher(bot: DiscordService, fake: FakeDiscord) -> None:
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(
        429, {"message": "You are being blocked.", "retry_after": 5, "global": True}, {"Retry-After": "7"}))
    with pytest.raises(DeliveryError) as raised:
        await bot.sender.send(str(CHANNEL_ID), Reply(text="x", title="t"), "key-cf")
    assert raised.value.retryable and raised.value.retry_after == 7.0 and not raised.value.channel_gone
    assert fake.posts() == []


async def test_a_cloudflare_429_with_an_http_date_waits_until_then(bot: DiscordService,
                                                                 fake: FakeDiscord) -> None:
    until = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(
        429, {"message": "You are being blocked.", "retry_after": 5, "global": True}, {"Retry-After": until}))
    with pytest.raises(DeliveryError) as raised:
        await bot.sender.send(str(CHANNEL_ID), Reply(text="x", title="t"), "key-cf-date")
    assert raised.value.retryable and raised.value.retry_after is not None
    assert 290 <= raised.value.retry_after <= 300


async def test_a_send_discord_took_before_a_500_is_not_posted_twice(bot: DiscordService,
                                                                   fake: FakeDiscord) -> None:
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(500, {"message": "oops", "code": 0},
                                                                 create_first=True))
    await bot.sender.send(str(CHANNEL_ID), Reply(text="x", title="t"), "key-500")  # retried after 1 s
    assert len(fake.made("POST", f"channels/{CHANNEL_ID}/messages")) == 2
    assert len(fake.posts()) == 1  # the nonce made Discord answer the retry with the first message


async def test_a_server_error_is_retryable_without_a_wait(bot: DiscordService, fake: FakeDiscord) -> None:
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(503, {"message": "unavailable", "code": 0}))
    with pytest.raises(DeliveryError) as raised:
        await bot.sender.send(str(CHANNEL_ID), Reply(text="x"), "key-503")
    assert raised.value.retryable and raised.value.retry_after is None


@pytest.mark.parametrize(("status", "code", "message"), [(404, 10003, "Unknown Channel"),
                                                          (403, 50001, "Missing Access"),
                                                          (403, 50013, "Missing Permissions")])
async def test_a_channel_we_cannot_post_in_is_gone(bot: DiscordService, fake: FakeDiscord, status: int,
                                                   code: int, message: str) -> None:
    fake.gone[CHANNEL_ID] = (status, code, message)
    with pytest.raises(DeliveryError) as raised:
        await bot.sender.send(str(CHANNEL_ID), Reply(text="x"), "key-gone")
    assert raised.value.channel_gone and message in raised.value.reason and TOKEN not in raised.value.reason


async def test_embeds_discord_refuses_are_sent_as_plain_text(bot: DiscordService, fake: FakeDiscord,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    fake.fail("POST", f"channels/{CHANNEL_ID}/messages", Failure(
        400, {"message": "Invalid Form Body", "code": 50035, "errors": {}}))
    with caplog.at_level(logging.ERROR, "leaderwatch.bot.chat.discord_bot"):
        await bot.sender.send(str(CHANNEL_ID), Reply(text="gemini-3-pro leads", title="New #1"), "key-plain")
    [message] = fake.posts()
    assert "gemini-3-pro leads" in message["content"]
    assert f"ref {alert_ref('key-plain')}" in message["content"]
    assert "sending it as plain text" in caplog.text


# -- the shared helpers the adapter is generated from ----------------------------------------------------

def test_usage_lines_become_options_and_options_the_same_command_line() -> None:
    options = options_of("top BOARD [N] [GROUP]")
    values: Options = {"board": "lmarena/text", "n": 5, "group": None}
    assert command_line("top", options, values) == "top lmarena/text 5"
    model = options_of("model NAME")
    assert command_line("model", model, {"name": "Claude Opus 4"}) == "model 'Claude Opus 4'"
    subscribe = options_of("subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]")
    assert command_line("subscribe", subscribe, {"board_pattern": "lmarena/*", "rules": "overtake top_n",
                                                 "key_values": "top=5"}) == \
        "subscribe 'lmarena/*' overtake top_n top=5"
    with pytest.raises(ValueError):
        options_of("broken [N [GROUP]]")
    gap = options_of("gap BOARD GROUP_A GROUP_B [DAYS] [at DATE]")
    assert [(o.name, o.keyword, o.required) for o in gap[3:]] == [("days", "", False), ("at", "at", False)]
    assert command_line("gap", gap, {"board": "text", "group_a": "china", "group_b": "west",
                                     "at": "2025-01-24"}) == "gap text china west at 2025-01-24"
    for broken in ("top BOARD [AT DATE]", "top BOARD [at DATE EXTRA]", "top BOARD [at DATE ...]"):
        with pytest.raises(ValueError):
            options_of(broken)


def test_rank_puts_exact_then_prefix_then_words_then_substrings_then_close_spellings() -> None:
    names = ["lmarena/text-style-control", "lmarena/webdev", "aider/polyglot", "lmarena/text",
             "swebench/lite"]
    assert rank("text", names, 25) == ["lmarena/text", "lmarena/text-style-control"]
    assert rank("lmarena/", names, 2) == ["lmarena/text", "lmarena/webdev"]
    assert rank("poly", names, 25) == ["aider/polyglot"]
    assert rank("lite", names, 25)[0] == "swebench/lite"
    assert rank("polyglto", names, 25) == ["aider/polyglot"]
    assert rank("", names, 3) == names[:3]


def test_model_names_are_read_once_per_ttl(ctx: CommandContext) -> None:
    clock = [0.0]
    names = Names(ctx, ttl=60, monotonic=lambda: clock[0])
    first = names.models()
    assert "gemini-3-pro" in first
    ctx.db.execute("DELETE FROM entries")
    assert names.models() == first
    clock[0] = 61
    assert names.models() == []


async def test_an_interaction_the_commands_do_not_match_gets_an_apology_with_an_error_id(
        bot: DiscordService, fake: FakeDiscord, caplog: pytest.LogCaptureFixture) -> None:
    # Discord still shows a subcommand this version no longer has (the sync has not reached it yet).
    payload = interaction_json(GROUP, "forecast", {"board": "lmarena/text"})
    with caplog.at_level(logging.ERROR, "leaderwatch.bot.chat.discord_bot"):
        callback = await fake.interact(payload)
    assert callback["data"]["flags"] & EPHEMERAL
    text = shown(embeds_of(callback))
    assert "Sorry, something went wrong on our side" in text
    error_id = text.split("error id `")[1].split("`")[0]
    assert f"[error id {error_id}]" in caplog.text
