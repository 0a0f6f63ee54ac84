"""A locked, shared or full database (issue 14 item 4).

Another program holding the write lock: read-only commands answer and write nothing; a poll that meets
the lock waits the busy timeout, fails in one plain line, never raises, records the failure once the
lock is gone and backs off; a full disk is said in those words, once. One `leaderwatch run` per database
file, the second one naming the first; kill -9 of the first leaves no stale lock (real processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from leaderwatch.bot.app import App, build_app, schedule
from leaderwatch.bot.cli.main import build_parser, execute
from leaderwatch.bot.pipeline.poller import retry_delay
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.base import Board, Snapshot, make_snapshot
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import source_names
from leaderwatch.storage import snapshots as store
from leaderwatch.storage import status
from leaderwatch.storage.db import RunLock, lock_path, open_db
from tests.helpers import Clock, no_sleep, run_cli, wait_until

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BOARD = Board("fake/a", "Fake a", "score", url="https://fake.example/a")


class OneBoard:
    """A source whose board gains a point at each fetch (every poll stores a new table)."""

    name = "fake"
    interval_seconds = 3600

    def __init__(self, identity: Identity, clock: Clock, rows: int = 5) -> None:
        self.identity, self.clock, self.fetches, self.rows = identity, clock, 0, rows

    def boards(self) -> list[Board]:
        return [BOARD]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        self.fetches += 1
        entries = [self.identity.entry(f"model-{i}", 1000.0 - i + self.fetches, i)
                   for i in range(1, self.rows + 1)]
        return [make_snapshot(BOARD, self.clock(), self.clock(), entries)]


class WriteLock:
    """Another connection holding the database's write lock (an open write transaction) until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO http_validators (url, etag) VALUES ('https://other.example', 'x')")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("ROLLBACK")
            self.held = False

    def close(self) -> None:
        self.release()
        self.conn.close()


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[WriteLock]:
    lock = WriteLock(path)
    try:
        yield lock
    finally:
        lock.close()


@pytest.fixture
def history(imported_excerpts: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the imported excerpts; writes wait 0.3 s for a lock."""
    for name in [k for k in os.environ if k.startswith("LEADERWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADERWATCH_DB_TIMEOUT", "0.3")
    path = tmp_path / "history.db"
    shutil.copy(imported_excerpts[0], path)
    return path


def data_version(conn: sqlite3.Connection) -> int:
    """Moves whenever another connection commits to the database."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def make_app(path: Path, identity: Identity, rows: int = 5) -> App:
    clock = Clock(T0, tick=timedelta(minutes=1))
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    app = build_app(Settings(db_path=str(path), db_timeout=0.3), client=client,
                    sources=[OneBoard(identity, clock, rows)], on_change=lambda stored: None, clock=clock)
    app.fetcher.sleep = no_sleep
    return app


# --- read-only commands ----------------------------------------------------------------------------------

def test_top_and_boards_answer_while_another_program_holds_the_write_lock(history: Path) -> None:
    with write_lock(history):
        started = time.perf_counter()
        code, out, err = run_cli("--db", str(history), "boards")
        assert code == 0, err
        assert "lmarena/text" in out
        code, out, err = run_cli("--db", str(history), "top", "lmarena/text", "-n", "3")
        assert code == 0, err
        assert "gemini" in out.lower()
        assert "Traceback" not in err and "locked" not in err
        assert time.perf_counter() - started < 5  # nothing waited for the lock


def test_read_only_commands_write_nothing(history: Path) -> None:
    run_cli("--db", str(history), "boards")  # a first start-up may bring the stored identity up to date
    observer = sqlite3.connect(history)
    try:
        before = data_version(observer)
        for argv in (["boards"], ["top", "lmarena/text"], ["query", "model", "gemini-2.5-pro"],
                     ["query", "race", "all"], ["query", "events"],
                     ["report", "--output", str(history.parent)]):
            code, _, err = run_cli("--db", str(history), *argv)
            assert code == 0, err
        assert data_version(observer) == before
    finally:
        observer.close()


async def test_a_chat_command_that_must_write_says_plainly_that_the_database_is_busy(history: Path) -> None:
    from leaderwatch.bot.commands import Invocation, dispatch
    from leaderwatch.bot.commands.messages import DATABASE_BUSY
    from leaderwatch.storage.db import open_db
    from tests.helpers import build_context

    db = open_db(history, busy_timeout=0.3)
    ctx = build_context(db, Clock(T0))
    try:
        with write_lock(history):
            reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "subscribe lmarena/text",
                                                   can_configure=True))
        assert (reply.text, reply.error, reply.ephemeral) == (DATABASE_BUSY, True, True)
        assert "error id" not in reply.text
        assert db.table("subscriptions").count == 0  # nothing half-written
        reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "subscribe lmarena/text",
                                               can_configure=True))
        assert not reply.error and db.table("subscriptions").count >= 1  # the lock gone, it works
    finally:
        db.close()


# --- a poll that meets the lock -----------------------------------------------------------------------

