"""`rival`: a model comes to lead its rival on at least AT_LEAST of the boards that list both (or loses it).

The one kind that spans boards: when any board of its span (`boards`, a pattern or a suite) changes,
the engine is handed the latest tables of the others (`Context.elsewhere`, read by the pipeline), and
the rule's state is one for the whole span, so the same lead is reported once, not once per board.
The rival is a model, or a group (its best model other than the model itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context, Pairing
from leaderwatch.alerts.models import RuleError
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group, canonical_key


@dataclass(frozen=True, slots=True)
class RivalParams(base.ConditionParams):
    """`rival model=qwen2-vl-72b-instruct rival=gpt-4o-20240513 boards=vision at_least=3`."""

    model: str = base.required(str, help="the model: its key, e.g. qwen2-vl-72b-instruct")
    rival: str = base.required(str, help="its rival: a model's key, or a group (its best model)")
    boards: str = base.param("all", named=True, help="the boards compared: a pattern (lmarena/*) or a suite "
                                                     "(vision)")
    at_least: int = base.param(1, named=True, help="on how many of the boards listing both it must lead")

    def __post_init__(self) -> None:
        if canonical_key(self.model) == canonical_key(self.rival):
            raise RuleError("rule `rival` needs two different models (rival= may also be a group)")

    @property
    def key(self) -> str:
        """The model's canonical key."""
        return canonical_key(self.model)

    @property
    def span(self) -> str:
        """What identifies the comparison across boards (the subject, and the key of `Context.elsewhere`)."""
        return f"{self.key}|{self.rival.lower()}|{self.boards}"


def pair(entries: Iterable[Entry], key: str, rival_key: str, group: Group | None
         ) -> tuple[Entry | None, Entry | None]:
    """A model's and its rival's best entries in a table read in rank order (the rival: a model by key,
    or a group's best model other than the model); stops reading once both are found."""
    model: Entry | None = None
    rival: Entry | None = None
    for e in entries:
        if model is None and e.model_key == key:
            model = e
        elif rival is None and e.model_key != key and (
                group.contains(e) if group is not None else e.model_key == rival_key):
            rival = e
        if model is not None and rival is not None:
            break
    return model, rival


def pairing(p: RivalParams, snap: Snapshot, groups: Mapping[str, Group]) -> Pairing:
    """The model's and the rival's best entries on one table."""
    model, rival = pair(snap.entries, p.key, canonical_key(p.rival), groups.get(p.rival.lower()))
    return Pairing(snap.board.id, model, rival)


def tally(p: RivalParams, ctx: Context) -> tuple[list[Pairing], list[Pairing]]:
    """The boards listing both (this one's current table first) and those where the model ranks above."""
    here = pairing(p, ctx.curr, ctx.groups)
    both = [b for b in (here, *ctx.elsewhere.get(p.span, ())) if b.model is not None and b.rival is not None]
    ahead = [b for b in both if b.model is not None and b.rival is not None and b.model.rank < b.rival.rank]
    return both, ahead


def bouts(pairings: list[Pairing], limit: int = 4) -> str:
    """`lmarena/vision #9 vs #12, epoch/video_mme #7 vs #3 and 2 more`."""
    shown = [f"{b.board} #{b.model.rank} vs #{b.rival.rank}" for b in pairings[:limit]
             if b.model is not None and b.rival is not None]
    return ", ".join(shown) + (f" and {len(pairings) - limit} more" if len(pairings) > limit else "")


class Rival(base.Kind[RivalParams], name="rival", title="Rival",
            help="a model comes to lead its rival (a model or a group) on at least AT_LEAST of the boards "
                 "that list both",
            spans_boards=True,
            example="rival model=qwen2-vl-72b-instruct rival=gpt-4o-20240513 boards=vision"):
    """Whether the model leads on at least `at_least` of the boards listing both (`leads`) or not."""

    def observe(self, p: RivalParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """`leads` or `trails` over the span, unless no board lists both."""
        both, ahead = tally(p, ctx)
        if not both:
            return {}
        first = both[0]
        return {p.span: base.Observation("leads" if len(ahead) >= p.at_least else "trails", first.model,
                                          first.rival)}

    def message(self, p: RivalParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`X now leads Y on 3 of 5 boards (...)`, or `X no longer leads Y on 3 boards: 2 of 5 (...)`."""
        both, ahead = tally(p, ctx)
        name = obs.model.name
        rival = f"the best {p.rival} model" if p.rival.lower() in ctx.groups else obs.rival.name
        where = "" if p.boards == "all" else f" of {p.boards}"
        if obs.value == "leads":
            return (f"{name} now leads {rival} on {len(ahead)} of the {len(both)} boards{where} that list "
                    f"both ({bouts(ahead)})")
        return (f"{name} no longer leads {rival} on {p.at_least} of the boards{where} that list both: "
                f"{len(ahead)} of {len(both)}")

    def meaning(self, p: RivalParams) -> str:
        """Leading on 2 and on 3 boards are two outcomes."""
        return f"|at_least={p.at_least}"

    def reason(self, p: RivalParams, ctx: Context, trace: base.Trace) -> str:
        """`X leads Y on 2 of 4 boards listing both, short of 3, as before`, or what held a change back."""
        both, ahead = tally(p, ctx)
        if not both or not trace.seen:
            where = "" if p.boards == "all" else f" of {p.boards}"
            return f"no board{where} lists both {p.model} and {p.rival}"
        seen = trace.seen[0]
        side = f"at least {p.at_least}" if seen.observation.value == "leads" else f"short of {p.at_least}"
        text = f"{p.model} leads {p.rival} on {len(ahead)} of {len(both)} boards listing both, {side}"
        after = f", after {'leading' if seen.before == 'leads' else 'trailing'} before"
        return base.one_subject(seen, p, text, after)
