"""The buttons under an alert through the command layer (`press`), and per-board mutes typed or clicked.

The same real subset of recorded history as tests/bot/test_commands.py, with its stored events: the
buttons answer from them, the way they answer a click on Slack or Discord.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.matching import Delivery, delivery_key, hold_for
from leaderwatch.alerts.models import dedupe_key
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.actions import (
    ALERT_GONE,
    MAX_ACTION_ID,
    NOT_SUBSCRIBED,
    UNKNOWN_BUTTON,
    Press,
    action_id,
    alert_actions,
    configures,
    parse_action_id,
    press,
)
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import outbox
from leaderwatch.storage.db import to_text
from leaderwatch.storage.events import save_events
from leaderwatch.storage.subscriptions import channel_settings
from tests.bot.test_commands import EVENTS, NOW, ask, build_database, config, make_context

NEW_MODEL = EVENTS[0]  # lmarena/text, 2025-08-04: GLM-4.5 entered the top 10
AIDER_LEADER = EVENTS[1]  # aider/polyglot, 2025-08-25


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("actions"))


@pytest.fixture
def ctx(db: Database, identity: Identity) -> CommandContext:
    return make_context(db, identity)


async def click(ctx: CommandContext, name: str, event_key: str, *, manager: bool = False,
                choice: str = "", channel: str = "C1") -> Reply:
    clicked = Press("slack", channel, "U42", "alice", f"lw:{name}:{event_key}", choice, manager)
    return await press(ctx, clicked)


def test_every_alert_has_four_buttons_whose_ids_fit_discord() -> None:
    actions = alert_actions(NEW_MODEL, ["lmarena/*"])
    assert [(a.name, a.label) for a in actions] == [
        ("why", "Why"), ("chart", "Chart"), ("mute", "Mute this board (7d)"), ("unsubscribe", "Unsubscribe")]
    mute, unsubscribe = actions[2], actions[3]
    assert mute.choices == ("1d", "7d", "30d") and unsubscribe.danger
    assert unsubscribe.confirm is not None and "`lmarena/*`" in unsubscribe.confirm
    ids = [action_id(a) for a in actions]
    assert all(len(i) <= MAX_ACTION_ID for i in ids) and len(set(ids)) == len(ids)
    assert ids[2] == f"lw:mute:{NEW_MODEL.dedupe_key}:7d"
    assert parse_action_id(action_id(mute, "30d")) == ("mute", NEW_MODEL.dedupe_key, "30d")
    assert parse_action_id(action_id(mute, "")) == ("mute", NEW_MODEL.dedupe_key, "")  # a menu of choices
    assert parse_action_id("some_other_app:button") is None
    assert [configures(i) for i in ids] == [False, False, True, True]


async def test_why_answers_anyone_privately_about_the_alerts_snapshot(ctx: CommandContext) -> None:
    await ask(ctx, "subscribe lmarena/text new_model top=10", manager=True)
    reply = await click(ctx, "why", NEW_MODEL.dedupe_key)
    assert reply.ephemeral and not reply.error, reply.text
    assert reply.title == "Why on lmarena/text"  # the alert's snapshot is the board's latest: the full answer
    assert [f.name for f in reply.fields] == ["new_model top=10"]
    assert reply.fields[0].value.startswith("fired: new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3")


async def test_why_on_an_older_alert_says_what_fired_then(ctx: CommandContext) -> None:
    await ask(ctx, "subscribe lmarena/text new_model top=10", manager=True)
    at = NEW_MODEL.at.replace(month=7, day=27)
    older = NEW_MODEL._replace(at=at, dedupe_key=dedupe_key("new_model", "lmarena/text", "glm", "x", at))
    with ctx.db.atomic():
        save_events(ctx.db, [older], None, NOW)
    reply = await click(ctx, "why", older.dedupe_key)
    assert reply.ephemeral and reply.title == "Why on lmarena/text, 2025-07-27"
    assert "The board has updated since (2025-08-04)" in reply.text
    assert reply.fields[0].value.startswith("fired: new model GLM-4.5")


async def test_chart_answers_privately_with_the_boards_chart(ctx: CommandContext) -> None:
    reply = await click(ctx, "chart", NEW_MODEL.dedupe_key)
    assert reply.ephemeral and not reply.error and reply.image is not None and reply.image[:4] == b"\x89PNG"
    assert reply.title is not None and "lmarena/text" in reply.title


async def test_mute_by_someone_else_changes_nothing_and_says_who_can(ctx: CommandContext) -> None:
    before = config(ctx.db)
    reply = await click(ctx, "mute", NEW_MODEL.dedupe_key, choice="30d")
    assert reply.ephemeral and reply.error
    assert reply.text.startswith("Only channel managers can change this channel's configuration (`mute`).")
    assert "Ask a workspace admin or owner" in reply.text
    assert config(ctx.db) == before


async def test_mute_by_a_manager_mutes_that_board_only_and_is_audited(ctx: CommandContext) -> None:
    reply = await click(ctx, "mute", NEW_MODEL.dedupe_key, manager=True, choice="30d")
    assert (reply.title, reply.ephemeral, reply.error) == ("Board muted", True, False)
    until = NOW + timedelta(days=30)
    settings = channel_settings(ctx.db, "slack", "C1")
    assert settings == {"mute_until:lmarena/text": to_text(until)}
    assert hold_for(settings, NOW, "lmarena/text") == (until, None)
    assert hold_for(settings, NOW, "lmarena/vision") == (None, None)  # another board's alerts still arrive
    [audit] = config(ctx.db)["audit"]
    assert (audit["action"], audit["detail"], audit["user_id"]) == (
        "mute", f"lmarena/text until {to_text(until)}", "U42")


async def test_a_mute_without_a_choice_lasts_seven_days(ctx: CommandContext) -> None:
    await click(ctx, "mute", NEW_MODEL.dedupe_key, manager=True)
    week = to_text(NOW + timedelta(days=7))
    assert channel_settings(ctx.db, "slack", "C1") == {"mute_until:lmarena/text": week}


async def test_unsubscribe_removes_the_subscription_that_sent_the_alert(ctx: CommandContext) -> None:
    await ask(ctx, "subscribe lmarena/* new_model top=10", manager=True)
    await ask(ctx, "subscribe aider/polyglot new_leader", manager=True)
    reply = await click(ctx, "unsubscribe", NEW_MODEL.dedupe_key, manager=True)
    assert (reply.title, reply.ephemeral) == ("Unsubscribed", True), reply.text
    assert reply.text == "This channel no longer follows `lmarena/*` (1 rule removed)."
    assert [s["board_pattern"] for s in config(ctx.db)["subscriptions"]] == ["aider/polyglot"]
    again = await click(ctx, "unsubscribe", NEW_MODEL.dedupe_key, manager=True)
    assert again.text == NOT_SUBSCRIBED.format(board="lmarena/text", rule="new_model top=10")
    refused = await click(ctx, "unsubscribe", AIDER_LEADER.dedupe_key)
    assert refused.error and "Only channel managers" in refused.text
    assert len(config(ctx.db)["subscriptions"]) == 1


async def test_a_button_whose_alert_is_gone_or_unknown_says_so(ctx: CommandContext) -> None:
    gone = await click(ctx, "why", "0" * 24)
    assert (gone.text, gone.ephemeral) == (ALERT_GONE, True)
    unknown = await press(ctx, Press("slack", "C1", "U42", "alice", "lw:explode:abc"))
    assert unknown.text == UNKNOWN_BUTTON


# --- per-board mutes, typed ------------------------------------------------------------------------------

def held(ctx: CommandContext) -> dict[str, str | None]:
    rows = ctx.db.execute("SELECT e.board_id, o.hold_until FROM outbox o JOIN events e ON e.dedupe_key = "
                          "o.event_key ORDER BY o.id").fetchall()
    return {board: until for board, until in rows}


def queue_both(ctx: CommandContext) -> None:
    """An alert of each board queued for #C1 as the Alerter would: held by the mutes in force."""
    settings = channel_settings(ctx.db, "slack", "C1")
    deliveries = [Delivery(e, "slack", "C1", (), delivery_key(e.dedupe_key, "slack", "C1"))
                  for e in (NEW_MODEL, AIDER_LEADER)]
    outbox.enqueue(ctx.db, deliveries, NOW, lambda d: hold_for(settings, NOW, d.event.board))


