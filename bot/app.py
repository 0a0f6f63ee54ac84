"""The composition root: the only place that builds and wires settings, database, HTTP and scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from leaderwatch.alerts.kinds import KINDS
from leaderwatch.alerts.models import Rule, RuleError
from leaderwatch.alerts.ruleset import default_rules, rules_from_tables, rules_from_toml
from leaderwatch.bot.chat import console
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.pipeline.alert_charts import chart_alerts
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.backfill import EMPTY_DATABASE_HINT
from leaderwatch.bot.pipeline.delivery import Dispatcher, Pacing, Rate, Sender
from leaderwatch.bot.pipeline.drift import OpsChannel
from leaderwatch.bot.pipeline.poller import OnChange, Poller, retry_delay
from leaderwatch.bot.pipeline.reports import queue_reports
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.bot.settings import ConfigError, Settings
from leaderwatch.sources.base import Source
from leaderwatch.sources.http import Fetcher, Validators, new_client
from leaderwatch.sources.identity import Group, Identity, load_groups
from leaderwatch.sources.registry import all_boards, all_sources, is_enabled_by_default, source_names
from leaderwatch.storage import fanouts, snapshots, status
from leaderwatch.storage.db import DATABASE_ERRORS, Database, db_file, is_locked, open_db
from leaderwatch.storage.organizations import sync_identity
from leaderwatch.storage.retention import RetentionPolicy, apply_retention

if TYPE_CHECKING:  # APScheduler (~25 ms) is imported when `run` schedules, not for `--help`
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The wall clock, in UTC (passed down as `clock`; nothing below reads it directly)."""
    return datetime.now(UTC)


@dataclass
class App:
    """Everything the running service is made of."""

    settings: Settings
    db: Database
    identity: Identity
    sources: list[Source]
    client: httpx.AsyncClient
    fetcher: Fetcher
    poller: Poller
    clock: Callable[[], datetime]
    groups: dict[str, Group]
    rules: list[Rule]
    metrics: Metrics = field(default_factory=Metrics)
    polls_in_flight: set[asyncio.Task[Any]] = field(default_factory=set)
    http_port: int | None = None
    """The port `run()`'s HTTP server bound (the system's choice for LEADERWATCH_HTTP_PORT=0)."""
    alerter: Alerter | None = None
    """The alerter (None when a test passed its own `on_change`): a new leader finishes its fan-outs."""

    def enabled_sources(self) -> list[Source]:
        """The sources not disabled in the config (a retired one, e.g. openllm, only when enabled there)."""
        return [s for s in self.sources
                if (self.settings.sources[s.name].enabled if s.name in self.settings.sources
                    else is_enabled_by_default(s))]

    def interval(self, source: Source) -> int:
        """Seconds between polls of a source (config overrides the source's default)."""
        configured = self.settings.sources.get(source.name)
        if configured and configured.interval_seconds:
            return configured.interval_seconds
        return source.interval_seconds

    def save_validators(self) -> None:
        """Persist ETag / Last-Modified so conditional requests survive restarts."""
        status.save_validators(self.db, {u: (v.etag, v.last_modified)
                                         for u, v in self.fetcher.validators.items()})

    async def aclose(self) -> None:
        """Release the HTTP client and the database."""
        await self.client.aclose()
        self.db.close()


def load_rules(path: Path | None, config_tables: Sequence[Mapping[str, object]],
               known_groups: Sequence[str]) -> list[Rule]:
    """`--rules FILE`, else the config's `[[rules]]`, else the shipped defaults (RuleError if bad)."""
    if path is not None:
        return rules_from_toml(path.read_text(encoding="utf-8"), str(path), known_groups)
    if config_tables:
        return rules_from_tables(list(config_tables), "config [[rules]]", known_groups)
    return default_rules(known_groups)


