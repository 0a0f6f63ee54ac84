"""The buttons under a Discord alert, its thread and its edits, through the real discord.py 2.7 client
against the fake Discord (tests/bot/fake_discord.py): alerts delivered by the Dispatcher, clicks sent
as `INTERACTION_CREATE`, answers read from the interaction callbacks (issue 12).

The database is the real recorded subset of tests/bot/test_commands.py with its stored events, which
the buttons answer from; the channel follows the boards of two of them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply, event_reply
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot.chat.discord_bot import CHART_FILE, DiscordService, alert_ref, to_discord_words
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.actions import ALERT_GONE, NOT_SUBSCRIBED, with_actions
from leaderwatch.bot.pipeline.delivery import DeliveryError, Dispatcher
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import to_text
from leaderwatch.storage.subscriptions import channel_settings
from tests.bot import test_discord
from tests.bot.fake_discord import (
    CHANNEL_ID,
    EPHEMERAL,
    LOADING,
    MANAGER,
    MANAGER_ID,
    Failure,
    FakeDiscord,
    component_interaction,
    component_problems,
)
from tests.bot.test_commands import EVENTS, NOW, ask, build_database, config, make_context
from tests.bot.test_discord import shown, started
from tests.bot.test_stories import queue

CHANNEL = str(CHANNEL_ID)
NEW_MODEL = EVENTS[0]  # lmarena/text, 2025-08-04: GLM-4.5 entered the top 10
AIDER_LEADER = EVENTS[1]  # aider/polyglot, 2025-08-25: openai/gpt-5 is the new #1
MESSAGES = f"channels/{CHANNEL_ID}/messages"
THREADS = f"channels/{CHANNEL_ID}/messages/{{}}/threads"
"""The path that starts a thread on a message (format it with the message's id)."""


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("discord_buttons"))


fake = test_discord.fake
"""The fake Discord (test_discord.py's fixture)."""
bot = test_discord.bot
"""The DiscordService started against it (test_discord.py's fixture, over this module's `ctx`)."""


@pytest.fixture
async def ctx(db: Database, identity: Identity) -> CommandContext:
    """The command context over a copy of the template; the Discord channel follows both boards."""
    context = make_context(db, identity)
    for line in ("subscribe lmarena/text new_model top=10", "subscribe aider/polyglot new_leader"):
        reply = await ask(context, line, manager=True, channel=CHANNEL, platform="discord")
        assert not reply.error, reply.text
    return context


async def deliver(ctx: CommandContext, service: DiscordService, *events: Event) -> int:
    """Queue `events` as the Alerter does (the channel's mutes hold them) and run the Dispatcher once."""
    queue(ctx.db, list(events), NOW)
    urls = {board_id: board.url for board_id, board in ctx.boards.items()}
    return await Dispatcher(ctx.db, {"discord": service.sender}, ctx.clock, board_urls=urls,
                            jitter=lambda: 0.0).run_once()


@pytest.fixture
async def alert(bot: DiscordService, fake: FakeDiscord, ctx: CommandContext) -> dict[str, Any]:
    """The GLM-4.5 alert, delivered to the channel: the message the buttons are clicked on."""
    assert await deliver(ctx, bot, NEW_MODEL) == 1
    [message] = fake.posts()
    return message


async def answered(fake: FakeDiscord, click: dict[str, Any]) -> dict[str, Any]:
    """The answer to a click, once complete: a reply (callback 4) or a deferred one (5, then its edit),
    private either way."""
    callback = await fake.interact(click)
    assert callback["type"] in (4, 5) and callback["data"]["flags"] & EPHEMERAL, callback
    await fake.wait_for(lambda: not fake.original(click)["flags"] & LOADING)
    message = fake.original(click)
    assert message["flags"] & EPHEMERAL
    return message


def text_of(message: dict[str, Any]) -> str:
    return shown(message["embeds"])


def buttons_of(message: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(b["label"], b["style"], b["custom_id"]) for row in message["components"]
            for b in row["components"] if b["type"] == 2]


# -- the buttons -----------------------------------------------------------------------------------------

