"""A channel's defaults: the groups it compares, its `top`, the boards and rules it follows.

Read from the channel's settings and subscriptions, with the service's defaults where the channel
chose nothing; commands and the charts under alerts use the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from leaderwatch.alerts.matching import board_matches
from leaderwatch.bot.commands.names import whole_number
from leaderwatch.bot.commands.registry import CommandContext, Invocation
from leaderwatch.storage.subscriptions import channel_settings, channel_subscriptions

DEFAULT_GROUPS = ("china", "west")
"""The groups `race` compares when the channel has not chosen (`set groups ...`)."""
DEFAULT_TOP = 10
MAX_TOP = 50


def default_groups(ctx: CommandContext) -> list[str]:
    """china and west, or the first two configured groups when the config dropped them."""
    if all(g in ctx.groups for g in DEFAULT_GROUPS):
        return list(DEFAULT_GROUPS)
    return sorted(ctx.groups)[:2]


def channel_groups(ctx: CommandContext, inv: Invocation) -> list[str]:
    """The groups this channel compares in `race` (setting `groups`), known ones only."""
    return groups_of_channel(ctx, inv.platform, inv.channel_id)


def groups_of_channel(ctx: CommandContext, platform: str, channel_id: str) -> list[str]:
    """`channel_groups` for a channel named by platform and id (alerts have no Invocation)."""
    chosen = channel_settings(ctx.db, platform, channel_id).get("groups")
    names = [g for g in (chosen or "").split(",") if g in ctx.groups]
    return names if len(names) >= 2 else default_groups(ctx)


def channel_top(ctx: CommandContext, inv: Invocation) -> int:
    """The default N of `top` for this channel (setting `top`)."""
    value = whole_number(channel_settings(ctx.db, inv.platform, inv.channel_id).get("top", ""))
    return value if value is not None and 1 <= value <= MAX_TOP else DEFAULT_TOP


def channel_patterns(ctx: CommandContext, inv: Invocation) -> list[str]:
    """The board patterns this channel follows (active subscriptions)."""
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id)
    return sorted({str(r["board_pattern"]) for r in rows})


def followed_boards(ctx: CommandContext, inv: Invocation, ids: Sequence[str]) -> list[str]:
    """Those of `ids` this channel follows."""
    patterns = channel_patterns(ctx, inv)
    return [b for b in ids if any(board_matches(p, b, ctx.suites) for p in patterns)]


def channel_rules(ctx: CommandContext, inv: Invocation, board_id: str) -> list[str]:
    """The names of the rules this channel follows on a board, in a stable order."""
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id)
    return sorted({str(r["rule"]) for r in rows
                   if board_matches(str(r["board_pattern"]), board_id, ctx.suites)})

