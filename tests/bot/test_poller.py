"""Polling: store what changed, record health, back off; the app wiring, scheduling and run loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlite_utils import Database

from leaderwatch.bot.app import App, build_app, run, schedule
from leaderwatch.bot.pipeline.poller import FIRST_RETRY_SECONDS, Poller, retry_delay
from leaderwatch.bot.pipeline.store import Stored, store_all
from leaderwatch.bot.settings import Settings, SourceSettings
from leaderwatch.sources.base import Board, Recording, Snapshot, SourceError, make_snapshot
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import snapshots as store
from leaderwatch.storage import status
from leaderwatch.storage.db import open_db
from tests.helpers import Clock, no_sleep, wait_until

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SITE = "https://fake.example"


def ticking_clock() -> Clock:
    """A clock starting at T0 where every reading is one minute after the previous one."""
    return Clock(T0, tick=timedelta(minutes=1))


def board(name: str) -> Board:
    """A fake board `fake/<name>`."""
    return Board(f"fake/{name}", f"Fake {name}", "score", url=f"{SITE}/{name}")


def rows(n: int, bump: float = 0.0) -> list[dict[str, Any]]:
    """n rows of the tiny JSON format the fake site serves."""
    return [{"model": f"model-{i}", "score": 100.0 - i + bump} for i in range(n)]


class FakeSource:
    """A source reading one tiny JSON list per board through the Fetcher; 304 skips that board."""

    def __init__(self, identity: Identity, clock: Callable[[], datetime], names: Sequence[str] = ("a",),
                 name: str = "fake", interval_seconds: int = 3600) -> None:
        self.identity = identity
        self.clock = clock
        self.name = name
        self.interval_seconds = interval_seconds
        self._boards = [board(n) for n in names]

    def boards(self) -> list[Board]:
        """The fake boards."""
        return list(self._boards)

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """GET every board's JSON and parse it; [] when all were 304."""
        snaps = []
        for b in self._boards:
            url = f"{SITE}/{b.id.split('/')[1]}.json"
            body = await http.get(self.name, url)
            if body is None:
                continue
            try:
                data = json.loads(body)
                entries = [self.identity.entry(r["model"], float(r["score"]), i)
                           for i, r in enumerate(data, start=1)]
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(self.name, url, f"bad JSON: {exc}") from None
            if not entries:
                raise SourceError(self.name, url, "empty table")
            now = self.clock()
            snaps.append(make_snapshot(b, now, now, entries, origin="fake-json"))
        return snaps

    def recordings(self, root: Path) -> list[Recording]:
        """No recorded history."""
        return []

    def load(self, recording: Recording) -> list[Snapshot]:
        """Nothing to load."""
        return []


@dataclass
class Site:
    """The fake site behind a MockTransport: per-path rows or a status code, ETags optional."""

    content: dict[str, Any] = field(default_factory=dict)  # path -> rows, raw bytes, or an int status
    etags: bool = True
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        served = self.content[request.url.path]
        if isinstance(served, int):
            return httpx.Response(served)
        body = served if isinstance(served, bytes) else json.dumps(served).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if self.etags and request.headers.get("if-none-match") == etag:
            return httpx.Response(304)
        return httpx.Response(200, content=body, headers={"ETag": etag} if self.etags else {})


def count(db: Database, table: str, where: str = "TRUE", params: Sequence[Any] = ()) -> int:
    """Rows in a table."""
    return int(db.execute(f"SELECT count(*) FROM {table} WHERE {where}", list(params)).fetchone()[0])


@pytest.fixture
def db(any_db: Database) -> Database:
    """A new, empty database on each store (SQLite, PostgreSQL)."""
    return any_db


@dataclass
class Rig:
    """A poller over a fake site, its database, clock and change collector."""

    site: Site
    fetcher: Fetcher
    poller: Poller
    db: Database
    clock: Clock
    changes: list[Stored]

    def source(self, identity: Identity, names: Sequence[str] = ("a",)) -> FakeSource:
        return FakeSource(identity, self.clock, names)


@pytest.fixture
async def rig(db):
    site = Site()
    clock = ticking_clock()
    changes: list[Stored] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(site))
    fetcher = Fetcher(client, attempts=2, sleep=no_sleep)
    yield Rig(site, fetcher, Poller(db, fetcher, clock, changes.append), db, clock, changes)
    await client.aclose()


# --- Poller.poll ---------------------------------------------------------------------------------