@pytest.mark.parametrize("text", ["mute lmarena/text 2d", "mute 2d lmarena/text", "mute 2d LMArena/Text"])
async def test_mute_takes_a_board_pattern_in_either_order(ctx: CommandContext, text: str) -> None:
    reply = await ask(ctx, text, manager=True)
    assert reply.title == "Board muted", reply.text
    two_days = to_text(NOW + timedelta(days=2))
    assert channel_settings(ctx.db, "slack", "C1") == {"mute_until:lmarena/text": two_days}


async def test_unmute_a_board_releases_only_its_alerts(ctx: CommandContext) -> None:
    await ask(ctx, "mute lmarena/* 2d", manager=True)
    await ask(ctx, "mute aider/polyglot 1d", manager=True)
    queue_both(ctx)
    assert held(ctx) == {"lmarena/text": to_text(NOW + timedelta(days=2)),
                         "aider/polyglot": to_text(NOW + timedelta(days=1))}
    settings = await ask(ctx, "settings", manager=True)
    assert dict((f.name, f.value) for f in settings.fields)["Mute"] == (
        "`aider/polyglot` muted until 2025-08-27 12:00 UTC\n`lmarena/*` muted until 2025-08-28 12:00 UTC")
    reply = await ask(ctx, "unmute lmarena/*", manager=True)
    assert reply.text == "Ended the mute of `lmarena/*`. 1 held alert will be posted now."
    assert held(ctx) == {"lmarena/text": to_text(NOW), "aider/polyglot": to_text(NOW + timedelta(days=1))}
    assert [r.event_key for r in outbox.due(ctx.db, NOW)] == [NEW_MODEL.dedupe_key]
    nothing = await ask(ctx, "unmute lmarena/text", manager=True)
    assert nothing.error
    assert nothing.text == "`lmarena/text` is not muted in this channel. Muted here: `aider/polyglot`."
    everything = await ask(ctx, "unmute all", manager=True)
    assert everything.text == "Ended every mute of this channel. 1 held alert will be posted now."
    assert channel_settings(ctx.db, "slack", "C1") == {}


async def test_a_channel_mute_outlasting_a_board_mute_still_holds_its_alerts(ctx: CommandContext) -> None:
    await ask(ctx, "mute 3d", manager=True)
    await ask(ctx, "mute lmarena/text 1d", manager=True)
    queue_both(ctx)
    await ask(ctx, "unmute lmarena/text", manager=True)
    assert held(ctx)["lmarena/text"] == to_text(NOW + timedelta(days=3))
    reply = await ask(ctx, "unmute", manager=True)
    assert reply.text == "This channel is no longer muted. 2 held alerts will be posted now."
