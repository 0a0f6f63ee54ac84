"""The Slack App Home: what the command layer puts in it (`build_home`), the outbox query behind its last
alerts (`recent_delivered`), and the tab itself through the real slack_bolt against the fake Slack.

The database is the real recorded subset of tests/bot/test_commands.py with its events; alerts reach the
fake Slack through the real Dispatcher and SlackSender, so the links point at messages it holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.bot.chat.slack import (
    HOME_ADMIN_CHECK_FAILED,
    MAX_HOME_CHANNELS,
    SlackService,
    home_view,
    permalink,
)
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.home import NO_ALERTS, NOT_A_MANAGER, ChannelSummary, Home, build_home
from leaderwatch.bot.commands.messages import WHO_MANAGES
from leaderwatch.sources.identity import Identity
from leaderwatch.storage import outbox
from tests.bot.fake_slack import FakeSlack, app_home_opened_event, block_kit_errors, signed_event
from tests.bot.test_commands import EVENTS, NOW, ask, build_database, make_context
from tests.bot.test_slack import HttpSlack, slack_settings, texts
from tests.bot.test_slack_buttons import deliver, queue

pytestmark = pytest.mark.usefixtures("slack_environment")

ALERTS = "C0ALERTS"  # follows lmarena/* new models and aider/polyglot; muted board, daily digest
QUIET = "C0QUIET"  # follows aider/edit new leaders: no alert reached it
ADMIN = "U0ADMIN"
MEMBER = "U0MEMBER"
NEW_MODEL, AIDER_LEADER, AIDER_TOP = EVENTS


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(excerpts, tmp_path_factory.mktemp("home"))


@pytest.fixture
def ctx(db: Database, identity: Identity) -> CommandContext:
    return make_context(db, identity)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN}).start()
    yield slack
    await slack.stop()


async def configure(ctx: CommandContext) -> None:
    """Two channels follow something; #alerts has a board muted and a daily digest set after its alerts."""
    for line in ("subscribe lmarena/* new_model top=10", "subscribe aider/polyglot new_leader top_n top=5"):
        assert not (await ask(ctx, line, manager=True, channel=ALERTS)).error
    assert not (await ask(ctx, "subscribe aider/edit new_leader", manager=True, channel=QUIET)).error


async def delivered(ctx: CommandContext, service: SlackService) -> None:
    """The three recorded alerts reach #alerts: GLM-4.5, then gpt-5's #1 and, in its thread, its top 5
    entry (one story: the same model on the same board)."""
    assert queue(ctx.db, [NEW_MODEL]) == 1
    assert await deliver(ctx, service) == 1
    assert queue(ctx.db, [AIDER_LEADER, AIDER_TOP]) == 2
    assert await deliver(ctx, service) == 2
    assert not (await ask(ctx, "mute lmarena/text 2d", manager=True, channel=ALERTS)).error
    assert not (await ask(ctx, "digest daily", manager=True, channel=ALERTS)).error


async def open_home(http: HttpSlack, fake: FakeSlack, user: str, tab: str = "home") -> int:
    """`user` opens the app's tab (signed Events API callback); the HTTP status."""
    body, headers = signed_event(app_home_opened_event(user, tab))
    return (await http.post(body, headers)).status_code


def home_texts(fake: FakeSlack, user: str) -> str:
    return texts(fake.home[user]["blocks"])


# -- the command layer ---------------------------------------------------------------------------------------

async def test_a_managers_home_lists_channels_alerts_and_the_race(ctx: CommandContext, fake: FakeSlack,
                                                                  http: HttpSlack) -> None:
    await configure(ctx)
    await delivered(ctx, http.service)
    home = await build_home(ctx, "slack", ADMIN, "grace", manager=True)
    assert home.manager and home.at == NOW and home.notice == ""
    assert home.channels == (
        ChannelSummary(ALERTS, (("aider/polyglot", ("new_leader", "top_n top=5")),
                                ("lmarena/*", ("new_model top=10",))),
                       "`lmarena/text` muted until 2025-08-28 12:00 UTC", "daily at 09:00 UTC"),
        ChannelSummary(QUIET, (("aider/edit", ("new_leader",)),), "not muted", "off"))
    first, leader, top = (m.ts for m in fake.posts(ALERTS))
    assert [(a.title, a.channel_id, a.message_ref, a.thread_ref) for a in home.alerts] == [
        ("Top N on aider/polyglot", ALERTS, top, leader), ("New #1 on aider/polyglot", ALERTS, leader, None),
        ("New model on lmarena/text", ALERTS, first, None)]
    assert home.alerts[2].text == "new model GLM-4.5 (Z.ai, CN) entered the top 10 at #3 with 1434"
    assert home.race.title == "Race: china, west" and not home.race.error


