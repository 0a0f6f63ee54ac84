"""`share`: a group or an organization holding at least COUNT of a board's top N, as a table of cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from leaderwatch.alerts.models import RuleError
from leaderwatch.alerts.ruleset import parse_rule
from tests.alerts.test_rules import GROUPS, cn, fr, model, qwen, run, snap, us

HOLDS = "share group=china count=2 top=3"


def china_top(*rows: tuple[str, float]) -> list:
    """US models at 90 and 80 around the given Chinese ones (DeepSeek and Alibaba alternately)."""
    out = [us("gpt-x", 90), us("o-x", 80)]
    for i, (name, score) in enumerate(rows):
        out.append((cn if i % 2 == 0 else qwen)(name, score))
    return out


def messages(rule: str, *tables: list) -> list[tuple[int, str]]:
    return [(i, e.message.removeprefix("test/board: ")) for i, e in run(rule, [snap(d, t) for d, t in
                                                                                enumerate(tables)]).events]


def test_fires_when_the_group_comes_to_hold_count_of_the_top_and_quietly_when_it_falls_back() -> None:
    before = china_top(("ds-1", 70))                      # china holds 1 of the top 3
    after = china_top(("ds-1", 95), ("qw-1", 91))         # 2 of the top 3: DS #1, QW #2
    fallen = china_top(("ds-1", 95), ("qw-1", 50))        # back to 1
    assert messages(HOLDS, before, before, after, after, fallen) == [
        (2, "china now holds 2 of the top 3: ds-1 #1, qw-1 #2"),
        (4, "china no longer holds 2 of the top 3 (1 now: ds-1 #1)"),
    ]


def test_never_on_a_baseline_snapshot() -> None:
    holding = china_top(("ds-1", 95), ("qw-1", 91))
    assert messages(HOLDS, holding, holding) == []
    assert messages(HOLDS, holding, china_top(("ds-1", 95)), holding) == [
        (1, "china no longer holds 2 of the top 3 (1 now: ds-1 #1)"),
        (2, "china now holds 2 of the top 3: ds-1 #1, qw-1 #2")]


def test_ties_at_the_cut_all_count() -> None:
    """Two models share #3: both are in the top 3, so the share holds with either."""
    tied = [us("gpt-x", 90), cn("ds-1", 85), replace(us("o-x", 80), rank=3),
            replace(qwen("qw-1", 80), rank=3), fr("mi-1", 70)]
    base = [us("gpt-x", 90), cn("ds-1", 85), us("o-x", 80), qwen("qw-1", 60), fr("mi-1", 70)]
    assert messages(HOLDS, base, snap(1, tied).entries) == [
        (1, "china now holds 2 of the top 3: ds-1 #2, qw-1 #3")]


def test_runs_of_one_model_under_other_settings_count_once() -> None:
    runs = [cn("ds-1 (high)", 95), cn("ds-1 (low)", 94), us("gpt-x", 90), qwen("qw-1", 50)]
    assert messages(HOLDS, china_top(("ds-1", 70)), runs) == []


def test_a_truncated_table_that_hides_the_cut_is_not_judged() -> None:
    """A table listing only its top 2 cannot tell whether china holds 2 of the top 3 when it shows 1."""
    holding = china_top(("ds-1", 95), ("qw-1", 91))
    short = snap(1, [cn("ds-1", 95), us("gpt-x", 90)], truncated=True)
    assert [e for _, e in run(HOLDS, [snap(0, holding), short]).events] == []
    shown = snap(2, [cn("ds-1", 95), qwen("qw-1", 94)], truncated=True)  # shows 2 of the top 2: holds
    back = run(HOLDS, [snap(0, china_top(("ds-1", 70))), shown]).events
    assert [e.message for _, e in back] == ["test/board: china now holds 2 of the top 3: ds-1 #1, qw-1 #2"]


def test_an_organization_is_matched_by_every_spelling_the_identity_tables_know() -> None:
    """Alibaba's models listed under `Qwen` (the Hugging Face namespace) count as Alibaba's."""
    hf = [model("Qwen2-72B", 90, "Qwen", "CN"), model("Qwen2-7B", 85, "qwen", "CN"), us("gpt-x", 80)]
    base = [us("gpt-x", 95), model("Qwen2-72B", 90, "Qwen", "CN"), us("o-x", 85)]
    events = run("share organization=Alibaba count=2 top=3", [snap(0, base), snap(1, hf)]).events
    assert [e.message for _, e in events] == [
        "test/board: Alibaba now holds 2 of the top 3: Qwen2-72B #1, Qwen2-7B #2"]


def test_confirm_waits_and_the_dedupe_key_names_count_and_top() -> None:
    holding = china_top(("ds-1", 95), ("qw-1", 91))
    before = china_top(("ds-1", 70))
    confirmed = run("share group=china count=2 top=3 confirm=2", [snap(d, t) for d, t in
                                                                  enumerate([before, holding, holding])])
    assert [i for i, _ in confirmed.events] == [2]
    two = run(["share group=china count=2 top=3", "share group=china count=2 top=4"],
              [snap(0, before), snap(1, holding)]).events
    assert len({e.dedupe_key for _, e in two}) == 2


@pytest.mark.parametrize(("text", "message"), [
    ("share count=3 top=10", "rule `share` needs group=GROUP or organization=NAME (one of them), e.g. "
                             "`share group=china count=3 top=10`"),
    ("share group=china organization=Alibaba", "rule `share` needs group=GROUP or organization=NAME (one of "
                                               "them), e.g. `share group=china count=3 top=10`"),
    ("share group=china count=11 top=10", "rule `share` count=11 is more than top=10: no one can hold more "
                                          "of the top N than N"),
    ("share group=mars", "rule `share` group: unknown group `mars` (groups: china, europe, open-weights, "
                         "proprietary, us, west)"),
])
def test_bad_rules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text, list(GROUPS))
    assert str(caught.value) == message


def test_the_name_reads_back() -> None:
    rule = parse_rule("share group=China count=3 top=10", list(GROUPS))
    assert rule.name == "share group=china count=3 top=10"
    assert parse_rule(rule.name, list(GROUPS)).name == rule.name