def delivery_pacing(settings: Settings) -> dict[str, Pacing]:
    """Each platform's pace from `[delivery]`: its API methods' rates, in bursts of a fifth of a second's
    worth (at least one call), and the interval between two messages to one channel."""
    d = settings.delivery

    def rate(per_second: float) -> Rate:
        return Rate(per_second, max(1.0, per_second / 5))

    interval = d["channel_interval"]
    uploads = rate(d["slack_uploads_per_minute"] / 60)
    history = rate(d["slack_history_per_minute"] / 60)
    return {
        "slack": Pacing({"chat.postMessage": rate(d["slack_messages_per_minute"] / 60),
                         "chat.update": rate(d["slack_updates_per_minute"] / 60),
                         "files.getUploadURLExternal": uploads, "files.completeUploadExternal": uploads,
                         "conversations.history": history, "conversations.replies": history}, interval),
        "discord": Pacing({"request": rate(d["discord_requests_per_second"])}, interval)}


def command_context(app: App) -> CommandContext:
    """What the command layer needs, from the running app."""
    return CommandContext(db=app.db, identity=app.identity, groups=app.groups, default_rules=app.rules,
                          boards=all_boards(app.sources), clock=app.clock, metrics=app.metrics,
                          intervals={s.name: app.interval(s) for s in app.enabled_sources()},
                          suites=app.settings.suites, max_subscriptions=app.settings.max_subscriptions)


def build_identity(settings: Settings) -> Identity:
    """The identity tables with the user's aliases."""
    return Identity.load(settings.aliases)


def ops_channels(settings: Settings) -> list[OpsChannel]:
    """The operators' channels (`[ops]`) of the platforms whose token is set; one without its token is
    left out with a warning (drift is then logged and shown, not queued for a platform that is off)."""
    channels = []
    for platform, channel, token, name in (
            ("slack", settings.ops_slack_channel, settings.slack_bot_token or settings.slack_oauth,
             "SLACK_BOT_TOKEN"),
            ("discord", settings.ops_discord_channel, settings.discord_token, "DISCORD_TOKEN")):
        if channel and token:
            channels.append(OpsChannel(platform, channel))
        elif channel:
            logger.warning("[ops] %s_channel is set but %s is not: source drift is logged, not posted to %s",
                           platform, name, platform.capitalize())
    return channels


def build_app(settings: Settings, *, client: httpx.AsyncClient | None = None,
              sources: Sequence[Source] | None = None,
              on_change: OnChange | None = None,
              clock: Callable[[], datetime] = utcnow) -> App:
    """Build the service from settings; tests pass their own client, sources or clock."""
    identity = build_identity(settings)
    try:
        groups = load_groups(settings.groups, identity)
    except ValueError as exc:
        raise ConfigError(f"config [groups]: {exc}") from None
    db = open_db(settings.db_path, settings.db_timeout)
    http = client or new_client()
    fetcher = Fetcher(http)
    fetcher.validators.update({u: Validators(e, m) for u, (e, m) in status.load_validators(db).items()})
    try:
        rules = load_rules(None, settings.rules, list(groups))
    except RuleError as exc:
        raise ConfigError(str(exc)) from None
    srcs = list(sources) if sources is not None else all_sources(
        identity, urls={n: s.url for n, s in settings.sources.items() if s.url and n in source_names()})
    try:
        sync_identity(db, identity)  # writes only when the identity tables changed
        for board in all_boards(srcs).values():
            # A stored board whose description changed upstream (e.g. openllm archived on its retirement)
            # is updated now: it may never get another snapshot to carry the change.
            if snapshots.board(db, board.id) not in (None, board):
                snapshots.save_board(db, board)
    except DATABASE_ERRORS as exc:
        if not is_locked(exc):
            raise
        # Another program holds the write lock: read-only commands still answer; the next start-up
        # writes these.
        logger.warning("the database is locked: stored identity and board descriptions not refreshed")
    metrics = Metrics(sources=[s.name for s in srcs], platforms=("slack", "discord"), kinds=KINDS)
    metrics.watch_storage(db, clock)
    alerter: Alerter | None = None
    if on_change is None:
        alerter = Alerter(db, rules, groups, clock, console.print_event, metrics=metrics,
                          suites=settings.suites, alert_cap=settings.alerts_per_poll)

        def on_change(stored: Stored) -> Callable[[], None]:
            staged = alerter.stage(stored)

            def announce() -> None:
                console.print_change(stored)
                staged.announce()
            return announce

    # A fan-out a crash cut short (its events still listed) is finished by the first poll after start-up.
    pending = [alerter.fan_out] if alerter is not None and fanouts.waiting(db) else []
    poller = Poller(db, fetcher, clock, on_change, metrics=metrics, ops=ops_channels(settings),
                    pending=pending)
    return App(settings, db, identity, srcs, http, fetcher, poller, clock, groups, rules, metrics,
               alerter=alerter)


