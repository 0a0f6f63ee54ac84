"""`leaderwatch backfill`: download each origin's published history and import it, resumably."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from leaderwatch.bot.app import App
from leaderwatch.bot.chat import console
from leaderwatch.bot.commands import UserError
from leaderwatch.bot.commands.names import did_you_mean, parse_date
from leaderwatch.bot.pipeline.backfill import default_cache, download_history
from leaderwatch.bot.pipeline.importer import import_recordings, summary_lines
from leaderwatch.sources.base import SourceError
from leaderwatch.sources.history import GitHubAuth, Progress, downloaders
from leaderwatch.storage.engine import is_postgres_url

logger = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `backfill` to the `leaderwatch` command line's subcommands."""
    p = sub.add_parser(
        "backfill", help="download each leaderboard's published history and import it (resumable)",
        description="Download each origin's own published history (git history of the tables kept on "
                    "GitHub, LMArena's dataset) into a cache folder laid out like the recordings folder, "
                    "then import it as `leaderwatch import` does. Files already downloaded and recordings "
                    "already imported are skipped, so an interrupted run resumes. Exit status 1 when an "
                    "origin failed (the others are still imported).")
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help=f"sources to backfill (default: all): {', '.join(downloaders())}")
    p.add_argument("--since", metavar="DATE", help="skip versions older than this date (YYYY-MM-DD)")
    p.add_argument("--cache", metavar="DIR",
                   help="folder for the downloaded files (default: the database path + .history; "
                        "required with a PostgreSQL database)")


def progress_printer(stream: TextIO) -> Callable[[str], Progress]:
    """Per origin, `origin: done/total what` on one rewritten line (a terminal), else a line every 10%."""
    tty = stream.isatty()

    def for_origin(name: str) -> Progress:
        last = [-1]

        def show(what: str, done: int, total: int | None) -> None:
            if tty:
                count = f"{done}/{total} " if total is not None else ""
                end = "\n" if total is not None and done >= total else ""
                shown = what if len(what) <= 60 else "..." + what[-57:]
                stream.write(f"\r{name}: {count}{shown:<60}{end}")
                stream.flush()
            elif total:
                tenth = 10 * done // total
                if tenth != last[0]:
                    last[0] = tenth
                    stream.write(f"{name}: {done}/{total} files ({what})\n")
                    stream.flush()

        return show

    return for_origin


def cmd_backfill(app: App, args: argparse.Namespace) -> int:
    """Download each origin's history into the cache folder, import it, print the summary."""
    table = downloaders({name: s.url for name, s in app.settings.sources.items() if s.url})
    known = [n for n in table if n in {s.name for s in app.sources}]
    for name in args.sources:
        if name not in known:
            raise UserError(f"{did_you_mean(name, known, 'source')} Sources: {', '.join(known)}.")
    names = [n for n in known if n in args.sources] if args.sources else known
    since = parse_date(args.since, end_of_day=False).date() if args.since else None
    if not args.cache and is_postgres_url(app.settings.db_path):
        # The default folder is named after the database file; a URL names no folder on this machine.
        raise UserError("backfill on PostgreSQL keeps its downloads in a folder of this machine: give the "
                        "cache folder with --cache DIR (e.g. --cache ./leaderwatch.history), the same one "
                        "each time so that an interrupted backfill resumes")
    cache = Path(args.cache) if args.cache else default_cache(app.settings.db_path)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the cache folder {cache}: {exc.strerror}; choose another with "
                        "--cache DIR") from None
    if app.settings.github_token:
        app.client.auth = GitHubAuth(app.settings.github_token)
    started = time.perf_counter()
    print(f"backfill into {cache}: {', '.join(names)}", file=sys.stderr)
    results = asyncio.run(download_history(app.fetcher, cache, names, since, progress_printer(sys.stderr),
                                           table))
    code = 1 if any(r.failed for r in results) else 0
    try:
        report = import_recordings(app.db, app.sources, cache, app.clock(),
                                   progress=console.progress_printer(sys.stderr), rules=app.rules,
                                   groups=app.groups)
    except SourceError as exc:  # a file of the cache that a source cannot even list
        print(f"error: the import of {cache} stopped: {exc}; delete that file and run "
              "`leaderwatch backfill` again", file=sys.stderr)
        report, code = None, 1
    if report is not None:
        print("\n".join(summary_lines(report, time.perf_counter() - started)))
        # Upstream committed these versions broken: nothing to retry, so they do not fail the run.
        for err in report.errors:
            print(f"skipped: {err}", file=sys.stderr)
        if report.errors:
            print(f"{len(report.errors)} downloaded version(s) do not parse and were left out (listed on "
                  "standard error); the others are stored")
    print(f"history per origin (cached in {cache}):")
    for r in results:
        print(f"  {r.source}: {r.line}")
    return code


COMMANDS: dict[str, Callable[[App, argparse.Namespace], int]] = {"backfill": cmd_backfill}
"""The command `add_parser` adds (for `leaderwatch.bot.cli.main.COMMANDS`)."""
