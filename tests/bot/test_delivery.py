"""The dispatcher delivers each queued alert once, in order, through retries, mutes, digests and crashes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from leaderwatch.alerts.formatting import Reply, digest_reply, event_reply
from leaderwatch.alerts.matching import hold_for, match
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot.commands.actions import with_actions
from leaderwatch.bot.pipeline.delivery import (
    BASE_DELAY,
    GONE_THRESHOLD,
    MAX_DELAY,
    DeliveryError,
    Dispatcher,
    digest_key,
    retry_delay,
)
from leaderwatch.storage import outbox
from leaderwatch.storage.db import open_db
from leaderwatch.storage.events import save_events
from leaderwatch.storage.subscriptions import (
    active_subscriptions,
    add_subscription,
    audit_trail,
    channel_settings,
    channel_subscriptions,
    set_channel_setting,
)
from tests.helpers import Clock, wait_until

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)  # a Monday, 08:00 UTC
RULE = "overtake groups=china,west"
URLS = {"lmarena/text": "https://lmarena.ai/leaderboard/text"}


# --- the fakes: a platform (what the channels show) and a sender talking to it ---------------------

class Killed(BaseException):
    """Stands for the process dying mid-delivery (nothing in the dispatcher may catch it)."""


@dataclass
class Platform:
    """What each channel shows: (delivery key, reply) per message, in arrival order; each message has
    an id (`m1`, `m2`...), may have a thread of replies, may be edited or deleted."""

    channels: dict[str, list[tuple[str, Reply]]] = field(default_factory=dict)
    threads: dict[str, list[tuple[str, Reply]]] = field(default_factory=dict)
    """Message id -> the replies in its thread."""
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    """(channel or thread, delivery key) -> message id."""
    edits: list[tuple[str, Reply]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)

    def post(self, channel_id: str, key: str, reply: Reply, thread: str | None = None) -> str:
        if thread is not None:
            if thread in self.deleted or thread not in self.ids.values():
                raise DeliveryError(f"message {thread} was deleted", message_gone=True)
            self.threads.setdefault(thread, []).append((key, reply))
        else:
            self.channels.setdefault(channel_id, []).append((key, reply))
        ref = f"m{len(self.ids) + 1}"
        self.ids[(thread or channel_id, key)] = ref
        return ref

    def edit(self, ref: str, reply: Reply) -> None:
        if ref in self.deleted or ref not in self.ids.values():
            raise DeliveryError(f"message {ref} was deleted", message_gone=True)
        self.edits.append((ref, reply))

    def has(self, channel_id: str, key: str, thread: str | None = None) -> str | None:
        where = self.threads.get(thread, []) if thread else self.channels.get(channel_id, [])
        return self.ids[(thread or channel_id, key)] if any(k == key for k, _ in where) else None

    def messages(self, channel_id: str) -> list[Reply]:
        return [r for _, r in self.channels.get(channel_id, [])]

    def replies(self, ref: str) -> list[Reply]:
        return [r for _, r in self.threads.get(ref, [])]


class FakeSender:
    """A real Sender against a `Platform`; fails its next calls with the DeliveryErrors given.

    `fail` (one list for every channel, or a list per channel) is consumed one entry per `send`:
    a DeliveryError to raise, `"crash-before"` (die before
    the platform gets it), `"crash-after"` (die after the platform accepted it), `"land-then-500"`
    (the platform got it but the answer was lost), or None (succeed).
    """

    def __init__(self, platform: Platform, clock: Clock,
                 fail: list[object] | dict[str, list[object]] | None = None,
                 can_tell: bool = True, name: str = "slack") -> None:
        self.platform_state, self.clock, self.can_tell = platform, clock, can_tell
        plans = fail if isinstance(fail, dict) else {"*": fail or []}
        self.fail = {channel: list(plan) for channel, plan in plans.items()}
        self.platform = name
        self.attempts: list[tuple[datetime, str, str]] = []  # (when, channel, key) of every send call
        self.checks: list[tuple[str, str, datetime]] = []
        self.edit_attempts: list[tuple[str, str]] = []
        self.check_errors: list[DeliveryError] = []

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        return await self._call(channel_id, delivery_key,
                                lambda: self.platform_state.post(channel_id, delivery_key, reply, thread))

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        self.edit_attempts.append((channel_id, message_ref))
        await self._call(channel_id, delivery_key, lambda: self.platform_state.edit(message_ref, reply))

    async def _call(self, channel_id: str, delivery_key: str, act: Callable[[], T]) -> T:
        await asyncio.sleep(0)
        self.attempts.append((self.clock(), channel_id, delivery_key))
        plan = self.fail.get(channel_id, self.fail.get("*", []))
        outcome = plan.pop(0) if plan else None
        if isinstance(outcome, DeliveryError):
            raise outcome
        if outcome == "crash-before":
            raise Killed
        done = act()
        if outcome == "crash-after":
            raise Killed
        if outcome == "land-then-500":
            raise DeliveryError("HTTP 502 from chat.postMessage", retryable=True)
        return done

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        self.checks.append((channel_id, delivery_key, since))
        if self.check_errors:
            raise self.check_errors.pop(0)
        return self.platform_state.has(channel_id, delivery_key, thread) if self.can_tell else None


def rate_limited(after: float) -> DeliveryError:
    return DeliveryError("429 ratelimited", retryable=True, retry_after=after)


def server_error() -> DeliveryError:
    return DeliveryError("HTTP 503 from chat.postMessage", retryable=True)


def gone() -> DeliveryError:
    return DeliveryError("channel_not_found", channel_gone=True)


# --- building outbox rows the way the poller does ----------------------------------------------------

def overtake(n: int, board: str = "lmarena/text", minutes: int = 0) -> Event:
    """The n-th of a series of real-looking overtakes (a Chinese model passing a Western one)."""
    at = T0 + timedelta(minutes=minutes)
    pairs = [("DeepSeek-R1", "o1-preview"), ("Qwen2.5-Max", "Claude 3.5 Sonnet"),
             ("GLM-4-Plus", "Gemini-1.5-Pro"), ("Kimi-k1.5", "GPT-4o"), ("Hunyuan-Large", "Llama-3.1-405B")]
    model, other = pairs[n % len(pairs)]
    return Event(kind="overtake", board=board, at=at, rule=RULE, subject="china>west", model=model,
                 other=other, groups=("china", "west"), rank_before=4 + n, rank_after=3 + n,
                 score_before=1350.0 - n, score_after=1362.5 - n, confidence="clear",
                 message=f"{board}: {model} (china) passed {other} (west)",
                 dedupe_key=dedupe_key("overtake", board, "china>west", f"{model}>{other}", at))


def alert(event: Event, url: str = "", patterns: tuple[str, ...] = ("lmarena/*",)) -> Reply:
    """An alert as a channel subscribed to `patterns` gets it: the event's reply and its buttons."""
    return with_actions(event_reply(event, url), event, patterns)


