"""Telling the operators when a source drifts and when it recovers: once each, through the outbox.

A drift (the origin answered in a shape the parser does not know, or a board's table shrank by more
than half and is held) and its recovery are each stored as one event of kind `ops` and queued for every
operators' channel (`[ops] slack_channel`, `discord_channel`) in the poll's own transaction, so the
dispatcher delivers them with the alerts' guarantees: exactly once, retried, recovered after a crash.
Without an ops channel the change is logged (one WARNING per change of state) and shown in `boards`,
`/healthz` and `/metrics`, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.formatting import Reply, day
from leaderwatch.alerts.matching import Delivery, delivery_key
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.storage import outbox
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import save_events

logger = logging.getLogger(__name__)

KIND = "ops"
"""The kind of the stored events operators' messages are delivered as (never a rule's)."""
DRIFTED, RECOVERED = "drifted", "recovered"

MEANWHILE = ("Meanwhile leaderwatch keeps the last good table of each board (nothing from this fetch is "
             "stored), retries at every poll and says here once when the source reads fine again.")
HELD_MEANWHILE = ("Meanwhile leaderwatch keeps the last good table; the smaller table is stored (as a mass "
                  "removal) only if the next poll returns exactly the same table again.")
FIX = ("If the origin changed its format for good, the source's parser needs an update "
       "(README, \"Sources that say when they change\").")


@dataclass(frozen=True, slots=True)
class OpsChannel:
    """One operators' channel: `slack` or `discord`, and the channel's id there."""

    platform: str
    channel_id: str


def drift_event(source: str, reason: str, url: str, at: datetime, *, held: bool = False) -> Event:
    """The event a new drift of `source` is delivered as: what changed, where, and what happens now."""
    message = "\n".join([f"{source}: {reason}", f"Origin: {url or 'unknown'}",
                         HELD_MEANWHILE if held else MEANWHILE, FIX])
    return _event(source, DRIFTED, at, message, url)


def recovery_event(source: str, drift: str | None, since: datetime | None, at: datetime,
                   confirmed: Sequence[str] = ()) -> Event:
    """The event the recovery of a drifted `source` is delivered as."""
    was = f" (drifted since {day(since)}: {drift})" if since is not None and drift else ""
    lines = [f"{source} reads fine again{was}. Polling and alerts go on as before."]
    if confirmed:
        lines.append(f"Stored as the new table after the next poll returned it again: "
                     f"{', '.join(confirmed)}.")
    return _event(source, RECOVERED, at, "\n".join(lines), None)


def _event(source: str, value: str, at: datetime, message: str, url: str | None) -> Event:
    return Event(kind=KIND, board=KIND, at=at, rule=f"source {value}", subject=source, model=None,
                 other=url, groups=(), rank_before=None, rank_after=None, score_before=None, score_after=None,
                 confidence="n/a", message=message, dedupe_key=dedupe_key(KIND, KIND, source, value, at),
                 value=value)


def notify(db: Database, channels: Sequence[OpsChannel], event: Event, now: datetime) -> int:
    """Log a drift or recovery (WARNING) and queue it for each operators' channel; how many were queued.

    Call inside the transaction that records the state change, so the message and the state commit
    together (a crash between them would lose one or announce a state never recorded).
    """
    first = event.message.split("\n", 1)[0]
    if not channels:
        logger.warning("source %s %s: %s (no [ops] channel configured: shown in `boards`, /healthz and "
                       "/metrics)", event.subject, event.value, first)
        return 0
    logger.warning("source %s %s: %s (telling %d ops channel(s))", event.subject, event.value, first,
                   len(channels))
    save_events(db, [event], None, now)
    deliveries = [Delivery(event, c.platform, c.channel_id, (), delivery_key(event.dedupe_key, c.platform,
                                                                              c.channel_id))
                  for c in channels]
    return outbox.enqueue(db, deliveries, now)


def ops_reply(event: Event) -> Reply:
    """How an operators' message reads on every platform."""
    title = (f"Source drifted: {event.subject}" if event.value == DRIFTED
             else f"Source recovered: {event.subject}")
    return Reply(title=title, text=event.message,
                 footer="leaderwatch operators' channel ([ops] in the config)")
