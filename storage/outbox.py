"""The outbox: one row per (event, channel), written with the snapshot that produced it.

Statuses: `pending` (to send at `next_attempt_at`, not before `hold_until` for muted channels and
boards and digests), `sending` (claimed by the dispatcher: the platform may or may not have it),
`delivered` (with the platform's `message_ref`), `failed` (permanently; the channel's subscriptions
are disabled), `skipped` (an edit with nothing left to edit: the message was deleted). A crash leaves
rows `pending` or `sending`; the dispatcher recovers `sending` ones, checking the channel before
resending.

Claims (issue 15): every replica on one PostgreSQL database delivers. A claim takes rows with `SELECT ...
FOR UPDATE SKIP LOCKED` (a replica never waits on rows another is claiming: it takes them all or none)
and stamps them with the replica (`claimed_by`, `host:pid`) and a lease (`claimed_until`: the send's
timeout and `LEASE_MARGIN` on). A `sending` row is a crash's left-over only once its lease has passed
(`lapsed`); until then its channel stays busy (one message in flight per channel keeps the order). On
SQLite one `run` uses the file: every `sending` row found at start is a left-over, as before.

Actions: an event that follows up a story open in the channel (`alerts.stories`) is queued as two
rows, a `reply` in the thread of the story's first alert (`parent_id`) and, right after it, an `edit`
of that first alert; any other event as a `post`. The `stories` table maps each open story of a
channel to the row of its first alert.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leaderwatch.alerts.matching import Delivery
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.stories import STORY_WINDOW
from leaderwatch.storage.db import StorageError, from_text, to_text
from leaderwatch.storage.engine import POSTGRES, SQLITE, Database, backend_of, indexed_by
from leaderwatch.storage.events import NOT_A_MESSAGE, to_event

logger = logging.getLogger(__name__)

POST, REPLY, EDIT = "post", "reply", "edit"

Hold = Callable[[Delivery], tuple[datetime | None, str | None]]
"""For a delivery: the time before which it is not sent (a mute's end, the next digest) and the digest."""

LEASE_MARGIN = timedelta(seconds=10)
"""How long a claim outlives the send it was made for (the dispatcher's `send_timeout`): time to record
the platform's answer, and replicas' clocks a few seconds apart. Past it, the claim has lapsed: its
replica died or hung mid-send, and another takes the row over (checking the channel first)."""

TAKEOVER_LOCK = 0x6C77_7461_6B65  # "lwtake": replicas take lapsed claims over one at a time


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim's owner and end: the replica (`host:pid`) and when other replicas may take its rows over."""

    replica: str
    until: datetime


def shared(db: Database) -> bool:
    """Whether other processes may deliver from this database at the same time (PostgreSQL: replicas), so
    that `sending` rows must be left to their claims until these lapse; on SQLite one `run` uses the file."""
    return backend_of(db) != SQLITE


def dispatchers(db: Database) -> int:
    """How many replicas deliver from this database now (at least one): on PostgreSQL, the sessions of
    the replicas' leader connections to it (every `run` keeps one, leading or not: `storage/leadership.py`)
    from sessions in this schema, an install of its own; on SQLite, one."""
    if not shared(db):
        return 1
    from leaderwatch.storage.leadership import APPLICATION_NAME_SQL  # psycopg: PostgreSQL only

    row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     f"AND application_name = {APPLICATION_NAME_SQL}").fetchone()
    return max(1, int(row[0]))


def _write(db: Database) -> AbstractContextManager[Any]:
    """Around a write of one statement: SQLite's write transaction; nothing on PostgreSQL, where a statement
    outside a transaction commits on its own (one round trip instead of three)."""
    return db.atomic() if backend_of(db) == SQLITE else contextlib.nullcontext()


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
    action: str = POST
    parent_id: int | None = None
    message_ref: str | None = None


