"""Matching events to channel subscriptions (pure): one delivery per (event, channel)."""

from __future__ import annotations

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
    """The key of one event's delivery to one channel: `EVENT/PLATFORM/CHANNEL`.

    Readable, unique (an event key is hex, without `/`) and nothing to hash; an event's keys sort as its
    channels do, so a fan-out that writes them in channel order appends to the outbox's key index and
    to the stories' primary key in order, both.
    """
    return f"{event_key}/{platform}/{channel_id}"


class Followed:
    """The (rule, board pattern) pairs channels follow, indexed: a board id is looked up directly, and
    each glob or suite is matched against a board once, whatever the number of channels following it."""

    def __init__(self, pairs: Iterable[tuple[str, str]], suites: Suites = BUILT_IN) -> None:
        self.exact: dict[str, set[str]] = {}
        self.wide: dict[str, set[str]] = {}
        for rule, pattern in pairs:
            wide = pattern in suites or any(c in pattern for c in "*?[")
            (self.wide if wide else self.exact).setdefault(pattern, set()).add(rule)
        self.suites = suites
        self._boards: dict[str, dict[str, list[str]]] = {}

    def on_board(self, board_id: str) -> dict[str, list[str]]:
        """The rules followed on a board, each with the patterns that follow it there (sorted)."""
        found = self._boards.get(board_id)
        if found is None:
            matching = [p for p in self.wide if board_matches(p, board_id, self.suites)]
            if board_id in self.exact:
                matching.append(board_id)
            found = {}
            for pattern in sorted(matching):
                for rule in (self.wide.get(pattern, set()) | self.exact.get(pattern, set())):
                    found.setdefault(rule, []).append(pattern)
            self._boards[board_id] = found
        return found

    def patterns(self, rule: str, board_id: str) -> list[str]:
        """The patterns on which some channel follows `rule` and that match the board."""
        return self.on_board(board_id).get(rule, [])


def match(events: Sequence[Event], subscriptions: Sequence[Subscription], suites: Suites = BUILT_IN
          ) -> list[Delivery]:
    """The deliveries for these events: each channel gets an event once, whichever rules found it."""
    out: dict[tuple[str, str, str], list[int]] = {}
    by_key: dict[str, Event] = {}
    by_pair: dict[tuple[str, str], list[Subscription]] = {}
    for sub in subscriptions:
        by_pair.setdefault((sub.rule, sub.board_pattern), []).append(sub)
    followed = Followed(by_pair, suites)
    for event in events:
        subs = [sub for pattern in followed.patterns(event.rule, event.board)
                for sub in by_pair[(event.rule, pattern)]]
        for sub in sorted(subs, key=lambda s: s.id):
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


MUTE = "mute_until"
"""The channel setting holding the end of the channel's mute; `mute_until:PATTERN` a board pattern's."""


def board_mutes(settings: Mapping[str, str], now: datetime) -> dict[str, datetime]:
    """The board patterns muted in a channel now, and until when."""
    out: dict[str, datetime] = {}
    for key, value in settings.items():
        if key.startswith(MUTE + ":"):
            until = _time(value)
            if until is not None and until > now:
                out[key.partition(":")[2]] = until
    return out


def _time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def muted_until(settings: Mapping[str, str], now: datetime, board: str | None = None,
                suites: Suites = BUILT_IN) -> datetime | None:
    """When the channel's mute, or the longest mute of a pattern matching `board`, ends; None when
    nothing mutes it now."""
    ends = [t for t in [_time(settings.get(MUTE, ""))] if t is not None and t > now]
    if board is not None:
        ends += [t for pattern, t in board_mutes(settings, now).items()
                 if board_matches(pattern, board, suites)]
    return max(ends, default=None)


def hold_for(settings: Mapping[str, str], now: datetime, board: str | None = None,
             suites: Suites = BUILT_IN) -> tuple[datetime | None, str | None]:
    """When a channel's alerts (on `board`) may go out given its settings (mutes, digest), and the
    digest kind.

    Muted channels and boards and digest channels get their alerts later, never dropped.
    """
    until = muted_until(settings, now, board, suites)
    digest = settings.get("digest")
    if digest in ("daily", "weekly"):
        hour = int(settings.get("digest_hour", DIGEST_HOUR))
        return next_digest(digest, hour, until or now), digest
    return until, None
