"""`leaderwatch migrate-store` as an operator runs it (issue 15): a SQLite install (the excerpts imported by
`leaderwatch import`, plus subscriptions, settings, audit and outbox rows written through the storage API)
moved into a fresh PostgreSQL schema. Every row arrives with its id, the commands answer the same on both
stores, new ids go on past the copied ones, and the copy is refused (the target left as it was) when the
target holds data, when a `leaderwatch run` holds the source, or when a row does not fit."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaderwatch.alerts.matching import Delivery, delivery_key
from leaderwatch.alerts.stories import story_keys
from leaderwatch.storage import events as stored_events
from leaderwatch.storage import outbox
from leaderwatch.storage.db import Database, open_db, run_lock_holder
from leaderwatch.storage.migrate import table_names, tables_with_rows
from leaderwatch.storage.subscriptions import add_subscription, record_audit, set_channel_setting
from tests import helpers
from tests.conftest import new_postgres_schema

NOW = datetime(2025, 12, 12, 9, 0, tzinfo=UTC)
CHANNELS = [("slack", "C0ALPHA"), ("slack", "C0BRAVO"), ("discord", "900000000000000001")]


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`leaderwatch ARGV` in this process, without the environment's LEADERWATCH_ settings."""
    return helpers.run_cli(*argv, own_settings=True)


def fill(db: Database) -> None:
    """Subscriptions (one removed, so the ids have a gap), settings, audit rows, and outbox rows for the
    newest events of lmarena/text, one delivered: what a running install holds beside its history."""
    for platform, channel in CHANNELS:
        for rule in ("overtake", "new_leader"):
            add_subscription(db, platform, channel, "lmarena/*", rule, "U0OPS", NOW)
        record_audit(db, NOW, platform, channel, "U0OPS", "ops", "subscribe", "lmarena/*")
    db.execute("DELETE FROM subscriptions WHERE id = 2")
    set_channel_setting(db, "slack", "C0ALPHA", "groups", "china,us", NOW)
    db.table("installations").insert({  # as storage/installations.py stores one: the token encrypted
        "platform": "slack", "workspace": "T0ACME", "team_id": "T0ACME", "team_name": "Acme",
        "bot_token_encrypted": "gAAAAAB-not-a-real-token", "installed_at": NOW.isoformat()})
    newest = stored_events.recent_events(db, NOW - timedelta(days=400), ["lmarena/text"], limit=3)
    assert len(newest) == 3
    deliveries = [Delivery(e, p, c, (1,), delivery_key(e.dedupe_key, p, c))
                  for e in newest for p, c in CHANNELS]
    assert outbox.enqueue(db, deliveries, NOW, stories=story_keys) == 9
    first = outbox.due(db, NOW + timedelta(minutes=1), limit=1)[0]
    assert outbox.claim(db, first.id, NOW)
    outbox.mark_delivered(db, first.id, NOW, "1765530000.000100")


