"""End to end, sources that say when they change: Aider's site answers with a renamed field, half the rows
or an HTML error page; the stored history stays as it was, the source shows as drifted, and the
operators' channel on Slack and on Discord each get exactly ONE message saying what changed and where,
however many polls see the drift; the recovery is told once too.

Real pieces throughout: the Aider source fetching recorded payloads (tests/data/drift) through the
Fetcher and `httpx.MockTransport`, the Poller with `[ops]` channels, the outbox, the Dispatcher with
the real SlackSender (slack_sdk against tests/bot/fake_slack.py) and DiscordSender (discord.py logged
in to tests/bot/fake_discord.py), one SQLite file. Only Slack, Discord and Aider's site are stood in for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlite_utils import Database

from leaderwatch.bot.chat.discord_bot import DiscordService
from leaderwatch.bot.chat.slack import SlackService
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.bot.pipeline.drift import OpsChannel
from leaderwatch.bot.pipeline.poller import Poller, PollResult
from leaderwatch.bot.runtime.http_server import Freshness, bound_port, build_web_app, start_http
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.aider import POLYGLOT_URL, AiderSource
from leaderwatch.sources.http import Fetcher
from leaderwatch.storage import outbox, status
from leaderwatch.storage import snapshots as store
from tests.bot.fake_discord import CHANNEL_ID, FakeDiscord, keep_endpoints, settings_for
from tests.bot.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_body,
    signed_headers,
    slash_payload,
)
from tests.bot.test_drift import DRIFTS, GOOD, AiderSite, aider_context, good
from tests.helpers import Clock, no_sleep

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPS_SLACK = "C0OPS"
pytestmark = pytest.mark.usefixtures("slack_environment")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(clock=lambda: clock.now.timestamp()).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def discord(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord(clock=lambda: clock().timestamp()).start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


class Service:
    """The running pieces `bot/app.py` wires, with `[ops] slack_channel` and `discord_channel` set."""

    def __init__(self, db: Database, clock: Clock, slack: FakeSlack, discord: FakeDiscord) -> None:
        self.db, self.clock = db, clock
        self.ctx = aider_context(db, clock)
        self.site = AiderSite()
        self.http = httpx.AsyncClient(transport=httpx.MockTransport(self.site))
        ops = [OpsChannel("slack", OPS_SLACK), OpsChannel("discord", str(CHANNEL_ID))]
        self.metrics = Metrics(sources=["aider"], platforms=("slack", "discord"))
        self.metrics.watch_storage(db)
        self.poller = Poller(db, Fetcher(self.http, sleep=no_sleep), clock, metrics=self.metrics, ops=ops)
        self.slack = SlackService(Settings(db_path=":memory:", http_port=0, slack_mode="http",
                                           slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN,
                                           slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url),
                                  self.ctx, min_post_interval=0)
        self.discord = DiscordService(settings_for(discord), self.ctx, guild_ready_timeout=0.05,
                                      reconnect=False, ready_timeout=5.0)

    async def start(self) -> Service:
        assert await self.slack.start()
        assert await self.discord.start()
        self.dispatcher = Dispatcher(self.db, {"slack": self.slack.sender, "discord": self.discord.sender},
                                     self.clock, sleep=no_sleep, jitter=lambda: 0.0)
        web_app = build_web_app(self.db, self.clock, self.slack.routes(), metrics=self.metrics,
                                freshness=Freshness.of({"aider": 6 * 3600}, 3.0, T0))
        self.runner = await start_http(web_app, 0, "127.0.0.1")
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(self.runner)}")
        return self

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def command(self, text: str, fake: FakeSlack) -> dict[str, Any]:
        """A signed `/leaderwatch TEXT` from #general, as Slack posts it; Bolt's answer."""
        body = form_body(slash_payload(text, channel_id="C0GENERAL", response_url=fake.response_url()))
        resp = await self.client.post("/slack/events", content=body, headers=signed_headers(body))
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    async def poll(self, polyglot: bytes) -> PollResult:
        """One scheduled poll an hour after the last, then the dispatcher's round it wakes."""
        self.clock.advance(hours=1)
        self.site.polyglot = polyglot
        result = await self.poller.poll(AiderSource(self.ctx.identity))
        await self.dispatcher.run_once()
        return result

    def history(self) -> list[tuple[int, str]]:
        return [(len(s.entries), s.content_hash) for _, s in store.history(self.db, "aider/polyglot")]

    async def stop(self) -> None:
        await self.client.aclose()
        await self.runner.cleanup()
        await self.discord.stop()
        await self.slack.stop()
        await self.http.aclose()