async def test_an_alert_carries_the_four_buttons_and_the_mute_menu(alert: dict[str, Any]) -> None:
    key = NEW_MODEL.dedupe_key
    assert component_problems(alert["components"]) == []
    [_, menu] = alert["components"]
    assert buttons_of(alert) == [
        ("Why", 2, f"lw:why:{key}"), ("Chart", 2, f"lw:chart:{key}"),
        ("Mute this board (7d)", 2, f"lw:mute:{key}:7d"), ("Unsubscribe", 4, f"lw:unsubscribe:{key}")]
    [select] = menu["components"]
    assert (select["type"], select["custom_id"], select["placeholder"]) == (
        3, f"lw:mute:{key}", "Mute this board for…")
    assert [(o["label"], o["value"]) for o in select["options"]] == [
        ("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d")]
    assert alert["embeds"][0]["title"] == "New model on lmarena/text"


async def test_why_answers_a_member_privately(alert: dict[str, Any], fake: FakeDiscord) -> None:
    click = component_interaction(f"lw:why:{NEW_MODEL.dedupe_key}", message=alert)
    answer = await answered(fake, click)
    assert answer["embeds"][0]["title"] == "Why on lmarena/text"
    assert "fired: new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3" in text_of(answer)
    assert answer["components"] == [] and len(fake.posts()) == 1  # nothing in the channel


async def test_mute_by_a_member_changes_nothing_and_says_who_can(alert: dict[str, Any], fake: FakeDiscord,
                                                                ctx: CommandContext) -> None:
    before = config(ctx.db)
    key = NEW_MODEL.dedupe_key
    for click in (component_interaction(f"lw:mute:{key}:7d", message=alert),
                  component_interaction(f"lw:mute:{key}", component_type=3, values=["30d"], message=alert)):
        answer = await answered(fake, click)
        assert answer["embeds"][0]["description"] == (
            "⚠️ Only channel managers can change this channel's configuration (`mute`). It needs the "
            "Manage Channels permission in this channel. See `/leaderwatch help mute`.")
    assert config(ctx.db) == before


async def test_mute_30d_by_a_manager_holds_that_boards_alerts_only(
        alert: dict[str, Any], bot: DiscordService, fake: FakeDiscord, ctx: CommandContext) -> None:
    click = component_interaction(f"lw:mute:{NEW_MODEL.dedupe_key}", component_type=3, values=["30d"],
                                  message=alert, **MANAGER)
    answer = await answered(fake, click)
    assert answer["embeds"][0]["title"] == "Board muted"
    until = NOW + timedelta(days=30)
    assert channel_settings(ctx.db, "discord", CHANNEL) == {"mute_until:lmarena/text": to_text(until)}
    audit = config(ctx.db)["audit"][-1]
    assert (audit["action"], audit["detail"], audit["user_id"], audit["user_name"], audit["channel_id"]) == (
        "mute", f"lmarena/text until {to_text(until)}", str(MANAGER_ID), "grace", CHANNEL)

    at = NEW_MODEL.at + timedelta(days=1)
    another = NEW_MODEL._replace(subject="qwen3", model="Qwen3", at=at,
                                 dedupe_key=dedupe_key("new_model", "lmarena/text", "qwen3", "new", at))
    assert await deliver(ctx, bot, another, AIDER_LEADER) == 1  # the other board's alert arrives
    assert [p["embeds"][0]["title"] for p in fake.posts()] == ["New model on lmarena/text",
                                                               "New #1 on aider/polyglot"]
    held = ctx.db.execute("SELECT status, hold_until FROM outbox WHERE event_key = ?",
                          [another.dedupe_key]).fetchall()
    assert held == [("pending", to_text(until))]


