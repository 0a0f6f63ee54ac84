"""`board_changed`: a board changes method (scoring system, recording); per-model alerts pause."""

from __future__ import annotations

from dataclasses import dataclass

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context


@dataclass(frozen=True, slots=True)
class BoardChangedParams(base.Params):
    """No parameters: one event per change of method."""


class BoardChanged(base.Kind[BoardChangedParams], name="board_changed", title="Board changed",
                   help="a board changes method (scoring system, recording); per-model alerts pause",
                   condition=False):
    """An occurrence: the board's method changed (subject `method`, value what changed)."""

    def observe(self, p: BoardChangedParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """The change of method, if any (also on the update it makes a baseline)."""
        return {"method": base.Observation(ctx.changed)} if ctx.changed is not None else {}

    def message(self, p: BoardChangedParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`the board changed (method a -> b); per-model alerts pause for this update`."""
        return f"the board changed ({obs.value}); per-model alerts pause for this update"

    def reason(self, p: BoardChangedParams, ctx: Context, trace: base.Trace) -> str:
        """`the board changed (method a -> b)`, or that it kept its method."""
        if ctx.changed is not None:
            return f"the board changed ({ctx.changed})"
        return "same method and recording as the previous snapshot, and most models kept their places"
