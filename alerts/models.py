"""Rules, events and the per-rule state the engine carries from one snapshot to the next."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from leaderwatch.alerts.kinds.base import AnyKind, Bound, Params

CONFIDENCES = ("clear", "tied", "n/a")


class RuleError(ValueError):
    """A rule definition is wrong; the message names the rule, the parameter and what is allowed."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: a kind and its typed parameters (defaults filled in), e.g. `overtake groups=china,west`.

    `spec` is the kind (`kinds.base.Kind`), `params` an instance of its parameters dataclass; `name`
    shows the parameters that differ from the kind's defaults, which identifies the rule in
    subscriptions and in its state. Rules are made by their kind (`Kind.make`).
    """

    spec: AnyKind
    params: Params
    name: str
    bound: Bound = field(compare=False, repr=False)
    """The kind's methods with these parameters filled in: what the engine calls."""

    @property
    def kind(self) -> str:
        """The kind's name (`overtake`), as events and subscriptions spell it."""
        return self.spec.name


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
    value: str = ""
    """The outcome the rule saw for the subject (`china` leads, `in` the top N, `below`): with the
    subject, what tells a reversal (another value) from a confirmation (the same) in a story."""

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


if TYPE_CHECKING:
    KINDS: tuple[str, ...]
    """The names of the registered kinds, in the registry's order (`kinds.KINDS`)."""
else:
    def __getattr__(name: str) -> object:
        """`KINDS`, read from the registry when first asked for: the kinds import this module."""
        if name == "KINDS":
            from leaderwatch.alerts.kinds import KINDS

            return KINDS
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
