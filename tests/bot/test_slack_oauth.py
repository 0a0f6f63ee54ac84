"""The public multi-workspace Slack app: Bolt's OAuth flow over real HTTP against the fake Slack.

An install goes the way a browser takes it: `GET /slack/install` (a state cookie and a redirect to
Slack's authorize page), then `GET /slack/oauth_redirect?code=...&state=...` with that cookie; the fake's
oauth.v2.access hands out a bot token per team. Then signed slash commands and events from each team run
with that team's token (the fake records which token made each call), alerts to a team's channel go with
its token, and `tokens_revoked` / `app_uninstalled` forget the workspace. Nothing in Bolt, slack_sdk or
`bot.chat.slack` is mocked.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from aiohttp import web
from cryptography.fernet import Fernet

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.matching import hold_for, match
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot.chat.slack import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH, SlackService
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.pipeline.delivery import DeliveryError, Dispatcher
from leaderwatch.bot.runtime.http_server import bound_port, build_web_app, start_http
from leaderwatch.bot.settings import ConfigError, Settings, load_settings
from leaderwatch.storage import installations, outbox
from leaderwatch.storage.db import Database, open_db
from leaderwatch.storage.events import save_events
from leaderwatch.storage.subscriptions import (
    active_subscriptions,
    add_subscription,
    channel_settings,
    set_channel_setting,
)
from tests.bot.fake_slack import (
    APP_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    SIGNING_SECRET,
    VERIFICATION_TOKEN,
    FakeSlack,
    form_body,
    signed_event,
    signed_headers,
    slash_payload,
)
from tests.conftest import new_postgres_schema
from tests.helpers import REPO, build_context

NOW = datetime(2025, 12, 12, 9, 0, tzinfo=UTC)
SECRET_KEY = Fernet.generate_key().decode()
ADMIN_1 = "UT1ADMIN"
ADMIN_2 = "UT2ADMIN"
MEMBER = "UT1MEMBER"

pytestmark = [
    pytest.mark.usefixtures("slack_environment"),
    # slack_sdk 3.48 sends oauth.v2.access's client credentials with aiohttp.BasicAuth, which aiohttp 3.14
    # deprecates (a DeprecationWarning, silent outside tests); the credentials still go out as HTTP Basic.
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
]


@pytest.fixture
def ctx(fresh_db: Database) -> CommandContext:
    return build_context(fresh_db, lambda: NOW)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN_1, ADMIN_2}).start()
    slack.add_team("T1", "Acme")
    slack.add_team("T2", "Globex")
    yield slack
    await slack.stop()


def oauth_settings(fake: FakeSlack, **changes: Any) -> Settings:
    base = Settings(db_path=":memory:", http_port=0, slack_mode="http", slack_signing_secret=SIGNING_SECRET,
                    slack_api_url=fake.api_url, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
                    secret_key=SECRET_KEY)
    return replace(base, **changes)


@dataclass
class Served:
    """The public app on the one HTTP server, and a browser-like client for it."""

    service: SlackService
    runner: web.AppRunner
    client: httpx.AsyncClient

    async def install(self, fake: FakeSlack, team_id: str) -> httpx.Response:
        """Install the app in a team as a browser does: /slack/install, Slack's page, back with the code."""
        started = await self.client.get(INSTALL_PATH)
        assert started.status_code == 302, started.text
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        cookie = SimpleCookie(started.headers["set-cookie"])
        [name] = cookie.keys()
        return await self.client.get(REDIRECT_PATH, params={"code": fake.grant(team_id), "state": state},
                                     headers={"Cookie": f"{name}={cookie[name].value}"})

    async def command(self, team_id: str, text: str, channel_id: str, user_id: str,
                      fake: FakeSlack) -> dict[str, Any]:
        """A signed slash command from a team; the ack's body (or the answer posted to response_url)."""
        hook = uuid.uuid4().hex[:8]
        payload = {**slash_payload(text, channel_id=channel_id, user_id=user_id,
                                   response_url=fake.response_url(hook)), "team_id": team_id,
                   "team_domain": team_id.lower()}
        body = form_body(payload)
        resp = await self.client.post("/slack/events", content=body, headers=signed_headers(body))
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def event(self, team_id: str, event: dict[str, Any]) -> httpx.Response:
        """A signed Events API callback from a team."""
        body, headers = signed_event({
            "token": VERIFICATION_TOKEN, "team_id": team_id, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()), "authorizations": [{
                "enterprise_id": None, "team_id": team_id, "user_id": f"U{team_id}BOT", "is_bot": True,
                "is_enterprise_install": False}]})
        return await self.client.post("/slack/events", content=body, headers=headers)