def _item(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        row["id"], row["delivery_key"], row["event_key"], row["platform"], row["channel_id"],
        row["status"], row["attempts"] or 0, from_text(row["hold_until"]) if row["hold_until"] else None,
        row["digest"], from_text(row["next_attempt_at"]), row["last_error"],
        from_text(row["created_at"]) if row.get("created_at") else None,
        from_text(row["sent_at"]) if row.get("sent_at") else None,
        row.get("action") or POST, row.get("parent_id"), row.get("message_ref"))


def edit_key(delivery_key: str) -> str:
    """The delivery key of the edit that goes with a follow-up's reply: the reply's and `/edit` (sorting
    right after it); a hash of it for a reply queued before keys named their event and channel."""
    if "/" in delivery_key:
        return f"{delivery_key}/edit"
    return hashlib.sha256(f"edit|{delivery_key}".encode()).hexdigest()[:32]


def _insert(db: Database, d: Delivery, key: str, now: datetime, until: datetime | None, digest: str | None,
            action: str, parent_id: int | None) -> int | None:
    """One row; its id, or None when a row with that key was there already."""
    cursor = db.execute(
        "INSERT INTO outbox (delivery_key, event_key, platform, channel_id, subscription_ids, "
        "status, hold_until, digest, attempts, next_attempt_at, created_at, action, parent_id) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        [key, d.event.dedupe_key, d.platform, d.channel_id, json.dumps(list(d.subscription_ids)),
         to_text(until) if until else None, digest, to_text(now), to_text(now), action, parent_id])
    added = cursor.fetchall()
    return int(added[0][0]) if added else None


def enqueue(db: Database, deliveries: Iterable[Delivery], now: datetime, hold: Hold | None = None,
            stories: Callable[[Event], Sequence[str]] | None = None) -> int:
    """Add deliveries (one already there, same key, is left alone); how many were added.

    `hold` tells each delivery's hold (a mute's end or the next digest) and digest kind. With
    `stories` (`alerts.stories.story_keys`), an event of a story open in the channel is queued as a
    reply and an edit of the story's first alert (counted as one delivery); any other opens its
    stories. Digests do not thread: a digest row is a post.
    """
    added = 0
    for d in deliveries:
        until, digest = hold(d) if hold is not None else (None, None)
        keys = list(stories(d.event)) if stories is not None and digest is None else []
        root = story_root(db, d.platform, d.channel_id, keys, now) if keys else None
        if root is not None:
            row = _insert(db, d, d.key, now, until, None, REPLY, root)
            if row is not None:
                _insert(db, d, edit_key(d.key), now, until, None, EDIT, root)
                _touch_stories(db, d.platform, d.channel_id, keys, root, now)
        else:
            row = _insert(db, d, d.key, now, until, digest, POST, None)
            if row is not None and keys:
                _touch_stories(db, d.platform, d.channel_id, keys, row, now)
        added += row is not None
    return added


def story_root(db: Database, platform: str, channel_id: str, keys: Sequence[str],
               now: datetime) -> int | None:
    """The row of the first alert of the most recently moved story open under one of `keys` in a
    channel, or None. A story whose first alert failed, or is gone from the outbox, is not open."""
    if not keys:
        return None
    row = db.execute(
        "SELECT s.root_id FROM stories s JOIN outbox o ON o.id = s.root_id "
        f"WHERE s.platform = ? AND s.channel_id = ? AND s.story IN ({', '.join('?' * len(keys))}) "
        "AND s.updated_at >= ? AND o.status NOT IN ('failed', 'skipped') "
        "ORDER BY s.updated_at DESC, s.root_id DESC LIMIT 1",
        [platform, channel_id, *keys, to_text(now - STORY_WINDOW)]).fetchone()
    return int(row[0]) if row else None