async def test_unsubscribe_asks_first_then_removes_then_says_nothing_is_followed(
        alert: dict[str, Any], fake: FakeDiscord, ctx: CommandContext) -> None:
    key = NEW_MODEL.dedupe_key
    subscriptions = config(ctx.db)["subscriptions"]
    refused = await answered(fake, component_interaction(f"lw:unsubscribe:{key}", message=alert))
    assert "Only channel managers can change this channel's configuration (`unsubscribe`)" in text_of(refused)
    assert refused["components"] == []  # no question for those who may not answer it

    asked = await answered(fake, component_interaction(f"lw:unsubscribe:{key}", message=alert, **MANAGER))
    assert asked["embeds"][0]["title"] == "Unsubscribe?"
    assert asked["embeds"][0]["description"] == (
        "This channel will stop getting alerts from `lmarena/text` (every rule on it). "
        "Its other subscriptions stay.")
    assert buttons_of(asked) == [("Yes, unsubscribe", 4, f"lw:unsubscribe:{key}:yes")]
    assert config(ctx.db)["subscriptions"] == subscriptions  # nothing yet

    done = await answered(fake, component_interaction(f"lw:unsubscribe:{key}:yes", message=asked, **MANAGER))
    assert done["embeds"][0]["description"] == (
        "This channel no longer follows `lmarena/text` (1 rule removed).")
    assert [s["board_pattern"] for s in config(ctx.db)["subscriptions"]] == ["aider/polyglot"]
    assert config(ctx.db)["audit"][-1]["action"] == "unsubscribe"

    nothing = to_discord_words(NOT_SUBSCRIBED.format(board="lmarena/text", rule="new_model top=10"))
    again = await answered(fake, component_interaction(f"lw:unsubscribe:{key}", message=alert, **MANAGER))
    assert again["embeds"][0]["description"] == nothing and again["components"] == []
    twice = await answered(fake, component_interaction(f"lw:unsubscribe:{key}:yes", message=asked, **MANAGER))
    assert twice["embeds"][0]["description"] == nothing


async def test_a_button_whose_alert_is_gone_says_so(alert: dict[str, Any], fake: FakeDiscord,
                                                    ctx: CommandContext) -> None:
    with ctx.db.atomic():
        ctx.db.execute("DELETE FROM outbox")
        ctx.db.execute("DELETE FROM events WHERE dedupe_key = ?", [NEW_MODEL.dedupe_key])
    for custom_id, who in ((f"lw:why:{NEW_MODEL.dedupe_key}", {}),
                           (f"lw:unsubscribe:{NEW_MODEL.dedupe_key}", MANAGER)):
        answer = await answered(fake, component_interaction(custom_id, message=alert, **who))
        assert answer["embeds"][0]["description"] == f"⚠️ {ALERT_GONE}"
    assert len(config(ctx.db)["subscriptions"]) == 2


@pytest.mark.parametrize(("budget", "callback"), [(30.0, 4), (0.0, 5)], ids=["at once", "deferred"])
async def test_chart_answers_privately_with_the_png_attached(fake: FakeDiscord, ctx: CommandContext,
                                                             budget: float, callback: int) -> None:
    service = await started(fake, ctx, budget=budget)  # 0: every answer is deferred, as a slow chart's
    try:
        assert await deliver(ctx, service, NEW_MODEL) == 1
        [alert] = fake.posts()
        click = component_interaction(f"lw:chart:{NEW_MODEL.dedupe_key}", message=alert)
        answer = await answered(fake, click)
    finally:
        await service.stop()
    answering = ("PATCH", "webhooks/") if callback == 5 else ("POST", f"interactions/{click['id']}/")
    [request] = fake.made(*answering)
    assert fake.callbacks(click)[0]["type"] == callback
    assert fake.attachments(request)[CHART_FILE].data[:4] == b"\x89PNG"
    assert answer["embeds"][0]["image"]["url"] == f"attachment://{CHART_FILE}"
    assert "lmarena/text" in answer["embeds"][0]["title"]
    assert [(a["filename"], a["ephemeral"]) for a in answer["attachments"]] == [(CHART_FILE, True)]
    assert len(fake.posts()) == 1


async def test_a_button_posted_before_a_restart_still_works(fake: FakeDiscord, ctx: CommandContext) -> None:
    before = await started(fake, ctx)
    try:
        assert await deliver(ctx, before, NEW_MODEL) == 1
    finally:
        await before.stop()
    [alert] = fake.posts()
    after = await started(fake, ctx)  # a new process: a new client, nothing of the old one in memory
    try:
        assert not after.client.persistent_views
        answer = await answered(fake, component_interaction(f"lw:why:{NEW_MODEL.dedupe_key}", message=alert))
    finally:
        await after.stop()
    assert len(fake.identifies) == 2
    assert answer["embeds"][0]["title"] == "Why on lmarena/text"


