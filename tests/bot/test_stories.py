"""One story, one thread: follow-ups go in the thread of the first alert, which is edited to show how
the story stands; through the outbox, with the same exactly-once guarantees as posts (issue 12).

The events are the real ones of the Aider code editing board in June 2024: DeepSeek Coder V2 (China)
passed gpt-4o (US) on 2024-06-17, and claude-3.5-sonnet (US) passed it back on 2024-06-21.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.matching import hold_for, match
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.alerts.stories import STORY_WINDOW, story_keys, update_label, update_line
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.storage import outbox
from leaderwatch.storage.db import open_db
from leaderwatch.storage.events import save_events
from leaderwatch.storage.subscriptions import (
    active_subscriptions,
    add_subscription,
    channel_settings,
    set_channel_setting,
)
from tests.bot.test_delivery import FakeSender, Killed, Platform, dispatcher
from tests.helpers import Clock

REPO = Path(__file__).resolve().parents[2]
BOARD = "aider/edit"
RULE = "overtake groups=china,west"
T0 = datetime(2024, 6, 17, tzinfo=UTC)
T1 = datetime(2024, 6, 21, tzinfo=UTC)


def lead(leader: str, at: datetime, board: str = BOARD, rule: str = RULE) -> Event:
    """An overtake as the engine words it: `leader` ("china" or "west") now leads the pair."""
    model, other = (("Deepseek Coder V2", "gpt-4o") if leader == "china" else
                    ("claude-3.5-sonnet (whole)", "DeepSeek Coder V2 (whole)"))
    trailer = "west" if leader == "china" else "china"
    return Event(kind="overtake", board=board, at=at, rule=rule, subject="china|west", model=model,
                 other=other, groups=("china", "west"), rank_before=2, rank_after=1, score_before=None,
                 score_after=None, confidence="clear",
                 message=f"{board}: {leader} model {model} now ranks above the best {trailer} model {other}",
                 dedupe_key=dedupe_key("overtake", board, "china|west", leader, at), value=leader)


def entered(model: str, at: datetime, kind: str = "top_n") -> Event:
    value = "in" if kind == "top_n" else model
    return Event(kind=kind, board=BOARD, at=at, rule=kind, subject=model if kind == "top_n" else "leader",
                 model=model, other=None, groups=("china",), rank_before=None, rank_after=7,
                 score_before=None, score_after=None, confidence="n/a", message=f"{BOARD}: {model} {kind}",
                 dedupe_key=dedupe_key(kind, BOARD, model, value, at), value=value)


def subscribe(db, channel: str, pattern: str = "aider/*", rule: str = RULE, platform: str = "slack") -> None:
    with db.atomic():
        add_subscription(db, platform, channel, pattern, rule, "U0ADMIN", T0)


def queue(db, events: list[Event], now: datetime) -> int:
    """What the Alerter does in the poll's transaction: store, match, hold, enqueue with stories."""
    with db.atomic():
        save_events(db, events, None, now)
        deliveries = match(events, active_subscriptions(db))
        return outbox.enqueue(db, deliveries, now, lambda d: hold_for(
            channel_settings(db, d.platform, d.channel_id), now, d.event.board), story_keys)


def rows(db) -> list[tuple[str, str, int | None, str]]:
    return [(r["action"], r["channel_id"], r["parent_id"], r["status"])
            for r in db.table("outbox").rows_where(order_by="id")]


@pytest.fixture
def db(fresh_db):
    return fresh_db


# --- which events make a story -------------------------------------------------------------------------

def test_an_event_belongs_to_its_subject_and_for_model_kinds_to_its_model() -> None:
    assert story_keys(lead("china", T0)) == ("aider/edit|overtake|china|west",)
    assert story_keys(entered("Qwen2-VL-72B", T0)) == ("aider/edit|top_n|Qwen2-VL-72B",
                                                       "aider/edit|model|Qwen2-VL-72B")
    assert story_keys(lead("china", T0)._replace(kind="report")) == ()


def test_a_follow_up_says_how_it_changes_the_story() -> None:
    first = lead("china", T0)
    assert update_label(first, lead("west", T1)) == "Reversed"
    assert update_label(first, lead("china", T1, rule="overtake groups=china,west confirm=2")) == "Confirmed"
    assert update_label(entered("Qwen", T0), entered("Qwen", T1, "new_leader")) == "Reached #1"
    assert update_line(first, lead("west", T1)) == (
        "Reversed on 2024-06-21: west model claude-3.5-sonnet (whole) now ranks above the best china model "
        "DeepSeek Coder V2 (whole)")


# --- queueing ------------------------------------------------------------------------------------------

