"""Replicas on one PostgreSQL database (issue 15 item 2, acceptance): two real `leaderwatch run` processes,
exactly one leads, both deliver from the outbox, and every row reaches the platforms exactly once, across
a `kill -9` of the leader in the middle of a 10,000-row delivery and across a rolling restart of both.

Real pieces throughout: `python -m leaderwatch run` (the composition root, the leader loop, the dispatcher,
the Slack and Discord senders) on the local PostgreSQL, in a schema of this test's own. Only Slack and
Discord are stood in for (tests/bot/fake_slack.py, tests/bot/fake_discord.py), served from a thread of the
test process, which counts what reached them (by delivery key) and in which order per channel.

The `[delivery]` rates are raised in the replicas' config (the fakes enforce no limit here), so the
deliveries take seconds; sources are all disabled (the leader polls nothing: the rows are queued by the
test through the storage API, events and outbox rows, as a fan-out writes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.sources.registry import source_names
from leaderwatch.storage import outbox
from leaderwatch.storage.db import Database, open_db, to_text
from leaderwatch.storage.events import save_events
from tests.conftest import new_postgres_schema

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent.parent
TAKEOVER_LIMIT = 15.0
"""Seconds issue 15 allows between the leader's death and another replica leading."""
SEND_TIMEOUT = 2.0
"""`[delivery] send_timeout` of the replicas: a killed replica's claims lapse this plus the lease margin
after they were made (storage/outbox.py `LEASE_MARGIN`)."""
BOARD = "aider/edit"


# --- the fake platforms, in a thread of their own -------------------------------------------------------

class Platforms:
    """Fake Slack and Discord served by an event loop in a thread (the test's own thread blocks freely)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-platforms", daemon=True)
        self.slack: Any = None
        self.discord: Any = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coro` on the fakes' loop; its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Platforms:
        from tests.bot.fake_discord import FakeDiscord
        from tests.bot.fake_slack import FakeSlack

        self.thread.start()

        async def start() -> None:
            self.slack = await FakeSlack().start()
            self.discord = await FakeDiscord().start()

        self.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self.slack is not None:
                await self.slack.stop()
            if self.discord is not None:
                await self.discord.stop()

        with contextlib.suppress(Exception):
            self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def delivered(self) -> dict[str, list[str]]:
        """Per channel, the alerts the platforms were asked to post, in order (`delivered_keys`)."""
        async def read() -> dict[str, list[str]]:
            return delivered_keys(self.slack, self.discord)

        return self.run(read())

    def reached(self, alerts: int) -> Callable[[], bool]:
        """A condition: the fakes have received `alerts` alerts."""
        return lambda: self.count() >= alerts

    def count(self) -> int:
        """Alerts the fakes show so far (cheap: to follow progress; `delivered` counts every request)."""
        async def read() -> int:
            return sum(len(posts) for posts in self.slack.channels.values()) + sum(
                len(messages) for messages in self.discord.messages.values())

        return self.run(read())


def delivered_keys(slack: Any, discord: Any) -> dict[str, list[str]]:
    """Per channel (`slack:C...`, `discord:N`), the delivery keys of the alerts the platforms were asked to
    post, in the order asked: every chat.postMessage call (its metadata names the key) and every Discord
    message POST (its nonce is derived from the key: `nonce:<nonce>` here, see `discord_nonces`). A second
    request for one alert counts twice, even where the fake (as Discord does with a repeated nonce) answers
    it with the message it already has."""
    out: dict[str, list[str]] = {}
    for call in slack.calls:
        if call.method != "chat.postMessage":
            continue
        metadata = call.params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        key = str(((metadata or {}).get("event_payload") or {}).get("delivery_key"))
        out.setdefault(f"slack:{call.params.get('channel')}", []).append(key)
    for request in discord.requests:
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "channels" and parts[2] == "messages":
            nonce = str((request.body or {}).get("nonce"))
            out.setdefault(f"discord:{parts[1]}", []).append(f"nonce:{nonce}")
    return out


def discord_nonces(keys: Sequence[str]) -> dict[str, str]:
    """`nonce:<nonce>` of each Discord alert's (first and only) message -> its delivery key."""
    from leaderwatch.bot.chat.discord_bot import nonce_of

    return {f"nonce:{nonce_of(key, 0)}": key for key in keys if "/discord/" in key}


