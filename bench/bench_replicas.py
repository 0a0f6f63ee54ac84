"""Delivery by replicas (issue 15): 20,000 outbox rows delivered by two `leaderwatch run` processes on one
PostgreSQL database, then the same by one, against the loopback fake Slack and Discord.

Each run gets a schema of its own on the local PostgreSQL (`LEADERWATCH_TEST_POSTGRES`, default
postgresql://postgres@127.0.0.1:5432/test; dropped after). The replicas are real `python -m leaderwatch run`
processes with every source off; the rows (events, each to 50 Slack and 50 Discord channels, as a fan-out
writes them) are queued through the storage API once the replicas are up, and the clock runs from that
commit until the last row is confirmed `delivered`.

Limits: the fakes enforce none here, and the replicas' `[delivery]` rates are raised far above the
platforms' (see tests/e2e/test_replicas.py `write_config`), so this measures what the replicas themselves
manage: claims, rendering, the senders, PostgreSQL. With the shipped rates (Discord 50 requests a second,
Slack 300 messages a minute) the platforms' pace would be the bound: the replicas share it, each keeping to
1/N of the `[delivery]` rates.

Printed per run: wall time, rows/s, rows confirmed by each replica (from `claimed_by`), requests the
fakes received beyond one per row (duplicates: must be 0) and rows not delivered.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from leaderwatch.storage import outbox  # noqa: E402
from leaderwatch.storage.db import Database, open_db  # noqa: E402
from tests.conftest import new_postgres_schema, postgres_test_url  # noqa: E402
from tests.e2e.test_replicas import (  # noqa: E402
    Platforms,
    Replica,
    discord_channels,
    discord_nonces,
    queue,
    replica_env,
    slack_channels,
    write_config,
)

CHANNELS = 50
"""Channels per platform: each event goes to 50 Slack and 50 Discord channels."""


def run(replicas: int, rows: int, folder: Path, slots: int) -> dict[str, float]:
    """Deliver `rows` rows with `replicas` replicas on a fresh schema; the figures."""
    with new_postgres_schema("bench_replicas") as url:
        platforms = Platforms().start()
        db = open_db(url)
        try:
            return deliver(replicas, rows, folder, slots, url, platforms, db)
        finally:
            db.close()
            platforms.stop()


def deliver(replicas: int, rows: int, folder: Path, slots: int, url: str, platforms: Platforms,
            db: Database) -> dict[str, float]:
    env = replica_env(url, write_config(folder, slots), platforms)
    running = [Replica(f"replica-{replicas}-{i + 1}", env, folder).start() for i in range(replicas)]
    try:
        for replica in running:
            replica.wait_healthy(60)
        events = max(1, rows // (2 * CHANNELS))
        channels = {"slack": slack_channels(CHANNELS), "discord": discord_channels(CHANNELS)}
        keys = queue(db, "bench", events, channels, datetime.now(UTC))
        start = time.perf_counter()
        deadline = start + 30 * 60
        while outbox.depth(db).get("delivered", 0) < len(keys):
            if time.perf_counter() > deadline:
                raise SystemExit(f"{replicas} replica(s): {outbox.depth(db)} after 30 min")
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        nonces = discord_nonces(keys)
        asked = Counter(nonces.get(k, k) for ks in platforms.delivered().values() for k in ks)
        duplicates = sum(n - 1 for n in asked.values() if n > 1)
        missing = sum(1 for k in keys if k not in asked)
        by_replica = dict(db.execute("SELECT claimed_by, count(*) FROM outbox WHERE status = 'delivered' "
                                     "GROUP BY claimed_by ORDER BY claimed_by").fetchall())
        for replica in running:
            replica.terminate()
        shares = ", ".join(f"{who}: {n:,}" for who, n in by_replica.items())
        print(f"{replicas} replica(s): {len(keys):,} rows in {seconds:.1f} s ({len(keys) / seconds:.0f} "
              f"rows/s); per replica {shares}; duplicates {duplicates}; not delivered {missing}", flush=True)
        return {"seconds": seconds, "rows": len(keys), "duplicates": duplicates, "missing": missing}
    finally:
        for replica in running:
            replica.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows to deliver (a multiple of 100)")
    parser.add_argument("--slots", type=int, default=16, help="[delivery] slots of each replica")
    args = parser.parse_args()
    try:
        psycopg.connect(postgres_test_url(), connect_timeout=3).close()
    except psycopg.Error as exc:
        raise SystemExit(f"no PostgreSQL at {postgres_test_url()} ({exc}): start it (tests/postgres-up) or "
                         "set LEADERWATCH_TEST_POSTGRES") from None
    print(f"{os.cpu_count()} CPU(s); replicas, PostgreSQL and the fakes share them", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        two = run(2, args.rows, Path(tmp), args.slots)
        one = run(1, args.rows, Path(tmp), args.slots)
    print(f"two replicas vs one: {one['seconds'] / two['seconds']:.2f}x the rate", flush=True)
    ok = all(r["duplicates"] == 0 and r["missing"] == 0 for r in (one, two))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
