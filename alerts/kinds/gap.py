"""`gap`: the gap between two groups' best scores falls below or rises above a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context
from leaderwatch.alerts.texts import num
from leaderwatch.sources.base import Entry


@dataclass(frozen=True, slots=True)
class GapParams(base.ConditionParams):
    """`gap groups=europe,us threshold=2.5 unit=percent direction=below`."""

    groups: tuple[str, str] = base.param(("china", "west"), named=True, groups=True,
                                         help="the two groups whose best scores are compared")
    threshold: float = base.param(10.0, named=True, help="the gap that matters")
    unit: Literal["points", "percent"] = base.param(
        "points", help="the gap in score points, or in percent of the larger score")
    direction: Literal["below", "above", "both"] = base.param(
        "both", help="report the gap falling below the threshold, rising above it, or both")


def gap_of(p: GapParams, ctx: Context, previous: bool = False) -> tuple[float, Entry, Entry] | None:
    """The gap between the two groups' best models (in the previous table), and those models."""
    a, b = p.groups
    best_a, best_b = ctx.best(a, previous), ctx.best(b, previous)
    if best_a is None or best_b is None:
        return None
    gap = abs(best_a.score - best_b.score)
    if p.unit == "percent":
        gap = 100 * gap / (max(abs(best_a.score), abs(best_b.score)) or 1.0)
    return gap, best_a, best_b


class Gap(base.Kind[GapParams], name="gap", title="Gap",
          help="the gap between two groups' best scores falls below or rises above a threshold"):
    """Which side of the threshold the gap is on (`below` or `above`); one subject, the pair."""

    def observe(self, p: GapParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The side of the threshold, unless a group has no model on the board."""
        found = gap_of(p, ctx)
        if found is None:
            return {}
        gap, best_a, best_b = found
        a, b = p.groups
        value = "below" if gap < p.threshold else "above"
        return {f"{a}|{b}": base.Observation(value, best_a, best_b, "n/a", (a, b))}

    def reportable(self, p: GapParams, before: str, obs: base.Observation, ctx: Context) -> bool:
        """Falling below, rising above, or both, as `direction` says."""
        return p.direction == "both" or obs.value == p.direction

    def message(self, p: GapParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`the gap between the best china model X (80) and the best west model Y (85) fell below 10 points:
        5.0 points`."""
        e, o = obs.model, obs.rival
        found = gap_of(p, ctx)
        unit = "%" if p.unit == "percent" else " points"
        gap = f"{found[0]:.1f}{unit}" if found else "?"
        a, b = p.groups
        word = "fell below" if obs.value == "below" else "rose above"
        return (f"the gap between the best {a} model {ctx.describe(e)} ({num(e.score, '?')}) and the best "
                f"{b} model {ctx.describe(o)} ({num(o.score, '?')}) {word} {num(p.threshold, '?')}{unit}: "
                f"{gap}")

    def meaning(self, p: GapParams) -> str:
        """Crossing 5 and 10 points, or 5 points and 5%, are different outcomes."""
        return f"|threshold={p.threshold}|unit={p.unit}"

    def reason(self, p: GapParams, ctx: Context, trace: base.Trace) -> str:
        """`the gap between ... is 6.0 points, above the threshold 5.5 points, after 5.0 points in the
        previous snapshot`, or what held the change back."""
        a, b = p.groups
        found = gap_of(p, ctx)
        if found is None or not trace.seen:
            return f"{base.missing_best(ctx, a, b)}, no gap to measure"
        gap, best_a, best_b = found
        seen = trace.seen[0]
        unit = "%" if p.unit == "percent" else " points"
        text = (f"the gap between the best {a} {best_a.name} ({num(best_a.score, '?')}) and the best {b} "
                f"{best_b.name} ({num(best_b.score, '?')}) is {gap:.1f}{unit}, {seen.observation.value} "
                f"the threshold {num(p.threshold, '?')}{unit}")
        previous = gap_of(p, ctx, previous=True)
        if previous and ("below" if previous[0] < p.threshold else "above") == seen.before:
            after = f", after {previous[0]:.1f}{unit} in the previous snapshot"
        else:  # the side last confirmed is older than the previous snapshot (confirm=K)
            after = f", after being {seen.before} it"
        return base.one_subject(seen, p, text, after, f" (the rule reports only direction={p.direction})")