# --- the replicas ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, slots: int = 16) -> Path:
    """Every source off (the leader polls nothing) and `[delivery]` fast enough for seconds, not minutes."""
    lines = [f"[sources.{name}]\nenabled = false\n" for name in sorted(source_names())]
    lines.append(f"[delivery]\nslots = {slots}\nsend_timeout = {SEND_TIMEOUT}\nchannel_interval = 0\n"
                 "discord_requests_per_second = 100000\nslack_messages_per_minute = 6000000\n"
                 "slack_updates_per_minute = 6000000\nslack_history_per_minute = 6000000\n")
    path = folder / "leaderwatch.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass
class Replica:
    """One `leaderwatch run` process (started again on the same port after a stop)."""

    name: str
    env: dict[str, str]
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> Replica:
        self.starts += 1
        env = {**self.env, "LEADERWATCH_HTTP_PORT": str(self.port)}
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen([sys.executable, "-m", "leaderwatch", "run"], env=env,
                                         cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def health(self) -> dict[str, Any] | None:
        """`/healthz` as JSON; None while it does not answer (starting, stopped)."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2.0)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = answer.json()
        return body

    def leads(self) -> bool:
        health = self.health()
        return bool(health and health.get("leader"))

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            health = self.health()
            if health is not None and health.get("replica", "").endswith(f":{self.pid}"):
                return health
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not healthy within {timeout:g} s:\n{self.tail()}")

    def kill(self) -> None:
        """`kill -9`: no shutdown, no confirmation of the sends in flight."""
        assert self.proc is not None
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 45.0) -> None:
        """SIGTERM, as a rolling restart stops a replica: it finishes (and confirms) its sends first."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not stop within {timeout:g} s:\n{self.tail()}") from None
        assert code == 0, f"{self.name} exited with {code}:\n{self.tail()}"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def replica_env(url: str, config: Path, platforms: Platforms) -> dict[str, str]:
    """The environment of a `leaderwatch run` against the fakes (nothing inherited that could redirect it)."""
    from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
    from tests.bot.fake_slack import BOT_TOKEN, SIGNING_SECRET

    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    return {**keep, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost", "LEADERWATCH_DB": url,
            "LEADERWATCH_CONFIG": str(config), "LEADERWATCH_SLACK_MODE": "http", "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "LEADERWATCH_SLACK_API_URL": platforms.slack.api_url,
            "DISCORD_TOKEN": DISCORD_TOKEN, "LEADERWATCH_DISCORD_API_URL": platforms.discord.api_url,
            "LEADERWATCH_DISCORD_GATEWAY_URL": platforms.discord.gateway_url}


def leaders(replicas: Sequence[Replica]) -> list[str]:
    return [r.name for r in replicas if r.leads()]


