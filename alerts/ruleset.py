"""Rule definitions as data: `overtake groups=china,west` and TOML rule sets, parsed by the kinds."""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping, Sequence
from importlib import resources

from leaderwatch.alerts.kinds import kind_named
from leaderwatch.alerts.kinds.base import Param
from leaderwatch.alerts.models import Rule, RuleError


def params_of(kind: str) -> tuple[Param, ...]:
    """Every parameter a kind takes, its own first, then the common ones that apply to it."""
    return kind_named(kind).parameters()


def make_rule(kind: str, raw: Mapping[str, object], known_groups: Collection[str] | None = None) -> Rule:
    """A Rule from a kind and raw parameter values (strings, numbers or lists)."""
    return kind_named(kind.strip().lower()).make(raw, known_groups)


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


def rules_from_tables(tables: Sequence[object], where: str,
                      known_groups: Collection[str] | None = None) -> list[Rule]:
    """Rules from a list of tables, as found in TOML (`[[rule]]` or `[[rules]]`)."""
    if not isinstance(tables, list):
        raise RuleError(f"{where}: expected [[rule]] tables")
    rules: list[Rule] = []
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict) or "kind" not in table:
            raise RuleError(f"{where}: rule {i} needs kind = \"overtake\" (or another kind)")
        params = {str(k): v for k, v in table.items() if k != "kind"}
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