async def test_anyone_elses_home_says_who_manages_and_shows_the_race(ctx: CommandContext) -> None:
    await configure(ctx)
    home = await build_home(ctx, "slack", MEMBER, "", manager=False)
    assert (home.manager, home.channels, home.alerts) == (False, (), ())
    assert home.notice == NOT_A_MANAGER.format(who=WHO_MANAGES["slack"])
    assert home.notice.startswith("Channel managers see here the channels they manage and the alerts sent "
                                  "there. To change what a channel is told: Ask a workspace admin or owner")
    assert home.race == await ask(ctx, "race", channel="")  # the typed `race`, default groups


async def test_recent_delivered_lists_posts_and_replies_newest_first(ctx: CommandContext, fake: FakeSlack,
                                                                     http: HttpSlack) -> None:
    await configure(ctx)
    await delivered(ctx, http.service)
    first, leader, top = (m.ts for m in fake.posts(ALERTS))
    found = outbox.recent_delivered(ctx.db, "slack", [ALERTS, QUIET])
    assert [(d.item.action, d.item.message_ref, d.thread_ref, d.event) for d in found] == [
        ("reply", top, leader, AIDER_TOP), ("post", leader, None, AIDER_LEADER),
        ("post", first, None, NEW_MODEL)]
    assert [d.item.id for d in outbox.recent_delivered(ctx.db, "slack", [ALERTS], limit=2)] == [
        d.item.id for d in found[:2]]
    # Not listed: the edit (the same message again), other channels and platforms, undelivered rows.
    assert outbox.recent_delivered(ctx.db, "slack", [QUIET]) == []
    assert outbox.recent_delivered(ctx.db, "discord", [ALERTS]) == []
    assert outbox.recent_delivered(ctx.db, "slack", []) == []
    later = NEW_MODEL._replace(subject="x", dedupe_key="f" * 24, at=NEW_MODEL.at + timedelta(days=1))
    assert queue(ctx.db, [later]) == 1  # held by the mute: pending
    assert len(outbox.recent_delivered(ctx.db, "slack", [ALERTS])) == 3


# -- the view ------------------------------------------------------------------------------------------------

def test_links_are_slacks_permalinks() -> None:
    assert permalink("https://test.slack.com/", "C1", "1723000000.000100") == (
        "https://test.slack.com/archives/C1/p1723000000000100")
    assert permalink("https://test.slack.com/", "C1", "1723000000.000200", "1723000000.000100") == (
        "https://test.slack.com/archives/C1/p1723000000000200?thread_ts=1723000000.000100&cid=C1")


def test_a_home_of_many_channels_stays_within_100_blocks() -> None:
    rows = (("board", "leads"), *((f"board-{i}", "x" * 60) for i in range(3000)))
    channels = tuple(ChannelSummary(f"C{i:04d}", (("lmarena/*", ("new_model top=10",)),), "not muted", "off")
                     for i in range(60))
    view = home_view(Home(NOW, True, channels, (), Reply(title="Race", text="", table=rows)), "")
    assert len(view["blocks"]) <= 100 and block_kit_errors(view["blocks"], max_blocks=100) == []
    shown = texts(view["blocks"])
    assert f"… {60 - MAX_HOME_CHANNELS} more channel(s) not shown" in shown and NO_ALERTS in shown


# -- the tab, through Bolt -----------------------------------------------------------------------------------

