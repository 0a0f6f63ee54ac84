"""`explain`: what a rule sees from the previous snapshot to the last one, as a table of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leaderwatch.alerts.explain import Finding, explain, fired, held_back
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.sources.base import Board, Entry, Snapshot, make_snapshot
from leaderwatch.sources.identity import default_groups

BOARD = Board("t/board", "Test", "score", True, False)
T0 = datetime(2025, 6, 1, tzinfo=UTC)
COUNTRY = {"OpenAI": "US", "Google": "US", "Mistral": "FR", "DeepSeek": "CN", "Qwen": "CN"}


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


@pytest.mark.parametrize(("rule", "prev", "curr", "changed", "subjects", "reason"), [
    ("overtake", None, BEFORE, False, set(), "the board's first snapshot: it only sets the baseline"),
    ("overtake", BEFORE, SAME, False, set(),
     "west leads: best west OpenAI-a #1 vs best china DeepSeek-b #2, as in the previous snapshot"),
    ("overtake", BEFORE, FLIPPED, True, {"china|west"},
     "china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, after west led in the previous "
     "snapshot"),
    ("overtake groups=china,europe", BEFORE, SAME, False, set(),
     "china leads: best china DeepSeek-b #2 vs best europe Mistral-c #3, as in the previous snapshot"),
    ("overtake groups=china,us", table(0, ("OpenAI-a", 1)), table(1, ("OpenAI-a", 2)), False, set(),
     "no china model on the board, nothing to compare"),
    ("new_leader", BEFORE, SAME, False, set(), "#1 is OpenAI-a (91), as in the previous snapshot"),
    ("new_leader", BEFORE, FLIPPED, True, {"leader"}, "#1 changed: DeepSeek-b (95) after OpenAI-a"),
    ("new_leader group=west", BEFORE, FLIPPED, False, set(), "#1 changed to DeepSeek-b, which is no west "
                                                             "model"),
    ("top_n top=2", BEFORE, SAME, False, set(), "no model entered the top 2 or fell past #4"),
    ("top_n top=2 margin=0", BEFORE, NEW, True, {"qwen-f", "deepseek-b"},
     "entered the top 2: Qwen-f #2; left the top 2: DeepSeek-b (now #3)"),
    ("top_n top=2 margin=0 direction=leave", BEFORE, NEW, True, {"deepseek-b"},
     "left the top 2: DeepSeek-b (now #3)"),
    ("gap threshold=3", BEFORE, SAME, False, set(),
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the "
     "threshold 3 points, as in the previous snapshot (5.0 points)"),
    ("gap threshold=5.5", BEFORE, SAME, True, {"china|west"},
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the "
     "threshold 5.5 points, after 5.0 points in the previous snapshot"),
    ("gap threshold=5.5 direction=below", BEFORE, SAME, False, {"china|west"},
     "the gap between the best china DeepSeek-b (85) and the best west OpenAI-a (91) is 6.0 points, above "
     "the "
     "threshold 5.5 points, after 5.0 points in the previous snapshot (the rule reports only "
     "direction=below)"),
    ("score threshold=90.5", BEFORE, SAME, True, {"openai-a"}, "crossed 90.5: OpenAI-a (91)"),
    ("score threshold=95", BEFORE, SAME, False, set(),
     "no model crossed 95; 0 model(s) score at or above it"),
    ("score threshold=80 group=china", BEFORE, SAME, False, set(),
     "no china model crossed 80; 1 china model(s) score at or above it"),
    ("score threshold=80 model=OpenAI-a", BEFORE, SAME, False, set(),
     "OpenAI-a scores 91, at or above 80, as in the previous snapshot"),
    ("new_model", BEFORE, NEW, True, {"qwen-f"}, "new on the board: Qwen-f #2"),
    ("new_model top=1", BEFORE, NEW, False, set(),
     "no new model in the top 1 since the previous snapshot (1 new model(s) outside the rule's filters)"),
    ("rank_change by=3", BEFORE, CLIMB, True, {"qwen-e"}, "moved 3+ places: Qwen-e up 4 (#5 -> #1)"),
    ("rank_change by=5", BEFORE, CLIMB, False, set(),
     "no model moved 5 or more places; the biggest move: Qwen-e up 4 (#5 -> #1)"),
    ("board_changed", BEFORE, SAME, False, set(),
     "same method and recording as the previous snapshot, and most models kept their places"),
    ("board_changed", table(0, ("OpenAI-a", 1), method="a"), table(1, ("OpenAI-a", 1), method="b"), True,
     {"method"}, "the board changed (method a -> b)"),
    ("new_leader", table(0, ("OpenAI-a", 1), method="a"), table(1, ("Qwen-e", 2), method="b"), False, set(),
     "the board changed (method a -> b): this snapshot set a new baseline and per-model alerts paused"),
])
def test_explain(rule: str, prev: Snapshot | None, curr: Snapshot, changed: bool, subjects: set[str],
                 reason: str) -> None:
    finding = explain(parse_rule(rule), prev, curr, default_groups())
    assert finding == Finding(changed, frozenset(subjects), reason)


def test_explain_reports_an_unknown_group_instead_of_failing() -> None:
    rule = parse_rule("overtake groups=china,mars")
    assert explain(rule, BEFORE, SAME, default_groups()).reason == (
        "unknown group `mars` (groups: china, europe, open-weights, proprietary, us, west)")


def event(rule: str, kind: str, subject: str) -> Event:
    return Event(kind, "t/board", T0, rule, subject, None, None, (), None, None, None, None, "n/a", "m", "k")


def test_fired_matches_its_own_events_then_a_shared_one_about_what_it_saw_change() -> None:
    own, shared = event("overtake groups=china,west confidence=clear", "overtake", "china|west"), \
        event("overtake groups=china,west", "overtake", "china|west")
    clear = parse_rule("overtake confidence=clear")
    assert fired(clear, Finding(True, frozenset({"china|west"}), ""), [shared, own]) == [own]
    assert fired(clear, Finding(True, frozenset({"china|west"}), ""), [shared]) == [shared]
    assert fired(clear, Finding(False, frozenset(), ""), [shared]) == []
    assert fired(clear, Finding(True, frozenset({"china|us"}), ""), [shared]) == []


def test_held_back_names_what_may_have_kept_an_alert_back() -> None:
    assert held_back(parse_rule("top_n top=5 confirm=2 cooldown=1d")) == (
        "the change must show in 2 snapshots in a row (confirm=2); or the same outcome fired less than 1d "
        "before (cooldown); or the rule was added after this snapshot arrived")
    # A new model fires once, ever: neither confirm nor a cooldown can hold it back.
    assert held_back(parse_rule("new_model top=10")) == (
        "the model was on this board before; or the rule was added after this snapshot arrived")
