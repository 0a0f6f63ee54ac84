"""Importing all recorded history into a fresh database: time (target < 60 s) and database size."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import recordings  # noqa: E402
from leaderwatch.bot.pipeline.importer import import_recordings  # noqa: E402
from leaderwatch.sources.identity import Identity  # noqa: E402
from leaderwatch.sources.registry import all_sources  # noqa: E402
from leaderwatch.storage.db import open_db  # noqa: E402


def main() -> None:
    root = recordings()
    path = Path(tempfile.mkdtemp()) / "import.db"
    db = open_db(path)
    sources = all_sources(Identity.load())
    start = time.perf_counter()
    report = import_recordings(db, sources, root, datetime.now(UTC))
    elapsed = time.perf_counter() - start
    entries = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    boards = db.execute("SELECT count(*) FROM boards").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    print(f"recordings imported: {report.recordings}, errors: {len(report.errors)}")
    print(f"boards: {boards}, snapshots stored: {report.snapshots_stored}, "
          f"unchanged: {report.snapshots_unchanged}, entry rows: {entries}")
    print(f"import time: {elapsed:.1f} s (target < 60 s)")
    print(f"database size after import: {size / 1e6:.1f} MB")
    for err in report.errors:
        print(f"error: {err}")


if __name__ == "__main__":
    main()
