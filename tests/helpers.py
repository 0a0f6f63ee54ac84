"""What many test modules share: a hand-moved clock, waiting that fails loudly, the service in a task.

Fixtures that hold a resource for one test (a fresh database, a refusing port, a clean environment)
live in tests/conftest.py; plain functions and classes live here (`from tests.helpers import ...`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from leaderwatch.bot.pipeline.importer import ImportReport, import_recordings
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources
from leaderwatch.storage.db import open_db

# tests/conftest.py imports this module for every test, tests/sources and tests/alerts included: the
# command layer, the chat stack and aiohttp are imported inside the functions that use them, so that
# those tests neither wait for them nor fail to load when one of them is broken.
if TYPE_CHECKING:
    from aiohttp import web

    from leaderwatch.alerts.formatting import Reply
    from leaderwatch.alerts.models import Event
    from leaderwatch.bot.app import App
    from leaderwatch.bot.commands import CommandContext
    from leaderwatch.bot.pipeline.delivery import Sender

REPO = Path(__file__).resolve().parent.parent
EXCERPTS = REPO / "tests" / "data" / "recordings"
"""The in-repository excerpts of the recordings (same paths as ../shared/data, each file cut; README.md)."""

POLL_SECONDS = 0.01
"""How often `wait_until` looks again when nothing notifies it."""


class Clock:
    """A clock the test moves by hand (`advance`, `sleep`); with `tick`, each reading moves it on first."""

    def __init__(self, now: datetime, *, tick: timedelta = timedelta(0)) -> None:
        self.now = now
        self.tick = tick

    def __call__(self) -> datetime:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move on by `seconds` and/or timedelta keywords (`advance(minutes=1)`)."""
        self.now += timedelta(seconds=seconds, **delta)

    async def sleep(self, seconds: float) -> None:
        """A `sleep` for code under test: the time passes at once (and the loop gets a turn)."""
        self.advance(seconds)
        await asyncio.sleep(0)


async def no_sleep(seconds: float) -> None:
    """A `sleep` for retries and back-offs that does not wait."""


def _describe(condition: Callable[[], object]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)


async def wait_until(condition: Callable[[], object], timeout: float = 10.0, message: str | None = None, *,
                     changed: asyncio.Condition | None = None,
                     running: asyncio.Future[Any] | None = None) -> None:
    """Return as soon as `condition()` is true; raise AssertionError naming what was awaited when
    `timeout` seconds pass first, or when `running` (the task that should bring it about) ends first.

    Looks every POLL_SECONDS, or, given the `changed` Condition a fake notifies, each time it does.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if running is not None and running.done():
            cause = None if running.cancelled() else running.exception()
            raise AssertionError(f"waiting for {message or _describe(condition)}: the task that should do "
                                 "it ended first") from cause
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"waited {timeout:g} s for {message or _describe(condition)}, in vain")
        if changed is None:
            await asyncio.sleep(min(POLL_SECONDS, remaining))
            continue
        try:
            async with changed:
                await asyncio.wait_for(changed.wait_for(condition), remaining)
        except TimeoutError:
            pass  # the loop raises with the message


async def serve_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 at a port the system picks: the runner (to stop it) and that port."""
    from aiohttp import web

    from leaderwatch.bot.runtime.http_server import bound_port

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, bound_port(runner)