@pytest.fixture
async def served(fake: FakeSlack, ctx: CommandContext) -> AsyncIterator[Served]:
    service = SlackService(oauth_settings(fake), ctx, min_post_interval=0)
    assert await service.start()
    runner = await start_http(build_web_app(ctx.db, ctx.clock, service.routes()), 0, "127.0.0.1")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}")
    try:
        yield Served(service, runner, client)
    finally:
        await client.aclose()
        await runner.cleanup()
        await service.stop()


def rows(db: Database, table: str) -> list[dict[str, Any]]:
    return list(db.query(f"SELECT * FROM {table}"))


def queue_overtake(db: Database) -> int:
    """One overtake on lmarena/text, matched to the subscribed channels and queued (as a poll does)."""
    [rule] = {s.rule for s in active_subscriptions(db)}
    event = Event(kind="overtake", board="lmarena/text", at=NOW, rule=rule, subject="china>west",
                  model="DeepSeek-R1", other="o1-preview", groups=("china", "west"), rank_before=4,
                  rank_after=3, score_before=1350.0, score_after=1362.5, confidence="clear",
                  message="lmarena/text: DeepSeek-R1 (china) passed o1-preview (west)",
                  dedupe_key=dedupe_key("overtake", "lmarena/text", "china>west", "DeepSeek-R1>o1-preview",
                                        NOW))
    with db.atomic():
        save_events(db, [event], None, NOW)
        deliveries = match([event], active_subscriptions(db))
        return outbox.enqueue(db, deliveries, NOW, lambda d: hold_for(
            channel_settings(db, d.platform, d.channel_id), NOW, d.event.board))


# -- the install -----------------------------------------------------------------------------------------