async def test_successful_poll_stores_snapshot_and_entries_and_records_ok(rig, identity, caplog):
    caplog.set_level(logging.INFO, logger="leaderwatch.bot.pipeline.poller")
    rig.site.content["/a.json"] = rows(5)
    result = await rig.poller.poll(rig.source(identity))

    assert result.ok and result.error is None and result.failures == 0
    assert [s.snapshot.board.id for s in result.changed] == ["fake/a"]
    assert count(rig.db, "snapshots") == 1
    assert count(rig.db, "entries") == 5
    latest = store.latest_snapshot(rig.db, "fake/a")
    assert latest is not None
    assert [(e.name, e.rank, e.score) for e in latest.entries][:2] == [("model-0", 1, 100.0),
                                                                        ("model-1", 2, 99.0)]
    assert latest.origin == "fake-json"
    st = status.status_of(rig.db, "fake")
    assert st is not None
    assert (st.status, st.consecutive_failures, st.last_error) == ("ok", 0, None)
    assert st.last_success_at == st.last_attempt_at is not None
    assert [c.snapshot.board.id for c in rig.changes] == ["fake/a"]
    assert rig.changes[0].result.stored and rig.changes[0].result.previous_id is None
    assert "poll fake: 1 board(s), changed: fake/a (5 rows)" in caplog.text


async def test_a_failing_report_after_the_commit_keeps_the_stored_change(rig, identity, caplog):
    """What `on_change` returns runs after the commit; if it fails, the poll still stored its change."""
    reported: list[str] = []

    def on_change(stored: Stored) -> Callable[[], None]:
        def report() -> None:
            reported.append(stored.snapshot.board.id)
            raise OSError("console closed")
        return report

    rig.poller.on_change = on_change
    rig.site.content["/a.json"] = rows(5)
    rig.site.content["/b.json"] = rows(4)
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.pipeline.poller"):
        result = await rig.poller.poll(rig.source(identity, ("a", "b")))
    assert result.ok and [s.snapshot.board.id for s in result.changed] == ["fake/a", "fake/b"]
    assert reported == ["fake/a", "fake/b"]  # one failing report does not stop the next
    assert count(rig.db, "snapshots") == 2
    assert [r.getMessage() for r in caplog.records] == ["poll fake: reporting a stored change failed"] * 2


async def test_unchanged_content_stores_nothing_new_but_moves_last_seen(rig, identity):
    rig.site.etags = False  # the server sends the full body again
    rig.site.content["/a.json"] = rows(5)
    source = rig.source(identity)
    await rig.poller.poll(source)
    [(first_seen,)] = rig.db.execute("SELECT last_seen_at FROM snapshots").fetchall()

    result = await rig.poller.poll(source)

    assert result.ok and result.changed == []
    assert len(result.stored) == 1 and not result.stored[0].result.stored
    assert count(rig.db, "snapshots") == 1
    assert count(rig.db, "entries") == 5
    [(last_seen,)] = rig.db.execute("SELECT last_seen_at FROM snapshots").fetchall()
    assert last_seen > first_seen
    assert len(rig.changes) == 1  # only the first poll reported a change


async def test_changed_content_stores_a_new_snapshot(rig, identity):
    source = rig.source(identity)
    rig.site.content["/a.json"] = rows(5)
    await rig.poller.poll(source)
    rig.site.content["/a.json"] = rows(6, bump=1.0)
    result = await rig.poller.poll(source)
    assert [s.snapshot.board.id for s in result.changed] == ["fake/a"]
    assert result.changed[0].result.previous_id == rig.changes[0].result.snapshot_id
    assert count(rig.db, "snapshots") == 2
    assert count(rig.db, "entries") == 11


async def test_not_modified_poll_is_ok_and_sends_validators(rig, identity, caplog):
    caplog.set_level(logging.INFO, logger="leaderwatch.bot.pipeline.poller")
    rig.site.content["/a.json"] = rows(3)
    source = rig.source(identity)
    await rig.poller.poll(source)
    result = await rig.poller.poll(source)
    assert result.ok and result.stored == ()
    assert "if-none-match" in rig.site.requests[-1].headers
    assert count(rig.db, "snapshots") == 1
    assert "poll fake: not modified since the last poll" in caplog.text
    st = status.status_of(rig.db, "fake")
    assert st is not None and st.status == "ok"


