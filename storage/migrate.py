"""Moving an install from one store to another (`leaderwatch migrate-store`): every row of a SQLite file
copied into an empty PostgreSQL database of the same schema, ids kept.

The whole copy is one transaction on the target: a copy that fails (or is interrupted) leaves the target
as empty as it was, and running the command again starts over. The source is read as of one moment (one
read transaction), in batches, table after table in the order of their foreign keys; each table's rows
are counted on both sides before the target commits. The ids are kept as they were (subscriptions,
outbox rows and audit rows are referred to by id), and each table whose id numbers itself goes on after
the largest id copied, so the next subscription made on the target does not collide with a copied one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from leaderwatch.storage.db import MIGRATIONS_TABLE, OLD_MIGRATIONS_TABLE, StorageError
from leaderwatch.storage.engine import POSTGRES, SQLITE, Database, backend_of, quote_name

logger = logging.getLogger(__name__)

BATCH_ROWS = 5_000
"""Rows read from the source and written to the target at a time (the memory a copy holds)."""

Progress = Callable[[str, int, int], None]
"""Called as a table's rows are copied: (table, rows copied so far, the table's rows)."""


class MigrateError(StorageError):
    """The copy cannot start (a target with data, a schema that differs) or did not add up."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's copy: its rows in the source, and in the target after the copy."""

    table: str
    source_rows: int
    target_rows: int


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """A finished copy: each table in the order copied, and the source's tables left out (not ours)."""

    tables: tuple[TableCopy, ...]
    skipped: tuple[str, ...]

    @property
    def rows(self) -> int:
        """Rows copied in all."""
        return sum(t.target_rows for t in self.tables)


# --- what the databases hold -------------------------------------------------------------------------------

def table_names(db: Database) -> list[str]:
    """The tables of a database (the current schema on PostgreSQL), by name, without SQLite's own."""
    if backend_of(db) != SQLITE:
        return db.table_names()  # PostgresDatabase: the current schema's tables, by name
    sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    return [str(r[0]) for r in db.execute(sql).fetchall()]


def column_names(db: Database, table: str) -> list[str]:
    """A table's columns, in their order."""
    if backend_of(db) == SQLITE:
        return [str(r[1]) for r in db.execute(f"PRAGMA table_info({quote_name(table)})").fetchall()]
    return [str(r[0]) for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]


def foreign_keys(db: Database) -> set[tuple[str, str]]:
    """(table, the table it refers to) for every foreign key of the database."""
    if backend_of(db) == SQLITE:
        return {(name, str(fk[2])) for name in table_names(db)
                for fk in db.execute(f"PRAGMA foreign_key_list({quote_name(name)})").fetchall()}
    return {(str(r[0]), str(r[1])) for r in db.execute(
        "SELECT c.relname, p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "JOIN pg_class p ON p.oid = k.confrelid "
        "WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace").fetchall()}


def in_dependency_order(names: list[str], refers: set[tuple[str, str]]) -> list[str]:
    """The tables with each one after the tables it refers to (else by name); a cycle keeps name order."""
    left, done = sorted(names), []
    while left:
        ready = [n for n in left if not any(t == n and p in left and p != n for t, p in refers)]
        step = ready[0] if ready else left[0]
        done.append(step)
        left.remove(step)
    return done


def tables_with_rows(db: Database) -> dict[str, int]:
    """The tables holding rows (the record of migrations aside), with their counts."""
    counts = {name: _count(db, name) for name in table_names(db) if name != MIGRATIONS_TABLE}
    return {name: n for name, n in counts.items() if n}


def _count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {quote_name(table)}").fetchone()[0])


# --- the copy ----------------------------------------------------------------------------------------------

def check_target_empty(target: Database) -> None:
    """MigrateError naming the tables when the target holds rows already (a copy goes into an empty one)."""
    held = tables_with_rows(target)
    if held:
        shown = ", ".join(f"{name} ({n:,} rows)" for name, n in sorted(held.items())[:6])
        more = f" and {len(held) - 6} more" if len(held) > 6 else ""
        raise MigrateError(f"the target already holds data: {shown}{more}. migrate-store copies into an "
                           "empty database only, so nothing is mixed or doubled: give it a new database "
                           "(e.g. `createdb leaderwatch`) or a new schema, or empty this one yourself")


