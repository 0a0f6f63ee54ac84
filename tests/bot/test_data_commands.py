"""`leaderwatch export` and `leaderwatch backup` through their argument parsers, on a real imported
history, word for word."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import leaderwatch.bot.cli.main
from leaderwatch.bot.app import App, build_app
from leaderwatch.bot.cli import data as data_commands
from leaderwatch.bot.cli.main import COMMANDS, build_parser, execute
from leaderwatch.bot.settings import Settings
from leaderwatch.storage.db import open_db
from tests.helpers import REPO
from tests.storage.test_export import COMPOSITE, DEEPSEEK_R1, HEADER, build_database, repeat_tables


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("data-commands"))


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, template: Path, tmp_path: Path) -> str:
    """The template on each store in turn, as `--db` names it: a copy of the file (tmp_path/lw.db), or its
    rows copied into this test process's PostgreSQL schema (emptied), by its URL."""
    if request.param == "sqlite":
        path = tmp_path / "lw.db"
        shutil.copy(template, path)
        return str(path)
    from leaderwatch.storage.export import copy_database
    from tests.conftest import empty_postgres

    database = request.getfixturevalue("postgres_session_db")
    empty_postgres(database)
    with contextlib.closing(open_db(template)) as source:
        copy_database(source, database)
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
def app(target: str) -> Iterator[App]:
    application = build_app(Settings(db_path=target), clock=lambda: datetime(2025, 2, 1, tzinfo=UTC))
    yield application
    asyncio.run(application.aclose())


def parser() -> argparse.ArgumentParser:
    """The `leaderwatch` parser, which registers these commands."""
    return build_parser()


