"""`leaderwatch doctor`: one line per check, the setting named on failure, exit status 1 when one fails.

Slack and Discord are the loopback fakes (tests/bot/fake_slack.py, fake_discord.py) or an
httpx.MockTransport standing in for slack.com, discord.com and the leaderboard sites.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from leaderwatch.bot.app import App, build_app
from leaderwatch.bot.cli.doctor import (
    FAIL,
    OK,
    SKIP,
    Check,
    add_parser,
    cmd_doctor,
    diagnose,
    exit_status,
    probe_url,
)
from leaderwatch.bot.settings import Settings, SourceSettings
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources
from tests.bot import fake_discord
from tests.bot.fake_discord import FakeDiscord
from tests.bot.fake_slack import FakeSlack
from tests.bot.test_metrics import BOARD, T0, FakeSource
from tests.helpers import Clock

SLACK_BOT = "xoxb-2468013579-1357924680-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0APP01-1234567890-0123456789abcdef0123456789abcdef"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
ARGS = argparse.Namespace(skip_sources=False, timeout=5.0)
Cap = pytest.CaptureFixture[str]


pytestmark = pytest.mark.usefixtures("slack_environment")


class Internet:
    """slack.com, discord.com and the fake leaderboard site behind a MockTransport; records requests."""

    def __init__(self, *, slack_tokens: set[str] | None = None, discord_token: str = DISCORD,
                 site: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.slack_tokens = {SLACK_BOT, SLACK_APP} if slack_tokens is None else slack_tokens
        self.discord_token = discord_token
        self.site = site or (lambda request: httpx.Response(200, text="[]"))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        auth = request.headers.get("authorization", "")
        if url.startswith("https://slack.com/api/"):
            token = auth.removeprefix("Bearer ")
            if token not in self.slack_tokens:
                return httpx.Response(200, json={"ok": False, "error": "invalid_auth"})
            if url.endswith("/auth.test"):
                return httpx.Response(200, json={"ok": True, "user": "leaderwatch", "user_id": "U0BOT",
                                                 "team": "Test team", "team_id": "T000"})
            return httpx.Response(200, json={"ok": True, "url": "wss://wss.invalid/link/?ticket=t"})
        if url == "https://discord.com/api/v10/users/@me":
            if auth != f"Bot {self.discord_token}":
                return httpx.Response(401, json={"message": "401: Unauthorized", "code": 0})
            return httpx.Response(200, json={"id": "900000000000000001", "username": "leaderwatch",
                                             "bot": True})
        return self.site(request)


def make_app(tmp_path: Path, internet: Internet, **settings: Any) -> App:
    values: dict[str, Any] = {"db_path": str(tmp_path / "lw.db"), "slack_bot_token": SLACK_BOT,
                              "slack_app_token": SLACK_APP, "discord_token": DISCORD, **settings}
    return build_app(Settings(**values), client=httpx.AsyncClient(transport=httpx.MockTransport(internet)),
                     sources=[FakeSource(Clock(T0))])


def doctor(app: App, capsys: Cap, args: argparse.Namespace = ARGS) -> tuple[int, list[str]]:
    """Run `cmd_doctor` on the app; (exit status, printed lines)."""
    try:
        status = cmd_doctor(app, args)
    finally:
        asyncio.run(app.aclose())
    out = capsys.readouterr().out
    for secret in (SLACK_BOT, SLACK_APP, DISCORD):
        assert secret not in out
    return status, out.splitlines()


def test_all_good_exits_0_with_one_ok_line_per_check(tmp_path: Path, capsys: Cap) -> None:
    internet = Internet()
    status, lines = doctor(make_app(tmp_path, internet), capsys)
    assert status == 0
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok    settings", "ok    database", "ok    source fake", "ok    slack bot token",
        "ok    slack app token", "ok    discord token"]
    assert lines[1].startswith(f"ok    database: {tmp_path / 'lw.db'} opens, takes writes, passes "
                               "quick_check")
    assert re.fullmatch(r"ok    source fake: https://fake\.example/board answered HTTP 200 in \d+\.\ds",
                        lines[2])
    assert lines[3] == "ok    slack bot token: auth.test: signed in as leaderwatch (U0BOT) in Test team"
    assert lines[5] == "ok    discord token: /users/@me: signed in as leaderwatch (900000000000000001)"
    assert lines[-1] == "all checks passed"
    methods = [(r.method, r.url.path) for r in internet.requests]
    assert sorted(methods) == sorted([("GET", "/board"), ("POST", "/api/auth.test"),
                                      ("POST", "/api/apps.connections.open"), ("GET", "/api/v10/users/@me")])


def test_a_bad_slack_token_names_the_setting_and_exits_1(tmp_path: Path, capsys: Cap) -> None:
    status, lines = doctor(make_app(tmp_path, Internet(slack_tokens={SLACK_APP})), capsys)
    assert status == 1
    assert ("FAIL  slack bot token: SLACK_BOT_TOKEN was rejected by auth.test (invalid_auth); set it to "
            "the token at Slack app > OAuth & Permissions > Bot User OAuth Token, xoxb-... and reinstall "
            "the app to the workspace if it was revoked") in lines
    assert lines[-1] == "1 check(s) failed"


def test_a_bad_discord_token_names_the_setting_and_exits_1(tmp_path: Path,
                                                           capsys: Cap) -> None:
    status, lines = doctor(make_app(tmp_path, Internet(discord_token="another")), capsys)
    assert status == 1
    assert ("FAIL  discord token: DISCORD_TOKEN was rejected (401 Unauthorized); set it to the bot token "
            "(Discord Developer Portal > Applications > your application > Bot > Reset Token)") in lines


def test_a_missing_app_token_in_socket_mode_names_the_setting(tmp_path: Path,
                                                              capsys: Cap) -> None:
    status, lines = doctor(make_app(tmp_path, Internet(), slack_app_token=None), capsys)
    assert status == 1
    assert ("FAIL  slack app token: SLACK_APP_TOKEN: required in Socket Mode (Slack app > Basic "
            "Information > App-Level Tokens, scope connections:write, xapp-...), or set "
            "LEADERWATCH_SLACK_MODE=http") in lines


def test_http_mode_needs_the_signing_secret_and_a_port(tmp_path: Path, capsys: Cap) -> None:
    status, lines = doctor(make_app(tmp_path, Internet(), slack_mode="http"), capsys)
    assert status == 1
    failed = [line for line in lines if line.startswith(FAIL)]
    assert failed == [
        "FAIL  slack signing secret: SLACK_SIGNING_SECRET: required in HTTP mode (Slack app > Basic "
        "Information > App Credentials > Signing Secret)",
        "FAIL  slack http port: LEADERWATCH_HTTP_PORT: required when LEADERWATCH_SLACK_MODE=http (Slack "
        "posts to /slack/events on that port)"]


def test_no_chat_tokens_skips_the_chat_checks(tmp_path: Path, capsys: Cap) -> None:
    internet = Internet()
    status, lines = doctor(make_app(tmp_path, internet, slack_bot_token=None, slack_app_token=None,
                                    discord_token=None), capsys)
    assert status == 0
    assert "skip  slack: SLACK_BOT_TOKEN is not set: Slack is off" in lines
    assert "skip  discord: DISCORD_TOKEN is not set: Discord is off" in lines
    assert [r.url.path for r in internet.requests] == ["/board"]


def test_an_app_token_without_the_bot_token_names_the_missing_one(tmp_path: Path,
                                                                  capsys: Cap) -> None:
    status, lines = doctor(make_app(tmp_path, Internet(), slack_bot_token=None), capsys)
    assert status == 1
    assert [line for line in lines if line.startswith(FAIL)] == [
        "FAIL  slack bot token: SLACK_BOT_TOKEN is not set, but other Slack settings are: set it (Slack "
        "app > OAuth & Permissions > Bot User OAuth Token, xoxb-...) or unset SLACK_APP_TOKEN and "
        "SLACK_SIGNING_SECRET"]


def test_no_network_for_the_sources_fails_each_naming_source_and_url(tmp_path: Path,
                                                                     capsys: Cap) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    status, lines = doctor(make_app(tmp_path, Internet(site=offline)), capsys)
    assert status == 1
    assert ("FAIL  source fake: cannot reach https://fake.example/board: ConnectError: [Errno -3] Temporary "
            "failure in name resolution; check this machine's network, DNS and proxy (HTTPS_PROXY) settings, "
            "or disable the source with [sources.fake] enabled = false") in lines
    assert "ok    slack bot token: auth.test: signed in as leaderwatch (U0BOT) in Test team" in lines


async def test_every_real_source_is_probed_at_the_url_it_polls(tmp_path: Path) -> None:
    """No network at all: one FAIL per shipped source, naming it and its live URL; no request left out."""
    tried: list[str] = []

    def offline(request: httpx.Request) -> httpx.Response:
        tried.append(str(request.url))
        raise httpx.ConnectError("network is unreachable")

    settings = Settings(db_path=str(tmp_path / "lw.db"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(offline)) as client:
        checks = await diagnose(settings, client=client)
    every = all_sources(Identity.load())
    source_checks = [c for c in checks if c.name.startswith("source ")]
    assert [c.name for c in source_checks] == [f"source {s.name}" for s in every]
    # the Open LLM Leaderboard retired upstream: not polled, not probed, unless the config enables it
    retired = ("not polled: retired upstream, its history stays readable ([sources.openllm] enabled = true "
               "polls it anyway)")
    assert Check(SKIP, "source openllm", retired) in source_checks
    sources = [s for s in every if s.name != "openllm"]
    source_checks = [c for c in source_checks if c.name != "source openllm"]
    assert all(c.status == FAIL for c in source_checks)
    for source, check in zip(sources, source_checks, strict=True):
        url = probe_url(source)
        assert url is not None and url.startswith("https://")
        assert check.detail.startswith(f"cannot reach {url}: ConnectError: network is unreachable")
    assert sorted(tried) == sorted(probe_url(s) for s in sources)  # type: ignore[type-var]
    assert any("lmarena-ai" in url for url in tried)  # each source names its own first URL (probe_url)
    assert exit_status(checks) == 1


async def test_an_error_status_and_a_disabled_source(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "lw.db"), sources={"other": SourceSettings(enabled=False)})
    other = FakeSource(Clock(T0))
    other.name = "other"  # type: ignore[misc]
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))) as client:
        checks = await diagnose(settings, client=client, sources=[FakeSource(Clock(T0)), other])
    assert Check(FAIL, "source fake", f"{BOARD.url} answered HTTP 404 (the address moved: leaderwatch may "
                                      "need an update)") in checks
    assert Check(SKIP, "source other", "disabled in the config ([sources.other] enabled = false)") in checks


async def test_skip_sources_makes_no_request_to_them(tmp_path: Path) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    settings = Settings(db_path=str(tmp_path / "lw.db"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        checks = await diagnose(settings, client=client, sources=[FakeSource(Clock(T0))], skip_sources=True)
    assert requests == []
    assert Check(SKIP, "source fake", "--skip-sources") in checks and exit_status(checks) == 0


async def test_real_fake_slack_and_discord_over_loopback(tmp_path: Path) -> None:
    """The same checks against the loopback fakes the chat tests use (real HTTP, their own token checks)."""
    slack = await FakeSlack(bad_tokens={SLACK_BOT}).start()
    discord = await FakeDiscord().start()
    try:
        settings = Settings(db_path=str(tmp_path / "lw.db"), slack_bot_token=SLACK_BOT,
                            slack_app_token=SLACK_APP, discord_token=fake_discord.TOKEN,
                            slack_api_url=slack.api_url, discord_api_url=discord.api_url)
        checks = await diagnose(settings, sources=[])
        by_name = {c.name: c for c in checks}
        assert by_name["slack bot token"].status == FAIL
        assert "SLACK_BOT_TOKEN was rejected by auth.test (invalid_auth)" in by_name["slack bot token"].detail
        assert by_name["slack app token"] == Check(OK, "slack app token",
                                                   "apps.connections.open: Socket Mode can connect")
        assert by_name["discord token"].status == OK
        assert [(c.method, c.token) for c in slack.calls] == [("auth.test", SLACK_BOT),
                                                              ("apps.connections.open", SLACK_APP)]

        bad = Settings(db_path=settings.db_path, discord_token=DISCORD, discord_api_url=discord.api_url)
        [discord_check] = [c for c in await diagnose(bad, sources=[]) if c.name == "discord token"]
        assert discord_check.status == FAIL and "DISCORD_TOKEN was rejected" in discord_check.detail

        gone = Settings(db_path=settings.db_path, slack_bot_token=SLACK_BOT, slack_mode="http",
                        slack_signing_secret="s3cret-signing", http_port=3000,
                        slack_api_url="http://127.0.0.1:9/api/")
        [slack_check] = [c for c in await diagnose(gone, sources=[]) if c.name == "slack bot token"]
        assert slack_check.status == FAIL
        assert slack_check.detail.startswith("cannot check SLACK_BOT_TOKEN: cannot reach "
                                             "http://127.0.0.1:9/api/auth.test: ConnectError")
        assert slack_check.detail.endswith("check this machine's network and proxy, and "
                                           "LEADERWATCH_SLACK_API_URL")
    finally:
        await slack.stop()
        await discord.stop()


def test_bad_settings_fail_first_and_skip_the_rest(tmp_path: Path, capsys: Cap) -> None:
    environ = {"LEADERWATCH_DB": str(tmp_path / "lw.db"),
               "SLACK_BOT_TOKEN": "xoxp-a-user-token-not-a-bot-one"}
    status = cmd_doctor(environ, ARGS)
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert lines[0].startswith("FAIL  settings: SLACK_BOT_TOKEN: expected a bot token starting with xoxb-")
    assert lines[1] == "skip  database, sources, chat tokens: need valid settings first"
    assert "xoxp-a-user-token-not-a-bot-one" not in "\n".join(lines)


def test_settings_from_the_environment_are_loaded_and_checked(tmp_path: Path,
                                                              capsys: Cap) -> None:
    environ = {"LEADERWATCH_DB": str(tmp_path / "lw.db"), "LEADERWATCH_LOG_FORMAT": "xml"}
    assert cmd_doctor(environ, ARGS) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "FAIL  settings: LEADERWATCH_LOG_FORMAT: expected `text` or `json`, got 'xml'")


@pytest.mark.parametrize("make_bad", [
    pytest.param(lambda tmp: (tmp / "a-file").write_text("x") and str(tmp / "a-file" / "lw.db"),
                 id="under-a-file"),
    pytest.param(lambda tmp: (tmp / "junk.db").write_bytes(b"not a database" * 200) and str(tmp / "junk.db"),
                 id="not-sqlite"),
])
async def test_a_database_that_cannot_be_opened_names_leaderwatch_db(tmp_path: Path,
                                                                    make_bad: Callable[[Path], str]) -> None:
    settings = Settings(db_path=make_bad(tmp_path))
    checks = await diagnose(settings, sources=[], skip_sources=True)
    [db_check] = [c for c in checks if c.name == "database"]
    assert db_check.status == FAIL
    assert db_check.detail.startswith(f"cannot open the database {settings.db_path}")
    assert db_check.detail.endswith("set LEADERWATCH_DB to a writable path (or --db PATH)")


async def test_a_new_database_is_reported_as_created(tmp_path: Path) -> None:
    checks = await diagnose(Settings(db_path=str(tmp_path / "new.db")), sources=[], skip_sources=True)
    assert Check(OK, "database", f"{tmp_path / 'new.db'} opens, takes writes, passes quick_check; "
                                 "0 snapshot(s), created now") in checks


def test_the_doctor_command_line() -> None:
    parser = argparse.ArgumentParser(prog="leaderwatch")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["doctor", "--skip-sources", "--timeout", "3"])
    assert (args.command, args.skip_sources, args.timeout) == ("doctor", True, 3.0)
    assert parser.parse_args(["doctor"]).timeout == 10.0


async def test_a_configured_source_url_is_the_one_checked(tmp_path: Path) -> None:
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(str(request.url))
        return httpx.Response(404 if request.url.host == "mirror.example" else 200)

    mirror = "https://mirror.example/swe/leaderboards.json"
    settings = Settings(db_path=str(tmp_path / "lw.db"),
                        sources={"swebench": SourceSettings(url=mirror),
                                 "openllm": SourceSettings(enabled=True, url="https://hf.example/rows")})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        checks = await diagnose(settings, client=client)
    by_name = {c.name: c for c in checks}
    swe = by_name["source swebench"]
    assert swe.status == FAIL
    assert swe.detail.startswith(f"{mirror} answered HTTP 404")
    assert f'[sources.swebench] url = "{mirror}"' in swe.detail and "or remove it" in swe.detail
    # a retired source the config turns on is checked at its configured address
    assert by_name["source openllm"].status == OK
    assert by_name["source openllm"].detail.startswith(
        "configured url https://hf.example/rows answered HTTP 200")
    assert mirror in tried and "https://hf.example/rows" in tried


def test_a_malformed_source_url_fails_the_settings_check(tmp_path: Path) -> None:
    config = tmp_path / "leaderwatch.toml"
    config.write_text('[sources.epoch]\nurl = "epoch.ai/data/benchmark_data.zip"\n', encoding="utf-8")
    environ = {"LEADERWATCH_CONFIG": str(config), "LEADERWATCH_DB": str(tmp_path / "x.db")}
    checks = asyncio.run(diagnose(environ, skip_sources=True))
    [settings_check] = [c for c in checks if c.name == "settings"]
    assert settings_check.status == FAIL
    assert settings_check.detail.startswith(
        "config [sources.epoch] url: 'epoch.ai/data/benchmark_data.zip' is not an http(s) URL")


async def test_on_postgres_the_server_its_version_and_the_schema_are_checked(postgres_schema: str) -> None:
    checks = await diagnose(Settings(db_path=postgres_schema), sources=[], skip_sources=True)
    [db_check] = [c for c in checks if c.name == "database"]
    assert db_check.status == OK, db_check.detail
    assert re.search(r"\(PostgreSQL \d+(\.\d+)*\) connects, takes writes; schema at m\d{3}_\w+; \d+ snapshot",
                     db_check.detail), db_check.detail


async def test_an_unreachable_postgres_names_the_url_without_its_password(refused_port: int) -> None:
    url = f"postgresql://leader:s3cret@127.0.0.1:{refused_port}/lw"
    checks = await diagnose(Settings(db_path=url), sources=[], skip_sources=True)
    [db_check] = [c for c in checks if c.name == "database"]
    assert db_check.status == FAIL and "cannot reach PostgreSQL" in db_check.detail
    assert "s3cret" not in db_check.detail and "LEADERWATCH_DB" in db_check.detail


def test_a_public_slack_app_checks_the_oauth_settings_and_the_key(tmp_path: Path, capsys: Cap) -> None:
    oauth = {"slack_bot_token": None, "slack_app_token": None, "discord_token": None, "slack_mode": "http",
             "slack_client_id": "111.222", "slack_client_secret": "client-secret-0123456789",
             "slack_signing_secret": "signing-secret-0123456789", "http_port": 0}
    internet = Internet()
    status, lines = doctor(make_app(tmp_path, internet, secret_key="a passphrase of some length", **oauth),
                           capsys)
    assert status == 0
    assert ("ok    slack oauth: public app 111.222: workspaces install at https://YOUR-HOST/slack/install; "
            "their tokens are checked as they are used") in lines
    assert [r.url.path for r in internet.requests] == ["/board"]  # no workspace token to ask Slack about

    status, lines = doctor(make_app(tmp_path, Internet(), secret_key="short", **oauth), capsys)
    assert status == 1
    assert any(line.startswith("FAIL  slack oauth: LEADERWATCH_SECRET_KEY: too short (5 characters)")
               for line in lines)
    status, lines = doctor(make_app(tmp_path, Internet(), secret_key=None, **{**oauth, "http_port": None}),
                           capsys)
    assert status == 1
    assert ("FAIL  slack oauth: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set (a public app) but "
            "LEADERWATCH_HTTP_PORT and LEADERWATCH_SECRET_KEY are not: set them (README \"A public app for "
            "many workspaces\")") in lines
