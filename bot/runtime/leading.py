"""The leader loop: try to lead every 2 s, heartbeat while leading, start and stop the leader's work.

Every replica runs one. The one that leads runs the polls (`bot/app.py` resumes the scheduler's jobs in
`on_lead` and pauses them in `on_lose`); the others deliver from the outbox and answer chat, and take
over at their next try when the leader goes away. On SQLite the first try leads, for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.storage.leadership import AnyLeadership, LeadershipError

logger = logging.getLogger(__name__)

LEAD_INTERVAL = 2.0
"""Seconds between two tries to lead, and between two heartbeats of the leader. A killed leader's
session ends at once, so a replica takes over within this interval (issue 15 asks for 15 s)."""


class LeaderLoop:
    """Keeps a replica's leadership and runs `on_lead` / `on_lose` at each change of it.

    `on_lose` runs in the same step as the failed heartbeat, with no await in between: the leader's
    work stops the moment the leadership is known to be lost.
    """

    def __init__(self, leadership: AnyLeadership, on_lead: Callable[[], None], on_lose: Callable[[], None],
                 *, interval: float = LEAD_INTERVAL, metrics: Metrics | None = None) -> None:
        self.leadership = leadership
        self.on_lead = on_lead
        self.on_lose = on_lose
        self.interval = interval
        self.metrics = metrics
        self._said: str | None = None
        """The last problem or standby line logged (each is logged once, not every 2 s)."""

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads (what `/healthz` reports)."""
        return self.leadership.is_leader

    async def step(self) -> bool:
        """One heartbeat, or one try to lead; whether this replica leads after it."""
        if self.leadership.is_leader:
            if await self.leadership.check():
                return True
            self._set(False)
            logger.warning("lost the leadership: polls stopped (%s); trying to lead again every %gs",
                           self.leadership.problem or "the heartbeat failed", self.interval)
            self.on_lose()
            return False
        if await self.leadership.try_lead():
            self._said = None
            self._set(True)
            logger.info("leading: polls run here (replica %s, %s)", self.leadership.replica,
                        self.leadership.where)
            self.on_lead()
            return True
        await self._say_why_not()
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Step every `interval` seconds until `stop` is set (the caller then `release`s)."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception:  # a bug in on_lead / on_lose must not end the loop: the next step retries
                logger.exception("the leader loop failed; trying again in %gs", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def release(self) -> None:
        """Give the leadership up, so another replica takes over at its next try (a rolling restart)."""
        was = self.leadership.is_leader
        await self.leadership.release()
        self._set(False)
        if was:
            logger.info("leadership released: another replica can take over")

    def _set(self, leading: bool) -> None:
        if self.metrics is not None:
            self.metrics.leading(leading)

    async def _say_why_not(self) -> None:
        """Log once why this replica does not lead: the database is out of reach, or who leads."""
        problem = self.leadership.problem
        key = problem if problem is not None else "standby"
        if key == self._said:
            return
        self._said = key
        if problem is not None:
            logger.warning("cannot reach PostgreSQL for the leadership (%s); trying again every %gs", problem,
                           self.interval)
            return
        try:
            holder = await self.leadership.holder()
        except LeadershipError:
            holder = None
        logger.info("standing by: %s leads; this replica takes over when it stops",
                    holder.describe() if holder is not None else "another replica")