async def test_install_stores_the_workspace_with_its_token_encrypted(served: Served, fake: FakeSlack,
                                                                   ctx: CommandContext) -> None:
    started = await served.client.get(INSTALL_PATH)
    assert started.status_code == 302
    location = urlsplit(started.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://slack.com/oauth/v2/authorize"
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"][0].split(",") == list(BOT_SCOPES)
    assert query["state"][0] in started.headers["set-cookie"]
    assert [r["state"] for r in rows(ctx.db, "oauth_states")] == query["state"]

    page = await served.install(fake, "T1")
    assert page.status_code == 200 and "leaderwatch is installed in Acme" in page.text
    assert "/invite @leaderwatch" in page.text
    [call] = fake.called("oauth.v2.access")  # the token exchange went to the fake (LEADERWATCH_SLACK_API_URL)
    assert call.params["code"].startswith("code-T1-")
    [row] = rows(ctx.db, "installations")
    team = fake.teams["T1"]
    assert (row["platform"], row["workspace"], row["team_name"], row["bot_user_id"], row["bot_id"]) == (
        "slack", "T1", "Acme", "UT1BOT", "BT1")
    assert row["installer_user_id"] == "UT1INSTALLER"
    assert team.token is not None
    raw = json.dumps(rows(ctx.db, "installations"))
    assert team.token not in raw and team.token.split("-")[-1] not in raw  # only ciphertext is stored
    assert Fernet(SECRET_KEY.encode()).decrypt(row["bot_token_encrypted"].encode()).decode() == team.token
    # The install's state was consumed; only the first, never used, is left (until it expires).
    assert [r["state"] for r in rows(ctx.db, "oauth_states")] == query["state"]


async def test_a_forged_state_is_refused_with_a_clear_page(served: Served, fake: FakeSlack,
                                                         ctx: CommandContext) -> None:
    started = await served.client.get(INSTALL_PATH)
    cookie = SimpleCookie(started.headers["set-cookie"])
    [name] = cookie.keys()
    forged = "forged-" + uuid.uuid4().hex
    # The forger's state in both the URL and the cookie: the browser check passes, the store does not know it.
    page = await served.client.get(REDIRECT_PATH, params={"code": fake.grant("T1"), "state": forged},
                                   headers={"Cookie": f"{name}={forged}"})
    assert page.status_code == 401
    assert "leaderwatch was not installed" in page.text
    assert "not issued by leaderwatch, has expired" in page.text and INSTALL_PATH in page.text
    # Without the cookie at all: another browser.
    other = await served.client.get(REDIRECT_PATH, params={"code": fake.grant("T1"), "state": forged})
    assert other.status_code == 400 and "not started in this browser" in other.text
    assert fake.called("oauth.v2.access") == [] and rows(ctx.db, "installations") == []


async def test_a_state_is_good_for_one_install_only(served: Served, fake: FakeSlack,
                                                     ctx: CommandContext) -> None:
    started = await served.client.get(INSTALL_PATH)
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    cookie = SimpleCookie(started.headers["set-cookie"])
    [name] = cookie.keys()
    headers = {"Cookie": f"{name}={cookie[name].value}"}
    first = await served.client.get(REDIRECT_PATH, params={"code": fake.grant("T1"), "state": state},
                                    headers=headers)
    assert first.status_code == 200
    again = await served.client.get(REDIRECT_PATH, params={"code": fake.grant("T2"), "state": state},
                                    headers=headers)
    assert again.status_code == 401 and [r["workspace"] for r in rows(ctx.db, "installations")] == ["T1"]


# -- each workspace with its own token -------------------------------------------------------------------

async def test_each_workspace_runs_with_its_own_token(served: Served, fake: FakeSlack,
                                                      ctx: CommandContext) -> None:
    assert (await served.install(fake, "T1")).status_code == 200
    assert (await served.install(fake, "T2")).status_code == 200
    t1, t2 = fake.teams["T1"].token, fake.teams["T2"].token
    assert t1 and t2 and t1 != t2

    answer = await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", ADMIN_1, fake)
    assert answer["blocks"][0]["text"]["text"] == "Subscribed", answer
    answer = await served.command("T2", "subscribe lmarena/* overtake", "C2ALERTS", ADMIN_2, fake)
    assert answer["blocks"][0]["text"]["text"] == "Subscribed", answer
    # Bolt's authorize checked each request's token, and the admin check asked each team with its own.
    assert [c.params["user"] for c in fake.called("users.info")] == [ADMIN_1, ADMIN_2]
    assert fake.tokens("users.info") == [t1, t2]
    assert {t for t in fake.tokens("auth.test")} == {t1, t2}
    assert {(r["channel_id"], r["workspace"]) for r in rows(ctx.db, "channel_workspaces")} == {
        ("C1ALERTS", "T1"), ("C2ALERTS", "T2")}
    assert [(r["channel_id"], r["workspace"], r["action"]) for r in rows(ctx.db, "audit")] == [
        ("C1ALERTS", "T1", "subscribe"), ("C2ALERTS", "T2", "subscribe")]

    # One overtake, two channels in two workspaces: each alert goes with its own workspace's token.
    assert queue_overtake(ctx.db) == 2
    dispatcher = Dispatcher(ctx.db, {"slack": served.service.sender}, ctx.clock)
    assert await dispatcher.run_once() == 2
    posts = fake.called("chat.postMessage")
    assert sorted((c.params["channel"], c.token) for c in posts) == [("C1ALERTS", t1), ("C2ALERTS", t2)]
    assert {r["status"] for r in rows(ctx.db, "outbox")} == {"delivered"}
    # Each channel is paced with its own workspace (Slack's limits are per workspace), read from the store.
    sender = served.service.sender
    served.service.workspaces.known.clear()
    assert [sender.pace_scope(c) for c in ("C1ALERTS", "C2ALERTS", "C9UNKNOWN")] == ["T1", "T2", ""]


async def test_two_workspaces_each_send_at_their_own_rate(served: Served, fake: FakeSlack,
                                                          ctx: CommandContext) -> None:
    from leaderwatch.bot.pipeline.delivery import Pacing, Rate

    assert (await served.install(fake, "T1")).status_code == 200
    assert (await served.install(fake, "T2")).status_code == 200
    channels = {f"C{team}X{i}": team for team in ("T1", "T2") for i in range(4)}
    for channel, team in channels.items():
        add_subscription(ctx.db, "slack", channel, "lmarena/*", "overtake", "U0ADMIN", NOW)
        installations.record_channel(ctx.db, "slack", channel, team, NOW)
    fake.channel_teams.update(channels)
    fake.method_limits["chat.postMessage"] = 120  # the fake's limit, per workspace: two a second each
    assert queue_overtake(ctx.db) == 8
    # The pace, one a second in each workspace, keeps well under it (a loaded machine delays requests
    # unevenly: pace and limit equal would meet the odd 429).
    dispatcher = Dispatcher(ctx.db, {"slack": served.service.sender}, ctx.clock,
                            pacing={"slack": Pacing({"chat.postMessage": Rate(1.0, 1.0)})})
    started = time.monotonic()
    delivered = await dispatcher.run_once()
    while delivered < 8 and time.monotonic() - started < 20:
        delivered += await dispatcher.run_once()
    took = time.monotonic() - started
    assert delivered == 8 and fake.rate_limited == []  # the fake's limits per workspace were kept
    assert took < 5.5, took  # side by side: about 3 s; one rate for both would take 7 s
    posts = [(c.params["channel"], c.token) for c in fake.called("chat.postMessage")]
    assert sorted(posts) == sorted((c, fake.teams[t].token) for c, t in channels.items())


async def test_an_admin_of_one_workspace_is_asked_again_in_another(served: Served, fake: FakeSlack,
                                                                 ctx: CommandContext) -> None:
    await served.install(fake, "T1")
    await served.install(fake, "T2")
    await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", ADMIN_1, fake)
    await served.command("T2", "subscribe lmarena/* overtake", "C2ALERTS", ADMIN_1, fake)
    # The cached "is an admin" of T1 is not reused for T2: T2 is asked, with T2's token.
    assert fake.tokens("users.info") == [fake.teams["T1"].token, fake.teams["T2"].token]


async def test_a_member_is_refused_and_the_refusal_changes_nothing(served: Served, fake: FakeSlack,
                                                                 ctx: CommandContext) -> None:
    await served.install(fake, "T1")
    answer = await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", MEMBER, fake)
    assert "Only channel managers can change this channel's configuration" in json.dumps(answer)
    assert rows(ctx.db, "subscriptions") == [] and rows(ctx.db, "audit") == []


async def test_a_workspace_that_never_installed_gets_the_reinstall_message(served: Served, fake: FakeSlack,
                                                                          ctx: CommandContext) -> None:
    await served.install(fake, "T1")
    hook = uuid.uuid4().hex[:8]
    body = form_body({**slash_payload("help", channel_id="C9", response_url=fake.response_url(hook)),
                      "team_id": "T9"})
    resp = await served.client.post("/slack/events", content=body, headers=signed_headers(body))
    assert resp.status_code == 200
    await fake.wait_for(lambda: fake.responses)
    assert "installation with this app is no longer available" in json.dumps(fake.responses)
    assert fake.called("users.info") == [] and rows(ctx.db, "subscriptions") == []


# -- uninstalls and revoked tokens -----------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    pytest.param({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UT1BOT"]}}, id="tokens_revoked"),
    pytest.param({"type": "app_uninstalled"}, id="app_uninstalled"),
])
async def test_removing_the_app_forgets_the_workspace_and_keeps_the_audit(
        served: Served, fake: FakeSlack, ctx: CommandContext, event: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    fake.channel_teams.update({"C1ALERTS": "T1", "C2ALERTS": "T2"})
    await served.install(fake, "T1")
    await served.install(fake, "T2")
    await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", ADMIN_1, fake)
    await served.command("T2", "subscribe lmarena/* overtake", "C2ALERTS", ADMIN_2, fake)
    set_channel_setting(ctx.db, "slack", "C1ALERTS", "digest", "daily", NOW)
    token = fake.teams["T1"].token
    assert token is not None

    caplog.set_level("INFO", logger="leaderwatch.bot.chat.slack")
    resp = await served.event("T1", {**event, "event_ts": f"{time.time():.6f}"})
    assert resp.status_code == 200
    await fake.wait_for(lambda: not rows(ctx.db, "channel_workspaces")
                        or all(r["workspace"] != "T1" for r in rows(ctx.db, "channel_workspaces")))
    assert [r["workspace"] for r in rows(ctx.db, "installations")] == ["T2"]
    assert [r["channel_id"] for r in rows(ctx.db, "subscriptions")] == ["C2ALERTS"]
    assert rows(ctx.db, "channel_settings") == []
    audit = [(r["channel_id"], r["workspace"], r["action"]) for r in rows(ctx.db, "audit")]
    assert audit == [("C1ALERTS", "T1", "subscribe"), ("C2ALERTS", "T2", "subscribe"),
                     ("C1ALERTS", "T1", "uninstall")]
    [line] = [r.getMessage() for r in caplog.records if "workspace T1 removed" in r.getMessage()]
    assert event["type"] in line and "1 subscription(s)" in line and "1 channel setting(s)" in line
    assert token not in caplog.text
    # A command from the removed workspace now finds no installation; T2 still works.
    assert (await served.command("T2", "help", "C2ALERTS", ADMIN_2, fake))["response_type"] == "ephemeral"
    with pytest.raises(DeliveryError) as gone:
        await served.service.sender.send("C1ALERTS", Reply(text="hello"), "k1")
    assert gone.value.channel_gone
    assert [c.params["channel"] for c in fake.called("chat.postMessage")] == []


async def test_a_revoked_user_token_alone_changes_nothing(served: Served, fake: FakeSlack,
                                                        ctx: CommandContext) -> None:
    await served.install(fake, "T1")
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": ["UT1INSTALLER"], "bot": []},
               "event_ts": f"{time.time():.6f}"}
    resp = await served.event("T1", revoked)
    assert resp.status_code == 200
    assert [r["workspace"] for r in rows(ctx.db, "installations")] == ["T1"]


