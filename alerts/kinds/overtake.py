"""`overtake`: the best model of one group now ranks above the best model of the other, both ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context, confidence_between
from leaderwatch.alerts.texts import num


@dataclass(frozen=True, slots=True)
class OvertakeParams(base.ConditionParams):
    """`overtake groups=china,west confidence=clear`."""

    groups: tuple[str, str] = base.param(("china", "west"), named=True, groups=True,
                                         help="the two groups whose best models race")
    confidence: Literal["any", "clear"] = base.param("any", help="`clear`: only when the CIs separate")


class Overtake(base.Kind[OvertakeParams], name="overtake", title="Overtake",
               help="the best model of one group now ranks above the best model of the other, both ways"):
    """Which of two groups' best models ranks higher; one subject, the pair (`china|west`)."""

    def observe(self, p: OvertakeParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The group whose best model leads, unless a group is absent or the two are tied."""
        a, b = p.groups
        best_a, best_b = ctx.best(a), ctx.best(b)
        if best_a is None or best_b is None or best_a.rank == best_b.rank:
            return {}  # a group absent, or a published tie: nothing is observed
        leader, other, lead = (best_a, best_b, a) if best_a.rank < best_b.rank else (best_b, best_a, b)
        conf = confidence_between(leader, other, ctx.has_ci)
        return {f"{a}|{b}": base.Observation(lead, leader, other, conf, (a, b))}

    def clear_only(self, p: OvertakeParams) -> bool:
        """`confidence=clear`: a statistically tied lead is reported once the intervals separate."""
        return p.confidence == "clear"

    def message(self, p: OvertakeParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`china model X now ranks above the best west model Y: #1 vs #2, 75.2 vs 72.9`."""
        e, o = obs.model, obs.rival
        return (f"{obs.value} model {ctx.describe(e)} now ranks above the best {before} model "
                f"{ctx.describe(o)}: #{e.rank} vs #{o.rank}, {num(e.score, '?')} vs {num(o.score, '?')}"
                f"{base.tie_note(obs.confidence)}")

    def reason(self, p: OvertakeParams, ctx: Context, trace: base.Trace) -> str:
        """`china leads: best china X #1 vs best west Y #2, after west led`, or what held it back."""
        a, b = p.groups
        if not trace.seen:
            return f"{base.missing_best(ctx, a, b)}, nothing to compare"
        seen = trace.seen[0]
        lead, leader, other = seen.observation.value, seen.observation.model, seen.observation.rival
        trail = b if lead == a else a
        text = (f"{lead} leads: best {lead} {leader.name} #{leader.rank} vs best {trail} {other.name} "
                f"#{other.rank}")
        return base.one_subject(seen, p, text, f", after {seen.before} led")
