"""Polling: fetch a source, store what changed, record the source's health, report changes.

A fetch in a shape the parser does not know (`ShapeError`) stores nothing and marks the source
`drifted`; so does a board whose table has fewer than half the rows of its last stored one: that table
is held, and stored only when the next poll returns exactly the same table (then it is the new truth).
The next successful poll clears the drift. Entering and leaving drift are each announced once to the
operators' channels (`drift.notify`), in the transaction that records them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from leaderwatch.bot.pipeline import drift
from leaderwatch.bot.pipeline.drift import OpsChannel
from leaderwatch.bot.pipeline.store import AfterCommit, Stored, store_all
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.base import ShapeError, Snapshot, Source, SourceError, is_shrunk
from leaderwatch.sources.http import Fetcher, backoff
from leaderwatch.storage import snapshots as store
from leaderwatch.storage import status
from leaderwatch.storage.db import Database, DiskFullError, db_file, storage_error

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 30

# Called inside the poll's transaction for each stored change; what it returns, if anything, runs
# once that transaction has committed (announcing events that a rollback would have undone).
OnChange = Callable[[Stored], Callable[[], None] | None]


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome of one poll of one source."""

    source: str
    ok: bool
    stored: tuple[Stored, ...] = ()
    error: str | None = None
    failures: int = 0
    seconds: float = 0.0
    drifted: bool = False
    ops_queued: int = 0
    """Operators' messages (drift, recovery) this poll queued: the dispatcher has work."""

    @property
    def changed(self) -> list[Stored]:
        """The snapshots that changed their board."""
        return [s for s in self.stored if s.result.stored]


def retry_delay(failures: int, interval: int) -> int:
    """Back-off before the next attempt after `failures` failures in a row, capped at the interval."""
    return int(backoff(failures, FIRST_RETRY_SECONDS, interval))