# -- settings and the key ----------------------------------------------------------------------------------

OAUTH_ENV = {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET,
             "SLACK_SIGNING_SECRET": SIGNING_SECRET, "LEADERWATCH_HTTP_PORT": "8080",
             "LEADERWATCH_SECRET_KEY": SECRET_KEY}


def test_oauth_settings_load(tmp_path: Path) -> None:
    settings = load_settings(OAUTH_ENV, cwd=tmp_path)
    assert settings.slack_oauth and settings.has_chat and settings.slack_bot_token is None
    assert settings.slack_mode == "http"  # a public app's default: Slack posts to /slack/events


@pytest.mark.parametrize(("drop", "add", "says"), [
    ("LEADERWATCH_SECRET_KEY", {}, "from cryptography.fernet import Fernet; print(Fernet.generate_key()"),
    ("SLACK_CLIENT_SECRET", {}, "SLACK_CLIENT_SECRET: required with the other"),
    ("SLACK_SIGNING_SECRET", {}, "SLACK_SIGNING_SECRET: required for OAuth installs"),
    ("LEADERWATCH_HTTP_PORT", {}, "LEADERWATCH_HTTP_PORT: required for OAuth installs"),
    (None, {"SLACK_BOT_TOKEN": "xoxb-1"}, "choose one"),
    (None, {"LEADERWATCH_SLACK_MODE": "socket"}, "set LEADERWATCH_SLACK_MODE=http, or unset it"),
])
def test_incomplete_oauth_settings_refuse_to_start(tmp_path: Path, drop: str | None, add: dict[str, str],
                                                   says: str) -> None:
    env = {k: v for k, v in OAUTH_ENV.items() if k != drop} | add
    with pytest.raises(ConfigError, match=None) as refused:
        load_settings(env, cwd=tmp_path)
    assert says in str(refused.value)