async def test_failing_polls_are_recorded_and_degrade_after_three(rig, identity, caplog):
    caplog.set_level(logging.INFO)
    rig.site.content["/a.json"] = 503
    source = rig.source(identity)
    seen = []
    for expected in (1, 2, 3, 4):
        result = await rig.poller.poll(source)
        assert not result.ok
        assert result.failures == expected
        assert result.error is not None and "HTTP 503 after 2 attempts" in result.error
        st = status.status_of(rig.db, "fake")
        assert st is not None
        seen.append((st.status, st.consecutive_failures))
        assert st.last_error == "HTTP 503 after 2 attempts"
        assert st.last_success_at is None
    assert seen == [("failing", 1), ("failing", 2), ("degraded", 3), ("degraded", 4)]
    assert len(rig.site.requests) == 8  # 2 attempts per poll

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 4
    assert all(r.name == "leaderwatch.bot.pipeline.poller" for r in errors)
    assert "poll fake failed (1 in a row): HTTP 503 after 2 attempts" in errors[0].getMessage()
    assert f"[{SITE}/a.json]" in errors[0].getMessage()
    assert "(3 in a row, degraded)" in errors[2].getMessage()
    assert count(rig.db, "snapshots") == 0 and count(rig.db, "entries") == 0
    assert rig.changes == []

    # One success clears the failure count.
    rig.site.content["/a.json"] = rows(2)
    assert (await rig.poller.poll(source)).ok
    st = status.status_of(rig.db, "fake")
    assert st is not None
    assert (st.status, st.consecutive_failures, st.last_error) == ("ok", 0, None)


async def test_network_errors_are_a_recorded_failure(rig, identity):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    poller = Poller(rig.db, Fetcher(client, attempts=3, sleep=no_sleep), rig.clock)
    result = await poller.poll(rig.source(identity))
    await client.aclose()
    assert not result.ok and result.failures == 1
    st = status.status_of(rig.db, "fake")
    assert st is not None and st.last_error is not None
    assert st.last_error.startswith("network error: ConnectError")
    assert st.last_error.endswith("after 3 attempts")


async def test_parse_error_stores_nothing(rig, identity):
    rig.site.content["/a.json"] = b'[{"model": "x", "score": "n/a"}]'
    result = await rig.poller.poll(rig.source(identity))
    assert not result.ok and "bad JSON" in (result.error or "")
    assert count(rig.db, "snapshots") == 0


async def test_shrunk_snapshot_is_held_and_nothing_stored(rig, identity, caplog):
    source = rig.source(identity)
    rig.site.content["/a.json"] = rows(10)
    await rig.poller.poll(source)
    rig.site.content["/a.json"] = rows(4, bump=1.0)

    result = await rig.poller.poll(source)

    assert not result.ok and result.failures == 1 and result.drifted
    assert "fake/a: 4 rows where the last stored table had 10; held" in (result.error or "")
    st = status.status_of(rig.db, "fake")
    assert st is not None and st.status == "drifted"
    assert st.drift is not None and "held until the next poll returns the same table" in st.drift
    assert count(rig.db, "snapshots") == 1 and count(rig.db, "entries") == 10
    assert len(rig.changes) == 1
    assert [r.levelno for r in caplog.records if "4 rows" in r.getMessage()] == [logging.WARNING]

    # Exactly half is still accepted (the check refuses fewer than half).
    rig.site.content["/a.json"] = rows(5, bump=1.0)
    assert (await rig.poller.poll(source)).ok
    assert count(rig.db, "snapshots") == 2


async def test_no_half_of_a_two_board_fetch_is_stored(rig, identity):
    source = rig.source(identity, names=("a", "b"))
    rig.site.content.update({"/a.json": rows(4), "/b.json": rows(10)})
    first = await rig.poller.poll(source)
    assert first.ok and len(first.changed) == 2
    assert count(rig.db, "snapshots") == 2

    # Board a changed fine, but board b came back as a partial table: neither may be stored.
    rig.site.content.update({"/a.json": rows(4, bump=5.0), "/b.json": rows(3)})
    result = await rig.poller.poll(source)
    assert not result.ok and "fake/b: 3 rows where the last stored table had 10" in (result.error or "")
    assert count(rig.db, "snapshots") == 2 and count(rig.db, "entries") == 14
    latest_a = store.latest_snapshot(rig.db, "fake/a")
    assert latest_a is not None and latest_a.entries[0].score == 100.0

    # Board b also failing outright (parse error after a's good fetch): still nothing from a.
    rig.site.content["/b.json"] = b"[{"
    assert not (await rig.poller.poll(source)).ok
    assert count(rig.db, "snapshots") == 2


