"""The whole service as `leaderwatch run` starts it: scheduler, Slack in HTTP mode, dispatcher, /healthz.

Only Slack (tests/bot/fake_slack.py) and the Aider website (recorded YAML behind httpx.MockTransport)
are stood in for.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.bot.app import build_app, command_context
from leaderwatch.bot.commands import Invocation, dispatch
from leaderwatch.bot.pipeline.importer import import_recordings
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.aider import EDIT_URL, POLYGLOT_URL, AiderSource
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import outbox
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
from tests.helpers import running, served_port, wait_until

ALERTS = "C0ALERTS"
pytestmark = pytest.mark.usefixtures("slack_environment")


def aider_site(excerpts: Path) -> httpx.MockTransport:
    """The Aider website as it stood on 2024-06-17 (edit board) and 2024-12-22 (polyglot board)."""
    edit = (excerpts / "aider/edit_leaderboard/edit_leaderboard_2024-06-17.yml").read_bytes()
    polyglot = (excerpts / "aider/polyglot_leaderboard/polyglot_leaderboard_2024-12-22.yml").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        body = {EDIT_URL: edit, POLYGLOT_URL: polyglot}.get(str(request.url))
        return httpx.Response(200, content=body) if body else httpx.Response(404)

    return httpx.MockTransport(handler)


def history_before(excerpts: Path, tmp: Path) -> Path:
    """A recordings folder holding only the 2024-05-15 Aider edit board (the board before the overtake)."""
    folder = tmp / "recorded" / "aider" / "edit_leaderboard"
    folder.mkdir(parents=True)
    name = "edit_leaderboard_2024-05-15.yml"
    (folder / name).write_bytes((excerpts / "aider/edit_leaderboard" / name).read_bytes())
    return tmp / "recorded"


async def test_run_answers_slack_polls_and_delivers_one_alert(excerpts: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    slack = await FakeSlack(admins={"U0ADMIN"}).start()
    settings = Settings(db_path=str(tmp_path / "lw.db"), http_port=0, slack_mode="http",
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=slack.api_url)
    identity = Identity.load()
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(excerpts)),
                    sources=[AiderSource(identity)])
    import_recordings(app.db, app.sources, history_before(excerpts, tmp_path), datetime.now(UTC))
    subscribed = await dispatch(command_context(app), Invocation(
        "slack", ALERTS, "U0ADMIN", "ada", "subscribe aider/edit overtake", can_configure=True))
    assert not subscribed.error, subscribed.text
    try:
        async with running(app) as service:
            port = await served_port(app, service)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                await wait_until(lambda: len(slack.posts(ALERTS)) >= 1, timeout=15,
                                 message="the alert to reach #alerts", running=service)
                health = (await http.get("/healthz")).json()
                assert health["status"] == "ok" and health["sources"]["aider"]["status"] == "ok"
                body = form_body(slash_payload("top aider/edit 2", channel_id="C0GENERAL"))
                answer = await http.post("/slack/events", content=body, headers=signed_headers(body))
                assert answer.status_code == 200
                assert "Deepseek Coder V2" in answer.text and answer.json()["response_type"] == "in_channel"
            # Nothing more may arrive: the one queued alert is marked delivered (after its chart, which
            # follows it a paced second later), and nothing else is queued.
            await wait_until(lambda: outbox.depth(app.db) == {"delivered": 1}, timeout=15,
                             message="the outbox to hold just the delivered alert", running=service)
            posts = [p for p in slack.posts(ALERTS) if not p.files]  # the alert messages, not the chart
            assert len(posts) == 1 and "Deepseek Coder V2" in posts[0].text
            [chart] = slack.shared(ALERTS)  # in the channel right after the alert
            assert [p.files for p in slack.posts(ALERTS)] == [[], [chart.file_id]]
            assert slack.posts("C0GENERAL") == []
    finally:
        await app.aclose()
        await slack.stop()


async def test_a_rejected_slack_token_is_named_and_the_rest_keeps_running(
        excerpts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    slack = await FakeSlack(bad_tokens={BOT_TOKEN}).start()
    settings = Settings(db_path=str(tmp_path / "lw.db"), http_port=0, slack_mode="http",
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=slack.api_url)
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(excerpts)),
                    sources=[AiderSource(Identity.load())])
    db = open_db(settings.db_path)
    try:
        with caplog.at_level(logging.INFO):
            async with running(app) as service:
                port = await served_port(app, service)
                await wait_until(lambda: db.execute("SELECT count(*) FROM snapshots").fetchone()[0] >= 2,
                                 message="both Aider boards stored", running=service)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    assert (await http.get("/healthz")).status_code == 200
    finally:
        db.close()
        await app.aclose()
        await slack.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("SLACK_BOT_TOKEN" in m for m in errors), errors
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)


async def test_slack_and_discord_in_one_process_a_bad_discord_token_leaves_slack_running(
        excerpts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    keep_endpoints(monkeypatch)
    slack = await FakeSlack().start()
    discord_fake = await FakeDiscord().start()
    settings = replace(settings_for(discord_fake, discord_token="wrong.discord-token.x"),
                       db_path=str(tmp_path / "lw.db"), http_port=0, slack_mode="http",
                       slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                       slack_api_url=slack.api_url)
    app = build_app(settings, client=httpx.AsyncClient(transport=aider_site(excerpts)),
                    sources=[AiderSource(Identity.load())])
    try:
        with caplog.at_level(logging.INFO):
            async with running(app) as service:
                port = await served_port(app, service)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    await wait_until(lambda: any("DISCORD_TOKEN" in r.getMessage() for r in caplog.records
                                                 if r.levelno >= logging.ERROR),
                                     message="an error naming DISCORD_TOKEN", running=service)
                    body = form_body(slash_payload("help"))
                    answer = await http.post("/slack/events", content=body, headers=signed_headers(body))
                    assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
    finally:
        await app.aclose()
        await slack.stop()
        await discord_fake.stop()
    assert all("wrong.discord-token.x" not in r.getMessage() for r in caplog.records)
