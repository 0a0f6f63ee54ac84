"""The buttons under Slack alerts, and alerts threaded and edited, through the real slack_bolt / slack_sdk
against the fake Slack (issue 12).

Alerts are delivered by the real Dispatcher and SlackSender; clicks are the `block_actions` Slack
would send for those very messages (`FakeSlack.block_actions`), signed and posted to the Bolt app on
the one aiohttp server (HTTP mode) or sent over Socket Mode. The events are the real ones of the
recorded subset of tests/bot/test_commands.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Action, Field, Reply
from leaderwatch.alerts.matching import hold_for, match
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.alerts.stories import story_keys
from leaderwatch.bot.chat.slack import (
    ADMIN_CHECK_FAILED,
    CHART_IN_DM,
    MAX_BLOCKS,
    AcksFirst,
    SlackSender,
    SlackService,
    choice_label,
    to_blocks,
    to_message,
    web_client,
)
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.actions import ALERT_GONE, NOT_SUBSCRIBED, action_id, alert_actions
from leaderwatch.bot.pipeline.delivery import DeliveryError, Dispatcher
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import outbox
from leaderwatch.storage.db import to_text
from leaderwatch.storage.events import save_events
from leaderwatch.storage.subscriptions import active_subscriptions, channel_settings
from tests.bot.fake_slack import FakeSlack, block_kit_errors, interactive_body, signed_headers
from tests.bot.test_commands import EVENTS, NOW, ask, build_database, config, make_context
from tests.bot.test_slack import HttpSlack, slack_settings, texts
from tests.helpers import REPO, no_sleep

pytestmark = pytest.mark.usefixtures("slack_environment")

ALERTS = "C0ALERTS"
ADMIN = "U0ADMIN"
MEMBER = "U0MEMBER"
NEW_MODEL = EVENTS[0]  # lmarena/text, 2025-08-04: GLM-4.5 entered the top 10
AIDER_LEADER = EVENTS[1]  # aider/polyglot, 2025-08-25: gpt-5 the new #1


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("buttons"))


@pytest.fixture
def ctx(db: Database, identity: Identity) -> CommandContext:
    return make_context(db, identity)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN}).start()
    yield slack
    await slack.stop()


def queue(db: Database, events: list[Event], now: datetime = NOW) -> int:
    """What the Alerter does in a poll's transaction: store, match, hold by the mutes, enqueue."""
    with db.atomic():
        save_events(db, events, None, now)
        deliveries = match(events, active_subscriptions(db))
        return outbox.enqueue(db, deliveries, now, lambda d: hold_for(
            channel_settings(db, d.platform, d.channel_id), now, d.event.board), story_keys)


async def deliver(ctx: CommandContext, service: SlackService) -> int:
    return await Dispatcher(ctx.db, {"slack": service.sender}, ctx.clock, sleep=no_sleep,
                            jitter=lambda: 0.0).run_once()


async def alerted(ctx: CommandContext, fake: FakeSlack, http: HttpSlack) -> str:
    """#alerts follows lmarena/* new models and the aider/polyglot leader; the GLM-4.5 alert is delivered.
    The alert's ts."""
    assert (await ask(ctx, "subscribe lmarena/* new_model top=10", manager=True, channel=ALERTS)).title
    assert (await ask(ctx, "subscribe aider/polyglot new_leader", manager=True, channel=ALERTS)).title
    assert queue(ctx.db, [NEW_MODEL]) == 1
    assert await deliver(ctx, http.service) == 1
    [posted] = fake.posts(ALERTS)
    return posted.ts


async def click(http: HttpSlack, fake: FakeSlack, ts: str, action: str, user: str = MEMBER,
                selected: str | None = None) -> httpx.Response:
    """`user` clicks the element `action` of the alert `ts`, as Slack posts it to the Request URL."""
    body = interactive_body(fake.block_actions(ALERTS, ts, action, selected=selected, user_id=user))
    return await http.post(body, signed_headers(body))


def ids(name: str, event: Event = NEW_MODEL, choice: str | None = None) -> str:
    [action] = [a for a in alert_actions(event) if a.name == name]
    return action_id(action, choice)


async def answer(fake: FakeSlack, n: int = 1) -> dict[str, Any]:
    """The n-th answer posted to a response_url (waited for: it comes after the ack)."""
    await fake.wait_for(lambda: len(fake.responses) >= n)
    return fake.responses[n - 1][1]


def is_private(body: dict[str, Any]) -> bool:
    return body.get("response_type") == "ephemeral" and body.get("replace_original") is False


