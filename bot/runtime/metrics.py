"""Prometheus metrics: one `Metrics` per process, built in the composition root, owning its registry.

Counters move where things happen (the poller, the alerter, the dispatcher, `dispatch`); gauges
that mirror stored state (outbox rows per status, each source's last success) are read from the
database at scrape time, so they are right after a restart and never drift from the tables.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from leaderwatch.storage import outbox, status
from leaderwatch.storage.db import Database

logger = logging.getLogger(__name__)

OUTBOX_STATUSES = ("pending", "sending", "delivered", "failed")
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
"""Seconds; 3 s is Slack's and Discord's deadline to answer a command, so it is a bucket edge."""
UNKNOWN_COMMAND = "unknown"
"""The label of command lines naming no command (user text never becomes a label value)."""
RATE_WINDOW = 60.0
"""Seconds over which `leaderwatch_delivery_rate` counts the messages delivered."""


class StorageCollector:
    """Gauges read from the database at each scrape: outbox rows per status, per-source poll state
    (last success, failures in a row, drifted)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    def describe(self) -> list[Metric]:
        """The families without samples (so registering does not query the database)."""
        return list(self._families())

    def _families(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("leaderwatch_outbox_rows", "Outbox rows (alerts to deliver) per status",
                                labels=["status"])
        yield GaugeMetricFamily("leaderwatch_source_last_success_timestamp_seconds",
                                "Unix time of each source's last successful poll", labels=["source"])
        yield GaugeMetricFamily("leaderwatch_source_consecutive_failures",
                                "Failed polls of each source since its last success", labels=["source"])
        yield GaugeMetricFamily("leaderwatch_outbox_oldest_age_seconds",
                                "Per platform, how long the longest-waiting alert due for delivery has "
                                "waited (0 when none waits; held rows are not waiting)", labels=["platform"])
        yield GaugeMetricFamily("leaderwatch_source_drifted",
                                "1 while a source's origin answers in a shape its parser does not know "
                                "(or a shrunk table is held for confirmation), else 0", labels=["source"])

    def collect(self) -> Iterator[Metric]:
        """Read the outbox depth and the source status table now."""
        depth_family, success_family, failures_family, age_family, drifted_family = self._families()
        try:
            now = self.clock()
            depth = outbox.depth(self.db)
            oldest = outbox.oldest_due(self.db, now)
            statuses = status.all_statuses(self.db)
        except Exception:  # noqa: BLE001 - a locked or broken database must not break the whole scrape
            logger.warning("metrics: cannot read the outbox and source status", exc_info=True)
            return
        for name in sorted(set(OUTBOX_STATUSES) | set(depth)):
            depth_family.add_metric([name], depth.get(name, 0))
        for name, st in sorted(statuses.items()):
            if st.last_success_at is not None:
                success_family.add_metric([name], st.last_success_at.timestamp())
            failures_family.add_metric([name], st.consecutive_failures)
            drifted_family.add_metric([name], 1 if st.is_drifted else 0)
        for platform, since in sorted(oldest.items()):
            age_family.add_metric([platform], max(0.0, (now - since).total_seconds()))
        yield depth_family
        yield success_family
        yield failures_family
        yield age_family
        yield drifted_family


class RateCollector:
    """`leaderwatch_delivery_rate`: messages delivered per second over the last minute, per platform."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        """The family without samples."""
        return [self._family()]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("leaderwatch_delivery_rate",
                                 f"Chat messages delivered per second over the last {RATE_WINDOW:.0f} s, "
                                 "per platform", labels=["platform"])

    def collect(self) -> Iterator[Metric]:
        """The rate now."""
        family = self._family()
        for platform, rate in sorted(self.metrics.delivery_rates().items()):
            family.add_metric([platform], rate)
        yield family


class Metrics:
    """The service's counters and histograms, in a registry of their own (no process globals).

    `sources`, `platforms` and `kinds` pre-create their label values at zero, so a rate can be
    computed from the first poll, delivery or event on.
    """

    def __init__(self, *, sources: Iterable[str] = (), platforms: Iterable[str] = (),
                 kinds: Iterable[str] = (), monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.monotonic = monotonic
        self._recent: dict[str, deque[float]] = {}
        self.polls = Counter("leaderwatch_polls", "Polls of each source, whatever their outcome",
                             ["source"], registry=r)
        self.poll_failures = Counter("leaderwatch_poll_failures", "Failed polls of each source",
                                     ["source"], registry=r)
        self.events = Counter("leaderwatch_events", "Events the rules produced, per kind", ["kind"],
                              registry=r)
        self.deliveries = Counter("leaderwatch_deliveries",
                                  "Chat messages delivered (an alert or a digest), per platform",
                                  ["platform"], registry=r)
        self.delivery_failures = Counter(
            "leaderwatch_delivery_failures",
            "Failed delivery attempts per platform and reason (retryable, channel_gone, permanent)",
            ["platform", "reason"], registry=r)
        self.charts_skipped = Counter("leaderwatch_alert_charts_skipped",
                                      "Alerts sent without their chart because the platform's upload rate "
                                      "was used up, per platform", ["platform"], registry=r)
        self.commands = Counter("leaderwatch_commands",
                                "Chat commands answered, per command, platform and outcome "
                                "(ok, user_error, busy: the database was locked or the disk full, error)",
                                ["command", "platform", "outcome"], registry=r)
        self.command_seconds = Histogram("leaderwatch_command_seconds",
                                         "Seconds from a command line to its reply, per command and platform",
                                         ["command", "platform"], buckets=COMMAND_BUCKETS, registry=r)
        self.leader = Gauge("leaderwatch_leader",
                            "1 while this replica holds the leadership (it runs the polls), else 0",
                            registry=r)
        for source in sources:
            self.polls.labels(source)
            self.poll_failures.labels(source)
        for platform in platforms:
            self.deliveries.labels(platform)
            self._recent[platform] = deque()
        self.register(RateCollector(self))
        for kind in kinds:
            self.events.labels(kind)

    def watch_storage(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        """Export the outbox depth and age and each source's last success, read from `db` at scrape time
        (`clock`: the service's, for the age of the oldest row due)."""
        self.register(StorageCollector(db, clock))

    def register(self, collector: Collector) -> None:
        """Add a custom collector to this registry."""
        self.registry.register(collector)

    def poll(self, source: str, ok: bool) -> None:
        """One poll of `source` finished."""
        self.polls.labels(source).inc()
        if not ok:
            self.poll_failures.labels(source).inc()

    def event(self, kind: str) -> None:
        """The rules produced one event of `kind`."""
        self.events.labels(kind).inc()

    def delivered(self, platform: str) -> None:
        """One message reached `platform`."""
        self.deliveries.labels(platform).inc()
        recent = self._recent.setdefault(platform, deque())
        recent.append(self.monotonic())
        self._forget(recent)

    def _forget(self, recent: deque[float]) -> None:
        start = self.monotonic() - RATE_WINDOW
        while recent and recent[0] < start:
            recent.popleft()

    def delivery_rates(self) -> dict[str, float]:
        """Per platform, messages delivered per second over the last `RATE_WINDOW` seconds."""
        for recent in self._recent.values():
            self._forget(recent)
        return {platform: len(recent) / RATE_WINDOW for platform, recent in self._recent.items()}

    def leading(self, is_leader: bool) -> None:
        """This replica gained (True) or lost (False) the leadership."""
        self.leader.set(1 if is_leader else 0)

    def chart_skipped(self, platform: str) -> None:
        """An alert went without its chart (the upload rate was used up)."""
        self.charts_skipped.labels(platform).inc()

    def delivery_failed(self, platform: str, reason: str) -> None:
        """One delivery attempt failed: `retryable`, `channel_gone` or `permanent`."""
        self.delivery_failures.labels(platform, reason).inc()

    def command(self, command: str, platform: str, seconds: float, outcome: str) -> None:
        """One command answered in `seconds`; outcome `ok`, `user_error`, `busy` or `error`."""
        self.commands.labels(command, platform, outcome).inc()
        self.command_seconds.labels(command, platform).observe(seconds)

    def exposition(self) -> bytes:
        """Everything in the Prometheus text format (what `/metrics` serves)."""
        return generate_latest(self.registry)

