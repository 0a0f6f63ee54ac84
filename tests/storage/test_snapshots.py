"""Storage of snapshots: idempotent saves, unchanged polls, answers as of any past time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.sources.base import Board, Entry, make_snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import open_db
from tests.conftest import new_postgres_schema

BOARD = Board("test/text", "Test board", "score", True, True, "https://example.org/board")
T0 = datetime(2025, 1, 24, tzinfo=UTC)


def entries(scores: dict[str, float]) -> list[Entry]:
    ident = Identity()
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    return [ident.entry(name, score, rank, organization="DeepSeek" if "deepseek" in name.lower() else None,
                        ci_lower=score - 5, ci_upper=score + 4, votes=1000 + rank)
            for rank, (name, score) in enumerate(ordered, start=1)]


@pytest.fixture
def db(any_db: Database) -> Database:
    """A new database on each store (SQLite, PostgreSQL)."""
    return any_db


def count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_save_and_read_back_exactly(db: Database) -> None:
    snap = make_snapshot(BOARD, T0, T0, entries({"DeepSeek-R1": 1357, "Gemini-Exp-1206": 1374}),
                         origin="test-csv")
    result = store.save_snapshot(db, snap)
    assert result.stored
    back = store.latest_snapshot(db, BOARD.id)
    assert back == snap
    assert back is not None and back.entries[1].name == "DeepSeek-R1"
    assert back.entries[1].ci_lower == 1352 and back.entries[1].votes == 1002


def test_unchanged_content_writes_no_entries(db: Database) -> None:
    snap = make_snapshot(BOARD, T0, T0, entries({"a": 3, "b": 2}))
    store.save_snapshot(db, snap)
    later = T0 + timedelta(hours=1)
    again = make_snapshot(BOARD, later, later, entries({"a": 3, "b": 2}))
    result = store.save_snapshot(db, again)
    assert not result.stored
    assert count(db, "snapshots") == 1 and count(db, "entries") == 2
    assert db.execute("SELECT last_seen_at FROM snapshots").fetchone()[0] == later.isoformat()


def test_saving_twice_is_idempotent(db: Database) -> None:
    snap = make_snapshot(BOARD, T0, T0, entries({"a": 3, "b": 2}))
    store.save_snapshot(db, snap)
    store.save_snapshot(db, snap)
    assert count(db, "snapshots") == 1 and count(db, "entries") == 2


def test_as_of_any_past_time(db: Database) -> None:
    days = [T0 + timedelta(days=i) for i in range(3)]
    for i, day in enumerate(days):
        store.save_snapshot(db, make_snapshot(BOARD, day, day, entries({"a": 10 + i, "b": 20 - i})))
    assert store.snapshot_at(db, BOARD.id, T0 - timedelta(seconds=1)) is None
    mid = store.snapshot_at(db, BOARD.id, days[1] + timedelta(hours=5))
    assert mid is not None and mid.as_of == days[1]
    assert [e.score for e in mid.entries] == [19, 11]
    assert [s.as_of for s in store.snapshots_between(db, BOARD.id)] == days


def test_changed_snapshot_stores_new_rows(db: Database) -> None:
    store.save_snapshot(db, make_snapshot(BOARD, T0, T0, entries({"a": 3, "b": 2})))
    t1 = T0 + timedelta(days=1)
    result = store.save_snapshot(db, make_snapshot(BOARD, t1, t1, entries({"a": 3, "b": 4})))
    assert result.stored and result.previous_id is not None
    assert count(db, "entries") == 4
    assert store.entry_count(db, BOARD.id) == 2


def test_a_table_that_comes_back_under_one_date_is_stored_again(db: Database) -> None:
    # Issue 14: A -> B -> A with the same publish date failed every later poll on a unique index.
    a, b = entries({"a": 3, "b": 2}), entries({"a": 2, "b": 3})
    first = store.save_snapshot(db, make_snapshot(BOARD, T0, T0, a))
    second = store.save_snapshot(db, make_snapshot(BOARD, T0, T0 + timedelta(hours=1), b))
    back = store.save_snapshot(db, make_snapshot(BOARD, T0, T0 + timedelta(hours=2), a))
    assert back.stored and back.previous_id == second.snapshot_id != first.snapshot_id
    latest = store.latest_snapshot(db, BOARD.id)
    assert latest is not None and [e.name for e in latest.entries] == ["a", "b"]
    # The next polls of A are unchanged content, not another return.
    again = store.save_snapshot(db, make_snapshot(BOARD, T0, T0 + timedelta(hours=3), a))
    assert not again.stored and again.snapshot_id == back.snapshot_id
    assert [[e.name for e in s.entries] for s in store.snapshots_between(db, BOARD.id)] == [
        ["a", "b"], ["b", "a"], ["a", "b"]]


def test_models_table_keeps_first_sighting(db: Database) -> None:
    store.save_snapshot(db, make_snapshot(BOARD, T0, T0, entries({"Qwen/Qwen2-72B-Instruct": 3})))
    t1 = T0 + timedelta(days=1)
    store.save_snapshot(db, make_snapshot(BOARD, t1, t1, entries({"qwen2-72b-instruct": 4})))
    rows = list(db.table("models").rows)
    assert len(rows) == 1 and rows[0]["first_seen_at"] == T0.isoformat()


def test_failed_transaction_stores_nothing(db: Database) -> None:
    snap = make_snapshot(BOARD, T0, T0, entries({"a": 3, "b": 2}))
    with pytest.raises(RuntimeError), db.atomic():
        store.save_snapshot(db, snap)
        raise RuntimeError("crash between two boards")
    assert count(db, "snapshots") == 0 and count(db, "entries") == 0


def test_database_is_wal_and_readable_by_sqlite_utils_cli(tmp_path: Path) -> None:
    # SQLite only by nature: the file's journal mode and the sqlite-utils command line reading it.
    path = tmp_path / "history.db"
    db = open_db(path)
    store.save_snapshot(db, make_snapshot(BOARD, T0, T0, entries({"DeepSeek-R1": 1357})))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    out = subprocess.run([sys.executable, "-m", "sqlite_utils", "query", str(path),
                          "select name, score, organization from entries"],
                         capture_output=True, text=True, check=True).stdout
    assert '"name": "DeepSeek-R1"' in out and '"score": 1357' in out


@pytest.fixture(params=["sqlite", "postgres"])
def new_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new database is made, on each store in turn: a SQLite file, or a new, empty PostgreSQL
    schema (its URL; dropped after)."""
    if request.param == "sqlite":
        yield str(tmp_path / "history.db")
        return
    with new_postgres_schema("migrate") as url:
        yield url


def test_migrations_are_applied_once(new_target: str) -> None:
    path = new_target
    open_db(path).close()
    db = open_db(path)
    names = [r["name"] for r in db.table("leaderwatch_migrations").rows_where(order_by="name")]
    assert names[:6] == ["m001_initial", "m002_rule_states", "m003_chat", "m004_rule_states_before",
                         "m005_stories", "m006_source_drift"]
    db.close()
    assert "m007_snapshot_returns" in names and len(names) == len(set(names))
