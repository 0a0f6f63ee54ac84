"""Opening the history database: WAL, a busy timeout, and the schema migrations."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database as Database  # the handle the other packages type against
from sqlite_utils.migrations import Migrations

logger = logging.getLogger(__name__)

migrations = Migrations("leaderwatch")


class StorageError(Exception):
    """The database cannot be opened or written."""


def to_text(when: datetime) -> str:
    """The one timestamp format stored everywhere: ISO 8601 in UTC, sortable as text."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: every stored time must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="seconds")


def from_text(text: str) -> datetime:
    """Parse a stored timestamp."""
    return datetime.fromisoformat(text)


@migrations()
def m001_initial(db: Database) -> None:
    """Boards, snapshots, entries, models, aliases, organizations, source status, imports."""
    db.table("boards").create({
        "id": str, "source": str, "title": str, "metric": str, "higher_is_better": int,
        "has_ci": int, "url": str, "archived": int,
    }, pk="id")
    db.table("snapshots").create({
        "id": int, "board_id": str, "as_of": str, "fetched_at": str, "last_seen_at": str,
        "content_hash": str, "origin": str, "method": str, "truncated": int, "entry_count": int,
    }, pk="id", foreign_keys=[("board_id", "boards", "id")])
    db.table("snapshots").create_index(["board_id", "as_of"])
    db.table("snapshots").create_index(["board_id", "as_of", "content_hash"], unique=True)
    db.table("entries").create({
        "snapshot_id": int, "position": int, "name": str, "model_key": str, "organization": str,
        "countries": str, "mixed": int, "open_weights": int, "score": float, "rank": int,
        "ci_lower": float, "ci_upper": float, "votes": int, "components": str,
    }, pk=("snapshot_id", "position"), foreign_keys=[("snapshot_id", "snapshots", "id")])
    db.table("entries").create_index(["model_key"])
    db.table("models").create({
        "key": str, "name": str, "organization": str, "first_seen_at": str, "first_board": str,
    }, pk="key")
    db.table("aliases").create({"alias": str, "key": str, "origin": str}, pk="alias")
    db.table("organizations").create({"name": str, "countries": str}, pk="name")
    db.table("source_status").create({
        "source": str, "status": str, "last_attempt_at": str, "last_success_at": str,
        "last_error": str, "consecutive_failures": int,
    }, pk="source")
    db.table("http_validators").create({"url": str, "etag": str, "last_modified": str}, pk="url")
    db.table("imports").create({
        "recording": str, "family": str, "as_of": str, "snapshots": int, "imported_at": str,
    }, pk="recording")


@migrations()
def m002_rule_states(db: Database) -> None:
    """What each rule remembers per board (confirmed values, streaks, cooldowns), as JSON text."""
    db.table("rule_states").create({
        "board_id": str, "rule": str, "confirmed": str, "streak": str, "last_fired": str,
        "updated_at": str,
    }, pk=("board_id", "rule"))


@migrations()
def m003_chat(db: Database) -> None:
    """Events, channel subscriptions and settings, the audit trail, and the delivery outbox."""
    db.table("events").create({
        "dedupe_key": str, "kind": str, "board_id": str, "at": str, "rule": str, "subject": str,
        "model": str, "other": str, "groups": str, "rank_before": int, "rank_after": int,
        "score_before": float, "score_after": float, "confidence": str, "message": str,
        "snapshot_id": int, "created_at": str,
    }, pk="dedupe_key")
    db.table("events").create_index(["board_id", "at"])
    db.table("subscriptions").create({
        "id": int, "platform": str, "channel_id": str, "board_pattern": str, "rule": str,
        "created_by": str, "created_at": str, "disabled_at": str, "disabled_reason": str,
    }, pk="id")
    db.table("subscriptions").create_index(["platform", "channel_id", "board_pattern", "rule"], unique=True)
    db.table("channel_settings").create({
        "platform": str, "channel_id": str, "key": str, "value": str, "updated_at": str,
    }, pk=("platform", "channel_id", "key"))
    db.table("audit").create({
        "id": int, "at": str, "platform": str, "channel_id": str, "user_id": str, "user_name": str,
        "action": str, "detail": str,
    }, pk="id")
    db.table("outbox").create({
        "id": int, "delivery_key": str, "event_key": str, "platform": str, "channel_id": str,
        "subscription_ids": str, "status": str, "hold_until": str, "digest": str, "attempts": int,
        "next_attempt_at": str, "last_error": str, "created_at": str, "sent_at": str,
        "delivered_at": str,
    }, pk="id", foreign_keys=[("event_key", "events", "dedupe_key")])
    db.table("outbox").create_index(["delivery_key"], unique=True)
    db.table("outbox").create_index(["status", "next_attempt_at"])