SHUTDOWN_GRACE_SECONDS = 30


def settle_heap() -> None:
    """Move what start-up built (identity tables, caches, libraries) out of the collector's way.

    Those objects live as long as the process; a full collection scanning them stalls every request
    in flight, which is what chat users notice as a slow answer (bench/bench_slack_ack.py).
    """
    gc.collect()
    gc.freeze()


FIRST_POLLS_APART = timedelta(seconds=2)
"""Between two sources' first polls, at start-up and when a replica takes the leadership over."""


def schedule(app: App, scheduler: AsyncIOScheduler, after_change: Callable[[], None] | None = None) -> None:
    """One job per enabled source at its interval, with jitter, one instance, coalesced misfires; an hourly
    check for the weekly race reports; the daily retention when set.

    `after_change` runs after a poll that stored a change (e.g. to wake the alert dispatcher).
    Run times are wall-clock times, whatever `app.clock` says: APScheduler compares them with the
    real time, so a first run set from a test's fake clock would be a misfire, skipped at random.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    now = datetime.now(UTC)

    async def job(source: Source) -> None:
        task = asyncio.current_task()
        if task is not None:
            app.polls_in_flight.add(task)
        try:
            result = await app.poller.poll(source)
        except asyncio.CancelledError:
            from apscheduler.schedulers.base import STATE_PAUSED

            if scheduler.state != STATE_PAUSED:  # a shutdown (the scheduler is stopped): APScheduler logs it
                raise
            # `stop_polls`: this replica lost the leadership; the poll stored nothing, the new leader polls.
            logger.info("poll %s cancelled: this replica no longer leads", source.name)
            return
        finally:
            app.polls_in_flight.discard(task)
        try:
            app.save_validators()
        except DATABASE_ERRORS as exc:  # a locked or full database: the back-off below must still happen
            logger.warning("poll %s: the HTTP validators were not saved (%s); the next poll saves them",
                           source.name, exc)
        if (result.changed or result.ops_queued) and after_change is not None:
            after_change()
        if not result.ok:
            delay = retry_delay(result.failures, app.interval(source))
            logger.info("next attempt for %s in %ds", source.name, delay)
            scheduler.modify_job(source.name, next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    ctx = command_context(app)

    def post_reports() -> None:
        try:
            if queue_reports(ctx, app.clock()) and after_change is not None:
                after_change()
        except Exception:  # e.g. "database is locked": the next hour tries again, and catches up
            logger.exception("queueing the weekly race reports failed; the next check tries again")

    # Every hour: a channel's report is due on Mondays at its digest_hour, or at the first check after.
    scheduler.add_job(post_reports, CronTrigger(minute=3, timezone=UTC), id="reports", name="race reports",
                      max_instances=1, coalesce=True)

    if app.settings.retention_days:
        policy = RetentionPolicy(app.settings.retention_days, app.settings.retention_period)

        def thin_history() -> None:
            try:
                logger.info("%s", apply_retention(app.db, policy, app.clock()).summary())
            except Exception:  # e.g. "database is locked" by an import: the next day tries again
                logger.exception("retention failed; nothing was removed")

        scheduler.add_job(thin_history, CronTrigger(hour=4, minute=17, timezone=UTC), id="retention",
                          name="retention", max_instances=1, coalesce=True)

    for i, source in enumerate(app.enabled_sources()):
        interval = app.interval(source)
        scheduler.add_job(
            job, IntervalTrigger(seconds=interval, jitter=max(1, interval // 20)), args=[source],
            id=source.name, name=f"poll {source.name}", max_instances=1, coalesce=True,
            misfire_grace_time=interval,
            # Stagger the first polls so start-up does not hit every site in the same second.
            next_run_time=now + i * FIRST_POLLS_APART,
        )


def stop_polls(app: App, scheduler: AsyncIOScheduler) -> None:
    """Pause the scheduler (it holds only the leader's jobs: polls, race reports, retention) and cancel the
    polls under way: a replica that lost the leadership stops at once (a cancelled poll stores nothing)."""
    scheduler.pause()
    for task in list(app.polls_in_flight):
        task.cancel()


def start_polls(app: App, scheduler: AsyncIOScheduler, after_change: Callable[[], None] | None = None
                ) -> None:
    """Resume the scheduler, and fan out the events a former leader listed but did not finish.

    The polls that fell due while this replica stood by run once each, staggered like the first polls
    at start-up (`FIRST_POLLS_APART`) rather than all in the same second. The clock jobs (race reports,
    retention) whose time passed meanwhile wait for their next time (the reports check is hourly and
    catches up), rather than being logged as missed."""
    now = datetime.now(UTC)
    sources = {source.name for source in app.enabled_sources()}
    jobs = [job for job in scheduler.get_jobs() if job.next_run_time is not None]
    due = sorted((job for job in jobs if job.id in sources and job.next_run_time <= now),
                 key=lambda job: job.next_run_time)
    if due and due[0].next_run_time < now - FIRST_POLLS_APART:  # they fell due while standing by
        for i, job in enumerate(due):
            job.modify(next_run_time=now + i * FIRST_POLLS_APART)
    for job in jobs:
        if job.id not in sources and job.next_run_time < now:
            job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))
    scheduler.resume()
    if app.alerter is not None and fanouts.waiting(app.db):
        task = asyncio.create_task(finish_fan_outs(app.alerter, after_change))
        app.polls_in_flight.add(task)  # cancelled with the polls, awaited at shutdown like them
        task.add_done_callback(app.polls_in_flight.discard)


async def finish_fan_outs(alerter: Alerter, after_change: Callable[[], None] | None = None) -> None:
    """Queue the outbox rows of the events still listed for a fan-out (a former leader crashed or lost the
    leadership in the middle of one); rows already queued are found by their keys and kept."""
    try:
        done = await alerter.fan_out()
    except Exception:
        logger.exception("finishing the fan-out a former leader left failed; its events stay listed and the "
                         "next stored change fans them out")
        return
    logger.info("finished the fan-out a former leader left: %d event(s), %d outbox row(s)", done.events,
                done.rows)
    if after_change is not None:
        after_change()


async def run(app: App, stop: asyncio.Event | None = None) -> None:
    """Run the service in the foreground until `stop` is set or SIGINT/SIGTERM arrives.

    The scheduler polls; the chat apps whose tokens are set start (one failing to start logs an
    error naming its setting and the rest keep running); the dispatcher delivers the outbox; the
    HTTP server serves /healthz (and Slack's /slack/events in HTTP mode) when a port is set.
    """
    # The chat libraries and aiohttp load here, when a service runs: `--help` and `query` never pay
    # for them (bench/bench_latency.py).
    from leaderwatch.bot.chat.discord_bot import DiscordService, to_payloads
    from leaderwatch.bot.chat.discord_http import DiscordInteractions
    from leaderwatch.bot.chat.slack import SlackService
    from leaderwatch.bot.runtime.http_server import Freshness, bound_port, build_web_app, start_http
    from leaderwatch.bot.runtime.leading import LeaderLoop
    from leaderwatch.storage.leadership import open_leadership

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread (tests)
            pass
    settings = app.settings
    if not snapshots.boards(app.db):
        logger.info(EMPTY_DATABASE_HINT)
    ctx = command_context(app)
    # ConfigError: stop here. A public app (OAuth) has no SLACK_BOT_TOKEN: each workspace installs it.
    slack = SlackService(settings, ctx) if settings.slack_bot_token or settings.slack_oauth else None
    runner = None
    # LEADERWATCH_DISCORD_MODE=http: Discord posts interactions to /discord/interactions, no gateway.
    discord_http = (DiscordInteractions(ctx, settings.discord_public_key or "", app.client, to_payloads,
                                        api_url=settings.discord_api_url,
                                        application_id=settings.discord_application_id)
                    if settings.discord_token and settings.discord_mode == "http" else None)
    # One replica leads (a PostgreSQL advisory lock; on SQLite, this one): it alone runs the scheduler's jobs.
    leadership = open_leadership(settings.db_path)
    if settings.http_port is not None:
        intervals = {s.name: app.interval(s) for s in app.enabled_sources()}
        freshness = Freshness.of(intervals, settings.stale_after, app.clock())
        routes = [*(slack.routes() if slack else []), *(discord_http.routes() if discord_http else [])]
        runner = await start_http(build_web_app(app.db, app.clock, routes,
                                                metrics=app.metrics, freshness=freshness,
                                                leadership=leadership), settings.http_port)
        app.http_port = bound_port(runner)
    discord_bot = DiscordService(settings, ctx) if settings.discord_token else None
    senders: dict[str, Sender] = {}
    # Both start together; one failing (a rejected token) logs an error naming its setting and the
    # other keeps running. Alerts for a platform that is off stay queued.
    services = [(name, svc) for name, svc in (("slack", slack), ("discord", discord_bot)) if svc is not None]
    started = await asyncio.gather(*(svc.start() for _, svc in services))
    for (name, svc), ok in zip(services, started, strict=True):
        if ok:
            senders[name] = svc.sender
    dispatcher = Dispatcher(app.db, senders, app.clock,
                            board_urls={b.id: b.url for b in all_boards(app.sources).values()},
                            decorate=chart_alerts(ctx), metrics=app.metrics, suites=ctx.suites,
                            concurrency=int(settings.delivery["slots"]), pacing=delivery_pacing(settings),
                            send_timeout=settings.delivery["send_timeout"], replica=leadership.replica)
    delivering = asyncio.create_task(dispatcher.run(stop)) if settings.has_chat else None
    from apscheduler.schedulers import asyncio as apscheduler_asyncio

    scheduler = apscheduler_asyncio.AsyncIOScheduler(timezone=UTC)
    schedule(app, scheduler, dispatcher.wake if delivering else None)
    names = ", ".join(f"{s.name} every {app.interval(s)}s" for s in app.enabled_sources())
    logger.info("leaderwatch running: database %s; polling %s", db_file(app.db), names or "nothing")
    if not settings.has_chat:
        logger.info("no chat tokens configured (SLACK_BOT_TOKEN, DISCORD_TOKEN): changes and alerts go to "
                    "the console")
    wake = dispatcher.wake if delivering else None
    leader = LeaderLoop(leadership, lambda: start_polls(app, scheduler, wake),
                        lambda: stop_polls(app, scheduler), metrics=app.metrics)
    scheduler.start(paused=True)  # until this replica leads: the leader loop resumes it
    leading = asyncio.create_task(leader.run(stop))
    settle_heap()
    try:
        await stop.wait()
    finally:
        leading.cancel()  # it ends with `stop`; cancelled for when `run` fails
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        scheduler.pause()
        if app.polls_in_flight:  # let running polls finish (and commit) rather than cancel them
            logger.info("waiting up to %ds for %d poll(s) to finish", SHUTDOWN_GRACE_SECONDS,
                        len(app.polls_in_flight))
            await asyncio.wait(set(app.polls_in_flight), timeout=SHUTDOWN_GRACE_SECONDS)
        scheduler.shutdown(wait=False)
        await leader.release()  # the polls are done: another replica can lead at once (a rolling restart)
        if delivering is not None:
            await delivering
        for _, svc in services:
            await svc.stop()
        if discord_http is not None:
            await discord_http.close()
        if runner is not None:
            await runner.cleanup()
        logger.info("leaderwatch stopped")
