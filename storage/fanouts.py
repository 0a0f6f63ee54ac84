"""The events of a poll waiting to be fanned out to the channels that follow them.

A poll stores its events and lists them here in its own transaction; the fan-out then writes their
outbox rows in short transactions of its own and takes them off the list in the last one. An event
still listed after a crash is fanned out again: the rows written before are found by their keys and
left alone, so no channel gets an alert twice and none is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from leaderwatch.storage.db import to_text
from leaderwatch.storage.engine import SQLITE, Database, backend_of

WRITERS = 2
"""Batches of a fan-out written at once on PostgreSQL (`writers`)."""


def writers(db: Database) -> int:
    """How many batches of a fan-out may be written at once, each on a connection of its own.

    On PostgreSQL `WRITERS`: a batch's time is mostly the server's (each row's index entries, its story,
    the check of its event's key), and one connection keeps one of the server's cores busy. Two took a
    fan-out to 100,000 channels from 2.2 s to 1.75 s with the server on the client's two-core machine
    (three: no better there; a server with cores of its own gains more). One on SQLite (one writer at a
    time), and inside a transaction (the other connections would not see what it wrote, such as the events).
    """
    if backend_of(db) == SQLITE:
        return 1
    in_transaction = getattr(db, "in_transaction", None)
    return 1 if callable(in_transaction) and in_transaction() else WRITERS


def stage(db: Database, event_keys: Sequence[str], now: datetime) -> None:
    """List events to fan out (one listed already stays as it was), numbered after those listed."""
    if not event_keys:
        return
    first = int(db.execute("SELECT coalesce(max(position), 0) + 1 FROM fanout_queue").fetchone()[0])
    db.executemany("INSERT INTO fanout_queue (event_key, staged_at, position) VALUES (?, ?, ?) "
                   "ON CONFLICT DO NOTHING",
                   [(key, to_text(now), first + i) for i, key in enumerate(event_keys)])


def waiting(db: Database) -> list[str]:
    """The events listed, in the order they were listed."""
    return [str(r[0]) for r in db.execute("SELECT event_key FROM fanout_queue ORDER BY position, event_key")]


def done(db: Database, event_keys: Sequence[str]) -> None:
    """Take events off the list: their outbox rows are all written."""
    db.executemany("DELETE FROM fanout_queue WHERE event_key = ?", [(key,) for key in event_keys])


@contextmanager
def checkpoints_paused(db: Database) -> Iterator[None]:
    """No automatic checkpoint on this connection meanwhile.

    In WAL mode SQLite copies the log into the database file at the first commit past 1,000 pages of
    log, and syncs the file: during a fan-out of a hundred thousand rows that is nearly every batch, and
    it made the fan-out three times slower. `checkpoint` then copies the log once, off the event loop.
    PostgreSQL checkpoints on its own: nothing to pause there.
    """
    if backend_of(db) != SQLITE:
        yield
        return
    before = int(db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    db.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        db.execute(f"PRAGMA wal_autocheckpoint = {before}")


def checkpoint(path: str) -> None:
    """Copy the write-ahead log of the database file `path` into it, waiting for no one (PASSIVE), on a
    connection of its own: run it in a worker thread (SQLite lets the event loop's thread go on)."""
    conn = sqlite3.connect(path, timeout=1.0)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()
