"""The Slack adapter through the real slack_bolt / slack_sdk against a fake Slack on 127.0.0.1.

Signed slash commands go in over HTTP (and as Socket Mode envelopes), the ack bodies and the Web API
calls that come out are checked. Nothing in Bolt or in `bot.slack` is mocked.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Field, Reply
from leaderwatch.bot.chat.slack import (
    ALERT_EVENT_TYPE,
    COMMAND,
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_FIELDS,
    MAX_TEXT,
    WORKING,
    SlackSender,
    SlackService,
    to_blocks,
    to_invocation,
    to_message,
    web_client,
)
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.bot.runtime.http_server import bound_port, build_web_app, start_http
from leaderwatch.bot.settings import ConfigError, Settings
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.lmarena import LmarenaSource
from leaderwatch.storage.snapshots import save_snapshot
from tests.bot.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_body,
    signed_headers,
    slash_payload,
)
from tests.helpers import REPO, build_context

NOW = datetime(2025, 12, 12, 9, 0, tzinfo=UTC)
ADMIN = "U0ADMIN"
OWNER = "U0OWNER"
MEMBER = "U0MEMBER"
CONFIGURED = "U0CONFIGURED"


pytestmark = pytest.mark.usefixtures("slack_environment")


@pytest.fixture(scope="module")
def text_snapshot(excerpts: Path) -> Snapshot:
    """LMArena's text board as published on 2025-12-11 (arena-catalog recording)."""
    source = LmarenaSource(Identity.load())
    [rec] = [r for r in source.recordings(excerpts) if r.path.name == "leaderboard-text_2025-12-11.json"]
    [snap] = source.load(rec)
    return snap


@pytest.fixture
def ctx(fresh_db: Database, text_snapshot: Snapshot) -> CommandContext:
    save_snapshot(fresh_db, text_snapshot)
    return build_context(fresh_db, lambda: NOW)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN}, owners={OWNER}).start()
    yield slack
    await slack.stop()


def slack_settings(fake: FakeSlack, mode: str = "http", **changes: Any) -> Settings:
    base = Settings(db_path=":memory:", http_port=0, slack_mode=mode, slack_bot_token=BOT_TOKEN,
                    slack_app_token=APP_TOKEN, slack_signing_secret=SIGNING_SECRET,
                    slack_api_url=fake.api_url, slack_admins=(CONFIGURED,))
    return replace(base, **changes)


class HttpSlack:
    """A SlackService in HTTP mode mounted on the one aiohttp server, and a client that signs."""

    def __init__(self, service: SlackService, runner: web.AppRunner, client: httpx.AsyncClient) -> None:
        self.service, self.runner, self.client = service, runner, client

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post("/slack/events", content=body, headers=headers)

    async def command(self, text: str, user_id: str = MEMBER, **payload: str) -> httpx.Response:
        body = form_body(slash_payload(text, user_id=user_id, **payload))
        return await self.post(body, signed_headers(body))


