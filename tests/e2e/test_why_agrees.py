"""`why` agrees with what fired, over all recorded history (and over the excerpts in the repository).

Every board's recorded history goes through `evaluate` in time order with a rich rule set (as the
poller would, all rules together); at every snapshot, `explain` runs each rule alone from its state
before the snapshot and must fire exactly the events `evaluate` produced for it (same dedupe keys),
with a reason line to show.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from leaderwatch.alerts.explain import explain
from leaderwatch.alerts.models import BoardState, Event, RuleState
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.ruleset import default_rules, parse_rule
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity, load_groups

VARIANTS = (
    "overtake groups=china,west confirm=2",
    "overtake groups=china,us cooldown=1d",
    "overtake groups=open-weights,proprietary confidence=clear",
    "new_leader confidence=clear",
    "new_leader group=china confirm=2",
    "top_n top=5 group=china direction=enter",
    "top_n top=10 confirm=2 cooldown=2w",
    "top_n top=3 margin=0",
    "gap groups=china,west threshold=5 unit=percent direction=below",
    "gap groups=europe,us threshold=20",
    "score threshold=1400",
    "score threshold=60 direction=both confirm=2",
    "rank_change by=3",
    "rank_change by=5 top=20 cooldown=0",
    "new_model",
    "board_changed",
    "share group=china count=3 top=10",
    "share organization=Alibaba count=2 top=20 confirm=2",
)
"""Beside the shipped defaults: confirm, cooldowns, confidence=clear, a group with direction=enter,
a percent gap with direction=below, score thresholds, rank changes and every other kind."""


class Board:
    """One board's running state in the replay."""

    def __init__(self) -> None:
        self.prev: Snapshot | None = None
        self.states: dict[str, RuleState] = {}
        self.known = BoardState()


@dataclass
class Agreement:
    """What going through a timeline found: the disagreements, and what the rules did."""

    disagree: list[str] = field(default_factory=list)
    snapshots: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def agreement(timeline: tuple[Snapshot, ...]) -> tuple[Agreement, set[str]]:
    """`evaluate` and `explain` side by side over `timeline`, and the kinds of the rules."""
    identity = Identity.load()
    groups = load_groups({}, identity)
    rules = [*default_rules(list(groups)), *(parse_rule(text, list(groups)) for text in VARIANTS)]
    boards: dict[str, Board] = defaultdict(Board)
    seen = Agreement()
    for snap in timeline:
        board = boards[snap.board.id]
        if board.prev is not None and board.prev.content_hash == snap.content_hash:
            continue  # unchanged, like an unchanged poll
        result = evaluate(board.prev, snap, rules, board.states, board.known, groups, snap.as_of)
        found: dict[str, list[Event]] = defaultdict(list)
        for event in result.events:
            found[event.rule].append(event)
        for rule in rules:
            before = board.states.get(rule.name)
            why = explain(rule, board.prev, snap, before, board.known, groups, snap.as_of)
            expected = [e.dedupe_key for e in found[rule.name]]
            if [e.dedupe_key for e in why.events] != expected or not why.reason:
                seen.disagree.append(f"{snap.board.id} {snap.as_of:%Y-%m-%d} `{rule.name}`: evaluate fired "
                                     f"{len(expected)}, explain {len(why.events)}: {why.reason!r}")
            seen.fired[rule.kind] += bool(why.events)
            seen.reasons.update(w for w in ("waiting for confirmation", "inside the cooldown", "not reported",
                                            "statistically tied", "reports only direction", "as before")
                                if w in why.reason)
        board.prev, board.states, board.known = snap, dict(result.rule_states), result.board_state
        seen.snapshots += 1
    return seen, {r.kind for r in rules}


@pytest.mark.whole_history
def test_explain_fires_exactly_what_evaluate_fired_at_every_snapshot(
        recorded_timeline: tuple[Snapshot, ...]) -> None:
    seen, kinds = agreement(recorded_timeline)
    assert not seen.disagree, f"{len(seen.disagree)} disagreements, e.g.\n" + "\n".join(seen.disagree[:10])
    # The history exercises what the rule set is for: every kind fires, and each way of holding back shows.
    assert seen.snapshots > 1000
    assert set(seen.fired) == kinds and all(seen.fired.values())
    assert all(seen.reasons[w] for w in ("waiting for confirmation", "inside the cooldown", "not reported",
                                         "statistically tied", "as before")), seen.reasons


def test_explain_fires_exactly_what_evaluate_fired_on_the_excerpts(
        excerpt_timeline: tuple[Snapshot, ...]) -> None:
    """The same on the excerpts in the repository (about 100 changed snapshots): every kind fires there
    too, and every way of holding back shows but the cooldown."""
    seen, kinds = agreement(excerpt_timeline)
    assert not seen.disagree, f"{len(seen.disagree)} disagreements, e.g.\n" + "\n".join(seen.disagree[:10])
    assert seen.snapshots >= 90
    assert set(seen.fired) == kinds and all(seen.fired.values())
    assert all(seen.reasons[w] for w in ("waiting for confirmation", "not reported", "statistically tied",
                                         "as before")), seen.reasons