def subscribe(db, channel: str, pattern: str = "lmarena/*", platform: str = "slack") -> None:
    with db.atomic():
        add_subscription(db, platform, channel, pattern, RULE, "U0ADMIN", T0)


def queue(db, events: list[Event], now: datetime) -> int:
    """What `Alerter.on_change` does in the poll's transaction: store, match, hold, enqueue."""
    with db.atomic():
        save_events(db, events, None, now)
        deliveries = match(events, active_subscriptions(db))
        return outbox.enqueue(db, deliveries, now, lambda d: hold_for(
            channel_settings(db, d.platform, d.channel_id), now, d.event.board))


def statuses(db) -> dict[str, int]:
    return outbox.depth(db)


def dispatcher(db, sender: FakeSender, clock: Clock) -> Dispatcher:
    return Dispatcher(db, {sender.platform: sender}, clock, clock.sleep, URLS, jitter=lambda: 0.0)


async def run_until(dispatcher_: Dispatcher, clock: Clock, done, limit: float = 3600.0,
                    interval: float = 1.0) -> None:
    """Run the dispatcher loop on the fake clock until `done()` or `limit` seconds pass."""
    stop = asyncio.Event()
    end = clock.now + timedelta(seconds=limit)

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if done() or clock.now >= end:
            stop.set()

    dispatcher_.sleep = sleep
    await asyncio.wait_for(dispatcher_.run(stop, interval=interval), timeout=10)