def wait_for(condition: Callable[[], object], timeout: float, message: str, replicas: Sequence[Replica] = (),
             every: float = 0.1) -> float:
    """Seconds until `condition()` holds; AssertionError with the replicas' last log lines after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            logs = "\n".join(f"--- {r.name}\n{r.tail()}" for r in replicas)
            raise AssertionError(f"{message}: not within {timeout:g} s\n{logs}")
        time.sleep(every)
    return time.monotonic() - start


# --- the rows --------------------------------------------------------------------------------------------

def slack_channels(n: int) -> list[str]:
    return [f"C{i:08d}" for i in range(n)]


def discord_channels(n: int) -> list[str]:
    return [str(960_000_000_000_000_000 + i) for i in range(n)]


def queue(db: Database, batch: str, events: int, channels: dict[str, list[str]], now: datetime) -> list[str]:
    """`events` events (models entering the top 10), each queued for every channel, as a fan-out writes
    them: the events stored, then the outbox rows, in delivery-key order. Their delivery keys."""
    made = [Event(kind="top_n", board=BOARD, at=now, rule="top_n", subject=f"{batch}-model-{i}",
                  model=f"{batch}-model-{i}", other=None, groups=(), rank_before=None, rank_after=7,
                  score_before=None, score_after=None, confidence="n/a",
                  message=f"{BOARD}: {batch}-model-{i} entered the top 10",
                  dedupe_key=dedupe_key("top_n", BOARD, f"{batch}-model-{i}", "in", now), value="in")
            for i in range(events)]
    stamp = to_text(now)
    rows: list[outbox.NewRow] = []
    for event in made:
        for platform, ids in channels.items():
            for channel in ids:
                rows.append((f"{event.dedupe_key}/{platform}/{channel}", event.dedupe_key, platform, channel,
                             "[]", None, None, outbox.POST, None, stamp))
    rows.sort(key=lambda r: r[0])
    with db.atomic():
        save_events(db, made, None, now)
        outbox.add_batch(db, rows)
    return [r[0] for r in rows]


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture
def pg_url() -> Iterator[str]:
    """A schema of this test's own on the local PostgreSQL (dropped after); skip without the server (fail
    under CI=true)."""
    with new_postgres_schema("replicas") as url:
        yield url


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    fakes = Platforms().start()
    yield fakes
    fakes.stop()


# --- the acceptance test ---------------------------------------------------------------------------------

FIRST_ROWS = (100, 50)
"""10,000 rows: 100 events, each to 50 Slack and 50 Discord channels (100 alerts per channel, in order)."""
SECOND_ROWS = (20, 50)
"""2,000 more during the rolling restart."""


def expected(db: Database) -> dict[str, list[str]]:
    """Per channel, the delivery keys of its rows in the order they must arrive (the outbox's id order)."""
    out: dict[str, list[str]] = {}
    for key, platform, channel in db.execute(
            "SELECT delivery_key, platform, channel_id FROM outbox ORDER BY id").fetchall():
        out.setdefault(f"{platform}:{channel}", []).append(str(key))
    return out


def check_exactly_once(db: Database, platforms: Platforms) -> int:
    """Every outbox row delivered, each asked of its platform exactly once, each channel's in order; how
    many."""
    want = expected(db)
    nonces = discord_nonces([k for keys in want.values() for k in keys])
    got = {channel: [nonces.get(k, k) for k in keys] for channel, keys in platforms.delivered().items()}
    counts = Counter(k for keys in got.values() for k in keys)
    doubled = {k: n for k, n in counts.items() if n > 1}
    rows = sum(len(keys) for keys in want.values())
    missing = rows - sum(1 for keys in want.values() for k in keys if k in counts)
    assert not doubled, f"{len(doubled)} alert(s) sent more than once, e.g. {sorted(doubled.items())[:3]}"
    assert missing == 0, f"{missing} of {rows} alert(s) never reached their platform"
    assert set(got) <= set(want), f"alerts in channels nothing was queued for: {sorted(set(got) - set(want))}"
    for channel, keys in want.items():
        assert got.get(channel) == keys, f"{channel}: alerts out of order"
    assert outbox.depth(db) == {"delivered": rows}, outbox.depth(db)
    return rows


def test_two_replicas_deliver_every_row_once_across_a_kill_and_a_rolling_restart(
        pg_url: str, platforms: Platforms, tmp_path: Path) -> None:
    started = time.monotonic()
    db = open_db(pg_url)
    env = replica_env(pg_url, write_config(tmp_path), platforms)
    replicas = [Replica("replica-1", env, tmp_path), Replica("replica-2", env, tmp_path)]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_healthy()
        wait_for(lambda: leaders(replicas), TAKEOVER_LIMIT, "a replica to lead", replicas)
        time.sleep(2.5)  # a leader loop step later: still exactly one
        assert len(leaders(replicas)) == 1, [r.health() for r in replicas]

        # 10,000 rows; the leader is killed with -9 in the middle of their delivery.
        events, per_platform = FIRST_ROWS
        channels = {"slack": slack_channels(per_platform), "discord": discord_channels(per_platform)}
        first = queue(db, "first", events, channels, datetime.now(UTC))
        assert len(first) == 10_000
        delivering = time.monotonic()
        wait_for(platforms.reached(2_000), 120, "2,000 alerts delivered", replicas, every=0.1)
        [leader] = [r for r in replicas if r.leads()]
        [other] = [r for r in replicas if r is not leader]
        killed_pid = leader.pid
        leader.kill()
        killed = time.monotonic()
        at_kill = platforms.count()
        takeover = wait_for(other.leads, TAKEOVER_LIMIT + 10, f"{other.name} to lead", replicas, every=0.05)
        print(f"\n{leader.name} killed (-9) after {at_kill} of 10,000 alerts; {other.name} led "
              f"{takeover:.2f} s later")
        assert takeover < TAKEOVER_LIMIT
        leader.start().wait_healthy()  # as its supervisor would: it delivers again, and does not lead
        assert not leader.leads()
        wait_for(lambda: outbox.depth(db) == {"delivered": len(first)}, 240, "the 10,000 rows delivered",
                 replicas, every=0.5)
        print(f"10,000 rows delivered in {time.monotonic() - delivering:.1f} s "
              f"({time.monotonic() - killed:.1f} s after the kill)")
        check_exactly_once(db, platforms)
        claimants = {str(r[0]) for r in db.execute("SELECT DISTINCT claimed_by FROM outbox").fetchall()}
        assert {f":{killed_pid}", f":{other.pid}"} <= {c[c.rindex(":"):] for c in claimants}, claimants

        # A rolling restart of both while 2,000 more rows are delivered.
        events, per_platform = SECOND_ROWS
        channels = {"slack": slack_channels(per_platform), "discord": discord_channels(per_platform)}
        second = queue(db, "second", events, channels, datetime.now(UTC))
        rolling = time.monotonic()
        for replica in replicas:
            wait_for(platforms.reached(platforms.count() + 100), 60, "delivery to go on", replicas)
            replica.terminate()
            replica.start().wait_healthy()
        left = len(first) + len(second) - platforms.count()
        wait_for(lambda: outbox.depth(db) == {"delivered": len(first) + len(second)}, 120,
                 "the rows delivered", replicas, every=0.5)
        rows = check_exactly_once(db, platforms)
        wait_for(lambda: len(leaders(replicas)) == 1, TAKEOVER_LIMIT, "one leader after the restarts",
                 replicas)
        print(f"rolling restart: {len(second):,} more rows delivered in {time.monotonic() - rolling:.1f} s "
              f"({left} still to send when both had restarted); {rows:,} rows in all, each once, in order "
              f"per channel; the test took {time.monotonic() - started:.0f} s")
    finally:
        for replica in replicas:
            replica.close()
        db.close()


# --- the claims underneath, on one database in this process ------------------------------------------------

@pytest.fixture
def pg_db(postgres_session_db: Database) -> Database:
    """This test process's PostgreSQL schema, emptied (conftest `postgres_session_db`)."""
    from tests.conftest import empty_postgres

    empty_postgres(postgres_session_db)
    return postgres_session_db


def two_rows(db: Database, now: datetime) -> list[int]:
    """One event queued for two Slack channels: the rows' ids, in channel order."""
    queue(db, "claims", 1, {"slack": ["C1", "C2"]}, now)
    return [int(r[0]) for r in db.execute("SELECT id FROM outbox ORDER BY channel_id").fetchall()]


def test_a_claim_never_waits_for_a_row_another_replica_is_claiming_and_takes_all_or_none(pg_db) -> None:
    import psycopg

    now = datetime.now(UTC).replace(microsecond=0)
    c1, c2 = two_rows(pg_db, now)
    a = outbox.Lease("host-a:1", now + timedelta(seconds=40))
    with psycopg.connect(pg_db.url) as other:  # another replica, in the middle of claiming row c1
        other.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (c1,))
        started = time.monotonic()
        assert outbox.claim(pg_db, c1, now, a) is False  # skipped, not waited for (lock_timeout is 10 s)
        assert outbox.claim_all(pg_db, [c1, c2], now, a) is False  # all or none: c2 is not claimed either
        assert time.monotonic() - started < 1.0
        assert outbox.item(pg_db, c2).status == "pending"  # type: ignore[union-attr]
    assert outbox.claim_all(pg_db, [c1, c2], now, a) is True
    assert outbox.claim(pg_db, c1, now, outbox.Lease("host-b:2", now + timedelta(seconds=40))) is False
    rows = pg_db.execute("SELECT status, attempts, claimed_by, claimed_until FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows.fetchall()] == [("sending", 1, "host-a:1", to_text(a.until))] * 2


def test_a_live_claim_is_left_alone_and_a_lapsed_one_is_taken_over_once(pg_db) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    c1, c2 = two_rows(pg_db, now)
    a = outbox.Lease("host-a:1", now + timedelta(seconds=40))
    assert outbox.claim(pg_db, c1, now, a)
    pg_db.execute("UPDATE outbox SET status = 'sending' WHERE id = ?", [c2])  # claimed before leases existed
    b = outbox.Lease("host-b:2", now + timedelta(seconds=60))
    [unleased] = outbox.lapsed(pg_db, now, b)
    assert (unleased.id, outbox.item(pg_db, c2).status) == (c2, "sending")  # type: ignore[union-attr]
    assert outbox.lapsed(pg_db, now + timedelta(seconds=39), b) == []  # a's lease is live; c2 is b's now
    assert [h for h, _ in outbox.ready_channels(pg_db, now, "slack")] == []  # both channels busy
    later = now + timedelta(seconds=41)
    c = outbox.Lease("host-c:3", later + timedelta(seconds=40))
    assert [r.id for r in outbox.lapsed(pg_db, later, c)] == [c1]  # a died: its claim lapsed
    assert outbox.lapsed(pg_db, later, outbox.Lease("host-d:4", later)) == []  # taken over once
    assert pg_db.execute("SELECT claimed_by FROM outbox WHERE id = ?", [c1]).fetchone() == ("host-c:3",)


def test_two_replicas_taking_over_at_once_never_split_one_message(pg_db) -> None:
    """Three rows of one channel in flight as one message (a digest), its replica dead: while replica c is
    part-way through taking them over (the middle row locked), replica b waits instead of taking the
    other two, and then finds them all c's."""
    import psycopg

    now = datetime.now(UTC).replace(microsecond=0)
    queue(pg_db, "digest", 3, {"slack": ["C1"]}, now)
    pg_db.execute("UPDATE outbox SET status = 'sending', claimed_by = 'host-a:1', claimed_until = ?",
                  [to_text(now - timedelta(seconds=1))])
    ids = [int(r[0]) for r in pg_db.execute("SELECT id FROM outbox ORDER BY id").fetchall()]
    b = outbox.Lease("host-b:2", now + timedelta(seconds=40))
    found: list[list[outbox.OutboxItem]] = []
    with psycopg.connect(pg_db.url) as c:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (outbox.TAKEOVER_LOCK,))
        c.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (ids[1],))
        sweep = threading.Thread(target=lambda: found.append(outbox.lapsed(pg_db, now, b)))
        sweep.start()
        sweep.join(0.5)
        assert sweep.is_alive() and found == []  # waiting for c's takeover, not taking rows 1 and 3
        c.execute("UPDATE outbox SET claimed_by = 'host-c:3', claimed_until = %s", (to_text(b.until),))
        c.commit()
    sweep.join(10)
    assert found == [[]]
    assert {r[0] for r in pg_db.execute("SELECT claimed_by FROM outbox").fetchall()} == {"host-c:3"}


