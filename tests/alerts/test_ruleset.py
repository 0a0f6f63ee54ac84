"""Rule definitions: `overtake groups=china,west confidence=clear`, their defaults, errors and TOML sets."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from importlib import resources

import pytest

from leaderwatch.alerts.durations import format_duration
from leaderwatch.alerts.kinds import KIND_HELP, KINDS
from leaderwatch.alerts.kinds.new_leader import NewLeaderParams
from leaderwatch.alerts.kinds.new_model import NewModelParams
from leaderwatch.alerts.kinds.overtake import OvertakeParams
from leaderwatch.alerts.models import Rule, RuleError
from leaderwatch.alerts.ruleset import (
    make_rule,
    params_of,
    parse_rule,
    rules_from_tables,
    rules_from_toml,
)
from leaderwatch.sources.identity import default_groups

GROUPS = sorted(default_groups())


def values(rule: Rule) -> dict[str, object]:
    """A rule's typed parameters by name, in the order its name and `help RULE` list them."""
    return {p.name: getattr(rule.params, p.name) for p in params_of(rule.kind)}
DAY7 = timedelta(days=7)


@pytest.mark.parametrize(("text", "name", "params"), [
    ("overtake groups=china,west confidence=clear", "overtake groups=china,west confidence=clear",
     {"groups": ("china", "west"), "confidence": "clear", "confirm": 1, "cooldown": DAY7}),
    ("overtake", "overtake groups=china,west",
     {"groups": ("china", "west"), "confidence": "any", "confirm": 1, "cooldown": DAY7}),
    ("overtake groups=Open-Weights,PROPRIETARY", "overtake groups=open-weights,proprietary",
     {"groups": ("open-weights", "proprietary"), "confidence": "any", "confirm": 1, "cooldown": DAY7}),
    ("new_leader", "new_leader", {"group": None, "confidence": "any", "confirm": 1, "cooldown": DAY7}),
    ("new_leader group=China", "new_leader group=china",
     {"group": "china", "confidence": "any", "confirm": 1, "cooldown": DAY7}),
    ("top_n", "top_n top=10",
     {"top": 10, "group": None, "margin": 2, "direction": "both", "confirm": 1, "cooldown": DAY7}),
    ("top_n top=5 margin=1 direction=enter", "top_n top=5 margin=1 direction=enter",
     {"top": 5, "group": None, "margin": 1, "direction": "enter", "confirm": 1, "cooldown": DAY7}),
    ("gap", "gap groups=china,west threshold=10",
     {"groups": ("china", "west"), "threshold": 10.0, "unit": "points", "direction": "both",
      "confirm": 1, "cooldown": DAY7}),
    ("gap groups=europe,us threshold=2.5 unit=percent", "gap groups=europe,us threshold=2.5 unit=percent",
     {"groups": ("europe", "us"), "threshold": 2.5, "unit": "percent", "direction": "both",
      "confirm": 1, "cooldown": DAY7}),
    ("score threshold=1400", "score threshold=1400",
     {"threshold": 1400.0, "model": None, "group": None, "direction": "above", "confirm": 1,
      "cooldown": DAY7}),
    ("score threshold=80 model=GPT-4o direction=both", "score threshold=80 model=GPT-4o direction=both",
     {"threshold": 80.0, "model": "GPT-4o", "group": None, "direction": "both", "confirm": 1,
      "cooldown": DAY7}),
    ("new_model", "new_model",
     {"top": None, "group": None, "organization": None}),
    ("new_model top=10 organization=DeepSeek", "new_model top=10 organization=DeepSeek",
     {"top": 10, "group": None, "organization": "DeepSeek"}),
    ("rank_change", "rank_change by=5", {"by": 5, "top": None, "cooldown": DAY7}),
    ("rank_change by=3 top=20 cooldown=12h", "rank_change by=3 top=20 cooldown=12h",
     {"by": 3, "top": 20, "cooldown": timedelta(hours=12)}),
    ("board_changed", "board_changed", {}),
])
def test_parse_fills_defaults_and_names_the_rule(text: str, name: str, params: dict[str, object]) -> None:
    rule = parse_rule(text, GROUPS)
    assert rule.kind == text.split()[0]
    assert rule.name == name
    assert values(rule) == params
    assert list(values(rule)) == list(params)  # the kind's own parameters, then the common ones


