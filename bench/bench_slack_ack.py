"""p99 time to ack `top`, `race` and `model` with 50 concurrent clients over loopback, Slack HTTP mode.

Printed beside the same load on a bare Bolt app whose handler only acks. Target: within 1.5x the
bare app's p99 and under 100 ms. The servers run here; the load comes from another process
(bench/_slack_load.py) so the client does not compete with the server for the same event loop.
The database holds the real recorded LMArena and Aider history; the Slack Web API is a tiny fake
answering auth.test.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request  # noqa: E402
from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: E402

from bench._common import recordings  # noqa: E402
from leaderwatch.bot.app import build_app, command_context, settle_heap  # noqa: E402
from leaderwatch.bot.chat.slack import SlackService  # noqa: E402
from leaderwatch.bot.pipeline.importer import import_recordings  # noqa: E402
from leaderwatch.bot.runtime.http_server import build_web_app, start_http  # noqa: E402
from leaderwatch.bot.settings import Settings  # noqa: E402

SECRET = "bench-signing-secret"
CLIENTS = 50
PER_CLIENT = 20
ROUNDS = 3
COMMANDS = ("top lmarena/text 10", "race lmarena/text", "model gpt-4o")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fake_slack_api(port: int) -> web.AppRunner:
    """auth.test and users.info, enough for Bolt to start and answer."""
    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body: dict[str, object] = {"ok": True}
        if method == "auth.test":
            body |= {"user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T000", "url": "https://x.slack.com/"}
        return web.json_response(body)

    app = web.Application()
    app.add_routes([web.post("/api/{method}", api)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def bare_bolt(port: int, api_url: str) -> web.AppRunner:
    """A Bolt app whose /leaderwatch handler only acks, on the same aiohttp stack."""
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token="xoxb-bench", base_url=api_url), signing_secret=SECRET)

    @bolt.command("/leaderwatch")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.add_routes([web.post("/slack/events", events)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def load(url: str, text: str) -> list[float]:
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("_slack_load.py")), url, SECRET, text,
                          str(CLIENTS), str(PER_CLIENT)], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def main() -> None:
    for var in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        os.environ.pop(var, None)
    tmp = Path(tempfile.mkdtemp())
    api_port, app_port, bare_port = free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}/api/"
    settings = Settings(db_path=str(tmp / "bench.db"), slack_mode="http", http_port=app_port,
                        slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=api_url)
    app = build_app(settings)
    lmarena_aider = [s for s in app.sources if s.name in ("lmarena", "aider")]
    print("importing the recorded LMArena and Aider history...", file=sys.stderr)
    import_recordings(app.db, lmarena_aider, recordings(), datetime.now(UTC))
    runners = [await fake_slack_api(api_port)]
    slack = SlackService(settings, command_context(app))
    runners.append(await start_http(build_web_app(app.db, app.clock, slack.routes()), app_port, "127.0.0.1"))
    await slack.start()
    runners.append(await bare_bolt(bare_port, api_url))
    settle_heap()  # as `leaderwatch run` does once started
    loop = asyncio.get_running_loop()
    # Warm up both servers, then measure (the load runs in another process; this loop serves it).

    async def measure(port: int, text: str) -> tuple[float, float]:
        """Median over ROUNDS of (p50, p99): one round's p99 hangs on a few slow moments."""
        url = f"http://127.0.0.1:{port}/slack/events"
        await loop.run_in_executor(None, load, url, text)  # warm-up
        rounds = [await loop.run_in_executor(None, load, url, text) for _ in range(ROUNDS)]
        return (statistics.median(statistics.median(r) for r in rounds),
                statistics.median(p99(r) for r in rounds))

    bare_p50, bare_p99 = await measure(bare_port, "help")
    print(f"{CLIENTS} concurrent clients x {PER_CLIENT} requests each, loopback, HTTP mode; "
          f"median of {ROUNDS} rounds")
    print(f"{'bare Bolt app (ack only)':<28} p50 {bare_p50:6.1f} ms   p99 {bare_p99:6.1f} ms")
    for text in COMMANDS:
        p50, p99_ms = await measure(app_port, text)
        ratio = p99_ms / bare_p99
        verdict = "ok" if ratio <= 1.5 and p99_ms < 100 else "MISSES TARGET"
        print(f"{'leaderwatch ' + text.split()[0]:<28} p50 {p50:6.1f} ms   "
              f"p99 {p99_ms:6.1f} ms   {ratio:.2f}x bare   {verdict}")
    await slack.stop()
    for runner in runners:
        await runner.cleanup()
    await app.aclose()


if __name__ == "__main__":
    asyncio.run(main())