def run(app: App, *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = execute(app, args)
    return code, out.getvalue(), err.getvalue()


# --- the parsers ---------------------------------------------------------------------------------

def test_the_commands_join_the_cli_with_help_on_every_option() -> None:
    built = parser()
    sub = next(a for a in built._actions if isinstance(a, argparse._SubParsersAction))
    assert set(data_commands.COMMANDS) == {"export", "backup"}
    assert all(COMMANDS[name] is function for name, function in data_commands.COMMANDS.items())
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps["export"] and helps["backup"]
    for name in data_commands.COMMANDS:
        for action in sub.choices[name]._actions:
            assert action.help, (name, action.dest)
    args = built.parse_args(["export", "lmarena/text", "--from", "2025-01-01", "--to", "2025-01-31",
                             "--format", "json", "-o", "out.json"])
    assert (args.board, args.start, args.end, args.format, args.output) == (
        "lmarena/text", "2025-01-01", "2025-01-31", "json", "out.json")
    args = built.parse_args(["backup", "copy.db", "--force"])
    assert (args.path, args.force) == ("copy.db", True)


# --- export --------------------------------------------------------------------------------------

def test_export_writes_csv_to_standard_output(app: App) -> None:
    code, out, err = run(app, "export", "lmarena/text", "--from", "2025-01-24", "--to", "2025-01-24")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == HEADER and lines[6] == DEEPSEEK_R1 and len(lines) == 41
    assert err == ("lmarena/text: 40 row(s) from 1 snapshot(s), 2025-01-24 .. 2025-01-24, written to "
                   "standard output\n")


def test_export_takes_a_unique_prefix(app: App) -> None:
    code, out, err = run(app, "export", "aider", "--from", "2025-01-24", "--to", "2025-01-24")
    assert code == 0, err
    assert any(line.startswith(COMPOSITE) for line in out.splitlines())
    assert err.startswith("aider/polyglot: ")


def test_export_json_to_a_file(app: App, tmp_path: Path) -> None:
    target = tmp_path / "text.json"
    target.write_text("an older export")
    code, out, err = run(app, "export", "lmarena/text", "--format", "json", "--output", str(target))
    assert (code, out) == (0, "")
    records = json.loads(target.read_text(encoding="utf-8"))
    assert len(records) == 240
    assert sorted({r["as_of"][:10] for r in records}) == [
        "2025-01-07", "2025-01-16", "2025-01-20", "2025-01-22", "2025-01-24", "2025-01-29"]
    assert err == (f"lmarena/text: 240 row(s) from 6 snapshot(s), 2025-01-07 .. 2025-01-29, written to "
                   f"{target}\n")
    left = [p.name for p in tmp_path.iterdir() if not p.name.startswith("lw.db")]
    assert left == ["text.json"]  # no partial file left


def test_export_jsonl(app: App) -> None:
    code, out, _ = run(app, "export", "lmarena/text", "--from", "2025-01-24", "--to", "2025-01-24",
                       "--format", "jsonl")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[5]["name"] == "DeepSeek-R1" and rows[5]["rank"] == 3 and rows[5]["score"] == 1357


@pytest.mark.parametrize(("argv", "code", "message"), [
    (("export", "lmarena/txt"), 2,
     "leaderwatch: Unknown board `lmarena/txt`. Did you mean `lmarena/text`? `leaderwatch boards` lists "
     "them.\n"),
    (("export", "zzz"), 2, "leaderwatch: Unknown board `zzz`. `leaderwatch boards` lists them.\n"),
    (("export", "lmarena/text", "--from", "2025-13-01"), 2,
     "leaderwatch: `2025-13-01` is not a date: give one like 2025-01-24 (or 2025-01-24T12:00Z)\n"),
    (("export", "lmarena/text", "--from", "2025-01-29", "--to", "2025-01-20"), 2,
     "leaderwatch: --from 2025-01-29 is after --to 2025-01-20; swap them\n"),
    (("export", "lmarena/text", "--from", "2025-02-01"), 1,
     "leaderwatch: lmarena/text has no snapshot from 2025-02-01 on; its history covers 2025-01-07 .. "
     "2025-01-29.\n"),
    (("export", "lmarena/text", "--to", "2024-12-31"), 1,
     "leaderwatch: lmarena/text has no snapshot up to 2024-12-31; its history covers 2025-01-07 .. "
     "2025-01-29.\n"),
    (("export", "lmarena/text", "--from", "2025-01-25", "--to", "2025-01-28"), 1,
     "leaderwatch: lmarena/text has no snapshot between 2025-01-25 and 2025-01-28; its history covers "
     "2025-01-07 .. 2025-01-29.\n"),
])
def test_export_explains_what_is_wrong(app: App, argv: tuple[str, ...], code: int, message: str) -> None:
    assert run(app, *argv) == (code, "", message)


def test_export_to_a_missing_folder(app: App, tmp_path: Path) -> None:
    code, _, err = run(app, "export", "lmarena/text", "-o", str(tmp_path / "nope" / "x.csv"))
    assert code == 2
    folder = tmp_path / "nope"
    assert err == f"leaderwatch: --output {folder / 'x.csv'}: folder {folder} does not exist\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_export_shows_progress_on_a_terminal(app: App, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(data_commands, "PROGRESS_FROM", 2)
    args = parser().parse_args(["export", "lmarena/text", "-o", str(tmp_path / "x.csv")])
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert data_commands.cmd_export(app, args) == 0
    assert terminal.getvalue().startswith("\rlmarena/text: 6/6 snapshots\nlmarena/text: 240 row(s)")


def test_export_piped_into_head_stops_quietly(target: str) -> None:
    path = target
    with contextlib.closing(open_db(path)) as db:
        repeat_tables(db, "lmarena/text", 5)  # more than a pipe holds (64 KiB): the write must hit its end
    script = ("import argparse, asyncio, sys\n"
              "from leaderwatch.bot.app import build_app\nfrom leaderwatch.bot.settings import Settings\n"
              "from leaderwatch.bot.cli.data import add_parsers, cmd_export\n"
              "parser = argparse.ArgumentParser()\nadd_parsers(parser.add_subparsers(dest='command'))\n"
              f"app = build_app(Settings(db_path={str(path)!r}))\n"
              "try:\n    code = cmd_export(app, parser.parse_args(['export', 'lmarena/text']))\n"
              "finally:\n    asyncio.run(app.aclose())\nsys.exit(code)\n")
    with subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline().decode().rstrip("\n")
        if first != HEADER:
            proc.stdout.close()
            pytest.fail(f"the export's first line was {first!r}; its stderr: {proc.stderr.read().decode()}")
        proc.stdout.close()  # the reader goes away after one line, as `head -1` does
        err = proc.stderr.read().decode()
        assert proc.wait(30) == 0
    assert err == ""


# --- backup --------------------------------------------------------------------------------------

def test_backup_prints_size_and_snapshots_of_a_checked_copy(app: App, tmp_path: Path) -> None:
    target = tmp_path / "backup.db"
    code, out, err = run(app, "backup", str(target))
    assert (code, err) == (0, "")
    size = target.stat().st_size
    assert re.fullmatch(
        rf"backed up {re.escape(app.settings.db_path)} to {re.escape(str(target))}: \d+\.\d [KM]B "
        rf"\({size:,} bytes\), 9 snapshot\(s\), integrity check ok\n", out), out
    copy = open_db(target)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT count(*) FROM entries").fetchone()[0] == \
        app.db.execute("SELECT count(*) FROM entries").fetchone()[0]
    copy.close()


def test_backup_refuses_an_existing_file_unless_forced(app: App, tmp_path: Path) -> None:
    target = tmp_path / "backup.db"
    target.write_text("last week's backup")
    code, out, err = run(app, "backup", str(target))
    assert (code, out) == (2, "")
    assert err == f"leaderwatch: {target} already exists; choose another path or pass --force to replace it\n"
    assert target.read_text() == "last week's backup"
    code, out, _ = run(app, "backup", str(target), "--force")
    assert code == 0 and "9 snapshot(s)" in out
    assert open_db(target).execute("SELECT count(*) FROM snapshots").fetchone()[0] == 9


def test_backup_onto_the_live_database_is_refused(app: App) -> None:
    # SQLite only by nature: the live database is a file the backup could overwrite.
    if app.db.backend != "sqlite":
        pytest.skip("a PostgreSQL database is no file a backup could overwrite")
    code, _, err = run(app, "backup", app.settings.db_path, "--force")
    assert code == 2
    assert err == f"leaderwatch: {app.settings.db_path} is the live database itself; choose another path\n"


def test_through_the_cli_once_registered(target: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`leaderwatch --db DB export ...` and `backup` through the real CLI."""

    for name in [k for k in os.environ if k.startswith("LEADERWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    path = target

    def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = leaderwatch.bot.cli.main.main(["--db", path, *argv])
        return code, out.getvalue(), err.getvalue()

    code, out, _ = cli("export", "lmarena/text", "--from", "2025-01-24", "--to", "2025-01-24")
    assert code == 0 and out.splitlines()[6] == DEEPSEEK_R1
    assert cli("export", "lmarena/txt")[0] == 2
    code, out, _ = cli("backup", str(tmp_path / "copy.db"))
    assert code == 0 and out.startswith(f"backed up {path} to {tmp_path / 'copy.db'}: ")
