"""Shared fixtures: the recorded real data, databases, the identity, a clean environment, a refusing port."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

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