async def serve(fake: FakeSlack, ctx: CommandContext, **kwargs: Any) -> HttpSlack:
    service = SlackService(slack_settings(fake), ctx, min_post_interval=0, **kwargs)
    assert await service.start()
    runner = await start_http(build_web_app(ctx.db, ctx.clock, service.routes()), 0, "127.0.0.1")
    port = bound_port(runner)
    return HttpSlack(service, runner, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}"))


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every text in a list of blocks, joined (for assertions on what the user reads)."""
    out: list[str] = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e["text"] for e in block.get("elements", []) if "text" in e]
    return "\n".join(out)


def subscriptions(ctx: CommandContext) -> list[dict[str, Any]]:
    return list(ctx.db.table("subscriptions").rows)


def audit_rows(ctx: CommandContext) -> list[dict[str, Any]]:
    return list(ctx.db.table("audit").rows)


# -- HTTP mode: questions --------------------------------------------------------------------------------

async def test_help_is_acked_ephemeral_with_block_kit(http: HttpSlack, fake: FakeSlack) -> None:
    resp = await http.command("help")
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_type"] == "ephemeral"
    assert body["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "leaderwatch commands", "emoji": True}}
    shown = texts(body["blocks"])
    assert "/leaderwatch top BOARD [N] [GROUP]" in shown and "/leaderwatch subscribe" in shown
    assert body["text"].startswith("*leaderwatch commands*")
    # Answered inside the ack: nothing posted, no users.info for a question (only the token checks:
    # ours at start-up, Bolt's on its first request).
    assert [c.method for c in fake.calls] == ["auth.test", "auth.test"]


async def test_top_is_answered_in_channel_with_a_table(http: HttpSlack, fake: FakeSlack) -> None:
    resp = await http.command("top lmarena/text 3")
    body = resp.json()
    assert body["response_type"] == "in_channel"
    header, *rest = body["blocks"]
    assert header["text"]["text"] == "Top 3 on lmarena/text"
    [table] = [b for b in rest if b["type"] == "section" and b["text"]["text"].startswith("```")]
    lines = table["text"]["text"].strip("`\n").splitlines()
    assert lines[0].split()[:3] == ["#", "model", "score"]
    assert [line.split()[1] for line in lines[1:]] == ["gemini-3-pro", "gemini-2.5-pro", "grok-4.1-thinking"]
    assert "as of 2025-12-11" in texts(body["blocks"])
    assert "https://arena.ai/leaderboard/text" in texts(body["blocks"])
    assert "gemini-3-pro" in body["text"]  # the plain fallback carries the table too
    assert not fake.called("chat.postMessage") and not fake.responses


async def test_unknown_board_gets_an_ephemeral_did_you_mean(http: HttpSlack) -> None:
    body = (await http.command("top lmarena/txet 3")).json()
    assert body["response_type"] == "ephemeral"
    assert "Unknown board `lmarena/txet`. Did you mean `lmarena/text`" in texts(body["blocks"])
    assert "Traceback" not in json.dumps(body)


async def test_slow_answer_acks_at_once_and_arrives_through_response_url(fake: FakeSlack,
                                                                       ctx: CommandContext) -> None:
    fake.delays["users.info"] = 2.0  # Slack is slow to say whether the user is an admin
    served = await serve(fake, ctx, budget=0.1)
    try:
        started = time.perf_counter()
        resp = await served.command("subscribe lmarena/* overtake", user_id=ADMIN,
                                    response_url=fake.response_url("slow"))
        assert time.perf_counter() - started < 1.5  # the ack did not wait for the 2 s answer
        assert resp.json() == {"text": WORKING, "response_type": "ephemeral"}
        await fake.wait_for(lambda: fake.responses)
        [(hook, message)] = fake.responses
        assert hook == "slow" and message["response_type"] == "in_channel"
        assert message["blocks"][0]["text"]["text"] == "Subscribed"
        assert len(subscriptions(ctx)) == 1
    finally:
        await served.client.aclose()
        await served.runner.cleanup()
        await served.service.stop()


# -- HTTP mode: signatures -------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    pytest.param(lambda body: signed_headers(body, secret="not-the-secret"), id="forged"),
    pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) - 6 * 60), id="stale"),
    pytest.param(lambda body: {**signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64}, id="tampered"),
    pytest.param(lambda body: {"Content-Type": "application/x-www-form-urlencoded"}, id="unsigned"),
])
async def test_bad_signatures_get_401_and_run_nothing(http: HttpSlack, fake: FakeSlack, ctx: CommandContext,
                                                      headers: Any) -> None:
    verified: list[dict[str, Any]] = []

    async def probe(body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> None:
        """A last global middleware: runs for every request past Bolt's signature check."""
        verified.append(body)
        await next_()

    http.service.app.middleware(probe)
    body = form_body(slash_payload("subscribe lmarena/* overtake", user_id=ADMIN,
                                   response_url=fake.response_url()))
    resp = await http.post(body, headers(body))
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid request"}
    # Bolt checks the signature first and answers only after the rest of its middleware has run: a
    # request that got past the check would be in `verified` by now, and nothing else was started.
    assert verified == []
    assert [c.method for c in fake.calls] == ["auth.test"]  # only our own start-up check
    assert not fake.responses
    assert subscriptions(ctx) == [] and audit_rows(ctx) == []
    # The probe does see a request that passes the check.
    assert (await http.command("help")).status_code == 200 and len(verified) == 1


async def test_a_body_changed_after_signing_is_refused(http: HttpSlack, ctx: CommandContext) -> None:
    signed = form_body(slash_payload("help", user_id=ADMIN))
    sent = form_body(slash_payload("subscribe lmarena/* overtake", user_id=ADMIN))
    assert (await http.post(sent, signed_headers(signed))).status_code == 401
    assert subscriptions(ctx) == []