def _touch_stories(db: Database, platform: str, channel_id: str, keys: Sequence[str], root_id: int,
                   now: datetime) -> None:
    """The stories `keys` of a channel now thread under `root_id`, and moved `now`."""
    db.executemany(
        "INSERT INTO stories (platform, channel_id, story, root_id, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, channel_id, story) DO UPDATE SET root_id = excluded.root_id, "
        "updated_at = excluded.updated_at",
        [(platform, channel_id, key, root_id, to_text(now)) for key in keys])


def become_root(db: Database, item_id: int, old_root: int) -> None:
    """A follow-up went out as a message of its own (its first alert was deleted): it is now a post,
    the stories of the old first alert thread under it, and the edit queued with it has nothing to do."""
    with db.atomic():
        row = item(db, item_id)
        db.execute("UPDATE outbox SET action = 'post', parent_id = NULL WHERE id = ?", [item_id])
        db.execute("UPDATE stories SET root_id = ? WHERE root_id = ?", [item_id, old_root])
        if row is not None:
            db.execute("UPDATE outbox SET status = 'skipped', last_error = ? WHERE delivery_key = ? "
                       "AND status = 'pending'", ["the first alert was deleted: the update went out as a "
                                                  "new message", edit_key(row.delivery_key)])


def follow_ups(db: Database, root_id: int, up_to: int) -> list[OutboxItem]:
    """The replies queued in the thread of `root_id` up to row `up_to`, oldest first."""
    return [_item(r) for r in db.table("outbox").rows_where(
        "parent_id = ? AND action = 'reply' AND id <= ?", [root_id, up_to], order_by="id")]


def due(db: Database, now: datetime, platform: str | None = None, limit: int = 100) -> list[OutboxItem]:
    """Pending rows whose time has come, oldest first."""
    where = "status = 'pending' AND next_attempt_at <= ? AND (hold_until IS NULL OR hold_until <= ?)"
    params: list[Any] = [to_text(now), to_text(now)]
    if platform is not None:
        where += " AND platform = ?"
        params.append(platform)
    return [_item(r) for r in db.table("outbox").rows_where(where, params, order_by="id", limit=limit)]


def in_flight(db: Database, platform: str | None = None) -> list[OutboxItem]:
    """Rows claimed but not confirmed yet (being sent now, or left by a crash between sending and
    recording it), oldest first."""
    where, params = "status = 'sending'", []
    if platform is not None:
        where += " AND platform = ?"
        params.append(platform)
    return [_item(r) for r in db.table("outbox").rows_where(where, params, order_by="id")]


def lapsed(db: Database, now: datetime, lease: Lease, platform: str | None = None) -> list[OutboxItem]:
    """The rows in flight that no live sender holds, taken over under `lease` to be checked, oldest first.

    On PostgreSQL the `sending` rows whose lease has passed (or that were claimed before leases): their
    replica died or hung mid-send. A live replica's rows are left alone, and a takeover under way elsewhere
    is waited for (it is short), so the rows of one message are never split between two replicas. On
    SQLite, where one `run` uses the file, every `sending` row (at start they are a crash's).
    """
    if not shared(db):
        return in_flight(db, platform)
    where, params = "status = 'sending' AND (claimed_until IS NULL OR claimed_until < ?)", [to_text(now)]
    if platform is not None:
        where += " AND platform = ?"
        params.append(platform)
    with db.atomic():
        # One takeover at a time: SKIP LOCKED alone would let two replicas sweeping at the same instant
        # split one message's rows (a digest) between them, and each would send its part.
        db.execute("SELECT pg_advisory_xact_lock(?)", [TAKEOVER_LOCK])
        rows = db.query(
            f"WITH gone AS (SELECT id FROM outbox WHERE {where} ORDER BY id FOR UPDATE SKIP LOCKED) "
            "UPDATE outbox SET claimed_by = ?, claimed_until = ? "
            "WHERE id IN (SELECT id FROM gone) RETURNING *",
            [*params, lease.replica, to_text(lease.until)])
        return sorted((_item(r) for r in rows), key=lambda row: row.id)


