"""Shared fixtures: the recorded real data, databases, the identity, a clean environment, a refusing port.

Two folders of recorded real payloads: `excerpts` (tests/data/recordings, in the repository: a few files,
each cut to its top rows) serves every test that can be told on a few tables; `recordings` (the whole
recorded history, `$LEADERWATCH_RECORDINGS`, default ../shared/data) the tests that need all of it,
marked `whole_history`: they are skipped when it is missing, and the last line of the run says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import open_db
from tests.helpers import EXCERPTS, REPO, run_cli
from tests.helpers import import_subset as import_subset  # still importable from here, as it was


def recordings_dir() -> Path | None:
    """`$LEADERWATCH_RECORDINGS`, defaulting to `../shared/data`; None when absent (not under CI)."""
    path = Path(os.environ.get("LEADERWATCH_RECORDINGS") or REPO.parent / "shared" / "data")
    if path.is_dir():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"recorded data folder {path} is missing; set LEADERWATCH_RECORDINGS (CI=true)")
    return None


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The folder of real recorded payloads (PROVENANCE.md); a failure under CI when missing."""
    path = recordings_dir()
    if path is None:
        pytest.skip("recorded data not found; set LEADERWATCH_RECORDINGS")
    return path


def import_folder(folder: Path, target: Path) -> str:
    """`leaderwatch import --recordings folder` into the database `target`: what it printed."""
    code, out, err = run_cli("--db", str(target), "import", "--recordings", str(folder), own_settings=True)
    assert code == 0, err[-2000:]
    return out


