"""Shared fixtures: the recorded real data, databases, the identity, a clean environment, a refusing port."""

from __future__ import annotations

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
from tests.helpers import REPO
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


@pytest.fixture(scope="session")
def imported_history(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """All recorded history imported once per session by `leaderwatch import` (events included), and
    what the import printed. Modules copy the file before they change it."""
    import contextlib
    import io

    from leaderwatch.bot.cli.main import main

    path = tmp_path_factory.mktemp("history") / "history.db"
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LEADERWATCH_")}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--db", str(path), "import", "--recordings", str(recordings)])
    finally:
        os.environ.update(saved)
    assert code == 0, err.getvalue()[-2000:]
    return path, out.getvalue()


@pytest.fixture(scope="session")
def recorded_timeline(recordings: Path) -> tuple[Snapshot, ...]:
    """Every recorded snapshot on the timeline `import` and `replay` build, in time order, read once."""
    from leaderwatch.bot.cli.history import recorded_snapshots
    from leaderwatch.sources.registry import all_sources

    return tuple(recorded_snapshots(all_sources(Identity.load()), recordings))


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
