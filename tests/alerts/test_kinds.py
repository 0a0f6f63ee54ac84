"""The kind registry: each kind is one module holding everything about it, and its parameters are typed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from leaderwatch.alerts.explain import explain
from leaderwatch.alerts.kinds import BY_NAME, KIND_HELP, KIND_TITLES, KINDS, REGISTRY, kind_named, title_of
from leaderwatch.alerts.kinds.base import Kind, Params
from leaderwatch.alerts.models import KINDS as MODEL_KINDS
from leaderwatch.alerts.models import BoardState, RuleError
from leaderwatch.alerts.ruleset import make_rule
from leaderwatch.sources.base import Board, Entry, Snapshot, make_snapshot
from leaderwatch.sources.identity import default_groups

GROUPS = default_groups()
SAMPLE = {"score": {"threshold": "80"}, "share": {"group": "china"},
          "rival": {"model": "deepseek-b", "rival": "openai-a"}}
"""What a kind needs beyond its defaults to make a rule."""


def test_the_registry_lists_every_kind_once_each_in_its_own_module() -> None:
    assert KINDS == ("overtake", "new_leader", "top_n", "gap", "score", "new_model", "rank_change",
                     "board_changed", "share", "rival")
    assert MODEL_KINDS == KINDS  # the name older code imports from alerts.models
    assert [type(k).__module__ for k in REGISTRY] == [f"leaderwatch.alerts.kinds.{k}" for k in KINDS]
    assert all(BY_NAME[k.name] is k for k in REGISTRY)
    with pytest.raises(RuleError, match=r"^unknown rule `bogus`; rules: overtake, new_leader, "):
        kind_named("bogus")


def test_titles_and_help_lines() -> None:
    assert KIND_TITLES == {
        "overtake": "Overtake", "new_leader": "New #1", "top_n": "Top N", "gap": "Gap",
        "score": "Score threshold", "new_model": "New model", "rank_change": "Rank change",
        "board_changed": "Board changed", "share": "Share of the top", "rival": "Rival"}
    assert title_of("retired_kind") == "retired_kind"
    assert all(len(KIND_HELP[k]) > 20 for k in KINDS)


@pytest.mark.parametrize("kind", REGISTRY, ids=KINDS)
def test_every_kind_has_typed_parameters_with_help(kind: Kind[Params]) -> None:
    assert dataclasses.is_dataclass(kind.params) and issubclass(kind.params, Params)
    assert kind.params.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert kind.params.__name__ == f"{type(kind).__name__}Params"
    for p in kind.parameters():
        assert p.help and not p.help.endswith("."), (kind.name, p.name)
        if p.default is not None:  # a default written back into a rule's name parses to itself
            assert p.parse(p.show(p.default)) == p.default
    rule = make_rule(kind.name, SAMPLE.get(kind.name, {}), list(GROUPS))
    assert isinstance(rule.params, kind.params) and rule.spec is kind
    for p in kind.parameters():
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(rule.params, p.name, p.default)


def test_each_kind_takes_the_common_parameters_that_mean_something_to_it() -> None:
    assert {k.name: k.common for k in REGISTRY} == {
        "overtake": ("confirm", "cooldown"), "new_leader": ("confirm", "cooldown"),
        "top_n": ("confirm", "cooldown"), "gap": ("confirm", "cooldown"), "score": ("confirm", "cooldown"),
        "new_model": (), "rank_change": ("cooldown",), "board_changed": (), "share": ("confirm", "cooldown"),
        "rival": ("confirm", "cooldown")}
    # A kind without them reports on one snapshot and never cools down.
    assert make_rule("new_model", {}).params.confirm == 1
    assert make_rule("new_model", {}).params.cooldown == timedelta(0)
    assert make_rule("rank_change", {"cooldown": "12h"}).params.cooldown == timedelta(hours=12)


@pytest.mark.parametrize("kind", REGISTRY, ids=KINDS)
def test_an_unknown_parameter_is_refused_with_the_parameters_allowed(kind: Kind[Params]) -> None:
    with pytest.raises(RuleError) as caught:
        make_rule(kind.name, {**SAMPLE.get(kind.name, {}), "colour": "red"})
    allowed = ", ".join(p.name for p in kind.parameters()) or "none"
    assert str(caught.value) == f"rule `{kind.name}` has no parameter `colour` (parameters: {allowed})"


@pytest.mark.parametrize(("kind", "key", "message"), [
    ("overtake", "confidence", "`??` is not one of any, clear"),
    ("new_leader", "confidence", "`??` is not one of any, clear"),
    ("top_n", "direction", "`??` is not one of enter, leave, both"),
    ("gap", "unit", "`??` is not one of points, percent"),
    ("gap", "direction", "`??` is not one of below, above, both"),
    ("score", "direction", "`??` is not one of above, below, both"),
    ("top_n", "top", "`??` is not a whole number"),
    ("rank_change", "cooldown", "`??` is not a duration; write a number and a unit: s, m, h, d or w, e.g. "
                                "90s, 30m, 1.5h, 2d, 2w"),
    ("score", "threshold", "`??` is not a number"),
    ("gap", "groups", "`??` must name two different groups, e.g. china,west"),
])
def test_a_bad_value_is_refused_naming_the_key_and_what_is_allowed(kind: str, key: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        make_rule(kind, {**SAMPLE.get(kind, {}), key: "??"})
    assert str(caught.value) == f"rule `{kind}` {key}=??: {message}"


def test_a_group_is_checked_against_the_configured_ones_where_a_parameter_names_groups() -> None:
    for kind in ("overtake", "gap"):
        with pytest.raises(RuleError, match=f"^rule `{kind}` groups: unknown group `mars` "):
            make_rule(kind, {"groups": "china,mars"}, list(GROUPS))
    for kind in ("new_leader", "top_n", "score", "new_model"):
        with pytest.raises(RuleError, match=f"^rule `{kind}` group: unknown group `mars` "):
            make_rule(kind, {**SAMPLE.get(kind, {}), "group": "mars"}, list(GROUPS))
    # A model or organization is no group: anything goes.
    assert make_rule("new_model", {"organization": "Mars"}, list(GROUPS)).name == (
        "new_model organization=Mars")


T0 = datetime(2025, 1, 1, tzinfo=UTC)
BOARD = Board("t/b", "T", "score")


def _snap(day: int, rows: list[tuple[str, str, float]]) -> Snapshot:
    entries = [Entry(n, n.lower(), s, i, n.split("-")[0], (c,))
               for i, (n, c, s) in enumerate(sorted(rows, key=lambda r: -r[2]), start=1)]
    return make_snapshot(BOARD, T0 + timedelta(days=day), T0 + timedelta(days=day), entries)


@pytest.mark.parametrize("kind", REGISTRY, ids=KINDS)
def test_every_kind_explains_itself(kind: Kind[Params]) -> None:
    rows = [("OpenAI-a", "US", 90.0), ("DeepSeek-b", "CN", 85.0), ("Mistral-c", "FR", 80.0)]
    prev, curr = _snap(0, rows), _snap(1, [("DeepSeek-b", "CN", 95.0), *rows[::2], ("Qwen-d", "CN", 70.0)])
    rule = make_rule(kind.name, SAMPLE.get(kind.name, {}), list(GROUPS))
    known = BoardState(frozenset({"openai-a", "deepseek-b", "mistral-c"}), 1)
    found = explain(rule, prev, curr, None, known, GROUPS, T0)
    assert found.reason and "\n" not in found.reason
