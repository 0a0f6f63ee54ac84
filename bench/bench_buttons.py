"""Time to ack a click on an alert's buttons: Slack HTTP mode on loopback, bursts of 50 concurrent clicks.

The real Bolt app of `SlackService` on the one aiohttp server, over the recorded LMArena and Aider
history with the events its rules find; each of 50 channels follows `lmarena/*` (so *Why* reruns the
channel's rules). The clicks are signed `block_actions` of a real alert's *Why* and *Mute this board*
buttons (and the mute's menu, 30 days), by members and by admins: 50 clients, each its own user in its
own channel, click at once, from another process (bench/_slack_load.py --clicks) so the client does not
compete with the server for its event loop. Measured: the HTTP answer to each POST, Slack's ack, not
the private answer that follows on response_url; the work the clicks start (users.info, `why`, the
mute's write and audit, the response_url post) runs on the same loop meanwhile, as in service. The next
burst starts once every click of the last one was answered. Target: p99 < 100 ms; the exit status is 1
when it is missed. The Slack Web API and response_url are a tiny fake (auth.test, users.info).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import recordings  # noqa: E402
from bench.bench_slack_ack import free_port  # noqa: E402
from leaderwatch.alerts.formatting import event_reply  # noqa: E402
from leaderwatch.alerts.models import Event  # noqa: E402
from leaderwatch.bot.app import build_app, command_context, settle_heap  # noqa: E402
from leaderwatch.bot.chat.slack import SlackService, to_message  # noqa: E402
from leaderwatch.bot.commands import Invocation, dispatch  # noqa: E402
from leaderwatch.bot.commands.actions import action_id, alert_actions, with_actions  # noqa: E402
from leaderwatch.bot.pipeline.importer import import_recordings  # noqa: E402
from leaderwatch.bot.runtime.http_server import build_web_app, start_http  # noqa: E402
from leaderwatch.bot.settings import Settings  # noqa: E402
from leaderwatch.storage.events import to_event  # noqa: E402

SECRET = "bench-signing-secret"
CLIENTS = 50
BURSTS = 20
"""Bursts per run (each client's first click, opening its connection, is not counted)."""
ROUNDS = 3
TARGET_MS = 100.0
BOARD = "lmarena/text"
MESSAGE_TS = "1723000000.000100"


def user(worker: int) -> str:
    return f"U{worker:04d}"


def is_admin(user_id: str) -> bool:
    """Half the clickers are workspace admins (their mutes go through), half members (refused)."""
    return int(user_id[1:]) % 2 == 0


class FakeSlackApi:
    """auth.test, users.info (admins by `is_admin`) and response_url, counting the answers posted there;
    `GET /settled?since=A&n=N` answers once N answers came after the first A."""

    def __init__(self) -> None:
        self.answers = 0
        self.answered = asyncio.Condition()
        self.runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        async def api(request: web.Request) -> web.Response:
            method = request.match_info["method"]
            body: dict[str, object] = {"ok": True}
            if method == "auth.test":
                body |= {"user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T000", "url": "https://x.slack.com/"}
            elif method == "users.info":  # slack_sdk asks it with GET
                uid = str(request.query.get("user") or (await request.post()).get("user") or "")
                body["user"] = {"id": uid, "is_admin": is_admin(uid), "is_owner": False}
            return web.json_response(body)

        async def response(request: web.Request) -> web.Response:
            await request.read()
            async with self.answered:
                self.answers += 1
                self.answered.notify_all()
            return web.Response(text="ok")

        async def settled(request: web.Request) -> web.Response:
            want = int(request.query["since"]) + int(request.query["n"])
            async with self.answered:
                await asyncio.wait_for(self.answered.wait_for(lambda: self.answers >= want), 60)
            return web.Response(text="ok")

        app = web.Application()
        app.add_routes([web.route("*", "/api/{method}", api), web.post("/response/{hook}", response),
                        web.get("/settled", settled)])
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()


def clicks(event: Event, api_port: int) -> list[list[dict[str, Any]]]:
    """Per client, the clicks it sends in turn on the alert of `event`: Why, Mute 7d, Why, Mute 30d from
    the menu; each client is its own user in its own channel."""
    message = {"type": "message", "ts": MESSAGE_TS, "user": "U0BOT", "bot_id": "B0BOT",
               **to_message(with_actions(event_reply(event), event))}
    why, _, mute, _ = alert_actions(event)

    def button(action_id_: str, text: str, value: str) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id_, "block_id": "bk", "value": value,
                "text": {"type": "plain_text", "text": text, "emoji": True}, "action_ts": MESSAGE_TS}

    menu = {"type": "overflow", "action_id": action_id(mute, ""), "block_id": "bk", "action_ts": MESSAGE_TS,
            "selected_option": {"text": {"type": "plain_text", "text": "30 days"}, "value": "30d"}}
    actions = [button(action_id(why), why.label, "why"), button(action_id(mute), mute.label, "7d"),
               button(action_id(why), why.label, "why"), menu]
    out = []
    for worker in range(CLIENTS):
        channel = f"C{worker:04d}"
        out.append([{
            "type": "block_actions", "api_app_id": "A000", "token": "x", "trigger_id": f"{worker}.1",
            "user": {"id": user(worker), "username": f"user{worker}", "name": f"user{worker}",
                     "team_id": "T000"},
            "team": {"id": "T000", "domain": "bench"}, "enterprise": None, "is_enterprise_install": False,
            "container": {"type": "message", "message_ts": MESSAGE_TS, "channel_id": channel,
                          "is_ephemeral": False},
            "channel": {"id": channel, "name": channel.lower()}, "message": message, "state": {"values": {}},
            "response_url": f"http://127.0.0.1:{api_port}/response/{worker}", "actions": [action]}
            for action in actions])
    return out


