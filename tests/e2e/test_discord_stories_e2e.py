"""End to end through Discord, one story: an overtake and its reversal, replayed from the recorded Aider
code editing boards, make one alert, one reply in a thread started on it, and one edit of it, also when
the process is killed between the reply and the edit (issue 12).

On 2024-06-17 DeepSeek Coder V2 (China) passed gpt-4o (US); on 2024-06-21 claude-3.5-sonnet (US) passed
it back. Real pieces throughout: the Aider source fetching the recorded YAML through
`httpx.MockTransport`, the Poller with the Alerter, the command layer, the discord.py client logged in
and connected to the fake Discord, the Dispatcher with the DiscordSender, one SQLite file. Only Discord
(tests/bot/fake_discord.py) and the Aider website are stood in for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leaderwatch.bot.chat.discord_bot import ADMIN_GROUP, DiscordService
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.sources import aider
from leaderwatch.storage.db import open_db
from tests.bot.fake_discord import MANAGER, FakeDiscord, interaction_json, keep_endpoints, settings_for
from tests.helpers import Clock, KilledInEdit, build_context, edit_yaml, no_sleep, poll_aider

REVERSED = "(reversed on 2024-06-21)"


class Process:
    """One run of the service on the database file: the pieces `bot/app.py` wires, built afresh."""

    def __init__(self, db_path: Path, fake: FakeDiscord, clock: Clock) -> None:
        self.clock = clock
        self.db = open_db(db_path)
        self.ctx = build_context(self.db, clock)
        self.discord = DiscordService(settings_for(fake, db_path=str(db_path)), self.ctx, reconnect=False,
                                      guild_ready_timeout=0.05, ready_timeout=5.0)

    async def start(self) -> Process:
        assert await self.discord.start()
        return self

    def dispatcher(self, sender: Any = None) -> Dispatcher:
        """A Dispatcher delivering through this process's sender (or `sender` wrapping it)."""
        urls = {board_id: board.url for board_id, board in self.ctx.boards.items()}
        return Dispatcher(self.db, {"discord": sender or self.discord.sender}, self.clock, sleep=no_sleep,
                          board_urls=urls, jitter=lambda: 0.0)

    async def stop(self) -> None:
        """Stop as a killed process would leave things: no outbox bookkeeping, just gone."""
        await self.discord.stop()
        self.db.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The service's clock, shared with the fake Discord's message ids, moved to each recording's day.

    An Aider table carries no date: the source dates what it fetches by the wall clock, which here
    reads this clock, so the story is told with the days it happened on.
    """
    clock = Clock(datetime(2024, 5, 15, 6, 0, tzinfo=UTC))
    monkeypatch.setattr(aider, "utcnow", clock)
    return clock


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord(clock=lambda: clock.now.timestamp()).start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


async def overtaken(db_path: Path, fake: FakeDiscord, clock: Clock, excerpts: Path) -> Process:
    """A process where the channel subscribed to `aider/edit overtake` and got the 2024-06-17 alert; the
    2024-06-21 board is then polled: its reversal is queued as a reply and an edit of that alert."""
    proc = await Process(db_path, fake, clock).start()
    callback = await fake.interact(interaction_json(
        ADMIN_GROUP, "subscribe", {"board_pattern": "aider/edit", "rules": "overtake"}, **MANAGER))
    assert "This channel now follows `aider/edit`" in callback["data"]["embeds"][0]["description"]
    await poll_aider(proc.ctx, edit_yaml(excerpts, "2024-05-15"))
    clock.advance(days=33)
    await poll_aider(proc.ctx, edit_yaml(excerpts, "2024-06-17"))
    assert await proc.dispatcher().run_once() == 1
    [alert] = fake.posts()
    assert alert["embeds"][0]["title"] == "Overtake on aider/edit"
    assert "Deepseek Coder V2" in alert["embeds"][0]["description"]
    clock.advance(days=4)
    await poll_aider(proc.ctx, edit_yaml(excerpts, "2024-06-21"))
    assert actions(proc) == [("post", "delivered"), ("reply", "pending"), ("edit", "pending")]
    return proc


def actions(proc: Process) -> list[tuple[str, str]]:
    return [(r["action"], r["status"]) for r in proc.db.table("outbox").rows_where(order_by="id")]


def assert_one_story(fake: FakeDiscord) -> None:
    """One top-level message, one message in its thread, one edit of it that tells the reversal."""
    [alert] = fake.posts()
    [reply] = fake.thread_posts(int(alert["id"]))
    assert "claude-3.5-sonnet" in reply["embeds"][0]["description"]
    [edit] = fake.edits[int(alert["id"])]
    assert edit["embeds"][0]["title"] == f"Overtake on aider/edit {REVERSED}"
    assert alert["embeds"][0]["title"].endswith(REVERSED)
    assert "Reversed on 2024-06-21" in alert["embeds"][0]["fields"][-1]["value"]
    assert alert["components"] == edit["components"]  # the buttons stay


async def finish(proc: Process, alerts: int) -> None:
    """Deliver what is due (`alerts` of it: an edit counts none), see nothing more go out later, stop."""
    try:
        assert await proc.dispatcher().run_once() == alerts
        assert actions(proc) == [("post", "delivered"), ("reply", "delivered"), ("edit", "delivered")]
        proc.clock.advance(60)
        assert await proc.dispatcher().run_once() == 0
    finally:
        await proc.stop()


async def test_an_overtake_and_its_reversal_are_one_message_one_thread_reply_one_edit(
        tmp_path: Path, fake: FakeDiscord, clock: Clock, excerpts: Path) -> None:
    await finish(await overtaken(tmp_path / "lw.db", fake, clock, excerpts), alerts=1)  # the reply
    assert_one_story(fake)


async def test_killed_between_the_reply_and_the_edit_neither_loses_nor_doubles_them(
        tmp_path: Path, fake: FakeDiscord, clock: Clock, excerpts: Path) -> None:
    first = await overtaken(tmp_path / "lw.db", fake, clock, excerpts)
    try:
        with pytest.raises(asyncio.CancelledError):
            await first.dispatcher(KilledInEdit(first.discord.sender)).run_once()
        assert actions(first) == [("post", "delivered"), ("reply", "delivered"), ("edit", "sending")]
    finally:
        await first.stop()
    [alert] = fake.posts()
    assert int(alert["id"]) not in fake.edits

    clock.advance(30)
    second = await Process(tmp_path / "lw.db", fake, clock).start()  # a new client, sender and dispatcher
    await finish(second, alerts=0)  # the edit is made again; no alert is resent
    assert_one_story(fake)