@pytest.fixture
async def service(fresh_db: Database, clock: Clock, slack: FakeSlack, discord: FakeDiscord
                  ) -> AsyncIterator[Service]:
    svc = await Service(fresh_db, clock, slack, discord).start()
    yield svc
    await svc.stop()


def slack_texts(fake: FakeSlack) -> list[str]:
    """What each message in the ops channel says, as a person reads it (the blocks' text, joined)."""
    out = []
    for post in fake.posts(OPS_SLACK):
        parts = [post.text]
        for block in post.blocks or []:
            text = block.get("text")
            parts.append(text.get("text", "") if isinstance(text, dict) else "")
            parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
        out.append("\n".join(parts))
    return out


def discord_texts(fake: FakeDiscord) -> list[str]:
    out = []
    for message in fake.posts(CHANNEL_ID):
        parts: list[Any] = [message.get("content") or ""]
        for embed in message.get("embeds") or []:
            parts += [embed.get("title", ""), embed.get("description", ""), embed.get("url", "")]
        out.append("\n".join(str(p) for p in parts))
    return out


@pytest.mark.parametrize("name", list(DRIFTS))
async def test_a_drift_is_told_once_on_slack_and_discord_and_so_is_the_recovery(
        service: Service, slack: FakeSlack, discord: FakeDiscord, name: str) -> None:
    payload, told = DRIFTS[name]
    assert (await service.poll(GOOD)).ok
    history = service.history()
    assert slack.posts() == [] and discord.posts() == []

    drifted = await service.poll(payload)

    assert drifted.drifted and service.history() == history
    st = status.status_of(service.db, "aider")
    assert st is not None and st.status == "drifted"
    [on_slack] = slack_texts(slack)
    [on_discord] = discord_texts(discord)
    origin = "https://aider.chat/docs/leaderboards/" if name == "half the rows" else POLYGLOT_URL
    for text in (on_slack, on_discord):
        assert "Source drifted: aider" in text and told in text and f"Origin: {origin}" in text
        assert "keeps the last good table" in text

    # Shown where operators and users look: /healthz (named, still 200), /metrics, `boards` in chat.
    health = await service.get("/healthz")
    assert health.status_code == 200 and list(health.json()["drifted"]) == ["aider"]
    assert told in health.json()["drifted"]["aider"]
    assert 'leaderwatch_source_drifted{source="aider"} 1.0' in (await service.get("/metrics")).text
    boards = json.dumps(await service.command("boards", slack))
    assert "aider/polyglot (held: 8 rows)" in boards if name == "half the rows" else \
        "aider/polyglot (drifted)" in boards
    assert "aider drifted since 2026-03-02" in boards

    # The same drift again and again: nothing more reaches either channel, nothing is stored.
    again = payload if name != "half the rows" else payload.replace(b"pass_rate_2: 35.6", b"pass_rate_2: 37")
    for n in range(3):
        assert (await service.poll(again if n % 2 == 0 else payload)).drifted
    assert len(slack.posts()) == 1 and len(discord.posts()) == 1
    assert service.history() == history

    recovered = await service.poll(good(36.0))

    assert recovered.ok and [rows for rows, _ in service.history()] == [20, 20]
    assert len(slack.posts(OPS_SLACK)) == 2 and len(discord.posts(CHANNEL_ID)) == 2
    for text in (slack_texts(slack)[1], discord_texts(discord)[1]):
        assert "Source recovered: aider" in text and "aider reads fine again" in text
    assert (await service.poll(good(36.5))).ok
    assert len(slack.posts()) == 2 and len(discord.posts()) == 2
    assert set(outbox.depth(service.db)) == {"delivered"}
    assert (await service.get("/healthz")).json()["drifted"] == {}
    assert 'leaderwatch_source_drifted{source="aider"} 0.0' in (await service.get("/metrics")).text