@migrations()
def m004_rule_states_before(db: Database) -> None:
    """Each rule's state as it was before the snapshot it last ran at, and that snapshot's id, so
    `why` can run the rule again exactly as the engine did (JSON text; NULL: the rule had no state)."""
    states = db.table("rule_states")
    for column in ("previous_confirmed", "previous_streak", "previous_last_fired"):
        states.add_column(column, str)
    states.add_column("snapshot_id", int)


@migrations()
def m005_stories(db: Database) -> None:
    """Follow-ups in the thread of the first alert, and edits of it (issue 12).

    `events.value`: the outcome a rule saw (tells a reversal from a confirmation). `outbox.action`:
    `post` (a message of its own), `reply` (in the thread of the row `parent_id`) or `edit` (of the
    message of `parent_id`); `outbox.message_ref`: the platform's id of the delivered message (Slack
    ts, Discord message id). `stories`: per channel, the row whose message a story's follow-ups
    thread under, and when the story last moved.
    """
    db.table("events").add_column("value", str)
    outbox = db.table("outbox")
    outbox.add_column("action", str, not_null_default="post")
    outbox.add_column("parent_id", int)
    outbox.add_column("message_ref", str)
    outbox.create_index(["parent_id"])
    db.table("stories").create({
        "platform": str, "channel_id": str, "story": str, "root_id": int, "updated_at": str,
    }, pk=("platform", "channel_id", "story"))
    db.table("stories").create_index(["root_id"])


@migrations()
def m006_source_drift(db: Database) -> None:
    """Sources that say when they change (issue 13 item 5).

    `source_status.drift`: what changed in the origin's shape (NULL while the source reads fine),
    `drift_url` the origin's URL, `drifted_at` when the drift began. `held_tables`: a board's table with
    fewer than half the rows of its last stored one, held until the next poll confirms it.
    """
    status = db.table("source_status")
    status.add_column("drift", str)
    status.add_column("drift_url", str)
    status.add_column("drifted_at", str)
    db.table("held_tables").create({
        "board_id": str, "source": str, "content_hash": str, "rows": int, "previous_rows": int,
        "held_at": str,
    }, pk="board_id")


def open_db(path: str | Path) -> Database:
    """Open (creating if needed) the database at `path` and bring its schema up to date.

    `:memory:` gives a private in-memory database (tests).
    """
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = Database(path)
        db.execute("PRAGMA busy_timeout = 5000")
        if str(path) != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
            # WAL is durable across a crash with NORMAL; FULL would fsync every commit.
            db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(db)
    except Exception as exc:  # sqlite3 errors, permissions, a directory in the way
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    return db


def is_writable(db: Database) -> bool:
    """True when the main database takes a write now; nothing is committed.

    A table is created in `main` inside a savepoint that is rolled back: that needs the write lock
    on the database file itself, so a read-only file or folder and a lock held by another program
    both show (a TEMP table would not: a read-only file accepts those).
    """
    try:
        db.execute("SAVEPOINT leaderwatch_write_probe")
        try:
            db.execute("CREATE TABLE main._leaderwatch_write_probe (x)")
        finally:
            db.execute("ROLLBACK TO leaderwatch_write_probe")
            db.execute("RELEASE leaderwatch_write_probe")
    except sqlite3.Error:
        return False
    return True
