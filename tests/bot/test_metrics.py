"""/metrics moves with real polls, events, deliveries and commands; /healthz is 503 once a source is stale.

The real Poller (a fake source over httpx.MockTransport), Alerter, Dispatcher (a fake sender) and
`dispatch` share one Metrics; the HTTP server is the real aiohttp app on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.delivery import DeliveryError, Dispatcher
from leaderwatch.bot.pipeline.poller import Poller
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.bot.runtime.http_server import (
    Freshness,
    bound_port,
    build_web_app,
    health,
    stale_limit,
    start_http,
)
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.base import Board, Entry, Recording, Snapshot, SourceError, make_snapshot
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity, default_groups
from leaderwatch.storage import outbox
from leaderwatch.storage.db import _WritingDatabase as SqliteStore
from leaderwatch.storage.db import is_writable as database_writable
from leaderwatch.storage.db import open_db
from leaderwatch.storage.subscriptions import add_subscription
from tests.helpers import Clock, no_sleep

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BOARD = Board("fake/board", "Fake board", "score", url="https://fake.example/board")
DATA_URL = "https://fake.example/board.json"
OVERTAKE = "overtake groups=china,west"
WEST_LEADS = [["OpenAI-a", 80, "US"], ["DeepSeek-b", 70, "CN"], ["Mistral-c", 60, "FR"]]
CHINA_LEADS = [["OpenAI-a", 80, "US"], ["DeepSeek-b", 85, "CN"], ["Mistral-c", 60, "FR"]]


@dataclass
class Site:
    """The fake leaderboard site behind a MockTransport: rows as JSON, or an error status."""

    rows: list[list[Any]] = field(default_factory=list)
    status: int = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json=self.rows)


class FakeSource:
    """A source whose one board is a JSON list of [name, score, country] rows."""

    name = "fake"
    interval_seconds = 3600

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def boards(self) -> list[Board]:
        return [BOARD]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        body = await http.get(self.name, DATA_URL)
        if body is None:
            return []
        rows = sorted(json.loads(body), key=lambda r: -r[1])
        if not rows:
            raise SourceError(self.name, DATA_URL, "empty table")
        entries = [Entry(name=n, model_key=n.lower(), score=float(s), rank=i, organization=n.split("-")[0],
                         countries=(c,)) for i, (n, s, c) in enumerate(rows, start=1)]
        now = self.clock()
        return [make_snapshot(BOARD, now, now, entries)]

    def recordings(self, root: Path) -> list[Recording]:
        return []

    def load(self, recording: Recording) -> list[Snapshot]:
        return []


class FakeSender:
    """A Sender that records what it sends; raises the errors queued in `fail` first."""

    platform = "slack"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply, str]] = []
        self.fail: list[DeliveryError] = []

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((channel_id, reply, delivery_key))
        return delivery_key

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        raise AssertionError("no story here: nothing is edited")

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        return delivery_key if any(k == delivery_key for _, _, k in self.sent) else None


@dataclass
class Rig:
    """The pieces of the service, sharing one database, clock and Metrics, with the HTTP server up."""

    db: Database
    clock: Clock
    site: Site
    source: FakeSource
    metrics: Metrics
    poller: Poller
    dispatcher: Dispatcher
    sender: FakeSender
    ctx: CommandContext
    http: httpx.AsyncClient

    async def scrape(self) -> Scraped:
        """GET /metrics and parse it with prometheus_client's own parser."""
        response = await self.http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text) for s in family.samples}

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        response = await self.http.get("/healthz")
        return response.status_code, response.json()


Scraped = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample(scraped: Scraped, name: str, **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    db = open_db(tmp_path / "lw.db")
    clock = Clock(T0)
    site = Site(rows=WEST_LEADS)
    groups = default_groups()
    rules = default_rules(list(groups))
    metrics = Metrics(sources=["fake"], platforms=["slack"], kinds=["overtake", "new_leader"])
    metrics.watch_storage(db)
    client = httpx.AsyncClient(transport=httpx.MockTransport(site))
    alerter = Alerter(db, rules, groups, clock, metrics=metrics)
    fetcher = Fetcher(client, attempts=1, sleep=no_sleep)
    poller = Poller(db, fetcher, clock, lambda stored: alerter.stage(stored).announce, metrics=metrics)
    sender = FakeSender()
    dispatcher = Dispatcher(db, {"slack": sender}, clock, sleep=no_sleep, jitter=lambda: 0.0,
                            metrics=metrics)
    ctx = CommandContext(db=db, identity=Identity.load(), groups=groups, default_rules=rules,
                         boards={BOARD.id: BOARD}, clock=clock, metrics=metrics)
    freshness = Freshness.of({"fake": FakeSource.interval_seconds}, 3.0, started_at=T0)
    runner = await start_http(build_web_app(db, clock, metrics=metrics, freshness=freshness), 0, "127.0.0.1")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}")
    yield Rig(db, clock, site, FakeSource(clock), metrics, poller, dispatcher, sender, ctx, http)
    await http.aclose()
    await runner.cleanup()
    await client.aclose()
    db.close()


