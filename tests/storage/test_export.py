"""Export of a board's history (exact CSV and JSON rows from real imported data, streamed) and backups
of the live database (consistent while another connection writes)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

import leaderwatch.storage.export
from leaderwatch.sources.base import Entry
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import StorageError, open_db
from leaderwatch.storage.export import (
    COLUMNS,
    TargetError,
    backup_database,
    history_rows,
    history_span,
    to_record,
    write_csv,
    write_json,
    write_jsonl,
)
from tests.helpers import recorded_template

NOW = datetime(2025, 2, 1, tzinfo=UTC)

RECORDED = (
    *(f"lmarena/fboulnois_lmsys_csv/lmsys_2025-01-{d}.csv" for d in ("07", "16", "20", "22", "24", "29")),
    *(f"aider/polyglot_leaderboard/polyglot_leaderboard_2025-01-{d}.yml" for d in ("20", "24", "31")),
)
"""LMArena's text tables of January 2025 (DeepSeek-R1 arrives) and aider's polyglot tables of the month
(with composite "A + B" entries of mixed countries and unknown licences)."""

HEADER = ("board,as_of,rank,name,model_key,organization,countries,mixed,open_weights,score,ci_lower,"
          "ci_upper,votes,components,origin,method,truncated")
DEEPSEEK_R1 = ("lmarena/text,2025-01-24T00:00:00+00:00,3,DeepSeek-R1,deepseek-r1,DeepSeek,CN,false,true,1357,"
               "1344,1369,1883,,fboulnois-lmsys-csv,default,false")
COMPOSITE = ("aider/polyglot,2025-01-24T00:00:00+00:00,1,DeepSeek R1 + claude-3-5-sonnet-20241022,"
             "deepseek-r1-plus-claude-3-5-sonnet-20241022,mixed,CN;US,true,,64,,,,"
             "DeepSeek R1;claude-3-5-sonnet-20241022,")


def build_database(excerpts: Path, folder: Path) -> Path:
    """A database file holding the recorded subset, imported the way `leaderwatch import` does."""
    return recorded_template(excerpts, folder, RECORDED, NOW, snapshots=9)


def repeat_tables(db: Database, board: str, times: int) -> None:
    """The board's stored tables `times` over in all, each round a month after the one before: the
    excerpt's six tables of 40 rows become 1,200 rows in five rounds."""
    tables = list(store.snapshots_between(db, board))
    for k in range(1, times):
        for snap in tables:
            later = snap.as_of + timedelta(days=30 * k)
            assert store.save_snapshot(db, dataclasses.replace(snap, as_of=later, fetched_at=later)).stored


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("export"))


@pytest.fixture
def db(any_template_db: Database) -> Database:
    """The template on each store (SQLite, PostgreSQL)."""
    return any_template_db


def day(text: str, end: bool = False) -> datetime:
    start = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return start + timedelta(days=1, seconds=-1) if end else start


def csv_text(db: Database, board: str, start: datetime | None = None, end: datetime | None = None) -> str:
    out = io.StringIO()
    write_csv(history_rows(db, board, start, end), out)
    return out.getvalue()


# --- rows ----------------------------------------------------------------------------------------

def test_csv_header_and_a_known_row(db: Database) -> None:
    text = csv_text(db, "lmarena/text", day("2025-01-24"), day("2025-01-24", end=True))
    lines = text.splitlines()
    assert lines[0] == HEADER == ",".join(COLUMNS)
    assert DEEPSEEK_R1 in lines
    assert len(lines) == 1 + 40  # the excerpt keeps the top 40 rows of the table
    assert [ln.split(",")[2] for ln in lines[1:8]] == ["1", "1", "2", "3", "3", "3", "5"]  # as published
    assert lines[6] == DEEPSEEK_R1


def test_a_composite_entry_keeps_its_parts_and_its_unknowns(db: Database) -> None:
    rows = [r for r in history_rows(db, "aider/polyglot", day("2025-01-24"), day("2025-01-24", end=True))
            if r.entry.mixed]
    out = io.StringIO()
    write_csv(rows, out)
    line = out.getvalue().splitlines()[1]
    assert line.startswith(COMPOSITE)
    record = to_record(rows[0])
    assert (record["countries"], record["mixed"], record["open_weights"], record["ci_lower"], record["votes"],
            record["components"]) == (["CN", "US"], True, None, None, None,
                                      ["DeepSeek R1", "claude-3-5-sonnet-20241022"])


