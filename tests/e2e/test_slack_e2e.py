"""End to end through Slack: subscribe with a signed slash command, ingest a recorded snapshot that
fires the rule, deliver through the outbox, and see exactly one alert reach the fake Slack channel,
also across a 429 and across a process killed before or after Slack accepted the message.

Real pieces throughout: the Bolt app in HTTP mode on the aiohttp server, the Aider source fetching
recorded YAML through `httpx.MockTransport`, the Poller with the Alerter, the Dispatcher with the
SlackSender, one SQLite file. Only Slack (tests/bot/fake_slack.py) and the Aider website are stood in for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.chat.slack import ALERT_EVENT_TYPE, SlackService
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.bot.runtime.http_server import bound_port, build_web_app, start_http
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.identity import Identity, load_groups
from leaderwatch.sources.registry import all_boards, all_sources
from leaderwatch.storage import outbox
from leaderwatch.storage.db import open_db
from tests.bot.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_body,
    signed_headers,
    slash_payload,
)
from tests.helpers import Clock, edit_yaml, no_sleep, poll_aider

ADMIN = "U0ADMIN"
ALERTS = "C0ALERTS"  # follows aider/edit overtakes: gets the alert
OTHER = "C0OTHER"  # follows lmarena boards only: gets nothing
QUIET = "C0QUIET"  # follows nothing
pytestmark = pytest.mark.usefixtures("slack_environment")


class Process:
    """One run of the service on the database file: the pieces `bot/app.py` wires, built afresh."""

    def __init__(self, db_path: Path, fake: FakeSlack, clock: Clock) -> None:
        self.clock = clock
        self.fake = fake
        self.db = open_db(db_path)
        identity = Identity.load()
        self.groups = load_groups({}, identity)
        self.rules = default_rules(list(self.groups))
        sources = all_sources(identity)
        self.ctx = CommandContext(self.db, identity, self.groups, self.rules, all_boards(sources), clock)
        settings = Settings(db_path=str(db_path), http_port=0, slack_mode="http", slack_bot_token=BOT_TOKEN,
                            slack_app_token=APP_TOKEN, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=fake.api_url)
        self.slack = SlackService(settings, self.ctx, min_post_interval=0)
        self.dispatcher = Dispatcher(self.db, {"slack": self.slack.sender}, clock, sleep=no_sleep,
                                     jitter=lambda: 0.0)
        self.runner: web.AppRunner | None = None
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> Process:
        assert await self.slack.start()
        web_app = build_web_app(self.db, self.clock, self.slack.routes())
        self.runner = await start_http(web_app, 0, "127.0.0.1")
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(self.runner)}")
        return self

    async def command(self, text: str, channel_id: str, user_id: str = ADMIN) -> dict[str, Any]:
        assert self.client is not None
        body = form_body(slash_payload(text, channel_id=channel_id, user_id=user_id,
                                       response_url=self.fake.response_url()))
        resp = await self.client.post("/slack/events", content=body, headers=signed_headers(body))
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    async def poll(self, edit_yaml: bytes) -> None:
        """Poll the Aider source once; the site serves `edit_yaml` (the polyglot file is unchanged)."""
        await poll_aider(self.ctx, edit_yaml)

    async def stop(self) -> None:
        """Stop as a killed process would leave things: no outbox bookkeeping, just gone."""
        if self.client is not None:
            await self.client.aclose()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.slack.stop()
        self.db.close()


@pytest.fixture
def clock() -> Clock:
    """The service's clock, shared with the fake Slack's message timestamps; starts at the real time."""
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN}, clock=lambda: clock.now.timestamp()).start()
    yield slack
    await slack.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "leaderwatch.db"


async def subscribed_and_ingested(db_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> Process:
    """A process where #alerts subscribed (slash command) and the 2024-06-17 Aider edit board came in.

    On 2024-06-17 DeepSeek Coder V2 (China) took the Aider code editing board from gpt-4o (US).
    """
    proc = await Process(db_path, fake, clock).start()
    reply = await proc.command("subscribe aider/edit overtake", ALERTS)
    assert reply["blocks"][0]["text"]["text"] == "Subscribed", reply
    reply = await proc.command("subscribe lmarena/* overtake new_leader", OTHER)
    assert reply["blocks"][0]["text"]["text"] == "Subscribed", reply
    await proc.poll(edit_yaml(excerpts, "2024-05-15"))
    assert outbox.depth(proc.db) == {}
    clock.advance(3600)
    await proc.poll(edit_yaml(excerpts, "2024-06-17"))
    rows = queued(proc)
    assert [(r["channel_id"], r["status"]) for r in rows] == [(ALERTS, "pending")]
    assert not fake.called("chat.postMessage")
    return proc


def queued(proc: Process) -> list[dict[str, Any]]:
    return list(proc.db.table("outbox").rows_where(order_by="id"))


def alert_keys(fake: FakeSlack, channel: str) -> list[str]:
    keys = []
    for posted in fake.posts(channel):
        assert posted.metadata is not None and posted.metadata["event_type"] == ALERT_EVENT_TYPE
        keys.append(posted.metadata["event_payload"]["delivery_key"])
    return keys


async def test_a_subscribed_channel_gets_exactly_one_alert(db_path: Path, fake: FakeSlack, clock: Clock,
                                                           excerpts: Path) -> None:
    proc = await subscribed_and_ingested(db_path, fake, clock, excerpts)
    try:
        assert await proc.dispatcher.run_once() == 1
        [row] = queued(proc)
        assert row["status"] == "delivered"
        assert alert_keys(fake, ALERTS) == [row["delivery_key"]]
        [posted] = fake.posts(ALERTS)
        assert posted.blocks is not None
        assert posted.blocks[0]["text"]["text"] == "Overtake on aider/edit"
        assert "Deepseek Coder V2" in posted.text and "gpt-4o" in posted.text
        assert fake.posts(OTHER) == [] and fake.posts(QUIET) == []
        assert len(fake.posts()) == 1
        # Nothing more to send, however often the dispatcher runs.
        clock.advance(60)
        assert await proc.dispatcher.run_once() == 0
        assert len(fake.called("chat.postMessage")) == 1
    finally:
        await proc.stop()


async def test_a_429_is_retried_and_the_alert_arrives_once(db_path: Path, fake: FakeSlack, clock: Clock,
                                                           excerpts: Path) -> None:
    proc = await subscribed_and_ingested(db_path, fake, clock, excerpts)
    try:
        fake.rate_limit_posts = 1  # the next chat.postMessage gets 429, Retry-After: 0
        assert await proc.dispatcher.run_once() == 0
        [row] = queued(proc)
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert "rate limited" in row["last_error"]
        assert fake.posts(ALERTS) == []
        clock.advance(2)  # Retry-After 0 plus the dispatcher's under-a-second spread
        assert await proc.dispatcher.run_once() == 1
        assert len(fake.called("chat.postMessage")) == 2
        assert alert_keys(fake, ALERTS) == [row["delivery_key"]]
        # A 429 is a certain refusal: no history check was needed before the retry.
        assert not fake.called("conversations.history")
        assert queued(proc)[0]["status"] == "delivered"
    finally:
        await proc.stop()


async def test_a_500_is_retried_after_checking_the_channel(db_path: Path, fake: FakeSlack, clock: Clock,
                                                           excerpts: Path) -> None:
    proc = await subscribed_and_ingested(db_path, fake, clock, excerpts)
    try:
        fake.server_error_posts = 1  # Slack may or may not have posted it
        assert await proc.dispatcher.run_once() == 0
        clock.advance(10)
        assert await proc.dispatcher.run_once() == 1
        assert len(fake.called("conversations.history")) == 1
        assert len(alert_keys(fake, ALERTS)) == 1
    finally:
        await proc.stop()


async def test_killed_between_outbox_and_delivery_delivers_once_after_restart(
        db_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> None:
    first = await subscribed_and_ingested(db_path, fake, clock, excerpts)
    [row] = queued(first)
    await first.stop()  # killed: the outbox row was committed with the snapshot, nothing was sent

    clock.advance(30)
    second = await Process(db_path, fake, clock).start()  # new Bolt app, sender and dispatcher
    try:
        assert await second.dispatcher.run_once() == 1
        assert alert_keys(fake, ALERTS) == [row["delivery_key"]]
        clock.advance(60)
        assert await second.dispatcher.run_once() == 0
        assert len(fake.posts()) == 1
        # The subscription survived the restart: the channel still follows aider/edit.
        assert [r["channel_id"] for r in second.db.table("subscriptions").rows_where(
            "board_pattern = ?", ["aider/edit"])] == [ALERTS]
    finally:
        await second.stop()


async def test_killed_after_slack_accepted_but_before_marking_does_not_post_again(
        db_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> None:
    first = await subscribed_and_ingested(db_path, fake, clock, excerpts)
    [row] = queued(first)
    fake.post_gate = asyncio.Event()  # Slack stores the message, then the process dies before the answer
    delivering = asyncio.ensure_future(first.dispatcher.run_once())
    await fake.wait_for(lambda: fake.posts(ALERTS))
    delivering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivering
    fake.post_gate.set()
    assert queued(first)[0]["status"] == "sending"  # claimed, never confirmed
    await first.stop()

    clock.advance(30)
    second = await Process(db_path, fake, clock).start()
    try:
        assert await second.dispatcher.run_once() == 1  # recovered as delivered
        history = fake.called("conversations.history")
        assert [c.params["channel"] for c in history] == [ALERTS]
        assert len(fake.called("chat.postMessage")) == 1
        assert alert_keys(fake, ALERTS) == [row["delivery_key"]]
        assert queued(second)[0]["status"] == "delivered"
        clock.advance(60)
        assert await second.dispatcher.run_once() == 0
        assert len(fake.posts()) == 1
    finally:
        await second.stop()
