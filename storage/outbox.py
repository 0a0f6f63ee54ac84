"""The outbox: one row per (event, channel), written with the snapshot that produced it.

Statuses: `pending` (to send at `next_attempt_at`, not before `hold_until` for muted channels and
digests), `sending` (claimed by the dispatcher: the platform may or may not have it), `delivered`,
`failed` (permanently; the channel's subscriptions are disabled). A crash leaves rows `pending` or
`sending`; the dispatcher recovers `sending` ones at start, checking the channel before resending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from leaderwatch.alerts.matching import Delivery
from leaderwatch.storage.db import from_text, to_text


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One delivery as stored."""

    id: int
    delivery_key: str
    event_key: str
    platform: str
    channel_id: str
    status: str
    attempts: int
    hold_until: datetime | None
    digest: str | None
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime | None = None
    sent_at: datetime | None = None


def _item(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        row["id"], row["delivery_key"], row["event_key"], row["platform"], row["channel_id"],
        row["status"], row["attempts"] or 0, from_text(row["hold_until"]) if row["hold_until"] else None,
        row["digest"], from_text(row["next_attempt_at"]), row["last_error"],
        from_text(row["created_at"]) if row.get("created_at") else None,
        from_text(row["sent_at"]) if row.get("sent_at") else None)


def enqueue(db: Database, deliveries: Iterable[Delivery], now: datetime,
            hold: dict[tuple[str, str], tuple[datetime | None, str | None]] | None = None) -> int:
    """Add deliveries (one already there, same key, is left alone); how many were added.

    `hold` gives per (platform, channel) the time before which nothing is sent (a mute's end or the
    next digest) and the digest kind, if any.
    """
    added = 0
    for d in deliveries:
        until, digest = (hold or {}).get((d.platform, d.channel_id), (None, None))
        cursor = db.execute(
            "INSERT OR IGNORE INTO outbox (delivery_key, event_key, platform, channel_id, subscription_ids, "
            "status, hold_until, digest, attempts, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?)",
            [d.key, d.event.dedupe_key, d.platform, d.channel_id, json.dumps(list(d.subscription_ids)),
             to_text(until) if until else None, digest, to_text(now), to_text(now)])
        added += cursor.rowcount
    return added


def due(db: Database, now: datetime, platform: str | None = None, limit: int = 100) -> list[OutboxItem]:
    """Pending rows whose time has come, oldest first."""
    where = "status = 'pending' AND next_attempt_at <= ? AND (hold_until IS NULL OR hold_until <= ?)"
    params: list[Any] = [to_text(now), to_text(now)]
    if platform is not None:
        where += " AND platform = ?"
        params.append(platform)
    return [_item(r) for r in db.table("outbox").rows_where(where, params, order_by="id", limit=limit)]


def in_flight(db: Database, platform: str | None = None) -> list[OutboxItem]:
    """Rows claimed but never confirmed: a crash happened between sending and recording it."""
    where, params = "status = 'sending'", []
    if platform is not None:
        where += " AND platform = ?"
        params.append(platform)
    return [_item(r) for r in db.table("outbox").rows_where(where, params, order_by="id")]


def claim(db: Database, item_id: int, now: datetime) -> bool:
    """Mark a row as being sent (committed before the platform call); False if another took it."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, sent_at = ? "
            "WHERE id = ? AND status = 'pending'", [to_text(now), item_id])
    return cursor.rowcount == 1


def mark_delivered(db: Database, item_id: int, now: datetime) -> None:
    """The platform accepted the message."""
    with db.atomic():
        db.execute("UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ?",
                   [to_text(now), item_id])


def mark_retry(db: Database, item_id: int, next_attempt_at: datetime, error: str) -> None:
    """Try again later (429, 5xx, a network error)."""
    with db.atomic():
        db.execute("UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ? WHERE id = ?",
                   [to_text(next_attempt_at), error[:500], item_id])


def mark_failed(db: Database, item_id: int, error: str) -> None:
    """Give up on a row (the channel is gone, the bot was removed)."""
    with db.atomic():
        db.execute("UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?", [error[:500], item_id])


def fail_channel(db: Database, platform: str, channel_id: str, error: str) -> int:
    """Give up on every undelivered row of a channel whose subscriptions were disabled."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET status = 'failed', last_error = ? WHERE platform = ? AND channel_id = ? "
            "AND status IN ('pending', 'sending')", [error[:500], platform, channel_id])
    return int(cursor.rowcount)


def release_hold(db: Database, platform: str, channel_id: str, now: datetime) -> int:
    """Send a channel's held rows now (after `unmute`), keeping digest rows for their digest."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET hold_until = ? WHERE platform = ? AND channel_id = ? AND status = 'pending' "
            "AND digest IS NULL AND hold_until > ?", [to_text(now), platform, channel_id, to_text(now)])
    return int(cursor.rowcount)


def undelivered(db: Database, now: datetime, limit: int = 1000) -> list[OutboxItem]:
    """Rows not yet delivered whose hold has passed (due, waiting to retry, or in flight), oldest first.

    The dispatcher walks each channel's rows in this order and stops at the first one that is not
    due, so a channel's alerts keep their order across retries.
    """
    where = "status IN ('pending', 'sending') AND (hold_until IS NULL OR hold_until <= ?)"
    return [_item(r) for r in db.table("outbox").rows_where(where, [to_text(now)], order_by="id",
                                                            limit=limit)]


class _Taken(Exception):
    """Internal: one row of a batch was no longer pending."""


def claim_all(db: Database, item_ids: Iterable[int], now: datetime) -> bool:
    """Claim the rows of one message (a digest) together: all of them, or none (False) if one was taken."""
    try:
        with db.atomic():
            for item_id in item_ids:
                if not claim(db, item_id, now):
                    raise _Taken  # rolls back the rows already claimed in this transaction
    except _Taken:
        return False
    return True


def mark_delivered_all(db: Database, item_ids: Iterable[int], now: datetime) -> None:
    """Several rows went out as one message: confirm them together."""
    with db.atomic():
        for item_id in item_ids:
            mark_delivered(db, item_id, now)


def mark_retry_all(db: Database, item_ids: Iterable[int], next_attempt_at: datetime, error: str) -> None:
    """Put several rows back to pending together."""
    with db.atomic():
        for item_id in item_ids:
            mark_retry(db, item_id, next_attempt_at, error)


def mark_failed_all(db: Database, item_ids: Iterable[int], error: str) -> None:
    """Give up on several rows together."""
    with db.atomic():
        for item_id in item_ids:
            mark_failed(db, item_id, error)


def depth(db: Database) -> dict[str, int]:
    """Rows per status (for health and metrics)."""
    return {str(status): int(n) for status, n in
            db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()}


def item(db: Database, item_id: int) -> OutboxItem | None:
    """One row by id."""
    rows = list(db.table("outbox").rows_where("id = ?", [item_id]))
    return _item(rows[0]) if rows else None


def release_digest(db: Database, platform: str, channel_id: str, until: datetime) -> int:
    """Turn a channel's alerts held for a digest back into single alerts, sent from `until` on."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET digest = NULL, hold_until = ? WHERE platform = ? AND channel_id = ? "
            "AND status = 'pending' AND digest IS NOT NULL", [to_text(until), platform, channel_id])
    return int(cursor.rowcount)