# -- the buttons on an alert -------------------------------------------------------------------------------

async def test_an_alert_carries_the_four_buttons_and_a_menu_of_mutes(ctx: CommandContext, fake: FakeSlack,
                                                                      http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    [posted] = fake.posts(ALERTS)
    assert posted.blocks is not None and block_kit_errors(posted.blocks) == []
    buttons = posted.blocks[-1]
    assert buttons["type"] == "actions" and posted.blocks[-2]["type"] == "context"  # after the alert
    key = NEW_MODEL.dedupe_key
    why, chart, mute, menu, unsubscribe = buttons["elements"]
    assert [(b["type"], b["action_id"], b["text"]["text"], b["value"]) for b in (why, chart, mute)] == [
        ("button", f"lw:why:{key}", "Why", "why"), ("button", f"lw:chart:{key}", "Chart", "chart"),
        ("button", f"lw:mute:{key}:7d", "Mute this board (7d)", "7d")]
    assert (menu["type"], menu["action_id"]) == ("overflow", f"lw:mute:{key}")  # the pick says how long
    assert [(o["text"]["text"], o["value"]) for o in menu["options"]] == [
        ("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d")]
    assert (unsubscribe["action_id"], unsubscribe["style"]) == (f"lw:unsubscribe:{key}", "danger")
    confirm = unsubscribe["confirm"]
    assert (confirm["title"]["text"], confirm["confirm"]["text"], confirm["deny"]["text"]) == (
        "Unsubscribe?", "Unsubscribe", "Cancel")
    assert confirm["text"]["text"] == ("This channel will stop getting alerts from `lmarena/*` (every rule "
                                       "on it). Its other subscriptions stay.")
    # The plain-text fallback (notifications) is the alert alone.
    assert posted.text.startswith("*New model on lmarena/text*") and "Unsubscribe" not in posted.text
    assert fake.message(ALERTS, ts)["blocks"][-1]["type"] == "actions"


def test_the_buttons_survive_a_message_cut_to_50_blocks() -> None:
    actions = alert_actions(NEW_MODEL, ["lmarena/*"])
    rows = (("#", "model"), *((str(i), "m" * 55) for i in range(5000)))
    blocks = to_blocks(Reply(title="Huge", text="", table=rows, footer="as of today", actions=actions))
    assert len(blocks) == MAX_BLOCKS and block_kit_errors(blocks) == []
    # The note on what was cut, the footer, the buttons:
    assert [b["type"] for b in blocks[-3:]] == ["context", "context", "actions"]
    assert "more row(s) not shown" in blocks[-3]["elements"][0]["text"]
    plain = to_message(Reply(text="x", actions=actions))
    assert plain["text"] == "x" and plain["blocks"][-1]["type"] == "actions"


def test_choices_read_as_durations() -> None:
    assert [choice_label(c) for c in ("1d", "7d", "30d", "12h", "90m", "later")] == [
        "1 day", "7 days", "30 days", "12 hours", "90 minutes", "later"]
    lonely = to_blocks(Reply(text="x", actions=(Action("mute", "Mute", "ab", "7d", ("7d",)),)))
    assert [e["type"] for e in lonely[-1]["elements"]] == ["button"]  # a menu needs two choices


# -- Why ---------------------------------------------------------------------------------------------------

async def test_why_by_anyone_is_answered_privately_and_leaves_the_alert(ctx: CommandContext, fake: FakeSlack,
                                                                       http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    before = fake.message(ALERTS, ts)
    response = await click(http, fake, ts, ids("why"))
    assert (response.status_code, response.text) == (200, "")  # the ack: empty, at once
    body = await answer(fake)
    assert is_private(body), body
    assert body["blocks"][0]["text"]["text"] == "Why on lmarena/text"
    assert "fired: new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3" in texts(body["blocks"])
    [private] = fake.ephemerals
    assert (private.channel, private.user) == (ALERTS, MEMBER)
    assert fake.message(ALERTS, ts) == before and fake.posts(ALERTS)[0].edits == []
    assert not fake.called("users.info")  # a question: nobody is checked


async def test_the_ack_does_not_wait_for_the_work(ctx: CommandContext, fake: FakeSlack,
                                                  http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    fake.delays["users.info"] = 2.0  # Slack is slow to say whether the clicker is an admin
    started = time.perf_counter()
    response = await click(http, fake, ts, ids("mute", choice="7d"), user=ADMIN)
    assert response.status_code == 200 and time.perf_counter() - started < 1.5
    assert not fake.responses
    assert (await answer(fake))["blocks"][0]["text"]["text"] == "Board muted"


# -- Mute this board -----------------------------------------------------------------------------------------

async def test_a_members_mute_changes_nothing_and_says_who_can(ctx: CommandContext, fake: FakeSlack,
                                                               http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    before = config(ctx.db)
    await click(http, fake, ts, ids("mute", choice="7d"))
    body = await answer(fake)
    assert is_private(body)
    shown = texts(body["blocks"])
    assert shown.startswith(":warning: Only channel managers can change this channel's configuration "
                            "(`mute`).")
    assert "Ask a workspace admin or owner" in shown
    assert config(ctx.db) == before
    assert [c.params["user"] for c in fake.called("users.info")] == [MEMBER]
    assert fake.posts(ALERTS)[0].edits == []


async def test_an_admins_30_day_mute_holds_that_board_only(ctx: CommandContext, fake: FakeSlack,
                                                           http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    await click(http, fake, ts, ids("mute", choice=""), user=ADMIN, selected="30d")
    body = await answer(fake)
    assert is_private(body) and body["blocks"][0]["text"]["text"] == "Board muted"
    until = NOW + timedelta(days=30)
    assert "`lmarena/text` is muted in this channel until 2025-09-25 12:00 UTC" in texts(body["blocks"])
    assert channel_settings(ctx.db, "slack", ALERTS) == {"mute_until:lmarena/text": to_text(until)}
    [audit] = [a for a in config(ctx.db)["audit"] if a["action"] == "mute"]
    assert (audit["platform"], audit["channel_id"], audit["user_id"], audit["detail"]) == (
        "slack", ALERTS, ADMIN, f"lmarena/text until {to_text(until)}")
    # Later: a new lmarena/text alert and an aider one. The aider alert arrives; the other waits.
    at = NEW_MODEL.at + timedelta(days=1)
    again = NEW_MODEL._replace(subject="gpt-5", model="GPT-5", at=at,
                               message="lmarena/text: new model GPT-5 entered the top 10",
                               dedupe_key=dedupe_key("new_model", "lmarena/text", "gpt-5", "new", at))
    assert queue(ctx.db, [again, AIDER_LEADER]) == 2
    assert await deliver(ctx, http.service) == 1
    assert [p.text.splitlines()[0] for p in fake.posts(ALERTS)] == [
        "*New model on lmarena/text*", "*New #1 on aider/polyglot*"]
    [held] = outbox.due(ctx.db, until)
    assert (held.event_key, held.status, held.hold_until) == (again.dedupe_key, "pending", until)


async def test_a_failed_admin_check_says_so_and_changes_nothing(ctx: CommandContext, fake: FakeSlack,
                                                                http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    before = config(ctx.db)
    fake.errors[("users.info", "")] = "missing_scope"
    await click(http, fake, ts, ids("unsubscribe"), user=ADMIN)
    body = await answer(fake)
    assert is_private(body)
    assert texts(body["blocks"]) == ":warning: " + ADMIN_CHECK_FAILED.format(error="missing_scope")
    assert config(ctx.db) == before


# -- Unsubscribe ---------------------------------------------------------------------------------------------

async def test_unsubscribe_by_an_admin_then_again_then_for_a_gone_alert(ctx: CommandContext, fake: FakeSlack,
                                                                       http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    await click(http, fake, ts, ids("unsubscribe"), user=ADMIN)
    body = await answer(fake)
    assert is_private(body) and body["blocks"][0]["text"]["text"] == "Unsubscribed"
    assert "This channel no longer follows `lmarena/*` (1 rule removed)." in texts(body["blocks"])
    assert [s["board_pattern"] for s in config(ctx.db)["subscriptions"]] == ["aider/polyglot"]
    assert [a["action"] for a in config(ctx.db)["audit"]][-1] == "unsubscribe"

    await click(http, fake, ts, ids("unsubscribe"), user=ADMIN)
    again = await answer(fake, 2)
    assert is_private(again)
    assert texts(again["blocks"]) == NOT_SUBSCRIBED.format(board="lmarena/text", rule="new_model top=10")

    with ctx.db.atomic():
        ctx.db.execute("DELETE FROM events WHERE dedupe_key = ?", [NEW_MODEL.dedupe_key])
    await click(http, fake, ts, ids("why"))
    gone = await answer(fake, 3)
    assert is_private(gone) and texts(gone["blocks"]) == ":warning: " + ALERT_GONE
    assert len(fake.posts(ALERTS)) == 1 and fake.posts(ALERTS)[0].edits == []


# -- Chart ---------------------------------------------------------------------------------------------------

async def test_chart_goes_to_the_clickers_direct_messages(ctx: CommandContext, fake: FakeSlack,
                                                          http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    await click(http, fake, ts, ids("chart"))
    body = await answer(fake)
    assert is_private(body)
    assert [c.params["users"] for c in fake.called("conversations.open")] == [MEMBER]
    [upload] = fake.shared("D" + MEMBER)
    assert upload.data is not None and upload.data[:4] == b"\x89PNG" and upload.filename.endswith(".png")
    title = "lmarena/text: best Arena score of china and west, 2025-07-27 to 2025-08-04"
    assert upload.title == title and upload.initial_comment == title
    assert fake.shared(ALERTS) == []  # nothing in the channel
    assert body["blocks"][0]["text"]["text"] == title
    assert CHART_IN_DM in texts(body["blocks"])


async def test_a_chart_that_cannot_be_sent_says_why(ctx: CommandContext, fake: FakeSlack,
                                                    http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    fake.errors[("conversations.open", "")] = "missing_scope"
    await click(http, fake, ts, ids("chart"))
    body = await answer(fake)
    shown = texts(body["blocks"])
    assert is_private(body) and fake.uploads == {}
    assert ("The chart could not be sent to you as a direct message (`missing_scope`). The Slack app needs "
            "the `im:write` scope (see slack/manifest.yml); ask its admin.") in shown
    assert "Traceback" not in str(body)


# -- signatures ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    pytest.param(lambda body: signed_headers(body, secret="not-the-secret"), id="forged"),
    pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) - 5 * 60 - 30), id="stale"),
])
async def test_a_badly_signed_click_runs_nothing(ctx: CommandContext, fake: FakeSlack, http: HttpSlack,
                                                 headers: Any) -> None:
    ts = await alerted(ctx, fake, http)
    calls, before = len(fake.calls), config(ctx.db)
    body = interactive_body(fake.block_actions(ALERTS, ts, ids("unsubscribe"), user_id=ADMIN))
    response = await http.post(body, headers(body))
    assert response.status_code == 401 and response.json() == {"error": "invalid request"}
    # The listener would ask users.info first thing after its ack: give it the time it would need.
    assert (await click(http, fake, ts, ids("why"))).status_code == 200
    await answer(fake)
    assert [c.method for c in fake.calls[calls:]] == ["auth.test"]  # Bolt's first request: no users.info
    assert len(fake.responses) == 1 and config(ctx.db) == before


# -- Socket Mode ---------------------------------------------------------------------------------------------

async def test_a_click_over_socket_mode(ctx: CommandContext, fake: FakeSlack, http: HttpSlack) -> None:
    ts = await alerted(ctx, fake, http)
    service = SlackService(slack_settings(fake, "socket", slack_signing_secret=None), ctx)
    try:
        assert await service.start()
        payload = fake.block_actions(ALERTS, ts, ids("mute", choice="7d"), user_id=ADMIN)
        ack = await fake.send_interactive(payload)
        assert ack == {"envelope_id": "env-1"}  # an empty ack
        body = await answer(fake)
        assert is_private(body) and body["blocks"][0]["text"]["text"] == "Board muted"
        assert channel_settings(ctx.db, "slack", ALERTS) == {
            "mute_until:lmarena/text": to_text(NOW + timedelta(days=7))}
    finally:
        await service.stop()


# -- the sender: thread replies, edits, deleted originals ----------------------------------------------------

FIRST = Reply(title="Overtake on aider/edit", text="china model A now ranks above west model B",
              fields=(Field("Board", "aider/edit"),), actions=alert_actions(NEW_MODEL))
REVERSED = Reply(title="Overtake on aider/edit", text="west model B now ranks above china model A")
EDITED = Reply(title="Overtake on aider/edit (reversed on 2024-06-21)", text=FIRST.text,
               actions=FIRST.actions)
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def sender_for(fake: FakeSlack) -> SlackSender:
    return SlackSender(web_client(slack_settings(fake), retry_rate_limits=False), min_interval=0)


async def test_a_follow_up_goes_in_the_thread_and_the_first_alert_is_edited(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    first = await sender.send(ALERTS, FIRST, "k-first")
    reply = await sender.send(ALERTS, REVERSED, "k-reply", thread=first)
    await sender.edit(ALERTS, first, EDITED, "k-edit")
    assert [m.ts for m in fake.top_level(ALERTS)] == [first]
    [threaded] = fake.replies(ALERTS, first)
    assert (threaded.ts, threaded.thread_ts, threaded.text.splitlines()[1]) == (reply, first, REVERSED.text)
    [check] = fake.called("conversations.replies")  # the parent was looked up before replying
    assert (check.params["ts"], [c.method for c in fake.calls][-3:]) == (
        first, ["conversations.replies", "chat.postMessage", "chat.update"])
    [edit] = fake.posts(ALERTS)[0].edits
    assert edit["via"] == "chat.update" and edit["blocks"][0]["text"]["text"] == EDITED.title
    assert edit["blocks"][-1]["type"] == "actions"  # still clickable
    # Found again after a crash: the reply in its thread (by metadata), not in the channel's history.
    assert await sender.already_delivered(ALERTS, "k-reply", SINCE, thread=first) == reply
    assert await sender.already_delivered(ALERTS, "k-other", SINCE, thread=first) is None
    assert await sender.already_delivered(ALERTS, "k-reply", SINCE) is None
    assert fake.called("conversations.replies")[-1].params["include_all_metadata"] in ("1", "true", True)


async def test_a_deleted_first_alert_is_message_gone(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    first = await sender.send(ALERTS, FIRST, "k-first")
    await fake.delete(ALERTS, first)
    with pytest.raises(DeliveryError) as replying:
        await sender.send(ALERTS, REVERSED, "k-reply", thread=first)
    with pytest.raises(DeliveryError) as editing:
        await sender.edit(ALERTS, first, EDITED, "k-edit")
    with pytest.raises(DeliveryError) as looking:
        await sender.already_delivered(ALERTS, "k-reply", SINCE, thread=first)
    for raised in (replying, editing, looking):
        assert raised.value.message_gone and not raised.value.channel_gone and not raised.value.retryable
    assert len(fake.called("chat.postMessage")) == 1  # no reply went into the deleted alert's thread


@pytest.mark.parametrize("error", ["missing_scope", "not_allowed_token_type"])
async def test_threads_slack_will_not_show_are_replied_to_unchecked(fake: FakeSlack, error: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    sender = sender_for(fake)
    first = await sender.send(ALERTS, FIRST, "k-first")
    fake.errors[("conversations.replies", ALERTS)] = error
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.chat.slack"):
        reply = await sender.send(ALERTS, REVERSED, "k-reply", thread=first)
        assert await sender.already_delivered(ALERTS, "k-reply", SINCE, thread=first) is None
        await sender.send(ALERTS, REVERSED, "k-reply-2", thread=first)
    assert [m.ts for m in fake.replies(ALERTS, first)][0] == reply
    assert len(fake.replies(ALERTS, first)) == 2
    said = [r for r in caplog.records if "conversations.replies answers" in r.getMessage()]
    assert len(said) == 1 and error in said[0].getMessage() and "channels:history" in said[0].getMessage()
    # Other refusals still mean what they meant: a rate limit is retried, not ignored.
    fake.errors[("conversations.replies", ALERTS)] = "ratelimited"
    with pytest.raises(DeliveryError) as raised:
        await sender.send(ALERTS, REVERSED, "k-reply-3", thread=first)
    assert not raised.value.message_gone


# -- acks first ----------------------------------------------------------------------------------------------

async def test_a_clicks_work_waits_for_the_pending_acks_but_not_forever() -> None:
    acks = AcksFirst(limit=0.3)
    await asyncio.wait_for(acks.done(), 0.05)  # nothing pending: at once
    with acks.waiting():
        waiting = asyncio.ensure_future(acks.done())
        with acks.waiting():
            await asyncio.sleep(0.02)
        assert not waiting.done()  # one ack is still to go
    await asyncio.wait_for(waiting, 0.05)  # the last ack went: the work goes on
    with acks.waiting():  # a request Bolt never acks (a stuck listener) holds nobody up for long
        started = time.perf_counter()
        await acks.done()
        assert 0.25 < time.perf_counter() - started < 1.0


def test_the_manifest_turns_on_the_buttons_and_the_home_tab() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    settings = manifest["settings"]
    # Socket Mode (the default) needs no request URL: one given would be for HTTP mode only.
    assert settings["interactivity"] == {"is_enabled": True} and settings["socket_mode_enabled"] is True
    assert settings["event_subscriptions"] == {
        "bot_events": ["app_home_opened", "app_uninstalled", "tokens_revoked"]}
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # where the charts arrive
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"im:write", "channels:history", "groups:history"} <= scopes
