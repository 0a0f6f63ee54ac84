"""The `leaderwatch` command line: run, poll, import, boards, top."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
import time
from pathlib import Path

from leaderwatch.alerts.models import Rule, RuleError
from leaderwatch.bot.app import App, build_app, command_context, load_rules, run, utcnow
from leaderwatch.bot.chat import console
from leaderwatch.bot.cli import backfill, data, doctor, migrate_store
from leaderwatch.bot.cli.common import NO_BOARD_STORED, board_of
from leaderwatch.bot.cli.history import BoardReplay, backtest, backtest_lines, in_range, replay
from leaderwatch.bot.commands import Invocation, UserError, dispatch
from leaderwatch.bot.commands.names import did_you_mean, parse_date, resolve_group
from leaderwatch.bot.commands.questions import top_entries
from leaderwatch.bot.pipeline.importer import import_recordings, summary_lines
from leaderwatch.bot.runtime.logs import configure_logging
from leaderwatch.bot.settings import ConfigError, Settings, load_settings
from leaderwatch.sources.registry import source_names
from leaderwatch.storage import snapshots, status
from leaderwatch.storage.db import (
    DATABASE_ERRORS,
    AlreadyRunningError,
    DatabaseLockedError,
    DiskFullError,
    RunLock,
    StorageError,
    storage_error,
)
from leaderwatch.storage.engine import is_postgres_url

logger = logging.getLogger(__name__)


def cmd_run(app: App, args: argparse.Namespace) -> int:
    """Run the scheduler in the foreground."""
    asyncio.run(run(app))
    return 0


UNRECORDED_WAIT_SECONDS = 60.0
"""How long `poll` keeps trying to record a failure the database refused (locked or full) before it exits."""


def cmd_poll(app: App, args: argparse.Namespace) -> int:
    """Poll the named sources (all enabled ones by default) once."""
    names = {s.name for s in app.sources}
    for n in args.sources:
        if n not in names:
            raise UserError(f"{did_you_mean(n, sorted(names), 'source')} "
                            f"Sources: {', '.join(sorted(names))}.")
    chosen = [s for s in app.sources if s.name in args.sources] if args.sources else app.enabled_sources()

    async def go() -> int:
        results = await app.poller.poll_all(chosen)
        # A failure the database refused (locked, full) is written before exiting: each try waits the
        # busy timeout, for as long as UNRECORDED_WAIT_SECONDS at most.
        deadline = time.monotonic() + UNRECORDED_WAIT_SECONDS
        while app.poller.unrecorded and not app.poller.flush_failures() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if app.poller.unrecorded:
            print(f"leaderwatch: {app.poller.unrecorded} failure(s) could not be recorded in the database "
                  "(it stayed locked or full); `boards` shows the last recorded state", file=sys.stderr)
        if all(r.ok for r in results):
            app.save_validators()
            return 0
        with contextlib.suppress(*DATABASE_ERRORS):  # a locked or full database: the next poll saves them
            app.save_validators()
        return 1

    return asyncio.run(go())


def cmd_import(app: App, args: argparse.Namespace) -> int:
    """Import recorded history."""
    root = Path(args.recordings or app.settings.recordings or "")
    if not str(args.recordings or app.settings.recordings or "") or not root.is_dir():
        raise UserError(f"recordings folder {str(root) if str(root) != '.' else '(none given)'} not found: "
                        "pass --recordings DIR or set LEADERWATCH_RECORDINGS")
    started = time.perf_counter()
    report = import_recordings(app.db, app.sources, root, app.clock(),
                               progress=console.progress_printer(sys.stderr), rules=app.rules,
                               groups=app.groups)
    print("\n".join(summary_lines(report, time.perf_counter() - started)))
    for err in report.errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_boards(app: App, args: argparse.Namespace) -> int:
    """List stored boards."""
    summaries = snapshots.board_summaries(app.db)
    if not summaries:
        print(NO_BOARD_STORED)
        return 0
    print(console.boards_table(summaries, status.all_statuses(app.db)))
    return 0


def cmd_top(app: App, args: argparse.Namespace) -> int:
    """Show a board's top N, optionally as of a past date and within a group."""
    if args.n < 1:
        raise UserError("-n must be at least 1")
    board_id = board_of(app, args.board)
    at = parse_date(args.at) if args.at else None
    snap = snapshots.snapshot_at(app.db, board_id, at)
    if snap is None:
        first = next(iter(snapshots.snapshots_between(app.db, board_id)), None)
        since = f" Its history starts on {first.as_of:%Y-%m-%d}." if first else ""
        raise UserError(f"{board_id} has no snapshot as of {args.at}.{since}")
    group = resolve_group(app.groups, args.group) if args.group else None
    top = top_entries(snap, args.n, app.groups[group] if group else None)
    print(console.table(snap, top, f", group {group}" if group else ""))
    return 0