@pytest.mark.parametrize("variants", [
    ["overtake", "overtake groups=china,west", "OVERTAKE  confidence=any", "overtake cooldown=168h",
     "overtake groups=China,West confirm=1", "overtake cooldown=7d confidence=any"],
    ["top_n top=5", "top_n margin=2 top=5", "top_n top=5 direction=both group=any"],
    ["score threshold=80", "score threshold=80.0 direction=above", "score model=none threshold=8e1"],
])
def test_name_is_stable_across_spellings(variants: list[str]) -> None:
    """The name identifies the rule in subscriptions and state: defaults and order do not change it."""
    rules = [parse_rule(v, GROUPS) for v in variants]
    assert len({r.name for r in rules}) == 1
    assert len({r.params for r in rules}) == 1
    assert parse_rule(rules[0].name, GROUPS) == rules[0]  # the name parses back to the same rule


def test_parse_and_make_agree() -> None:
    made = make_rule("overtake", {"groups": ["china", "west"], "confidence": "clear", "confirm": 2})
    assert made == parse_rule("overtake groups=china,west confidence=clear confirm=2")
    assert made.params == OvertakeParams(("china", "west"), "clear", confirm=2)


def test_every_kind_has_help_and_parses_with_defaults() -> None:
    assert set(KIND_HELP) == set(KINDS)
    for kind in KINDS:
        text = {"score": "score threshold=1", "share": "share group=china",
                "rival": "rival model=a rival=b"}.get(kind, kind)
        rule = parse_rule(text, GROUPS)
        assert rule.kind == kind and set(values(rule)) == set(dataclasses.asdict(rule.params))


@pytest.mark.parametrize(("text", "message"), [
    ("bogus", "unknown rule `bogus`; rules: overtake, new_leader, top_n, gap, score, new_model, "
              "rank_change, board_changed, share, rival"),
    ("overtake foo=1", "rule `overtake` has no parameter `foo` (parameters: groups, confidence, confirm, "
                       "cooldown)"),
    ("board_changed top=3", "rule `board_changed` has no parameter `top` (parameters: none)"),
    # Parameters that would do nothing are refused: a new model fires once, a move needs no streak.
    ("new_model cooldown=1d", "rule `new_model` has no parameter `cooldown` (parameters: top, group, "
                              "organization)"),
    ("rank_change confirm=2", "rule `rank_change` has no parameter `confirm` (parameters: by, top, "
                              "cooldown)"),
    ("top_n top=x", "rule `top_n` top=x: `x` is not a whole number"),
    ("top_n top=0", "rule `top_n` top=0: 0 is too small (at least 1)"),
    ("top_n margin=-1", "rule `top_n` margin=-1: -1 is too small (at least 0)"),
    ("overtake confirm=0", "rule `overtake` confirm=0: 0 is too small (at least 1)"),
    ("overtake confidence=maybe", "rule `overtake` confidence=maybe: `maybe` is not one of any, clear"),
    ("top_n direction=up", "rule `top_n` direction=up: `up` is not one of enter, leave, both"),
    ("gap threshold=nan", "rule `gap` threshold=nan: `nan` is not a number"),
    ("gap threshold=ten", "rule `gap` threshold=ten: `ten` is not a number"),
    ("overtake cooldown=soon", "rule `overtake` cooldown=soon: `soon` is not a duration; write a number and "
                               "a unit: s, m, h, d or w, e.g. 90s, 30m, 1.5h, 2d, 2w"),
    ("overtake cooldown=-1d", "rule `overtake` cooldown=-1d: `-1d` is not a duration; write a number and a "
                              "unit: s, m, h, d or w, e.g. 90s, 30m, 1.5h, 2d, 2w"),
    ("overtake cooldown=3600", "rule `overtake` cooldown=3600: `3600` is not a duration; write a number and "
                               "a unit: s, m, h, d or w, e.g. 90s, 30m, 1.5h, 2d, 2w"),
    ("overtake groups=china", "rule `overtake` groups=china: `china` must name two different groups, "
                              "e.g. china,west"),
    ("overtake groups=china,china", "rule `overtake` groups=china,china: `china,china` must name two "
                                    "different groups, e.g. china,west"),
    ("overtake groups=china,mars", "rule `overtake` groups: unknown group `mars` (groups: china, europe, "
                                   "open-weights, proprietary, us, west)"),
    ("new_leader group=mars", "rule `new_leader` group: unknown group `mars` (groups: china, europe, "
                              "open-weights, proprietary, us, west)"),
    ("score", "rule `score` needs threshold=VALUE"),
    ("score direction=below", "rule `score` needs threshold=VALUE"),
    ("overtake top", "`top` should be KEY=VALUE, e.g. top=5"),
    ("", "an empty rule; e.g. `overtake groups=china,west`"),
    ("   ", "an empty rule; e.g. `overtake groups=china,west`"),
])
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text, GROUPS)
    assert str(caught.value) == message