@pytest.fixture
def db(fresh_db):
    return fresh_db


# --- delivery -------------------------------------------------------------------------------------

async def test_each_alert_is_delivered_once_in_order(db, caplog: pytest.LogCaptureFixture) -> None:
    subscribe(db, "C1")
    subscribe(db, "C2", "lmarena/text")
    subscribe(db, "C3", "openrouter/*")
    events = [overtake(0), overtake(1, minutes=1), overtake(2, "lmarena/vision", minutes=2)]
    assert queue(db, events, T0) == 5
    assert queue(db, events, T0) == 0  # the same events found again (a replay) queue nothing
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock)
    with caplog.at_level(logging.INFO, logger="leaderwatch.bot.pipeline.delivery"):
        assert await dispatcher(db, sender, clock).run_once() == 5
    assert await dispatcher(db, sender, clock).run_once() == 0
    assert platform.messages("C1") == [alert(events[0], URLS["lmarena/text"]),
                                       alert(events[1], URLS["lmarena/text"]), alert(events[2])]
    assert platform.messages("C2") == [alert(events[0], URLS["lmarena/text"], ("lmarena/text",)),
                                       alert(events[1], URLS["lmarena/text"], ("lmarena/text",))]
    assert "C3" not in platform.channels
    assert len(sender.attempts) == 5 and sender.checks == []
    assert statuses(db) == {"delivered": 5}
    delivered = [r for r in caplog.records if r.getMessage().startswith("delivered alert")]
    assert len(delivered) == 5
    assert "to slack:C1 (key " in delivered[0].getMessage()


async def test_alerts_for_a_platform_without_adapter_wait(db) -> None:
    subscribe(db, "C1")
    subscribe(db, "123456789", platform="discord")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    assert await dispatcher(db, FakeSender(platform, clock), clock).run_once() == 1
    assert statuses(db) == {"delivered": 1, "pending": 1}  # kept for when a Discord adapter runs
    discord = FakeSender(platform, clock, name="discord")
    assert await dispatcher(db, discord, clock).run_once() == 1
    assert [c for _, c, _ in discord.attempts] == ["123456789"]


async def test_a_rate_limited_alert_waits_as_asked_and_arrives_once(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail=[rate_limited(30)])
    d = dispatcher(db, sender, clock)
    await run_until(d, clock, lambda: platform.channels.get("C1"))
    assert len(platform.messages("C1")) == 1
    (first, *_), (second, *_) = sender.attempts
    assert second - first >= timedelta(seconds=30)  # never earlier than asked
    assert second - first <= timedelta(seconds=32)  # and not much later (1 s loop interval)
    assert sender.checks == []  # a 429 means the platform refused it: no need to look before resending
    assert statuses(db) == {"delivered": 1}
    assert outbox.item(db, 1).attempts == 2