# -- who may configure -----------------------------------------------------------------------------------

async def test_a_members_subscribe_is_refused_and_changes_nothing(http: HttpSlack, fake: FakeSlack,
                                                                  ctx: CommandContext) -> None:
    body = (await http.command("subscribe lmarena/* overtake", user_id=MEMBER)).json()
    assert body["response_type"] == "ephemeral"
    refusal = "Only channel managers can change this channel's configuration (`subscribe`)"
    assert refusal in texts(body["blocks"])
    assert [c.params["user"] for c in fake.called("users.info")] == [MEMBER]
    assert subscriptions(ctx) == [] and audit_rows(ctx) == []


@pytest.mark.parametrize("user", [ADMIN, OWNER, CONFIGURED])
async def test_admins_owners_and_configured_users_may_subscribe(http: HttpSlack, fake: FakeSlack,
                                                                ctx: CommandContext, user: str) -> None:
    body = (await http.command("subscribe lmarena/* overtake", user_id=user, user_name="grace")).json()
    assert body["response_type"] == "in_channel", body
    assert body["blocks"][0]["text"]["text"] == "Subscribed"
    [sub] = subscriptions(ctx)
    assert (sub["platform"], sub["channel_id"], sub["board_pattern"], sub["created_by"]) == (
        "slack", "C0GENERAL", "lmarena/*", user)
    assert sub["rule"].startswith("overtake")
    [audit] = audit_rows(ctx)
    assert (audit["platform"], audit["user_id"], audit["user_name"], audit["action"]) == (
        "slack", user, "grace", "subscribe")
    # A configured user needs no users.info; admins and owners are looked up.
    assert len(fake.called("users.info")) == (0 if user == CONFIGURED else 1)


async def test_the_admin_answer_is_cached(http: HttpSlack, fake: FakeSlack) -> None:
    await http.command("subscribe lmarena/* overtake", user_id=ADMIN)
    await http.command("unsubscribe lmarena/*", user_id=ADMIN)
    await http.command("settings", user_id=ADMIN)
    assert len(fake.called("users.info")) == 1


async def test_a_failed_admin_check_says_so_and_changes_nothing(http: HttpSlack, fake: FakeSlack,
                                                                ctx: CommandContext) -> None:
    fake.errors[("users.info", "")] = "missing_scope"
    body = (await http.command("subscribe lmarena/* overtake", user_id=ADMIN)).json()
    assert body["response_type"] == "ephemeral"
    assert "users.info failed: `missing_scope`" in texts(body["blocks"])
    assert subscriptions(ctx) == []


async def test_events_from_bots_are_dropped(http: HttpSlack, fake: FakeSlack) -> None:
    event = {"token": "t", "team_id": "T000", "api_app_id": "A0APP", "type": "event_callback",
             "event_id": "Ev1", "event_time": 1, "event": {"type": "message", "subtype": "bot_message",
                                                           "bot_id": "B0OTHER", "text": "/leaderwatch help",
                                                           "channel": "C0GENERAL", "ts": "1.1"}}
    body = json.dumps(event).encode()
    resp = await http.post(body, signed_headers(body, content_type="application/json"))
    assert resp.status_code == 200 and resp.text == ""
    assert not fake.called("chat.postMessage") and not fake.responses


# -- Socket Mode -----------------------------------------------------------------------------------------

async def test_socket_mode_acks_the_envelope_with_the_answer(fake: FakeSlack, ctx: CommandContext) -> None:
    service = SlackService(slack_settings(fake, "socket", slack_signing_secret=None), ctx)
    try:
        assert await service.start()
        assert service.routes() == []  # nothing to mount: no public URL needed
        ack = await fake.send_envelope(slash_payload("top lmarena/text 3", response_url=fake.response_url()))
        assert ack["envelope_id"] == "env-1"
        payload = ack["payload"]
        assert payload["response_type"] == "in_channel"
        assert payload["blocks"][0]["text"]["text"] == "Top 3 on lmarena/text"
        assert "gemini-3-pro" in texts(payload["blocks"])

        ack = await fake.send_envelope(slash_payload("subscribe lmarena/* overtake", user_id=MEMBER))
        assert ack["payload"]["response_type"] == "ephemeral"
        assert subscriptions(ctx) == []
        ack = await fake.send_envelope(slash_payload("subscribe lmarena/* overtake", user_id=ADMIN))
        assert ack["payload"]["blocks"][0]["text"]["text"] == "Subscribed"
        assert len(subscriptions(ctx)) == 1
        assert [c.token for c in fake.called("apps.connections.open")] == [APP_TOKEN]
    finally:
        await service.stop()


