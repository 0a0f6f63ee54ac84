"""The whole service as `leaderwatch run` starts it: scheduler, Slack in HTTP mode, dispatcher, /healthz.

Only Slack (tests/bot/fake_slack.py) and the Aider website (recorded YAML behind httpx.MockTransport)
are stood in for.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.bot.app import build_app, command_context, run
from leaderwatch.bot.commands import Invocation, dispatch
from leaderwatch.bot.pipeline.importer import import_recordings
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.aider import EDIT_URL, POLYGLOT_URL, AiderSource
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import open_db
from tests.bot.fake_discord import FakeDiscord, keep_endpoints, settings_for
from tests.bot.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_body,
    signed_headers,
    slash_payload,
)

ALERTS = "C0ALERTS"


@pytest.fixture(autouse=True)
def slack_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                 "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aider_site(recordings: Path) -> httpx.MockTransport:
    """The Aider website as it stood on 2024-06-17 (edit board) and 2024-12-22 (polyglot board)."""
    edit = (recordings / "aider/edit_leaderboard/edit_leaderboard_2024-06-17.yml").read_bytes()
    polyglot = (recordings / "aider/polyglot_leaderboard/polyglot_leaderboard_2024-12-22.yml").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        body = {EDIT_URL: edit, POLYGLOT_URL: polyglot}.get(str(request.url))
        return httpx.Response(200, content=body) if body else httpx.Response(404)

    return httpx.MockTransport(handler)


def history_before(recordings: Path, tmp: Path) -> Path:
    """A recordings folder holding only the 2024-05-15 Aider edit board (the board before the overtake)."""
    folder = tmp / "recorded" / "aider" / "edit_leaderboard"
    folder.mkdir(parents=True)
    name = "edit_leaderboard_2024-05-15.yml"
    (folder / name).write_bytes((recordings / "aider/edit_leaderboard" / name).read_bytes())
    return tmp / "recorded"


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_run_answers_slack_polls_and_delivers_one_alert(recordings: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    slack = await FakeSlack(admins={"U0ADMIN"}).start()
    port = free_port()
    settings = Settings(db_path=str(tmp_path / "lw.db"), http_port=port, slack_mode="http",
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=slack.api_url)
    identity = Identity.load()
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(recordings)),
                    sources=[AiderSource(identity)])
    import_recordings(app.db, app.sources, history_before(recordings, tmp_path), datetime.now(UTC))
    subscribed = await dispatch(command_context(app), Invocation(
        "slack", ALERTS, "U0ADMIN", "ada", "subscribe aider/edit overtake", can_configure=True))
    assert not subscribed.error, subscribed.text
    stop = asyncio.Event()
    service = asyncio.create_task(run(app, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await wait_until(lambda: len(slack.posts(ALERTS)) >= 1, timeout=15)
            health = (await http.get("/healthz")).json()
            assert health["status"] == "ok" and health["sources"]["aider"]["status"] == "ok"
            body = form_body(slash_payload("top aider/edit 2", channel_id="C0GENERAL"))
            answer = await http.post("/slack/events", content=body, headers=signed_headers(body))
            assert answer.status_code == 200
            assert "Deepseek Coder V2" in answer.text and answer.json()["response_type"] == "in_channel"
        await asyncio.sleep(0.5)  # nothing more may arrive
        posts = slack.posts(ALERTS)
        assert len(posts) == 1 and "Deepseek Coder V2" in posts[0].text
        assert slack.posts("C0GENERAL") == []
    finally:
        stop.set()
        await asyncio.wait_for(service, 10)
        await app.aclose()
        await slack.stop()


async def test_a_rejected_slack_token_is_named_and_the_rest_keeps_running(
        recordings: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    slack = await FakeSlack(bad_tokens={BOT_TOKEN}).start()
    port = free_port()
    settings = Settings(db_path=str(tmp_path / "lw.db"), http_port=port, slack_mode="http",
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=slack.api_url)
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(recordings)),
                    sources=[AiderSource(Identity.load())])
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO):
        service = asyncio.create_task(run(app, stop))
        try:
            db = open_db(settings.db_path)
            await wait_until(lambda: db.execute("SELECT count(*) FROM snapshots").fetchone()[0] >= 2)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).status_code == 200
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
            await app.aclose()
            await slack.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("SLACK_BOT_TOKEN" in m for m in errors), errors
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)


async def test_slack_and_discord_in_one_process_a_bad_discord_token_leaves_slack_running(
        recordings: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    keep_endpoints(monkeypatch)
    slack = await FakeSlack().start()
    discord_fake = await FakeDiscord().start()
    port = free_port()
    settings = replace(settings_for(discord_fake, discord_token="wrong.discord-token.x"),
                       db_path=str(tmp_path / "lw.db"), http_port=port, slack_mode="http",
                       slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                       slack_api_url=slack.api_url)
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(recordings)),
                    sources=[AiderSource(Identity.load())])
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO):
        service = asyncio.create_task(run(app, stop))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                await wait_until(lambda: any("DISCORD_TOKEN" in r.getMessage() for r in caplog.records
                                             if r.levelno >= logging.ERROR))
                body = form_body(slash_payload("help"))
                answer = await http.post("/slack/events", content=body, headers=signed_headers(body))
                assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
            await app.aclose()
            await slack.stop()
            await discord_fake.stop()
    assert all("wrong.discord-token.x" not in r.getMessage() for r in caplog.records)