@pytest.fixture(scope="session")
def imported_history(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """All recorded history imported once per session by `leaderwatch import` (events included), and
    what the import printed. Modules copy the file before they change it."""
    path = tmp_path_factory.mktemp("history") / "history.db"
    return path, import_folder(recordings, path)


@pytest.fixture(scope="session")
def excerpts() -> Path:
    """The in-repository excerpts of the recordings (tests/data/recordings: same paths, fewer rows)."""
    return EXCERPTS


@pytest.fixture(scope="session")
def imported_excerpts(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Every excerpt imported once per session by `leaderwatch import` (events included), and what the
    import printed. Modules copy the file before they change it."""
    path = tmp_path_factory.mktemp("excerpts") / "excerpts.db"
    return path, import_folder(excerpts, path)


@pytest.fixture(scope="session")
def recorded_timeline(recordings: Path) -> tuple[Snapshot, ...]:
    """Every recorded snapshot on the timeline `import` and `replay` build, in time order, read once."""
    from leaderwatch.bot.cli.history import recorded_snapshots
    from leaderwatch.sources.registry import all_sources

    return tuple(recorded_snapshots(all_sources(Identity.load()), recordings))


@pytest.fixture(scope="session")
def excerpt_timeline(excerpts: Path) -> tuple[Snapshot, ...]:
    """Every snapshot of the excerpts on the timeline `import` and `replay` build, in time order."""
    from leaderwatch.bot.cli.history import recorded_snapshots
    from leaderwatch.sources.registry import all_sources

    return tuple(recorded_snapshots(all_sources(Identity.load()), excerpts))


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    """A private copy of the module's `template` database (modules define `template`)."""
    path = tmp_path / "lw.db"
    shutil.copy(template, path)
    database = open_db(path)
    yield database
    database.close()


@pytest.fixture(scope="session")
def identity() -> Identity:
    """The shipped identity tables, no user aliases."""
    return Identity.load()


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[Database]:
    """A new, empty database file `tmp_path/lw.db`, closed after the test."""
    database = open_db(tmp_path / "lw.db")
    yield database
    database.close()


@pytest.fixture
def slack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Slack settings from the environment (both OAuth variables switch Bolt to OAuth mode) and no
    proxy for loopback (slack_sdk's sync client honours HTTP(S)_PROXY even for 127.0.0.1)."""
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                 "SLACK_SIGNING_SECRET", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection for the whole test.

    A port found free and then closed (bind 0, close, reuse the number) can be taken by anyone in
    between. This one stays bound by the test and never listens: nobody else can bind it, and the
    kernel answers each connection attempt with a reset (ECONNREFUSED).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# --- the tests that need the whole recorded history ----------------------------------------------------

WHOLE_HISTORY = "whole_history"


class WholeHistorySkips:
    """Counts the `whole_history` tests skipped (on the xdist controller, from the workers' reports)."""

    def __init__(self) -> None:
        self.skipped: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and WHOLE_HISTORY in report.keywords:
            self.skipped.add(report.nodeid)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # xdist workers leave the count and the line to the controller
        config.pluginmanager.register(WholeHistorySkips(), "leaderwatch-whole-history")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's last line, after pytest's own: how many whole-history tests were skipped, and how not to."""
    counter = config.pluginmanager.get_plugin("leaderwatch-whole-history")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not isinstance(counter, WholeHistorySkips) or not counter.skipped or reporter is None:
        return
    count = len(counter.skipped)
    what = "1 test that needs" if count == 1 else f"{count} tests that need"
    reporter.write_line(f"{what} the whole recorded history {'was' if count == 1 else 'were'} skipped: "
                        "set LEADERWATCH_RECORDINGS (default ../shared/data) to run them", yellow=True)


# --- one database on each store: SQLite and PostgreSQL (issue 15) ----------------------------------------

POSTGRES_TEST_URL = "postgresql://postgres@127.0.0.1:5432/test"
"""The tests' PostgreSQL (tests/postgres-up starts it); `LEADERWATCH_TEST_POSTGRES` names another."""


def postgres_test_url() -> str:
    """The server the PostgreSQL tests use."""
    return os.environ.get("LEADERWATCH_TEST_POSTGRES") or POSTGRES_TEST_URL


def with_schema(url: str, schema: str) -> str:
    """`url` whose connections use `schema` (search_path), so a test run keeps to its own tables."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def postgres_unavailable(reason: str) -> None:
    """Skip (fail under CI=true) a test that needs PostgreSQL when the server does not answer."""
    message = (f"PostgreSQL unreachable at {postgres_test_url()} ({reason}); run tests/postgres-up or set "
               "LEADERWATCH_TEST_POSTGRES")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def new_postgres_schema(label: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema `lw_<label>_<pid>_<random>` on the tests' server: the URL that uses
    it; dropped at the end. Skips (fails under CI=true) when the server does not answer."""
    import secrets

    from leaderwatch.storage.db import StorageError
    from leaderwatch.storage.postgres import PostgresDatabase

    try:
        admin = PostgresDatabase(postgres_test_url(), busy_timeout=5.0, max_size=1)
    except StorageError as exc:
        postgres_unavailable(str(exc).split(": ", 1)[-1][:200])
        raise  # not reached: skip or fail raise
    schema = f"lw_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(postgres_test_url(), schema)
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own for this test process (dropped at the end): the URL that uses it. Several
    pytest processes (xdist workers, other runs) share the server, never a schema."""
    with new_postgres_schema("test") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_session_db(postgres_schema: str) -> Iterator[Database]:
    """The migrated PostgreSQL database of this test process (`any_db` empties it before each test)."""
    database = open_db(postgres_schema)
    yield database
    database.close()


def empty_postgres(database: Database) -> None:
    """Every table emptied and its numbering restarted (migrations kept): a fresh database, fast."""
    tables = [t for t in database.table_names() if t != "leaderwatch_migrations"]
    database.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A new, empty database on each store in turn: SQLite in memory, and PostgreSQL (one migrated schema
    per test process, emptied before each test). Named `any_db`: `db` is the template copy above."""
    if request.param == "sqlite":
        database = open_db(":memory:")
        yield database
        database.close()
        return
    database = request.getfixturevalue("postgres_session_db")
    empty_postgres(database)
    yield database


@pytest.fixture(params=["sqlite", "postgres"])
def any_template_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The module's `template` database (as `db` gives it) on each store in turn: a copy of the file on
    SQLite; on PostgreSQL its rows copied into this process's emptied schema (`copy_database`)."""
    from leaderwatch.storage.export import copy_database

    template: Path = request.getfixturevalue("template")
    if request.param == "sqlite":
        path = tmp_path / "lw.db"
        shutil.copy(template, path)
        database = open_db(path)
        yield database
        database.close()
        return
    database = request.getfixturevalue("postgres_session_db")
    empty_postgres(database)
    source = open_db(template)
    try:
        copy_database(source, database)
    finally:
        source.close()
    yield database