async def test_metrics_counters_move_with_polls_events_deliveries_and_commands(rig: Rig) -> None:
    add_subscription(rig.db, "slack", "C0ALERTS", "fake/*", OVERTAKE, "U0ADMIN", T0)
    before = await rig.scrape()
    assert sample(before, "leaderwatch_polls_total", source="fake") == 0
    assert sample(before, "leaderwatch_events_total", kind="overtake") == 0
    assert sample(before, "leaderwatch_deliveries_total", platform="slack") == 0
    assert sample(before, "leaderwatch_outbox_rows", status="pending") == 0

    rig.clock.advance(minutes=1)
    assert (await rig.poller.poll(rig.source)).ok  # the first standings: no event yet
    rig.clock.advance(hours=1)
    rig.site.status = 503
    assert not (await rig.poller.poll(rig.source)).ok
    rig.clock.advance(minutes=5)
    rig.site.status, rig.site.rows = 200, CHINA_LEADS  # DeepSeek overtakes OpenAI and leads the board
    assert (await rig.poller.poll(rig.source)).ok
    queued = await rig.scrape()
    assert sample(queued, "leaderwatch_polls_total", source="fake") == 3
    assert sample(queued, "leaderwatch_poll_failures_total", source="fake") == 1
    assert sample(queued, "leaderwatch_events_total", kind="overtake") == 1
    assert sample(queued, "leaderwatch_events_total", kind="new_leader") == 1
    assert sample(queued, "leaderwatch_outbox_rows", status="pending") == 1
    assert sample(queued, "leaderwatch_source_last_success_timestamp_seconds", source="fake") == \
        rig.clock.now.timestamp()
    assert sample(queued, "leaderwatch_source_consecutive_failures", source="fake") == 0

    rig.sender.fail.append(DeliveryError("HTTP 500", retryable=True))
    assert await rig.dispatcher.run_once() == 0
    rig.clock.advance(minutes=1)
    assert await rig.dispatcher.run_once() == 1
    assert [channel for channel, _, _ in rig.sender.sent] == ["C0ALERTS"]

    await dispatch(rig.ctx, Invocation("slack", "C0GENERAL", "U0USER", "ada", "boards"))
    await dispatch(rig.ctx, Invocation("discord", "123", "456", "bob", "xyzzy secret words"))
    after = await rig.scrape()
    assert sample(after, "leaderwatch_deliveries_total", platform="slack") == 1
    assert sample(after, "leaderwatch_delivery_failures_total", platform="slack", reason="retryable") == 1
    assert sample(after, "leaderwatch_outbox_rows", status="pending") == 0
    assert sample(after, "leaderwatch_outbox_rows", status="delivered") == 1
    assert sample(after, "leaderwatch_commands_total", command="boards", platform="slack", outcome="ok") == 1
    assert sample(after, "leaderwatch_command_seconds_count", command="boards", platform="slack") == 1
    assert sample(after, "leaderwatch_command_seconds_bucket", command="boards", platform="slack",
                  le="+Inf") == 1
    # Whatever people type, it never becomes a label value: unknown commands share one label.
    assert sample(after, "leaderwatch_commands_total", command="unknown", platform="discord",
                  outcome="user_error") == 1
    assert not any("xyzzy" in value for _, labels in after for _, value in labels)


class TwoBoardSource(FakeSource):
    """The fake board, and a copy of it as a second board of the same source."""

    def boards(self) -> list[Board]:
        return [BOARD, COPY]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        snaps = await super().fetch(http)
        return snaps + [replace(s, board=COPY) for s in snaps]


COPY = Board("fake/copy", "Fake copy", "score", url="https://fake.example/copy")


async def test_events_of_a_rolled_back_poll_are_neither_counted_nor_logged(rig: Rig, caplog) -> None:
    """The rules run inside the poll's transaction; their events are announced only once it commits."""
    staging = rig.poller.on_change
    assert staging is not None
    source = TwoBoardSource(rig.clock)
    rig.clock.advance(minutes=1)
    assert (await rig.poller.poll(source)).ok  # the first standings of both boards
    rig.site.rows = CHINA_LEADS

    def second_board_fails(stored: Stored) -> Callable[[], None] | None:
        if stored.snapshot.board == COPY:  # the first board's events are already staged
            raise sqlite3.OperationalError("disk I/O error")
        return staging(stored)

    rig.poller.on_change = second_board_fails
    rig.clock.advance(hours=1)
    with caplog.at_level(logging.INFO):
        assert not (await rig.poller.poll(source)).ok
    rolled_back = await rig.scrape()
    assert sample(rolled_back, "leaderwatch_events_total", kind="overtake") == 0
    assert not [r for r in caplog.records if r.getMessage().startswith("event ")]
    assert rig.db.execute("SELECT count(*) FROM events").fetchone()[0] == 0

    rig.poller.on_change = staging
    rig.clock.advance(hours=1)
    with caplog.at_level(logging.INFO):
        assert (await rig.poller.poll(source)).ok  # the same change, committed this time
    committed = await rig.scrape()
    assert sample(committed, "leaderwatch_events_total", kind="overtake") == 2  # one per board
    assert len([r for r in caplog.records if r.getMessage().startswith("event overtake")]) == 2


