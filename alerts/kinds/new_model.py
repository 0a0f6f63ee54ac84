"""`new_model`: a model never seen before on a board appears (once per model, ever)."""

from __future__ import annotations

from dataclasses import dataclass

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context
from leaderwatch.alerts.texts import num


@dataclass(frozen=True, slots=True)
class NewModelParams(base.Params):
    """`new_model top=10 group=china organization=DeepSeek`; no confirm, no cooldown: a model is new once."""

    top: int | None = base.param(None, help="only models that land in the top N")
    group: str | None = base.param(None, groups=True, help="only models of this group")
    organization: str | None = base.param(None, help="only models of this organization")


def _where(p: NewModelParams) -> str:
    return f"top {p.top}" if p.top else "board"


class NewModel(base.Kind[NewModelParams], name="new_model", title="New model", condition=False,
               help="a model never seen before on a board appears"):
    """An occurrence: a model key (and base) the board never listed, not a renamed one."""

    def observe(self, p: NewModelParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The new models that pass the rule's filters, best first."""
        group = ctx.group(p.group) if p.group else None
        org = p.organization.casefold() if p.organization else None
        found = (ctx.curr_by_key[key] for key in ctx.new_keys())
        return {e.model_key: base.Observation("new", e) for e in found
                if (p.top is None or e.rank <= p.top) and (group is None or group.contains(e))
                and (org is None or (e.organization or "").casefold() == org)}

    def message(self, p: NewModelParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`new model X entered the top 10 at #3 with 1434`."""
        e = obs.model
        return f"new model {ctx.describe(e)} entered the {_where(p)} at #{e.rank} with {num(e.score, '?')}"

    def reason(self, p: NewModelParams, ctx: Context, trace: base.Trace) -> str:
        """`new on the board: X #2`, or why none was (filters, models seen before)."""
        where = f"in the {_where(p)}" if p.top else "on the board"
        if trace.seen:
            return f"new {where}: " + base.listing([f"{e.name} #{e.rank}" for e in
                                                    (s.observation.model for s in trace.seen)])
        outside = len(ctx.new_keys())
        back = sum(1 for k in ctx.curr_by_key if k not in ctx.prev_by_key and k in ctx.board_state.seen)
        notes = [f"{outside} new model(s) outside the rule's filters"] if outside else []
        notes += [f"{back} model(s) back on the table were listed on this board before"] if back else []
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"no new model {where} since the previous snapshot{extra}"