async def test_change_seen_in_a_failed_poll_is_not_lost_to_a_304(rig, identity):
    """Board a's new ETag came in a poll that stored nothing; the next poll must fetch a again."""
    source = rig.source(identity, names=("a", "b"))
    rig.site.content.update({"/a.json": rows(4), "/b.json": rows(4)})
    await rig.poller.poll(source)
    validators = dict(rig.fetcher.validators)

    rig.site.content.update({"/a.json": rows(4, bump=5.0), "/b.json": 503})
    assert not (await rig.poller.poll(source)).ok
    assert rig.fetcher.validators == validators  # a's new ETag was rolled back

    rig.site.content["/b.json"] = rows(4)
    result = await rig.poller.poll(source)
    assert result.ok
    assert [s.snapshot.board.id for s in result.changed] == ["fake/a"]
    latest_a = store.latest_snapshot(rig.db, "fake/a")
    assert latest_a is not None and latest_a.entries[0].score == 105.0
    # After a stored poll the validators are kept: the next poll is all 304s.
    assert (await rig.poller.poll(source)).stored == ()


async def test_unexpected_exception_is_recorded_logged_and_rolls_back_validators(rig, identity, caplog):
    class Broken(FakeSource):
        async def fetch(self, http: Fetcher) -> list[Snapshot]:
            await http.get(self.name, f"{SITE}/a.json")
            raise RuntimeError("parser bug")

    rig.site.content["/a.json"] = rows(3)
    with caplog.at_level(logging.ERROR):
        result = await rig.poller.poll(Broken(identity, rig.clock))
    assert not result.ok and result.error == "internal error RuntimeError (traceback in the log)"
    assert rig.fetcher.validators == {}
    st = status.status_of(rig.db, "fake")
    assert st is not None and st.consecutive_failures == 1
    assert any(r.exc_info and "parser bug" in str(r.exc_info[1]) for r in caplog.records)


async def test_poll_all_polls_each_source(rig, identity):
    rig.site.content.update({"/a.json": rows(2), "/b.json": 404})
    ok = FakeSource(identity, rig.clock, ("a",), name="one")
    bad = FakeSource(identity, rig.clock, ("b",), name="two")
    results = await rig.poller.poll_all([ok, bad])
    assert [(r.source, r.ok) for r in results] == [("one", True), ("two", False)]
    assert results[1].error is not None and "HTTP 404" in results[1].error
    assert len(rig.site.requests) == 2  # a 404 is not retried


# --- store_all --------------------------------------------------------------------------------------


def snap(identity: Identity, name: str, n: int, at: datetime, *, truncated: bool = False) -> Snapshot:
    entries = [identity.entry(f"model-{i}", 100.0 - i, i + 1) for i in range(n)]
    return make_snapshot(board(name), at, at, entries, truncated=truncated)


def test_store_all_is_all_or_nothing(db, identity):
    good = snap(identity, "a", 3, T0)
    naive = snap(identity, "b", 3, datetime(2025, 3, 1, 12, 0))  # fails while being written
    with pytest.raises(ValueError, match="naive datetime"):
        store_all(db, [good, naive], "fake")
    assert count(db, "snapshots") == 0 and count(db, "entries") == 0


def test_store_all_shrink_check(db, identity):
    store_all(db, [snap(identity, "a", 10, T0)], "fake")
    with pytest.raises(SourceError, match="only 2 rows where the last stored snapshot had 10") as info:
        store_all(db, [snap(identity, "a", 2, T0 + timedelta(days=1))], "https://fake.example/a.json")
    assert info.value.source == "fake" and info.value.url == "https://fake.example/a.json"
    # A published top N is not a broken table, and importers may switch the check off.
    store_all(db, [snap(identity, "a", 2, T0 + timedelta(days=2), truncated=True)], "fake")
    store_all(db, [snap(identity, "a", 1, T0 + timedelta(days=3))], "fake", check_shrink=False)
    assert count(db, "snapshots") == 3


# --- retry_delay ------------------------------------------------------------------------------------


def test_retry_delay_grows_and_is_capped_at_the_interval():
    delays = [retry_delay(n, 3600) for n in range(1, 10)]
    assert delays[:5] == [FIRST_RETRY_SECONDS * 2**k for k in range(5)] == [30, 60, 120, 240, 480]
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
    assert delays[-1] == 3600
    assert max(retry_delay(n, 3600) for n in range(1, 100)) == 3600
    assert retry_delay(0, 3600) == 30
    assert retry_delay(1, 20) == 20
    assert retry_delay(3, 100) == 100


