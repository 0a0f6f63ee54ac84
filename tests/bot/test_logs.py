"""No token or secret reaches any log line; LEADERWATCH_LOG_FORMAT=json gives one JSON object per line.

The runs below capture everything the root handler writes (DEBUG and up, every library) while the
settings hold a Slack bot token, app token, signing secret and a Discord token.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leaderwatch.bot.app import build_app, command_context
from leaderwatch.bot.commands import COMMANDS, Command, CommandContext, Invocation, dispatch
from leaderwatch.bot.runtime.logs import QUIET_LOGGERS, REDACTED, Redactor, configure_logging
from leaderwatch.bot.settings import Settings, load_settings
from leaderwatch.sources.http import Fetcher
from leaderwatch.storage.db import open_db
from tests.bot.fake_slack import FakeSlack, form_body, signed_headers, slash_payload
from tests.bot.test_metrics import T0, WEST_LEADS, FakeSource
from tests.helpers import Clock, no_sleep, running, served_port, wait_until

pytestmark = pytest.mark.usefixtures("slack_environment")

SLACK_BOT = "xoxb-2468013579-1357924680-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0APP01-1234567890-0123456789abcdef0123456789abcdef"
SIGNING = "8f742231b10e8888abcd99aa0fe85a5c"  # no token shape: only the configured value gives it away
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SECRETS = (SLACK_BOT, SLACK_APP, SIGNING, DISCORD)
OTHER_WORKSPACE = "xoxp-9999999999-8888888888-7777777777-abcdefabcdefabcdefabcdefabcdef12"
"""A token of another workspace that is not configured, yet must not be logged either."""


def assert_no_secret(text: str) -> None:
    """No secret, nor a long piece of one, appears in `text`."""
    for secret in (*SECRETS, OTHER_WORKSPACE):
        assert secret not in text
        for start in range(0, len(secret) - 12, 4):
            assert secret[start:start + 12] not in text, (secret[start:start + 12], text)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def settings_with_tokens(tmp_path: Path, **more: Any) -> Settings:
    return Settings(db_path=str(tmp_path / "lw.db"), slack_bot_token=SLACK_BOT, slack_app_token=SLACK_APP,
                    slack_signing_secret=SIGNING, discord_token=DISCORD, **more)


class LeakySite:
    """The fake leaderboard site; `leak` makes the next requests fail with the token in the error."""

    def __init__(self) -> None:
        self.leak = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.leak:
            raise httpx.ConnectError(f"proxy refused https://proxy.invalid/?auth={DISCORD}&key={SIGNING}")
        return httpx.Response(200, json=WEST_LEADS)


class ExplodingSource(FakeSource):
    """A source with a bug whose exception text quotes the bot token."""

    name = "exploding"

    async def fetch(self, http: Fetcher) -> list[Any]:
        raise RuntimeError(f"parser bug near Authorization: Bearer {SLACK_BOT}")


async def test_a_run_with_tokens_set_logs_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with_tokens(tmp_path)
    out = io.StringIO()
    configure_logging(settings, verbose=True, stream=out)
    clock = Clock(T0)
    site = LeakySite()
    app = build_app(settings, client=httpx.AsyncClient(transport=httpx.MockTransport(site)),
                    sources=[FakeSource(clock), ExplodingSource(clock)], clock=clock)
    app.fetcher.attempts, app.fetcher.sleep = 2, no_sleep
    try:
        results = await app.poller.poll_all(app.sources)  # one success, one parser bug
        site.leak = True
        results += await app.poller.poll_all(app.sources[:1])  # a network error quoting two secrets
        assert [r.ok for r in results] == [True, False, False]

        async def crash(ctx: CommandContext, inv: Invocation, args: list[str]) -> Any:
            """Crashes with the signing secret in its message."""
            raise ValueError(f"could not verify with {SIGNING}")

        monkeypatch.setitem(COMMANDS, "crash", Command("crash", "crash", False, crash))
        ctx = command_context(app)
        for text in (f"top {SLACK_BOT}", f"crash {DISCORD} {OTHER_WORKSPACE}", "boards"):
            await dispatch(ctx, Invocation("slack", "C0GENERAL", "U0USER", "ada", text))
        # What libraries do at DEBUG: print headers, URLs with interaction tokens, objects' repr.
        logging.getLogger("slack_sdk.web.async_base_client").debug(
            "Sending a request - headers: {'Authorization': 'Bearer %s'}", SLACK_BOT)
        logging.getLogger("discord.http").debug(
            "POST https://discord.com/api/v10/interactions/1234/aW50ZXJhY3Rpb246MTIzNDo1Njc4/callback "
            "with %s has returned 204", {"token": DISCORD})
        logging.getLogger("slack_sdk.socket_mode").debug(
            "connecting to wss://wss-primary.slack.com/link/?ticket=abcd-1234-efgh&app_id=A0APP")
        logging.getLogger("leaderwatch.bot.test").info("settings: %r", settings, extra={"token": SLACK_APP})
    finally:
        await app.aclose()
    text = out.getvalue()
    assert_no_secret(text)
    assert "aW50ZXJhY3Rpb246MTIzNDo1Njc4" not in text and "abcd-1234-efgh" not in text
    # The run did log what it should, with the secrets' places marked.
    assert "poll fake: 1 board(s), changed: fake/board (3 rows)" in text
    assert "poll exploding failed (1 in a row): internal error RuntimeError" in text
    assert f"parser bug near Authorization: Bearer {REDACTED}" in text  # the traceback, redacted
    assert f"ConnectError: proxy refused https://proxy.invalid/?auth={REDACTED}&key={REDACTED}" in text
    assert "command top on slack:C0GENERAL by U0USER: user_error" in text  # unknown board (the token)
    assert "command crash on slack:C0GENERAL by U0USER: error" in text
    assert f"could not verify with {REDACTED}" in text
    assert "command boards on slack:C0GENERAL by U0USER: ok" in text
    assert f"/interactions/1234/{REDACTED}/callback" in text


async def test_the_whole_service_running_with_tokens_logs_no_token(tmp_path: Path, refused_port: int) -> None:
    """`run()`: Slack in HTTP mode against the fake Slack, Discord unreachable, a poll, a slash command."""
    slack = await FakeSlack().start()
    settings = settings_with_tokens(tmp_path, http_port=0, slack_mode="http", slack_api_url=slack.api_url,
                                    discord_api_url=f"http://127.0.0.1:{refused_port}/api/v10",
                                    discord_gateway_url=f"ws://127.0.0.1:{refused_port}/gateway/",
                                    log_format="json")
    out = io.StringIO()
    configure_logging(settings, verbose=True, stream=out)
    clock = Clock(T0)
    app = build_app(settings, client=httpx.AsyncClient(transport=httpx.MockTransport(LeakySite())),
                    sources=[FakeSource(clock)], clock=clock)
    try:
        async with running(app) as service:
            port = await served_port(app, service)
            db = open_db(settings.db_path)
            try:
                await wait_until(lambda: db.execute("SELECT count(*) FROM snapshots").fetchone()[0],
                                 message="the first poll to store a snapshot", running=service)
            finally:
                db.close()
            assert f"HTTP server listening on port {port}" in out.getvalue()
            body = form_body(slash_payload("boards", channel_id="C0GENERAL"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                answer = await http.post("/slack/events", content=body,
                                         headers=signed_headers(body, secret=SIGNING))
            assert answer.status_code == 200
    finally:
        await app.aclose()
        await slack.stop()
    text = out.getvalue()
    assert_no_secret(text)
    lines = [json.loads(line) for line in text.splitlines()]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("poll fake: 1 board(s)") for m in messages)
    assert any(m.startswith("command boards on slack:C0GENERAL") for m in messages)
    assert any("Discord: cannot log in to check DISCORD_TOKEN" in m for m in messages)
    assert any(line["logger"].startswith("slack_sdk") and line["level"] == "DEBUG" for line in lines)


def test_json_lines_carry_time_level_logger_message_extra_fields_and_the_exception(tmp_path: Path) -> None:
    settings = settings_with_tokens(tmp_path, log_format="json")
    out = io.StringIO()
    configure_logging(settings, verbose=False, stream=out)
    log = logging.getLogger("leaderwatch.bot.pipeline.poller")
    log.info("poll %s: %d board(s)", "lmarena", 3, extra={"source": "lmarena", "seconds": 1.25})
    log.debug("not shown at INFO")
    try:
        raise OSError(f"disk trouble {SIGNING}")
    except OSError:
        log.exception("delivery round failed", extra={"attempt": 2, "detail": {"token": SLACK_BOT}})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"time", "level", "logger", "message", "source", "seconds"}
    assert (first["level"], first["logger"]) == ("INFO", "leaderwatch.bot.pipeline.poller")
    assert first["message"] == "poll lmarena: 3 board(s)"
    assert (first["source"], first["seconds"]) == ("lmarena", 1.25)
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["level"] == "ERROR" and second["attempt"] == 2 and second["detail"] == {"token": REDACTED}
    assert second["exception"].startswith("Traceback") and f"OSError: disk trouble {REDACTED}" in \
        second["exception"]
    assert_no_secret(out.getvalue())


def test_text_is_the_default_format_and_configuring_twice_keeps_one_handler(tmp_path: Path) -> None:
    settings = load_settings({"LEADERWATCH_DB": str(tmp_path / "lw.db")}, cwd=tmp_path)
    assert settings.log_format == "text"
    first, second = io.StringIO(), io.StringIO()
    configure_logging(settings, verbose=False, stream=first)
    configure_logging(settings, verbose=False, stream=second)
    logging.getLogger("leaderwatch.bot.app").info("leaderwatch running")
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert line.endswith(" INFO leaderwatch.bot.app: leaderwatch running")
    assert logging.getLogger("httpx").level == logging.WARNING


@pytest.mark.parametrize(("text", "expected"), [
    (f"token {SLACK_BOT} here", f"token {REDACTED} here"),
    (f"app token={SLACK_APP}", f"app token={REDACTED}"),
    (f"signing secret {SIGNING}.", f"signing secret {REDACTED}."),
    (f"'Authorization': 'Bot {DISCORD}'", f"'Authorization': 'Bot {REDACTED}'"),
    (f"xoxe-1-refresh {OTHER_WORKSPACE}", f"{REDACTED} {REDACTED}"),
    ("Bearer abcdefghijklmnopqrstuvwxyz012345", f"Bearer {REDACTED}"),
    ("POST /webhooks/1234/aBcD-eFgH_ijkl.mn?wait=1", f"POST /webhooks/1234/{REDACTED}?wait=1"),
    ("response_url=https://hooks.slack.com/commands/T000/123/abc def", f"response_url=https://hooks.slack.com/"
                                                                       f"{REDACTED} def"),
    ("wss://wss-primary.slack.com/link/?ticket=1a2b-3c&app_id=A1", f"wss://wss-primary.slack.com/link/?ticket="
                                                                   f"{REDACTED}&app_id=A1"),
    # Ordinary lines pass untouched: board ids, URLs of sources, hashes, model names with dots.
    ("poll lmarena: 3 board(s), changed: lmarena/text (212 rows) (1.2s)", None),
    ("GET https://datasets-server.huggingface.co/rows?dataset=lmarena-ai%2Fleaderboard-dataset", None),
    ("delivered alert to slack:C0ALERTS (key 3f2a9c1e0b7d4a5c8e6f1a2b3c4d5e6f), attempt 1", None),
    ("event overtake on lmarena/text: DeepSeek-V3.1 passes gpt-4.5-preview-2025-02-27", None),
])
def test_redaction_patterns(text: str, expected: str | None) -> None:
    redact = Redactor(SECRETS)
    assert redact(text) == (text if expected is None else expected)


def test_short_configured_values_are_not_blanked_everywhere() -> None:
    assert Redactor(["abc", None, ""])("abc abc") == "abc abc"


def test_the_password_of_a_postgresql_database_and_the_oauth_secrets_are_redacted() -> None:
    from leaderwatch.bot.runtime.logs import secrets_of

    settings = Settings(db_path="postgresql://leaderwatch:s%40fe-pass-99@db:5432/lw",
                        slack_client_secret="client-secret-0123", secret_key="fernet-or-passphrase-0123")
    redact = Redactor(secrets_of(settings))
    line = redact("connecting as leaderwatch:s@fe-pass-99 with client-secret-0123 and "
                  "fernet-or-passphrase-0123")
    assert "s@fe-pass-99" not in line and "client-secret-0123" not in line and "passphrase" not in line
    assert line.startswith("connecting as leaderwatch:")
    assert secrets_of(Settings(db_path="/data/lw.db")) == []  # a file path has no password
