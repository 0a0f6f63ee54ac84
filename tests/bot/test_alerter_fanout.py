"""The fan-out: a poll's events to the outbox rows of every channel that follows them, through the index of
followed board patterns, in batches, after the poll's commit; the same rows the plain matching queues; none
lost or doubled when the process dies midway; at most `alert_cap` alerts a channel per poll, the rest folded
into one message (issue 14 items 1 and 5).

Events are the real ones of the Aider code editing board in June 2024 (tests/bot/test_stories.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from leaderwatch.alerts.matching import delivery_key, hold_for, match
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.alerts.stories import story_keys
from leaderwatch.bot.pipeline.alerter import MORE, Alerter, FanOut, more_event
from leaderwatch.sources.identity import default_groups
from leaderwatch.storage import fanouts, outbox
from leaderwatch.storage.db import open_db
from leaderwatch.storage.events import event_by_key, save_events
from leaderwatch.storage.subscriptions import (
    active_subscriptions,
    channel_settings,
    disable_channel,
    set_channel_setting,
)
from tests.bot.test_stories import BOARD, RULE, T0, T1, entered, lead, subscribe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(any_db):
    return any_db


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database another process (or a restarted app) opens by name, on each store in turn: the file
    tmp_path/lw.db, or this test process's PostgreSQL schema (emptied) by its URL."""
    if request.param == "sqlite":
        return str(tmp_path / "lw.db")
    from tests.conftest import empty_postgres

    empty_postgres(request.getfixturevalue("postgres_session_db"))
    return str(request.getfixturevalue("postgres_schema"))


def alerter(db, now=T0, **options) -> Alerter:
    return Alerter(db, [], default_groups(), lambda: now, **options)


def stage(db, events: list[Event], now=T0) -> None:
    """What `Alerter.stage` leaves after the poll's commit: the events stored and listed to fan out."""
    with db.atomic():
        save_events(db, events, None, now)
        fanouts.stage(db, [e.dedupe_key for e in events], now)


def fan_out(db, events: list[Event], now=T0, **options):
    stage(db, events, now)
    return asyncio.run(alerter(db, now, **options).fan_out())


def queue_plainly(db, events: list[Event], now) -> None:
    """The plain way, as before the index: every subscription matched, settings read per channel."""
    with db.atomic():
        save_events(db, events, None, now)
        outbox.enqueue(db, match(events, active_subscriptions(db)), now, lambda d: hold_for(
            channel_settings(db, d.platform, d.channel_id), now, d.event.board), story_keys)


def outbox_rows(db) -> list[tuple]:
    """Every row by its key, its parent named by key too (ids depend on the order rows were written)."""
    keys = {r["id"]: r["delivery_key"] for r in db.table("outbox").rows}
    return sorted((r["delivery_key"], r["event_key"], r["platform"], r["channel_id"], r["subscription_ids"],
                   r["action"], keys.get(r["parent_id"]), r["hold_until"], r["digest"], r["status"])
                  for r in db.table("outbox").rows)


def stories(db) -> list[tuple]:
    keys = {r["id"]: r["delivery_key"] for r in db.table("outbox").rows}
    return sorted((r["platform"], r["channel_id"], r["story"], keys[r["root_id"]])
                  for r in db.table("stories").rows)


def channels_of(db) -> None:
    """Channels following the board in every way there is, and some that do not."""
    subscribe(db, "C1")                                   # a glob
    subscribe(db, "C2", BOARD)                            # the board itself
    subscribe(db, "C3", "coding")                         # a suite
    subscribe(db, "C4", "aider/*")                        # two patterns matching the board: one alert
    subscribe(db, "C4", BOARD)
    subscribe(db, "D1", "aider/*", platform="discord")
    subscribe(db, "D2", "lmarena/*", platform="discord")  # another board
    subscribe(db, "C5", "aider/*", rule="new_leader")     # another rule
    subscribe(db, "C6")                                   # gone
    with db.atomic():
        disable_channel(db, "slack", "C6", "channel_not_found", T0)
        until = (T0 + timedelta(hours=3)).isoformat()
        set_channel_setting(db, "slack", "C2", "mute_until:aider/*", until, T0)
        set_channel_setting(db, "discord", "D1", "digest", "daily", T0)


