"""The one HTTP server (`LEADERWATCH_HTTP_PORT`): Slack's `/slack/events` in HTTP mode and `/healthz`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from aiohttp import web
from sqlite_utils import Database

from storage.db import is_writable, to_text
from storage.status import all_statuses

logger = logging.getLogger(__name__)


def health(db: Database, now: datetime) -> tuple[bool, dict[str, object]]:
    """Whether the service is healthy, and the facts: database writable, each source's state."""
    writable = is_writable(db)
    sources = {name: {"status": st.status,
                      "last_success_at": to_text(st.last_success_at) if st.last_success_at else None,
                      "consecutive_failures": st.consecutive_failures}
               for name, st in all_statuses(db).items()}
    return writable, {"status": "ok" if writable else "unhealthy", "database_writable": writable,
                      "checked_at": to_text(now), "sources": sources}


def build_web_app(db: Database, clock: Callable[[], datetime],
                  extra_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The aiohttp application: `/healthz` plus the routes chat adapters add (Slack HTTP mode)."""
    async def healthz(request: web.Request) -> web.Response:
        ok, body = health(db, clock())
        return web.Response(status=200 if ok else 503, text=json.dumps(body),
                            content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), *extra_routes])
    return app


async def start_http(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104
    """Serve the application; the caller keeps the runner to stop it (`await runner.cleanup()`)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    paths = sorted({r.resource.canonical for r in app.router.routes() if r.resource is not None})
    logger.info("HTTP server listening on port %d: %s", port, ", ".join(paths))
    return runner
