"""A rule with no stored state (just subscribed, or after an import) judges the update against the
previous snapshot, instead of swallowing it as a baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leaderwatch.alerts.models import BoardState
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.sources.base import Board, Entry, make_snapshot
from leaderwatch.sources.identity import default_groups

BOARD = Board("t/b", "T", "score")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def snap(day: int, china: float, west: float):  # type: ignore[no-untyped-def]
    rows = sorted([("DeepSeek-X", china, "CN"), ("OpenAI-Y", west, "US")], key=lambda r: -r[1])
    entries = [Entry(n, n.lower(), s, i, n.split("-")[0], (c,)) for i, (n, s, c) in enumerate(rows, 1)]
    return make_snapshot(BOARD, T0 + timedelta(days=day), T0 + timedelta(days=day), entries)


def test_a_rule_without_state_fires_on_the_first_change_it_sees() -> None:
    groups = default_groups()
    rule = parse_rule("overtake", list(groups))
    prev, curr = snap(0, 70, 80), snap(1, 85, 80)
    known = BoardState(frozenset({"deepseek-x", "openai-y"}), 5)
    result = evaluate(prev, curr, [rule], {}, known, groups, curr.as_of)
    assert [(e.kind, e.model, e.other) for e in result.events] == [("overtake", "DeepSeek-X", "OpenAI-Y")]
    # ...and a rule without state on a board's very first snapshot only records the baseline.
    first = evaluate(None, curr, [rule], {}, BoardState(), groups, curr.as_of)
    assert first.events == () and first.rule_states[rule.name].confirmed == {"china|west": "china"}