def test_the_fan_out_queues_what_plain_matching_queues(db) -> None:
    """The same scenario both ways, rows compared: a story's first alert, then a reversal (reply + edit in
    the threads, a post for the digest channel), mutes and digests applied, duplicates merged. On
    PostgreSQL the one schema of the test process is emptied (numbering restarted) between the two ways."""
    channels_of(db)
    queue_plainly(db, [lead("china", T0)], T0)
    queue_plainly(db, [lead("west", T1)], T1)
    plain = (outbox_rows(db), stories(db))
    if db.backend == "postgres":
        from tests.conftest import empty_postgres

        empty_postgres(db)
    else:
        db = open_db(":memory:")
    channels_of(db)
    fan_out(db, [lead("china", T0)], T0)
    fan_out(db, [lead("west", T1)], T1)
    assert (outbox_rows(db), stories(db)) == plain
    got = outbox_rows(db)
    assert {(r[2], r[3], r[5]) for r in got} == {
        ("slack", c, a) for c in ("C1", "C2", "C3", "C4") for a in ("post", "reply", "edit")} | {
        ("discord", "D1", "post")}
    assert [r[4] for r in got if r[3] == "C4" and r[5] == "post"] == ["[4, 5]"]  # both subscriptions
    assert fanouts.waiting(db) == []


def test_batches_keep_each_channel_s_rows_in_channel_order_and_threads_right(db) -> None:
    for n in range(7):
        subscribe(db, f"C{n}")
    done = fan_out(db, [lead("china", T0)], batch=3)
    assert (done.rows, done.channels, done.events) == (7, 7, 1)
    posts = list(db.table("outbox").rows_where(order_by="id"))
    assert [r["channel_id"] for r in posts] == [f"C{n}" for n in range(7)]
    assert [r["delivery_key"] for r in posts] == [delivery_key(lead("china", T0).dedupe_key, "slack", f"C{n}")
                                                   for n in range(7)]
    roots = {(r["channel_id"], r["story"]): r["root_id"] for r in db.table("stories").rows}
    assert roots == {(r["channel_id"], f"{BOARD}|overtake|china|west"): r["id"] for r in posts}
    fan_out(db, [lead("west", T1)], T1, batch=3)
    replies = list(db.table("outbox").rows_where("action != 'post'", order_by="id"))
    # Each reply comes before its edit, and each edit edits its channel's first alert.
    for n in range(7):
        mine = [(r["action"], r["parent_id"]) for r in replies if r["channel_id"] == f"C{n}"]
        assert mine == [("reply", posts[n]["id"]), ("edit", posts[n]["id"])]


def test_the_same_events_again_queue_nothing(db) -> None:
    channels_of(db)
    fan_out(db, [lead("china", T0)])
    before = outbox_rows(db)
    assert fan_out(db, [lead("china", T0)]).rows == 0  # listed again (a replay): every row is there
    assert outbox_rows(db) == before


@pytest.mark.parametrize("board, reads_channels", [("livebench/math", False), (BOARD, True)])
def test_a_board_nobody_follows_reads_no_channel(db, board: str, reads_channels: bool) -> None:
    channels_of(db)
    stage(db, [lead("china", T0, board=board)])
    seen: list[str] = []
    db._tracer = lambda sql, params: seen.append(sql)
    done = FanOut()
    for _ in alerter(db)._fan_out(done, db):
        pass
    db._tracer = None
    assert any("SELECT platform, channel_id, '[' || id || ']'" in sql for sql in seen) is reads_channels
    assert (done.rows > 0) is reads_channels and done.events == 1 and fanouts.waiting(db) == []


# --- dying midway --------------------------------------------------------------------------------------

def test_a_fan_out_cut_short_is_finished_by_the_next_without_doubles(db) -> None:
    for n in range(10):
        subscribe(db, f"C{n}")
    stage(db, [lead("china", T0)])
    steps = alerter(db, batch=4)._fan_out(FanOut(), db)
    while outbox.depth(db).get("pending", 0) < 4:
        next(steps)
    steps.close()  # the process stops here: one batch of 4 committed, the event still listed
    assert outbox.depth(db) == {"pending": 4} and fanouts.waiting(db) == [lead("china", T0).dedupe_key]
    assert asyncio.run(alerter(db).fan_out()).rows == 6
    assert sorted(r["channel_id"] for r in db.table("outbox").rows) == [f"C{n}" for n in range(10)]
    roots = {r["channel_id"]: r["root_id"] for r in db.table("stories").rows}
    assert roots == {r["channel_id"]: r["id"] for r in db.table("outbox").rows}
    assert fanouts.waiting(db) == []