async def test_poll_meeting_the_lock_returns_a_failure_records_it_later_and_recovers(
        tmp_path: Path, identity: Identity) -> None:
    path = tmp_path / "lw.db"
    app = make_app(path, identity)
    source = app.sources[0]
    try:
        with write_lock(path) as lock:
            started = time.perf_counter()
            result = await app.poller.poll(source)  # never raises
            waited = time.perf_counter() - started
            assert not result.ok and result.error is not None
            assert result.error.startswith(f"the database {path} is locked by another program")
            assert "internal error" not in result.error
            assert waited >= 0.3  # the store waited the busy timeout before giving up
            assert result.failures == 1 and app.poller.unrecorded == 1
            assert retry_delay(result.failures, app.interval(source)) == 30  # backed off, not an hour
            assert status.status_of(app.db, "fake") is None  # nothing could be written yet
            lock.release()
            assert app.poller.flush_failures()
        recorded = status.status_of(app.db, "fake")
        assert recorded is not None and recorded.consecutive_failures == 1
        assert recorded.last_error is not None and "is locked" in recorded.last_error
        result = await app.poller.poll(source)
        assert result.ok and [s.snapshot.board.id for s in result.changed] == ["fake/a"]
        assert status.status_of(app.db, "fake").consecutive_failures == 0  # type: ignore[union-attr]
    finally:
        await app.aclose()


async def test_a_failure_kept_in_memory_is_written_at_the_next_poll(tmp_path: Path, identity: Identity
                                                                    ) -> None:
    path = tmp_path / "lw.db"
    app = make_app(path, identity)
    try:
        with write_lock(path):
            assert not (await app.poller.poll(app.sources[0])).ok
            assert not (await app.poller.poll(app.sources[0])).ok
            assert app.poller.unrecorded == 2
        seen: list[int] = []
        original = status.record_success

        def spy(db, source, now):  # type: ignore[no-untyped-def]
            current = status.status_of(db, source)
            seen.append(current.consecutive_failures if current else 0)
            return original(db, source, now)

        status.record_success = spy  # type: ignore[assignment]
        try:
            assert (await app.poller.poll(app.sources[0])).ok
        finally:
            status.record_success = original  # type: ignore[assignment]
        assert seen == [2] and app.poller.unrecorded == 0  # both failures written before the success
    finally:
        await app.aclose()