async def test_an_admin_opening_the_home_tab_sees_their_channels(ctx: CommandContext, fake: FakeSlack,
                                                                 http: HttpSlack) -> None:
    await configure(ctx)
    await delivered(ctx, http.service)
    assert await open_home(http, fake, ADMIN) == 200
    await fake.wait_for(lambda: ADMIN in fake.home)
    view = fake.home[ADMIN]
    assert block_kit_errors(view["blocks"], max_blocks=100) == []
    shown = home_texts(fake, ADMIN)
    assert view["blocks"][0]["text"]["text"] == "leaderwatch"
    assert "As of 2025-08-26 12:00 UTC; refreshed each time you open this tab." in shown
    assert ("*<#C0ALERTS>*\n• `aider/polyglot`: `new_leader`, `top_n top=5`\n"
            "• `lmarena/*`: `new_model top=10`\n"
            "*Mute:* `lmarena/text` muted until 2025-08-28 12:00 UTC\n*Digest:* daily at 09:00 UTC") in shown
    assert "*<#C0QUIET>*\n• `aider/edit`: `new_leader`\n*Mute:* not muted\n*Digest:* off" in shown
    first, leader, top = (m.ts for m in fake.posts(ALERTS))
    links = {p: f"https://test.slack.com/archives/{ALERTS}/p{p.replace('.', '')}"
             for p in (first, leader, top)}
    assert (f"• <{links[top]}?thread_ts={leader}&cid={ALERTS}|Top N on aider/polyglot> in <#C0ALERTS> "
            "(in a thread), 2025-08-25: openai/gpt-5 (OpenAI, US) entered the top 5 at #1") in shown
    assert (f"• <{links[first]}|New model on lmarena/text> in <#C0ALERTS>, 2025-08-04: "
            "new model GLM-4.5") in shown
    # Each link is the one Slack itself gives for that message.
    for ts, thread in ((first, None), (leader, None), (top, leader)):
        answer = await http.service.app.client.chat_getPermalink(channel=ALERTS, message_ts=ts)
        assert answer["permalink"] == permalink("https://test.slack.com/", ALERTS, ts, thread)
    [race] = [b for b in view["blocks"] if b["type"] == "header" and b["text"]["text"].startswith("Race")]
    assert race["text"]["text"] == "Race: china, west"
    assert NOT_A_MANAGER[:20] not in shown
    assert [c.params["user"] for c in fake.called("users.info")] == [ADMIN]


async def test_a_member_opening_the_home_tab_sees_the_race_and_who_manages(
        ctx: CommandContext, fake: FakeSlack, http: HttpSlack) -> None:
    await configure(ctx)
    await delivered(ctx, http.service)
    assert await open_home(http, fake, MEMBER) == 200
    await fake.wait_for(lambda: MEMBER in fake.home)
    shown = home_texts(fake, MEMBER)
    assert NOT_A_MANAGER.format(who=WHO_MANAGES["slack"]) in shown
    assert "Race: china, west" in shown
    assert "C0ALERTS" not in shown and "archives" not in shown


async def test_the_home_is_rebuilt_each_time_it_opens(ctx: CommandContext, fake: FakeSlack,
                                                      http: HttpSlack) -> None:
    assert await open_home(http, fake, ADMIN) == 200
    await fake.wait_for(lambda: fake.home_publishes.get(ADMIN) == 1)
    assert "No channel follows anything yet." in home_texts(fake, ADMIN)
    await configure(ctx)
    assert await open_home(http, fake, ADMIN) == 200
    await fake.wait_for(lambda: fake.home_publishes.get(ADMIN) == 2)
    shown = home_texts(fake, ADMIN)
    assert "*<#C0ALERTS>*" in shown and "No alert has been delivered to these channels yet." in shown
    # Opening the Messages tab publishes nothing.
    assert await open_home(http, fake, ADMIN, tab="messages") == 200
    assert await open_home(http, fake, MEMBER) == 200
    await fake.wait_for(lambda: MEMBER in fake.home)
    assert fake.home_publishes == {ADMIN: 2, MEMBER: 1}