CHILD = """
import os, signal, sys
from datetime import datetime
from leaderwatch.bot.pipeline.alerter import Alerter, FanOut
from leaderwatch.sources.identity import default_groups
from leaderwatch.storage.db import open_db

db = open_db(sys.argv[1])
now = datetime.fromisoformat(sys.argv[2])
steps = Alerter(db, [], default_groups(), lambda: now, batch=3)._fan_out(FanOut(), db)
for _ in steps:
    if db.execute("SELECT count(*) FROM outbox").fetchone()[0] >= 6:
        os.kill(os.getpid(), signal.SIGKILL)  # two batches committed, the third not begun
"""


def test_a_real_sigkill_midway_loses_nothing_and_doubles_nothing(target: str) -> None:
    path = target
    db = open_db(path)
    for n in range(10):
        subscribe(db, f"C{n}")
    stage(db, [lead("china", T0)])
    db.close()
    name = f"lw-fanout-child-{os.getpid()}"
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), T0.isoformat()], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO), "PGAPPNAME": name},
                           capture_output=True, timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    db = open_db(path)
    if db.backend == "postgres":
        # The server may still be running what the dead child had sent (the other writer's COMMIT): read
        # only once its sessions are gone, or a batch can commit between this count and the resumption.
        until = time.monotonic() + 15
        while db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
                         [name]).fetchone()[0]:
            assert time.monotonic() < until, "the killed child's sessions never ended"
            time.sleep(0.05)
    # Killed once 6 rows were in: on SQLite two batches, the third not begun; on PostgreSQL two batches are
    # written at once (fanouts.writers), so the third may have committed too; the fourth never began.
    committed = outbox.depth(db).get("pending", 0)
    assert committed in ({6} if db.backend == "sqlite" else {6, 9})
    assert outbox.depth(db) == {"pending": committed} and len(fanouts.waiting(db)) == 1
    assert asyncio.run(alerter(db).fan_out()).rows == 10 - committed
    assert sorted(r["channel_id"] for r in db.table("outbox").rows) == [f"C{n}" for n in range(10)]
    assert len(list(db.table("stories").rows)) == 10 and fanouts.waiting(db) == []
    db.close()


# --- at most so many alerts a channel per poll ---------------------------------------------------------

def many(n: int) -> list[Event]:
    """`n` models entering the top 10 on two boards in one update (a new table, a renamed arena)."""
    boards = [BOARD.replace("edit", "polyglot") if i % 3 == 0 else BOARD for i in range(n)]
    return [entered(f"model-{i}", T0)._replace(
        board=b, dedupe_key=dedupe_key("top_n", b, f"model-{i}", "in", T0)) for i, b in enumerate(boards)]


def test_alerts_beyond_the_cap_fold_into_one_message_per_channel(db) -> None:
    subscribe(db, "C1", rule="top_n")                  # follows everything: 25 alerts
    subscribe(db, "C2", "aider/polyglot", rule="top_n")  # follows one board: 9 alerts, under the cap
    events = many(25)
    done = fan_out(db, events, alert_cap=20)
    c1 = list(db.table("outbox").rows_where("channel_id = 'C1'", order_by="id"))
    assert [r["event_key"] for r in c1[:20]] == [e.dedupe_key for e in events[:20]]
    [summary] = [event_by_key(db, r["event_key"]) for r in c1[20:]]
    assert summary is not None and summary.kind == MORE
    assert summary.message == (
        "…and 5 more changes on 2 boards (aider/edit, aider/polyglot): `/leaderwatch events` lists them. "
        "A channel gets at most 20 alerts from one update; the rest are summed up here.")
    assert db.table("outbox").count_where("channel_id = 'C2'") == 9
    assert (done.rows, done.folded, done.summaries) == (29, 5, 1)
    assert fan_out(db, events, alert_cap=20).rows == 0  # again (a crash before the end): nothing new
    assert db.table("outbox").count == 30


def test_the_summary_is_held_like_the_channel_s_alerts(db) -> None:
    subscribe(db, "C1", rule="top_n")
    until = T0 + timedelta(hours=2)
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "mute_until", until.isoformat(), T0)
    fan_out(db, many(4), alert_cap=2)
    holds = [(r["hold_until"], event_by_key(db, r["event_key"]).kind) for r in db.table("outbox").rows]
    assert holds == [(until.isoformat(), "top_n")] * 2 + [(until.isoformat(), MORE)]


