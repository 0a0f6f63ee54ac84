"""What a question reads from the stored history: a board as of a date, a window back from a snapshot,
and whether a board is still being updated.

Windows count back from the snapshot a question starts from, never from the wall clock: `gap ... 365`
on a board last updated months ago compares that table with the one a year before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leaderwatch.alerts.formatting import day
from leaderwatch.bot.commands.messages import NO_DATA
from leaderwatch.bot.commands.registry import CommandContext, UserError
from leaderwatch.sources.base import Snapshot
from leaderwatch.storage import snapshots as store


def snapshot_as_of(ctx: CommandContext, board_id: str, at: datetime | None) -> Snapshot:
    """The board's table in force at `at` (its newest when None); a UserError saying when its history
    starts when there was none yet."""
    snap = ctx.snapshots.at(ctx.db, board_id, at)
    if snap is not None:
        return snap
    first = store.first_as_of(ctx.db, board_id)
    if first is None or at is None:
        raise UserError(NO_DATA.format(board=board_id))
    raise UserError(f"{board_id} has no snapshot as of {day(at)}: its history starts {day(first)}.")


def window_before(ctx: CommandContext, snap: Snapshot, days: int) -> Snapshot | None:
    """The board's table `days` days before `snap` (the one in force then), or None before its history."""
    return ctx.snapshots.at(ctx.db, snap.board.id, snap.as_of - timedelta(days=days))


def history_start(ctx: CommandContext, board_id: str) -> str:
    """`2025-07-27`: when the board's stored history starts (`-` when nothing is stored)."""
    first = store.first_as_of(ctx.db, board_id)
    return day(first) if first else "-"


def staleness(ctx: CommandContext, snap: Snapshot) -> str:
    """` (archived: no longer updated)`, ` (stale: last updated 2025-10-04)` when the board's last table
    was last seen more than twice its source's poll interval ago, else ""."""
    if snap.board.archived:
        return " (archived: no longer updated)"
    interval = ctx.intervals.get(snap.board.source)
    seen = store.last_seen(ctx.db, snap.board.id)
    if interval is None or seen is None:
        return ""
    if ctx.clock() - seen > timedelta(seconds=2 * interval):
        return f" (stale: last updated {day(seen)})"
    return ""
