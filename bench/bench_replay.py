"""Replaying all recorded history through the default rules (target: under 30 s)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import recordings  # noqa: E402
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.cli.history import BoardReplay, backtest, replay  # noqa: E402
from leaderwatch.sources.identity import Identity, load_groups  # noqa: E402
from leaderwatch.sources.registry import all_sources  # noqa: E402


def main() -> None:
    identity = Identity.load()
    groups = load_groups({}, identity)
    rules = default_rules(list(groups))
    sources = all_sources(identity)
    boards: dict[str, BoardReplay] = {}
    start = time.perf_counter()
    events = list(replay(sources, recordings(), rules, groups, None, boards))
    elapsed = time.perf_counter() - start
    snapshots = sum(b.snapshots for b in boards.values())
    result = backtest(events, boards, rules)
    print(f"boards: {len(boards)}, snapshots evaluated: {snapshots}, events: {len(events)}")
    print(f"replay of all recorded history through {len(rules)} default rules: {elapsed:.1f} s "
          "(target < 30 s)")
    print(f"average alerts per board per week: {result.per_board_week():.2f} (target <= 3)")


if __name__ == "__main__":
    main()