async def test_a_failed_admin_check_shows_the_race_and_says_why(ctx: CommandContext, fake: FakeSlack,
                                                                http: HttpSlack) -> None:
    await configure(ctx)
    fake.errors[("users.info", "")] = "ratelimited"
    assert await open_home(http, fake, ADMIN) == 200
    await fake.wait_for(lambda: ADMIN in fake.home)
    shown = home_texts(fake, ADMIN)
    assert HOME_ADMIN_CHECK_FAILED.format(error="ratelimited") in shown
    assert "Race: china, west" in shown and "C0ALERTS" not in shown


async def test_a_home_that_cannot_be_built_says_so_with_an_error_id(
        ctx: CommandContext, fake: FakeSlack, http: HttpSlack, caplog: pytest.LogCaptureFixture) -> None:
    await configure(ctx)
    with ctx.db.atomic():
        ctx.db.execute("DROP TABLE outbox")  # the last alerts cannot be read
    with caplog.at_level(logging.ERROR, logger="leaderwatch.bot.chat.slack"):
        assert await open_home(http, fake, ADMIN) == 200
        await fake.wait_for(lambda: ADMIN in fake.home)
    shown = home_texts(fake, ADMIN)
    [record] = [r for r in caplog.records if r.getMessage().startswith("Slack Home of U0ADMIN failed")]
    error_id = record.getMessage().split("error id ")[1].rstrip("]")
    assert record.exc_info is not None and "no such table: outbox" in str(record.exc_info[1])
    assert ("this page could not be built. The operator can find why in the log under error id "
            f"`{error_id}`") in shown
    assert "Traceback" not in shown and "outbox" not in shown
    # The listener lives on: the next opening works again once the database does.
    assert await open_home(http, fake, MEMBER) == 200
    await fake.wait_for(lambda: MEMBER in fake.home)
    assert "Race: china, west" in home_texts(fake, MEMBER)


async def test_a_refused_publish_is_logged_and_nothing_breaks(ctx: CommandContext, fake: FakeSlack,
                                                              http: HttpSlack,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    fake.errors[("views.publish", "")] = "not_enabled"  # the Home tab is off in the app's settings
    with caplog.at_level(logging.WARNING, logger="leaderwatch.bot.chat.slack"):
        assert await open_home(http, fake, ADMIN) == 200
        await fake.wait_for(lambda: fake.called("views.publish"))
        await fake.wait_for(lambda: any("views.publish" in r.getMessage() for r in caplog.records))
    assert "views.publish of the Home of U0ADMIN failed: not_enabled" in caplog.text
    assert fake.home == {} and len(fake.called("views.publish")) == 1


async def test_the_home_tab_over_socket_mode(ctx: CommandContext, fake: FakeSlack) -> None:
    await configure(ctx)
    service = SlackService(slack_settings(fake, "socket", slack_signing_secret=None), ctx)
    try:
        assert await service.start()
        ack = await fake.send_event(app_home_opened_event(ADMIN))
        assert ack["envelope_id"] == "env-1"
        await fake.wait_for(lambda: ADMIN in fake.home)
        assert "*<#C0ALERTS>*" in home_texts(fake, ADMIN)
    finally:
        await service.stop()


async def test_a_home_slack_refuses_is_replaced_by_the_short_one(ctx: CommandContext, fake: FakeSlack,
                                                                 http: HttpSlack,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    fake.errors[("views.publish", "")] = "invalid_arguments"  # as Slack answers blocks it will not take
    with caplog.at_level(logging.WARNING, logger="leaderwatch.bot.chat.slack"):
        assert await open_home(http, fake, ADMIN) == 200
        await fake.wait_for(lambda: len(fake.called("views.publish")) == 2)
        await fake.wait_for(lambda: "failed again" in caplog.text)
    first, second = (json.loads(c.params["view"]) if isinstance(c.params["view"], str) else c.params["view"]
                     for c in fake.called("views.publish"))
    assert len(first["blocks"]) > 2
    assert "this page could not be built" in texts(second["blocks"])
    assert "Slack Home of U0ADMIN failed [error id" in caplog.text and "invalid_arguments" in caplog.text
