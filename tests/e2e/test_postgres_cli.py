"""The data commands on PostgreSQL, end to end (issue 15): `import`, `backfill`, `export`, `backup`, `doctor`,
`top`, `boards` and `query` with `--db postgresql://...`, each compared with the same command on SQLite.

Each module run gets PostgreSQL schemas of its own (dropped after); skipped without a server, failed
under CI=true (tests/conftest.py `postgres_unavailable`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leaderwatch.storage.db import open_db
from tests import helpers
from tests.conftest import new_postgres_schema
from tests.e2e.test_backfill_e2e import Mirror
from tests.e2e.test_backfill_e2e import mirror as mirror  # noqa: F401 (the loopback mirror, a fixture)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`leaderwatch ARGV` in this process, without the environment's LEADERWATCH_ settings."""
    return helpers.run_cli(*argv, own_settings=True)


def without_timing(output: str) -> str:
    """An import's summary without its duration (`..., in 0.8s`)."""
    return re.sub(r", in \d+\.\ds$", "", output, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def stores(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, str]]:
    """The excerpts imported by `leaderwatch import` into a new SQLite file and into a new PostgreSQL
    schema: (SQLite path, PostgreSQL URL, what the SQLite import printed, what the PostgreSQL one printed)."""
    lite = str(tmp_path_factory.mktemp("pgcli") / "lw.db")
    with new_postgres_schema("cli") as url:
        code, on_sqlite, err = run_cli("--db", lite, "import", "--recordings", str(excerpts))
        assert code == 0, err
        code, on_postgres, err = run_cli("--db", url, "import", "--recordings", str(excerpts))
        assert code == 0, err
        yield lite, url, on_sqlite, on_postgres


def test_import_stores_the_same_history_and_says_the_same(stores: tuple[str, str, str, str]) -> None:
    lite, url, on_sqlite, on_postgres = stores
    assert "imported 135 recording(s) (0 already imported): 100 snapshot(s) stored" in on_postgres
    assert without_timing(on_postgres) == without_timing(on_sqlite)
    pg = open_db(url)
    try:
        for table in ("snapshots", "entries", "events", "models", "imports"):
            counted = pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert counted == sqlite3.connect(lite).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        pg.close()
    code, again, err = run_cli("--db", url, "import", "--recordings", str(Path(lite).parent / "none"))
    assert code == 2 and "not found" in err  # a bad folder is said, not a traceback


def test_a_second_import_finds_nothing_new(stores: tuple[str, str, str, str], excerpts: Path) -> None:
    _, url, _, _ = stores
    code, out, err = run_cli("--db", url, "import", "--recordings", str(excerpts))
    assert code == 0, err
    assert "imported 0 recording(s) (135 already imported): 0 snapshot(s) stored" in out
    assert "0 event(s) found by the rules" in out


@pytest.mark.parametrize("command", [
    ["top", "lmarena/text", "-n", "5"],
    ["top", "lmarena/text", "--at", "2025-02-01", "--group", "china"],
    ["boards"],
    ["export", "lmarena/text"],
    ["export", "aider/polyglot", "--format", "json"],
    ["export", "lmarena/text", "--format", "jsonl", "--from", "2025-01-01", "--to", "2025-06-30"],
    ["query", "race all"],
    ["query", "model gemini-2.5-pro"],
    ["query", "events lmarena/text 365 at 2025-12-11"],
])
def test_the_commands_answer_the_same_on_both_stores(stores: tuple[str, str, str, str],
                                                     command: list[str]) -> None:
    lite, url, _, _ = stores
    on_sqlite = run_cli("--db", lite, *command)
    on_postgres = run_cli("--db", url, *command)
    assert on_sqlite[0] == 0, on_sqlite[2]
    assert on_sqlite[1].strip()
    assert on_postgres[:2] == on_sqlite[:2]


def test_export_to_a_file_writes_the_same_bytes(stores: tuple[str, str, str, str], tmp_path: Path) -> None:
    lite, url, _, _ = stores
    for db, name in ((lite, "lite.csv"), (url, "pg.csv")):
        code, _, err = run_cli("--db", db, "export", "lmarena/text", "-o", str(tmp_path / name))
        assert code == 0, err
        assert "lmarena/text: 880 row(s) from 18 snapshot(s), 2024-06-19 .. 2025-12-11" in err
    assert (tmp_path / "pg.csv").read_bytes() == (tmp_path / "lite.csv").read_bytes()