def entry_from_csv(cells: dict[str, str]) -> Entry:
    def num(text: str) -> float | None:
        return float(text) if text else None

    return Entry(cells["name"], cells["model_key"], float(cells["score"]), int(cells["rank"]),
                 cells["organization"] or None, tuple(c for c in cells["countries"].split(";") if c),
                 cells["mixed"] == "true", {"true": True, "false": False, "": None}[cells["open_weights"]],
                 num(cells["ci_lower"]), num(cells["ci_upper"]),
                 int(cells["votes"]) if cells["votes"] else None,
                 tuple(c for c in cells["components"].split(";") if c))


@pytest.mark.parametrize("board", ["lmarena/text", "aider/polyglot"])
def test_every_exported_row_reads_back_as_the_stored_entry(db: Database, board: str) -> None:
    stored = [(s.as_of.isoformat(), s.origin, s.method, e) for s in store.snapshots_between(db, board)
              for e in s.entries]
    from_csv = [(r["as_of"], r["origin"], r["method"], entry_from_csv(r))
                for r in csv.DictReader(io.StringIO(csv_text(db, board)))]
    out = io.StringIO()
    write_json(history_rows(db, board), out)
    from_json = [(r["as_of"], r["origin"], r["method"],
                  Entry(r["name"], r["model_key"], r["score"], r["rank"], r["organization"],
                        tuple(r["countries"]), r["mixed"], r["open_weights"], r["ci_lower"], r["ci_upper"],
                        r["votes"], tuple(r["components"])))
                 for r in json.loads(out.getvalue())]
    assert from_csv == stored
    assert from_json == stored
    assert len(stored) == history_span(db, board).entries


def test_json_is_one_array_and_jsonl_one_object_a_line(db: Database) -> None:
    rows = list(history_rows(db, "lmarena/text", day("2025-01-24"), day("2025-01-24", end=True)))
    array, lines = io.StringIO(), io.StringIO()
    assert write_json(rows, array) == write_jsonl(rows, lines) == 40
    parsed = json.loads(array.getvalue())
    assert parsed == [json.loads(ln) for ln in lines.getvalue().splitlines()]
    assert parsed[5] == {
        "board": "lmarena/text", "as_of": "2025-01-24T00:00:00+00:00", "rank": 3, "name": "DeepSeek-R1",
        "model_key": "deepseek-r1", "organization": "DeepSeek", "countries": ["CN"], "mixed": False,
        "open_weights": True, "score": 1357.0, "ci_lower": 1344.0, "ci_upper": 1369.0, "votes": 1883,
        "components": [], "origin": "fboulnois-lmsys-csv", "method": "default", "truncated": False}
    inside = array.getvalue().splitlines()
    assert (inside[0], inside[-1], len(inside)) == ("[", "]", 40 + 2)  # one object a line in the array
    assert [json.loads(ln.rstrip(",")) for ln in inside[1:-1]] == parsed
    empty = io.StringIO()
    assert write_json([], empty) == 0 and json.loads(empty.getvalue()) == []


def test_the_range_takes_whole_days_at_both_ends(db: Database) -> None:
    span = history_span(db, "lmarena/text", day("2025-01-20"), day("2025-01-24", end=True))
    assert (span.snapshots, span.first, span.last) == (3, day("2025-01-20"), day("2025-01-24"))
    rows = history_rows(db, "lmarena/text", day("2025-01-20"), day("2025-01-24", end=True))
    dates = {r.as_of for r in rows}
    assert sorted(d.day for d in dates) == [20, 22, 24]
    assert history_span(db, "lmarena/text", day("2025-01-30")).snapshots == 0
    assert history_span(db, "lmarena/text").snapshots == 6


def test_rows_stream_instead_of_piling_up(db: Database) -> None:
    """Writing every row holds far less memory than the rows themselves would take as a list (SQLite's
    cursor steps through them; PostgreSQL's server-side cursor sends them 500 at a time)."""
    repeat_tables(db, "lmarena/text", 20)  # the excerpt's 240 rows are too few to tell
    class Sink(io.TextIOBase):
        def write(self, s: str) -> int:
            return len(s)

    tracemalloc.start()
    try:
        rows = history_rows(db, "lmarena/text")
        assert isinstance(rows, Iterator)
        write_csv(rows, Sink())
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        held = list(history_rows(db, "lmarena/text"))
        listed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(held) == 4800
    assert streamed * 3 < listed, (streamed, listed)


# --- backup --------------------------------------------------------------------------------------

def table_rows(db: Database, table: str) -> list[tuple[object, ...]]:
    return sorted((tuple(r) for r in db.execute(f"SELECT * FROM {table}").fetchall()), key=repr)


