"""The rule kinds, one module each, and their registry: a new kind is one module and one line in `REGISTRY`.

Each module holds one `Kind` (name, title, help, typed parameters, what it observes and reports, and
its `why` line); `base` holds what they share. May import the modules of `leaderwatch.alerts` below
it (`models`, `context`, `texts`, `durations`), `leaderwatch.sources` and the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping

from leaderwatch.alerts.kinds import (
    board_changed,
    gap,
    new_leader,
    new_model,
    overtake,
    rank_change,
    rival,
    score,
    share,
    top_n,
)
from leaderwatch.alerts.kinds.base import AnyKind
from leaderwatch.alerts.models import RuleError

REGISTRY: tuple[AnyKind, ...] = (
    overtake.Overtake(overtake.OvertakeParams),
    new_leader.NewLeader(new_leader.NewLeaderParams),
    top_n.TopN(top_n.TopNParams),
    gap.Gap(gap.GapParams),
    score.Score(score.ScoreParams),
    new_model.NewModel(new_model.NewModelParams),
    rank_change.RankChange(rank_change.RankChangeParams),
    board_changed.BoardChanged(board_changed.BoardChangedParams),
    share.Share(share.ShareParams),
    rival.Rival(rival.RivalParams),
)
"""Every kind, in the order help and error messages list them."""


def _by_name(kinds: tuple[AnyKind, ...]) -> dict[str, AnyKind]:
    found: dict[str, AnyKind] = {}
    for kind in kinds:
        if kind.name in found:  # a copied module left unrenamed would shadow a kind silently
            raise RuntimeError(f"two rule kinds are named `{kind.name}`")
        found[kind.name] = kind
    return found


BY_NAME: Mapping[str, AnyKind] = _by_name(REGISTRY)
KINDS: tuple[str, ...] = tuple(BY_NAME)
"""The kinds' names (`overtake`, ...)."""
KIND_HELP: Mapping[str, str] = {k.name: k.help for k in REGISTRY}
"""Each kind's help line, by name."""
KIND_TITLES: Mapping[str, str] = {k.name: k.title for k in REGISTRY}
"""Each kind's alert title, by name."""


def kind_named(name: str) -> AnyKind:
    """The kind of this name; RuleError lists the kinds when there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise RuleError(f"unknown rule `{name}`; rules: {', '.join(KINDS)}") from None


def title_of(kind: str) -> str:
    """An alert's title for an event of this kind (the kind's name for one no longer registered)."""
    return KIND_TITLES.get(kind, kind)
