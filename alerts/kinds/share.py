"""`share`: a group or an organization comes to hold at least `count` of a board's top N (and falls back).

The share counts models, not rows: the runs of one model under other settings (Aider's `gpt-5 (high)`
and `gpt-5 (low)`) are one model, as the rules' memory of new models counts them. Ranks are the
board's own, so models tied at #N all count, and a table that lists fewer than N ranks says nothing
it cannot know: a share it does not see in a truncated table is left unjudged, not reported as lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import leaderwatch.alerts.kinds.base as base
from leaderwatch.alerts.context import Context, base_key
from leaderwatch.alerts.models import RuleError
from leaderwatch.sources.base import Entry
from leaderwatch.sources.identity import Group, Identity


@dataclass(frozen=True, slots=True)
class ShareParams(base.ConditionParams):
    """`share group=china count=3 top=10`, `share organization=Alibaba count=2 top=5`."""

    group: str | None = base.param(None, groups=True, help="the group whose models are counted")
    organization: str | None = base.param(None, help="or the organization whose models are counted "
                                                     "(any spelling the identity tables know)")
    count: int = base.param(3, named=True, help="how many of the top N it must hold")
    top: int = base.param(10, named=True, help="N of the top N")

    def __post_init__(self) -> None:
        if (self.group is None) == (self.organization is None):
            raise RuleError("rule `share` needs group=GROUP or organization=NAME (one of them), e.g. "
                            "`share group=china count=3 top=10`")
        if self.count > self.top:
            raise RuleError(f"rule `share` count={self.count} is more than top={self.top}: no one can hold "
                            "more of the top N than N")

    @property
    def holder(self) -> str:
        """The group's or the organization's name, as messages say it."""
        return self.group or self.organization or ""


@cache
def organization_group(name: str) -> Group:
    """A group of one organization and every spelling of it the shipped identity tables know."""
    identity = Identity.load()
    main = identity.canonical_organization(name)
    return Group(main, organizations=frozenset(identity.spellings_of(main) | {name.casefold()}))


def holdings(p: ShareParams, ctx: Context) -> list[Entry] | None:
    """The holder's models in the top N (their best entries, in rank order); None when a truncated table
    does not show all N ranks and the holder has fewer than `count` of those it shows."""
    group = ctx.group(p.group) if p.group else organization_group(p.organization or "")
    held: dict[str, Entry] = {}
    for e in ctx.curr.entries:
        if e.rank > p.top:
            break
        if group.contains(e):
            held.setdefault(base_key(e), e)
    if len(held) < p.count and not ctx.absent_value_known(p.top):
        return None
    return list(held.values())


def listed(entries: list[Entry]) -> str:
    """`GLM-4.5 #3, Qwen3 #7, DeepSeek-R1 #8`."""
    return ", ".join(f"{e.name} #{e.rank}" for e in entries)


class Share(base.Kind[ShareParams], name="share", title="Share of the top",
            help="a group or an organization comes to hold at least COUNT of a board's top N, or falls back",
            example="share group=china count=3 top=10"):
    """Whether the holder holds at least `count` of the top N (`holds`) or not (`short`); one subject."""

    def observe(self, p: ShareParams, ctx: Context, memory: base.Memory) -> base.Observed:
        """`holds` or `short`, unless a truncated table cannot tell."""
        if (held := holdings(p, ctx)) is None:
            return {}
        groups = (p.group,) if p.group else ()
        first = held[0] if held else None
        return {p.holder: base.Observation("holds" if len(held) >= p.count else "short", first, None, "n/a",
                                           groups)}

    def message(self, p: ShareParams, ctx: Context, obs: base.Observation, before: str | None) -> str:
        """`china now holds 3 of the top 10: A #1, B #4, C #9`, or, quieter, `china no longer holds 3 of
        the top 10 (2 now: A #1, B #4)`."""
        held = holdings(p, ctx) or []
        if obs.value == "holds":
            return f"{p.holder} now holds {len(held)} of the top {p.top}: {listed(held)}"
        now = f"{len(held)} now: {listed(held)}" if held else "none now"
        return f"{p.holder} no longer holds {p.count} of the top {p.top} ({now})"

    def meaning(self, p: ShareParams) -> str:
        """Holding 3 of the top 10 and 2 of the top 5 are different outcomes."""
        return f"|count={p.count}|top={p.top}"

    def reason(self, p: ShareParams, ctx: Context, trace: base.Trace) -> str:
        """`china holds 2 of the top 10 (A #1, B #4), short of 3, as before`, or what held a change back."""
        held = holdings(p, ctx)
        if held is None or not trace.seen:
            return (f"the table lists only a top {ctx.last_listed_rank()}: {p.holder}'s share of the top "
                    f"{p.top} cannot be told")
        seen = trace.seen[0]
        models = f" ({listed(held)})" if held else ""
        side = f"at least {p.count}" if seen.observation.value == "holds" else f"short of {p.count}"
        text = f"{p.holder} holds {len(held)} of the top {p.top}{models}, {side}"
        after = f", after {'holding' if seen.before == 'holds' else 'falling short'} before"
        return base.one_subject(seen, p, text, after)
