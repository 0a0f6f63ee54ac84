"""Why a rule fired or stayed quiet on a board's last snapshot (pure), for `/leaderwatch why`.

`explain` re-runs the engine's own `evaluate_rule` for one rule on (previous snapshot, last snapshot),
from the rule's state as it was before the last snapshot, with the board state and the `now` the
engine had: what it fires is what the engine fired. The rule's kind then writes one line from the
engine's trace, naming what held a change back (confirmation, cooldown, direction, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.context import Context, Pairing
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError, RuleState
from leaderwatch.alerts.rules import evaluate_rule
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Group


@dataclass(frozen=True, slots=True)
class Explanation:
    """What one rule does with an update: the events it fires (decided by the engine) and why, in a line.

    `fresh`: the rule had no state, so the engine took the previous snapshot as its baseline.
    """

    events: tuple[Event, ...]
    reason: str
    fresh: bool = False

    @property
    def fired(self) -> bool:
        """True when the rule fires on this update."""
        return bool(self.events)


def explain(rule: Rule, prev: Snapshot | None, curr: Snapshot, state: RuleState | None,
            board_state: BoardState, groups: Mapping[str, Group], now: datetime,
            elsewhere: Mapping[str, tuple[Pairing, ...]] | None = None) -> Explanation:
    """`rule` on the update from `prev` to `curr`, judged by `evaluate_rule` from `state` (None: no state).

    `state`, `board_state` and `now` are what the engine had when it evaluated `curr`.
    """
    ctx = Context(prev, curr, groups, board_state, now, elsewhere or {})
    try:
        result = evaluate_rule(rule, ctx, state)
    except RuleError as exc:  # e.g. a group removed from the config since the rule was made
        return Explanation((), str(exc))
    reason = rule.bound.explain(ctx, result.trace)
    return Explanation(result.events, reason, result.trace.fresh)