@asynccontextmanager
async def running(app: App) -> AsyncIterator[asyncio.Task[None]]:
    """`run(app)` in a task during the `async with` body, then stopped as SIGTERM stops it (within 10 s)."""
    from leaderwatch.bot.app import run

    stop = asyncio.Event()
    task = asyncio.create_task(run(app, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def served_port(app: App, service: asyncio.Task[None]) -> int:
    """The port `run()`'s HTTP server bound (tests ask for port 0: the system picks a free one)."""
    await wait_until(lambda: app.http_port is not None, message="run() to start its HTTP server",
                     running=service)
    assert app.http_port is not None
    return app.http_port


def build_context(db: Database, clock: Callable[[], datetime],
                  groups: Mapping[str, Mapping[str, Any]] | None = None, *, identity: Identity | None = None,
                  **fields: Any) -> CommandContext:
    """A CommandContext over `db` as the composition root builds one: the shipped identity, the default
    groups plus `groups` (config tables), the default rules for them, every source's boards."""
    from leaderwatch.alerts.ruleset import default_rules
    from leaderwatch.bot.commands import CommandContext
    from leaderwatch.sources.identity import load_groups
    from leaderwatch.sources.registry import all_boards

    identity = identity or Identity.load()
    loaded = load_groups(groups or {}, identity)
    return CommandContext(db, identity, loaded, default_rules(list(loaded)),
                          all_boards(all_sources(identity)), clock, **fields)


def import_subset(recordings: Path, folder: Path, paths: Iterable[str], now: datetime
                  ) -> tuple[Database, ImportReport]:
    """`folder/template.db` holding some recorded files (paths under `recordings`), imported the way
    `leaderwatch import` does; the database is left open for the caller to add to and close."""
    root = folder / "recordings"
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(recordings / rel)
    db = open_db(folder / "template.db")
    return db, import_recordings(db, all_sources(Identity.load()), root, now)


def recorded_template(recordings: Path, folder: Path, paths: Sequence[str], now: datetime, *, snapshots: int,
                      events: Sequence[Event] = ()) -> Path:
    """`folder/template.db` for a module's `template` fixture: the recorded files imported as `leaderwatch
    import` does (no errors, `snapshots` snapshots stored) and `events` stored as the rules store them."""
    from leaderwatch.storage.events import save_events

    db, report = import_subset(recordings, folder, paths, now)
    assert report.errors == [] and report.snapshots_stored == snapshots
    with db.atomic():
        save_events(db, events, None, now)
    db.close()
    return folder / "template.db"


def edit_yaml(recordings: Path, date: str) -> bytes:
    """A recorded Aider code editing board (`aider/edit_leaderboard/edit_leaderboard_<date>.yml`)."""
    return (recordings / "aider" / "edit_leaderboard" / f"edit_leaderboard_{date}.yml").read_bytes()


class KilledInEdit:
    """A platform's sender in a process that dies as it starts an edit, before the platform hears of it:
    posts and replies go through, the edit raises what the dispatcher's task sees when stopped."""

    def __init__(self, sender: Sender) -> None:
        self.sender, self.platform = sender, sender.platform

    async def send(self, channel_id: str, reply: Reply, delivery_key: str,
                   thread: str | None = None) -> str | None:
        return await self.sender.send(channel_id, reply, delivery_key, thread)

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        raise asyncio.CancelledError

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        return await self.sender.already_delivered(channel_id, delivery_key, since, thread)


async def poll_aider(ctx: CommandContext, edit_yaml: bytes) -> None:
    """Poll the Aider source once through the real Poller and Alerter, as the scheduler does; the site
    serves `edit_yaml` as the code editing board (the polyglot file is unchanged: 304)."""
    import httpx

    from leaderwatch.bot.pipeline.alerter import Alerter
    from leaderwatch.bot.pipeline.poller import Poller
    from leaderwatch.sources.aider import EDIT_URL, POLYGLOT_URL, AiderSource
    from leaderwatch.sources.http import Fetcher

    def site(request: httpx.Request) -> httpx.Response:
        if str(request.url) == EDIT_URL:
            return httpx.Response(200, content=edit_yaml)
        assert str(request.url) == POLYGLOT_URL
        return httpx.Response(304)

    alerter = Alerter(ctx.db, ctx.default_rules, ctx.groups, ctx.clock)
    async with httpx.AsyncClient(transport=httpx.MockTransport(site)) as http:
        poller = Poller(ctx.db, Fetcher(http, sleep=no_sleep), ctx.clock,
                        lambda stored: alerter.stage(stored).announce)
        result = await poller.poll(AiderSource(ctx.identity))
    assert result.ok, result.error


class Bucket:
    """A token bucket on real time, as the fake platforms enforce their limits: `rate` a second, bursts of
    `burst` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate, self.burst = rate, burst if burst is not None else max(1.0, rate)
        self.tokens, self.stamp = self.burst, time.monotonic()

    def take(self) -> float:
        """Take one token: 0.0, or the seconds until there is one (nothing taken)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def run_cli(*argv: str, own_settings: bool = False) -> tuple[int, str, str]:
    """`leaderwatch ARGV` in this process: (exit status, standard output, standard error). With
    `own_settings`, the environment's LEADERWATCH_ settings are set aside for the call (the command sees
    only what ARGV says)."""
    import contextlib
    import io
    import os

    from leaderwatch.bot.cli.main import main

    saved = {k: os.environ.pop(k) for k in list(os.environ) if own_settings and k.startswith("LEADERWATCH_")}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()
