"""Matching events to channel subscriptions (pure): one delivery per (event, channel)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from leaderwatch.alerts.models import Event
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.alerts.suites import board_matches as suites_board_matches


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel follows the boards matching `board_pattern` with one rule (by its name)."""

    id: int
    platform: str
    channel_id: str
    board_pattern: str
    rule: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one channel; `key` stays the same across retries, crashes and replays."""

    event: Event
    platform: str
    channel_id: str
    subscription_ids: tuple[int, ...]
    key: str


def board_matches(pattern: str, board_id: str, suites: Suites = BUILT_IN) -> bool:
    """`lmarena/*` matches `lmarena/text`; a plain id matches itself; a suite (`vision`) its boards."""
    return suites_board_matches(pattern, board_id, suites)


def delivery_key(event_key: str, platform: str, channel_id: str) -> str:
    """The key of one event's delivery to one channel."""
    return hashlib.sha256(f"{event_key}|{platform}|{channel_id}".encode()).hexdigest()[:32]


def rules_for_board(board_id: str, subscriptions: Iterable[Subscription], suites: Suites = BUILT_IN
                    ) -> list[str]:
    """The names of the rules some channel follows on this board, in a stable order."""
    return sorted({s.rule for s in subscriptions if board_matches(s.board_pattern, board_id, suites)})


def match(events: Sequence[Event], subscriptions: Sequence[Subscription], suites: Suites = BUILT_IN
          ) -> list[Delivery]:
    """The deliveries for these events: each channel gets an event once, whichever rules found it."""
    out: dict[tuple[str, str, str], list[int]] = {}
    by_key: dict[str, Event] = {}
    for event in events:
        for sub in subscriptions:
            if sub.rule == event.rule and board_matches(sub.board_pattern, event.board, suites):
                key = (event.dedupe_key, sub.platform, sub.channel_id)
                out.setdefault(key, []).append(sub.id)
                by_key.setdefault(event.dedupe_key, event)
    return [Delivery(by_key[k], platform, channel, tuple(sorted(set(ids))),
                     delivery_key(k, platform, channel))
            for (k, platform, channel), ids in out.items()]


DIGEST_HOUR = 9
"""Default hour (UTC) at which digests go out."""


def next_digest(period: str, hour: int, after: datetime) -> datetime:
    """The next digest time after `after`: every day at `hour` UTC, or Mondays at `hour` UTC."""
    at = after.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    if at <= after:
        at += timedelta(days=1)
    if period == "weekly":
        at += timedelta(days=(7 - at.weekday()) % 7)
    return at


def hold_for(settings: Mapping[str, str], now: datetime) -> tuple[datetime | None, str | None]:
    """When a channel's alerts may go out given its settings (mute, digest), and the digest kind.

    Muted and digest channels get their alerts later, never dropped.
    """
    until: datetime | None = None
    mute = settings.get("mute_until")
    if mute:
        muted_to = datetime.fromisoformat(mute)
        if muted_to > now:
            until = muted_to
    digest = settings.get("digest")
    if digest in ("daily", "weekly"):
        hour = int(settings.get("digest_hour", DIGEST_HOUR))
        return next_digest(digest, hour, until or now), digest
    return until, None