def test_one_change_reads_every_summary_word_right() -> None:
    one = more_event("slack", "C1", many(1), 20)
    assert one.message.startswith("…and 1 more change on 1 board (aider/polyglot):")
    boards = [lead("china", T0, board=f"lmarena/b{i}") for i in range(7)]
    assert "(lmarena/b0, lmarena/b1, lmarena/b2, lmarena/b3, lmarena/b4 and 2 more)" in more_event(
        "slack", "C1", boards, 20).message


def test_the_cap_is_per_poll_not_forever(db) -> None:
    subscribe(db, "C1", rule="top_n")
    fan_out(db, many(3), alert_cap=2)
    later = [e._replace(at=T1, dedupe_key=e.dedupe_key[::-1]) for e in many(2)]
    fan_out(db, later, T1, alert_cap=2)
    got = [(event_by_key(db, r["event_key"]).kind, r["action"])
           for r in db.table("outbox").rows_where(order_by="id")]
    # The second update's two alerts follow up the stories the first opened (a reply and an edit each):
    # two alerts, under the cap, nothing folded.
    assert got == [("top_n", "post"), ("top_n", "post"), (MORE, "post")] + [
        ("top_n", "reply"), ("top_n", "edit")] * 2



# --- after the poll's commit ---------------------------------------------------------------------------

async def test_a_poll_queues_its_alerts_once_committed_and_a_failed_fan_out_is_retried(any_db, identity,
                                                                                       caplog) -> None:
    """The poller awaits the fan-out after its commit; when that fails (the outbox refuses rows) the poll
    still succeeds, its event stays listed, and the next poll, with no change of its own, queues it."""
    import httpx

    from leaderwatch.alerts.ruleset import parse_rule
    from leaderwatch.bot.pipeline.poller import Poller
    from leaderwatch.sources.http import Fetcher
    from tests.bot.test_poller import FakeSource, Site, rows, ticking_clock
    from tests.helpers import no_sleep

    db, site, clock = any_db, Site(), ticking_clock()
    subscribe(db, "C1", "fake/*", rule="new_model top=10")
    a = Alerter(db, [parse_rule("new_model top=10", [])], default_groups(), clock)
    async with httpx.AsyncClient(transport=httpx.MockTransport(site)) as http:
        poller = Poller(db, Fetcher(http, sleep=no_sleep), clock, lambda stored: a.stage(stored).announce)
        source = FakeSource(identity, clock)
        site.content["/a.json"] = rows(5)
        assert (await poller.poll(source)).ok  # the first table: a baseline, no event
        site.content["/a.json"] = [{"model": "newcomer", "score": 200.0}, *rows(5)]
        with db.atomic():  # the outbox refuses rows (each store's own trigger syntax)
            if db.backend == "sqlite":
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN "
                           "SELECT RAISE(ABORT, 'disk full'); END")
            else:
                db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$")
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW "
                           "EXECUTE FUNCTION refuse()")
        result = await poller.poll(source)
        assert result.ok and len(result.changed) == 1
        assert outbox.depth(db) == {} and len(fanouts.waiting(db)) == 1
        assert "queueing the alerts of a stored change failed" in caplog.text
        with db.atomic():
            db.execute("DROP TRIGGER refuse" + ("" if db.backend == "sqlite" else " ON outbox"))
        assert (await poller.poll(source)).changed == []  # 304: nothing new, but the fan-out is retried
    assert outbox.depth(db) == {"pending": 1} and fanouts.waiting(db) == []
    [row] = db.table("outbox").rows
    assert event_by_key(db, row["event_key"]).model == "newcomer"


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    from leaderwatch.bot.settings import ConfigError
    from tests.bot.test_settings import with_config

    assert with_config(tmp_path, "").alerts_per_poll == 20
    assert with_config(tmp_path, "alerts_per_poll = 5\n").alerts_per_poll == 5
    both = with_config(tmp_path, "alerts_per_poll = 5\n", LEADERWATCH_ALERTS_PER_POLL="40")
    assert both.alerts_per_poll == 40
    message = (r"LEADERWATCH_ALERTS_PER_POLL: expected a whole number of alerts one channel gets from one "
               r"poll at most, from 1 to 10000 \(default 20\), got")
    for bad in ("0", "many", "2.5", "100000"):
        with pytest.raises(ConfigError, match=message):
            with_config(tmp_path, "", LEADERWATCH_ALERTS_PER_POLL=bad)