async def test_socket_mode_slow_answer_goes_to_response_url(fake: FakeSlack, ctx: CommandContext) -> None:
    fake.delays["users.info"] = 0.5
    service = SlackService(slack_settings(fake, "socket"), ctx, budget=0.1)
    try:
        assert await service.start()
        ack = await fake.send_envelope(slash_payload("settings", user_id=OWNER,
                                                     response_url=fake.response_url("late")))
        assert ack["payload"] == {"text": WORKING, "response_type": "ephemeral"}
        await fake.wait_for(lambda: fake.responses)
        [(hook, message)] = fake.responses
        assert hook == "late" and message["response_type"] == "ephemeral"
        assert message["blocks"]
    finally:
        await service.stop()


async def test_socket_mode_reconnects_when_slack_asks(fake: FakeSlack, ctx: CommandContext) -> None:
    service = SlackService(slack_settings(fake, "socket"), ctx)
    try:
        assert await service.start()
        await fake.connected()
        await fake.ask_to_reconnect()
        await fake.wait_for(lambda: fake.hello_count == 2)
        assert len(fake.called("apps.connections.open")) == 2
        ack = await fake.send_envelope(slash_payload("help"))
        assert ack["payload"]["response_type"] == "ephemeral"
    finally:
        await service.stop()


# -- start-up --------------------------------------------------------------------------------------------

async def test_a_rejected_bot_token_is_logged_by_name_and_slack_stays_off(
        fake: FakeSlack, ctx: CommandContext, caplog: pytest.LogCaptureFixture) -> None:
    fake.bad_tokens.add(BOT_TOKEN)
    service = SlackService(slack_settings(fake, "socket"), ctx)
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.chat.slack"):
        assert await service.start() is False
    assert "SLACK_BOT_TOKEN was rejected by auth.test (invalid_auth)" in caplog.text
    assert not fake.called("apps.connections.open")
    await service.stop()


