"""Getting data out: a board's stored history as CSV or JSON rows, and a consistent copy of the database."""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from leaderwatch.sources.base import Entry
from leaderwatch.storage.db import StorageError, from_text, open_db, to_text
from leaderwatch.storage.engine import SQLITE, Database, backend_of
from leaderwatch.storage.migrate import copy_store
from leaderwatch.storage.snapshots import in_range, to_entry

logger = logging.getLogger(__name__)

COLUMNS = ("board", "as_of", "rank", "name", "model_key", "organization", "countries", "mixed",
           "open_weights", "score", "ci_lower", "ci_upper", "votes", "components", "origin", "method",
           "truncated")
"""The fields of an exported row, in order: the CSV header and the keys of each JSON object."""


class HistoryRow(NamedTuple):
    """One entry of one stored snapshot (a NamedTuple: an export builds one per stored row)."""

    board_id: str
    as_of: datetime
    origin: str
    method: str
    truncated: bool
    entry: Entry


@dataclass(frozen=True, slots=True)
class HistorySpan:
    """How many snapshots of a board lie in a range, and the dates of the first and last."""

    snapshots: int
    entries: int
    first: datetime | None
    last: datetime | None


def history_span(db: Database, board_id: str, start: datetime | None = None,
                 end: datetime | None = None) -> HistorySpan:
    """The snapshots and entries a `history_rows` call over the same range would give."""
    where, params = in_range(board_id, start, end, table="s.")
    count, entries, first, last = db.execute(
        f"SELECT count(*), coalesce(sum(s.entry_count), 0), min(s.as_of), max(s.as_of) "
        f"FROM snapshots s WHERE {where}", params).fetchone()
    return HistorySpan(int(count), int(entries), from_text(first) if first else None,
                       from_text(last) if last else None)


def history_rows(db: Database, board_id: str, start: datetime | None = None,
                 end: datetime | None = None) -> Iterator[HistoryRow]:
    """Every entry of every snapshot of a board with `start <= as_of <= end`, in time then table order.

    Rows stream from one query (the cursor is read as the caller consumes them; on PostgreSQL a
    server-side cursor, a batch at a time), so exporting years of history holds little in memory.
    """
    where, params = in_range(board_id, start, end, table="s.")
    cursor = db.stream(
        "SELECT s.as_of, s.origin, s.method, s.truncated, e.name, e.model_key, e.organization, "
        "e.countries, e.mixed, e.open_weights, e.score, e.rank, e.ci_lower, e.ci_upper, e.votes, "
        f"e.components FROM snapshots s JOIN entries e ON e.snapshot_id = s.id WHERE {where} "
        "ORDER BY s.as_of, s.id, e.position", params)
    as_of_text, as_of = "", None
    for row in cursor:
        if row[0] != as_of_text:  # parse each snapshot's time once, not once per row
            as_of_text, as_of = row[0], from_text(row[0])
        assert as_of is not None
        yield HistoryRow(board_id, as_of, row[1] or "", row[2] or "", bool(row[3]), to_entry(row[4:]))


def _number(value: float | None) -> str:
    """A stored number as written in CSV: 1357.0 -> "1357", 42.4912 -> "42.4912", None -> ""."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _flag(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"


def to_csv_row(row: HistoryRow) -> list[str]:
    """A row as CSV cells in `COLUMNS` order; lists are joined with `;`, unknown values are empty."""
    e = row.entry
    return [row.board_id, to_text(row.as_of), str(e.rank), e.name, e.model_key, e.organization or "",
            ";".join(e.countries), _flag(e.mixed), _flag(e.open_weights), _number(e.score),
            _number(e.ci_lower), _number(e.ci_upper), "" if e.votes is None else str(e.votes),
            ";".join(e.components), row.origin, row.method, _flag(row.truncated)]


def to_record(row: HistoryRow) -> dict[str, Any]:
    """A row as a JSON object with `COLUMNS` as keys: lists stay lists, unknown values are null."""
    e = row.entry
    return {"board": row.board_id, "as_of": to_text(row.as_of), "rank": e.rank, "name": e.name,
            "model_key": e.model_key, "organization": e.organization, "countries": list(e.countries),
            "mixed": e.mixed, "open_weights": e.open_weights, "score": e.score, "ci_lower": e.ci_lower,
            "ci_upper": e.ci_upper, "votes": e.votes, "components": list(e.components),
            "origin": row.origin, "method": row.method, "truncated": row.truncated}


def write_csv(rows: Iterable[HistoryRow], out: TextIO) -> int:
    """Write a header line then one line per row; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(to_csv_row(row))
        count += 1
    return count