class Poller:
    """Polls sources through the shared fetcher and stores their snapshots."""

    def __init__(self, db: Database, fetcher: Fetcher, clock: Callable[[], datetime],
                 on_change: OnChange | None = None, metrics: Metrics | None = None,
                 ops: Sequence[OpsChannel] = (), pending: Sequence[AfterCommit] = ()) -> None:
        self.db = db
        self.fetcher = fetcher
        self.clock = clock
        self.on_change = on_change
        self.metrics = metrics
        self.ops = tuple(ops)
        self._unrecorded: list[tuple[str, datetime, str]] = []
        self._unfinished: list[AfterCommit] = list(pending)
        """Work left for after a commit that has not been done: `pending` (e.g. a fan-out a crash cut
        short, found at start-up) and jobs that failed; the next successful poll runs them."""
        self._refused = False
        self._disk_full_said = False

    async def poll(self, source: Source) -> PollResult:
        """Poll one source once; never raises (but when cancelled).

        A source failure, a locked database or a full disk is logged and recorded, and the result says
        how many failures in a row there were (the back-off). A failure the database cannot record now
        (it is locked, or full) is kept and written at the next chance (`flush_failures`).
        """
        started = time.perf_counter()
        # When the failures kept earlier cannot be written now, this poll's own is kept without trying:
        # each try waits the busy timeout, on the event loop.
        self._refused = not self.flush_failures()
        try:
            return await self._poll(source, started)
        except Exception as exc:  # recording the outcome needed a write, and the database refused it
            self.fetcher.rollback_validators(source.name)
            return self._failed(source.name, exc, started)

    async def _poll(self, source: Source, started: float) -> PollResult:
        try:
            snaps = await source.fetch(self.fetcher)
            held, confirmed = self._shrunk(snaps)
            if held:
                return self._hold(source, held, started)
            # The snapshots and the events they produce commit together, or not at all; the events'
            # outbox rows follow (`after_commit`, the fan-out), and an event whose rows a crash cut
            # short stays listed and is fanned out again: a stored change never loses its alerts.
            announcements: list[Callable[[], None]] = []
            with self.db.atomic():
                stored = store_all(self.db, snaps, source.name, check_shrink=False)
                if self.on_change:
                    for s in stored:
                        if s.result.stored and (announce := self.on_change(s)) is not None:
                            announcements.append(announce)
        except ShapeError as exc:
            self.fetcher.rollback_validators(source.name)
            return self._drifted(source, exc.reason, exc.url, started)
        except SourceError as exc:
            # Nothing was stored: ETags seen in this fetch must not turn the next poll into a 304
            # for content never kept (e.g. board A fetched, board B failed: A would be lost).
            self.fetcher.rollback_validators(source.name)
            failures = self._record_failure(source.name, exc.reason)
            elapsed = time.perf_counter() - started
            logger.error("poll %s failed (%d in a row%s): %s [%s]", source.name,
                         failures, ", degraded" if failures >= status.DEGRADED_AFTER else "",
                         exc.reason, exc.url, extra=_poll_fields(source.name, "failed", elapsed))
            self._count(source.name, ok=False)
            return PollResult(source.name, False, error=str(exc), failures=failures, seconds=elapsed)
        except Exception as exc:  # a parser or storage bug, a locked database, a full disk: backed off
            self.fetcher.rollback_validators(source.name)
            return self._failed(source.name, exc, started)
        except BaseException:  # cancellation: nothing stored either
            self.fetcher.rollback_validators(source.name)
            raise
        self.fetcher.commit_validators(source.name)
        # Each job once (the fan-out covers every change of the poll), and one that failed at an earlier
        # poll again: its events stayed listed, and this poll may be the next to find a change or not.
        jobs = dict.fromkeys([*self._unfinished, *(job for s in stored for job in s.after_commit)])
        self._unfinished = []
        for job in jobs:
            try:
                await job()
            except Exception:
                self._unfinished.append(job)
                logger.exception("poll %s: queueing the alerts of a stored change failed; they stay listed "
                                 "and the next poll tries again", source.name)
        for announce in announcements:  # committed: now the events can be logged and counted
            try:
                announce()
            except Exception:  # what was stored stays stored and queued; only the report is lost
                logger.exception("poll %s: reporting a stored change failed", source.name)
        queued = self._succeeded(source.name, confirmed)
        self._disk_full_said = False
        elapsed = time.perf_counter() - started
        result = PollResult(source.name, True, tuple(stored), seconds=elapsed, ops_queued=queued)
        self._count(source.name, ok=True)
        if not snaps:
            logger.info("poll %s: not modified since the last poll (%.1fs)", source.name, elapsed,
                        extra=_poll_fields(source.name, "not_modified", elapsed))
        else:
            changed = ", ".join(f"{s.snapshot.board.id} ({len(s.snapshot.entries)} rows)"
                                for s in result.changed) or "none"
            logger.info("poll %s: %d board(s), changed: %s (%.1fs)", source.name, len(snaps), changed,
                        elapsed, extra=_poll_fields(source.name, "changed" if result.changed else "unchanged",
                                                    elapsed))
        return result

    def _shrunk(self, snaps: Sequence[Snapshot]) -> tuple[list[tuple[Snapshot, int]], list[str]]:
        """The tables that shrank by more than half and are not yet confirmed (with their boards' last
        row counts), and the boards whose shrunk table this fetch confirmed (the same table again)."""
        held: list[tuple[Snapshot, int]] = []
        confirmed: list[str] = []
        for snap in snaps:
            previous = store.entry_count(self.db, snap.board.id)
            if previous is None or not is_shrunk(snap, previous):
                continue
            before = status.held_table(self.db, snap.board.id)
            if before is not None and before.content_hash == snap.content_hash:
                confirmed.append(snap.board.id)
            else:
                held.append((snap, previous))
        return held, confirmed

    def _hold(self, source: Source, held: Sequence[tuple[Snapshot, int]], started: float) -> PollResult:
        """Hold the shrunk tables of a fetch: nothing is stored, the source shows as drifted."""
        self.fetcher.rollback_validators(source.name)
        now = self.clock()
        reason = "; ".join(f"{snap.board.id}: {len(snap.entries)} rows where the last stored table had "
                           f"{previous}; held until the next poll returns the same table"
                           for snap, previous in held)
        with self.db.atomic():
            for snap, previous in held:
                status.hold_table(self.db, status.HeldTable(snap.board.id, source.name, snap.content_hash,
                                                            len(snap.entries), previous, now))
            return self._drifted(source, reason, held[0][0].board.url, started, held=True)

    def _drifted(self, source: Source, reason: str, url: str, started: float, *, held: bool = False
                 ) -> PollResult:
        """Record a drift; announce it when it is new (repeated polls of a drifted source say nothing)."""
        now = self.clock()
        queued = 0
        with self.db.atomic():
            st, new = status.record_drift(self.db, source.name, now, reason, url)
            if new:
                queued = drift.notify(self.db, self.ops, drift.drift_event(source.name, reason, url, now,
                                                                           held=held), now)
        elapsed = time.perf_counter() - started
        if not new:
            logger.info("poll %s: still drifted (%d poll(s) in a row): %s [%s]", source.name,
                        st.consecutive_failures, reason, url,
                        extra=_poll_fields(source.name, "drifted", elapsed))
        self._count(source.name, ok=False)
        return PollResult(source.name, False, error=f"{source.name}: {reason} ({url})",
                          failures=st.consecutive_failures, seconds=elapsed, drifted=True, ops_queued=queued)

    def _succeeded(self, source: str, confirmed: Sequence[str]) -> int:
        """Record a successful poll; announce the end of a drift. How many ops messages were queued."""
        now = self.clock()
        with self.db.atomic():
            before = status.record_success(self.db, source, now)
            if before is None or not before.is_drifted:
                return 0
            event = drift.recovery_event(source, before.drift, before.drifted_at, now, confirmed)
            return drift.notify(self.db, self.ops, event, now)

    def _failed(self, source: str, exc: Exception, started: float) -> PollResult:
        """A poll that failed on our side: a locked database or a full disk said plainly in one line
        (a full disk once, until a poll succeeds), anything else logged with its traceback."""
        known = storage_error(exc, db_file(self.db))
        reason = str(known) if known else f"internal error {type(exc).__name__} (traceback in the log)"
        failures = self._record_failure(source, reason)
        elapsed = time.perf_counter() - started
        fields = _poll_fields(source, "error", elapsed)
        if isinstance(known, DiskFullError) and self._disk_full_said:
            logger.info("poll %s failed (%d in a row): the disk is still full", source, failures,
                        extra=fields)
        elif known is not None:
            logger.error("poll %s failed (%d in a row): %s", source, failures, reason, extra=fields)
            self._disk_full_said = isinstance(known, DiskFullError)
        else:
            logger.error("poll %s failed (%d in a row): %s", source, failures, reason, exc_info=exc,
                         extra=fields)
        self._count(source, ok=False)
        return PollResult(source, False, error=reason, failures=failures, seconds=elapsed)

    def _record_failure(self, source: str, reason: str) -> int:
        """Record a failed poll; how many failures in a row the source has now. A record the database
        refuses (locked, full) is kept in memory, counted, and written at the next chance."""
        now = self.clock()
        if not self._refused and self.flush_failures():
            try:
                return status.record_failure(self.db, source, now, reason).consecutive_failures
            except Exception as exc:  # the poll's own log line says why; this one is for debugging
                logger.debug("poll %s: the failure could not be recorded yet (%s); kept until the database "
                             "takes it", source, exc)
        self._unrecorded.append((source, now, reason))
        try:
            current = status.status_of(self.db, source)  # a read: it works under another's write lock
        except Exception:
            current = None
        kept = sum(s == source for s, _, _ in self._unrecorded)
        return (current.consecutive_failures if current else 0) + kept

    def flush_failures(self) -> bool:
        """Write the failure records the database refused earlier, oldest first; True when none is left."""
        while self._unrecorded:
            source, at, reason = self._unrecorded[0]
            try:
                status.record_failure(self.db, source, at, reason)
            except Exception:
                return False
            self._unrecorded.pop(0)
        return True

    @property
    def unrecorded(self) -> int:
        """Failures kept in memory because the database refused them so far."""
        return len(self._unrecorded)

    def _count(self, source: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.poll(source, ok)

    async def poll_all(self, sources: Sequence[Source]) -> list[PollResult]:
        """Poll several sources one after the other (the `poll` command)."""
        return [await self.poll(s) for s in sources]


def _poll_fields(source: str, outcome: str, seconds: float) -> dict[str, object]:
    """The fields of a poll's log line (JSON logs carry them as keys)."""
    return {"source": source, "outcome": outcome, "seconds": round(seconds, 3)}
