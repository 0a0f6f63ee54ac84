"""`score`: a model's score crosses a threshold (`above` is the side past it: lower scores on a
lower-is-better board)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context
from leaderwatch.alerts.texts import num
from leaderwatch.sources.base import Entry
from leaderwatch.sources.identity import canonical_key


@dataclass(frozen=True, slots=True)
class ScoreParams(base.ConditionParams):
    """`score threshold=80 model=gpt-4o direction=both`."""

    threshold: float = base.required(float, help="the score to cross")
    model: str | None = base.param(None, help="only this model (canonical key or name)")
    group: str | None = base.param(None, groups=True, help="only models of this group")
    direction: Literal["above", "below", "both"] = base.param(
        "above", help="report crossings past the threshold (`above`), back (`below`), or both")


def _past_of(p: ScoreParams, ctx: Context) -> Callable[[float], bool]:
    """Whether a score is at or past the threshold: >= when higher is better, <= when lower is."""
    threshold = p.threshold
    if ctx.curr.board.higher_is_better:
        return lambda score: score >= threshold
    return lambda score: score <= threshold


def _wanted(model: str, ctx: Context) -> Entry | None:
    """The model a `model=` rule follows, by canonical key or by name."""
    return ctx.curr_by_key.get(canonical_key(model)) or next((x for x in ctx.curr.entries if x.name == model),
                                                             None)


class Score(base.Kind[ScoreParams], name="score", title="Score threshold",
            help="a model's score crosses a threshold", default="below", baseline_forgets=True):
    """Which side of the threshold each model is on (`above`, or `below`, the default)."""

    def observe(self, p: ScoreParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """Subjects whose side of the threshold may have changed (on a baseline: every model past it)."""
        group = ctx.group(p.group) if p.group else None
        past = _past_of(p, ctx)

        def side(e: Entry) -> str:
            return "above" if past(e.score) else "below"

        if p.model:
            e = _wanted(p.model, ctx)
            return {e.model_key: base.Observation(side(e), e)} if e else {}
        if ctx.baseline:
            return {k: base.Observation("above", ctx.curr_by_key[k]) for k in ctx.past_threshold(p.threshold)
                    if group is None or group.contains(ctx.curr_by_key[k])}
        # Between baselines the confirmed sides follow the snapshots, so only a model whose score
        # changed across the threshold, one back on the table, or one mid-confirmation needs a step.
        out: dict[str, base.Observation] = {}
        for key, before_score in ctx.score_changes():
            e = ctx.curr_by_key[key]
            if before_score is not None:
                if past(e.score) == past(before_score) and key not in memory.pending:
                    continue
            if group is None or group.contains(e):
                out[key] = base.Observation(side(e), e)
        for key in memory.pending:
            listed = ctx.curr_by_key.get(key)
            if listed is not None and key not in out:
                out[key] = base.Observation(side(listed), listed)
        return out

    def reportable(self, p: ScoreParams, before: str, obs: base.Observation, ctx: Context) -> bool:
        """Crossing past the threshold, back, or both, as `direction` says."""
        return p.direction == "both" or obs.value == p.direction

    def message(self, p: ScoreParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`X rose to or above 80: now 81.5`."""
        # "above" is the side past the threshold: the lower scores on a lower-is-better board.
        word = {("above", True): "rose to or above", ("below", True): "fell below",
                ("above", False): "fell to or below", ("below", False): "rose above"}[
            obs.value, ctx.curr.board.higher_is_better]
        return f"{ctx.describe(obs.model)} {word} {num(p.threshold, '?')}: now {num(obs.model.score, '?')}"

    def meaning(self, p: ScoreParams) -> str:
        """Crossing 80 and crossing 90 in one update are two alerts."""
        return f"|threshold={p.threshold}"

    def reason(self, p: ScoreParams, ctx: Context, trace: base.Trace) -> str:
        """`crossed 90.5: X (91)`, what was held back, or how many models are past the threshold."""
        t = num(p.threshold, "?")
        word = "at or above" if ctx.curr.board.higher_is_better else "at or below"
        past = _past_of(p, ctx)

        def scored(s: base.Seen) -> str:
            return f"{s.observation.model.name} ({num(s.observation.model.score, '?')})"

        def say(s: base.Seen) -> str:
            return f"{scored(s)} {'crossing' if s.observation.value == 'above' else 'falling back'}"

        fired = trace.having(base.Outcome.FIRED)
        clauses = [f"crossed {t}: {base.listing([scored(s) for s in fired])}"] if fired else []
        clauses += base.held_clauses(trace, p, say, f"direction={p.direction}")
        if clauses:
            return "; ".join(clauses)
        if p.model:
            e = _wanted(p.model, ctx)
            if e is None:
                return f"{p.model} is not on the board"
            side = f"{word} {t}" if past(e.score) else f"not {word} {t}"
            return f"{e.name} scores {num(e.score, '?')}, {side}, as before"
        group = ctx.group(p.group) if p.group else None
        count = sum(1 for e in ctx.curr_by_key.values()
                    if past(e.score) and (group is None or group.contains(e)))
        noun = f"{p.group} model" if p.group else "model"
        return f"no {noun} crossed {t}; {count} {noun}(s) score {word} it"
