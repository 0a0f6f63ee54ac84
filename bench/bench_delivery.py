"""Delivery at the platforms' pace: one overtake on lmarena/text fanned out to N channels (an alert each,
with its chart: charts on, as shipped), delivered by the Dispatcher in the shipped configuration
(`[delivery]` defaults: slots, send timeout, per-channel interval, the platforms' rates) through the real
Slack and Discord senders, against the loopback fakes with their rate limits on:

- Slack: chat.postMessage 1 a second per channel (bursts of 3) and 300 a minute for the workspace,
  files.getUploadURLExternal / files.completeUploadExternal 100 a minute (tier 4), chat.update and
  conversations.* 50 a minute (tier 3). Target: done within 2x the fake's own minimum (N / 5 s).
- Discord: 50 requests a second for the bot (global 429 with retry_after beyond). Target: no 429, done
  within 10 % of the minimum (N / 50 s: 200 s for 10,000).
- Healthy rows behind 1,000 rows waiting out a 429 (Discord): they flow at the full 50 a second.

The full sizes (10,000 alerts each) take about 33 min for Slack and 200 s for Discord; the defaults are
scaled down (say so when quoting): `--slack 10000 --discord 10000` runs them whole. Each fake runs in a
process of its own (as the platform would), so its work is not counted against the dispatcher's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leaderwatch.bot.app import delivery_pacing  # noqa: E402
from leaderwatch.bot.chat.discord_bot import DiscordService  # noqa: E402
from leaderwatch.bot.chat.slack import SlackSender, web_client  # noqa: E402
from leaderwatch.bot.commands import CommandContext  # noqa: E402
from leaderwatch.bot.pipeline.alert_charts import chart_alerts  # noqa: E402
from leaderwatch.bot.pipeline.alerter import Alerter  # noqa: E402
from leaderwatch.bot.pipeline.delivery import Dispatcher, Sender  # noqa: E402
from leaderwatch.bot.pipeline.store import Stored  # noqa: E402
from leaderwatch.bot.runtime.metrics import Metrics  # noqa: E402
from leaderwatch.bot.settings import Settings  # noqa: E402
from leaderwatch.storage import outbox  # noqa: E402
from leaderwatch.storage.db import Database, open_db  # noqa: E402
from leaderwatch.storage.snapshots import save_snapshot, snapshots_between  # noqa: E402
from leaderwatch.storage.subscriptions import add_subscription  # noqa: E402
from tests.bot.fake_discord import GUILD_ID, TOKEN, FakeDiscord  # noqa: E402
from tests.bot.fake_slack import BOT_TOKEN, FakeSlack  # noqa: E402
from tests.helpers import build_context, import_subset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 8, 5, 12, 0, tzinfo=UTC)
RECORDED = tuple(f"lmarena/fboulnois_lmarena_csv/lmarena_text_{day}.csv"
                 for day in ("2025-07-27", "2025-07-28", "2025-08-01", "2025-08-04"))
GROUPS = {"alibaba": {"organizations": ["Alibaba"]}, "deepseek": {"organizations": ["DeepSeek"]}}
RULE = "overtake groups=alibaba,deepseek"
"""Alibaba's Qwen3 passes DeepSeek on 2025-08-01 in the recorded tables: one overtake, one chart."""
SLACK_LIMITS = {"chat.postMessage": 300.0, "files.getUploadURLExternal": 100.0,
                "files.completeUploadExternal": 100.0, "chat.update": 50.0, "conversations.history": 50.0,
                "conversations.replies": 50.0}
DISCORD_RATE = 50.0
BLOCKED = 1000


