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
from leaderwatch.bot.pipeline.store import Stored, store_all
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.base import ShapeError, Snapshot, Source, SourceError, is_shrunk
from leaderwatch.sources.http import Fetcher, backoff
from leaderwatch.storage import snapshots as store
from leaderwatch.storage import status
from leaderwatch.storage.db import Database

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
                 ops: Sequence[OpsChannel] = ()) -> None:
        self.db = db
        self.fetcher = fetcher
        self.clock = clock
        self.on_change = on_change
        self.metrics = metrics
        self.ops = tuple(ops)

    async def poll(self, source: Source) -> PollResult:
        """Poll one source once; never raises for a source failure (it is logged and recorded)."""
        started = time.perf_counter()
        try:
            snaps = await source.fetch(self.fetcher)
            held, confirmed = self._shrunk(snaps)
            if held:
                return self._hold(source, held, started)
            # The snapshots, the events they produce and their outbox rows commit together, or not
            # at all: a crash never leaves a stored change whose alerts were not queued.
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
            st = status.record_failure(self.db, source.name, self.clock(), exc.reason)
            elapsed = time.perf_counter() - started
            logger.error("poll %s failed (%d in a row%s): %s [%s]", source.name,
                         st.consecutive_failures, ", degraded" if st.status == "degraded" else "",
                         exc.reason, exc.url, extra=_poll_fields(source.name, "failed", elapsed))
            self._count(source.name, ok=False)
            return PollResult(source.name, False, error=str(exc), failures=st.consecutive_failures,
                              seconds=elapsed)
        except Exception as exc:  # a parser or storage bug: logged with its traceback, backed off
            self.fetcher.rollback_validators(source.name)
            reason = f"internal error {type(exc).__name__} (traceback in the log)"
            st = status.record_failure(self.db, source.name, self.clock(), reason)
            logger.exception("poll %s failed (%d in a row): %s", source.name, st.consecutive_failures, reason,
                             extra=_poll_fields(source.name, "error", time.perf_counter() - started))
            self._count(source.name, ok=False)
            return PollResult(source.name, False, error=reason, failures=st.consecutive_failures,
                              seconds=time.perf_counter() - started)
        except BaseException:  # cancellation: nothing stored either
            self.fetcher.rollback_validators(source.name)
            raise
        self.fetcher.commit_validators(source.name)
        for announce in announcements:  # committed: now the events can be logged and counted
            try:
                announce()
            except Exception:  # what was stored stays stored and queued; only the report is lost
                logger.exception("poll %s: reporting a stored change failed", source.name)
        queued = self._succeeded(source.name, confirmed)
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

    def _count(self, source: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.poll(source, ok)

    async def poll_all(self, sources: Sequence[Source]) -> list[PollResult]:
        """Poll several sources one after the other (the `poll` command)."""
        return [await self.poll(s) for s in sources]


def _poll_fields(source: str, outcome: str, seconds: float) -> dict[str, object]:
    """The fields of a poll's log line (JSON logs carry them as keys)."""
    return {"source": source, "outcome": outcome, "seconds": round(seconds, 3)}