async def test_a_failure_answering_a_click_is_apologised_for_with_an_error_id(
        alert: dict[str, Any], fake: FakeDiscord, ctx: CommandContext,
        caplog: pytest.LogCaptureFixture) -> None:
    ctx.db.conn.close()  # the database is gone: the question before Unsubscribe cannot be asked
    with caplog.at_level(logging.ERROR, "leaderwatch.bot.chat.discord_bot"):
        answer = await answered(fake, component_interaction(
            f"lw:unsubscribe:{NEW_MODEL.dedupe_key}", message=alert, **MANAGER))
    text = text_of(answer)
    assert "Sorry, something went wrong on our side" in text and "Traceback" not in text
    error_id = text.split("error id `")[1].split("`")[0]
    assert f"button lw:unsubscribe:{NEW_MODEL.dedupe_key} failed [error id {error_id}]" in caplog.text


# -- threads and edits through the sender ----------------------------------------------------------------

def alert_reply(event: Event = NEW_MODEL, **changes: Any) -> Reply:
    """An alert as the Dispatcher renders it, with its buttons."""
    return with_actions(event_reply(event, **changes), event, ["lmarena/text"])


async def test_follow_ups_go_in_one_thread_started_on_the_alert(bot: DiscordService,
                                                                fake: FakeDiscord) -> None:
    first = await bot.sender.send(CHANNEL, alert_reply(), "key-first")
    since = datetime.now(UTC) - timedelta(minutes=5)
    one = await bot.sender.send(CHANNEL, Reply(text="confirmed", title="Confirmed"), "key-one", thread=first)
    two = await bot.sender.send(CHANNEL, Reply(text="reversed", title="Reversed"), "key-two", thread=first)
    assert [p["id"] for p in fake.posts()] == [first]
    assert [p["id"] for p in fake.thread_posts(int(first))] == [one, two]
    assert fake.threads[int(first)]["id"] == first and fake.threads[int(first)]["name"] == "Confirmed"
    attempts = fake.made("POST", THREADS.format(first))
    assert len(attempts) == 2  # the second was answered 160004: the thread was there already
    # After a crash, the follow-ups are found in the thread; an unsent one is not.
    assert await bot.sender.already_delivered(CHANNEL, "key-two", since, thread=first) == two
    assert await bot.sender.already_delivered(CHANNEL, "key-three", since, thread=first) is None


async def test_an_edit_keeps_the_chart_and_the_buttons(bot: DiscordService, fake: FakeDiscord) -> None:
    first = await bot.sender.send(CHANNEL, replace(alert_reply(), image=b"\x89PNG chart"), "key-first")
    posted = fake.message(int(first))
    components = posted["components"]
    assert [a["filename"] for a in posted["attachments"]] == [CHART_FILE]
    await bot.sender.edit(CHANNEL, first, alert_reply(status="reversed on 2025-08-06"), "key-first")
    [patch] = fake.made("PATCH", f"channels/{CHANNEL_ID}/messages/{first}")
    assert "attachments" not in patch.body and patch.body["components"] == components
    edited = fake.message(int(first))
    assert edited["embeds"][0]["title"] == "New model on lmarena/text (reversed on 2025-08-06)"
    assert edited["components"] == components and edited["attachments"] == posted["attachments"]
    assert edited["embeds"][0]["footer"]["text"].endswith(f"ref {alert_ref('key-first')}")
    assert len(fake.edits[int(first)]) == 1


async def test_a_deleted_alert_is_message_gone_for_its_follow_ups_and_edits(bot: DiscordService,
                                                                           fake: FakeDiscord) -> None:
    first = await bot.sender.send(CHANNEL, alert_reply(), "key-first")
    fake.delete_message(CHANNEL_ID, int(first))
    with pytest.raises(DeliveryError) as reply:
        await bot.sender.send(CHANNEL, Reply(text="reversed"), "key-reply", thread=first)
    with pytest.raises(DeliveryError) as edit:
        await bot.sender.edit(CHANNEL, first, alert_reply(), "key-first")
    for raised in (reply.value, edit.value):
        assert raised.message_gone and not raised.channel_gone and not raised.retryable
    assert fake.threads == {} and fake.posts() == []