async def test_a_short_secret_key_refuses_to_start(fake: FakeSlack, ctx: CommandContext) -> None:
    with pytest.raises(ConfigError) as refused:
        SlackService(oauth_settings(fake, secret_key="short"), ctx)
    said = str(refused.value)
    assert "LEADERWATCH_SECRET_KEY: too short" in said and "Fernet.generate_key" in said


def test_any_long_secret_is_stretched_into_a_key() -> None:
    """A passphrase works (HKDF-SHA256): the same one decrypts, another does not."""
    cipher = installations.TokenCipher("correct horse battery staple")
    sealed = cipher.encrypt("xoxb-secret")
    assert "xoxb-secret" not in sealed
    assert installations.TokenCipher("correct horse battery staple").decrypt(sealed) == "xoxb-secret"
    with pytest.raises(installations.InstallationError, match="key changed"):
        installations.TokenCipher("another long passphrase!").decrypt(sealed)


def test_the_install_asks_for_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]


# -- the store on both backends --------------------------------------------------------------------------

def _postgres_db() -> Iterator[Database]:
    """A PostgreSQL database in a schema of its own, dropped after."""
    with new_postgres_schema("oauth") as url:
        db = open_db(url)
        try:
            yield db
        finally:
            db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = open_db(tmp_path / "lw.db")
        yield db
        db.close()
    else:
        yield from _postgres_db()


