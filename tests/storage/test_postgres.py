"""PostgreSQL as a second store (issue 15): one schema and one set of migrations on both stores, `?` SQL
translated, transactions and savepoints, errors said plainly, an old SQLite file upgraded without running
a migration twice, and copies between the stores (the PostgreSQL backup, a move to PostgreSQL)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations as OldMigrations

from leaderwatch.sources.base import Board, make_snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import db as storage_db
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import (
    DATABASE_ERRORS,
    DatabaseLockedError,
    RunLock,
    StorageError,
    db_file,
    is_locked,
    is_writable,
    migrations,
    open_db,
    run_lock_holder,
    schema_state,
    storage_error,
)
from leaderwatch.storage.engine import redact
from leaderwatch.storage.export import backup_database, copy_database
from leaderwatch.storage.postgres import translate
from leaderwatch.storage.subscriptions import add_subscription, channel_subscriptions
from tests.conftest import new_postgres_schema

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BOARD = Board("test/a", "Test a", "score", True, False, "https://example.org/a")


def save(db: Database, day: int, names: list[str]) -> int:
    ident = Identity()
    entries = [ident.entry(n, 100.0 - i, i + 1) for i, n in enumerate(names)]
    when = T0 + timedelta(days=day)
    return store.save_snapshot(db, make_snapshot(BOARD, when, when, entries)).snapshot_id


@pytest.fixture
def pg(postgres_session_db: Database) -> Database:
    """This process's PostgreSQL database, emptied (for the tests of PostgreSQL's own behaviour)."""
    from tests.conftest import empty_postgres

    empty_postgres(postgres_session_db)
    return postgres_session_db


# --- SQL with `?` -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", ("SELECT * FROM t WHERE a = %s AND b = %s", None)),
    ("SELECT '?', \"a?\" FROM t WHERE k LIKE 'x%' AND v = ?",
     ("SELECT '?', \"a?\" FROM t WHERE k LIKE 'x%%' AND v = %s", None)),
    ("SELECT 'it''s ?' || ?", ("SELECT 'it''s ?' || %s", None)),
    ("VALUES (?1, ?2, ?1, ?10)", ("VALUES (%s, %s, %s, %s)", (0, 1, 0, 9))),
    ("SELECT 5 % 3", ("SELECT 5 %% 3", None)),
])
def test_placeholders_are_translated_outside_literals_only(sql: str, expected: tuple[str, object]) -> None:
    assert translate(sql) == expected


def test_a_literal_percent_and_question_mark_reach_the_server_unchanged(any_db: Database) -> None:
    any_db.execute("INSERT INTO boards (id, title) VALUES (?, ?)", ["a?", "50% off?"])
    rows = any_db.execute("SELECT id, title FROM boards WHERE title LIKE '50%' AND id = ?", ["a?"]).fetchall()
    assert [tuple(r) for r in rows] == [("a?", "50% off?")]


# --- the table helpers, transactions ----------------------------------------------------------------------

def test_table_helpers_behave_alike_on_both_stores(any_db: Database) -> None:
    t = any_db.table("source_status")
    t.upsert({"source": "a", "status": "ok", "consecutive_failures": 0}, pk="source")
    t.upsert({"source": "a", "consecutive_failures": 3}, pk="source")  # other columns kept
    t.insert({"source": "b", "status": "failing", "consecutive_failures": 1})
    found = [(r["source"], r["status"], r["consecutive_failures"]) for r in t.rows_where(order_by="source")]
    assert found == [("a", "ok", 3), ("b", "failing", 1)]
    assert t.count == 2 and t.exists() and not any_db.table("nope").exists()
    assert list(t.rows_where("source = ?", ["b"], select="status")) == [{"status": "failing"}]
    add_subscription(any_db, "slack", "C1", "lmarena/*", "overtake", "U1", T0)
    [sub] = channel_subscriptions(any_db, "slack", "C1")
    any_db.table("subscriptions").update(sub["id"], {"disabled_at": "2025-01-02T00:00:00+00:00"})
    assert any_db.table("subscriptions").get(sub["id"])["disabled_at"] == "2025-01-02T00:00:00+00:00"
    # sum() of an integer column is an int on both (PostgreSQL's numeric is turned back into one).
    save(any_db, 0, ["a", "b", "c"])
    total = any_db.execute("SELECT sum(entry_count) FROM snapshots").fetchone()[0]
    assert total == 3 and type(total) is int


def test_a_failed_savepoint_rolls_back_alone(any_db: Database) -> None:
    with any_db.atomic():
        any_db.execute("INSERT INTO boards (id) VALUES ('kept')")
        with pytest.raises(RuntimeError), any_db.atomic():
            any_db.execute("INSERT INTO boards (id) VALUES ('undone')")
            raise RuntimeError("inner")
    assert [r[0] for r in any_db.execute("SELECT id FROM boards").fetchall()] == ["kept"]
    with pytest.raises(RuntimeError), any_db.atomic():
        any_db.execute("INSERT INTO boards (id) VALUES ('gone')")
        raise RuntimeError("outer")
    assert [r[0] for r in any_db.execute("SELECT id FROM boards").fetchall()] == ["kept"]


def test_a_transaction_is_invisible_to_other_connections_until_it_commits(pg: Database) -> None:
    with psycopg.connect(pg.url, autocommit=True) as other:
        with pg.atomic():
            pg.execute("INSERT INTO boards (id) VALUES ('b1')")
            assert other.execute("SELECT count(*) FROM boards").fetchone() == (0,)
            assert pg.execute("SELECT count(*) FROM boards").fetchone()[0] == 1  # same connection inside
        assert other.execute("SELECT count(*) FROM boards").fetchone() == (1,)


def test_a_write_that_waits_too_long_for_a_lock_is_said_plainly(pg: Database) -> None:
    db = open_db(pg.url, busy_timeout=0.2)
    try:
        with psycopg.connect(pg.url) as other:
            other.execute("LOCK TABLE boards IN ACCESS EXCLUSIVE MODE")
            started = datetime.now(UTC)
            with pytest.raises(DatabaseLockedError) as caught:
                db.execute("INSERT INTO boards (id) VALUES ('x')")
            assert datetime.now(UTC) - started < timedelta(seconds=3)
            other.rollback()
    finally:
        db.close()
    exc = caught.value
    # One of the errors the code around a write catches on either store, and not a SQLite error.
    assert isinstance(exc, DATABASE_ERRORS) and not isinstance(exc, sqlite3.Error)
    assert is_locked(exc) and storage_error(exc, "x") is exc
    assert "is locked" in str(exc) and "\n" not in str(exc)


def test_the_pools_connections_give_a_vanished_server_up_in_seconds_not_minutes(pg) -> None:
    from leaderwatch.storage.postgres import PostgresDatabase

    def parameters(db: PostgresDatabase) -> dict[str, str]:
        with db._connection() as conn:
            return conn.info.get_parameters()

    assert {k: parameters(pg)[k] for k in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == \
        {"keepalives": "1", "keepalives_idle": "10", "tcp_user_timeout": "15000"}
    own = PostgresDatabase(pg.url + ("&" if "?" in pg.url else "?") + "keepalives_idle=30", max_size=1)
    try:
        assert parameters(own)["keepalives_idle"] == "30"  # the URL's own setting wins
    finally:
        own.close()


def test_a_pool_with_every_connection_in_use_is_busy_not_unreachable(pg) -> None:
    import threading

    from leaderwatch.storage.db import DatabaseLockedError, is_locked, is_unreachable
    from leaderwatch.storage.postgres import PostgresDatabase

    one = PostgresDatabase(pg.url, busy_timeout=0.0, max_size=1)  # waits 5 s for a connection
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with one.atomic():
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(10)
        with pytest.raises(DatabaseLockedError) as caught:
            one.execute("SELECT 1")
        assert is_locked(caught.value) and not is_unreachable(caught.value)
        assert "is busy" in str(caught.value) and "cannot reach" not in str(caught.value)
    finally:
        done.set()
        holder.join()
        one.close()


def test_a_key_value_string_is_refused_not_made_a_sqlite_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError) as caught:
        open_db("host=127.0.0.1 dbname=test user=postgres password=s3cret")
    message = str(caught.value)
    assert "postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in message and "s3cret" not in message
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_named_without_its_password(refused_port: int) -> None:
    url = f"postgresql://leader:s3cret@127.0.0.1:{refused_port}/lw"
    with pytest.raises(StorageError) as caught:
        open_db(url)
    message = str(caught.value)
    assert "cannot reach PostgreSQL" in message and f"127.0.0.1:{refused_port}" in message
    assert "s3cret" not in message and "LEADERWATCH_DB" in message


def test_postgres_has_no_run_lock_and_names_itself_without_the_password(pg: Database, tmp_path: Path) -> None:
    url = "postgresql://leader:s3cret@db.example:5432/lw"
    assert redact(url) == "postgresql://leader:***@db.example:5432/lw"
    assert redact("postgresql://leader@db.example/lw") == "postgresql://leader@db.example/lw"
    with RunLock(url), RunLock(url):  # two replicas: no file lock between them (they elect a leader)
        assert run_lock_holder(url) is None
    assert not list(tmp_path.iterdir())
    assert db_file(pg).startswith("postgresql://") and is_writable(pg)


# --- migrations -----------------------------------------------------------------------------------------

def test_one_set_of_migrations_makes_the_same_tables_and_columns_on_both(pg: Database,
                                                                         tmp_path: Path) -> None:
    lite = open_db(tmp_path / "lw.db")

    def columns(db: Database, sql: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for table, column in db.execute(sql).fetchall():
            out.setdefault(str(table), set()).add(str(column))
        return out

    on_sqlite = columns(lite, "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
                              "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'")
    on_postgres = columns(pg, "SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = current_schema()")
    assert on_sqlite == on_postgres and "leaderwatch_migrations" in on_postgres
    assert schema_state(pg) == schema_state(lite) == storage_db.SchemaState(migrations.names()[-1], (), ())
    lite.close()


def old_file(path: Path) -> Database:
    """A database as the version before issue 15 made it: sqlite-utils' Migrations, m001..m011."""
    db = Database(path)
    old = OldMigrations("leaderwatch")
    for name in migrations.names():
        if name < "m012":
            old()(getattr(storage_db, name))
    old.apply(db)
    return db


