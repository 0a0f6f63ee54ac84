"""The `leaderwatch` command line: run, poll, import, boards, top."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.models import Rule, RuleError
from bot import console, data_commands, doctor
from bot.app import App, build_app, command_context, run, utcnow
from bot.commands import Invocation, dispatch
from bot.importer import coverage_lines, import_recordings
from bot.logs import configure_logging
from bot.questions import match_board
from bot.replay import BoardReplay, backtest, backtest_lines, in_range, load_rules, replay
from bot.settings import ConfigError, load_settings
from sources.registry import source_names
from storage import snapshots, status
from storage.db import StorageError

logger = logging.getLogger(__name__)


class UserError(Exception):
    """Bad input from the person at the terminal; the message is shown as is."""


def resolve_board(name: str, board_ids: Sequence[str]) -> str:
    """A board id as chat resolves it (`bot.questions.match_board`); otherwise a "did you mean" error."""
    found = match_board(name, board_ids)
    if isinstance(found, str):
        return found
    if found:
        raise UserError(f"`{name}` matches several boards: {', '.join(found[:8])}. Type more of the name.")
    close = difflib.get_close_matches(name, board_ids, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
    listing = "" if board_ids else " No board is stored yet: run `leaderwatch import` or `leaderwatch poll`."
    raise UserError(f"unknown board `{name}`.{hint}{listing} `leaderwatch boards` lists them.")


def parse_date(text: str, end_of_day: bool = True) -> datetime:
    """`YYYY-MM-DD` (the end of that day, UTC, or its start) or a full ISO 8601 time."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, seconds=-1) if end_of_day else day
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r}: expected a date like 2025-01-24 or 2025-01-24T12:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_run(app: App, args: argparse.Namespace) -> int:
    """Run the scheduler in the foreground."""
    asyncio.run(run(app))
    return 0


def cmd_poll(app: App, args: argparse.Namespace) -> int:
    """Poll the named sources (all enabled ones by default) once."""
    names = {s.name for s in app.sources}
    for n in args.sources:
        if n not in names:
            close = difflib.get_close_matches(n, sorted(names), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise UserError(f"unknown source `{n}`.{hint} Sources: {', '.join(sorted(names))}")
    chosen = [s for s in app.sources if s.name in args.sources] if args.sources else app.enabled_sources()

    async def go() -> int:
        results = await app.poller.poll_all(chosen)
        app.save_validators()
        return 0 if all(r.ok for r in results) else 1

    return asyncio.run(go())


def cmd_import(app: App, args: argparse.Namespace) -> int:
    """Import recorded history."""
    root = Path(args.recordings or app.settings.recordings or "")
    if not str(args.recordings or app.settings.recordings or "") or not root.is_dir():
        raise UserError(f"recordings folder {str(root) if str(root) != '.' else '(none given)'} not found: "
                        "pass --recordings DIR or set LEADERWATCH_RECORDINGS")
    started = time.perf_counter()
    report = import_recordings(app.db, app.sources, root, app.clock(),
                               progress=console.progress_printer(sys.stderr))
    for line in coverage_lines(report):
        print(line)
    print(f"imported {report.recordings - report.already_imported - len(report.errors)} recording(s) "
          f"({report.already_imported} already imported): {report.snapshots_stored} snapshot(s) stored, "
          f"{report.snapshots_unchanged} unchanged, in {time.perf_counter() - started:.1f}s")
    for err in report.errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_boards(app: App, args: argparse.Namespace) -> int:
    """List stored boards."""
    summaries = snapshots.board_summaries(app.db)
    if not summaries:
        print("No board is stored yet: run `leaderwatch import --recordings DIR` or `leaderwatch poll`.")
        return 0
    print(console.boards_table(summaries, status.all_statuses(app.db)))
    return 0


def cmd_top(app: App, args: argparse.Namespace) -> int:
    """Show a board's top N, optionally as of a past date and within a group."""
    if args.n < 1:
        raise UserError("-n must be at least 1")
    board_id = resolve_board(args.board, [b.id for b in snapshots.boards(app.db)])
    at = parse_date(args.at) if args.at else None
    snap = snapshots.snapshot_at(app.db, board_id, at)
    if snap is None:
        first = next(iter(snapshots.snapshots_between(app.db, board_id)), None)
        since = f" Its history starts on {first.as_of:%Y-%m-%d}." if first else ""
        raise UserError(f"{board_id} has no snapshot as of {args.at}.{since}")
    entries = list(snap.entries)
    note = ""
    if args.group:
        groups = app.groups
        if args.group not in groups:
            raise UserError(f"unknown group `{args.group}`. Groups: {', '.join(sorted(groups))}")
        entries = [e for e in entries if groups[args.group].contains(e)]
        note = f", group {args.group}"
    if args.group:
        top = entries[: args.n]  # the group's first N, whatever their board ranks
    else:
        # Top N by published rank, ties included: LMArena's ranks 1, 1, 2, 3, 3, 3, 5 make a top 5 of 7.
        top = [e for e in entries if e.rank <= args.n] or entries[: args.n]
    print(console.table(snap, top, note))
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


def cmd_query(app: App, args: argparse.Namespace) -> int:
    """Run one `/leaderwatch` command in the terminal, as the operator (configuration allowed)."""
    inv = Invocation(platform="console", channel_id=args.channel, user_id=getpass.getuser(),
                     user_name=getpass.getuser(), text=" ".join(args.words), can_configure=True)
    reply = asyncio.run(dispatch(command_context(app), inv))
    print(console.render_reply(reply), file=sys.stderr if reply.error else sys.stdout)
    saved = console.write_image(reply, Path(args.output or "."))
    if saved is not None:
        print(f"chart saved to {saved}")
    return 1 if reply.error else 0


COMMANDS = {"run": cmd_run, "poll": cmd_poll, "import": cmd_import, "boards": cmd_boards, "top": cmd_top,
            "replay": cmd_replay, "backtest": cmd_backtest, "query": cmd_query, **data_commands.COMMANDS}


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
    data_commands.add_parsers(sub)
    doctor.add_parser(sub)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `leaderwatch` console script."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    if args.db:
        environ["LEADERWATCH_DB"] = args.db
    if args.command == "doctor":  # reports bad settings and a broken database as checks, not as a crash
        return doctor.cmd_doctor(environ, args)
    try:
        settings = load_settings(environ, known_sources=source_names())
    except ConfigError as exc:
        print(f"leaderwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings, args.verbose)
    app: App | None = None
    try:
        app = build_app(settings, clock=utcnow)
        return COMMANDS[args.command](app, args)
    except ConfigError as exc:  # a bad config group or rule, or a chat setting `run` needs
        print(f"leaderwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"leaderwatch: {exc}. Set LEADERWATCH_DB to a writable path.", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"leaderwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if app is not None:
            asyncio.run(app.aclose())

if __name__ == "__main__":
    sys.exit(main())
