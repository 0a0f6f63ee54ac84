"""The whole race on the imported history: `race all`, `versus` and the weekly report.

Targets (issue #11): `race all` over every recorded board and `versus` answer in under 200 ms; the
report (52 weeks of lead counts and its chart) builds in under 2 s. Each figure is the median of
several runs on a fresh command context (no cache carried over from the previous run), after one
warm-up run, so it is what a chat user waits for.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import recordings  # noqa: E402
from leaderwatch.alerts.ruleset import default_rules  # noqa: E402
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch  # noqa: E402
from leaderwatch.bot.pipeline.importer import import_recordings  # noqa: E402
from leaderwatch.sources.identity import Identity, default_groups  # noqa: E402
from leaderwatch.sources.registry import all_boards, all_sources  # noqa: E402
from leaderwatch.storage.db import Database, open_db  # noqa: E402

RUNS = 7
QUESTIONS = (
    ("race all", 0.2),
    ("race all at 2025-02-01", 0.2),
    ("versus gemini-2.5-pro claude-opus-4-20250514", 0.2),
    ("versus deepseek-r1 west", 0.2),
    ("report", 2.0),
)


def context(db: Database, identity: Identity) -> CommandContext:
    groups = default_groups()
    return CommandContext(db, identity, groups, default_rules(list(groups)),
                          all_boards(all_sources(identity)), lambda: datetime.now(UTC))


def timed(db: Database, identity: Identity, text: str) -> float:
    """Seconds one question takes on a fresh context (the chart of `report` drawn, as in chat)."""
    ctx = context(db, identity)
    start = time.perf_counter()
    reply = asyncio.run(dispatch(ctx, Invocation("console", "bench", "bench", "bench", text)))
    elapsed = time.perf_counter() - start
    if reply.error:
        sys.exit(f"{text}: {reply.text}")
    return elapsed


def main() -> None:
    identity = Identity.load()
    with tempfile.TemporaryDirectory() as folder:
        db = open_db(Path(folder) / "history.db")
        start = time.perf_counter()
        report = import_recordings(db, all_sources(identity), recordings(), datetime.now(UTC))
        boards = db.execute("SELECT count(*) FROM boards").fetchone()[0]
        snapshots = db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        print(f"imported {report.recordings} recordings ({boards} boards, {snapshots} snapshots) in "
              f"{time.perf_counter() - start:.1f} s")
        for text, target in QUESTIONS:
            timed(db, identity, text)  # warm-up: imports, SQLite's page cache
            runs = [timed(db, identity, text) for _ in range(RUNS)]
            median = statistics.median(runs)
            verdict = "ok" if median < target else "OVER TARGET"
            print(f"{text:<48} median {median * 1000:7.1f} ms, max {max(runs) * 1000:7.1f} ms "
                  f"(target < {target * 1000:.0f} ms: {verdict})")
        db.close()


if __name__ == "__main__":
    main()