def write_json(rows: Iterable[HistoryRow], out: TextIO) -> int:
    """Write one JSON array, one object per line (so it can be streamed and read with `grep`)."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(to_record(row), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_jsonl(rows: Iterable[HistoryRow], out: TextIO) -> int:
    """Write one JSON object per line (JSON Lines)."""
    count = 0
    for row in rows:
        out.write(json.dumps(to_record(row), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


WRITERS: dict[str, Callable[[Iterable[HistoryRow], TextIO], int]] = {
    "csv": write_csv, "json": write_json, "jsonl": write_jsonl}
"""The export formats by name."""


# --- backup ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup: where it is, its size in bytes and the snapshots it holds."""

    path: Path
    size: int
    snapshots: int


class TargetError(StorageError):
    """The backup's target path cannot be used (it exists, is a folder, or is the live database)."""


PG_DUMP_ADVICE = ("for a full server-side backup of PostgreSQL use its own tools, e.g. "
                  "`pg_dump --format=custom --file leaderwatch.dump \"$LEADERWATCH_DB\"` "
                  "(restore with pg_restore)")
"""Said after a backup of a PostgreSQL database (ours is a SQLite copy of its tables)."""


def database_file(db: Database) -> Path | None:
    """The file of a database's main schema (None for an in-memory or a PostgreSQL database)."""
    if backend_of(db) != SQLITE:
        return None
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
              path.with_name(path.name + "-journal")):
        p.unlink(missing_ok=True)


def backup_database(db: Database, target: str | Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the database to `target` with SQLite's online backup API, then check the copy.

    The copy is taken in one step under one read transaction, so it is the database as of one
    commit even while the service keeps writing (in WAL mode the writer is not blocked). It is
    written next to `target` under a temporary name, opened with `open_db`, checked with
    `PRAGMA integrity_check`, and only then moved into place: a failed backup leaves no file behind.
    TargetError when `target` exists (unless `overwrite`), is a folder or the live database, or its
    folder is missing; StorageError when the copy fails.
    """
    target = Path(target)
    live = database_file(db)
    if target.is_dir():
        raise TargetError(f"{target} is a folder; give the backup's file name, "
                           f"e.g. {target / 'leaderwatch.db'}")
    if live is not None and target.exists() and target.resolve() == live.resolve():
        raise TargetError(f"{target} is the live database itself; choose another path")
    if target.exists() and not overwrite:
        raise TargetError(f"{target} already exists; choose another path or pass --force to replace it")
    if not target.parent.is_dir():
        raise TargetError(f"folder {target.parent} does not exist; create it first")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    _remove(partial)
    try:
        if backend_of(db) == SQLITE:
            copy = sqlite3.connect(partial)
            try:
                # pages=-1: everything in one step. Stepping page by page would restart whenever another
                # connection commits, and might never finish under a busy writer.
                db.conn.backup(copy, pages=-1)
            finally:
                copy.close()
        else:
            copy_tables(db, partial)
        check = open_db(partial)
        try:
            verdict = [r[0] for r in check.execute("PRAGMA integrity_check").fetchall()]
            snapshots = int(check.execute("SELECT count(*) FROM snapshots").fetchone()[0])
        finally:
            check.close()
        if verdict != ["ok"]:
            raise StorageError(f"the copy failed its integrity check: {'; '.join(verdict[:5])}")
        if target.exists() and not overwrite:  # created by someone else while we copied
            raise TargetError(f"{target} already exists; choose another path or pass --force to replace it")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        _remove(partial)
        raise StorageError(f"backup to {target} failed: {exc}") from exc
    except BaseException:
        _remove(partial)
        raise
    size = target.stat().st_size
    logger.info("backup written to %s: %d bytes, %d snapshots", target, size, snapshots)
    if backend_of(db) != SQLITE:
        logger.warning("the backup is a SQLite copy of every table (LEADERWATCH_DB=%s opens it); %s",
                       target, PG_DUMP_ADVICE)
    return BackupResult(target, size, snapshots)


def copy_tables(db: Database, path: Path) -> int:
    """Copy every table of a PostgreSQL database into a new SQLite file at `path`; the rows copied.

    The copy is a leaderwatch database like any other: `LEADERWATCH_DB=<path>` runs on it, datasette reads
    it, and `open_db` on it upgrades it. The record of migrations is the copy's own (the same names).
    """
    copy = open_db(path)
    try:
        return copy_database(db, copy)
    finally:
        copy.close()


def copy_database(source: Database, target: Database) -> int:
    """Copy every table of `source` into `target`, a database of the same schema with no rows (the same
    migrations made both; `target`'s record of migrations stays its own), as of one moment of `source`
    (one repeatable-read transaction on PostgreSQL, one read transaction on SQLite); the rows copied.

    Either way round: PostgreSQL to a SQLite file (the backup), or a SQLite file to PostgreSQL (moving a
    deployment to PostgreSQL; there the numbering of ids continues after the copied rows).
    `storage.migrate.MigrateError` when `target` holds rows or the copy does not add up.
    """
    return copy_store(source, target).rows  # storage/migrate.py: in batches, counted, in key order