def test_a_reversal_is_queued_as_a_reply_and_an_edit_of_the_first_alert(db) -> None:
    subscribe(db, "C1")
    subscribe(db, "C2")
    assert queue(db, [lead("china", T0)], T0) == 2
    assert queue(db, [lead("west", T1)], T1) == 2
    assert rows(db) == [("post", "C1", None, "pending"), ("post", "C2", None, "pending"),
                        ("reply", "C1", 1, "pending"), ("edit", "C1", 1, "pending"),
                        ("reply", "C2", 2, "pending"), ("edit", "C2", 2, "pending")]
    assert queue(db, [lead("west", T1)], T1) == 0  # found again (a replay): nothing more


def test_a_story_quiet_for_longer_than_the_window_starts_again(db) -> None:
    subscribe(db, "C1")
    queue(db, [lead("china", T0)], T0)
    later = T0 + STORY_WINDOW + timedelta(seconds=1)
    queue(db, [lead("west", later)], later)
    assert [a for a, *_ in rows(db)] == ["post", "post"]


def test_the_model_that_entered_the_top_n_reaching_first_is_a_follow_up(db) -> None:
    subscribe(db, "C1", rule="top_n")
    subscribe(db, "C1", rule="new_leader")
    queue(db, [entered("Qwen2-VL-72B", T0)], T0)
    queue(db, [entered("Qwen2-VL-72B", T1, "new_leader")], T1)
    assert [(a, p) for a, _, p, _ in rows(db)] == [("post", None), ("reply", 1), ("edit", 1)]


def test_a_digest_channel_does_not_thread(db) -> None:
    subscribe(db, "C1")
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "digest", "daily", T0)
    queue(db, [lead("china", T0)], T0)
    queue(db, [lead("west", T1)], T1)
    assert [a for a, *_ in rows(db)] == ["post", "post"]


# --- delivering ----------------------------------------------------------------------------------------

async def test_one_top_level_message_one_thread_reply_one_edit(db) -> None:
    subscribe(db, "C1")
    queue(db, [lead("china", T0)], T0)
    platform, clock = Platform(), Clock(T1)
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 1
    queue(db, [lead("west", T1)], T1)
    assert await dispatcher(db, sender, clock).run_once() == 1  # the reply is the one new alert
    [first] = platform.messages("C1")
    [reply] = platform.replies("m1")
    [(ref, edited)] = platform.edits
    assert ref == "m1" and first.title == "Overtake on aider/edit"
    assert reply.title == "Overtake on aider/edit" and reply.text.startswith("west model claude-3.5-sonnet")
    assert edited.title == "Overtake on aider/edit (reversed on 2024-06-21)"
    assert edited.fields[-1].name == "Since then"
    assert edited.fields[-1].value.startswith("Reversed on 2024-06-21: west model claude-3.5-sonnet")
    assert [a.name for a in edited.actions] == ["why", "chart", "mute", "unsubscribe"]  # still clickable
    stored = db.table("outbox").rows_where(order_by="id")
    assert [(r["action"], r["status"], r["message_ref"]) for r in stored] == [
        ("post", "delivered", "m1"), ("reply", "delivered", "m2"), ("edit", "delivered", None)]


async def test_a_follow_up_waits_for_its_first_alert(db) -> None:
    """Both queued before either went out (a mute, a slow platform): the reply never comes first."""
    subscribe(db, "C1")
    queue(db, [lead("china", T0)], T0)
    queue(db, [lead("west", T1)], T1)
    platform, clock = Platform(), Clock(T1)
    sender = FakeSender(platform, clock, fail=[DeliveryError("HTTP 503", retryable=True)])
    assert await dispatcher(db, sender, clock).run_once() == 0  # the first alert failed once: all wait
    assert platform.channels == {} and [k for _, _, k in sender.attempts] == [outbox.item(db, 1).delivery_key]
    clock.advance(60)
    assert await dispatcher(db, sender, clock).run_once() == 2
    assert len(platform.messages("C1")) == 1 and len(platform.replies("m1")) == 1 and len(platform.edits) == 1


async def test_a_deleted_first_alert_gets_the_follow_up_as_a_new_message(db) -> None:
    subscribe(db, "C1")
    queue(db, [lead("china", T0)], T0)
    platform, clock = Platform(), Clock(T1)
    sender = FakeSender(platform, clock)
    await dispatcher(db, sender, clock).run_once()
    platform.deleted.add("m1")  # someone deleted the alert
    queue(db, [lead("west", T1)], T1)
    assert await dispatcher(db, sender, clock).run_once() == 1
    assert [m.text.split()[0] for m in platform.messages("C1")] == ["china", "west"]
    assert platform.threads == {} and platform.edits == []
    assert rows(db) == [("post", "C1", None, "delivered"), ("post", "C1", None, "delivered"),
                        ("edit", "C1", 1, "skipped")]
    # The next follow-up threads under the message that took the first alert's place.
    later = T1 + timedelta(days=1)
    queue(db, [lead("china", later)], later)
    clock.now = later
    assert await dispatcher(db, sender, clock).run_once() == 1
    assert len(platform.replies("m2")) == 1 and [ref for ref, _ in platform.edits] == ["m2"]