class Remote:
    """A fake platform in a child process (`--serve slack|discord`), driven by lines on its stdin:
    `limit` turns Discord's global rate on, `stats` answers what it counted; end of input stops it."""

    def __init__(self, child: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.child, self.info = child, info

    @classmethod
    async def start(cls, kind: str) -> Remote:
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", kind, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=ROOT)
        assert child.stdout is not None
        return cls(child, json.loads(await child.stdout.readline()))

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(command.encode() + b"\n")
        await self.child.stdin.drain()
        return dict(json.loads(await self.child.stdout.readline()))

    async def stop(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        await self.child.wait()


async def serve(kind: str) -> None:
    """The child: one fake, with the platform's limits (Discord's once told `limit`)."""
    fake: FakeSlack | FakeDiscord
    if kind == "slack":
        fake = await FakeSlack(method_limits=dict(SLACK_LIMITS), channel_rate=1.0).start()
        info = {"api_url": fake.api_url}
    else:
        fake = await FakeDiscord().start()
        info = {"api_url": fake.api_url, "gateway_url": fake.gateway_url}
    print(json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if line == "limit" and isinstance(fake, FakeDiscord):
            fake.global_rate = DISCORD_RATE
        shared = len(fake.shared()) if isinstance(fake, FakeSlack) else 0
        print(json.dumps({"rate_limited": len(fake.rate_limited), "shared": shared}), flush=True)
    await fake.stop()


def template(folder: Path) -> Path:
    """The recorded LMArena text tables (the in-repo excerpts), imported once."""
    db, report = import_subset(ROOT / "tests" / "data" / "recordings", folder, RECORDED, NOW)
    assert not report.errors, report.errors
    db.close()
    return folder / "template.db"


def fan_out(path: Path, recorded: Path, platform: str,
            channels: list[str]) -> tuple[Database, CommandContext]:
    """A database where `channels` follow the overtake rule and the tables arrived as polls would store
    them: the overtake queued once per channel."""
    db = open_db(path)
    with db.atomic():
        for channel in channels:
            add_subscription(db, platform, channel, "lmarena/text", RULE, "U0ADMIN", NOW)
    ctx = build_context(db, lambda: NOW, GROUPS)
    alerter = Alerter(db, ctx.default_rules, ctx.groups, lambda: NOW)
    source = open_db(recorded)
    for snap in snapshots_between(source, "lmarena/text"):
        with db.atomic():
            alerter.on_change(Stored(snap, save_snapshot(db, snap)))
    source.close()
    queued = outbox.depth(db).get("pending", 0)
    assert queued == len(channels), f"{queued} alerts queued for {len(channels)} channels"
    return db, ctx


def service_clock() -> Callable[[], datetime]:
    """The service's clock: NOW at the start, then real time."""
    start = time.monotonic()
    return lambda: NOW + timedelta(seconds=time.monotonic() - start)


async def deliver(db: Database, ctx: CommandContext, platform: str, sender: Sender, target: int,
                  timeout: float) -> float:
    """Run the shipped dispatcher until `target` alerts are delivered; the seconds it took."""
    settings = Settings()
    metrics = Metrics(platforms=(platform,))
    dispatcher = Dispatcher(db, {platform: sender}, service_clock(), decorate=chart_alerts(ctx),
                            metrics=metrics, concurrency=int(settings.delivery["slots"]),
                            pacing=delivery_pacing(settings), send_timeout=settings.delivery["send_timeout"])
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        # The dispatcher's own counter (one alert per message here): watching costs no query.
        while metrics.deliveries.labels(platform)._value.get() < target:
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"{platform}: {delivered(db)} of {target} delivered after {timeout:.0f} s")
            await asyncio.sleep(0.02)
        return time.perf_counter() - start
    finally:
        stop.set()
        await task


def delivered(db: Database) -> int:
    return outbox.depth(db).get("delivered", 0)


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


async def bench_slack(folder: Path, recorded: Path, n: int) -> bool:
    fake = await Remote.start("slack")
    try:
        db, ctx = fan_out(folder / "slack.db", recorded, "slack", [f"C{i:08d}" for i in range(n)])
        settings = Settings(slack_bot_token=BOT_TOKEN, slack_api_url=fake.info["api_url"])
        sender = SlackSender(web_client(settings, retry_rate_limits=False))
        rate = SLACK_LIMITS["chat.postMessage"] / 60
        minimum = max(1.0, n - rate) / rate  # the fake's burst (a second's worth) goes at once
        seconds = await deliver(db, ctx, "slack", sender, n, 4 * minimum + 60)
        stats = await fake.ask("stats")
        ok = seconds <= 2 * minimum and delivered(db) == n
        print(f"slack: {n} alerts to {n} channels in {seconds:.1f} s ({n / seconds:.1f}/s); the fake's own "
              f"minimum {minimum:.1f} s; target within 2x: {seconds / minimum:.2f}x {verdict(ok)}")
        print(f"slack: {stats['rate_limited']} calls answered 429; {stats['shared']} alerts carried their "
              f"chart (uploads {SLACK_LIMITS['files.getUploadURLExternal']:.0f} a minute), "
              f"{n - stats['shared']} went without")
        db.close()
        return ok
    finally:
        await fake.stop()


async def discord_service(fake: Remote, ctx: CommandContext) -> DiscordService:
    settings = Settings(db_path=":memory:", discord_token=TOKEN, discord_api_url=fake.info["api_url"],
                        discord_gateway_url=fake.info["gateway_url"], discord_guilds=(GUILD_ID,))
    service = DiscordService(settings, ctx, guild_ready_timeout=0.05, reconnect=False, ready_timeout=5.0)
    assert await service.start()
    await fake.ask("limit")  # on once the bot has started (its start-up requests are not timed)
    return service


async def bench_discord(folder: Path, recorded: Path, n: int) -> bool:
    fake = await Remote.start("discord")
    channels = [str(960_000_000_000_000_000 + i) for i in range(n)]
    db, ctx = fan_out(folder / "discord.db", recorded, "discord", channels)
    service = await discord_service(fake, ctx)
    try:
        minimum = n / DISCORD_RATE
        seconds = await deliver(db, ctx, "discord", service.sender, n, 2 * minimum + 60)
        limited = (await fake.ask("stats"))["rate_limited"]
        ok = not limited and seconds <= 1.1 * minimum and delivered(db) == n
        print(f"discord: {n} alerts to {n} channels in {seconds:.1f} s ({n / seconds:.1f}/s); minimum "
              f"{minimum:.1f} s at {DISCORD_RATE:.0f} requests/s; {limited} answered 429; "
              f"target no 429 and within 10 %: {seconds / minimum:.2f}x {verdict(ok)}")
        db.close()
        return ok
    finally:
        await service.stop()
        await fake.stop()


async def bench_blocked(folder: Path, recorded: Path, healthy: int) -> bool:
    """1,000 rows waiting out a 429 (their retry_after an hour away) queued before `healthy` others."""
    fake = await Remote.start("discord")
    channels = [str(970_000_000_000_000_000 + i) for i in range(BLOCKED + healthy)]
    db, ctx = fan_out(folder / "blocked.db", recorded, "discord", channels)
    first = [int(row[0]) for row in db.execute("SELECT id FROM outbox ORDER BY id LIMIT ?", [BLOCKED])]
    outbox.mark_retry_all(db, first, NOW + timedelta(hours=1), "send: HTTP 429: rate limited")
    service = await discord_service(fake, ctx)
    try:
        minimum = healthy / DISCORD_RATE
        seconds = await deliver(db, ctx, "discord", service.sender, healthy, 2 * minimum + 60)
        limited = (await fake.ask("stats"))["rate_limited"]
        waiting = outbox.depth(db).get("pending", 0)
        ok = not limited and seconds <= 1.1 * minimum and waiting == BLOCKED
        print(f"blocked: {healthy} healthy alerts behind {BLOCKED} waiting on a 429 delivered in "
              f"{seconds:.1f} s ({healthy / seconds:.1f}/s; full rate {minimum:.1f} s); {waiting} still "
              f"waiting; {limited} answered 429; target within 10 % of the full rate: "
              f"{seconds / minimum:.2f}x {verdict(ok)}")
        db.close()
        return ok
    finally:
        await service.stop()
        await fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slack", type=int, default=300, help="alerts (and channels) on Slack; 0 skips")
    parser.add_argument("--discord", type=int, default=2000,
                        help="alerts (and channels) on Discord; 0 skips")
    parser.add_argument("--healthy", type=int, default=500,
                        help="healthy alerts behind 1,000 waiting on a 429; 0 skips")
    parser.add_argument("--serve", choices=("slack", "discord"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    logging.basicConfig(level=logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recorded = template(folder / "template")
        if args.discord:
            results.append(asyncio.run(bench_discord(folder, recorded, args.discord)))
        if args.healthy:
            results.append(asyncio.run(bench_blocked(folder, recorded, args.healthy)))
        if args.slack:
            results.append(asyncio.run(bench_slack(folder, recorded, args.slack)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
