"""One changed 5,000-row snapshot against 1,000 distinct rule configurations (target: under 200 ms).

The rows are real: the first 5,000 of the Open LLM Leaderboard v1 table (recorded data); the
changed snapshot moves 200 scores by up to half a point, adds 25 new models and drops 25.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import recordings  # noqa: E402
from leaderwatch.alerts.models import BoardState, Rule  # noqa: E402
from leaderwatch.alerts.rules import evaluate  # noqa: E402
from leaderwatch.alerts.ruleset import make_rule  # noqa: E402
from leaderwatch.sources.base import make_snapshot  # noqa: E402
from leaderwatch.sources.identity import Identity, load_groups  # noqa: E402
from leaderwatch.sources.openllm import OpenLLMSource  # noqa: E402

RUNS = 15


def distinct_rules(group_names: list[str]) -> list[Rule]:
    """1,000 different rule configurations spread over every kind."""
    pairs = [(a, b) for a in group_names for b in group_names if a != b]
    rules: dict[str, Rule] = {}
    candidates = []
    for a, b in pairs:
        for conf in ("any", "clear"):
            for cooldown in ("0", "1d", "7d"):
                params = {"groups": f"{a},{b}", "confidence": conf, "cooldown": cooldown}
                candidates.append(("overtake", params))
        for threshold in (1, 2, 5, 10):
            for unit in ("points", "percent"):
                candidates.append(("gap", {"groups": f"{a},{b}", "threshold": threshold, "unit": unit}))
    for top in range(1, 151):
        candidates.append(("top_n", {"top": top}))
        candidates.append(("top_n", {"top": top, "group": random.choice(group_names)}))
        candidates.append(("new_model", {"top": top}))
        candidates.append(("rank_change", {"by": top}))
    for threshold in range(40, 80):
        candidates.append(("score", {"threshold": threshold}))
        candidates.append(("score", {"threshold": threshold + 0.5, "direction": "both"}))
    for g in group_names:
        candidates.append(("new_leader", {"group": g}))
        candidates.append(("new_model", {"group": g}))
    random.shuffle(candidates)
    for kind, params in candidates:
        rule = make_rule(kind, params, group_names)
        rules.setdefault(rule.name, rule)
        if len(rules) == 1000:
            break
    return list(rules.values())


def main() -> None:
    random.seed(7)
    identity = Identity.load()
    groups = load_groups({}, identity)
    source = OpenLLMSource(identity)
    rec = next(r for r in source.recordings(recordings()) if r.path.name.startswith("huggingface_v1"))
    full = source.load(rec)[0]
    rows = list(full.entries[:5000])
    spare = list(full.entries[5000:5025])
    prev = make_snapshot(full.board, full.as_of, full.as_of, rows)
    touched = set(random.sample(range(25, 5000), 200))
    moved = [replace(e, score=e.score + random.uniform(-0.5, 0.5)) if i in touched else e
             for i, e in enumerate(rows[25:], start=25)]
    newcomers = [replace(e, score=e.score + 10.0) for e in spare]
    ordered = sorted(moved + newcomers, key=lambda e: -e.score)
    ranked = [replace(e, rank=i) for i, e in enumerate(ordered, start=1)]
    curr = make_snapshot(full.board, full.as_of + timedelta(days=1), full.as_of, ranked)
    rules = distinct_rules(sorted(groups))
    assert len(rules) == 1000, len(rules)
    base = evaluate(None, prev, rules, {}, BoardState(), groups, prev.as_of)
    times, events, by_kind = [], 0, Counter[str]()
    for _ in range(RUNS):
        start = time.perf_counter()
        result = evaluate(prev, curr, rules, base.rule_states, base.board_state, groups, curr.as_of)
        times.append(time.perf_counter() - start)
        events = len(result.events)
        by_kind = Counter(e.kind for e in result.events)
    kinds = sorted({r.kind for r in rules})
    print(f"snapshot: {len(curr.entries)} rows ({len(newcomers)} new), rules: {len(rules)} "
          f"distinct ({', '.join(kinds)})")
    print(f"events found: {events} ({', '.join(f'{k} {n}' for k, n in by_kind.most_common())})")
    print(f"evaluate: median {statistics.median(times) * 1000:.1f} ms, best {min(times) * 1000:.1f} ms, "
          f"worst {max(times) * 1000:.1f} ms over {RUNS} runs (target < 200 ms)")


if __name__ == "__main__":
    main()
