"""End to end through Slack, one story in one thread (issue 12): the recorded Aider code editing boards of
2024-05-15, 2024-06-17 (DeepSeek Coder V2, China, passes gpt-4o) and 2024-06-21 (claude-3.5-sonnet passes
it back), polled by the real Poller and Alerter into a channel following `aider/edit overtake`, delivered
by the Dispatcher and the SlackSender to the fake Slack: one top-level message, one reply in its thread,
one chat.update of the first saying it was reversed; also when the process dies between the reply and
the edit.

The same real pieces as tests/e2e/test_slack_e2e.py (its `Process`): the Bolt app in HTTP mode taking the
signed `/leaderwatch subscribe`, the Aider source fetching recorded YAML, one SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from leaderwatch.bot.chat.slack import ALERT_EVENT_TYPE
from leaderwatch.sources import aider
from leaderwatch.storage import outbox
from tests.bot.fake_slack import FakeSlack, Posted, block_kit_errors
from tests.e2e.test_slack_e2e import ADMIN, ALERTS, Process, queued
from tests.helpers import Clock, KilledInEdit, edit_yaml

pytestmark = pytest.mark.usefixtures("slack_environment")

TITLE = "Overtake on aider/edit"


def day(date: str) -> datetime:
    """Noon UTC of a recorded board's date: when the service polled it, in this replay."""
    return datetime.fromisoformat(f"{date}T12:00:00+00:00")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The service's clock, shared with the fake Slack's message timestamps and with the Aider source (which
    dates a fetched table by the wall clock): each board is polled on the day it was published, so the
    story's dates are the real ones."""
    clock = Clock(day("2024-05-15"))
    monkeypatch.setattr(aider, "utcnow", lambda: clock.now)
    return clock


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(admins={ADMIN}, clock=lambda: clock.now.timestamp()).start()
    yield slack
    await slack.stop()


async def overtaken(path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> Process:
    """#alerts follows aider/edit overtakes (typed by an admin); the 2024-06-17 overtake is delivered and
    the 2024-06-21 board, where the US takes the lead back, is polled."""
    proc = await Process(path, fake, clock).start()
    reply = await proc.command("subscribe aider/edit overtake", ALERTS)
    assert reply["blocks"][0]["text"]["text"] == "Subscribed", reply
    for date in ("2024-05-15", "2024-06-17", "2024-06-21"):
        clock.now = day(date)
        await proc.poll(edit_yaml(excerpts, date))
        if date == "2024-06-17":
            assert await proc.dispatcher.run_once() == 1
    assert [(r["action"], r["status"]) for r in queued(proc)] == [
        ("post", "delivered"), ("reply", "pending"), ("edit", "pending")]
    return proc


def keys(posted: Posted) -> str:
    assert posted.metadata is not None and posted.metadata["event_type"] == ALERT_EVENT_TYPE
    return str(posted.metadata["event_payload"]["delivery_key"])


def one_story(fake: FakeSlack, proc: Process) -> tuple[Posted, Posted]:
    """The channel shows one alert with one reply in its thread; the outbox agrees."""
    [first] = fake.top_level(ALERTS)
    [reply] = fake.replies(ALERTS, first.ts)
    assert reply.thread_ts == first.ts and not reply.reply_broadcast
    assert len(fake.posts()) == 2 and len(fake.called("chat.postMessage")) == 2
    rows = queued(proc)
    assert [(r["action"], r["status"]) for r in rows] == [
        ("post", "delivered"), ("reply", "delivered"), ("edit", "delivered")]
    assert [r["message_ref"] for r in rows[:2]] == [first.ts, reply.ts]
    assert [keys(first), keys(reply)] == [rows[0]["delivery_key"], rows[1]["delivery_key"]]
    return first, reply


def header(blocks: list[dict[str, Any]] | None) -> str:
    assert blocks is not None
    return str(blocks[0]["text"]["text"])


def check_story(first: Posted, reply: Posted) -> None:
    """The reply tells the reversal; the first alert, edited once, says how the story stands."""
    assert header(reply.blocks) == TITLE
    assert "west model claude-3.5-sonnet" in reply.text
    [edit] = first.edits
    assert edit["via"] == "chat.update"
    assert header(first.blocks) == f"{TITLE} (reversed on 2024-06-21)"
    assert "Deepseek Coder V2" in first.text and "Since then" in first.text
    assert first.blocks is not None and block_kit_errors(first.blocks) == []
    assert first.blocks[-1]["type"] == "actions"  # the edited alert keeps its buttons
    assert first.metadata is not None  # and its delivery key (chat.update leaves metadata alone)


async def test_an_overtake_and_its_reversal_make_one_thread_and_one_edit(
        tmp_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> None:
    proc = await overtaken(tmp_path / "lw.db", fake, clock, excerpts)
    try:
        [first] = fake.top_level(ALERTS)
        assert header(first.blocks) == TITLE and first.edits == []
        assert await proc.dispatcher.run_once() == 1  # the reply is the one new alert; the edit follows it
        check_story(*one_story(fake, proc))
        clock.advance(60)
        assert await proc.dispatcher.run_once() == 0
        assert len(fake.called("chat.update")) == 1 and len(fake.posts()) == 2
    finally:
        await proc.stop()


async def test_killed_between_the_reply_and_the_edit_neither_loses_nor_doubles(
        tmp_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> None:
    path = tmp_path / "lw.db"
    first_run = await overtaken(path, fake, clock, excerpts)
    first_run.dispatcher.senders = {"slack": KilledInEdit(first_run.slack.sender)}
    with pytest.raises(asyncio.CancelledError):
        await first_run.dispatcher.run_once()
    assert len(fake.replies(ALERTS, fake.top_level(ALERTS)[0].ts)) == 1  # the reply went out
    assert not fake.called("chat.update")
    assert [r["status"] for r in queued(first_run)] == ["delivered", "delivered", "sending"]
    await first_run.stop()

    clock.advance(30)
    second_run = await Process(path, fake, clock).start()  # a new Bolt app, sender and dispatcher
    try:
        assert await second_run.dispatcher.run_once() == 0  # no new alert: only the edit, made once
        check_story(*one_story(fake, second_run))
        assert len(fake.called("chat.update")) == 1
        clock.advance(60)
        assert await second_run.dispatcher.run_once() == 0
        assert len(fake.called("chat.update")) == 1 and len(fake.called("chat.postMessage")) == 2
        assert outbox.depth(second_run.db) == {"delivered": 3}
    finally:
        await second_run.stop()


async def test_killed_after_slack_took_the_reply_finds_it_in_the_thread(
        tmp_path: Path, fake: FakeSlack, clock: Clock, excerpts: Path) -> None:
    path = tmp_path / "lw.db"
    first_run = await overtaken(path, fake, clock, excerpts)
    fake.post_gate = asyncio.Event()  # Slack stores the reply, then the process dies before the answer
    delivering = asyncio.ensure_future(first_run.dispatcher.run_once())
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) == 2)
    delivering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivering
    fake.post_gate.set()
    assert [r["status"] for r in queued(first_run)] == ["delivered", "sending", "pending"]
    await first_run.stop()

    clock.advance(30)
    second_run = await Process(path, fake, clock).start()
    try:
        assert await second_run.dispatcher.run_once() == 1  # the reply, recovered from its thread
        check_story(*one_story(fake, second_run))
        [first] = fake.top_level(ALERTS)
        looked = fake.called("conversations.replies")[-1]
        assert looked.params["ts"] == first.ts
        assert looked.params["include_all_metadata"] in ("1", "true", True)
    finally:
        await second_run.stop()
