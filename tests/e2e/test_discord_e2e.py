"""End to end through Discord: subscribe with an interaction, store a recorded snapshot that fires the
rule, deliver through the outbox, and see exactly one alert reach the fake Discord channel, also
across a 429, a restart between sending and confirming, and a channel that is gone.

Real pieces throughout: the discord.py client logged in and connected to the fake gateway, the
command layer, recorded LMArena snapshots stored as the poller stores them and run through the
Alerter, the Dispatcher with the DiscordSender, one SQLite file. Only Discord
(tests/bot/fake_discord.py) is stood in for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.bot.chat.discord_bot import ADMIN_GROUP, DiscordSender, DiscordService, alert_ref
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.lmarena import LmarenaSource
from leaderwatch.storage import outbox
from leaderwatch.storage.subscriptions import add_subscription
from tests.bot.fake_discord import (
    CHANNEL_ID,
    MANAGER,
    MANAGER_ID,
    Failure,
    FakeDiscord,
    interaction_json,
    keep_endpoints,
    settings_for,
)
from tests.helpers import Clock, build_context

T0 = datetime(2025, 12, 11, 6, 0, tzinfo=UTC)
MESSAGES = f"channels/{CHANNEL_ID}/messages"


@pytest.fixture(scope="module")
def text_history(excerpts: Path) -> list[Snapshot]:
    """LMArena's text board on 2025-11-06 and on 2025-12-11, when gemini-3-pro took #1."""
    source = LmarenaSource(Identity.load())
    wanted = ("leaderboard-text_2025-11-06.json", "leaderboard-text_2025-12-11.json")
    recs = sorted((r for r in source.recordings(excerpts) if r.path.name in wanted), key=lambda r: r.as_of)
    return [snap for rec in recs for snap in source.load(rec)]


@pytest.fixture
def clock() -> Clock:
    """The service's clock, shared with the fake Discord's message ids."""
    return Clock(T0)


@pytest.fixture
def ctx(fresh_db: Database, clock: Clock) -> CommandContext:
    return build_context(fresh_db, clock)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord(clock=lambda: clock().timestamp()).start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


def service_for(fake: FakeDiscord, ctx: CommandContext, **changes: Any) -> DiscordService:
    return DiscordService(settings_for(fake, **changes), ctx, guild_ready_timeout=0.05, reconnect=False,
                          ready_timeout=5.0)