_CLAIMED = "status = 'sending', attempts = attempts + 1, sent_at = ?, claimed_by = ?, claimed_until = ?"


def _stamp(now: datetime, lease: Lease | None) -> list[str | None]:
    return [to_text(now), lease.replica if lease else None, to_text(lease.until) if lease else None]


def claim(db: Database, item_id: int, now: datetime, lease: Lease | None = None) -> bool:
    """Mark a row as being sent (committed before the platform call) under `lease`; False if another took
    it (or, on PostgreSQL, is taking it right now)."""
    return claim_all(db, [item_id], now, lease)


def mark_delivered(db: Database, item_id: int, now: datetime, message_ref: str | None = None) -> None:
    """The platform accepted the message (`message_ref`: its id there, when the platform said)."""
    mark_delivered_all(db, [item_id], now, message_ref)


def mark_skipped(db: Database, item_id: int, reason: str) -> None:
    """Nothing to do for this row (an edit of a deleted message)."""
    with _write(db):
        db.execute("UPDATE outbox SET status = 'skipped', last_error = ? WHERE id = ?",
                   [reason[:500], item_id])


def mark_retry(db: Database, item_id: int, next_attempt_at: datetime, error: str) -> None:
    """Try again later (429, 5xx, a network error)."""
    mark_retry_all(db, [item_id], next_attempt_at, error)


def mark_failed(db: Database, item_id: int, error: str) -> None:
    """Give up on a row (the channel is gone, the bot was removed)."""
    mark_failed_all(db, [item_id], error)


