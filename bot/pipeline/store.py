"""Storing what sources return: all boards of one fetch or recording in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from leaderwatch.sources.base import Snapshot, check_not_shrunk
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database

logger = logging.getLogger(__name__)


AfterCommit = Callable[[], Awaitable[object]]
"""Work a stored change leaves for once its transaction has committed (the fan-out of its events)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A snapshot handed to storage and whether it changed the board.

    `after_commit`: what staging the change left to do once the poll's transaction has committed; the
    poller awaits each (once, however many changes listed it) before it reports the poll.
    """

    snapshot: Snapshot
    result: store.SaveResult
    after_commit: list[AfterCommit] = field(default_factory=list, compare=False, repr=False)


def store_all(db: Database, snaps: Sequence[Snapshot], url: str, *,
              check_shrink: bool = True) -> list[Stored]:
    """Check every snapshot, then store them all or none.

    With `check_shrink`, a snapshot with fewer than half the rows of the board's last stored one
    raises SourceError (a partial table from a broken page) before anything is written.
    """
    if check_shrink:
        for snap in snaps:
            check_not_shrunk(snap, store.entry_count(db, snap.board.id), url)
    with db.atomic():
        return [Stored(snap, store.save_snapshot(db, snap)) for snap in snaps]