def tables(db: Database) -> list[str]:
    """The tables a backup copies (the record of migrations is each database's own)."""
    return sorted(set(db.table_names()) - {"leaderwatch_migrations"})


def test_backup_is_a_checked_copy_of_every_table(db: Database, tmp_path: Path) -> None:
    target = tmp_path / "backups" / "lw-copy.db"
    target.parent.mkdir()
    result = backup_database(db, target)
    assert result.path == target and result.size == target.stat().st_size and result.snapshots == 9
    assert sorted(p.name for p in target.parent.iterdir()) == ["lw-copy.db"]  # no partial file left
    copy = open_db(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert tables(copy) == tables(db)
        for table in tables(db):
            assert table_rows(copy, table) == table_rows(db, table), table
        assert store.snapshot_at(copy, "lmarena/text", day("2025-01-24", end=True)) == \
            store.snapshot_at(db, "lmarena/text", day("2025-01-24", end=True))
    finally:
        copy.close()


def test_backup_refuses_to_overwrite_unless_told(db: Database, tmp_path: Path) -> None:
    target = tmp_path / "lw-copy.db"
    target.write_text("an older backup")
    with pytest.raises(TargetError) as info:
        backup_database(db, target)
    assert str(info.value) == f"{target} already exists; choose another path or pass --force to replace it"
    assert target.read_text() == "an older backup"
    assert backup_database(db, target, overwrite=True).snapshots == 9


@pytest.mark.parametrize(("where", "message"), [
    ("live", "{target} is the live database itself; choose another path"),
    ("folder", "{target} is a folder; give the backup's file name, e.g. {target}/leaderwatch.db"),
    ("missing", "folder {target.parent} does not exist; create it first"),
])
def test_backup_refuses_unusable_targets(db: Database, tmp_path: Path, where: str, message: str) -> None:
    if where == "live" and db.backend != "sqlite":
        pytest.skip("a PostgreSQL database has no file to copy onto")
    target = {"live": tmp_path / "lw.db", "folder": tmp_path, "missing": tmp_path / "nope" / "x.db"}[where]
    with pytest.raises(TargetError) as info:
        backup_database(db, target, overwrite=True)
    assert str(info.value) == message.format(target=target)


def test_a_failed_backup_leaves_nothing_behind(db: Database, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:

    def broken(path: str | Path) -> Database:
        raise StorageError(f"cannot open the database {path}: disk I/O error")

    monkeypatch.setattr(leaderwatch.storage.export, "open_db", broken)
    (tmp_path / "out").mkdir()
    with pytest.raises(StorageError, match="disk I/O error"):
        backup_database(db, tmp_path / "out" / "copy.db")
    assert list((tmp_path / "out").iterdir()) == []


def test_backup_while_another_connection_writes(db: Database, tmp_path: Path) -> None:
    """A writer keeps storing real tables (each commit: a snapshot and all its entries) while backups
    are taken: the writer is never blocked, and every copy holds whole commits only."""
    path = Path(db.execute("PRAGMA database_list").fetchone()[2]) if db.backend == "sqlite" else db.url
    tables = [s for s in store.snapshots_between(db, "lmarena/text")]
    stop, started, failures, commits = threading.Event(), threading.Event(), [], [0]

    def write() -> None:
        writer = open_db(path)
        try:
            when = datetime(2025, 2, 1, tzinfo=UTC)
            while not stop.is_set():
                when += timedelta(hours=1)
                snap = dataclasses.replace(tables[commits[0] % len(tables)], as_of=when, fetched_at=when)
                store.save_snapshot(writer, snap)
                commits[0] += 1
                started.set()
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
            started.set()
        finally:
            writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(10)
        counts = []
        for i in range(15):
            before = commits[0]
            result = backup_database(db, tmp_path / f"copy-{i}.db")
            counts.append((before, result.snapshots))
        during = commits[0]
    finally:
        stop.set()
        thread.join(10)
    assert failures == []
    assert during > counts[0][0]  # the writer went on committing while the copies were taken
    for i, (before, snapshots) in enumerate(counts):
        assert snapshots >= 9 + before
        copy = open_db(tmp_path / f"copy-{i}.db")
        try:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            torn = copy.execute("SELECT count(*) FROM snapshots s WHERE entry_count != "
                                "(SELECT count(*) FROM entries e WHERE e.snapshot_id = s.id)").fetchone()[0]
            assert torn == 0
            assert int(copy.execute("SELECT count(*) FROM snapshots").fetchone()[0]) == snapshots
        finally:
            copy.close()
    assert len({s for _, s in counts}) > 1  # the copies were taken at different commits
