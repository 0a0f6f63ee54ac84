"""One timeline per board out of several overlapping recordings (pure; no I/O).

Several recordings cover the same board (LMArena text: the official CSV tables, an Elo history,
the arena-catalog JSON, a daily scrape of a top N). For each board, families are taken in order of
authority (`Recording.priority`, then the earliest start); a family may only fill dates that no
more authoritative family covers, with a margin on both sides, so recordings of different shapes
never interleave on nearby dates (which would make every switch look like a board-wide change).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaderwatch.sources.base import Recording

MARGIN = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of a board's history covered by one recording family."""

    board_id: str
    family: str
    start: datetime
    end: datetime
    recordings: tuple[Recording, ...]


@dataclass(frozen=True, slots=True)
class Timeline:
    """A board's periods in time order, and the recordings left out because others cover them."""

    board_id: str
    periods: tuple[Period, ...]
    superseded: tuple[Recording, ...]


def _covered(when: datetime, claimed: Sequence[tuple[datetime, datetime]], margin: timedelta) -> bool:
    return any(start - margin <= when <= end + margin for start, end in claimed)


def board_timeline(board_id: str, recordings: Iterable[Recording],
                   margin: timedelta = MARGIN) -> Timeline:
    """The timeline of one board from the recordings that hold it."""
    by_family: dict[str, list[Recording]] = defaultdict(list)
    for rec in recordings:
        if board_id in rec.board_ids:
            by_family[rec.family].append(rec)
    for recs in by_family.values():
        recs.sort(key=lambda r: (r.as_of, str(r.path), r.part))
    order = sorted(by_family, key=lambda f: (min(r.priority for r in by_family[f]),
                                             by_family[f][0].as_of, f))
    claimed: list[tuple[datetime, datetime]] = []
    periods: list[Period] = []
    superseded: list[Recording] = []
    for family in order:
        runs: list[list[Recording]] = [[]]
        for rec in by_family[family]:
            if _covered(rec.as_of, claimed, margin):
                superseded.append(rec)
                runs.append([])
            else:
                runs[-1].append(rec)
        for run in filter(None, runs):
            periods.append(Period(board_id, family, run[0].as_of, run[-1].as_of, tuple(run)))
        # Claimed only after the whole family is placed, so its own dates never exclude each other.
        claimed.extend((run[0].as_of, run[-1].as_of) for run in runs if run)
    periods.sort(key=lambda p: p.start)
    return Timeline(board_id, tuple(periods), tuple(superseded))


def build_timelines(recordings: Sequence[Recording], margin: timedelta = MARGIN) -> dict[str, Timeline]:
    """One timeline per board id found in the recordings."""
    board_ids = sorted({b for rec in recordings for b in rec.board_ids})
    return {b: board_timeline(b, recordings, margin) for b in board_ids}


def selected(timelines: Iterable[Timeline]) -> dict[Recording, set[str]]:
    """For each recording kept by some timeline, the boards it is kept for."""
    out: dict[Recording, set[str]] = defaultdict(set)
    for tl in timelines:
        for period in tl.periods:
            for rec in period.recordings:
                out[rec].add(tl.board_id)
    return dict(out)