def load(url: str, payloads: Path, settled: str) -> list[float]:
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("_slack_load.py")), "--clicks", url,
                          SECRET, str(payloads), str(BURSTS), settled],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"the load generator failed: {out.stderr[-2000:]}")
    return list(json.loads(out.stdout))


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


async def main() -> int:
    for var in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        os.environ.pop(var, None)
    tmp = Path(tempfile.mkdtemp())
    api_port, app_port = free_port(), free_port()
    settings = Settings(db_path=str(tmp / "bench.db"), slack_mode="http", http_port=app_port,
                        slack_bot_token="xoxb-bench", slack_signing_secret=SECRET,
                        slack_api_url=f"http://127.0.0.1:{api_port}/api/")
    app = build_app(settings)
    lmarena_aider = [s for s in app.sources if s.name in ("lmarena", "aider")]
    print("importing the recorded LMArena and Aider history and its events...", file=sys.stderr)
    import_recordings(app.db, lmarena_aider, recordings(), datetime.now(UTC), rules=app.rules,
                      groups=app.groups)
    [row] = app.db.table("events").rows_where("board_id = ?", [BOARD], order_by="at DESC", limit=1)
    event = to_event(row)
    ctx = command_context(app)
    for worker in range(CLIENTS):  # each channel follows the LMArena boards with the default rules
        subscribed = await dispatch(ctx, Invocation("slack", f"C{worker:04d}", "U0OPS", "ops",
                                                    "subscribe lmarena/*", can_configure=True))
        assert not subscribed.error, subscribed.text
    payloads = tmp / "clicks.json"
    payloads.write_text(json.dumps(clicks(event, api_port)), encoding="utf-8")
    fake = FakeSlackApi()
    await fake.start(api_port)
    slack = SlackService(settings, ctx)
    runner = await start_http(build_web_app(app.db, app.clock, slack.routes()), app_port, "127.0.0.1")
    await slack.start()
    settle_heap()  # as `leaderwatch run` does once started
    loop = asyncio.get_running_loop()
    url = f"http://127.0.0.1:{app_port}/slack/events"
    sent = CLIENTS * (BURSTS + 1)

    async def one_round() -> list[float]:
        """One run of bursts, each waiting for the answers to the last (so no work spills over)."""
        before = fake.answers
        settled = f"http://127.0.0.1:{api_port}/settled?since={before}"
        acks = await loop.run_in_executor(None, load, url, payloads, settled)
        assert fake.answers - before == sent, f"{fake.answers - before} answers to {sent} clicks"
        return acks

    await one_round()  # warm-up
    rounds = [percentiles(await one_round()) for _ in range(ROUNDS)]
    figures = {k: statistics.median(r[k] for r in rounds) for k in ("p50", "p95", "p99")}
    worst = max(r["max"] for r in rounds)
    audited = app.db.execute("SELECT count(*) FROM audit WHERE action = 'mute'").fetchone()[0]
    print(f"{BURSTS} bursts of {CLIENTS} concurrent clicks (Why, Mute 7d, Mute 30d from the menu; half by "
          f"admins), loopback, HTTP mode; median of {ROUNDS} runs")
    print(f"ack  p50 {figures['p50']:6.1f} ms   p95 {figures['p95']:6.1f} ms   "
          f"p99 {figures['p99']:6.1f} ms   max {worst:6.1f} ms (worst round)")
    print(f"every click answered on response_url ({(ROUNDS + 1) * sent} answers; {audited} mutes audited)")
    ok = figures["p99"] < TARGET_MS
    print(f"target: p99 < {TARGET_MS:.0f} ms at {CLIENTS} concurrent clicks: {'ok' if ok else 'MISSED'}")
    await slack.stop()
    await runner.cleanup()
    if fake.runner is not None:
        await fake.runner.cleanup()
    await app.aclose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