def test_a_file_made_before_issue_15_upgrades_without_applying_anything_twice(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = old_file(path)
    before = {r["name"]: r["applied_at"] for r in db.table("_sqlite_migrations").rows}
    assert len(before) == 11
    db.execute("INSERT INTO snapshots (id, board_id, as_of) VALUES (1, 'b', '2025-01-01')")
    # m011 deletes score-less entries: were it applied again, this row would go.
    db.execute("INSERT INTO entries (snapshot_id, position, name, score) VALUES (1, 0, 'kept', NULL)")
    db.close()
    db = open_db(path)
    applied = {r["name"]: r["applied_at"] for r in db.table("leaderwatch_migrations").rows}
    assert {n: applied[n] for n in before} == before  # recorded as they were, not run again
    assert set(applied) == set(migrations.names()) and migrations.pending(db) == []
    assert db.execute("SELECT name FROM entries").fetchall() == [("kept",)]
    assert db.table("fanout_queue").exists() and "position" in db.table("fanout_queue").columns_dict
    assert len(list(db.table("_sqlite_migrations").rows)) == 11  # left as it was
    db.close()
    reopened = open_db(path)  # up to date: nothing pending, nothing written
    assert reopened.execute("SELECT count(*) FROM leaderwatch_migrations").fetchone()[0] == len(applied)
    reopened.close()


def test_migrations_apply_in_name_order_once_each(pg: Database) -> None:
    rows = pg.execute("SELECT name FROM leaderwatch_migrations ORDER BY name").fetchall()
    assert [r[0] for r in rows] == migrations.names()
    assert migrations.apply(pg) == []  # again: nothing (a second replica starting finds it done)


# --- copies between the stores ------------------------------------------------------------------------------

def test_a_postgres_backup_is_a_sqlite_copy_of_every_table(pg: Database, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    save(pg, 0, ["a", "b"])
    save(pg, 1, ["b", "a", "c"])
    add_subscription(pg, "slack", "C1", "test/*", "overtake", "U1", T0)
    with caplog.at_level(logging.WARNING):
        result = backup_database(pg, tmp_path / "backup.db")
    assert result.snapshots == 2 and "pg_dump" in caplog.text
    copy = open_db(result.path)
    for table in ("snapshots", "entries", "models", "subscriptions", "boards"):
        assert (copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                == pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0]), table
    assert store.latest_snapshot(copy, BOARD.id) == store.latest_snapshot(pg, BOARD.id)
    copy.close()


def test_a_sqlite_database_moves_to_postgres_and_its_ids_go_on(pg: Database, tmp_path: Path) -> None:
    lite = open_db(tmp_path / "lw.db")
    save(lite, 0, ["a", "b"])
    add_subscription(lite, "slack", "C1", "test/*", "overtake", "U1", T0)
    add_subscription(lite, "slack", "C1", "test/*", "new_leader", "U1", T0)
    copied = copy_database(lite, pg)
    assert copied > 0 and store.latest_snapshot(pg, BOARD.id) == store.latest_snapshot(lite, BOARD.id)
    add_subscription(pg, "slack", "C2", "test/*", "overtake", "U1", T0)  # numbered after the copied rows
    assert [s["id"] for s in channel_subscriptions(pg, "slack", "C2")] == [3]
    assert save(pg, 1, ["b", "a"]) == 2
    lite.close()


@pytest.fixture
def unmigrated_schema() -> Iterator[str]:
    """A schema of its own, empty, dropped after the test."""
    with new_postgres_schema("mig") as url:
        yield url


def test_two_replicas_opening_a_new_database_together_migrate_it_once(pg: Database,
                                                                       unmigrated_schema: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        opened = list(pool.map(lambda _: open_db(unmigrated_schema), range(3)))
    try:
        rows = opened[0].execute("SELECT name FROM leaderwatch_migrations ORDER BY name").fetchall()
        assert [r[0] for r in rows] == migrations.names()
    finally:
        for db in opened:
            db.close()


def test_retention_and_vacuum_run_on_postgres(pg: Database) -> None:
    from leaderwatch.storage.retention import RetentionPolicy, apply_retention, vacuum

    for day in range(0, 60, 3):
        save(pg, day, ["a", "b", "c"] if day // 3 % 2 else ["b", "a", "c"])  # a change each time
    report = apply_retention(pg, RetentionPolicy(7, "week"), T0 + timedelta(days=90))
    assert report.snapshots_removed > 0
    assert pg.execute("SELECT count(*) FROM snapshots").fetchone()[0] == report.snapshots_before - \
        report.snapshots_removed
    assert report.entries_removed == 3 * report.snapshots_removed  # executemany's count is the sum
    vacuum(pg)


# --- the outbox's queries that are written per store ----------------------------------------------------

def test_the_dispatcher_s_outbox_queries_answer_alike_on_both_stores(any_db: Database) -> None:
    """`ready_channels` (SQLite's bare columns; a join on PostgreSQL), `oldest_due` (a CASE where SQLite
    had max()), `waiting_platforms` (INDEXED BY on SQLite only), claims and their counts."""
    from leaderwatch.alerts.matching import Delivery, delivery_key
    from leaderwatch.storage import outbox
    from leaderwatch.storage.events import save_events
    from tests.bot.test_stories import lead

    events = [lead("china", T0 + timedelta(hours=h)) for h in range(3)]
    save_events(any_db, events, None, T0)
    deliveries = [Delivery(e, "slack", channel, (1,), delivery_key(e.dedupe_key, "slack", channel))
                  for e in events for channel in ("C1", "C2", "C3")]
    held = {"C3": T0 + timedelta(hours=5)}  # C3 is muted until 05:00
    assert outbox.enqueue(any_db, deliveries, T0, hold=lambda d: (held.get(d.channel_id), None)) == 9
    assert outbox.enqueue(any_db, deliveries, T0) == 0  # each key once
    now = T0 + timedelta(hours=1)
    heads = outbox.ready_channels(any_db, now, "slack")
    assert [channel for _, channel in heads] == ["C1", "C2"]
    c1_head = heads[0][0]
    assert outbox.claim(any_db, c1_head, now) and not outbox.claim(any_db, c1_head, now)
    # C1's oldest row is in flight: C1 waits behind it; C2 is still ready.
    assert [channel for _, channel in outbox.ready_channels(any_db, now, "slack")] == ["C2"]
    outbox.mark_retry(any_db, c1_head, now + timedelta(minutes=5), "429")
    assert [c for _, c in outbox.ready_channels(any_db, now, "slack")] == ["C2"]
    later = T0 + timedelta(hours=6)
    assert [c for _, c in outbox.ready_channels(any_db, later, "slack")] == ["C1", "C2", "C3"]
    assert outbox.oldest_due(any_db, now) == {"slack": T0}
    assert outbox.oldest_due(any_db, later) == {"slack": T0}  # C1/C2 waited since created
    assert outbox.waiting_platforms(any_db) == {"slack"}
    assert outbox.claim_all(any_db, [r.id for r in outbox.channel_rows(any_db, "slack", "C2", later)], later)
    assert outbox.fail_channel(any_db, "slack", "C2", "channel_not_found") == 3
    assert outbox.depth(any_db) == {"pending": 6, "failed": 3}
    c1 = [r.id for r in outbox.channel_rows(any_db, "slack", "C1", later)]
    outbox.mark_delivered_all(any_db, c1, later)
    assert outbox.oldest_due(any_db, later) == {"slack": T0 + timedelta(hours=5)}  # C3: since its mute ended


def test_a_name_with_a_nul_character_is_stored_on_both_stores(any_db: Database) -> None:
    # PostgreSQL's text cannot hold NUL: without care a leaderboard row named so would fail every poll.
    snapshot_id = save(any_db, 0, ["gpt-\x00x", "claude"])
    names = [r[0] for r in any_db.execute("SELECT name FROM entries WHERE snapshot_id = ? ORDER BY position",
                                          [snapshot_id]).fetchall()]
    assert names[1] == "claude" and names[0] in ("gpt-x", "gpt-\x00x")  # SQLite keeps it, PostgreSQL drops it
    assert save(any_db, 0, ["gpt-\x00x", "claude"]) == snapshot_id  # the same table again: nothing new