def test_backup_of_postgres_is_a_sqlite_file_that_answers_the_same(stores: tuple[str, str, str, str],
                                                                   tmp_path: Path) -> None:
    lite, url, _, _ = stores
    target = tmp_path / "backup.db"
    code, out, err = run_cli("--db", url, "backup", str(target))
    assert code == 0, err
    assert f"to {target}: " in out and "100 snapshot(s), integrity check ok" in out
    assert "postgresql://" in out and "***" not in out  # no password in this URL to hide
    for command in (["top", "lmarena/text", "-n", "5"], ["query", "race all"]):
        assert run_cli("--db", str(target), *command)[:2] == run_cli("--db", lite, *command)[:2]
    code, _, err = run_cli("--db", url, "backup", str(target))
    assert code == 2 and "already exists; choose another path or pass --force" in err


def test_doctor_checks_the_postgres_database(stores: tuple[str, str, str, str]) -> None:
    _, url, _, _ = stores
    code, out, err = run_cli("--db", url, "doctor", "--skip-sources")
    assert code == 0, out + err
    database = next(line for line in out.splitlines() if "database:" in line)
    assert database.startswith("ok    database: postgresql://")
    assert "(PostgreSQL " in database and "takes writes" in database and "100 snapshot(s)" in database


def test_doctor_says_when_postgres_does_not_answer(refused_port: int) -> None:
    code, out, _ = run_cli("--db", f"postgresql://postgres@127.0.0.1:{refused_port}/test", "doctor",
                           "--skip-sources")
    assert code == 1
    database = next(line for line in out.splitlines() if "database:" in line)
    assert database.startswith("FAIL  database:") and "cannot reach PostgreSQL" in database


def backfill(db: str, config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`leaderwatch backfill` as the installed program, the mirror named in the config file (run in the
    config's folder: a relative path it makes lands there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADERWATCH_", "SLACK_", "DISCORD_"))}
    env |= {"LEADERWATCH_DB": db, "LEADERWATCH_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "leaderwatch", "backfill", *argv], env=env,
                          capture_output=True, text=True, timeout=180, check=False, cwd=config.parent)


def test_backfill_on_postgres_stores_what_it_stores_on_sqlite(tmp_path: Path, mirror: str) -> None:  # noqa: F811
    config = tmp_path / "lw.toml"
    config.write_text(f'[sources.lmarena]\nurl = "{mirror}"\n')
    lite = str(tmp_path / "lw.db")
    on_sqlite = backfill(lite, config, "lmarena")
    assert on_sqlite.returncode == 0, on_sqlite.stderr[-2000:]
    with new_postgres_schema("backfill") as url:
        refused = backfill(url, config, "lmarena")
        assert refused.returncode == 2
        assert "give the cache folder with --cache DIR" in refused.stderr
        Mirror.requests = []
        on_postgres = backfill(url, config, "lmarena", "--cache", str(tmp_path / "pg.history"))
        assert on_postgres.returncode == 0, on_postgres.stderr[-2000:]
        assert "/vision/full-00000-of-00001.parquet" in Mirror.requests  # its own download
        assert without_timing(on_postgres.stdout).replace("pg.history", "lw.db.history") \
            == without_timing(on_sqlite.stdout)
        for command in (["top", "lmarena/vision", "--at", "2024-12-01", "-n", "3"], ["boards"]):
            assert run_cli("--db", url, *command)[:2] == run_cli("--db", lite, *command)[:2]


def test_a_command_on_an_unreachable_server_says_what_to_check_and_no_password(refused_port: int) -> None:
    code, out, err = run_cli("--db", f"postgresql://lw:s3cret-pw@127.0.0.1:{refused_port}/lw", "boards")
    assert code != 0 and out == ""
    assert f"cannot reach PostgreSQL at postgresql://lw:***@127.0.0.1:{refused_port}/lw" in err
    assert "Check that the server runs and LEADERWATCH_DB names it" in err
    assert "writable path" not in err and "s3cret-pw" not in err  # a file's advice is not a server's