async def test_healthz_turns_503_when_a_source_fails_past_its_staleness_limit(rig: Rig) -> None:
    limit = stale_limit(FakeSource.interval_seconds, 3.0)
    assert limit == timedelta(hours=3, minutes=15)
    rig.clock.advance(minutes=1)
    assert (await rig.poller.poll(rig.source)).ok
    last_success = rig.clock.now
    status, body = await rig.healthz()
    assert status == 200 and body["status"] == "ok" and body["problems"] == []
    assert body["sources"]["fake"]["stale"] is False
    assert body["sources"]["fake"]["last_success_at"] == last_success.isoformat()

    rig.site.status = 500
    rig.clock.advance(hours=2)
    assert not (await rig.poller.poll(rig.source)).ok
    status, body = await rig.healthz()  # failing, but not for longer than its limit yet
    assert status == 200 and body["sources"]["fake"]["status"] == "failing"

    rig.clock.now = last_success + limit
    assert not (await rig.poller.poll(rig.source)).ok
    assert (await rig.healthz())[0] == 200  # exactly at the limit: still fresh
    rig.clock.advance(seconds=1)
    status, body = await rig.healthz()
    assert status == 503 and body["status"] == "unhealthy"
    assert body["sources"]["fake"]["stale"] is True
    assert body["sources"]["fake"]["consecutive_failures"] == 2
    assert body["sources"]["fake"]["last_error"] == "HTTP 500 after 1 attempts"
    assert body["problems"] == [f"source fake: no successful poll since {last_success.isoformat()}, more "
                                "than its 3h15m limit (2 failure(s) in a row)"]

    rig.site.status = 200
    assert (await rig.poller.poll(rig.source)).ok
    assert (await rig.healthz())[0] == 200


async def test_a_source_that_never_succeeded_is_stale_one_limit_after_start_up(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lw.db")
    freshness = Freshness.of({"fake": 3600, "other": 86400}, 3.0, started_at=T0)
    ok, body = health(db, T0 + timedelta(hours=3, minutes=15), freshness)
    assert ok and body["sources"]["fake"] == {  # type: ignore[index]
        "status": "not polled yet", "last_success_at": None, "last_attempt_at": None,
        "consecutive_failures": 0, "last_error": None, "stale": False, "stale_after_seconds": 11700}
    ok, body = health(db, T0 + timedelta(hours=3, minutes=16), freshness)
    assert not ok
    assert body["problems"] == ["source fake: no successful poll since start-up at 2025-03-01T12:00:00+00:00,"
                                " more than its 3h15m limit (0 failure(s) in a row)"]
    db.close()


async def test_a_success_before_start_up_counts_from_start_up(tmp_path: Path) -> None:
    """After a week's outage of the service itself, the sources get one limit to catch up."""
    from leaderwatch.storage import status as source_status

    db = open_db(tmp_path / "lw.db")
    source_status.record_success(db, "fake", T0 - timedelta(days=7))
    freshness = Freshness.of({"fake": 3600}, 3.0, started_at=T0)
    assert health(db, T0 + timedelta(hours=1), freshness)[0]
    assert not health(db, T0 + timedelta(hours=4), freshness)[0]
    db.close()


async def test_healthz_is_503_when_the_database_takes_no_writes(tmp_path: Path) -> None:
    path = tmp_path / "lw.db"
    open_db(path).close()
    # leaderwatch's own SQLite handle (what open_db returns), on a read-only connection.
    read_only = SqliteStore(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    assert not database_writable(read_only)
    ok, body = health(read_only, T0)
    assert not ok and body["database_writable"] is False
    assert body["problems"] == ["the database does not take writes (disk full, read-only, or locked)"]
    writable = open_db(path)
    assert database_writable(writable) and health(writable, T0)[0]
    assert "_leaderwatch_write_probe" not in writable.table_names()  # the probe commits nothing
    read_only.close()
    writable.close()


async def test_a_lock_held_by_another_program_makes_the_database_unwritable(tmp_path: Path) -> None:
    path = tmp_path / "lw.db"
    db = open_db(path)
    db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")
    assert not database_writable(db)
    other.rollback()
    other.close()
    assert database_writable(db)
    db.close()


async def test_outbox_depth_is_read_at_scrape_time(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lw.db")
    metrics = Metrics()
    metrics.watch_storage(db)
    depth = {s.labels["status"]: s.value for family in text_string_to_metric_families(
        metrics.exposition().decode()) for s in family.samples if s.name == "leaderwatch_outbox_rows"}
    assert depth == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0}
    assert outbox.depth(db) == {}
    db.close()


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(sources=["a"]), Metrics(sources=["a"])
    first.poll("a", ok=False)
    assert first.registry.get_sample_value("leaderwatch_poll_failures_total", {"source": "a"}) == 1
    assert second.registry.get_sample_value("leaderwatch_poll_failures_total", {"source": "a"}) == 0
