"""`explain`: the engine run again for one rule on a board's last update, and the line its kind writes.

Each case drives the snapshots before the last one through `evaluate` (as the poller would), then
explains the last one from the rule's state before it, and checks that the explanation fires exactly
what `evaluate` fires from that same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from leaderwatch.alerts.explain import Explanation, explain
from leaderwatch.alerts.models import BoardState, RuleState
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.sources.base import Board, Entry, Snapshot, make_snapshot
from leaderwatch.sources.identity import default_groups

BOARD = Board("t/board", "Test", "score", True, False)
T0 = datetime(2025, 6, 1, tzinfo=UTC)
COUNTRY = {"OpenAI": "US", "Google": "US", "Mistral": "FR", "DeepSeek": "CN", "Qwen": "CN"}
GROUPS = default_groups()


def table(day: int, *rows: tuple[str, float], method: str = "") -> Snapshot:
    """A snapshot of models named `Org-x`, ranked by score."""
    ordered = sorted(rows, key=lambda r: -r[1])
    entries = [Entry(name=n, model_key=n.lower(), score=s, rank=i, organization=n.split("-")[0],
                     countries=(COUNTRY[n.split("-")[0]],)) for i, (n, s) in enumerate(ordered, start=1)]
    when = T0 + timedelta(days=day)
    return make_snapshot(BOARD, when, when, entries, method=method)


BEFORE = table(0, ("OpenAI-a", 90), ("DeepSeek-b", 85), ("Mistral-c", 80), ("Google-d", 70), ("Qwen-e", 60))
FLIPPED = table(1, ("DeepSeek-b", 95), ("OpenAI-a", 90), ("Mistral-c", 80), ("Google-d", 70), ("Qwen-e", 60))
SAME = table(1, ("OpenAI-a", 91), ("DeepSeek-b", 85), ("Mistral-c", 80), ("Google-d", 70), ("Qwen-e", 60))
NEW = table(1, ("OpenAI-a", 90), ("Qwen-f", 88), ("DeepSeek-b", 85), ("Mistral-c", 80), ("Google-d", 70))
CLIMB = table(1, ("Qwen-e", 99), ("OpenAI-a", 90), ("DeepSeek-b", 85), ("Mistral-c", 80), ("Google-d", 70))
BACK = table(2, ("OpenAI-a", 96), ("DeepSeek-b", 95), ("Mistral-c", 80), ("Google-d", 70), ("Qwen-e", 60))
AGAIN = table(3, ("DeepSeek-b", 97), ("OpenAI-a", 96), ("Mistral-c", 80), ("Google-d", 70), ("Qwen-e", 60))


def later(snap: Snapshot, days: int) -> Snapshot:
    """The same table, `days` later."""
    when = snap.as_of + timedelta(days=days)
    return make_snapshot(snap.board, when, when, snap.entries, method=snap.method)


def why(rule_text: str, snaps: Sequence[Snapshot], *, state_known: bool = True) -> Explanation:
    """The last snapshot explained, after `evaluate` ran the others; checked against `evaluate` itself.

    `state_known=False`: the rule has no state before the last snapshot (it was added after it).
    """
    rule = parse_rule(rule_text)
    prev: Snapshot | None = None
    states: dict[str, RuleState] = {}
    board_state = BoardState()
    for snap in snaps[:-1]:
        result = evaluate(prev, snap, [rule], states, board_state, GROUPS, snap.as_of)
        prev, states, board_state = snap, dict(result.rule_states), result.board_state
    last = snaps[-1]
    if not state_known:
        states = {}
    found = explain(rule, prev, last, states.get(rule.name), board_state, GROUPS, last.as_of)
    engine = evaluate(prev, last, [rule], states, board_state, GROUPS, last.as_of)
    assert found.events == engine.events
    return found


@pytest.mark.parametrize(("rule", "snaps", "fired", "reason"), [
    ("overtake", [BEFORE], False, "the board's first snapshot: it only sets the baseline"),
    ("overtake", [BEFORE, SAME], False,
     "west leads: best west OpenAI-a #1 vs best china DeepSeek-b #2, as before"),
    ("overtake", [BEFORE, FLIPPED], True,
     "china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, after west led"),
    ("overtake groups=china,europe", [BEFORE, SAME], False,
     "china leads: best china DeepSeek-b #2 vs best europe Mistral-c #3, as before"),
    ("overtake groups=china,us", [table(0, ("OpenAI-a", 1)), table(1, ("OpenAI-a", 2))], False,
     "no china model on the board, nothing to compare"),
    ("new_leader", [BEFORE, SAME], False, "#1 is OpenAI-a (91), as before"),
    ("new_leader", [BEFORE, FLIPPED], True, "#1 changed: DeepSeek-b (95) after OpenAI-a"),
    ("new_leader group=west", [BEFORE, FLIPPED], False,
     "#1 changed: DeepSeek-b (95) after OpenAI-a, which is no west model"),
    ("top_n top=2", [BEFORE, SAME], False, "no model entered the top 2 or fell past #4"),
    ("top_n top=2 margin=0", [BEFORE, NEW], True,
     "entered the top 2: Qwen-f #2; left the top 2: DeepSeek-b (now #3)"),
    ("top_n top=2 margin=0 direction=leave", [BEFORE, NEW], True,
     "left the top 2: DeepSeek-b (now #3); not reported (direction=leave): Qwen-f #2 entering"),
    ("gap threshold=3", [BEFORE, SAME], False,
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the threshold 3 points, as before"),
    ("gap threshold=5.5", [BEFORE, SAME], True,
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the threshold 5.5 points, after 5.0 points in the previous snapshot"),
    ("gap threshold=5.5 direction=below", [BEFORE, SAME], False,
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the threshold 5.5 points, after 5.0 points in the previous snapshot (the rule reports only "
     "direction=below)"),
    ("score threshold=90.5", [BEFORE, SAME], True, "crossed 90.5: OpenAI-a (91)"),
    ("score threshold=95", [BEFORE, SAME], False, "no model crossed 95; 0 model(s) score at or above it"),
    ("score threshold=80 group=china", [BEFORE, SAME], False,
     "no china model crossed 80; 1 china model(s) score at or above it"),
    ("score threshold=80 model=OpenAI-a", [BEFORE, SAME], False,
     "OpenAI-a scores 91, at or above 80, as before"),
    ("new_model", [BEFORE, NEW], True, "new on the board: Qwen-f #2"),
    ("new_model top=1", [BEFORE, NEW], False,
     "no new model in the top 1 since the previous snapshot (1 new model(s) outside the rule's filters)"),
    ("new_model", [BEFORE, NEW, BEFORE], False,
     "no new model on the board since the previous snapshot (1 model(s) back on the table were listed on "
     "this board before)"),
    ("rank_change by=3", [BEFORE, CLIMB], True, "moved 3+ places: Qwen-e up 4 (#5 -> #1)"),
    ("rank_change by=5", [BEFORE, CLIMB], False,
     "no model moved 5 or more places; the biggest move: Qwen-e up 4 (#5 -> #1)"),
    ("board_changed", [BEFORE, SAME], False,
     "same method and recording as the previous snapshot, and most models kept their places"),
    ("board_changed", [table(0, ("OpenAI-a", 1), method="a"), table(1, ("OpenAI-a", 1), method="b")], True,
     "the board changed (method a -> b)"),
    ("new_leader", [table(0, ("OpenAI-a", 1), method="a"), table(1, ("Qwen-e", 2), method="b")], False,
     "the board changed (method a -> b): this snapshot set a new baseline and per-model alerts paused"),
])
def test_explain(rule: str, snaps: list[Snapshot], fired: bool, reason: str) -> None:
    found = why(rule, snaps)
    assert (found.fired, found.reason) == (fired, reason)


@pytest.mark.parametrize(("rule", "snaps", "reason"), [
    ("overtake confirm=2", [BEFORE, FLIPPED],
     "china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2; waiting for confirmation: seen in 1 "
     "of 2 snapshots in a row (confirm=2)"),
    ("overtake", [BEFORE, FLIPPED, BACK, AGAIN],
     "china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, after west led; inside the cooldown "
     "since 2025-06-02 00:00 UTC, when the same outcome fired (cooldown=1w)"),
    ("top_n top=2 margin=0 confirm=2", [BEFORE, NEW],
     "waiting for confirmation (confirm=2): Qwen-f #2 entering (1 of 2), DeepSeek-b (now #3) leaving "
     "(1 of 2)"),
    ("top_n top=2 margin=0", [BEFORE, NEW, later(BEFORE, 2), later(NEW, 3)],
     "inside the cooldown (cooldown=1w): Qwen-f #2 entering (last fired 2025-06-02 00:00 UTC), "
     "DeepSeek-b (now #3) leaving (last fired 2025-06-02 00:00 UTC)"),
    ("rank_change by=3", [BEFORE, CLIMB, later(BEFORE, 2), later(CLIMB, 3)],
     "inside the cooldown (cooldown=1w): Qwen-e up 4 (#5 -> #1) (last fired 2025-06-02 00:00 UTC)"),
    ("score threshold=90.5 confirm=2", [BEFORE, SAME],
     "waiting for confirmation (confirm=2): OpenAI-a (91) crossing (1 of 2)"),
])
def test_a_change_held_back_says_what_held_it(rule: str, snaps: list[Snapshot], reason: str) -> None:
    found = why(rule, snaps)
    assert (found.fired, found.reason) == (False, reason)


def test_the_confirmed_change_fires_on_the_kth_snapshot() -> None:
    third = table(2, ("DeepSeek-b", 95), ("OpenAI-a", 91), ("Mistral-c", 80))
    found = why("overtake confirm=2", [BEFORE, FLIPPED, third])
    assert found.fired and found.reason == ("china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, "
                                            "after west led")
    assert [e.message for e in found.events] == [
        "t/board: china model DeepSeek-b (DeepSeek, CN) now ranks above the best west model OpenAI-a "
        "(OpenAI, US): #1 vs #2, 95 vs 91"]


def test_a_rule_without_state_is_judged_against_the_previous_snapshot() -> None:
    found = why("overtake", [BEFORE, FLIPPED], state_known=False)
    assert found.fresh and found.fired
    assert found.reason == "china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, after west led"
    # ...where the engine, with the state it had, stayed quiet inside the cooldown.
    assert not why("overtake", [BEFORE, FLIPPED, BACK, AGAIN]).fired
    assert why("overtake", [BEFORE, FLIPPED, BACK, AGAIN], state_known=False).fired


def test_explain_reports_an_unknown_group_instead_of_failing() -> None:
    rule = parse_rule("overtake groups=china,mars")
    found = explain(rule, BEFORE, SAME, None, BoardState(frozenset(), 1), GROUPS, SAME.as_of)
    assert (found.fired, found.reason) == (
        False, "unknown group `mars` (groups: china, europe, open-weights, proprietary, us, west)")