# --- build_app / schedule / run -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the app keeps its data, on each store in turn: the file tmp_path/lw.db, or this test
    process's PostgreSQL schema (emptied) by its URL, as `LEADERWATCH_DB` would name them."""
    if request.param == "sqlite":
        return str(tmp_path / "lw.db")
    from tests.conftest import empty_postgres

    empty_postgres(request.getfixturevalue("postgres_session_db"))
    return str(request.getfixturevalue("postgres_schema"))


def make_app(target: str | Path, identity: Identity, handler: Callable[[httpx.Request], httpx.Response],
             sources_settings: dict[str, SourceSettings] | None = None,
             names: Sequence[str] = ("fake",), intervals: Sequence[int] = (3600,)
             ) -> tuple[App, list[Stored]]:
    """An App over `target` (a SQLite file or a PostgreSQL URL; a folder: its lw.db), a mock transport and
    fake sources."""
    changes: list[Stored] = []
    db_path = str(target / "lw.db") if isinstance(target, Path) else target
    settings = Settings(db_path=db_path, sources=sources_settings or {})
    clock = ticking_clock()
    srcs = [FakeSource(identity, clock, ("a",), name=n, interval_seconds=i)
            for n, i in zip(names, intervals, strict=True)]
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = build_app(settings, client=client, sources=srcs, on_change=changes.append, clock=clock)
    app.fetcher.sleep = no_sleep
    return app, changes


async def test_build_app_wires_the_parts_and_persists_validators(target, identity):
    site = Site(content={"/a.json": rows(3)})
    app, changes = make_app(target, identity, site)
    try:
        assert app.db.backend == ("postgres" if target.startswith("postgresql:") else "sqlite")
        if app.db.backend == "sqlite":
            assert Path(target).is_file()
        assert app.fetcher.client is app.client
        assert app.poller.fetcher is app.fetcher and app.poller.db is app.db
        assert [s.name for s in app.sources] == ["fake"]
        result = await app.poller.poll(app.sources[0])
        assert result.ok
        assert [c.snapshot.board.id for c in changes] == ["fake/a"]
        app.save_validators()
    finally:
        await app.aclose()
    assert app.client.is_closed
    reopened = open_db(target)
    try:
        assert status.load_validators(reopened) == {
            f"{SITE}/a.json": (app.fetcher.validators[f"{SITE}/a.json"].etag, None)}
    finally:
        reopened.close()

    # A restart loads the stored validators: the first request is conditional and gets a 304.
    again, changes = make_app(target, identity, site)
    try:
        assert set(again.fetcher.validators) == {f"{SITE}/a.json"}
        result = await again.poller.poll(again.sources[0])
        assert result.ok and result.stored == () and changes == []
        assert "if-none-match" in site.requests[-1].headers
    finally:
        await again.aclose()


async def test_enabled_sources_and_intervals_follow_the_config(target, identity):
    app, _ = make_app(target, identity, Site(), names=("one", "two", "three"), intervals=(3600, 7200, 900),
                      sources_settings={"two": SourceSettings(enabled=False),
                                        "three": SourceSettings(interval_seconds=600)})
    try:
        assert [s.name for s in app.enabled_sources()] == ["one", "three"]
        assert [app.interval(s) for s in app.sources] == [3600, 7200, 600]
    finally:
        await app.aclose()


async def test_schedule_adds_one_polite_job_per_enabled_source(target, identity):
    app, _ = make_app(target, identity, Site(), names=("one", "two", "three"), intervals=(3600, 7200, 900),
                      sources_settings={"two": SourceSettings(enabled=False),
                                        "three": SourceSettings(interval_seconds=600)})
    scheduler = AsyncIOScheduler(timezone=UTC)
    try:
        before = datetime.now(UTC)
        schedule(app, scheduler)
        after = datetime.now(UTC)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"one", "three", "reports"}  # and the hourly check for weekly race reports
        for job_id, interval, offset in (("one", 3600, 0), ("three", 600, 2)):
            job = jobs[job_id]
            assert isinstance(job.trigger, IntervalTrigger)
            assert job.trigger.interval == timedelta(seconds=interval)
            assert job.trigger.jitter == interval // 20
            assert job.max_instances == 1
            assert job.coalesce is True
            assert job.misfire_grace_time == interval
            assert job.name == f"poll {job_id}"
            # First polls are staggered 2 s apart from start-up (wall-clock time, which the
            # scheduler runs on, not the app's clock) instead of one interval away.
            stagger = timedelta(seconds=offset)
            assert before + stagger <= job.next_run_time <= after + stagger
    finally:
        await app.aclose()