def _recordings_dir(app: App, args: argparse.Namespace) -> Path:
    given = args.recordings or app.settings.recordings
    if not given or not Path(given).is_dir():
        raise UserError(f"recordings folder {given or '(none given)'} not found: pass --recordings DIR "
                        "or set LEADERWATCH_RECORDINGS")
    return Path(given)


def _rules(app: App, args: argparse.Namespace) -> list[Rule]:
    try:
        return load_rules(Path(args.rules) if args.rules else None, app.settings.rules, list(app.groups))
    except OSError as exc:
        raise UserError(f"--rules {args.rules}: cannot read it ({exc.strerror})") from None
    except RuleError as exc:
        raise UserError(str(exc)) from None


def cmd_replay(app: App, args: argparse.Namespace) -> int:
    """Replay recorded history through the rules and print every event."""
    root = _recordings_dir(app, args)
    rules = _rules(app, args)
    start = parse_date(args.start, end_of_day=False) if args.start else None
    end = parse_date(args.end) if args.end else None
    count = 0
    for event in replay(app.sources, root, rules, app.groups, args.board):
        if not in_range(event, start, end):
            continue
        count += 1
        if args.format == "jsonl":
            print(json.dumps(event.to_json(), ensure_ascii=False))
        else:
            print(f"{event.at:%Y-%m-%d}  {event.kind:<13} {event.message}")
    if args.format == "text":
        print(f"{count} event(s)", file=sys.stderr)
    return 0


def cmd_backtest(app: App, args: argparse.Namespace) -> int:
    """How many alerts each rule would have sent per board and week over the recorded history."""
    root = _recordings_dir(app, args)
    rules = _rules(app, args)
    boards: dict[str, BoardReplay] = {}
    events = list(replay(app.sources, root, rules, app.groups, args.board, boards))
    for line in backtest_lines(backtest(events, boards, rules)):
        print(line)
    return 0


def answer(app: App, text: str, channel: str, output: str | None) -> int:
    """Run one `/leaderwatch` command line in the terminal as the operator; print the answer, save its
    chart in `output` (default: the current folder); 1 when the answer is an error."""
    inv = Invocation(platform="console", channel_id=channel, user_id=getpass.getuser(),
                     user_name=getpass.getuser(), text=text, can_configure=True)
    reply = asyncio.run(dispatch(command_context(app), inv))
    print(console.render_reply(reply), file=sys.stderr if reply.error else sys.stdout)
    saved = console.write_image(reply, Path(output or "."))
    if saved is not None:
        print(f"chart saved to {saved}")
    return 1 if reply.error else 0


def cmd_query(app: App, args: argparse.Namespace) -> int:
    """Run one `/leaderwatch` command in the terminal, as the operator (configuration allowed)."""
    return answer(app, " ".join(args.words), args.channel, args.output)


def cmd_report(app: App, args: argparse.Namespace) -> int:
    """Print the race report of the week ending at --at (default: now) and save its chart."""
    text = "report" + (f" at {args.at}" if args.at else "")
    return answer(app, text, args.channel, args.output)