def test_the_folded_alerts_read_as_one_message() -> None:
    from leaderwatch.bot.pipeline.alerter import more_reply

    reply = more_reply(more_event("slack", "C1", many(5), 20))
    assert reply.title == "5 more changes in this update"
    assert reply.text.startswith("…and 5 more changes on 2 boards (aider/edit, aider/polyglot)")
    assert reply.footer == "`LEADERWATCH_ALERTS_PER_POLL` sets how many alerts a channel gets from one update"
    assert reply.actions == ()


@pytest.mark.parametrize("where", ["file", "memory", "postgres"])
async def test_the_event_loop_keeps_turning_while_a_fan_out_runs(tmp_path: Path, where: str,
                                                                  request: pytest.FixtureRequest) -> None:
    """A file database (or PostgreSQL): the fan-out runs in a worker thread; an in-memory one: on the loop,
    a batch at a time. Either way other tasks (chat commands) run meanwhile, and every row is written."""
    if where == "postgres":
        from tests.conftest import empty_postgres

        db = request.getfixturevalue("postgres_session_db")
        empty_postgres(db)
    else:
        db = open_db(tmp_path / "lw.db" if where == "file" else ":memory:")
    with db.atomic():
        db.executemany(
            "INSERT INTO subscriptions (platform, channel_id, board_pattern, rule, created_by, created_at) "
            "VALUES ('slack', ?, 'aider/*', ?, 'U1', ?)",
            [(f"C{n:05d}", RULE, T0.isoformat()) for n in range(3000)])
    stage(db, [lead("china", T0)])
    turns = 0
    finished = asyncio.Event()

    async def ticker() -> None:
        nonlocal turns
        while not finished.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    done = await alerter(db, batch=200).fan_out()
    finished.set()
    await ticking
    assert done.rows == 3000 and outbox.depth(db) == {"pending": 3000}
    assert turns >= 3000 // 200
    if where != "postgres":  # the session's database stays open for the other tests
        db.close()


def test_the_fan_out_thread_runs_below_the_event_loop() -> None:
    """Linux schedules threads on their own: the fan-out's thread is `nice`r than the loop's."""
    import threading

    from leaderwatch.bot.pipeline.alerter import FAN_OUT_NICENESS, _yielding

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def work() -> None:
        _yielding()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [min(mine + FAN_OUT_NICENESS, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's is unchanged


async def test_the_summary_reaches_the_channel_as_one_plain_message(db) -> None:
    from leaderwatch.bot.pipeline.alerter import more_reply
    from tests.bot.test_delivery import FakeSender, Platform, dispatcher
    from tests.helpers import Clock

    subscribe(db, "C1", rule="top_n")
    events = many(4)
    stage(db, events, T0)
    await alerter(db, T0, alert_cap=2).fan_out()
    platform, clock = Platform(), Clock(T0)
    sent = 0
    for _ in range(10):  # per-channel pacing: one message a round
        sent += await dispatcher(db, FakeSender(platform, clock), clock).run_once()
        clock.advance(5)
    assert sent == 3
    *alerts, summary = platform.messages("C1")
    assert len(alerts) == 2 and all(a.actions for a in alerts)  # alerts carry their buttons
    key = next(r["event_key"] for r in db.table("outbox").rows_where("channel_id = 'C1'", order_by="id desc"))
    assert summary == more_reply(event_by_key(db, key))
    assert summary.title == "2 more changes in this update" and not summary.actions


async def test_a_fan_out_a_crash_cut_short_is_finished_by_the_first_poll_after_start_up(
        target: str, identity) -> None:
    import httpx

    from leaderwatch.bot.app import build_app
    from leaderwatch.bot.settings import Settings
    from tests.bot.test_poller import FakeSource, Site
    from tests.helpers import Clock

    path = target
    db = open_db(path)
    subscribe(db, "C1", rule="top_n")
    stage(db, many(3))  # the poll committed its events, then the process died before their outbox rows
    db.close()
    clock = Clock(T1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(Site(content={"/a.json": 304}))) as client:
        app = build_app(Settings(db_path=str(path)), client=client, sources=[FakeSource(identity, clock)],
                        clock=clock)
        result = await app.poller.poll(app.sources[0])  # nothing new upstream
        assert result.ok and result.changed == []
        assert outbox.depth(app.db) == {"pending": 3} and fanouts.waiting(app.db) == []
        app.db.close()


def test_every_kind_stored_only_to_be_delivered_is_kept_out_of_the_rules_events() -> None:
    from leaderwatch.bot.pipeline import drift, reports
    from leaderwatch.storage.events import MESSAGE_KINDS

    assert set(MESSAGE_KINDS) == {reports.KIND, drift.KIND, MORE}