async def test_a_rejected_app_token_is_logged_by_name(fake: FakeSlack, ctx: CommandContext,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fake.bad_tokens.add("xapp-bad")
    service = SlackService(slack_settings(fake, "socket", slack_app_token="xapp-bad"), ctx)
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.chat.slack"):
        assert await service.start() is False
    assert "SLACK_APP_TOKEN was rejected by apps.connections.open (invalid_auth)" in caplog.text
    assert fake.hello_count == 0
    await service.stop()


@pytest.mark.parametrize(("changes", "named"), [
    ({"slack_bot_token": None}, "SLACK_BOT_TOKEN"),
    ({"slack_mode": "socket", "slack_app_token": None}, "SLACK_APP_TOKEN"),
    ({"slack_signing_secret": None}, "SLACK_SIGNING_SECRET"),
    ({"http_port": None}, "LEADERWATCH_HTTP_PORT"),
])
def test_missing_settings_name_the_variable(ctx: CommandContext, changes: dict[str, Any], named: str) -> None:
    settings = replace(Settings(slack_mode="http", http_port=0, slack_bot_token=BOT_TOKEN,
                                slack_app_token=APP_TOKEN, slack_signing_secret=SIGNING_SECRET), **changes)
    with pytest.raises(ConfigError, match=named):
        SlackService(settings, ctx)


# -- Block Kit limits ------------------------------------------------------------------------------------

def check_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= MAX_TEXT
            assert len(block.get("fields", [])) <= MAX_FIELDS
            assert all(len(f["text"]) <= MAX_FIELD for f in block.get("fields", []))
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10


def test_a_200_row_table_is_split_into_blocks_within_limits() -> None:
    rows = [("#", "model", "score")]
    rows += [(str(i), f"model-{i}-" + "x" * 40, f"{1500 - i}") for i in range(1, 201)]
    blocks = to_blocks(Reply(title="Top 200", text="as of today", table=tuple(rows)))
    check_limits(blocks)
    tables = [b for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("```")]
    assert len(tables) > 1
    shown = [line for b in tables for line in b["text"]["text"].strip("`\n").splitlines()]
    assert len(shown) == 201 and shown[-1].startswith("200")  # split, not cut: every row is there


def test_a_table_too_long_for_50_blocks_is_truncated_with_a_note() -> None:
    rows = [("#", "model")] + [(str(i), "m" * 55) for i in range(1, 5001)]
    blocks = to_blocks(Reply(title="Huge", text="", table=tuple(rows), footer="footer", url="https://x.org"))
    check_limits(blocks)
    assert len(blocks) == MAX_BLOCKS
    assert blocks[0]["type"] == "header" and blocks[-1]["type"] == "context"  # title and footer survive
    note = blocks[-2]["elements"][0]["text"]
    shown = sum(len(b["text"]["text"].strip("`\n").splitlines()) for b in blocks
                if b["type"] == "section" and b["text"]["text"].startswith("```")) - 1
    assert note == f"… {5000 - shown} more row(s) not shown: Slack shows at most 50 blocks in a message."


def test_long_texts_many_fields_and_markup_stay_within_limits() -> None:
    fields = tuple(Field(f"f{i}", "v" * 2500) for i in range(25))
    reply = Reply(title="T" * 400, text=("line <!channel> & more\n" * 400), fields=fields, error=True)
    blocks = to_blocks(reply)
    check_limits(blocks)
    assert sum(len(b.get("fields", [])) for b in blocks) == 25
    shown = texts(blocks)
    assert "<!channel>" not in shown and "&lt;!channel&gt; &amp; more" in shown  # no mass mention
    assert blocks[1]["text"]["text"].startswith(":warning: line &lt;!channel&gt;")
    message = to_message(reply)
    assert len(message["text"]) <= 3000 and "<!channel>" not in message["text"]


# -- the alert sender ------------------------------------------------------------------------------------

ALERT = Reply(title="Overtake on lmarena/text", text="china model A now ranks above west model B",
              fields=(Field("Board", "lmarena/text"),), footer="as of 2025-12-11 00:00 UTC · rule: overtake",
              url="https://arena.ai/leaderboard/text")


def sender_for(fake: FakeSlack) -> SlackSender:
    return SlackSender(web_client(slack_settings(fake), retry_rate_limits=False), min_interval=0)


async def test_send_posts_blocks_and_the_delivery_key_in_metadata(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    await sender.send("C0ALERTS", ALERT, "key-1")
    [call] = fake.called("chat.postMessage")
    assert call.token == BOT_TOKEN
    assert call.params["channel"] == "C0ALERTS"
    assert call.params["metadata"] == {"event_type": ALERT_EVENT_TYPE,
                                       "event_payload": {"delivery_key": "key-1"}}
    assert call.params["blocks"][0]["text"]["text"] == "Overtake on lmarena/text"
    assert call.params["text"].startswith("*Overtake on lmarena/text*")
    since = datetime.now(UTC).replace(microsecond=0)
    assert await sender.already_delivered("C0ALERTS", "key-1", since.replace(minute=0, second=0))
    assert not await sender.already_delivered("C0ALERTS", "key-2", since.replace(minute=0, second=0))
    assert not await sender.already_delivered("C0OTHER", "key-1", since.replace(minute=0, second=0))
    [history, *_] = fake.called("conversations.history")
    assert history.params["include_all_metadata"] in ("1", "true", True)


async def test_already_delivered_pages_through_history(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    await sender.send("C0ALERTS", ALERT, "old-key")
    for i in range(230):
        await sender.send("C0ALERTS", ALERT, f"newer-{i}")
    assert await sender.already_delivered("C0ALERTS", "old-key", datetime(2020, 1, 1, tzinfo=UTC))
    assert len(fake.called("conversations.history")) == 2


async def test_a_200_row_table_alert_is_accepted(fake: FakeSlack) -> None:
    rows = [("#", "model")] + [(str(i), f"model-{i}") for i in range(200)]
    await sender_for(fake).send("C0ALERTS", Reply(title="t", text="x", table=tuple(rows)), "k")
    [posted] = fake.posts("C0ALERTS")
    assert posted.blocks is not None and len(posted.blocks) <= MAX_BLOCKS


@pytest.mark.parametrize(("setup", "retryable", "retry_after", "gone"), [
    pytest.param(lambda f: setattr(f, "rate_limit_posts", 1), True, 0.0, False, id="429"),
    pytest.param(lambda f: setattr(f, "server_error_posts", 1), True, None, False, id="500"),
    pytest.param(lambda f: f.errors.__setitem__(("chat.postMessage", "C0X"), "channel_not_found"),
                 False, None, True, id="channel_not_found"),
    pytest.param(lambda f: f.errors.__setitem__(("chat.postMessage", "C0X"), "not_in_channel"),
                 False, None, True, id="not_in_channel"),
    pytest.param(lambda f: f.errors.__setitem__(("chat.postMessage", "C0X"), "is_archived"),
                 False, None, True, id="is_archived"),
    pytest.param(lambda f: f.bad_tokens.add(BOT_TOKEN), True, 900.0, False, id="invalid_auth"),
    pytest.param(lambda f: f.errors.__setitem__(("chat.postMessage", "C0X"), "missing_scope"),
                 True, 900.0, False, id="missing_scope"),
    pytest.param(lambda f: f.errors.__setitem__(("chat.postMessage", "C0X"), "msg_blocked"),
                 False, None, False, id="other"),
])
async def test_send_errors_map_to_delivery_errors(fake: FakeSlack, setup: Any, retryable: bool,
                                                  retry_after: float | None, gone: bool) -> None:
    setup(fake)
    with pytest.raises(DeliveryError) as info:
        await sender_for(fake).send("C0X", ALERT, "k")
    err = info.value
    assert (err.retryable, err.retry_after, err.channel_gone) == (retryable, retry_after, gone)
    assert BOT_TOKEN not in err.reason
    assert len(fake.called("chat.postMessage")) == 1  # the sender itself never retries


async def test_a_retry_after_given_as_an_http_date_is_honoured(fake: FakeSlack) -> None:
    """Slack's 429 may name the time to come back as an HTTP date, as RFC 9110 allows."""
    fake.rate_limit_posts = 1
    fake.retry_after = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with pytest.raises(DeliveryError) as info:
        await sender_for(fake).send("C0X", ALERT, "k")
    assert info.value.retryable and info.value.retry_after is not None
    assert 110 <= info.value.retry_after <= 120


async def test_a_network_error_is_retryable_without_retry_after(fake: FakeSlack, refused_port: int) -> None:
    settings = slack_settings(fake, slack_api_url=f"http://127.0.0.1:{refused_port}/api/")
    sender = SlackSender(web_client(settings, retry_rate_limits=False), min_interval=0)
    with pytest.raises(DeliveryError) as info:
        await sender.send("C0X", ALERT, "k")
    assert (info.value.retryable, info.value.retry_after, info.value.channel_gone) == (True, None, False)


async def test_refused_blocks_fall_back_to_plain_text(fake: FakeSlack) -> None:
    fake.refuse_blocks = True
    await sender_for(fake).send("C0X", ALERT, "k")
    assert len(fake.called("chat.postMessage")) == 2
    [posted] = fake.posts("C0X")
    assert posted.blocks is None and posted.text.startswith("*Overtake on lmarena/text*")
    assert posted.metadata == {"event_type": ALERT_EVENT_TYPE, "event_payload": {"delivery_key": "k"}}


async def test_posts_to_one_channel_are_paced(fake: FakeSlack) -> None:
    waits: list[float] = []
    clock = [100.0]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    sender = SlackSender(web_client(slack_settings(fake), retry_rate_limits=False), min_interval=1.0,
                         monotonic=lambda: clock[0], sleep=sleep)
    await sender.send("C0A", ALERT, "1")
    await sender.send("C0B", ALERT, "2")
    clock[0] += 0.25
    await sender.send("C0A", ALERT, "3")
    assert waits == [0.75]


# -- the payload and the manifest --------------------------------------------------------------------------

def test_slack_escapes_in_the_command_text_are_undone() -> None:
    inv = to_invocation(slash_payload("model &quot;A &amp; B&quot; &lt;x&gt;"), can_configure=False)
    assert inv.text == "model &quot;A & B&quot; <x>"
    assert (inv.platform, inv.channel_id, inv.user_id, inv.user_name) == (
        "slack", "C0GENERAL", "U0USER", "ada")


def test_the_manifest_declares_the_command_and_minimal_scopes() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    [slash] = manifest["features"]["slash_commands"]
    assert slash["command"] == COMMAND and slash["usage_hint"]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands", "chat:write", "users:read", "files:write", "im:write", "channels:history",
        "groups:history", "im:history", "mpim:history"}
    assert manifest["settings"]["event_subscriptions"] == {
        "bot_events": ["app_home_opened", "app_uninstalled", "tokens_revoked"]}  # 2 last: OAuth