COMMANDS = {"run": cmd_run, "poll": cmd_poll, "import": cmd_import, "boards": cmd_boards, "top": cmd_top,
            "replay": cmd_replay, "backtest": cmd_backtest, "query": cmd_query, "report": cmd_report,
            **data.COMMANDS, **backfill.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command has help text."""
    parser = argparse.ArgumentParser(
        prog="leaderwatch",
        description="Watch public AI leaderboards and report when the race changes.",
        epilog="Settings come from environment variables (LEADERWATCH_DB, LEADERWATCH_CONFIG, ...) and "
               "the TOML config file; see the README.")
    parser.add_argument("--db", help="database file (overrides LEADERWATCH_DB)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", help="poll every source on its schedule, in the foreground (Ctrl-C stops)")
    p = sub.add_parser("poll", help="poll sources once now")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="source names (default: all enabled)")
    p = sub.add_parser("import", help="load recorded history, one timeline per board (idempotent)")
    p.add_argument("--recordings", metavar="DIR",
                   help="folder of recordings (default: LEADERWATCH_RECORDINGS)")
    sub.add_parser("boards", help="list boards with last update, entry count and status")
    p = sub.add_parser("top", help="show a board's top rows, now or as of a past date")
    p.add_argument("board", metavar="BOARD", help="board id or unique prefix, e.g. lmarena/text")
    p.add_argument("-n", type=int, default=10,
                   help="show ranks 1..N, ties included (default 10)")
    p.add_argument("--at", metavar="DATE", help="as of this date (YYYY-MM-DD, end of day UTC)")
    p.add_argument("--group", metavar="GROUP", help="only models of this group (china, us, west, ...)")
    p = sub.add_parser("query", help='run a chat command in the terminal, e.g. query "top lmarena/text 5"')
    p.add_argument("words", nargs="+", metavar="COMMAND", help="the words after /leaderwatch")
    p.add_argument("--channel", default="console",
                   help="the channel whose subscriptions and settings to use (default: console)")
    p.add_argument("--output", metavar="DIR",
                   help="folder for the PNG of a `chart` answer (default: the current directory)")
    p = sub.add_parser("report", help="the week's race report: boards each group leads, overtakes, gap "
                                      "moves, and a chart of 52 weeks of lead counts")
    p.add_argument("--at", metavar="DATE", help="the week ending at the end of this date (YYYY-MM-DD, UTC)")
    p.add_argument("--channel", default="console",
                   help="the channel whose groups to use (`set groups`; default: console)")
    p.add_argument("--output", metavar="DIR",
                   help="folder for the chart's PNG (default: the current directory)")
    data.add_parsers(sub)
    backfill.add_parser(sub)
    doctor.add_parser(sub)
    migrate_store.add_parser(sub)
    for name, helptext in (("replay", "replay recorded history through the rules and print every event"),
                           ("backtest", "alerts per rule, board and week the rules would have sent")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--recordings", metavar="DIR",
                       help="folder of recordings (default: LEADERWATCH_RECORDINGS)")
        p.add_argument("--board", metavar="PATTERN", help="only boards matching this glob, e.g. 'aider/*'")
        p.add_argument("--rules", metavar="FILE",
                       help="TOML file of [[rule]] tables (default: the config's [[rules]], else the "
                            "shipped default rules)")
        if name == "replay":
            p.add_argument("--from", dest="start", metavar="DATE", help="print events from this date")
            p.add_argument("--to", dest="end", metavar="DATE", help="print events up to this date")
            p.add_argument("--format", choices=("text", "jsonl"), default="text",
                           help="text (default) or one JSON object per line")
    return parser


def fail(message: str, status: int = 2) -> int:
    """Print `leaderwatch: MESSAGE` on stderr; the exit status (2: bad input or configuration)."""
    print(f"leaderwatch: {message}", file=sys.stderr)
    return status


def execute(app: App, args: argparse.Namespace) -> int:
    """Run one parsed command on a built app: its exit status, errors said in one line (never a traceback).

    A UserError is shown as it is; a configuration or storage error names the setting to fix.
    """
    try:
        return COMMANDS[args.command](app, args)
    except ConfigError as exc:  # a bad config group or rule, or a chat setting `run` needs
        return fail(f"configuration error: {exc}")
    except (DatabaseLockedError, DiskFullError, AlreadyRunningError) as exc:
        return fail(f"{exc}.", 1)
    except StorageError as exc:
        return fail(unusable(exc, app.settings.db_path))
    except DATABASE_ERRORS as exc:  # a write met a lock held too long, or a full disk: said plainly
        known = storage_error(exc, app.settings.db_path)
        if known is None:
            raise
        return fail(f"{known}.", 1)
    except UserError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130


def start(settings: Settings, run_lock: RunLock | None) -> App:
    """Take the run lock (when given), then build the app; the lock is let go if the build fails."""
    if run_lock is None:
        return build_app(settings, clock=utcnow)
    run_lock.acquire()
    try:
        return build_app(settings, clock=utcnow)
    except BaseException:
        run_lock.release()
        raise


def unusable(exc: StorageError, db_path: str) -> str:
    """A database that cannot be used, and what to do: a file wants a writable path; a PostgreSQL error
    says already which server it could not use and what to check."""
    if is_postgres_url(db_path):
        return f"{exc}."
    return f"{exc}. Set LEADERWATCH_DB to a writable path."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `leaderwatch` console script (and `python -m leaderwatch`)."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    if args.db:
        environ["LEADERWATCH_DB"] = args.db
    if args.command == "migrate-store":  # names both databases itself: no settings, no app
        return migrate_store.cmd_migrate_store(args)
    if args.command == "doctor":  # reports bad settings and a broken database as checks, not as a crash
        return doctor.cmd_doctor(environ, args)
    try:
        settings = load_settings(environ, known_sources=source_names())
    except ConfigError as exc:
        return fail(f"configuration error: {exc}")
    configure_logging(settings, args.verbose)
    # One `run` per database: a second one stops here, naming the first (the kernel drops the lock
    # when the first ends, even by kill -9).
    run_lock = RunLock(settings.db_path) if args.command == "run" else None
    try:
        app = start(settings, run_lock)
    except ConfigError as exc:  # a bad config group or rule
        return fail(f"configuration error: {exc}")
    except (DatabaseLockedError, DiskFullError, AlreadyRunningError) as exc:
        return fail(f"{exc}.", 1)
    except StorageError as exc:
        return fail(unusable(exc, settings.db_path))
    except OSError as exc:  # the run lock's file cannot be made beside the database
        return fail(f"cannot take the run lock {exc.filename}: {exc.strerror}. Set LEADERWATCH_DB to a "
                    "writable path.")
    except KeyboardInterrupt:
        return 130
    try:
        return execute(app, args)
    finally:
        asyncio.run(app.aclose())
        if run_lock is not None:
            run_lock.release()


if __name__ == "__main__":
    sys.exit(main())