def fail_channel(db: Database, platform: str, channel_id: str, error: str) -> int:
    """Give up on every undelivered row of a channel whose subscriptions were disabled."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET status = 'failed', last_error = ? WHERE platform = ? AND channel_id = ? "
            "AND status IN ('pending', 'sending')", [error[:500], platform, channel_id])
    return int(cursor.rowcount)


def rehold(db: Database, platform: str, channel_id: str, now: datetime,
           until_for: Callable[[str], datetime | None]) -> int:
    """Hold a channel's held rows again by the mutes still in force (after an `unmute`): `until_for`
    gives a board's new hold (None: none). Digest rows keep waiting for their digest. How many rows
    are released now."""
    rows = db.execute(
        "SELECT o.id, e.board_id FROM outbox o JOIN events e ON e.dedupe_key = o.event_key "
        "WHERE o.platform = ? AND o.channel_id = ? AND o.status = 'pending' AND o.digest IS NULL "
        "AND o.hold_until > ?", [platform, channel_id, to_text(now)]).fetchall()
    released = 0
    with db.atomic():
        for item_id, board in rows:
            until = until_for(str(board))
            if until is None or until <= now:
                until, released = now, released + 1
            db.execute("UPDATE outbox SET hold_until = ? WHERE id = ?", [to_text(until), item_id])
    return released


def ready_channels(db: Database, now: datetime, platform: str, limit: int = 5000) -> list[tuple[int, str]]:
    """(head row id, channel id) of the platform's channels whose oldest undelivered row (hold passed)
    is due now, oldest head first, at most `limit`.

    A channel whose oldest row waits (to retry, on a 429's retry_after, or in flight) is left out: its
    later rows wait behind it (order), and it never hides the channels behind it. SQLite takes `status`
    and `next_attempt_at` from the row that gave min(id) (PostgreSQL, which keeps to standard SQL, reads
    that row again by its id); the undelivered rows are read by channel through their partial index
    (m010), not by status and then sorted.
    """
    stamp = to_text(now)
    index = indexed_by(db, "idx_outbox_undelivered_channel")
    if backend_of(db) == SQLITE:
        heads = ("SELECT head, channel_id FROM (SELECT channel_id, min(id) AS head, status, next_attempt_at "
                 f"FROM outbox{index} WHERE platform = ? ")
    else:
        heads = ("SELECT h.head, h.channel_id FROM (SELECT channel_id, min(id) AS head FROM outbox "
                 "WHERE platform = ? ")
    heads += ("AND status IN ('pending', 'sending') AND (hold_until IS NULL OR hold_until <= ?) "
              "GROUP BY channel_id)")
    if backend_of(db) != SQLITE:
        heads += " h JOIN outbox o ON o.id = h.head"
    rows = db.execute(f"{heads} WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY head LIMIT ?",
                      [platform, stamp, stamp, limit]).fetchall()
    return [(int(head), str(channel)) for head, channel in rows]


def waiting_platforms(db: Database) -> set[str]:
    """The platforms that have undelivered rows."""
    return {str(platform) for (platform,) in db.execute(
        f"SELECT DISTINCT platform FROM outbox{indexed_by(db, 'idx_outbox_undelivered_channel')} "
        "WHERE status IN ('pending', 'sending')").fetchall()}


def channel_rows(db: Database, platform: str, channel_id: str, now: datetime,
                 limit: int = 200) -> list[OutboxItem]:
    """One channel's undelivered rows whose hold has passed, oldest first (what `batches` takes)."""
    where = ("platform = ? AND channel_id = ? AND status IN ('pending', 'sending') "
             "AND (hold_until IS NULL OR hold_until <= ?)")
    return [_item(r) for r in db.table("outbox").rows_where(where, [platform, channel_id, to_text(now)],
                                                            order_by="id", limit=limit)]


def oldest_due(db: Database, now: datetime) -> dict[str, datetime]:
    """Per platform, since when its longest-waiting row has been due: created, or released from its hold
    (a mute, a digest). Rows still held are not waiting."""
    rows = db.execute(
        "SELECT platform, min(CASE WHEN hold_until > created_at THEN hold_until ELSE created_at END) "
        "FROM outbox "
        "WHERE status IN ('pending', 'sending') AND (hold_until IS NULL OR hold_until <= ?) "
        "GROUP BY platform", [to_text(now)]).fetchall()
    return {str(platform): from_text(since) for platform, since in rows if since}


class _Taken(Exception):
    """Internal: one row of a batch was no longer pending."""


def claim_all(db: Database, item_ids: Iterable[int], now: datetime, lease: Lease | None = None,
              spacing: timedelta | None = None) -> bool:
    """Claim the rows of one message (a digest) together under `lease`: all of them, or none (False) if
    one was taken. On PostgreSQL in one statement, whose `FOR UPDATE SKIP LOCKED` never waits for a row
    another replica is claiming (that row counts as taken).

    With `spacing`, on a database replicas share, the channel's next row is not due before `now` +
    `spacing`: the least interval between two messages to one channel then holds whichever replica sends
    the next (each dispatcher also keeps it for itself, which is all one `run` on SQLite needs)."""
    ids = list(item_ids)
    if not ids:
        return True
    if shared(db):
        marks = ", ".join("?" * len(ids))
        taken = db.execute(
            f"WITH free AS (SELECT id FROM outbox WHERE id IN ({marks}) AND status = 'pending' "
            f"FOR UPDATE SKIP LOCKED) UPDATE outbox SET {_CLAIMED} WHERE id IN (SELECT id FROM free) "
            "AND (SELECT count(*) FROM free) = ? RETURNING id", [*ids, *_stamp(now, lease), len(ids)])
        if len(taken.fetchall()) != len(ids):
            return False
        if spacing:
            turn = to_text(now + spacing)
            try:
                db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = (SELECT min(n.id) FROM outbox n "
                           "JOIN outbox c ON c.id = ? AND n.platform = c.platform AND n.channel_id = "
                           "c.channel_id WHERE n.status = 'pending') AND next_attempt_at < ?",
                           [turn, ids[0], turn])
            except StorageError as exc:  # the claim stands (committed): only the next message's wait is lost
                logger.warning("could not make the channel's next alert wait its turn: %s", exc)
        return True
    try:
        with db.atomic():
            for item_id in ids:
                cursor = db.execute(f"UPDATE outbox SET {_CLAIMED} WHERE id = ? AND status = 'pending'",
                                    [*_stamp(now, lease), item_id])
                if cursor.rowcount != 1:
                    raise _Taken  # rolls back the rows already claimed in this transaction
    except _Taken:
        return False
    return True


def _ids(item_ids: Iterable[int]) -> tuple[list[int], str]:
    ids = list(item_ids)
    return ids, ", ".join("?" * len(ids))


def mark_delivered_all(db: Database, item_ids: Iterable[int], now: datetime,
                       message_ref: str | None = None) -> None:
    """Several rows went out as one message: confirm them together."""
    ids, marks = _ids(item_ids)
    if ids:
        with _write(db):
            db.execute("UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = NULL, "
                       f"message_ref = coalesce(?, message_ref) WHERE id IN ({marks})",
                       [to_text(now), message_ref, *ids])


def mark_retry_all(db: Database, item_ids: Iterable[int], next_attempt_at: datetime, error: str) -> None:
    """Put several rows back to pending together."""
    ids, marks = _ids(item_ids)
    if ids:
        with _write(db):
            db.execute("UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ? "
                       f"WHERE id IN ({marks})", [to_text(next_attempt_at), error[:500], *ids])


def mark_failed_all(db: Database, item_ids: Iterable[int], error: str) -> None:
    """Give up on several rows together."""
    ids, marks = _ids(item_ids)
    if ids:
        with _write(db):
            db.execute(f"UPDATE outbox SET status = 'failed', last_error = ? WHERE id IN ({marks})",
                       [error[:500], *ids])


def depth(db: Database) -> dict[str, int]:
    """Rows per status (for health and metrics)."""
    return {str(status): int(n) for status, n in
            db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()}


def item(db: Database, item_id: int) -> OutboxItem | None:
    """One row by id."""
    rows = list(db.table("outbox").rows_where("id = ?", [item_id]))
    return _item(rows[0]) if rows else None


def release_digest(db: Database, platform: str, channel_id: str, now: datetime,
                   until_for: Callable[[str], datetime | None]) -> int:
    """Turn a channel's alerts held for a digest back into single alerts, each sent from the end of
    the mutes still holding its board (`until_for`; None: now on)."""
    rows = db.execute(
        "SELECT o.id, e.board_id FROM outbox o JOIN events e ON e.dedupe_key = o.event_key "
        "WHERE o.platform = ? AND o.channel_id = ? AND o.status = 'pending' AND o.digest IS NOT NULL",
        [platform, channel_id]).fetchall()
    with db.atomic():
        for item_id, board in rows:
            until = until_for(str(board)) or now
            db.execute("UPDATE outbox SET digest = NULL, hold_until = ? WHERE id = ?",
                       [to_text(until), item_id])
    return len(rows)


@dataclass(frozen=True, slots=True)
class Delivered:
    """An alert as it reached a channel: its row, its event, and for a thread reply the platform's id of
    the message whose thread it is in (a link to a reply names both on Slack)."""

    item: OutboxItem
    event: Event
    thread_ref: str | None = None


def recent_delivered(db: Database, platform: str, channel_ids: Iterable[str],
                     limit: int = 10) -> list[Delivered]:
    """The alerts last delivered to some channels of a platform, newest first: posts and thread replies
    the platform gave an id for (edits are the same message again; weekly reports, operators' messages
    and the messages folding a poll's alerts past a channel's cap are not alerts)."""
    ids = sorted(set(channel_ids))
    if not ids:
        return []
    found = db.execute(
        "SELECT o.id, p.message_ref FROM outbox o JOIN events e ON e.dedupe_key = o.event_key "
        "LEFT JOIN outbox p ON p.id = o.parent_id "
        f"WHERE o.platform = ? AND o.channel_id IN ({', '.join('?' * len(ids))}) AND o.status = 'delivered' "
        "AND o.action IN ('post', 'reply') AND coalesce(o.message_ref, '') != '' "
        f"AND e.{NOT_A_MESSAGE} "
        "ORDER BY o.delivered_at DESC, o.id DESC LIMIT ?", [platform, *ids, limit]).fetchall()
    if not found:
        return []
    threads = {int(row_id): thread for row_id, thread in found}
    marks = ", ".join("?" * len(threads))
    items = {r["id"]: _item(r) for r in db.table("outbox").rows_where(f"id IN ({marks})", list(threads))}
    keys = sorted({i.event_key for i in items.values()})
    events = {r["dedupe_key"]: to_event(r) for r in db.table("events").rows_where(
        f"dedupe_key IN ({', '.join('?' * len(keys))})", keys)}
    return [Delivered(items[i], events[items[i].event_key], str(threads[i]) if threads[i] else None)
            for i in threads]


# --- the fan-out's batches (bot/pipeline/alerter.py): many channels' rows in a few statements -------------

NewRow = tuple[str, str, str, str, str, str | None, str | None, str, int | None, str]
"""A row to add: (delivery key, event key, platform, channel id, subscription ids as JSON, hold until
(stored text) or None, digest or None, action, parent id or None, now as stored text)."""


def keys_of_events(db: Database, event_keys: Sequence[str]) -> set[str]:
    """The delivery keys already queued for these events (a fan-out started again after a crash): a
    range of the key index each, as a key starts with its event's (`alerts.matching.delivery_key`)."""
    out: set[str] = set()
    for key in event_keys:
        rows = db.execute("SELECT delivery_key FROM outbox WHERE delivery_key >= ? AND delivery_key < ?",
                          [key + "/", key + "0"])  # "0" follows "/"
        out.update(str(r[0]) for r in rows)
    return out


def add_batch(db: Database, rows: Sequence[NewRow], opens: Sequence[str] = ()) -> None:
    """Add rows in one statement (inside a transaction that writes); a row whose key was there already
    is left alone. Each post added without a digest opens the stories `opens` (`alerts.stories`) of its
    channel: they thread under it from now on.

    Rows handed in delivery-key order keep both the table and its key index appended to in order, which
    is what makes a hundred thousand rows cheap.
    """
    if not rows:
        return
    if backend_of(db) == POSTGRES:
        _add_batch_postgres(db, rows, opens)
        return
    first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM outbox").fetchone()[0])
    cursor = db.executemany(
        "INSERT INTO outbox (delivery_key, event_key, platform, channel_id, subscription_ids, "
        "status, hold_until, digest, attempts, next_attempt_at, created_at, action, parent_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, 0, ?10, ?10, ?8, ?9) ON CONFLICT DO NOTHING", rows)
    opening = [i for i, r in enumerate(rows) if r[7] == POST and r[6] is None] if opens else []
    if not opening:
        return
    if cursor.rowcount == len(rows):  # SQLite numbered the rows in the order given
        ids = [first + i for i in opening]
    else:  # a row was there already (another process fanned out too): ask for the ids
        found = ids_of(db, [rows[i][0] for i in opening])
        ids = [found.get(rows[i][0], 0) for i in opening]
    touch_stories_batch(db, sorted((rows[i][2], rows[i][3], story, row, rows[i][9])
                                   for i, row in zip(opening, ids, strict=True) if row for story in opens))


_INSERT_ARRAYS = (
    "INSERT INTO outbox (delivery_key, event_key, platform, channel_id, subscription_ids, "
    "status, hold_until, digest, attempts, next_attempt_at, created_at, action, parent_id) "
    "SELECT k, e, p, c, s, 'pending', h, d, 0, n, n, a, r FROM unnest(?::text[], ?::text[], ?::text[], "
    "?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[]) "
    "AS x(k, e, p, c, s, h, d, a, r, n) ON CONFLICT DO NOTHING")


def _add_batch_postgres(db: Database, rows: Sequence[NewRow], opens: Sequence[str]) -> None:
    """`add_batch` on PostgreSQL in one statement: the rows as one array per column (`unnest`), not one
    statement per row, and the stories opened from the rows it added (RETURNING) in the same statement,
    not from their ids read back and sent again (a batch of 2,000 rows: a round trip fewer, and neither the
    2,000 ids nor the stories' 10,000 values cross the wire)."""
    columns: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    if not opens:
        db.execute(_INSERT_ARRAYS, columns)
        return
    # The last row of a channel wins, as row by row (one statement may not update a row twice).
    db.execute(
        f"WITH added AS ({_INSERT_ARRAYS} RETURNING id, platform, channel_id, action, digest, created_at) "
        "INSERT INTO stories (platform, channel_id, story, root_id, updated_at) "
        "SELECT DISTINCT ON (a.platform, a.channel_id, o.story) a.platform, a.channel_id, o.story, a.id, "
        "a.created_at FROM added a CROSS JOIN unnest(?::text[]) AS o(story) "
        "WHERE a.action = 'post' AND a.digest IS NULL ORDER BY a.platform, a.channel_id, o.story, a.id DESC "
        "ON CONFLICT (platform, channel_id, story) DO UPDATE SET root_id = excluded.root_id, "
        "updated_at = excluded.updated_at", [*columns, list(opens)])


def ids_of(db: Database, keys: Sequence[str]) -> dict[str, int]:
    """The ids of the rows with these delivery keys."""
    out: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        marks = ", ".join("?" * len(part))
        out.update((str(k), int(i)) for i, k in db.execute(
            f"SELECT id, delivery_key FROM outbox WHERE delivery_key IN ({marks})", part))
    return out


def story_roots(db: Database, keys: Sequence[str], now: datetime, platform: str, first: str, last: str
                ) -> dict[tuple[str, str], int]:
    """Per channel of `platform` from `first` to `last` (channel ids, inclusive), the row of the first
    alert of the most recently moved story open under one of `keys` (`story_root` for a range of channels
    at once, read along the stories' primary key)."""
    if not keys:
        return {}
    rows = db.execute(
        "SELECT s.platform, s.channel_id, s.root_id FROM stories s"
        f"{indexed_by(db, 'sqlite_autoindex_stories_1')} "
        "JOIN outbox o ON o.id = s.root_id WHERE s.platform = ? AND s.channel_id >= ? AND s.channel_id <= ? "
        f"AND s.story IN ({', '.join('?' * len(keys))}) AND s.updated_at >= ? "
        "AND o.status NOT IN ('failed', 'skipped') ORDER BY s.updated_at, s.root_id",
        [platform, first, last, *keys, to_text(now - STORY_WINDOW)]).fetchall()
    return {(str(p), str(c)): int(root) for p, c, root in rows}  # the latest wins


def touch_stories_batch(db: Database, rows: Sequence[tuple[str, str, str, int, str]]) -> None:
    """(platform, channel id, story, root row, now as stored text): each story of a channel now threads
    under its root, and moved now (`_touch_stories` for many channels at once)."""
    if backend_of(db) == POSTGRES and rows:
        # One statement of arrays, as `add_batch`; the last row of a story wins, as row by row (one
        # statement may not update a row twice).
        last = {(p, c, story): (p, c, story, root, now) for p, c, story, root, now in rows}
        db.execute(
            "INSERT INTO stories (platform, channel_id, story, root_id, updated_at) SELECT * FROM "
            "unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[]) "
            "ON CONFLICT (platform, channel_id, story) DO UPDATE SET root_id = excluded.root_id, "
            "updated_at = excluded.updated_at", [list(column) for column in zip(*last.values(), strict=True)])
        return
    db.executemany(
        "INSERT INTO stories (platform, channel_id, story, root_id, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, channel_id, story) DO UPDATE SET root_id = excluded.root_id, "
        "updated_at = excluded.updated_at", rows)