def test_cli_poll_meeting_the_lock_exits_1_with_one_line_and_records_the_failure(
        tmp_path: Path, identity: Identity, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lw.db"
    app = make_app(path, identity)
    kept = threading.Event()

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "could not be recorded yet" in record.getMessage():
                kept.set()

    handler = Kept(logging.DEBUG)
    poller_log = logging.getLogger("leaderwatch.bot.pipeline.poller")
    poller_log.addHandler(handler)
    caplog.set_level(logging.DEBUG, "leaderwatch.bot.pipeline.poller")
    lock = WriteLock(path)
    # The other program finishes once the poll has given up on both its writes (store, failure record).
    releaser = threading.Thread(target=lambda: (kept.wait(20), lock.release()))
    releaser.start()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            code = execute(app, build_parser().parse_args(["poll"]))
    finally:
        releaser.join()
        lock.close()
        poller_log.removeHandler(handler)
        asyncio.run(app.aclose())
    assert kept.is_set() and code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "poll fake failed (1 in a row): the database" in errors[0].getMessage()
    assert "is locked by another program" in errors[0].getMessage()
    assert err.getvalue() == ""  # recorded before exiting: nothing more to say
    db = open_db(path)
    try:
        recorded = status.status_of(db, "fake")
        assert recorded is not None and recorded.consecutive_failures == 1
    finally:
        db.close()


async def test_run_backs_off_while_locked_and_recovers_once_the_lock_is_gone(tmp_path: Path,
                                                                           identity: Identity) -> None:
    path = tmp_path / "lw.db"
    app = make_app(path, identity)
    moves: list[tuple[datetime, datetime]] = []  # (when, next run) of each reschedule

    class Recorded(AsyncIOScheduler):
        def modify_job(self, job_id: str, jobstore: str | None = None, **changes: Any) -> Any:
            moves.append((datetime.now(UTC), changes["next_run_time"]))
            return super().modify_job(job_id, jobstore, **changes)

    scheduler = Recorded(timezone=UTC)
    try:
        with write_lock(path) as lock:
            schedule(app, scheduler)
            scheduler.start()
            await wait_until(lambda: moves, message="the poll that met the lock to reschedule its job")
            [(moved_at, next_run)] = moves
            # the back-off after one failure (30 s), not the source's interval (an hour)
            assert timedelta(seconds=29) <= next_run - moved_at <= timedelta(seconds=31)
            assert app.poller.unrecorded == 1
            lock.release()
        scheduler.modify_job("fake", next_run_time=datetime.now(UTC))  # the back-off is over
        await wait_until(lambda: store.latest_snapshot(app.db, "fake/a") is not None,
                         message="the next poll to store the table")
        current = status.status_of(app.db, "fake")
        assert current is not None and current.status == "ok" and app.poller.unrecorded == 0
    finally:
        scheduler.shutdown(wait=False)
        await app.aclose()


# --- a full disk ---------------------------------------------------------------------------------------

async def test_a_full_disk_is_said_once_and_the_poll_succeeds_when_there_is_room(
        tmp_path: Path, identity: Identity, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lw.db"
    app = make_app(path, identity, rows=400)  # a table needs more pages than are free
    caplog.set_level(logging.INFO, "leaderwatch.bot.pipeline.poller")
    try:
        assert (await app.poller.poll(app.sources[0])).ok
        app.db.execute("INSERT INTO outbox (delivery_key, status) VALUES ('queued-before', 'pending')")
        pages = app.db.execute("PRAGMA page_count").fetchone()[0]
        app.db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page: SQLITE_FULL
        first = await app.poller.poll(app.sources[0])
        second = await app.poller.poll(app.sources[0])
        assert not first.ok and not second.ok
        assert first.error is not None and first.error.startswith(f"the disk holding {path} is full: ")
        said = [r for r in caplog.records if "is full" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.ERROR and said[0].exc_info is None
        assert any("still full" in r.getMessage() for r in caplog.records)
        app.db.execute(f"PRAGMA max_page_count = {pages * 100}")
        third = await app.poller.poll(app.sources[0])
        assert third.ok and third.changed
        assert app.poller.unrecorded == 0
        assert app.db.execute("SELECT count(*) FROM outbox WHERE delivery_key = 'queued-before'"
                              ).fetchone()[0] == 1
        assert len(list(store.snapshots_between(app.db, "fake/a"))) == 2
    finally:
        await app.aclose()


# --- one `leaderwatch run` per database ----------------------------------------------------------------

def quiet_config(tmp_path: Path) -> Path:
    """A config with every source off: `run` starts and polls nothing."""
    config = tmp_path / "quiet.toml"
    config.write_text("".join(f"[sources.{name}]\nenabled = false\n" for name in sorted(source_names())))
    return config


def start_run(tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADERWATCH_", "SLACK_", "DISCORD_"))}
    env.update(LEADERWATCH_CONFIG=str(quiet_config(tmp_path)), LEADERWATCH_DB=str(db))
    return subprocess.Popen([sys.executable, "-m", "leaderwatch", "run"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_running(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """What `run` printed up to its "leaderwatch running" line (fails if it exits or takes too long)."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"run exited with {proc.wait()} before running:\n{''.join(seen)}")
        seen.append(line)
        if "leaderwatch running" in line:
            return "".join(seen)
    pytest.fail(f"run did not start in {timeout} s:\n{''.join(seen)}")


def test_a_second_run_exits_1_naming_the_first_and_kill_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    db = tmp_path / "lw.db"
    first = start_run(tmp_path, db)
    procs = [first]
    try:
        wait_running(first)
        second = start_run(tmp_path, db)
        procs.append(second)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 1
        [line] = [ln for ln in out.splitlines() if ln.startswith("leaderwatch:")]
        assert line.startswith(f"leaderwatch: {db} is already used by leaderwatch run (pid {first.pid} on ")
        assert " since 20" in line and "Traceback" not in out
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert lock_path(db).is_file()  # the file stays; the kernel let its lock go with the process
        started = time.monotonic()
        third = start_run(tmp_path, db)
        procs.append(third)
        wait_running(third)
        assert time.monotonic() - started < 20
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def test_the_run_lock_names_its_holder_and_is_free_once_released(tmp_path: Path) -> None:
    from leaderwatch.storage.db import AlreadyRunningError, run_lock_holder

    db = tmp_path / "lw.db"
    assert run_lock_holder(db) is None
    with RunLock(db, T0):
        holder = run_lock_holder(db)
        assert holder is not None and holder.pid == os.getpid() and holder.started == T0
        with pytest.raises(AlreadyRunningError) as refused:
            RunLock(db).acquire()
        assert f"(pid {os.getpid()} on {holder.host}, since 2025-03-01 12:00:00 UTC)" in str(refused.value)
    assert run_lock_holder(db) is None
    with RunLock(db):  # free again
        pass


@pytest.mark.parametrize(("raw", "seconds"), [("2.5", 2.5), ("0", 0.0), (None, 10.0)])
def test_the_busy_timeout_is_a_setting(raw: str | None, seconds: float, tmp_path: Path) -> None:
    from leaderwatch.bot.settings import load_settings

    environ = {"LEADERWATCH_DB_TIMEOUT": raw} if raw is not None else {}
    assert load_settings(environ, cwd=tmp_path).db_timeout == seconds


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "7200"])
def test_a_bad_busy_timeout_names_the_setting(raw: str, tmp_path: Path) -> None:
    from leaderwatch.bot.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="^LEADERWATCH_DB_TIMEOUT: expected seconds from 0 to 3600"):
        load_settings({"LEADERWATCH_DB_TIMEOUT": raw}, cwd=tmp_path)