def plan(source: Database, target: Database) -> tuple[list[str], list[str]]:
    """The tables to copy in order, and the source's tables the target has no table for (left out).

    MigrateError when a table to copy has a column the target lacks: both must be leaderwatch databases
    of one version (opening them with `open_db` brings both up to date)."""
    ours = [n for n in table_names(target) if n != MIGRATIONS_TABLE]
    theirs = set(table_names(source))
    skipped = sorted(theirs - set(ours) - {MIGRATIONS_TABLE})
    order = in_dependency_order([n for n in ours if n in theirs], foreign_keys(target))
    for name in order:
        missing = [c for c in column_names(source, name) if c not in set(column_names(target, name))]
        if missing:
            raise MigrateError(f"table {name} of the source has column(s) {', '.join(missing)} that the "
                               "target lacks: run migrate-store with the leaderwatch version that wrote the "
                               "source")
    return order, skipped


def copy_store(source: Database, target: Database, *, batch: int = BATCH_ROWS,
               progress: Progress | None = None) -> MigrateResult:
    """Copy every row of `source` into `target` (empty, the same schema) in one transaction; see the
    module's docstring. MigrateError when the target holds data, a schema differs or a count does not add
    up (then nothing is committed)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    check_target_empty(target)
    order, skipped = plan(source, target)
    copies: list[TableCopy] = []
    with _read_snapshot(source), target.atomic():
        for name in order:
            copies.append(_copy_table(source, target, name, batch, progress))
        wrong = [c for c in copies if c.source_rows != c.target_rows]
        if wrong:
            said = "; ".join(f"{c.table}: {c.source_rows:,} in the source, {c.target_rows:,} copied"
                             for c in wrong)
            raise MigrateError(f"the copy does not add up ({said}); nothing was committed, the target is "
                               "as empty as before")
        if backend_of(target) == POSTGRES:
            for name in order:
                continue_numbering(target, name)
            # The planner's statistics now, not when autovacuum comes by: without them the first polls
            # read whole tables where an index seek would do (committed with the rows). Only the tables
            # copied: a bare ANALYZE takes every table of the database, other installs' schemas too, and
            # inside this transaction it would hold their locks until the commit (it deadlocked with a
            # TRUNCATE in another schema).
            if order:
                target.execute(f"ANALYZE {', '.join(quote_name(name) for name in order)}")
    return MigrateResult(tuple(copies), tuple(skipped))


def _copy_table(source: Database, target: Database, name: str, batch: int,
                progress: Progress | None) -> TableCopy:
    total = _count(source, name)
    cursor = source.execute(f"SELECT * FROM {quote_name(name)}")
    columns = [str(d[0]) for d in cursor.description]
    sql = (f"INSERT INTO {quote_name(name)} ({', '.join(quote_name(c) for c in columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    rows = iter(cursor)
    done = 0
    if progress is not None:
        progress(name, 0, total)
    while chunk := list(islice(rows, batch)):
        target.executemany(sql, chunk)
        done += len(chunk)
        if progress is not None:
            progress(name, done, total)
    return TableCopy(name, total, _count(target, name))


def continue_numbering(db: Database, table: str) -> None:
    """PostgreSQL: each column of the table that numbers itself (an identity) goes on after its largest
    value (`setval` past `max(id)`); nothing for a table without one."""
    for (column,) in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
            [table]).fetchall():
        sequence = db.execute("SELECT pg_get_serial_sequence(?, ?)",
                              [quote_name(table), column]).fetchone()[0]
        if sequence is not None:
            db.execute(f"SELECT setval(?, coalesce(max({quote_name(column)}), 0) + 1, false) "
                       f"FROM {quote_name(table)}", [sequence])


@contextlib.contextmanager
def _read_snapshot(db: Database) -> Iterator[None]:
    """Every read inside sees the source as of one moment, while others may go on writing to it.

    SQLite: a deferred read transaction (in WAL, writers are not blocked), rolled back at the end as it
    wrote nothing; `atomic()` would take the write lock. PostgreSQL: a repeatable-read, read-only one."""
    if backend_of(db) == SQLITE:
        conn: Any = db.conn
        if conn.in_transaction:  # the caller's transaction is the snapshot already
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
        return
    if getattr(db, "in_transaction", lambda: False)():
        yield
        return
    with db.atomic():
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def skipped_note(skipped: tuple[str, ...]) -> str | None:
    """What to say of the source's tables left out (None when there are none worth naming)."""
    named = [n for n in skipped if n != OLD_MIGRATIONS_TABLE]
    if not named:
        return None
    return (f"not copied: {', '.join(named)} (table(s) leaderwatch does not know; another tool made them in "
            "the SQLite file)")
