"""`rank_change`: a model moves by at least K ranks among the models listed in both updates."""

from __future__ import annotations

from dataclasses import dataclass

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context
from leaderwatch.sources.base import Entry


@dataclass(frozen=True, slots=True)
class RankChangeParams(base.CooldownParams):
    """`rank_change by=3 top=20 cooldown=12h`; one move is enough, so no confirm."""

    by: int = base.param(5, named=True, help="move at least this many ranks")
    top: int | None = base.param(None, help="only moves into or within the top N")


def _move(move: tuple[int, Entry, Entry]) -> str:
    """`X up 4 (#5 -> #1)`."""
    moved, before, after = move
    return f"{after.name} {'up' if moved > 0 else 'down'} {abs(moved)} (#{before.rank} -> #{after.rank})"


class RankChange(base.Kind[RankChangeParams], name="rank_change", title="Rank change", condition=False,
                 help="a model moves by at least K ranks"):
    """An occurrence: a model's move (`up` or `down`), cooled down per model and direction."""

    def observe(self, p: RankChangeParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The moves of at least `by` places (into or within the top N), largest first."""
        out = {}
        for moved, before, after in ctx.moves() if not ctx.baseline else ():
            if abs(moved) < p.by:
                break
            if p.top is not None and min(before.rank, after.rank) > p.top:
                continue
            out[after.model_key] = base.Observation("up" if moved > 0 else "down", after)
        return out

    def message(self, p: RankChangeParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`X passed 21 of the models listed in both updates (rank as published: #27 -> #7)`."""
        key = obs.model.model_key
        message = ctx.move_messages.get(key)
        if message is None:  # the same move seen by several rank_change rules: say it once
            moved, was, now = ctx.move_of(key)
            message = ctx.move_messages[key] = (
                f"{ctx.describe(now)} {'passed' if moved > 0 else 'fell behind'} {abs(moved)} of the "
                f"models listed in both updates (rank as published: #{was.rank} -> #{now.rank})")
        return message

    def reason(self, p: RankChangeParams, ctx: Context, trace: base.Trace) -> str:
        """`moved 3+ places: X up 4 (#5 -> #1)`, what the cooldown held back, or the biggest move."""
        within = f" within the top {p.top}" if p.top else ""

        def say(s: base.Seen) -> str:
            return _move(ctx.move_of(s.subject))

        fired = trace.having(base.Outcome.FIRED)
        clauses = [f"moved {p.by}+ places{within}: {base.listing([say(s) for s in fired])}"] if fired else []
        clauses += base.held_clauses(trace, p, say)
        if clauses:
            return "; ".join(clauses)
        moves = [m for m in ctx.moves() if m[0] and (p.top is None or min(m[1].rank, m[2].rank) <= p.top)]
        biggest = f"; the biggest move: {_move(moves[0])}" if moves else ""
        return f"no model moved {p.by} or more places{within}{biggest}"