async def test_retry_after_is_honoured_to_the_second(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    clock = Clock(T0 + timedelta(milliseconds=700))
    sender = FakeSender(Platform(), clock, fail=[rate_limited(2)])
    d = dispatcher(db, sender, clock)
    assert await d.run_once() == 0
    clock.now = T0 + timedelta(seconds=2, milliseconds=699)  # stored times are whole seconds
    assert await d.run_once() == 0
    clock.now = T0 + timedelta(seconds=3)
    assert await d.run_once() == 1


async def test_server_errors_back_off_longer_each_time(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail=[server_error()] * 4)
    await run_until(dispatcher(db, sender, clock), clock, lambda: platform.channels.get("C1"), interval=0.5)
    times = [t for t, _, _ in sender.attempts]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [5, 10, 20, 40]  # jitter 0 here; the loop wakes every 0.5 s
    assert len(platform.messages("C1")) == 1


@pytest.mark.parametrize(("attempts", "retry_after", "jitter", "expected"), [
    (1, None, 0.0, 5.0),
    (2, None, 0.0, 10.0),
    (3, None, 0.0, 20.0),
    (3, None, 0.999, 20.0 * 1.1998),
    (8, None, 0.0, 640.0),
    (9, None, 0.0, MAX_DELAY),
    (50, None, 0.5, MAX_DELAY),
    (1, 30.0, 0.0, 30.0),
    (1, 30.0, 0.5, 30.5),  # the platform's wait, plus under a second of jitter
    (7, 2.0, 0.0, 2.0),  # the platform said 2 s: the backoff does not override it
    (1, 3600.0, 0.0, 3600.0),  # longer than the cap: still never earlier than asked
])
def test_retry_delay(attempts: int, retry_after: float | None, jitter: float, expected: float) -> None:
    assert retry_delay(attempts, retry_after, jitter) == pytest.approx(expected, rel=1e-3)


def test_jitter_keeps_backoff_growing() -> None:
    assert BASE_DELAY == 5.0
    for attempts in range(1, 8):
        assert retry_delay(attempts, None, 0.999) < retry_delay(attempts + 1, None, 0.0)


async def test_a_retry_does_not_let_later_alerts_overtake(db) -> None:
    subscribe(db, "C1")
    subscribe(db, "C2")
    events = [overtake(0), overtake(1, minutes=1), overtake(2, minutes=2)]
    queue(db, events, T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail={"C1": [server_error()]})  # C1's first alert fails once
    d = dispatcher(db, sender, clock)
    assert await d.run_once() == 3  # C2 is not held up by C1
    assert platform.messages("C1") == []
    clock.advance(5)
    assert await d.run_once() == 3
    expected = [alert(e, URLS["lmarena/text"]) for e in events]
    assert platform.messages("C1") == expected
    assert platform.messages("C2") == expected


async def test_a_send_that_landed_before_an_error_is_not_repeated(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail=["land-then-500"])
    d = dispatcher(db, sender, clock)
    assert await d.run_once() == 0
    clock.advance(5)
    assert await d.run_once() == 1
    assert len(platform.messages("C1")) == 1 and len(sender.attempts) == 1
    assert [(c, k) for c, k, _ in sender.checks] == [("C1", outbox.item(db, 1).delivery_key)]
    assert sender.checks[0][2] <= T0  # it looks back from before the row was created


# --- permanent failures -------------------------------------------------------------------------

async def test_a_channel_gone_is_disabled_after_repeated_failures(
        db, caplog: pytest.LogCaptureFixture) -> None:
    subscribe(db, "C1")
    subscribe(db, "C1", "openrouter/*")
    subscribe(db, "C2")
    queue(db, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail={"C1": [gone()] * 10})
    d = dispatcher(db, sender, clock)
    with caplog.at_level(logging.INFO, logger="leaderwatch.bot.pipeline.delivery"):
        await run_until(d, clock, lambda: not channel_subscriptions(db, "slack", "C1"))
    c1 = [t for t, c, _ in sender.attempts if c == "C1"]
    assert len(c1) == GONE_THRESHOLD
    assert all(b - a >= timedelta(seconds=60) for a, b in zip(c1, c1[1:], strict=False))
    rows = channel_subscriptions(db, "slack", "C1", include_disabled=True)
    assert len(rows) == 2
    assert {r["disabled_reason"] for r in rows} == {
        "slack channel unreachable (3 failures in a row): channel_not_found"}
    assert all(r["disabled_at"] for r in rows)
    assert [r.status for r in map(lambda i: outbox.item(db, i), range(1, 5))].count("failed") == 2
    assert len(platform.messages("C2")) == 2 and platform.messages("C1") == []
    assert audit_trail(db, "slack", "C1")[0]["action"] == "disable"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "disabled 2 subscription(s) of slack:C1" in errors[0].getMessage()
    # Nothing more goes to C1, and new events no longer queue for it.
    queue(db, [overtake(2, minutes=5)], clock.now)
    clock.advance(3600)
    before = len(sender.attempts)
    assert await d.run_once() == 1
    assert [c for _, c, _ in sender.attempts[before:]] == ["C2"]


async def test_a_success_resets_the_gone_count(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(n, minutes=n) for n in range(3)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail=[gone(), gone(), None, gone(), gone(), None, None])
    await run_until(dispatcher(db, sender, clock), clock, lambda: len(platform.messages("C1")) == 3)
    assert len(platform.messages("C1")) == 3
    assert len(channel_subscriptions(db, "slack", "C1")) == 1


async def test_another_permanent_error_fails_only_that_alert(db, caplog: pytest.LogCaptureFixture) -> None:
    subscribe(db, "C1")
    events = [overtake(0), overtake(1, minutes=1)]
    queue(db, events, T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock, fail=[DeliveryError("invalid_blocks")])
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.pipeline.delivery"):
        assert await dispatcher(db, sender, clock).run_once() == 1
    assert platform.messages("C1") == [alert(events[1], URLS["lmarena/text"])]
    assert outbox.item(db, 1).status == "failed" and outbox.item(db, 1).last_error == "invalid_blocks"
    assert len(channel_subscriptions(db, "slack", "C1")) == 1
    assert ["failed permanently: invalid_blocks" in r.getMessage() for r in caplog.records] == [True]


# --- mutes and digests ----------------------------------------------------------------------------

async def test_a_muted_channel_gets_its_alerts_when_the_mute_ends(db) -> None:
    subscribe(db, "C1")
    subscribe(db, "C2")
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "mute_until", (T0 + timedelta(hours=2)).isoformat(), T0)
    events = [overtake(0), overtake(1, minutes=30)]
    queue(db, events[:1], T0)
    platform, clock = Platform(), Clock(T0)
    d = dispatcher(db, FakeSender(platform, clock), clock)
    assert await d.run_once() == 1  # C2 only
    clock.advance(30 * 60)
    queue(db, events[1:], clock.now)
    assert await d.run_once() == 1
    clock.now = T0 + timedelta(hours=2) - timedelta(seconds=1)
    assert await d.run_once() == 0
    assert platform.messages("C1") == []
    clock.now = T0 + timedelta(hours=2)
    assert await d.run_once() == 2
    assert platform.messages("C1") == [alert(e, URLS["lmarena/text"]) for e in events]


