"""Discord over its Interactions Endpoint URL (`bot/chat/discord_http.py`), end to end on loopback.

The one HTTP server (`build_web_app`) serves `/discord/interactions`; the fake Discord (tests/bot/
fake_discord.py) posts interactions to it signed with an Ed25519 key made here, takes the HTTP answer as
the interaction's callback, and records the webhook edits and follow-ups that come after. Alerts go out
through the real discord.py client logged in for REST only (LEADERWATCH_DISCORD_MODE=http): no gateway.

The database is the real recorded subset of tests/bot/test_commands.py with its stored events.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlite_utils import Database

from leaderwatch.bot.chat.discord_bot import ADMIN_GROUP, CHART_FILE, GROUP, DiscordService, to_payloads
from leaderwatch.bot.chat.discord_http import PATH, DiscordInteractions
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.runtime.http_server import bound_port, build_web_app, start_http
from leaderwatch.bot.settings import ConfigError, load_settings
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.snapshots import latest_snapshot
from tests.bot import test_discord
from tests.bot.fake_discord import (
    APP_ID,
    CHANNEL_ID,
    EPHEMERAL,
    LOADING,
    MANAGER,
    MANAGER_ID,
    MEMBER_PERMISSIONS,
    FakeDiscord,
    component_interaction,
    interaction_json,
    settings_for,
)
from tests.bot.test_commands import NOW, ask, build_database, config, make_context
from tests.bot.test_discord import shown
from tests.bot.test_discord_buttons import NEW_MODEL, deliver

CHANNEL = str(CHANNEL_ID)
KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
ADMINISTRATOR = 1 << 3

fake = test_discord.fake
"""The fake Discord (test_discord.py's fixture: discord.py's endpoints restored after each test)."""


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("discord_http"))


@pytest.fixture
async def ctx(db: Database, identity: Identity) -> CommandContext:
    """The command context over a copy of the template (clock: NOW); the channel follows lmarena/text."""
    context = make_context(db, identity)
    reply = await ask(context, "subscribe lmarena/text new_model top=10", manager=True, channel=CHANNEL,
                      platform="discord")
    assert not reply.error, reply.text
    return context


@dataclass
class Endpoint:
    """The interactions endpoint served on the one HTTP server, and the URL Discord posts to."""

    interactions: DiscordInteractions
    url: str


async def serve(fake: FakeDiscord, ctx: CommandContext, budget: float = 30.0) -> AsyncIterator[Endpoint]:
    client = httpx.AsyncClient()
    interactions = DiscordInteractions(ctx, PUBLIC_KEY, client, to_payloads, api_url=fake.api_url,
                                       budget=budget)
    runner = await start_http(build_web_app(ctx.db, ctx.clock, interactions.routes()), 0, host="127.0.0.1")
    try:
        yield Endpoint(interactions, f"http://127.0.0.1:{bound_port(runner)}{PATH}")
    finally:
        await interactions.close()
        await runner.cleanup()
        await client.aclose()


@pytest.fixture
async def endpoint(fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[Endpoint]:
    """A budget no answer here needs (answers in the HTTP response); deferral is tested with 0 below."""
    async for served in serve(fake, ctx):
        yield served


@pytest.fixture
async def slow(fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[Endpoint]:
    """Every answer deferred, then edited in through the webhook."""
    async for served in serve(fake, ctx, budget=0.0):
        yield served


def signed(body: bytes, key: Ed25519PrivateKey = KEY, at: float | None = None) -> dict[str, str]:
    """The headers Discord sends: the Ed25519 signature of timestamp + body."""
    stamp = str(int(NOW.timestamp() if at is None else at))
    return {"X-Signature-Ed25519": key.sign(stamp.encode() + body).hex(), "X-Signature-Timestamp": stamp}


async def post(fake: FakeDiscord, endpoint: Endpoint, payload: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(payload).encode()
    return await fake.post_interaction(endpoint.url, payload, signed(body), body)


def embeds_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return (answer.get("data") or answer).get("embeds") or []


def table_lines(embeds: list[dict[str, Any]]) -> list[str]:
    """The lines of the one table (a code block) in some embeds, header first."""
    [table] = [e["description"] for e in embeds if (e.get("description") or "").startswith("```")]
    return table.strip("`\n").splitlines()


# -- signatures ------------------------------------------------------------------------------------------

async def test_a_signed_ping_gets_a_pong(fake: FakeDiscord, endpoint: Endpoint) -> None:
    payload = {"id": "1", "token": "ping-token", "type": 1, "application_id": str(APP_ID), "version": 1}
    assert await post(fake, endpoint, payload) == (200, {"type": 1})


def _wrong_key(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, Ed25519PrivateKey.generate())


def _tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"lmarena/*", b"aider/*"), signed(body)


def _unsigned(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {}


def _no_timestamp(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"X-Signature-Ed25519": signed(body)["X-Signature-Ed25519"]}


def _old(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, at=(NOW - timedelta(minutes=10)).timestamp())


def _garbage(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"X-Signature-Ed25519": "zz" * 64, "X-Signature-Timestamp": "soon"}


@pytest.mark.parametrize("forge", [_wrong_key, _tampered, _unsigned, _no_timestamp, _old, _garbage],
                         ids=["wrong key", "tampered body", "no headers", "no timestamp", "ten minutes old",
                              "not hex"])
async def test_a_forged_request_is_refused_and_nothing_runs(fake: FakeDiscord, endpoint: Endpoint,
                                                            ctx: CommandContext, forge: Any) -> None:
    before = config(ctx.db)
    payload = interaction_json(ADMIN_GROUP, "subscribe", {"board_pattern": "lmarena/*", "rules": "overtake"},
                               **MANAGER)
    body, headers = forge(json.dumps(payload).encode())
    status, answer = await fake.post_interaction(endpoint.url, payload, headers, body)
    assert (status, answer) == (401, {"error": "invalid request signature"})
    assert config(ctx.db) == before  # no subscription, no audit row
    assert not fake.callbacks(payload) and not fake.made("POST", "webhooks/")
    # The same request, signed, does run: the refusal above was the signature's doing.
    assert (await post(fake, endpoint, payload))[0] == 200
    assert config(ctx.db)["audit"][-1]["action"] == "subscribe"


# -- commands ----------------------------------------------------------------------------------------------

async def test_a_signed_top_answers_in_the_response_with_the_boards_rows(
        fake: FakeDiscord, endpoint: Endpoint, ctx: CommandContext) -> None:
    payload = interaction_json(GROUP, "top", {"board": "lmarena/text", "n": 3})
    status, answer = await post(fake, endpoint, payload)
    assert status == 200 and answer["type"] == 4
    assert not answer["data"].get("flags", 0) & EPHEMERAL  # an answer for the channel
    embeds = embeds_of(answer)
    head = embeds[0]
    assert head["title"].startswith("Top 3 on lmarena/text")
    assert head["url"] == ctx.boards["lmarena/text"].url
    snapshot = latest_snapshot(ctx.db, "lmarena/text")
    assert snapshot is not None
    header, *rows = table_lines(embeds)
    assert header.split()[:3] == ["#", "model", "score"]
    expected = sorted(snapshot.entries, key=lambda e: (e.rank, -e.score))[:3]
    assert len(rows) == 3
    for line, entry in zip(rows, expected, strict=True):
        assert line.startswith(f"{entry.rank} ") and f" {entry.name} " in line, (line, entry)
        assert f"{entry.score:.0f}" in line
    assert fake.original(payload)["embeds"] == embeds  # Discord took it as the reply
    assert not fake.made("PATCH", "webhooks/")


async def test_member_permissions_decide_who_configures(fake: FakeDiscord, endpoint: Endpoint,
                                                        ctx: CommandContext) -> None:
    options: dict[str, object] = {"board_pattern": "aider/*", "rules": "overtake"}
    before = config(ctx.db)
    refused = await post(fake, endpoint, interaction_json(ADMIN_GROUP, "subscribe", options))
    assert refused[1]["data"]["flags"] & EPHEMERAL
    assert "Only channel managers can change this channel's configuration" in shown(embeds_of(refused[1]))
    assert config(ctx.db) == before

    admin = interaction_json(ADMIN_GROUP, "subscribe", options, user_id=MANAGER_ID, user_name="grace",
                             permissions=MEMBER_PERMISSIONS | ADMINISTRATOR)
    assert (await post(fake, endpoint, admin))[1]["type"] == 4
    audit = config(ctx.db)["audit"][-1]
    assert (audit["action"], audit["platform"], audit["channel_id"], audit["user_name"]) == (
        "subscribe", "discord", CHANNEL, "grace")
    assert "aider/*" in {s["board_pattern"] for s in config(ctx.db)["subscriptions"]}


async def test_errors_are_private_and_say_what_to_do(fake: FakeDiscord, endpoint: Endpoint) -> None:
    _, answer = await post(fake, endpoint, interaction_json(GROUP, "top", {"board": "lmarena/txet"}))
    assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
    text = shown(embeds_of(answer))
    assert "Unknown board `lmarena/txet`. Did you mean `lmarena/text`" in text
    assert "Traceback" not in text


async def test_a_failure_is_an_apology_with_an_error_id(fake: FakeDiscord, ctx: CommandContext,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    async for served in serve(fake, ctx):
        def broken(reply: Any) -> list[dict[str, Any]]:
            if "error id" not in reply.text:
                raise RuntimeError("renderer broke")
            return to_payloads(reply)

        served.interactions.render = broken
        _, answer = await post(fake, served, interaction_json(GROUP, "boards", {}))
    text = shown(embeds_of(answer))
    assert answer["data"]["flags"] & EPHEMERAL and "error id" in text
    assert "RuntimeError" not in text and "renderer broke" not in text
    assert "renderer broke" in caplog.text  # the operator finds it in the log


async def test_board_autocomplete(fake: FakeDiscord, endpoint: Endpoint) -> None:
    payload = interaction_json(GROUP, "top", {"board": "lmarena/te"}, kind=4, focused="board")
    status, answer = await post(fake, endpoint, payload)
    assert status == 200 and answer["type"] == 8
    assert answer["data"]["choices"][0] == {"name": "lmarena/text", "value": "lmarena/text"}


async def test_a_deferred_answer_reaches_the_webhook(fake: FakeDiscord, slow: Endpoint) -> None:
    payload = interaction_json(GROUP, "top", {"board": "lmarena/text", "n": 3})
    status, answer = await post(fake, slow, payload)
    assert (status, answer) == (200, {"type": 5})  # "leaderwatch is thinking..."
    await fake.wait_for(lambda: fake.followups(payload, "PATCH"))
    [edit] = fake.followups(payload, "PATCH")
    assert shown(embeds_of(edit)).startswith("Top 3 on lmarena/text")
    assert not fake.original(payload)["flags"] & LOADING  # the thinking message became the answer

    private = interaction_json(GROUP, "help", {})
    assert (await post(fake, slow, private))[1] == {"type": 5}
    await fake.wait_for(lambda: fake.followups(private))
    assert fake.made("DELETE", f"webhooks/{APP_ID}/{private['token']}/messages/@original")
    [followup] = fake.followups(private)
    assert followup["flags"] & EPHEMERAL and "leaderwatch commands" in shown(embeds_of(followup))


# -- alerts and their buttons, no gateway ------------------------------------------------------------------

@pytest.fixture
async def rest_only(fake: FakeDiscord, ctx: CommandContext) -> AsyncIterator[DiscordService]:
    """The Discord service in http mode: logged in and commands registered over REST, no gateway."""
    settings = settings_for(fake, discord_mode="http", discord_public_key=PUBLIC_KEY,
                            discord_gateway_url="ws://127.0.0.1:9/nowhere/")
    service = DiscordService(settings, ctx, ready_timeout=5.0)
    assert await service.start()
    yield service
    await service.stop()


async def test_an_alert_is_delivered_in_http_mode_without_a_gateway(
        fake: FakeDiscord, rest_only: DiscordService, ctx: CommandContext) -> None:
    assert rest_only.connection is None and not fake.identifies  # never connected
    assert fake.made("PUT", f"applications/{APP_ID}/")  # /leaderwatch registered at start
    assert await deliver(ctx, rest_only, NEW_MODEL) == 1
    [alert] = fake.posts()
    assert alert["embeds"][0]["title"] == "New model on lmarena/text"
    assert [r["status"] for r in ctx.db.table("outbox").rows] == ["delivered"]
    [post] = fake.made("POST", f"channels/{CHANNEL_ID}/messages")
    assert post.auth and post.auth.startswith("Bot ") and post.body["nonce"]


async def test_a_button_press_answers_privately(fake: FakeDiscord, rest_only: DiscordService,
                                                endpoint: Endpoint, ctx: CommandContext) -> None:
    assert await deliver(ctx, rest_only, NEW_MODEL) == 1
    [alert] = fake.posts()
    key = NEW_MODEL.dedupe_key
    _, why = await post(fake, endpoint, component_interaction(f"lw:why:{key}", message=alert))
    assert why["type"] == 4 and why["data"]["flags"] & EPHEMERAL
    assert why["data"]["embeds"][0]["title"] == "Why on lmarena/text"

    before = config(ctx.db)
    _, refused = await post(fake, endpoint, component_interaction(f"lw:mute:{key}", component_type=3,
                                                                  values=["30d"], message=alert))
    assert "Only channel managers can change this channel's configuration (`mute`)" in shown(
        embeds_of(refused))
    assert config(ctx.db) == before

    _, muted = await post(fake, endpoint, component_interaction(f"lw:mute:{key}", component_type=3,
                                                                values=["30d"], message=alert, **MANAGER))
    assert muted["data"]["embeds"][0]["title"] == "Board muted"
    assert config(ctx.db)["audit"][-1]["action"] == "mute"

    _, asked = await post(fake, endpoint, component_interaction(f"lw:unsubscribe:{key}", message=alert,
                                                                **MANAGER))
    [row] = asked["data"]["components"]
    assert [b["custom_id"] for b in row["components"]] == [f"lw:unsubscribe:{key}:yes"]
    assert len(fake.posts()) == 1  # every answer private: nothing new in the channel


async def test_a_chart_is_deferred_and_attached_through_the_webhook(
        fake: FakeDiscord, rest_only: DiscordService, endpoint: Endpoint, ctx: CommandContext) -> None:
    assert await deliver(ctx, rest_only, NEW_MODEL) == 1
    [alert] = fake.posts()
    click = component_interaction(f"lw:chart:{NEW_MODEL.dedupe_key}", message=alert)
    _, answer = await post(fake, endpoint, click)
    assert answer == {"type": 5, "data": {"flags": EPHEMERAL}}
    await fake.wait_for(lambda: not fake.original(click)["flags"] & LOADING)
    [request] = fake.made("PATCH", "webhooks/")
    assert fake.attachments(request)[CHART_FILE].data[:4] == b"\x89PNG"
    message = fake.original(click)
    assert message["flags"] & EPHEMERAL
    assert message["embeds"][0]["image"]["url"] == f"attachment://{CHART_FILE}"
    assert [a["filename"] for a in message["attachments"]] == [CHART_FILE]


# -- settings ----------------------------------------------------------------------------------------------

def test_http_mode_settings() -> None:
    base = {"DISCORD_TOKEN": "t", "LEADERWATCH_DB": ":memory:"}
    assert load_settings(base, cwd=Path("/nonexistent")).discord_mode == "gateway"
    http = load_settings(base | {"DISCORD_PUBLIC_KEY": PUBLIC_KEY, "LEADERWATCH_HTTP_PORT": "8080",
                                 "DISCORD_APPLICATION_ID": str(APP_ID)}, cwd=Path("/nonexistent"))
    assert (http.discord_mode, http.discord_public_key, http.discord_application_id) == (
        "http", PUBLIC_KEY, str(APP_ID))
    for env, named in (({"LEADERWATCH_DISCORD_MODE": "http", "LEADERWATCH_HTTP_PORT": "1"},
                        "DISCORD_PUBLIC_KEY"),
                       ({"DISCORD_PUBLIC_KEY": PUBLIC_KEY}, "LEADERWATCH_HTTP_PORT"),
                       ({"DISCORD_PUBLIC_KEY": "abc"}, "DISCORD_PUBLIC_KEY"),
                       ({"LEADERWATCH_DISCORD_MODE": "webhook"}, "LEADERWATCH_DISCORD_MODE")):
        with pytest.raises(ConfigError, match=named):
            load_settings(base | env, cwd=Path("/nonexistent"))
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        load_settings({"DISCORD_PUBLIC_KEY": PUBLIC_KEY, "LEADERWATCH_HTTP_PORT": "1"},
                      cwd=Path("/nonexistent"))


async def test_an_interaction_for_another_application_is_refused(fake: FakeDiscord, ctx: CommandContext
                                                                 ) -> None:
    client = httpx.AsyncClient()
    interactions = DiscordInteractions(ctx, PUBLIC_KEY, client, to_payloads, api_url=fake.api_url,
                                       application_id="123")
    app = web.Application()
    app.add_routes(interactions.routes())
    runner = await start_http(app, 0, host="127.0.0.1")
    try:
        payload = {"id": "1", "token": "t", "type": 1, "application_id": str(APP_ID)}
        body = json.dumps(payload).encode()
        status, _ = await fake.post_interaction(f"http://127.0.0.1:{bound_port(runner)}{PATH}", payload,
                                                signed(body), body)
        assert status == 401
    finally:
        await runner.cleanup()
        await client.aclose()


# -- the whole service ---------------------------------------------------------------------------------------

class _SiteAndLoopback(httpx.AsyncBaseTransport):
    """The recorded Aider site for the poller; real HTTP to 127.0.0.1 (the fake Discord's webhooks)."""

    def __init__(self, site: httpx.AsyncBaseTransport) -> None:
        self.site, self.loopback = site, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            return await self.loopback.handle_async_request(request)
        return await self.site.handle_async_request(request)


async def test_run_in_http_mode_answers_interactions_and_delivers_alerts_without_a_gateway(
        excerpts: Path, tmp_path: Path, fake: FakeDiscord) -> None:
    from leaderwatch.bot.app import build_app, command_context
    from leaderwatch.bot.pipeline.importer import import_recordings
    from leaderwatch.sources.aider import AiderSource
    from leaderwatch.storage import outbox
    from tests.e2e.test_service import aider_site, history_before
    from tests.helpers import running, served_port, wait_until

    settings = replace(settings_for(fake, discord_mode="http", discord_public_key=PUBLIC_KEY,
                                    discord_application_id=str(APP_ID)),
                       db_path=str(tmp_path / "lw.db"), http_port=0)
    app = build_app(settings, client=httpx.AsyncClient(transport=_SiteAndLoopback(aider_site(excerpts))),
                    sources=[AiderSource(Identity.load())])
    import_recordings(app.db, app.sources, history_before(excerpts, tmp_path), datetime.now(UTC))
    subscribed = await ask(command_context(app), "subscribe aider/edit overtake", manager=True,
                           channel=CHANNEL, platform="discord")
    assert not subscribed.error, subscribed.text
    try:
        async with running(app) as service:
            port = await served_port(app, service)
            await wait_until(lambda: outbox.depth(app.db) == {"delivered": 1}, timeout=15,
                             message="the alert to be delivered", running=service)
            [alert] = [p for p in fake.posts() if p["embeds"]]
            assert "Deepseek Coder V2" in shown(alert["embeds"])
            payload = interaction_json(GROUP, "top", {"board": "aider/edit", "n": 2})
            body = json.dumps(payload).encode()
            status, answer = await fake.post_interaction(f"http://127.0.0.1:{port}{PATH}", payload,
                                                         signed(body, at=time.time()), body)
            if answer.get("type") == 5:  # a loaded machine: deferred, then edited in
                await fake.wait_for(lambda: not fake.original(payload)["flags"] & LOADING)
            assert status == 200 and "Deepseek Coder V2" in shown(fake.original(payload)["embeds"])
    finally:
        await app.aclose()
    assert fake.identifies == []  # never connected to the gateway
