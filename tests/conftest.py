"""Shared fixtures: the recorded real data and a fresh identity."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.bot.pipeline.importer import ImportReport, import_recordings
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources
from leaderwatch.storage.db import open_db

REPO = Path(__file__).resolve().parent.parent


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


def import_subset(recordings: Path, folder: Path, paths: Iterable[str], now: datetime
                  ) -> tuple[Database, ImportReport]:
    """`folder/template.db` holding some recorded files (paths under `recordings`), imported the way
    `leaderwatch import` does; the database is left open for the caller to add to and close."""
    root = folder / "recordings"
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(recordings / rel)
    db = open_db(folder / "template.db")
    return db, import_recordings(db, all_sources(Identity.load()), root, now)


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