@pytest.mark.parametrize("refused", ["starting the thread", "posting in it"])
async def test_without_thread_permissions_follow_ups_reply_to_the_alert_in_the_channel(
        bot: DiscordService, fake: FakeDiscord, caplog: pytest.LogCaptureFixture, refused: str) -> None:
    first = await bot.sender.send(CHANNEL, alert_reply(), "key-first")
    since = datetime.now(UTC) - timedelta(minutes=5)
    path = THREADS.format(first) if refused == "starting the thread" else f"channels/{first}/messages"
    fake.fail("POST", path, Failure(403, {"message": "Missing Permissions", "code": 50013}, count=2))
    with caplog.at_level(logging.WARNING, "leaderwatch.bot.chat.discord_bot"):
        one = await bot.sender.send(CHANNEL, Reply(text="confirmed"), "key-one", thread=first)
        two = await bot.sender.send(CHANNEL, Reply(text="reversed"), "key-two", thread=first)
    assert [p["id"] for p in fake.posts()] == [first, one, two]
    assert fake.thread_posts(int(first)) == []
    replies = [r.body for r in fake.requests if r.method == "POST" and r.path == MESSAGES][1:]
    assert [r["message_reference"] for r in replies] == [
        {"type": 0, "message_id": int(first), "channel_id": CHANNEL_ID, "fail_if_not_exists": False}] * 2
    assert caplog.text.count("go in the channel as replies to their alert") == 1  # once per channel
    # Recovery finds a follow-up there too.
    assert await bot.sender.already_delivered(CHANNEL, "key-two", since, thread=first) == two


async def test_a_click_under_a_follow_up_in_the_thread_acts_on_the_channel(
        bot: DiscordService, fake: FakeDiscord, ctx: CommandContext) -> None:
    first = await bot.sender.send(CHANNEL, alert_reply(), "key-first")
    await bot.sender.send(CHANNEL, alert_reply(AIDER_LEADER), "key-follow", thread=first)
    [inside] = fake.thread_posts(int(first))
    click = component_interaction(f"lw:mute:{AIDER_LEADER.dedupe_key}", component_type=3, values=["1d"],
                                  message=inside, channel=fake.threads[int(first)], **MANAGER)
    answer = await answered(fake, click)
    assert answer["embeds"][0]["title"] == "Board muted"
    assert answer["channel_id"] == first  # answered in the thread...
    until = to_text(NOW + timedelta(days=1))
    assert channel_settings(ctx.db, "discord", CHANNEL) == {"mute_until:aider/polyglot": until}  # ...for it
    assert channel_settings(ctx.db, "discord", first) == {}


async def test_a_follow_up_in_a_channel_the_client_does_not_know_still_goes_in_a_thread(
        bot: DiscordService, fake: FakeDiscord) -> None:
    # As in http mode (no gateway, no channel cache): the thread is started through the REST route.
    elsewhere = CHANNEL_ID + 1  # not among the channels the gateway told the client of
    assert bot.client.get_channel(elsewhere) is None
    first = await bot.sender.send(str(elsewhere), alert_reply(), "key-first")
    one = await bot.sender.send(str(elsewhere), Reply(text="reversed", title="Reversed"), "key-one",
                                thread=first)
    assert [p["id"] for p in fake.posts(elsewhere)] == [first]
    assert [p["id"] for p in fake.thread_posts(int(first))] == [one]
    assert fake.threads[int(first)]["name"] == "Reversed"
    [started] = [r.body for r in fake.made("POST", f"channels/{elsewhere}/messages/{first}/threads")]
    assert started["auto_archive_duration"] == 1440


async def test_a_channel_refusing_the_reply_too_is_gone(bot: DiscordService, fake: FakeDiscord) -> None:
    first = await bot.sender.send(CHANNEL, alert_reply(), "key-first")
    fake.gone[CHANNEL_ID] = (403, 50013, "Missing Permissions")
    with pytest.raises(DeliveryError) as raised:
        await bot.sender.send(CHANNEL, Reply(text="reversed"), "key-one", thread=first)
    assert raised.value.channel_gone and not raised.value.message_gone
