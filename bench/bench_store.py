"""Storing a changed 4,576-row Open LLM v2 snapshot vs a bare sqlite3 executemany; unchanged re-store.

Targets (issue 2): changed store <= 3x the bare insert; unchanged re-store writes no entry rows and
costs < 5% of the bare insert.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import best_of, recordings  # noqa: E402
from leaderwatch.sources.base import make_snapshot  # noqa: E402
from leaderwatch.sources.identity import Identity  # noqa: E402
from leaderwatch.sources.openllm import OpenLLMSource  # noqa: E402
from leaderwatch.storage import snapshots as store  # noqa: E402
from leaderwatch.storage.db import open_db  # noqa: E402

RUNS = 7


def main() -> None:
    source = OpenLLMSource(Identity.load())
    rec = next(r for r in source.recordings(recordings()) if r.path.name == "huggingface_v2_2025-03-21.csv")
    snap = next(s for s in source.load(rec) if s.board.id == "openllm/v2")
    rows = store._entry_rows(1, snap.entries)  # the exact rows storage writes
    print(f"snapshot: {snap.board.id} as of {snap.as_of:%Y-%m-%d}, {len(rows)} rows")
    tmp = Path(tempfile.mkdtemp())

    bare_times: list[float] = []

    def bare() -> None:
        # A fresh file with the same table and pragmas; only the insert and its commit are timed.
        path = tmp / f"bare{len(bare_times)}.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE entries (snapshot_id INTEGER, position INTEGER, name TEXT, "
                     "model_key TEXT, organization TEXT, countries TEXT, mixed INTEGER, "
                     "open_weights INTEGER, score FLOAT, rank INTEGER, ci_lower FLOAT, ci_upper FLOAT, "
                     "votes INTEGER, components TEXT, PRIMARY KEY (snapshot_id, position))")
        start = time.perf_counter()
        with conn:
            conn.executemany(f"INSERT INTO entries VALUES ({', '.join('?' * 14)})", rows)
        bare_times.append(time.perf_counter() - start)
        conn.close()

    counter = [0]

    def changed() -> None:
        # A fresh database holding one earlier snapshot of the board, then the changed one.
        path = tmp / f"lw{counter[0]}.db"
        counter[0] += 1
        db = open_db(path)
        earlier = make_snapshot(snap.board, snap.as_of - timedelta(days=1), snap.fetched_at,
                                snap.entries[:-1])
        store.save_snapshot(db, earlier)
        timed[0] = best_of(1, lambda: store.save_snapshot(db, snap))
        db.close()

    timed = [0.0]
    for _ in range(RUNS):
        bare()
    bare_s = min(bare_times)
    changed_times = []
    for _ in range(RUNS):
        changed()
        changed_times.append(timed[0])
    changed_s = min(changed_times)

    db = open_db(tmp / "unchanged.db")
    store.save_snapshot(db, snap)
    before = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    later = dataclasses.replace(snap, fetched_at=snap.fetched_at + timedelta(hours=1))
    unchanged_s = best_of(RUNS, lambda: store.save_snapshot(db, later))
    written = db.execute("SELECT count(*) FROM entries").fetchone()[0] - before

    print(f"bare sqlite3 executemany:   {bare_s * 1000:8.1f} ms")
    ratio = changed_s / bare_s
    print(f"save_snapshot (changed):    {changed_s * 1000:8.1f} ms  = {ratio:.2f}x bare (target <= 3x)")
    share = 100 * unchanged_s / bare_s
    print(f"save_snapshot (unchanged):  {unchanged_s * 1000:8.2f} ms  = {share:.1f}% of bare (target < 5%)")
    print(f"entry rows written by the unchanged re-store: {written}")


if __name__ == "__main__":
    main()