def test_the_store_round_trip(any_db: Database) -> None:
    cipher = installations.TokenCipher(SECRET_KEY)
    install = installations.Installation("slack", "T1", "T1", None, "xoxb-first", bot_user_id="UB",
                                         bot_scopes=("commands", "chat:write"), team_name="Acme")
    installations.save_installation(any_db, cipher, install, NOW)
    reinstall = replace(install, bot_token="xoxb-second")
    installations.save_installation(any_db, cipher, reinstall, NOW)
    found = installations.find_installation(any_db, cipher, "slack", "T1")
    assert found is not None and found.bot_token == "xoxb-second"
    assert found.bot_scopes == ("commands", "chat:write")
    assert "xoxb" not in repr(found)
    installations.record_channel(any_db, "slack", "C1", "T1", NOW)
    installations.record_channel(any_db, "slack", "C1", "T1", NOW)
    assert installations.channel_token(any_db, cipher, "slack", "C1") == "xoxb-second"
    assert installations.channel_token(any_db, cipher, "slack", "C2") is None
    state = installations.issue_state(any_db, NOW)
    assert installations.consume_state(any_db, state, NOW)
    assert not installations.consume_state(any_db, state, NOW)
    expired = installations.issue_state(any_db, NOW, seconds=60)
    assert not installations.consume_state(any_db, expired, NOW.replace(minute=2))
    removed = installations.remove_workspace(any_db, "slack", "T1", "app_uninstalled", NOW)
    assert (removed.installation, removed.channels) == (True, 1)
    assert installations.find_installation(any_db, cipher, "slack", "T1") is None
    assert installations.installed_workspaces(any_db, "slack") == []


async def test_the_home_tab_shows_only_the_openers_workspace(served: Served, fake: FakeSlack,
                                                             ctx: CommandContext) -> None:
    await served.install(fake, "T1")
    await served.install(fake, "T2")
    await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", ADMIN_1, fake)
    await served.command("T2", "subscribe lmarena/* overtake", "C2ALERTS", ADMIN_2, fake)
    opened = {"type": "app_home_opened", "user": ADMIN_1, "channel": "DUT1ADMIN", "tab": "home",
              "event_ts": f"{time.time():.6f}"}
    assert (await served.event("T1", opened)).status_code == 200
    await fake.wait_for(lambda: ADMIN_1 in fake.home)
    shown = json.dumps(fake.home[ADMIN_1])
    assert "C1ALERTS" in shown and "C2ALERTS" not in shown
    assert fake.tokens("views.publish") == [fake.teams["T1"].token]


# -- the whole service -----------------------------------------------------------------------------------

