"""`new_leader`: a board's #1 changes (a published tie for #1 is a shared lead)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context, confidence_between, leaders
from leaderwatch.alerts.texts import num


@dataclass(frozen=True, slots=True)
class NewLeaderParams(base.ConditionParams):
    """`new_leader group=china confidence=clear`."""

    group: str | None = base.param(None, groups=True, help="only when the new #1 belongs to this group")
    confidence: Literal["any", "clear"] = base.param("any", help="`clear`: only when the CIs separate")


def _names(ctx: Context, keys: str | None) -> str:
    """The leaders a value names (model keys joined by commas), as the board names them."""
    if not keys:
        return "nobody"
    found = (ctx.curr_by_key.get(k) or ctx.prev_by_key.get(k) for k in keys.split(","))
    return ", ".join(e.name if e else k for e, k in zip(found, keys.split(","), strict=True))


class NewLeader(base.Kind[NewLeaderParams], name="new_leader", title="New #1",
                help="a board's #1 changes (a published tie for #1 is a shared lead)"):
    """Who holds #1; one subject, `leader`, whose value is the leaders' keys."""

    def observe(self, p: NewLeaderParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The leaders' keys, with the first new leader and the one it replaced."""
        now = leaders(ctx.curr.entries)
        if not now:
            return {}
        keys = sorted({e.model_key for e in now})
        old = leaders(ctx.prev_entries)
        confirmed = memory.confirmed.get("leader")
        if confirmed:  # with confirm=K or confidence=clear, the leader last reported may be older than prev
            known = [ctx.curr_by_key.get(k) or ctx.prev_by_key.get(k) for k in confirmed.split(",")]
            old = [e for e in known if e is not None] or old
        new = [e for e in now if e.model_key not in {o.model_key for o in old}]
        conf = "tied" if len(keys) > 1 else "n/a"
        if len(keys) == 1 and old:
            rival = ctx.curr_by_key.get(old[0].model_key)
            if rival is not None and rival.model_key != now[0].model_key:
                conf = confidence_between(now[0], rival, ctx.has_ci)
            elif ctx.has_ci and len(ctx.curr.entries) > 1:
                conf = confidence_between(now[0], ctx.curr.entries[1], True)
        first = new[0] if new else now[0]
        other = next((ctx.curr_by_key.get(o.model_key) or o for o in old if o.model_key != first.model_key),
                     None)
        return {"leader": base.Observation(",".join(keys), first, other, conf, ctx.groups_of(first))}

    def clear_only(self, p: NewLeaderParams) -> bool:
        """`confidence=clear`: a statistically tied lead is reported once the intervals separate."""
        return p.confidence == "clear"

    def reportable(self, p: NewLeaderParams, before: str, obs: base.Observation, ctx: Context) -> bool:
        """A new model at #1 (of the rule's group, if it has one); not a co-leader falling back."""
        new = set(obs.value.split(",")) - set(before.split(","))
        if not new:
            return False  # a co-leader fell back: the remaining leader led already
        return p.group is None or any(p.group in ctx.groups_of(ctx.curr_by_key[k])
                                      for k in new if k in ctx.curr_by_key)

    def message(self, p: NewLeaderParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`new #1: X with 75.2, taking it from Y`, or `X now shares #1 (X, Y), score 1470`."""
        e, o = obs.model, obs.other
        if "," in obs.value:
            # The leaders as the board names them (the value holds their keys).
            shared = ", ".join(ctx.curr_by_key[k].name if k in ctx.curr_by_key else k
                               for k in obs.value.split(","))
            return f"{ctx.describe(e)} now shares #1 ({shared}), score {num(e.score, '?')}"
        was = f", taking it from {ctx.describe(o)}" if o else ""
        return f"new #1: {ctx.describe(e)} with {num(e.score, '?')}{was}{base.tie_note(obs.confidence)}"

    def reason(self, p: NewLeaderParams, ctx: Context, trace: base.Trace) -> str:
        """`#1 changed: X (95) after Y`, or what held it back."""
        if not trace.seen:
            return "the board is empty"
        seen = trace.seen[0]
        now = f"{_names(ctx, seen.observation.value)} ({num(ctx.curr.entries[0].score, '?')})"
        if seen.outcome is base.Outcome.UNCHANGED:
            return f"#1 is {now}, as before"
        changed = f"#1 changed: {now} after {_names(ctx, seen.before)}"
        if seen.outcome is base.Outcome.FIRED:
            return changed
        if seen.outcome is base.Outcome.NOT_REPORTED:
            if not set(seen.observation.value.split(",")) - set((seen.before or "").split(",")):
                return f"{changed}: a co-leader fell back, and the remaining #1 led already"
            return f"{changed}, which is no {p.group} model"
        if seen.outcome is base.Outcome.COOLDOWN:
            return f"{changed}; {base.held(seen, p)}"
        return f"#1 is {now}; {base.held(seen, p)}"
