"""Rule definitions as data: each kind's parameters, `overtake groups=china,west`, TOML rule sets."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

from leaderwatch.alerts.models import KINDS, Rule, RuleError


def parse_duration(text: str) -> timedelta:
    """`0`, `90s`, `30m`, `12h`, `7d` or `2w` as a timedelta."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        raise RuleError(f"`{text}` is not a duration; use e.g. 30m, 12h, 7d") from None
    if seconds < 0 or seconds != seconds or seconds > 10 * 365 * 86400:
        raise RuleError(f"`{text}` is not a duration; use e.g. 30m, 12h, 7d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest way to write a duration back (`7d`, `12h`, `0`)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a rule kind: how to parse it, its default, and whether the name shows it."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    show: Callable[[Any], str]
    always_named: bool = False
    help: str = ""


def _int(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise RuleError(f"`{text}` is not a whole number") from None
        if value < low:
            raise RuleError(f"{value} is too small (at least {low})")
        return value
    return parse


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RuleError(f"`{text}` is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RuleError(f"`{text}` is not a number")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise RuleError(f"`{text}` is not one of {', '.join(choices)}")
        return value
    return parse


def _pair(text: str) -> tuple[str, str]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if len(names) != 2 or names[0] == names[1]:
        raise RuleError(f"`{text}` must name two different groups, e.g. china,west")
    return (names[0], names[1])


def _name(text: str) -> str:
    value = text.strip()
    if not value:
        raise RuleError("an empty value")
    return value


def _group(text: str) -> str:
    # Group names are case-insensitive, as in `groups=China,West`.
    return _name(text).lower()


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def wrapped(text: str) -> Any:
        return None if text.strip().lower() in ("", "any", "none", "0") else parse(text)
    return wrapped


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _p(name: str, parse: Callable[[str], Any], default: Any, always: bool = False, help: str = "") -> Param:
    return Param(name, parse, default, _show, always, help)


COMMON = (
    _p("confirm", _int(1), 1, help="the condition must hold in this many consecutive snapshots"),
    _p("cooldown", parse_duration, timedelta(days=7),
       help="after firing, the same subject and outcome stays quiet this long"),
)

KIND_PARAMS: dict[str, tuple[Param, ...]] = {
    "overtake": (
        _p("groups", _pair, ("china", "west"), always=True, help="the two groups whose best models race"),
        _p("confidence", _choice("any", "clear"), "any", help="`clear`: only when the CIs separate"),
    ),
    "new_leader": (
        _p("group", _optional(_group), None, help="only when the new #1 belongs to this group"),
        _p("confidence", _choice("any", "clear"), "any", help="`clear`: only when the CIs separate"),
    ),
    "top_n": (
        _p("top", _int(1), 10, always=True, help="N of the top N"),
        _p("group", _optional(_group), None, help="only models of this group"),
        _p("margin", _int(0), 2, help="leaving needs a rank past N + margin"),
        _p("direction", _choice("enter", "leave", "both"), "both"),
    ),
    "gap": (
        _p("groups", _pair, ("china", "west"), always=True),
        _p("threshold", _float, 10.0, always=True, help="the gap that matters"),
        _p("unit", _choice("points", "percent"), "points"),
        _p("direction", _choice("below", "above", "both"), "both"),
    ),
    "score": (
        _p("threshold", _float, None, always=True, help="the score to cross"),
        _p("model", _optional(_name), None, help="only this model (canonical key or name)"),
        _p("group", _optional(_group), None, help="only models of this group"),
        _p("direction", _choice("above", "below", "both"), "above"),
    ),
    "new_model": (
        _p("top", _optional(_int(1)), None, help="only models that land in the top N"),
        _p("group", _optional(_group), None, help="only models of this group"),
        _p("organization", _optional(_name), None, help="only models of this organization"),
    ),
    "rank_change": (
        _p("by", _int(1), 5, always=True, help="move at least this many ranks"),
        _p("top", _optional(_int(1)), None, help="only moves into or within the top N"),
    ),
    "board_changed": (),
}

KIND_HELP = {
    "overtake": "the best model of one group now ranks above the best model of the other, both ways",
    "new_leader": "a board's #1 changes (a published tie for #1 is a shared lead)",
    "top_n": "a model enters or leaves the top N",
    "gap": "the gap between two groups' best scores falls below or rises above a threshold",
    "score": "a model's score crosses a threshold",
    "new_model": "a model never seen before on a board appears",
    "rank_change": "a model moves by at least K ranks",
    "board_changed": "a board changes method (scoring system, recording); per-model alerts pause",
}


# Which common parameters mean something to a kind: `new_model` fires once per model ever and
# `board_changed` once per method change, so neither confirms nor cools down; `rank_change` reports
# single moves (nothing to confirm) but does cool down. A parameter that would do nothing is refused.
_COMMON_OF = {"new_model": (), "board_changed": (), "rank_change": ("cooldown",)}


def params_of(kind: str) -> tuple[Param, ...]:
    """Every parameter a kind takes, its own first, then the common ones that apply to it."""
    if kind not in KIND_PARAMS:
        raise RuleError(f"unknown rule `{kind}`; rules: {', '.join(KINDS)}")
    common = _COMMON_OF.get(kind)
    return KIND_PARAMS[kind] + tuple(p for p in COMMON if common is None or p.name in common)


def make_rule(kind: str, raw: Mapping[str, Any], known_groups: Collection[str] | None = None) -> Rule:
    """A Rule from a kind and raw parameter values (strings, numbers or lists)."""
    kind = kind.strip().lower()
    specs = {p.name: p for p in params_of(kind)}
    values: dict[str, Any] = {p.name: p.default for p in specs.values()}
    for key, raw_value in raw.items():
        if key not in specs:
            allowed = ", ".join(specs) or "none"
            raise RuleError(f"rule `{kind}` has no parameter `{key}` (parameters: {allowed})")
        text = ",".join(map(str, raw_value)) if isinstance(raw_value, list | tuple) else str(raw_value)
        try:
            values[key] = specs[key].parse(text)
        except RuleError as exc:
            raise RuleError(f"rule `{kind}` {key}={text}: {exc}") from None
    missing = [k for k, v in values.items() if v is None and specs[k].always_named]
    if missing:
        raise RuleError(f"rule `{kind}` needs {missing[0]}=VALUE")
    if known_groups is not None:
        for key in ("groups", "group"):
            names = values.get(key)
            for g in (names if isinstance(names, tuple) else (names,) if names else ()):
                if g not in known_groups:
                    raise RuleError(f"rule `{kind}` {key}: unknown group `{g}` "
                                    f"(groups: {', '.join(sorted(known_groups))})")
    shown = [f"{p.name}={p.show(values[p.name])}" for p in specs.values()
             if p.always_named or values[p.name] != p.default]
    name = " ".join([kind, *shown])
    return Rule(kind, tuple((p.name, values[p.name]) for p in specs.values()), name)


def parse_rule(text: str, known_groups: Collection[str] | None = None) -> Rule:
    """`overtake groups=china,west confidence=clear` -> Rule."""
    words = text.split()
    if not words:
        raise RuleError("an empty rule; e.g. `overtake groups=china,west`")
    raw: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise RuleError(f"`{word}` should be KEY=VALUE, e.g. top=5")
        raw[key.strip().lower()] = value
    return make_rule(words[0], raw, known_groups)


def rules_from_toml(text: str, where: str, known_groups: Collection[str] | None = None) -> list[Rule]:
    """The `[[rule]]` tables of a TOML text (each: `kind = "..."` plus parameters)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{where}: not valid TOML: {exc}") from None
    return rules_from_tables(data.get("rule", []), where, known_groups)


def rules_from_tables(tables: Sequence[Any], where: str,
                      known_groups: Collection[str] | None = None) -> list[Rule]:
    """Rules from a list of tables, as found in TOML (`[[rule]]` or `[[rules]]`)."""
    if not isinstance(tables, list):
        raise RuleError(f"{where}: expected [[rule]] tables")
    rules: list[Rule] = []
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict) or "kind" not in table:
            raise RuleError(f"{where}: rule {i} needs kind = \"overtake\" (or another kind)")
        params = {k: v for k, v in table.items() if k != "kind"}
        try:
            rule = make_rule(str(table["kind"]), params, known_groups)
        except RuleError as exc:
            raise RuleError(f"{where}: rule {i}: {exc}") from None
        if any(r.name == rule.name for r in rules):
            raise RuleError(f"{where}: rule {i} repeats `{rule.name}`")
        rules.append(rule)
    if not rules:
        raise RuleError(f"{where}: no [[rule]] table")
    return rules


def default_rules(known_groups: Collection[str] | None = None) -> list[Rule]:
    """The rule set shipped with the package (`alerts/default_rules.toml`, package data, read-only)."""
    text = resources.files("leaderwatch.alerts").joinpath("default_rules.toml").read_text(encoding="utf-8")
    return rules_from_toml(text, "default rules", known_groups)