async def test_unmute_releases_held_alerts(db) -> None:
    subscribe(db, "C1")
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "mute_until", (T0 + timedelta(days=1)).isoformat(), T0)
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    d = dispatcher(db, FakeSender(platform, clock), clock)
    assert await d.run_once() == 0
    clock.advance(60)
    outbox.rehold(db, "slack", "C1", clock.now, lambda board: None)
    assert await d.run_once() == 1


async def test_a_digest_channel_gets_one_message_at_the_digest_hour(db) -> None:
    subscribe(db, "C1")
    subscribe(db, "C2")
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "digest", "daily", T0)
        set_channel_setting(db, "slack", "C1", "digest_hour", "9", T0)
    events = [overtake(0), overtake(1, minutes=20), overtake(2, "lmarena/vision", minutes=40)]
    platform, clock = Platform(), Clock(T0)
    d = dispatcher(db, FakeSender(platform, clock), clock)
    for event in events:
        clock.now = event.at
        queue(db, [event], clock.now)
        await d.run_once()
    assert len(platform.messages("C2")) == 3
    clock.now = T0 + timedelta(minutes=59, seconds=59)
    assert await d.run_once() == 0
    clock.now = T0 + timedelta(hours=1)  # 09:00
    assert await d.run_once() == 3
    keys = [outbox.item(db, i).delivery_key for i in (1, 3, 5)]
    assert [outbox.item(db, i).digest for i in (1, 3, 5)] == ["daily"] * 3
    assert platform.channels["C1"] == [(digest_key(keys), digest_reply(events, "daily"))]
    assert platform.messages("C1")[0].title == "leaderwatch daily digest: 3 alert(s)"
    assert statuses(db) == {"delivered": 6}
    assert await d.run_once() == 0


