"""What a question reads from the stored history: a board as of a date, a window back from a snapshot,
and whether a board is still being updated.

Windows count back from the snapshot a question starts from, never from the wall clock: `gap ... 365`
on a board last updated months ago compares that table with the one a year before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaderwatch.alerts.formatting import day
from leaderwatch.bot.commands.messages import NO_DATA
from leaderwatch.bot.commands.registry import CommandContext, UserError
from leaderwatch.sources.base import Board, Entry, Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database


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


@dataclass(frozen=True, slots=True)
class Lead:
    """Who leads a board's table among some groups: their best entries, the leader and the gap.

    `leader` is a group's name, `tied` when the two best groups' best models share a rank, or None when
    fewer than two of the groups have a model on the table. `gap` is in the board's unit.
    """

    board: Board
    as_of: datetime
    bests: Mapping[str, Entry | None]
    leader: str | None
    gap: float | None


class Leads:
    """Who leads each board among the same groups, as of any date; each stored table is read once.

    A table is read only until every group has its best model (usually its first few dozen rows),
    and what it says is kept by snapshot id: a stored table never changes, and a board keeps the
    same table across many dates.
    """

    def __init__(self, db: Database, groups: Mapping[str, Group], names: Sequence[str]) -> None:
        self.db, self.groups, self.names = db, groups, list(names)
        self._boards = {b.id: b for b in store.boards(db)}
        self._by_snapshot: dict[int, Lead] = {}

    def boards(self) -> list[Board]:
        """Every stored board, by id."""
        return [self._boards[b] for b in sorted(self._boards)]

    def at(self, board_id: str, when: datetime | None) -> Lead | None:
        """The lead on the board's table in force at `when` (its newest when None); None before it had one."""
        found = store.in_force(self.db, board_id, when)
        if found is None:
            return None
        snapshot_id, as_of = found
        lead = self._by_snapshot.get(snapshot_id)
        if lead is None:
            lead = self._by_snapshot[snapshot_id] = self._read(self._boards[board_id], snapshot_id, as_of)
        return lead

    def _read(self, board: Board, snapshot_id: int, as_of: datetime) -> Lead:
        bests: dict[str, Entry | None] = dict.fromkeys(self.names)
        missing = set(self.names)
        for entry in store.iter_entries(self.db, snapshot_id):
            for name in [n for n in missing if self.groups[n].contains(entry)]:
                bests[name] = entry
                missing.discard(name)
            if not missing:
                break
        ranked = sorted(((e.rank, n, e) for n, e in bests.items() if e is not None), key=lambda t: t[0])
        if len(ranked) < 2:
            return Lead(board, as_of, bests, None, None)
        (r1, n1, e1), (r2, _, e2) = ranked[0], ranked[1]
        return Lead(board, as_of, bests, "tied" if r1 == r2 else n1, abs(e1.score - e2.score))
