"""`leaderwatch migrate-store`: move an install from its SQLite file to PostgreSQL (issue 15).

Runs before any settings are loaded (as `doctor` does): it names both databases itself and builds no
app. The copy is `storage.migrate.copy_store`: one transaction on the target, so a failed or interrupted
copy leaves the target empty; the SQLite file is only read (and kept: it is the way back).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from leaderwatch.storage.db import (
    DATABASE_ERRORS,
    AlreadyRunningError,
    Database,
    RunLock,
    StorageError,
    open_db,
    run_lock_holder,
    schema_state,
)
from leaderwatch.storage.engine import is_postgres_url, redact
from leaderwatch.storage.migrate import (
    BATCH_ROWS,
    MigrateError,
    MigrateResult,
    check_target_empty,
    copy_store,
    skipped_note,
)

logger = logging.getLogger(__name__)

USAGE = "leaderwatch migrate-store --from SQLITE_PATH --to postgresql://USER@HOST:PORT/DATABASE"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `migrate-store` to the `leaderwatch` command line's subcommands."""
    p = sub.add_parser(
        "migrate-store", help="copy an install's SQLite database into an empty PostgreSQL database",
        description="Copy every row of a SQLite database (ids kept) into an empty PostgreSQL database, "
                    "whose schema is made first by the same migrations. The copy is one transaction: if "
                    "it fails or is interrupted, the target stays empty and the command can simply be run "
                    "again. The SQLite file is only read (after its schema is brought up to this "
                    "version's, as any command does); stop `leaderwatch run` first (it is refused while one "
                    "runs). Afterwards, set LEADERWATCH_DB to the PostgreSQL URL. Exit status 1 when the "
                    "copy is refused or fails, 2 for bad arguments.")
    p.add_argument("--from", dest="source", metavar="SQLITE_PATH", required=True,
                   help="the SQLite database file to copy (e.g. the current LEADERWATCH_DB)")
    p.add_argument("--to", dest="target", metavar="POSTGRES_URL", required=True,
                   help="an empty PostgreSQL database, e.g. postgresql://leaderwatch@db:5432/leaderwatch")
    p.add_argument("--batch", type=int, default=BATCH_ROWS, metavar="N",
                   help=f"rows read and written at a time (default {BATCH_ROWS:,})")


def fail(message: str, status: int) -> int:
    """Print `leaderwatch: MESSAGE` on stderr; the exit status."""
    print(f"leaderwatch: {message}", file=sys.stderr)
    return status


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, said with what to do; None when they can be used."""
    if args.batch < 1:
        return f"--batch {args.batch}: give a number of rows of at least 1"
    if is_postgres_url(args.source):
        return (f"--from {redact(args.source)} is a PostgreSQL URL: migrate-store moves a SQLite file to "
                "PostgreSQL; to copy a PostgreSQL database use pg_dump and pg_restore")
    if not is_postgres_url(args.target):
        return (f"--to {args.target} is not a PostgreSQL URL: give one such as "
                "postgresql://leaderwatch@localhost:5432/leaderwatch (for a SQLite copy use `leaderwatch "
                "backup PATH`)")
    if not Path(args.source).is_file():
        return f"--from {args.source}: no such file; give the SQLite database to move (LEADERWATCH_DB)"
    return None


def progress_printer(stream: TextIO) -> Callable[[str, int, int], None]:
    """Rows per table: one rewritten line per table on a terminal; a line every 10% otherwise (logs)."""
    tty = stream.isatty()
    shown: dict[str, int] = {}

    def show(table: str, done: int, total: int) -> None:
        if not total:  # an empty table: the summary names it
            return
        if tty:
            end = "\n" if done >= total else ""
            stream.write(f"\r{table}: {done:,}/{total:,} rows{end}")
            stream.flush()
            return
        tenth = 10 * done // total
        if done >= total or (done and tenth != shown.get(table)):
            shown[table] = tenth
            stream.write(f"{table}: {done:,}/{total:,} rows\n")
            stream.flush()

    return show


def summary_lines(result: MigrateResult, source: str, target: str, seconds: float) -> list[str]:
    """What a finished copy prints: rows per table (checked on both sides), the total, what to do next."""
    held = [t for t in result.tables if t.target_rows]
    empty = [t.table for t in result.tables if not t.target_rows]
    width = max((len(t.table) for t in held), default=5)
    lines = [f"copied {source} to {target} in {seconds:.1f} s: {result.rows:,} rows in "
             f"{len(result.tables)} tables, each count checked against the source"]
    lines += [f"  {t.table:<{width}}  {t.target_rows:>12,}" for t in held]
    if empty:
        lines.append(f"  (no rows: {', '.join(empty)})")
    note = skipped_note(result.skipped)
    if note:
        lines.append(note)
    if any(t.table == "installations" and t.target_rows for t in result.tables):
        lines.append("the workspaces' bot tokens were copied as stored, encrypted: run the new deployment "
                     "with the same LEADERWATCH_SECRET_KEY")
    lines.append(f"next: set LEADERWATCH_DB={target} (with its password, if any) and start leaderwatch; "
                 f"{source} is left as it was (keep it as a backup until the new store has run a while)")
    return lines


def cmd_migrate_store(args: argparse.Namespace) -> int:
    """Copy the SQLite database `--from` into the empty PostgreSQL database `--to`; print the summary."""
    wrong = check_arguments(args)
    if wrong:
        return fail(wrong, 2)
    holder = run_lock_holder(args.source)
    if holder is not None:
        return fail(f"{args.source} is in use by {holder.describe()}: stop it first (what it wrote during "
                    "the copy would be left behind), then run migrate-store again", 1)
    target_name = redact(args.target)
    lock = RunLock(args.source)  # held while copying: no `leaderwatch run` starts on the source meanwhile
    try:
        lock.acquire()
    except AlreadyRunningError as exc:
        return fail(f"{exc}.", 1)
    except OSError as exc:
        return fail(f"cannot take the run lock of {args.source} ({exc.strerror}): is its folder writable?", 1)
    try:
        return _migrate(args.source, args.target, target_name, args.batch)
    except KeyboardInterrupt:
        return fail(f"interrupted: nothing was committed, {target_name} is as empty as before", 130)
    finally:
        lock.release()


def _migrate(source_path: str, target_url: str, target_name: str, batch: int) -> int:
    try:
        source = open_db(source_path)
    except StorageError as exc:
        return fail(f"cannot open --from {source_path}: {exc}", 1)
    try:
        unknown = schema_state(source).unknown
        if unknown:
            return fail(f"{source_path} was migrated by a newer leaderwatch ({', '.join(unknown)}): run "
                        "migrate-store with that version", 1)
        try:
            target = open_db(target_url)
        except StorageError as exc:
            return fail(f"cannot open --to: {exc}", 1)
        try:
            return _copy(source, target, source_path, target_name, batch)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: Database, target: Database, source_path: str, target_name: str, batch: int) -> int:
    started = time.perf_counter()
    try:
        check_target_empty(target)  # said before the copy is announced
        print(f"copying {source_path} to {target_name} (one transaction: nothing is committed until every "
              "table is copied and counted)", file=sys.stderr)
        result = copy_store(source, target, batch=batch, progress=progress_printer(sys.stderr))
    except MigrateError as exc:
        return fail(f"{exc}.", 1)
    except DATABASE_ERRORS as exc:
        return fail(f"the copy failed, nothing was committed ({target_name} is as empty as before): {exc}. "
                    "Fix that, then run migrate-store again", 1)
    print("\n".join(summary_lines(result, source_path, target_name, time.perf_counter() - started)))
    return 0
