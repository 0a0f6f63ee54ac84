"""`top_n`: a model enters or leaves the top N (leaving needs a rank past N + margin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context


@dataclass(frozen=True, slots=True)
class TopNParams(base.ConditionParams):
    """`top_n top=5 group=china margin=1 direction=enter`."""

    top: int = base.param(10, named=True, help="N of the top N")
    group: str | None = base.param(None, groups=True, help="only models of this group")
    margin: int = base.param(2, minimum=0, help="leaving needs a rank past N + margin")
    direction: Literal["enter", "leave", "both"] = base.param(
        "both", help="report models entering the top N, leaving it, or both")


class TopN(base.Kind[TopNParams], name="top_n", title="Top N", help="a model enters or leaves the top N",
           default="out", baseline_forgets=True):
    """Whether each model is in the top N (`in`) or not (`out`, the default)."""

    def observe(self, p: TopNParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """Every model down to N + margin, and every model confirmed in that is now further down or gone."""
        n, margin = p.top, p.margin
        group = ctx.group(p.group) if p.group else None
        out: dict[str, base.Observation] = {}
        for e in ctx.curr.entries:
            if e.rank > n + margin:
                break
            if e.model_key in out or (group and not group.contains(e)):
                continue
            was_in = memory.confirmed.get(e.model_key) == "in"
            inside = e.rank <= (n + margin if was_in else n)
            out[e.model_key] = base.Observation("in" if inside else "out", e)
        for key, value in memory.confirmed.items():
            if value != "in" or key in out:
                continue
            listed = ctx.curr_by_key.get(key)
            if listed is not None:
                out[key] = base.Observation("out", listed)  # listed, past N + margin
            elif ctx.absent_value_known(n + margin):
                gone = ctx.prev_by_key.get(key)
                out[key] = base.Observation("out", gone)
        return out

    def reportable(self, p: TopNParams, before: str, obs: base.Observation, ctx: Context) -> bool:
        """Entering, leaving, or both, as `direction` says."""
        return p.direction == "both" or (obs.value == "in") == (p.direction == "enter")

    def message(self, p: TopNParams, ctx: Context, obs: base.Observation, before: str | None) -> str | None:
        """`X entered the top 5 at #1, new on the board` or `X left the top 5 (now #9)`."""
        if obs.entry is None:  # gone from a truncated table and from the previous one: nobody to name
            return None
        e, prev = obs.entry, ctx.prev_by_key.get(obs.entry.model_key)
        if obs.value == "in":
            was = f", was #{prev.rank}" if prev else ", new on the board"
            return f"{ctx.describe(e)} entered the top {p.top} at #{e.rank}{was}"
        now = f"now #{e.rank}" if e.model_key in ctx.curr_by_key else "no longer listed"
        return f"{ctx.describe(e)} left the top {p.top} ({now})"

    def meaning(self, p: TopNParams) -> str:
        """Entering the top 5 and the top 10 are two outcomes."""
        return f"|top={p.top}"

    def reason(self, p: TopNParams, ctx: Context, trace: base.Trace) -> str:
        """`entered the top 2: X #2; left the top 2: Y (now #3)`, then what was held back."""
        what = f"the {p.group} models in the top {p.top}" if p.group else f"the top {p.top}"

        def where(s: base.Seen) -> str:
            e = s.observation.entry
            if e is None:
                return s.subject
            if s.observation.value == "in":
                return f"{e.name} #{e.rank}"
            return f"{e.name} ({f'now #{e.rank}' if e.model_key in ctx.curr_by_key else 'no longer listed'})"

        def say(s: base.Seen) -> str:
            return f"{where(s)} {'entering' if s.observation.value == 'in' else 'leaving'}"

        fired = trace.having(base.Outcome.FIRED)
        clauses = [f"{word} {what}: {base.listing([where(s) for s in fired if s.observation.value == value])}"
                   for word, value in (("entered", "in"), ("left", "out"))
                   if any(s.observation.value == value for s in fired)]
        clauses += base.held_clauses(trace, p, say, f"direction={p.direction}")
        return "; ".join(clauses) or f"no model entered {what} or fell past #{p.top + p.margin}"
