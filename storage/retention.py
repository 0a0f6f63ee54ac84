"""Retention of raw snapshots: thin old history while keeping every snapshot the history questions read.

A board is stored each time its table changes, which can be many times a day. Past `keep_days`,
only the last snapshot of each board per UTC day (or ISO week) is kept, so any question asked about
the end of a day (`top --at DATE`, `model`, `gap`, `race`, charts of best scores over time) gets the
same table as before. Whatever the age, these are kept too:

- each board's first snapshot (where its history, and `top --at`'s "history starts on", begins),
  its latest and the one before the latest (what `why` compares);
- each snapshot that produced an event, and the one before it (the pair the event was found in);
- each snapshot that first listed a (model key, name) on its board: the rules derive the models a
  board has ever listed from its history (`storage.rule_states.names_listed_before`), so a model seen only
  in a removed snapshot would otherwise come back as "new".
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database

logger = logging.getLogger(__name__)

PERIODS = ("day", "week")
"""How finely history older than the retention window is kept: one snapshot per board per period."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much raw history to keep.

    Every snapshot younger than `keep_days` (counted from the start of today, UTC); of older ones,
    the last of each board per `period` ("day" or "week") and the ones the module doc lists.
    """

    keep_days: int
    period: str = "day"

    def __post_init__(self) -> None:
        if self.keep_days < 1:
            raise ValueError(f"keep_days must be at least 1, got {self.keep_days}")
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {self.period!r}")


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A stored snapshot as retention sees it."""

    id: int
    board_id: str
    as_of: datetime


@dataclass(frozen=True, slots=True)
class EventRef:
    """A stored event: the snapshot that produced it, or its board and time when none was recorded."""

    board_id: str
    at: datetime
    snapshot_id: int | None = None


def cutoff(policy: RetentionPolicy, now: datetime) -> datetime:
    """The start of the retention window: midnight UTC `keep_days` before today's."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return today - timedelta(days=policy.keep_days)


def period_of(when: datetime, period: str) -> date:
    """The UTC day of `when`, or the Monday of its ISO week."""
    day = when.astimezone(UTC).date()
    return day - timedelta(days=day.weekday()) if period == "week" else day


def snapshots_to_keep(snapshots: Iterable[SnapshotRef], policy: RetentionPolicy, now: datetime,
                      events: Iterable[EventRef] = (), first_listings: Collection[int] = ()) -> set[int]:
    """The ids of the snapshots to keep (a pure function of the stored history and `now`).

    `first_listings` are the ids of snapshots that first listed a (model key, name) on their board.
    """
    by_board: dict[str, list[SnapshotRef]] = {}
    for snap in snapshots:
        by_board.setdefault(snap.board_id, []).append(snap)
    limit = cutoff(policy, now)
    keep: set[int] = set()
    where: dict[int, tuple[str, int]] = {}
    for board_id, snaps in by_board.items():
        snaps.sort(key=lambda s: (s.as_of, s.id))  # the order `snapshot_at` breaks ties in
        keep.update(s.id for s in (snaps[0], *snaps[-2:]))  # first, the one before the latest, latest
        last_of: dict[date, int] = {}
        for i, snap in enumerate(snaps):
            where[snap.id] = (board_id, i)
            if snap.as_of >= limit:
                keep.add(snap.id)
            else:
                last_of[period_of(snap.as_of, policy.period)] = snap.id  # in time order: the last wins
        keep.update(last_of.values())
    times: dict[str, list[datetime]] = {}
    for event in events:
        if event.snapshot_id is not None and event.snapshot_id in where:
            board_id, i = where[event.snapshot_id]
        else:  # no snapshot recorded (or it is gone): the one in force at the event's time
            if event.board_id not in times:
                times[event.board_id] = [s.as_of for s in by_board.get(event.board_id, [])]
            board_id, i = event.board_id, bisect.bisect_right(times[event.board_id], event.at) - 1
            if i < 0:
                continue
        board = by_board[board_id]
        keep.add(board[i].id)
        if i > 0:
            keep.add(board[i - 1].id)
    keep.update(i for i in first_listings if i in where)
    return keep


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What `apply_retention` removed."""

    cutoff: datetime
    snapshots_before: int
    snapshots_removed: int
    entries_removed: int
    removed_by_board: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One log line: totals, then the boards thinned the most."""
        if not self.snapshots_removed:
            return (f"retention: nothing to remove ({self.snapshots_before} snapshot(s), none thinnable "
                    f"before {self.cutoff:%Y-%m-%d})")
        worst = sorted(self.removed_by_board.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        boards = ", ".join(f"{b} {n}" for b, n in worst)
        more = f", ... ({len(self.removed_by_board)} boards)" if len(self.removed_by_board) > 5 else ""
        return (f"retention: removed {self.snapshots_removed} of {self.snapshots_before} snapshot(s) "
                f"({self.entries_removed} entries) from before {self.cutoff:%Y-%m-%d}: {boards}{more}")


def _first_listings(db: Database, before: datetime) -> set[int]:
    """Snapshots older than `before` that first listed a (model key, name) on their board.

    Only older snapshots can be removed, and a listing first seen later is first seen in a kept one.
    """
    rows = db.execute(
        "SELECT DISTINCT first_value(s.id) OVER (PARTITION BY s.board_id, e.model_key, e.name "
        "ORDER BY s.as_of, s.id) FROM entries e JOIN snapshots s ON s.id = e.snapshot_id "
        "WHERE s.as_of < ?", [to_text(before)]).fetchall()
    return {int(r[0]) for r in rows}


def snapshots_to_remove(db: Database, policy: RetentionPolicy, now: datetime) -> dict[int, str]:
    """The snapshots the policy would remove now, as {id: board id} (nothing is changed)."""
    limit = cutoff(policy, now)
    refs = [SnapshotRef(int(i), b, from_text(a))
            for i, b, a in db.execute("SELECT id, board_id, as_of FROM snapshots").fetchall()]
    if all(r.as_of >= limit for r in refs):
        return {}
    events = [EventRef(b, from_text(a), None if s is None else int(s))
              for b, a, s in db.execute("SELECT board_id, at, snapshot_id FROM events").fetchall()]
    keep = snapshots_to_keep(refs, policy, now, events, _first_listings(db, limit))
    return {r.id: r.board_id for r in refs if r.id not in keep}


def apply_retention(db: Database, policy: RetentionPolicy, now: datetime) -> RetentionReport:
    """Remove the snapshots (and their entries) the policy does not keep, in one transaction."""
    with db.atomic():
        before = int(db.execute("SELECT count(*) FROM snapshots").fetchone()[0])
        doomed = snapshots_to_remove(db, policy, now)
        ids = [(i,) for i in sorted(doomed)]
        entries = db.executemany("DELETE FROM entries WHERE snapshot_id = ?", ids).rowcount
        db.executemany("DELETE FROM snapshots WHERE id = ?", ids)
    report = RetentionReport(cutoff(policy, now), before, len(ids), max(entries, 0),
                             dict(Counter(doomed.values())))
    logger.info("%s", report.summary())
    return report


def vacuum(db: Database) -> None:
    """Give the space of removed rows back to the file system.

    Optional after `apply_retention` (SQLite reuses freed pages anyway). It rewrites the whole file:
    it needs as much free disk as the database, blocks writers while it runs, and cannot run inside
    a transaction.
    """
    db.execute("VACUUM")
    logger.info("database vacuumed")