@pytest.fixture(scope="module")
def filled(imported_excerpts: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's SQLite install (a copy of the imported excerpts, then `fill`ed); the tests copy it
    again before changing it."""
    path = tmp_path_factory.mktemp("migrate") / "install.db"
    shutil.copy(imported_excerpts[0], path)
    db = open_db(path)
    try:
        with db.atomic():
            fill(db)
    finally:
        db.close()
    return path


@pytest.fixture
def source(filled: Path, tmp_path: Path) -> Path:
    path = tmp_path / "leaderwatch.db"
    shutil.copy(filled, path)
    return path


@pytest.fixture
def target() -> Iterator[str]:
    """A fresh PostgreSQL schema of its own (no tables yet): its URL; dropped after the test."""
    with new_postgres_schema("migrate") as url:
        yield url


def rows_of(db: Database, table: str) -> Counter[tuple[object, ...]]:
    """A table's rows, by their column names (as a multiset: the stores return rows in their own order)."""
    return Counter(tuple(sorted(row.items())) for row in db.query(f'SELECT * FROM "{table}"'))


def migrate(source: Path, target: str, *more: str) -> tuple[int, str, str]:
    return run_cli("migrate-store", "--from", str(source), "--to", target, *more)


def test_every_row_arrives_with_its_id_and_the_commands_answer_the_same(source: Path, target: str) -> None:
    code, out, err = migrate(source, target, "--batch", "500")
    assert code == 0, err
    lite, pg = open_db(source), open_db(target)
    try:
        tables = [t for t in table_names(lite) if t not in ("leaderwatch_migrations", "_sqlite_migrations")]
        assert sorted(tables) == sorted(t for t in table_names(pg) if t != "leaderwatch_migrations")
        for table in tables:
            assert rows_of(pg, table) == rows_of(lite, table), table
        counts = tables_with_rows(lite)
        assert counts["entries"] > 2 * 500  # copied in several batches
        assert {"subscriptions", "audit", "outbox", "channel_settings", "events", "stories",
                "installations"} <= set(counts)
        assert tables_with_rows(pg) == counts
        # The summary and the progress say the rows of each table.
        assert f"{sum(counts.values()):,} rows in {len(tables)} tables" in out
        assert any(line.split() == ["subscriptions", "5"] for line in out.splitlines())
        assert "run the new deployment with the same LEADERWATCH_SECRET_KEY" in out
        assert f"entries: {counts['entries']:,}/{counts['entries']:,} rows" in err
        assert f"entries: 1,000/{counts['entries']:,} rows" in err or "entries: 500/" in err
        # New ids go on past the copied ones.
        copied = max(r["id"] for r in pg.query("SELECT id FROM subscriptions"))
        assert add_subscription(pg, "slack", "C0NEW", "lmarena/*", "overtake", "U0OPS", NOW)
        new = pg.execute("SELECT id FROM subscriptions WHERE channel_id = 'C0NEW'").fetchone()[0]
        assert new == copied + 1
        record_audit(pg, NOW, "slack", "C0NEW", "U0OPS", "ops", "subscribe", "lmarena/*")
        assert pg.execute("SELECT max(id) FROM audit").fetchone()[0] == len(CHANNELS) + 1
    finally:
        lite.close()
        pg.close()
    for command in (["top", "lmarena/text", "-n", "5"], ["boards"], ["export", "lmarena/text"],
                    ["export", "lmarena/text", "--format", "jsonl", "--from", "2025-01-01"],
                    ["query", "events lmarena/text 365 at 2025-12-11"], ["query", "race all"],
                    ["query", "--channel", "C0ALPHA", "settings"]):
        on_sqlite = run_cli("--db", str(source), *command)
        on_postgres = run_cli("--db", target, *command)
        assert on_sqlite[0] == 0, (command, on_sqlite[2])
        assert on_postgres[:2] == on_sqlite[:2], command


def test_a_target_holding_data_is_refused_and_left_as_it_was(source: Path, target: str) -> None:
    assert migrate(source, target)[0] == 0
    db = open_db(target)
    try:
        before = tables_with_rows(db)
        code, out, err = migrate(source, target)
        assert code == 1 and out == ""
        assert "the target already holds data: aliases (" in err
        assert "copies into an empty database only" in err and "copying" not in err
        assert tables_with_rows(db) == before
    finally:
        db.close()


def test_a_source_a_run_holds_is_refused_and_nothing_is_copied(source: Path, target: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom leaderwatch.storage.db import RunLock\n"
         f"lock = RunLock({str(source)!r})\nlock.acquire()\nprint('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, out, err = migrate(source, target)
    finally:
        holder.communicate("", timeout=10)
    assert code == 1
    assert f"is in use by leaderwatch run (pid {holder.pid} on " in err
    assert "stop it first" in err
    db = open_db(target)
    try:
        assert tables_with_rows(db) == {}
    finally:
        db.close()
    assert migrate(source, target)[0] == 0  # once the run has stopped


def test_a_copy_that_fails_commits_nothing_and_says_so(source: Path, target: str) -> None:
    """A row PostgreSQL refuses (SQLite kept text in an integer column), in the last table copied: the
    tables before it were written, and rolled back with it."""
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE outbox SET attempts = 'many' WHERE id = 1")
    code, out, err = migrate(source, target)
    assert code == 1 and out == ""
    assert "the copy failed, nothing was committed" in err
    assert "as empty as before" in err and "run migrate-store again" in err
    db = open_db(target)
    try:
        assert tables_with_rows(db) == {}
    finally:
        db.close()


@pytest.mark.parametrize("argv, said", [
    (["--to", "/tmp/other.db"], "is not a PostgreSQL URL"),
    (["--batch", "0"], "--batch 0: give a number of rows of at least 1"),
    (["--from", "postgresql://lw:secret@127.0.0.1:1/old"], "is a PostgreSQL URL: migrate-store moves"),
])
def test_bad_arguments_are_said_with_what_to_do(source: Path, argv: list[str], said: str) -> None:
    args = ["migrate-store", "--from", str(source), "--to", "postgresql://postgres@127.0.0.1:1/none", *argv]
    code, _, err = run_cli(*args)
    assert code == 2 and said in err
    assert "secret" not in err


def test_a_missing_source_is_not_created(tmp_path: Path) -> None:
    code, _, err = run_cli("migrate-store", "--from", str(tmp_path / "nope.db"), "--to",
                           "postgresql://postgres@127.0.0.1:1/none")
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "nope.db").exists()


def test_an_unreachable_target_is_said_and_the_source_is_let_go(source: Path, refused_port: int) -> None:
    code, out, err = run_cli("migrate-store", "--from", str(source), "--to",
                             f"postgresql://postgres@127.0.0.1:{refused_port}/leaderwatch")
    assert code == 1 and out == ""
    assert "cannot open --to: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:" in err
    assert run_lock_holder(source) is None  # the copy's own hold on the run lock ended with it


def test_the_command_and_each_of_its_options_have_help() -> None:
    import argparse

    from leaderwatch.bot.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in sub._choices_actions}["migrate-store"]
    for action in sub.choices["migrate-store"]._actions:
        assert action.help, action.dest