async def killed_in_follow_up(path: Path, platform: Platform, clock: Clock, fail: list[object]) -> None:
    """A process posts the overtake, queues its reversal, and dies as `fail` says while following up."""
    first = open_db(path)
    subscribe(first, "C1")
    queue(first, [lead("china", T0)], T0)
    await dispatcher(first, FakeSender(platform, clock), clock).run_once()
    queue(first, [lead("west", T1)], T1)
    with pytest.raises(Killed):
        await dispatcher(first, FakeSender(platform, clock, fail=fail), clock).run_once()
    first.close()


@pytest.mark.parametrize("crash", ["crash-before", "crash-after"])
async def test_killed_between_the_reply_and_the_edit_neither_loses_nor_doubles(tmp_path: Path,
                                                                                crash: str) -> None:
    path, platform, clock = tmp_path / "lw.db", Platform(), Clock(T1)
    # The reply goes out; the process dies inside the edit (before or after the platform applied it).
    await killed_in_follow_up(path, platform, clock, [None, crash])
    db = open_db(path)  # the restarted process
    assert [r[3] for r in rows(db)] == ["delivered", "delivered", "sending"]
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 0
    assert len(platform.messages("C1")) == 1 and len(platform.replies("m1")) == 1
    assert [ref for ref, _ in platform.edits] == ["m1"] * (1 if crash == "crash-before" else 2)
    assert platform.edits[-1][1].title == "Overtake on aider/edit (reversed on 2024-06-21)"
    assert sender.checks == []  # an edit is made again, not looked for: the same edit twice changes nothing
    assert [r[3] for r in rows(db)] == ["delivered", "delivered", "delivered"]
    db.close()


async def test_killed_after_the_reply_landed_does_not_reply_twice(tmp_path: Path) -> None:
    path, platform, clock = tmp_path / "lw.db", Platform(), Clock(T1)
    await killed_in_follow_up(path, platform, clock, ["crash-after"])
    db = open_db(path)
    sender = FakeSender(platform, clock)
    assert await dispatcher(db, sender, clock).run_once() == 1  # recovered from the thread: there already
    assert [(c, k) for c, k, _ in sender.checks] == [("C1", outbox.item(db, 2).delivery_key)]
    assert len(platform.replies("m1")) == 1 and len(platform.edits) == 1
    db.close()


CHILD = """
import asyncio, json, os, signal, sys
from datetime import datetime
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.storage.db import open_db

db_path, log_path, when = sys.argv[1:]

class Sender:
    platform = "slack"
    def log(self, *line):
        with open(log_path, "a") as f:
            f.write(json.dumps(line) + "\\n")
    async def send(self, channel_id, reply, delivery_key, thread=None):
        self.log("reply" if thread else "post", delivery_key, thread)
        return delivery_key
    async def edit(self, channel_id, message_ref, reply, delivery_key):
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the edit reaches the platform
    async def already_delivered(self, channel_id, delivery_key, since, thread=None):
        return None

now = datetime.fromisoformat(when)
asyncio.run(Dispatcher(open_db(db_path), {"slack": Sender()}, lambda: now).run_once())
"""


async def test_a_real_sigkill_between_the_reply_and_the_edit(tmp_path: Path) -> None:
    """A child process delivers the first alert, the reply, and dies by SIGKILL in the edit."""
    path, log = tmp_path / "lw.db", tmp_path / "platform.jsonl"
    db = open_db(path)
    subscribe(db, "C1")
    queue(db, [lead("china", T0)], T0)
    queue(db, [lead("west", T1)], T1)
    db.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(log), T1.isoformat()],
                           cwd=REPO, env=env, capture_output=True, timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    db = open_db(path)
    assert [r[3] for r in rows(db)] == ["delivered", "delivered", "sending"]
    edits: list[tuple[str, Reply]] = []

    class Restarted(FakeSender):
        async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
            edits.append((message_ref, reply))

    clock = Clock(T1 + timedelta(minutes=1))
    assert await dispatcher(db, Restarted(Platform(), clock), clock).run_once() == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    post_key = outbox.item(db, 1).delivery_key
    assert [line[0] for line in lines] == ["post", "reply"]  # nothing sent twice
    assert lines[1][2] == post_key  # the reply went in the thread of the first alert (its ref)
    assert [ref for ref, _ in edits] == [post_key]  # the edit, lost with the process, was made once
    assert [r[3] for r in rows(db)] == ["delivered", "delivered", "delivered"]
    db.close()