# --- crashes --------------------------------------------------------------------------------------

async def test_killed_after_queueing_a_new_dispatcher_delivers_each_once(tmp_path: Path) -> None:
    path = tmp_path / "lw.db"
    first = open_db(path)
    subscribe(first, "C1")
    subscribe(first, "C2")
    queue(first, [overtake(0), overtake(1, minutes=1)], T0)
    first.close()  # the process dies before any delivery
    platform, clock = Platform(), Clock(T0)
    db = open_db(path)
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 4
    assert await dispatcher(db, sender, clock).run_once() == 0
    assert [len(platform.messages(c)) for c in ("C1", "C2")] == [2, 2]
    assert len(sender.attempts) == 4
    db.close()


@pytest.mark.parametrize(("crash", "resent"), [("crash-after", False), ("crash-before", True)])
async def test_killed_between_claim_and_confirmation(tmp_path: Path, crash: str, resent: bool) -> None:
    """(b) the platform accepted it: found, not resent; (c) it never got there: resent once."""
    path = tmp_path / "lw.db"
    first = open_db(path)
    subscribe(first, "C1")
    queue(first, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0)
    with pytest.raises(Killed):
        await dispatcher(first, FakeSender(platform, clock, fail=[crash]), clock).run_once()
    db = open_db(path)  # the restarted process: a new connection, a new dispatcher, a new sender
    assert [r.id for r in outbox.in_flight(db)] == [1]  # the claim was committed before the call
    first.close()
    clock.advance(60)
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 2
    key = outbox.item(db, 1).delivery_key
    assert [(c, k) for c, k, _ in sender.checks] == [("C1", key)]
    assert [k for _, _, k in sender.attempts] == ([key] if resent else []) + [outbox.item(db, 2).delivery_key]
    assert len(platform.messages("C1")) == 2  # none twice, none lost, still in order
    assert platform.messages("C1")[0].title == "Overtake on lmarena/text"
    assert platform.channels["C1"][0][0] == key
    assert statuses(db) == {"delivered": 2}
    db.close()


async def test_a_digest_interrupted_after_it_went_out_is_not_resent(tmp_path: Path) -> None:
    path = tmp_path / "lw.db"
    first = open_db(path)
    subscribe(first, "C1")
    with first.atomic():
        set_channel_setting(first, "slack", "C1", "digest", "weekly", T0)
    queue(first, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0 + timedelta(hours=1))  # Monday 09:00
    with pytest.raises(Killed):
        await dispatcher(first, FakeSender(platform, clock, fail=["crash-after"]), clock).run_once()
    first.close()
    db = open_db(path)
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 2
    assert sender.attempts == [] and len(platform.messages("C1")) == 1
    assert statuses(db) == {"delivered": 2}
    db.close()


async def test_a_sender_that_cannot_tell_resends_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "lw.db"
    db = open_db(path)
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    with pytest.raises(Killed):
        await dispatcher(db, FakeSender(platform, clock, fail=["crash-before"]), clock).run_once()
    sender = FakeSender(platform, clock, can_tell=False)
    assert await dispatcher(db, sender, clock).run_once() == 1
    assert len(sender.attempts) == 1 and len(sender.checks) == 1  # asked once at recovery, not again
    db.close()


