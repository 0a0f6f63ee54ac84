"""The one HTTP server (`LEADERWATCH_HTTP_PORT`): `/healthz`, `/metrics`, Slack's `/slack/events`, and
Discord's `/discord/interactions` (LEADERWATCH_DISCORD_MODE=http).

`/healthz` answers 200 while the database takes writes and every polled source has had a
successful poll within its staleness limit, 503 otherwise, with the facts as JSON either way.
`/metrics` serves the Prometheus text format.

A drifted source (its origin's format changed: `storage/status.py`) is named under `drifted` with what
changed and the origin's URL, but drift alone keeps `/healthz` at 200: restarting the service cannot
fix an upstream format, and the operators' channel was told. A drift that outlasts the source's
staleness limit makes it stale like any source without a successful poll, and then `/healthz` is 503.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.storage.db import DATABASE_ERRORS, Database, to_text
from leaderwatch.storage.db import is_writable as database_writable
from leaderwatch.storage.status import SourceStatus, all_statuses

if TYPE_CHECKING:  # psycopg loads only when `run` builds a leadership
    from leaderwatch.storage.leadership import AnyLeadership

logger = logging.getLogger(__name__)

STALE_MARGIN = timedelta(minutes=15)
"""Added to a source's staleness limit: schedule jitter, the fetcher's retries and a slow download."""


def stale_limit(interval_seconds: int, stale_after: float) -> timedelta:
    """How long a source polled every `interval_seconds` may go without a success: `stale_after`
    intervals (the poller retries a failing source sooner than its interval) plus a margin."""
    return timedelta(seconds=interval_seconds * stale_after) + STALE_MARGIN


@dataclass(frozen=True, slots=True)
class Freshness:
    """The staleness limit of each polled source, and when the service started.

    A source is stale when it has had no successful poll for longer than its limit, counted from
    its last success or from start-up, whichever is later: a source that never succeeded (or not
    since a long outage of the service) gets one limit's grace after start-up.
    """

    limits: Mapping[str, timedelta]
    started_at: datetime

    @classmethod
    def of(cls, intervals: Mapping[str, int], stale_after: float, started_at: datetime) -> Freshness:
        """Limits from each polled source's interval in seconds (`App.interval`)."""
        return cls({name: stale_limit(seconds, stale_after) for name, seconds in intervals.items()},
                   started_at)

    def since(self, st: SourceStatus | None) -> datetime:
        """The time staleness is counted from."""
        last = st.last_success_at if st is not None else None
        return max(last, self.started_at) if last is not None else self.started_at


def _duration(delta: timedelta) -> str:
    hours, minutes = divmod(int(delta.total_seconds()) // 60, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


PROBE_WAIT_SECONDS = 3.0
"""How long `/healthz` waits for a connection of a PostgreSQL pool: a probe must answer in time, and a
pool with no connection free for that long is worth a 503 anyway."""


def health(db: Database, now: datetime, freshness: Freshness | None = None) -> tuple[bool, dict[str, object]]:
    """Whether the service is healthy, and the facts: database writable, each source's state.

    Unhealthy when the database takes no writes or a polled source is stale (see `Freshness`);
    `problems` says which, in words.
    """
    problems: list[str] = []
    with db.waiting_at_most(PROBE_WAIT_SECONDS):
        try:
            statuses = all_statuses(db)
        except DATABASE_ERRORS as exc:  # unreachable or unreadable: that says it all, and no write is tried
            statuses, writable = {}, False
            problems.append(f"the database cannot be read: {exc}")
        else:
            writable = database_writable(db)
            if not writable:
                problems.append("the database does not take writes (disk full, read-only, or locked)")
    limits = freshness.limits if freshness is not None else {}
    sources: dict[str, dict[str, object]] = {}
    for name in sorted(set(statuses) | set(limits)):
        st = statuses.get(name)
        facts: dict[str, object] = {
            "status": st.status if st else "not polled yet",
            "last_success_at": to_text(st.last_success_at) if st and st.last_success_at else None,
            "last_attempt_at": to_text(st.last_attempt_at) if st and st.last_attempt_at else None,
            "consecutive_failures": st.consecutive_failures if st else 0,
            "last_error": st.last_error if st else None,
            "stale": None,  # not polled by this process (disabled): not judged
        }
        if st is not None and st.is_drifted:
            facts["drift"] = st.drift
            facts["drift_url"] = st.drift_url
            facts["drifted_at"] = to_text(st.drifted_at) if st.drifted_at else None
        limit = limits.get(name)
        if freshness is not None and limit is not None:
            since = freshness.since(st)
            stale = now - since > limit
            facts["stale"] = stale
            facts["stale_after_seconds"] = int(limit.total_seconds())
            if stale:
                start = "start-up at " if since == freshness.started_at else ""
                problems.append(f"source {name}: no successful poll since {start}{to_text(since)}, more than "
                                f"its {_duration(limit)} limit ({st.consecutive_failures if st else 0} "
                                f"failure(s) in a row)")
        sources[name] = facts
    ok = not problems
    drifted = {name: f"{st.drift} ({st.drift_url or 'origin unknown'})"
               for name, st in sorted(statuses.items()) if st.is_drifted}
    body: dict[str, object] = {
        "status": "ok" if ok else "unhealthy", "database_writable": writable, "checked_at": to_text(now),
        "sources": sources, "problems": problems, "drifted": drifted}
    if freshness is not None:
        body["started_at"] = to_text(freshness.started_at)
    return ok, body


def build_web_app(db: Database, clock: Callable[[], datetime], extra_routes: Iterable[web.RouteDef] = (),
                  *, metrics: Metrics | None = None, freshness: Freshness | None = None,
                  leadership: AnyLeadership | None = None) -> web.Application:
    """The aiohttp application: `/healthz`, `/metrics` (given `metrics`), and the chat adapters' routes.

    Given `leadership`, `/healthz` also says whether this replica leads (`leader`) and names it
    (`replica`, `<host>:<pid>`); a replica that does not lead is healthy all the same.
    """
    async def healthz(request: web.Request) -> web.Response:
        ok, body = health(db, clock(), freshness)
        if leadership is not None:
            body["leader"] = leadership.is_leader
            body["replica"] = leadership.replica
        return web.Response(status=200 if ok else 503, text=json.dumps(body),
                            content_type="application/json")

    routes = [web.get("/healthz", healthz)]
    if metrics is not None:
        async def metrics_text(request: web.Request) -> web.Response:
            # Synchronous on purpose: the collectors read the database through the loop's connection.
            # Text format 0.0.4: every metric name is classic, and every Prometheus version reads it.
            return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

        routes.append(web.get("/metrics", metrics_text))
    app = web.Application()
    app.add_routes([*routes, *extra_routes])
    return app


async def start_http(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104
    """Serve the application; the caller keeps the runner to stop it (`await runner.cleanup()`).

    Port 0 lets the system pick a free port: `bound_port(runner)` tells which (and the log line says it).
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    paths = sorted({r.resource.canonical for r in app.router.routes() if r.resource is not None})
    logger.info("HTTP server listening on port %d: %s", bound_port(runner), ", ".join(paths))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started server listens on (the system's choice when it was asked for port 0)."""
    return int(runner.addresses[0][1])