def test_on_sqlite_every_row_in_flight_is_a_crash_left_over(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lw.db")
    now = datetime.now(UTC).replace(microsecond=0)
    c1, _ = two_rows(db, now)
    lease = outbox.Lease("host-a:1", now + timedelta(minutes=5))
    assert outbox.claim(db, c1, now, lease) and not outbox.claim(db, c1, now, lease)
    assert [r.id for r in outbox.lapsed(db, now, outbox.Lease("host-a:2", now))] == [c1]  # one `run` per file
    assert db.execute("SELECT claimed_by FROM outbox WHERE id = ?", [c1]).fetchone() == ("host-a:1",)
    db.close()


@pytest.mark.parametrize("crash", ["crash-after", "crash-before"])
async def test_a_replica_waits_out_the_claim_of_one_that_died_mid_send_then_checks_before_resending(
        pg_db, crash: str) -> None:
    from leaderwatch.bot.pipeline.delivery import Dispatcher
    from tests.bot.test_delivery import T0, URLS, FakeSender, Killed, Platform, overtake, subscribe
    from tests.bot.test_delivery import queue as queue_events
    from tests.helpers import Clock

    subscribe(pg_db, "C1")
    queue_events(pg_db, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0)

    def replica(name: str, sender: FakeSender) -> Dispatcher:
        return Dispatcher(pg_db, {"slack": sender}, clock, clock.sleep, URLS, jitter=lambda: 0.0,
                          send_timeout=30.0, replica=name, monotonic=lambda: clock.now.timestamp())

    with pytest.raises(Killed):  # replica a dies in the middle of its first send
        await replica("host-a:1", FakeSender(platform, clock, fail=[crash])).run_once()
    sender = FakeSender(platform, clock)
    b = replica("host-b:2", sender)
    clock.advance(30)
    assert await b.run_once() == 0  # a's claim is live: the channel is busy, its second alert waits
    assert (sender.checks, sender.attempts, outbox.depth(pg_db)) == ([], [], {"sending": 1, "pending": 1})
    clock.advance(11)  # past send_timeout + LEASE_MARGIN: a is gone
    assert await b.run_once() == 2  # found there (counted as delivered) or resent, then the second one
    assert len(sender.checks) == 1  # asked the platform once before resending
    assert [key for key, _ in platform.channels["C1"]] == [r["delivery_key"] for r in
                                                           pg_db.table("outbox").rows_where(order_by="id")]
    assert len(sender.attempts) == (1 if crash == "crash-after" else 2)  # resent only what was not there
    assert outbox.depth(pg_db) == {"delivered": 2}
    assert {str(r[0]) for r in pg_db.execute("SELECT claimed_by FROM outbox").fetchall()} == {"host-b:2"}


async def test_the_interval_between_two_messages_to_a_channel_holds_across_replicas(pg_db) -> None:
    from leaderwatch.bot.pipeline.delivery import Dispatcher, Pacing
    from tests.bot.test_delivery import T0, URLS, FakeSender, Platform, overtake, subscribe
    from tests.bot.test_delivery import queue as queue_events
    from tests.helpers import Clock

    subscribe(pg_db, "C1")
    queue_events(pg_db, [overtake(0), overtake(1, minutes=1)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = FakeSender(platform, clock)

    def replica(name: str) -> Dispatcher:
        return Dispatcher(pg_db, {"slack": sender}, clock, clock.sleep, URLS, jitter=lambda: 0.0,
                          pacing={"slack": Pacing(channel_interval=5.0)}, replica=name,
                          monotonic=lambda: clock.now.timestamp())

    # An interval longer than a round waits for (ROUND_WAIT): a sends the first alert, and its round ends.
    assert await replica("host-a:1").run_once() == 1
    clock.advance(2)
    assert await replica("host-b:2").run_once() == 0  # b leaves the channel alone until its turn
    clock.advance(3)
    assert await replica("host-b:2").run_once() == 1
    assert [when for when, _, _ in sender.attempts] == [T0, T0 + timedelta(seconds=5)]
    assert outbox.depth(pg_db) == {"delivered": 2}


def test_a_claim_stands_when_the_channels_next_row_cannot_be_made_to_wait(pg_db, caplog) -> None:
    import psycopg

    from leaderwatch.storage.postgres import PostgresDatabase

    now = datetime.now(UTC).replace(microsecond=0)
    queue(pg_db, "turn", 2, {"slack": ["C1"]}, now)
    first, second = [int(r[0]) for r in pg_db.execute("SELECT id FROM outbox ORDER BY id").fetchall()]
    quick = PostgresDatabase(pg_db.url, busy_timeout=0.3, max_size=1)  # gives up a lock wait in 0.3 s
    try:
        with psycopg.connect(pg_db.url) as other:  # something holds the channel's next row
            other.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (second,))
            lease = outbox.Lease("host-a:1", now + timedelta(seconds=40))
            assert outbox.claim_all(quick, [first], now, lease, timedelta(seconds=5)) is True
        assert outbox.item(pg_db, first).status == "sending"  # type: ignore[union-attr]
        assert outbox.item(pg_db, second).next_attempt_at == now  # type: ignore[union-attr]
        assert "could not make the channel's next alert wait its turn" in caplog.text
    finally:
        quick.close()


async def test_replicas_share_the_platforms_rates(pg_db, tmp_path: Path) -> None:
    from leaderwatch.bot.pipeline.delivery import Pacer, Pacing, Rate
    from leaderwatch.storage.leadership import Leadership, advisory_key

    key = advisory_key(f"leaderwatch-test-{os.getpid()}-{time.time_ns()}")
    a = Leadership(pg_db.url, key=key, replica="host-a:1")
    b = Leadership(pg_db.url, key=key, replica="host-b:2")
    try:
        assert await a.try_lead() and not await b.try_lead()  # both connected: one leads, one stands by
        assert outbox.dispatchers(pg_db) >= 2  # (other test processes' replicas on this server count too)
    finally:
        await a.release()
        await b.release()
    sqlite = open_db(tmp_path / "lw.db")
    assert outbox.dispatchers(sqlite) == 1
    sqlite.close()

    now = [0.0]
    pacer = Pacer({"discord": Pacing({"request": Rate(50.0, 10.0)})}, lambda: now[0])
    pacer.take("discord", ["request"] * 10)  # the burst
    assert pacer.wait("discord", ["request"]) == pytest.approx(1 / 50)
    pacer.share(2)  # two replicas send with the same bot token: 25 a second each, bursts of 5
    assert pacer.wait("discord", ["request"]) == pytest.approx(1 / 25)
    now[0] = 1.0  # refilled up to the burst of 5 (not 10): after 6 calls, 2 owed at 25 a second
    pacer.take("discord", ["request"] * 6)
    assert pacer.wait("discord", ["request"]) == pytest.approx(2 / 25)
    pacer.share(1)  # the other replica is gone: the whole rate again
    assert pacer.wait("discord", ["request"]) == pytest.approx(2 / 50)