def test_groups_are_checked_only_when_known() -> None:
    assert parse_rule("overtake groups=china,mars").params == OvertakeParams(("china", "mars"))
    assert parse_rule("new_leader group=mars").params == NewLeaderParams("mars")


@pytest.mark.parametrize(("text", "value", "back"), [
    ("0", timedelta(0), "0"), ("90s", timedelta(seconds=90), "90s"), ("30m", timedelta(minutes=30), "30m"),
    ("12h", timedelta(hours=12), "12h"), ("7d", DAY7, "1w"), ("2w", timedelta(days=14), "2w"),
    ("36h", timedelta(hours=36), "36h"), ("1.5d", timedelta(hours=36), "36h"), ("0s", timedelta(0), "0"),
])
def test_a_cooldown_takes_the_one_duration_grammar_and_reads_back_shortest(text: str, value: timedelta,
                                                                           back: str) -> None:
    assert parse_rule(f"overtake cooldown={text}").params.cooldown == value
    assert format_duration(value) == back
    assert parse_rule(f"overtake cooldown={text}").name.endswith("overtake groups=china,west" if value == DAY7
                                                                 else f"cooldown={back}")


def test_a_cooldown_in_a_name_is_shortest() -> None:
    assert parse_rule("overtake cooldown=2w").name == "overtake groups=china,west cooldown=2w"
    assert parse_rule("overtake cooldown=0").name == "overtake groups=china,west cooldown=0"


def test_shipped_default_rules() -> None:
    text = resources.files("leaderwatch.alerts").joinpath("default_rules.toml").read_text(encoding="utf-8")
    rules = rules_from_toml(text, "default rules", GROUPS)
    assert [r.name for r in rules] == ["overtake groups=china,west", "new_leader", "new_model top=10"]
    overtake, leader, new_model = rules
    assert overtake.params == OvertakeParams(("china", "west"), "any")
    assert leader.params == NewLeaderParams(group=None)
    assert new_model.params == NewModelParams(top=10, group=None)


def test_toml_rules_take_lists_numbers_and_strings() -> None:
    text = """
[[rule]]
kind = "gap"
groups = ["europe", "us"]
threshold = 2.5
unit = "percent"

[[rule]]
kind = "top_n"
top = 5
group = "china"
cooldown = "1d"
"""
    rules = rules_from_toml(text, "my.toml", GROUPS)
    assert [r.name for r in rules] == ["gap groups=europe,us threshold=2.5 unit=percent",
                                       "top_n top=5 group=china cooldown=1d"]


@pytest.mark.parametrize(("text", "message"), [
    ("x = [", "my.toml: not valid TOML: "),
    ("", "my.toml: no [[rule]] table"),
    ("rule = 3", "my.toml: expected [[rule]] tables"),
    ('[[rule]]\nthreshold = 3', 'my.toml: rule 1 needs kind = "overtake" (or another kind)'),
    ('[[rule]]\nkind = "new_leader"\n[[rule]]\nkind = "score"',
     "my.toml: rule 2: rule `score` needs threshold=VALUE"),
    ('[[rule]]\nkind = "overtake"\n[[rule]]\nkind = "overtake"\ngroups = ["china", "west"]',
     "my.toml: rule 2 repeats `overtake groups=china,west`"),
    ('[[rule]]\nkind = "overtake"\ngroups = ["china", "atlantis"]',
     "my.toml: rule 1: rule `overtake` groups: unknown group `atlantis` (groups: china, europe, "
     "open-weights, proprietary, us, west)"),
    ('[[rule]]\nkind = "top_n"\ntop = "many"', "my.toml: rule 1: rule `top_n` top=many: `many` is not a "
                                               "whole number"),
])
def test_toml_errors_name_the_file_and_the_rule(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        rules_from_toml(text, "my.toml", GROUPS)
    assert str(caught.value).startswith(message)
    if not message.endswith(": "):
        assert str(caught.value) == message


def test_rules_from_config_tables() -> None:
    rules = rules_from_tables([{"kind": "new_model", "group": "china"}], "config [[rules]]", GROUPS)
    assert [r.name for r in rules] == ["new_model group=china"]
    with pytest.raises(RuleError, match=r"^config \[\[rules\]\]: expected \[\[rule\]\] tables$"):
        rules_from_tables({"kind": "new_model"}, "config [[rules]]", GROUPS)  # type: ignore[arg-type]