@pytest.fixture
async def bot(fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[DiscordService]:
    service = service_for(fake, ctx)
    assert await service.start()
    yield service
    await service.stop()


def ingest(ctx: CommandContext, snap: Snapshot) -> int:
    """Store a snapshot as the poller does and run the rules on it; how many outbox rows it queued."""
    before = sum(outbox.depth(ctx.db).values())
    alerter = Alerter(ctx.db, ctx.default_rules, ctx.groups, ctx.clock)
    with ctx.db.atomic():
        for stored in store_all(ctx.db, [snap], "recording"):
            if stored.result.stored:
                alerter.on_change(stored)
    return sum(outbox.depth(ctx.db).values()) - before


def dispatcher(ctx: CommandContext, senders: dict[str, Any]) -> Dispatcher:
    urls = {board_id: board.url for board_id, board in ctx.boards.items()}
    return Dispatcher(ctx.db, senders, ctx.clock, board_urls=urls, jitter=lambda: 0.0)


def statuses(ctx: CommandContext) -> list[str]:
    return [str(r["status"]) for r in ctx.db.table("outbox").rows]


@pytest.fixture
async def queued(bot: DiscordService, fake: FakeDiscord, ctx: CommandContext, clock: Clock,
                 text_history: list[Snapshot]) -> DiscordService:
    """The channel subscribed through `/leaderwatch-admin subscribe`, and the new #1 queued for it."""
    older, newer = text_history
    assert ingest(ctx, older) == 0
    callback = await fake.interact(interaction_json(
        ADMIN_GROUP, "subscribe", {"board_pattern": "lmarena/text", "rules": "new_leader"}, **MANAGER))
    [embed] = callback["data"]["embeds"]
    assert "This channel now follows `lmarena/text` with 1 rule" in embed["description"]
    clock.advance(3600)
    assert ingest(ctx, newer) == 1  # new_leader only: the new_model events go to nobody
    return bot


def assert_the_new_leader_alert(message: dict[str, Any], ctx: CommandContext) -> None:
    [embed] = message["embeds"]
    assert embed["title"] == "New #1 on lmarena/text"
    assert "gemini-3-pro (Google, US)" in embed["description"]
    assert embed["url"] == "https://arena.ai/leaderboard/text"
    [row] = ctx.db.table("outbox").rows
    assert embed["footer"]["text"].endswith(f"ref {alert_ref(row['delivery_key'])}")


async def test_a_subscribed_channel_gets_the_alert_exactly_once(queued: DiscordService, fake: FakeDiscord,
                                                               ctx: CommandContext) -> None:
    deliver = dispatcher(ctx, {"discord": queued.sender})
    assert await deliver.run_once() == 1
    assert await deliver.run_once() == 0
    [message] = fake.posts()
    assert_the_new_leader_alert(message, ctx)
    assert statuses(ctx) == ["delivered"]
    assert len(fake.made("POST", MESSAGES)) == 1


async def test_a_429_is_waited_out_and_the_alert_arrives_once(queued: DiscordService, fake: FakeDiscord,
                                                             ctx: CommandContext) -> None:
    fake.fail("POST", MESSAGES, Failure(
        429, {"message": "You are being rate limited.", "retry_after": 0.01, "global": False},
        {"Via": "1.1 google", "X-RateLimit-Scope": "user"}))
    deliver = dispatcher(ctx, {"discord": queued.sender})
    assert await deliver.run_once() == 1
    assert await deliver.run_once() == 0
    assert len(fake.made("POST", MESSAGES)) == 2  # refused once, sent once
    [message] = fake.posts()
    assert_the_new_leader_alert(message, ctx)


async def test_a_cloudflare_429_is_retried_by_the_dispatcher_and_arrives_once(
        queued: DiscordService, fake: FakeDiscord, ctx: CommandContext, clock: Clock) -> None:
    fake.fail("POST", MESSAGES, Failure(429, {"message": "blocked", "retry_after": 2, "global": True},
                                        {"Retry-After": "2"}))  # no Via: discord.py does not retry it
    deliver = dispatcher(ctx, {"discord": queued.sender})
    assert await deliver.run_once() == 0
    assert statuses(ctx) == ["pending"] and fake.posts() == []
    clock.advance(3)
    assert await deliver.run_once() == 1
    assert len(fake.posts()) == 1 and not fake.made("GET", MESSAGES)  # refused for sure: no history check


class KilledAfterSending:
    """The DiscordSender, with the process killed right after Discord took the message."""

    platform = "discord"

    def __init__(self, sender: DiscordSender) -> None:
        self.sender = sender

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        await self.sender.send(channel_id, reply, delivery_key, thread)
        raise asyncio.CancelledError

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        await self.sender.edit(channel_id, message_ref, reply, delivery_key)

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        return await self.sender.already_delivered(channel_id, delivery_key, since, thread)


async def test_a_restart_between_sending_and_confirming_does_not_post_twice(
        queued: DiscordService, fake: FakeDiscord, ctx: CommandContext, clock: Clock) -> None:
    with pytest.raises(asyncio.CancelledError):
        await dispatcher(ctx, {"discord": KilledAfterSending(queued.sender)}).run_once()
    assert statuses(ctx) == ["sending"] and len(fake.posts()) == 1
    clock.advance(600)  # past Discord's nonce window: only the history can tell
    assert await dispatcher(ctx, {"discord": queued.sender}).run_once() == 1
    assert statuses(ctx) == ["delivered"]
    assert len(fake.posts()) == 1 and len(fake.made("POST", MESSAGES)) == 1
    assert fake.made("GET", MESSAGES)  # found in the channel's history by its ref


@pytest.mark.parametrize(("status", "code", "message"), [(404, 10003, "Unknown Channel"),
                                                          (403, 50001, "Missing Access")])
async def test_a_channel_that_is_gone_disables_its_subscription_with_the_reason(
        queued: DiscordService, fake: FakeDiscord, ctx: CommandContext, clock: Clock, status: int, code: int,
        message: str) -> None:
    fake.gone[CHANNEL_ID] = (status, code, message)
    deliver = dispatcher(ctx, {"discord": queued.sender})
    for _ in range(3):  # not trusted at once: three failures in a row, a minute apart
        assert await deliver.run_once() == 0
        clock.advance(61)
    [sub] = ctx.db.table("subscriptions").rows
    assert sub["disabled_at"] is not None
    assert message in sub["disabled_reason"] and "discord channel unreachable" in sub["disabled_reason"]
    assert statuses(ctx) == ["failed"] and fake.posts() == []
    assert [a["action"] for a in ctx.db.table("audit").rows] == ["subscribe", "disable"]
    # The channel's managers can read why in /leaderwatch-admin settings.
    callback = await fake.interact(interaction_json(ADMIN_GROUP, "settings", {}, **MANAGER))
    fields = [f for e in callback["data"]["embeds"] for f in e.get("fields") or []]
    disabled = [f for f in fields if f["name"] == "Disabled"]
    assert disabled and message in disabled[0]["value"]


async def test_a_bad_token_keeps_discord_off_and_its_alerts_queued(
        fake: FakeDiscord, ctx: CommandContext, clock: Clock, text_history: list[Snapshot],
        caplog: pytest.LogCaptureFixture) -> None:
    older, newer = text_history
    ingest(ctx, older)
    add_subscription(ctx.db, "discord", str(CHANNEL_ID), "lmarena/text", "new_leader", str(MANAGER_ID),
                     clock())
    clock.advance(3600)
    assert ingest(ctx, newer) == 1

    refused = service_for(fake, ctx, discord_token="not-the-token")
    with caplog.at_level(logging.ERROR, "leaderwatch.bot.chat.discord_bot"):
        assert await refused.start() is False  # logged, not raised: the rest of the service runs on
    assert "DISCORD_TOKEN was rejected (401 Unauthorized)" in caplog.text
    assert "not-the-token" not in caplog.text
    assert fake.identifies == [] and not fake.made("PUT", "applications/")
    await refused.stop()

    # Without a Discord sender, the dispatcher keeps the alert for when Discord is back.
    assert await dispatcher(ctx, {}).run_once() == 0
    assert statuses(ctx) == ["pending"]

    fixed = service_for(fake, ctx)
    assert await fixed.start()
    try:
        assert await dispatcher(ctx, {"discord": fixed.sender}).run_once() == 1
        assert len(fake.posts()) == 1
    finally:
        await fixed.stop()
