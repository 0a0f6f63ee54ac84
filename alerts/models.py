"""Rules, events and the per-rule state the engine carries from one snapshot to the next."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

KINDS = ("overtake", "new_leader", "top_n", "gap", "score", "new_model", "rank_change", "board_changed")
CONFIDENCES = ("clear", "tied", "n/a")


class RuleError(ValueError):
    """A rule definition is wrong; the message names the rule, the parameter and what is allowed."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: a kind and its parameters (defaults filled in), e.g. `overtake groups=china,west`.

    `params` holds every parameter of the kind, as parsed values; `name` shows the ones that differ
    from the kind's defaults, which identifies the rule in subscriptions and in its state.
    """

    kind: str
    params: tuple[tuple[str, Any], ...]
    name: str
    values: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if not self.values:
            object.__setattr__(self, "values", dict(self.params))

    def get(self, key: str) -> Any:
        """A parameter's value."""
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"rule {self.name} has no parameter {key}") from None


class Event(NamedTuple):
    """Something a user may want to be told about, with everything needed to say it.

    Immutable like the other domain objects, but a NamedTuple: the engine may build tens of
    thousands per snapshot (a thousand rules), and a tuple builds four times faster than a frozen
    dataclass (see bench/bench_rules.py).
    """

    kind: str
    board: str
    at: datetime
    rule: str
    subject: str
    model: str | None
    other: str | None
    groups: tuple[str, ...]
    rank_before: int | None
    rank_after: int | None
    score_before: float | None
    score_after: float | None
    confidence: str
    message: str
    dedupe_key: str

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (`replay --format jsonl`)."""
        return {
            "at": self.at.isoformat(), "kind": self.kind, "board": self.board, "rule": self.rule,
            "model": self.model, "other": self.other, "groups": list(self.groups),
            "rank_before": self.rank_before, "rank_after": self.rank_after,
            "score_before": self.score_before, "score_after": self.score_after,
            "confidence": self.confidence, "message": self.message, "dedupe_key": self.dedupe_key,
        }


def dedupe_key(kind: str, board: str, subject: str, value: str, at: datetime | str) -> str:
    """A stable key: the same event found twice (replay, restart) gets the same key."""
    when = at if isinstance(at, str) else at.isoformat()
    text = f"{kind}|{board}|{subject}|{value}|{when}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class RuleState:
    """What one rule remembers about one board (stored as data, compared with intervals).

    `confirmed` is the last confirmed value per subject (e.g. which group leads a pair);
    `streak` counts consecutive snapshots showing a different value (for `confirm=K`);
    `last_fired` is when each (subject, value) last fired (for the cooldown).
    """

    confirmed: Mapping[str, str] = field(default_factory=dict)
    streak: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    last_fired: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BoardState:
    """What the engine remembers about a board regardless of rules: every model key ever seen.

    `bases` are the keys without trailing settings ("claude-3.5-sonnet (diff)" -> claude-3-5-sonnet),
    so a new run of a known model under other settings is not a new model.
    """

    seen: frozenset[str] = frozenset()
    snapshots: int = 0
    bases: frozenset[str] = frozenset()