async def test_the_whole_service_serves_installs_and_logs_no_secret(tmp_path: Path, fake: FakeSlack) -> None:
    """`run()` in OAuth mode: the install routes on the one HTTP server, a command from the new
    workspace, and DEBUG logs (slack_sdk's included) with no token, client secret or key in them."""
    import io

    from leaderwatch.bot.app import build_app
    from leaderwatch.bot.runtime.logs import configure_logging
    from tests.helpers import running, served_port

    settings = oauth_settings(fake, db_path=str(tmp_path / "lw.db"), log_format="json")
    out = io.StringIO()
    handler = configure_logging(settings, verbose=True, stream=out)
    app = build_app(settings, sources=[])
    try:
        async with running(app) as service:
            port = await served_port(app, service)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                served = Served(None, None, http)  # type: ignore[arg-type]
                assert (await served.install(fake, "T1")).status_code == 200
                answer = await served.command("T1", "help", "C1ALERTS", MEMBER, fake)
                assert answer["response_type"] == "ephemeral"
    finally:
        await app.aclose()
        import logging

        logging.getLogger().removeHandler(handler)
    text = out.getvalue()
    token = fake.teams["T1"].token
    assert token and token not in text
    assert CLIENT_SECRET not in text and SECRET_KEY not in text
    assert "Slack: installed in Acme (T1) by UT1INSTALLER" in text
    assert "oauth.v2.access" in text and "access_token" in text  # slack_sdk's DEBUG lines were there


@pytest.fixture
def pg_db() -> Iterator[Database]:
    yield from _postgres_db()


async def test_install_command_and_revocation_on_postgresql(fake: FakeSlack, pg_db: Database) -> None:
    """The same flow with the database on PostgreSQL: install, a command, an alert, tokens_revoked."""
    db = pg_db
    ctx = build_context(db, lambda: NOW)
    service = SlackService(oauth_settings(fake), ctx, min_post_interval=0)
    assert await service.start()
    runner = await start_http(build_web_app(ctx.db, ctx.clock, service.routes()), 0, "127.0.0.1")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}") as http:
            served = Served(service, runner, http)
            assert (await served.install(fake, "T1")).status_code == 200
            token = fake.teams["T1"].token
            assert token and token not in json.dumps(rows(db, "installations"))
            answer = await served.command("T1", "subscribe lmarena/* overtake", "C1ALERTS", ADMIN_1, fake)
            assert answer["blocks"][0]["text"]["text"] == "Subscribed", answer
            assert fake.tokens("users.info") == [token]
            await service.sender.send("C1ALERTS", Reply(text="hello"), "k1")
            assert fake.tokens("chat.postMessage") == [token]
            revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UT1BOT"]},
                       "event_ts": f"{time.time():.6f}"}
            assert (await served.event("T1", revoked)).status_code == 200
            await fake.wait_for(lambda: not rows(db, "installations"))
            assert rows(db, "subscriptions") == []
            assert [(r["workspace"], r["action"]) for r in rows(db, "audit")] == [
                ("T1", "subscribe"), ("T1", "uninstall")]
    finally:
        await runner.cleanup()
        await service.stop()


async def test_a_channel_subscribed_before_the_app_went_public_is_found_in_its_workspace(
        served: Served, fake: FakeSlack, ctx: CommandContext) -> None:
    # Subscribed while one token served one workspace: no workspace recorded for these channels.
    for channel in ("C1OLD", "C9NOWHERE"):
        add_subscription(ctx.db, "slack", channel, "lmarena/*", "overtake", "U0OLD", NOW)
    assert (await served.install(fake, "T1")).status_code == 200
    assert (await served.install(fake, "T2")).status_code == 200
    fake.channel_teams.update({"C1OLD": "T2", "C9NOWHERE": "T3"})  # T3 never installed the app
    assert queue_overtake(ctx.db) == 2
    dispatcher = Dispatcher(ctx.db, {"slack": served.service.sender}, ctx.clock)
    assert await dispatcher.run_once() == 1
    # Each installed workspace was asked about the old channel with its own token; T2 has it.
    asked = [(c.params["channel"], c.token) for c in fake.called("conversations.history")]
    assert ("C1OLD", fake.teams["T2"].token) in asked
    [post] = fake.called("chat.postMessage")
    assert (post.params["channel"], post.token) == ("C1OLD", fake.teams["T2"].token)
    recorded = {(r["channel_id"], r["workspace"]) for r in rows(ctx.db, "channel_workspaces")}
    assert recorded == {("C1OLD", "T2")}
    # A channel no installed workspace has is given up as gone (and asked about once, not at every round).
    status = {r["channel_id"]: r["status"] for r in rows(ctx.db, "outbox")}
    assert status["C1OLD"] == "delivered" and status["C9NOWHERE"] != "delivered"
    before = len(fake.called("conversations.history"))
    await dispatcher.run_once()
    assert len(fake.called("conversations.history")) == before