async def test_recovery_waits_when_the_platform_cannot_be_asked(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lw.db")
    subscribe(db, "C1")
    queue(db, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0)
    with pytest.raises(Killed):
        await dispatcher(db, FakeSender(platform, clock, fail=["crash-after"]), clock).run_once()
    sender = FakeSender(platform, clock)
    sender.check_errors = [DeliveryError("HTTP 503 from conversations.history", retryable=True)]
    d = dispatcher(db, sender, clock)
    assert await d.run_once() == 0  # row 1 stays in flight, and row 2 must not overtake it
    assert sender.attempts == [] and [r.id for r in outbox.in_flight(db)] == [1]
    assert await d.run_once() == 2
    assert len(platform.messages("C1")) == 2 and len(sender.attempts) == 1
    db.close()


CHILD = """
import asyncio, json, os, signal, sys
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from leaderwatch.alerts.formatting import Reply
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.storage.db import open_db

db_path, log_path, when, crash = sys.argv[1:]

class DyingSender:
    platform = "slack"
    async def send(self, channel_id, reply: Reply, delivery_key, thread=None):
        if crash == "crash-after":
            with open(log_path, "a") as f:
                f.write(json.dumps([channel_id, delivery_key, reply.title]) + "\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    async def edit(self, channel_id, message_ref, reply, delivery_key):
        raise AssertionError("no edit is queued")
    async def already_delivered(self, channel_id, delivery_key, since, thread=None):
        return None

now = datetime.fromisoformat(when)
asyncio.run(Dispatcher(open_db(db_path), {"slack": DyingSender()}, lambda: now).run_once())
"""


@pytest.mark.parametrize("crash", ["crash-after", "crash-before"])
async def test_a_real_sigkill_mid_delivery_loses_nothing_and_repeats_nothing(
        tmp_path: Path, crash: str) -> None:
    """The child process dies by SIGKILL inside `send`, after or before the platform got the alert."""
    path, log = tmp_path / "lw.db", tmp_path / "platform.jsonl"
    db = open_db(path)
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    db.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(log), T0.isoformat(), crash],
                           cwd=REPO, env=env, capture_output=True, timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()

    class FileSender(FakeSender):
        """The platform is the file the killed process wrote to."""

        async def send(self, channel_id: str, reply: Reply, delivery_key: str,
                       thread: str | None = None) -> str:
            self.attempts.append((self.clock(), channel_id, delivery_key))
            with log.open("a") as f:
                f.write(json.dumps([channel_id, delivery_key, reply.title]) + "\n")
            return delivery_key

        async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                    thread: str | None = None) -> str | None:
            self.checks.append((channel_id, delivery_key, since))
            lines = log.read_text().splitlines() if log.exists() else []
            found = any(json.loads(line)[:2] == [channel_id, delivery_key] for line in lines)
            return delivery_key if found else None

    db = open_db(path)
    assert outbox.item(db, 1).status == "sending"
    clock = Clock(T0 + timedelta(minutes=1))
    sender = FileSender(Platform(), clock)
    assert await dispatcher(db, sender, clock).run_once() == 1
    assert len(log.read_text().splitlines()) == 1  # exactly one copy reached the platform
    assert len(sender.checks) == 1 and len(sender.attempts) == (0 if crash == "crash-after" else 1)
    assert statuses(db) == {"delivered": 1}
    db.close()


# --- the loop -------------------------------------------------------------------------------------

async def test_run_stops_when_asked_and_wakes_for_new_alerts(db) -> None:
    subscribe(db, "C1")
    platform, clock = Platform(), Clock(T0)
    pausing: list[float] = []

    async def real_sleep(seconds: float) -> None:
        pausing.append(seconds)
        await asyncio.sleep(seconds)

    d = Dispatcher(db, {"slack": FakeSender(platform, clock)}, clock, real_sleep, URLS)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop, interval=3600))
    # Queued only once the first (empty) round is over and the loop sleeps: only the wake can deliver it.
    await wait_until(lambda: pausing == [3600], message="the dispatcher's first round to end in its pause",
                     running=task)
    queue(db, [overtake(0)], T0)
    d.wake()
    await wait_until(lambda: platform.channels.get("C1"), message="the woken dispatcher to deliver to C1",
                     running=task)
    assert len(platform.messages("C1")) == 1
    stop.set()
    await asyncio.wait_for(task, timeout=5)
