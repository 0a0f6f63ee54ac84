"""The fan-out's batches written a few at once on PostgreSQL (issue 15: 100,000 channels), each in a thread
and a transaction of its own, and its posts opening their stories in the statement that adds them: every
channel gets its row once, stories thread under the right rows, and a fan-out stopped while batches run is
finished by the next without doubles. SQLite writes one batch at a time: the same assertions hold there.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from leaderwatch.bot.pipeline.alerter import WRITERS_FROM, FanOut
from leaderwatch.storage import fanouts, outbox
from leaderwatch.storage.db import to_text
from leaderwatch.storage.engine import POSTGRES
from tests.bot.test_alerter_fanout import alerter, fan_out, stage
from tests.bot.test_stories import BOARD, T0, T1, lead, subscribe

CHANNELS = 40
BATCH = 5  # 8 batches: written a few at once on PostgreSQL (WRITERS_FROM)


@pytest.fixture
def db(any_db):
    for n in range(CHANNELS):
        subscribe(any_db, f"C{n:02d}")
    return any_db


def posts_by_channel(db) -> dict[str, int]:
    rows = list(db.table("outbox").rows_where("action = 'post'"))
    assert len(rows) == len({r["channel_id"] for r in rows})  # one post a channel
    return {r["channel_id"]: r["id"] for r in rows}


def test_batches_written_at_once_queue_every_channel_once_and_thread_its_story(db) -> None:
    assert CHANNELS // BATCH >= WRITERS_FROM
    threads: set[str] = set()

    def trace(sql: str, _: object) -> None:  # which threads write the rows
        if "INTO outbox" in sql:
            threads.add(threading.current_thread().name)

    if db.backend == POSTGRES:
        db._tracer = trace
    try:
        done = fan_out(db, [lead("china", T0)], batch=BATCH)
    finally:
        if db.backend == POSTGRES:
            db._tracer = None
    assert (done.rows, done.channels) == (CHANNELS, CHANNELS)
    posts = posts_by_channel(db)
    assert sorted(posts) == [f"C{n:02d}" for n in range(CHANNELS)]
    story = f"{BOARD}|overtake|china|west"
    assert {(r["channel_id"], r["story"]): r["root_id"] for r in db.table("stories").rows} == {
        (channel, story): row for channel, row in posts.items()}
    if db.backend == POSTGRES:
        assert len({t for t in threads if t.startswith("leaderwatch-fanout-batch")}) == fanouts.WRITERS
    # The reversal follows up every channel's story: a reply and an edit of its first alert, in order.
    assert fan_out(db, [lead("west", T1)], T1, batch=BATCH).rows == CHANNELS
    for channel, root in posts.items():
        mine = [(r["action"], r["parent_id"]) for r in db.table("outbox").rows_where(
            "channel_id = ? AND action != 'post'", [channel], order_by="id")]
        assert mine == [("reply", root), ("edit", root)]


def test_a_fan_out_stopped_while_batches_run_is_finished_by_the_next_without_doubles(db) -> None:
    event = lead("china", T0)
    stage(db, [event])
    steps = alerter(db, batch=BATCH)._fan_out(FanOut(), db)
    while outbox.depth(db).get("pending", 0) == 0:
        next(steps)
    steps.close()  # the process stops: the batches under way end, no other begins; the event stays listed
    written = outbox.depth(db)["pending"]
    assert 0 < written <= BATCH * (fanouts.writers(db) + 1) < CHANNELS
    assert fanouts.waiting(db) == [event.dedupe_key]
    assert asyncio.run(alerter(db, batch=BATCH).fan_out()).rows == CHANNELS - written
    posts = posts_by_channel(db)
    assert sorted(posts) == [f"C{n:02d}" for n in range(CHANNELS)]
    assert {r["channel_id"]: r["root_id"] for r in db.table("stories").rows} == posts
    assert fanouts.waiting(db) == []


def test_one_writer_on_sqlite_and_inside_a_transaction(db) -> None:
    expected = fanouts.WRITERS if db.backend == POSTGRES else 1
    assert fanouts.writers(db) == expected
    with db.atomic():  # other connections would not see this transaction's rows
        assert fanouts.writers(db) == 1


def test_a_batch_opens_stories_only_for_the_posts_without_a_digest_it_adds(db) -> None:
    from leaderwatch.storage.events import save_events

    event = lead("china", T0)
    ek, stamp, story = event.dedupe_key, to_text(T0), "a-story"

    def row(channel: str, digest: str | None = None, action: str = outbox.POST,
            parent: int | None = None) -> outbox.NewRow:
        return (f"{ek}/slack/{channel}", ek, "slack", channel, "[]", None, digest, action, parent, stamp)

    with db.atomic():
        save_events(db, [event], None, T0)
        outbox.add_batch(db, [row("C00")])
    first = posts_by_channel(db)["C00"]
    with db.atomic():
        outbox.add_batch(db, [row("C01"), row("C02", digest="daily"), row("C03", action=outbox.REPLY,
                                                                         parent=first)], [story])
    with db.atomic():
        outbox.add_batch(db, [row("C01"), row("C04")], [story])  # C01's row is there already: left alone
    ids = {r["channel_id"]: r["id"] for r in db.table("outbox").rows}
    assert len(ids) == 5 and db.table("outbox").count == 5
    assert {r["channel_id"]: (r["story"], r["root_id"]) for r in db.table("stories").rows} == {
        "C01": (story, ids["C01"]), "C04": (story, ids["C04"])}
