"""Opening the database: an up-to-date one is opened without a write; writes wait for a lock, then fail
plainly; a full disk is named; the identity tables are written only when they changed; reads that stay
flat as history grows (board summaries, the tables a chart draws, a model's rows)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.sources.base import Board, make_snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import (
    DatabaseLockedError,
    DiskFullError,
    RunLock,
    db_file,
    open_db,
    storage_error,
)
from leaderwatch.storage.organizations import sync_identity
from leaderwatch.storage.standings import best_entries

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BOARD = Board("test/a", "Test a", "score", True, False, "https://example.org/a")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    open_db(tmp_path / "lw.db").close()
    return tmp_path / "lw.db"


@pytest.fixture
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO http_validators (url) VALUES ('https://other.example')")
    yield other
    other.execute("ROLLBACK")
    other.close()


def test_an_up_to_date_database_opens_while_another_program_holds_the_write_lock(
        path: Path, locked: sqlite3.Connection) -> None:
    # SQLite only by nature: a second sqlite3 connection holding the file's write lock (WAL readers).
    db = open_db(path, busy_timeout=0.1)
    try:
        assert db.execute("SELECT count(*) FROM boards").fetchone()[0] == 0
        assert db_file(db) == str(path)
    finally:
        db.close()


def test_a_transaction_that_reads_then_writes_waits_for_the_lock(path: Path, locked: sqlite3.Connection
                                                                  ) -> None:
    # SQLite only by nature: the busy timeout of a connection that meets another one's write lock.
    db = open_db(path, busy_timeout=0.4)
    started = time.perf_counter()
    with pytest.raises(sqlite3.OperationalError) as failed, db.atomic():
        db.execute("SELECT count(*) FROM boards").fetchone()
        db.execute("INSERT INTO http_validators (url) VALUES ('https://ours.example')")
    assert time.perf_counter() - started >= 0.35  # waited the busy timeout, not failed at once
    known = storage_error(failed.value, str(path))
    assert isinstance(known, DatabaseLockedError)
    assert str(known).startswith(f"the database {path} is locked by another program")
    db.close()


def test_the_lock_message_names_the_run_holding_the_database(path: Path) -> None:
    # SQLite only by nature: the flock run lock beside a database file.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, datetime\n"
        "from leaderwatch.storage.db import RunLock\n"
        "lock = RunLock(sys.argv[1], datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        known = storage_error(sqlite3.OperationalError("database is locked"), str(path))
    finally:
        holder.communicate("")
    assert known is not None and f"is locked by leaderwatch run (pid {holder.pid} on " in str(known)
    assert "since 2025-01-01 00:00:00 UTC" in str(known)
    # Once it has ended, and from within the run itself, the lock names nobody.
    assert "by another program" in str(storage_error(sqlite3.OperationalError("database is locked"),
                                                     str(path)))
    with RunLock(path, T0):
        assert "by another program" in str(storage_error(sqlite3.OperationalError("database is locked"),
                                                         str(path)))


def test_a_full_disk_is_named() -> None:
    # SQLite only by nature: sqlite3's and the OS's disk-full errors (no database is opened).
    known = storage_error(sqlite3.OperationalError("database or disk is full"), "/data/lw.db")
    assert isinstance(known, DiskFullError)
    assert str(known).startswith("the disk holding /data/lw.db is full: database or disk is full.")
    assert storage_error(OSError(28, "No space left on device"), "/data/lw.db") is not None
    assert storage_error(sqlite3.OperationalError("no such table: x"), "/data/lw.db") is None


def test_identity_tables_are_written_only_when_they_changed(any_db: Database) -> None:
    db = any_db
    identity = Identity.load()
    assert sync_identity(db, identity) is True
    sqlite = db.backend == "sqlite"
    changes = db.conn.total_changes if sqlite else None  # a count of rows written: SQLite's only
    assert sync_identity(db, identity) is False
    if sqlite:
        assert db.conn.total_changes == changes


# --- reads that stay flat -----------------------------------------------------------------------------

def save(db: Database, day: int, names: list[str]) -> None:
    ident = Identity()
    entries = [ident.entry(n, 100.0 - i, i + 1) for i, n in enumerate(names)]
    when = T0 + timedelta(days=day)
    store.save_snapshot(db, make_snapshot(BOARD, when, when, entries))


def test_spread_between_keeps_the_newest_of_each_slice(any_db: Database) -> None:
    for day in range(30):
        save(any_db, day, [f"m{day}", "x"])
    every = store.spread_between(any_db, BOARD.id, None, None, 100)
    assert [when for _, when in every] == [T0 + timedelta(days=d) for d in range(30)]
    few = store.spread_between(any_db, BOARD.id, None, None, 10)
    assert len(few) == 10
    assert few[-1][1] == T0 + timedelta(days=29)  # the newest always
    assert [w for _, w in few] == sorted(w for _, w in few)
    gaps = {(b[1] - a[1]).days for a, b in zip(few, few[1:], strict=False)}
    assert gaps <= {2, 3, 4}  # spread over the period, not bunched


def test_board_summaries_without_counts_read_the_newest_snapshot(any_db: Database) -> None:
    for day in range(5):
        save(any_db, day, ["a", "b", "c"][: 1 + day % 3])
    [full] = store.board_summaries(any_db)
    [light] = store.board_summaries(any_db, counts=False)
    assert full.snapshots == 5 and light.snapshots == 0
    assert full.last_as_of == light.last_as_of == T0 + timedelta(days=4)
    assert full.entries == light.entries == 2


def test_best_entries_reads_each_snapshot_for_one_model(any_db: Database) -> None:
    save(any_db, 0, ["a", "b"])
    save(any_db, 1, ["b", "c"])
    ids = [i for i, _ in store.spread_between(any_db, BOARD.id, None, None, 10)]
    key = Identity().key("b")
    found = best_entries(any_db, key, ids)
    assert [found[i].rank for i in ids] == [2, 1]
    assert best_entries(any_db, Identity().key("a"), ids).keys() == {ids[0]}


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database to open and reopen, on each store in turn: a new SQLite file, or this test process's
    PostgreSQL schema (emptied) by its URL."""
    if request.param == "sqlite":
        return str(tmp_path / "old.db")
    from tests.conftest import empty_postgres

    empty_postgres(request.getfixturevalue("postgres_session_db"))
    return str(request.getfixturevalue("postgres_schema"))


def test_a_score_stored_as_null_before_scores_were_checked_is_dropped_on_upgrade(target: str) -> None:
    path = target
    db = open_db(path)
    save(db, 0, ["a", "b", "c"])
    # As a database written before issue 14 held it: LMArena's NaN rating stored as NULL, m011 not run.
    with db.atomic():
        db.execute("UPDATE entries SET score = NULL WHERE name = 'b'")
        db.execute("DELETE FROM leaderwatch_migrations WHERE name = 'm011_drop_scoreless_entries'")
    db.close()
    db = open_db(path)
    [snapshot] = [store.snapshot_at(db, BOARD.id, T0 + timedelta(days=1))]
    assert snapshot is not None
    assert [(e.name, e.score) for e in snapshot.entries] == [("a", 100.0), ("c", 98.0)]
    assert db.execute("SELECT count(*) FROM entries WHERE score IS NULL").fetchone()[0] == 0
    db.close()