async def test_run_logs_records_and_reschedules_a_failing_source(target, identity, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    attempts: list[httpx.Request] = []
    refused_at: list[datetime] = []
    schedulers: list[AsyncIOScheduler] = []
    moves: list[tuple[datetime, dict[str, Any]]] = []  # (when, changes) of each modify_job call

    class Recorded(AsyncIOScheduler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schedulers.append(self)

        def modify_job(self, job_id: str, jobstore: str | None = None, **changes: Any) -> Any:
            job = super().modify_job(job_id, jobstore, **changes)
            moves.append((datetime.now(UTC), changes))
            return job

    monkeypatch.setattr("apscheduler.schedulers.asyncio.AsyncIOScheduler", Recorded)

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        refused_at.append(datetime.now(UTC))
        raise httpx.ConnectError("connection refused", request=request)

    app, changes = make_app(target, identity, refuse)
    app.fetcher.attempts = 2
    stop = asyncio.Event()
    task = asyncio.create_task(run(app, stop))
    try:
        await wait_until(lambda: moves, message="the failed poll to reschedule its job", running=task)
        [scheduler] = schedulers
        [job] = [j for j in scheduler.get_jobs() if j.id == "fake"]
        [(moved_at, moved)] = moves
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        # The scheduler's shutdown runs as a loop callback.
        await wait_until(lambda: not any(s.running for s in schedulers), timeout=5,
                         message="the scheduler to shut down")
        await app.aclose()

    assert task.done() and not task.cancelled() and task.exception() is None
    assert not scheduler.running
    assert len(attempts) == 2  # one poll of two attempts, no immediate re-poll
    # Retried after the back-off, not a whole interval (3600 s) later: the one run ahead is the back-off
    # after the failed attempt, set between that attempt and the reschedule; the interval stays.
    delay = timedelta(seconds=retry_delay(1, 3600))
    assert set(moved) == {"next_run_time"} and job.next_run_time == moved["next_run_time"]
    assert refused_at[-1] + delay <= job.next_run_time <= moved_at + delay
    assert job.trigger.interval == timedelta(seconds=3600)
    db = open_db(target)
    st = status.status_of(db, "fake")
    db.close()
    assert st is not None
    assert (st.status, st.consecutive_failures) == ("failing", 1)
    assert st.last_error is not None and "ConnectError" in st.last_error
    assert st.last_error.endswith("after 2 attempts")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["leaderwatch.bot.pipeline.poller"]
    assert "poll fake failed (1 in a row): network error: ConnectError" in errors[0].getMessage()
    assert f"next attempt for fake in {retry_delay(1, 3600)}s" in caplog.text
    assert "leaderwatch running" in caplog.text and "fake every 3600s" in caplog.text
    assert "leaderwatch stopped" in caplog.text
    assert changes == []


async def test_retention_runs_daily_when_set_and_thins_old_history(target, identity, caplog):
    app, _ = make_app(target, identity, Site())
    when = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (1, 2, 3, 4, 5)] + [datetime(2024, 6, 1, tzinfo=UTC)]
    for i, at in enumerate(when):  # five different tables on one old day, then a later one
        store_all(app.db, [replace(snap(identity, "a", 3, at), content_hash=f"h{i}")], "test")
    board_id = board("a").id
    app.settings = replace(app.settings, retention_days=30)
    scheduler = AsyncIOScheduler(timezone=UTC)
    try:
        schedule(app, scheduler)
        job = next(j for j in scheduler.get_jobs() if j.id == "retention")
        assert str(job.trigger.fields[5]) == "4" and job.max_instances == 1  # hour field: 04:17 UTC
        with caplog.at_level(logging.INFO):
            job.func()
        # Kept: the board's first, the last of that day (also the one before the latest), the latest.
        kept = [r[0] for r in app.db.execute("SELECT content_hash FROM snapshots WHERE board_id = ? "
                                             "ORDER BY as_of", [board_id]).fetchall()]
        assert kept == ["h0", "h4", "h5"]
        assert any(r.getMessage().startswith("retention:") for r in caplog.records)
    finally:
        await app.aclose()
