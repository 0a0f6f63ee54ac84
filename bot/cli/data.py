"""`leaderwatch export` and `leaderwatch backup`: a board's history as CSV or JSON, a copy of the database."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from leaderwatch.bot.app import App
from leaderwatch.bot.cli.common import board_of
from leaderwatch.bot.commands import UserError
from leaderwatch.bot.commands.names import parse_date
from leaderwatch.sources.http import size_text
from leaderwatch.storage.db import StorageError
from leaderwatch.storage.export import (
    WRITERS,
    HistoryRow,
    HistorySpan,
    TargetError,
    backup_database,
    history_rows,
    history_span,
)

logger = logging.getLogger(__name__)

PROGRESS_FROM = 20
"""Exports of at least this many snapshots show progress on a terminal's stderr."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `export` and `backup` to the `leaderwatch` command line's subcommands."""
    p = sub.add_parser("export", help="write a board's stored history, one row per model and snapshot",
                       description="Write every stored snapshot of a board in a date range, one row per "
                                   "(snapshot, entry) with all its fields. Exit status 1 when the range "
                                   "holds no snapshot, 2 for an unknown board or a bad date.")
    p.add_argument("board", metavar="BOARD", help="board id or unique prefix, e.g. lmarena/text")
    p.add_argument("--format", choices=sorted(WRITERS), default="csv",
                   help="csv with a header line (default), json (one array) or jsonl (one object a line)")
    p.add_argument("--from", dest="start", metavar="DATE",
                   help="only snapshots from this date on (YYYY-MM-DD, start of day UTC, or ISO 8601)")
    p.add_argument("--to", dest="end", metavar="DATE",
                   help="only snapshots up to this date (YYYY-MM-DD, end of day UTC, or ISO 8601)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="write to this file (replaced if it exists) instead of standard output")
    p = sub.add_parser("backup", help="copy the live database to a file, safely while the service runs",
                       description="Copy the database with SQLite's online backup API (consistent while "
                                   "the service writes), check the copy's integrity, and print its size "
                                   "and snapshot count.")
    p.add_argument("path", metavar="PATH", help="the backup file to create, e.g. backups/leaderwatch.db")
    p.add_argument("--force", action="store_true", help="replace PATH if it already exists")


def _day(span: HistorySpan) -> str:
    if span.first is None or span.last is None:
        return "nothing yet"
    return f"{span.first:%Y-%m-%d} .. {span.last:%Y-%m-%d}"


def with_progress(rows: Iterable[HistoryRow], total: int, label: str, stream: TextIO) -> Iterator[HistoryRow]:
    """Pass rows through, showing `done/total` snapshots on `stream` (only when it is a terminal)."""
    if total < PROGRESS_FROM or not stream.isatty():
        yield from rows
        return
    done, last = 0, None
    for row in rows:
        if row.as_of != last:
            done, last = done + 1, row.as_of
            if done % 10 == 0 or done == total:
                stream.write(f"\r{label}: {done}/{total} snapshots")
                stream.flush()
        yield row
    stream.write("\n")


def cmd_export(app: App, args: argparse.Namespace) -> int:
    """Write a board's stored history as CSV, a JSON array or JSON lines."""
    board_id = board_of(app, args.board)
    start = parse_date(args.start, end_of_day=False) if args.start else None
    end = parse_date(args.end) if args.end else None
    if start is not None and end is not None and start > end:
        raise UserError(f"--from {args.start} is after --to {args.end}; swap them")
    if args.output and not Path(args.output).parent.is_dir():
        raise UserError(f"--output {args.output}: folder {Path(args.output).parent} does not exist")
    if args.output and Path(args.output).is_dir():
        raise UserError(f"--output {args.output} is a folder; give a file name")
    span = history_span(app.db, board_id, start, end)
    if span.snapshots == 0:
        whole = history_span(app.db, board_id)
        asked = (f"between {args.start} and {args.end}" if args.start and args.end
                 else f"from {args.start} on" if args.start else f"up to {args.end}")
        print(f"leaderwatch: {board_id} has no snapshot {asked}; its history covers {_day(whole)}.",
              file=sys.stderr)
        return 1
    write = WRITERS[args.format]
    rows = history_rows(app.db, board_id, start, end)
    if args.output or not sys.stdout.isatty():  # not over rows scrolling past on the same terminal
        rows = with_progress(rows, span.snapshots, board_id, sys.stderr)
    if args.output:
        count = _to_file(Path(args.output), lambda out: write(rows, out))
        where = args.output
    else:
        try:
            count = write(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): not an error. Point stdout at /dev/null so the
            # interpreter's final flush does not raise again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        where = "standard output"
    print(f"{board_id}: {count} row(s) from {span.snapshots} snapshot(s), {_day(span)}, written to {where}",
          file=sys.stderr)
    return 0


def _to_file(path: Path, write: Callable[[TextIO], int]) -> int:
    """Write through a temporary file renamed into place, so a failed export leaves no half file."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = write(out)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count




def cmd_backup(app: App, args: argparse.Namespace) -> int:
    """Copy the live database with SQLite's backup API, check the copy, print its size and snapshots."""
    try:
        result = backup_database(app.db, args.path, overwrite=args.force)
    except TargetError as exc:
        raise UserError(str(exc)) from None
    except StorageError as exc:
        print(f"leaderwatch: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {app.settings.db_path} to {result.path}: {size_text(result.size)} "
          f"({result.size:,} bytes), {result.snapshots:,} snapshot(s), integrity check ok")
    return 0


COMMANDS: dict[str, Callable[[App, argparse.Namespace], int]] = {"export": cmd_export, "backup": cmd_backup}
"""The commands `add_parsers` adds, by name (for `leaderwatch.bot.cli.main.COMMANDS`)."""
