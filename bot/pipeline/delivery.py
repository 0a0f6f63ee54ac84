"""Delivering the outbox to the chat platforms: each alert once, in order, retried, never dropped.

The protocol per message: claim its rows (committed as `sending` before the platform call), send
with the rows' stable delivery key, confirm (`delivered`, with the platform's message id). A crash
between claim and confirm leaves `sending` rows; the next dispatcher asks the platform
(`Sender.already_delivered`) before resending.

Follow-ups (`outbox` actions): a `reply` goes in the thread of its story's first alert once that one
is delivered, and the `edit` queued after it rewrites the first alert with the story's updates. Both
go through the same claim, confirm and retry as posts; an edit is idempotent, so an interrupted one
is simply made again. A first alert someone deleted: the reply goes out as a message of its own
(and starts the thread of later follow-ups) and its edit is skipped.

Policies (numbers below, reasons in the docstrings of `retry_delay` and `Dispatcher`):
- retryable failures (429, 5xx, network) back off 5 s, 10 s, 20 s ... up to 15 min, plus up to 20 %
  jitter; a `retry_after` from the platform is honoured as given (plus up to 1 s), never earlier;
- a "channel gone" failure is retried too, at least a minute apart; the third in a row for one
  channel (no success between) disables its subscriptions and fails its remaining rows;
- any other permanent failure fails that one row and is logged.
Replicas (issue 15): on PostgreSQL every replica runs a dispatcher on the one outbox. Claims carry the
replica's id and a lease of `send_timeout` plus `outbox.LEASE_MARGIN` (storage/outbox.py), so a replica
leaves the rows another is sending alone (their channel waits: one message in flight per channel), and
every `LAPSED_EVERY` seconds takes over the rows whose lease has passed (their replica died mid-send),
asking the platform before resending them. On SQLite one dispatcher uses the file (the run lock of
`storage/db.py`), and the rows in flight at its start are the ones it recovers.

Pace (`Pacing`, one per platform, from the settings): a token bucket per API method (Discord's 50
requests a second per bot, Slack's method tiers) and a least interval between two messages to one
channel. A platform that counts its limits apart per scope has buckets per scope (a public Slack app:
per workspace, `pace_scope`), and a scope whose budget is spent holds up only its own channels. With
replicas (PostgreSQL) each keeps to 1/N of the rates, N the replicas delivering now (counted every
`LAPSED_EVERY` seconds): the platforms count per bot token. The interval between two messages to one
channel is kept in the outbox itself (a claim makes the channel's next row due one interval later), so
it holds when a channel's messages alternate replicas.
Nothing sleeps on them while holding a delivery slot: a channel that must wait its turn is
set aside and the slot goes to the next channel; a platform whose bucket is empty is skipped until it
refills; a chart whose upload budget is spent is left off its alert. A channel has one message in
flight at most; a send that runs long gives its slot back (it no longer counts as one of the `slots`)
and is cut off at `send_timeout`, then retried as an uncertain attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from leaderwatch.alerts.formatting import Reply, digest_reply, event_reply
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.stories import status, update_lines
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.commands.actions import sending_patterns, with_actions
from leaderwatch.bot.pipeline import alerter, drift, reports
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.http import backoff
from leaderwatch.storage import outbox
from leaderwatch.storage.db import DATABASE_ERRORS, Database, is_unreachable
from leaderwatch.storage.engine import replica_id
from leaderwatch.storage.events import event_by_key
from leaderwatch.storage.outbox import Lease, OutboxItem
from leaderwatch.storage.subscriptions import disable_channel, record_audit

logger = logging.getLogger(__name__)

T = TypeVar("T")

BASE_DELAY = 5.0
"""Seconds before the first retry of a retryable failure; doubles with each attempt."""
MAX_DELAY = 15 * 60.0
"""The longest wait between two attempts."""
JITTER = 0.2
"""Up to this fraction is added to a backoff delay, so channels failing together retry apart."""
RETRY_AFTER_JITTER = 1.0
"""Up to this many seconds are added to a platform's `retry_after` (as slack_sdk's retry handler does)."""
GONE_THRESHOLD = 3
"""Consecutive "channel gone" failures of one channel that disable its subscriptions."""
GONE_DELAY = 60.0
"""The shortest wait before retrying a channel that looked gone."""
RECHECK_MARGIN = timedelta(minutes=5)
"""How far before a row's creation `already_delivered` looks (platform clocks differ from ours)."""
SYSTEM_USER = "leaderwatch"
"""Who the audit trail names when the dispatcher disables a channel."""
REFRESH_SECONDS = 2.0
"""How often a long delivery round reads again which channels are ready (new rows, retries come due);
at most 5 % of the time goes to that read when the queue is very long."""
READ_LIMIT = 5000
"""The ready channels read at once per platform, oldest first (the next ones at the next read)."""
ROUND_WAIT = 1.0
"""A round waits for a platform's bucket or a channel's turn up to this long; longer, it ends."""
SLOW_AFTER = 2.0
"""A send running this long gives its delivery slot back (a slow channel cannot take every slot)."""
SLOW_PER_SLOT = 4
"""At most this many slow sends per slot run at once; beyond, a slow send keeps its slot."""
LAPSED_EVERY = 5.0
"""On a database replicas share, how often (seconds) a dispatcher looks for rows whose claim has lapsed
(a replica died mid-send) to check and resend them."""
UNTIMED_LEASE = timedelta(minutes=5)
"""A claim's lease when sends are not cut off (`send_timeout` None): longer than any send should take."""
STALE_RESERVATION = 0.5
"""Seconds after which the calls taken at a channel's admission no longer count for its message (it
took long to prepare, e.g. the first chart drawn): it needs the platform's budget again, or waits."""


class DeliveryError(Exception):
    """A send failed. `retryable`: 429, 5xx, network; `channel_gone`: channel deleted, bot removed.

    `reason` is shown in logs and stored on the row: adapters must never put tokens in it.
    """

    def __init__(self, reason: str, retryable: bool = False, retry_after: float | None = None,
                 channel_gone: bool = False, message_gone: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.retry_after, self.channel_gone = (
            reason, retryable, retry_after, channel_gone)
        self.message_gone = message_gone
        """The message to edit, or whose thread to reply in, was deleted (the channel is fine)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A platform's limit on one API method (or on all its requests): `per_second` on average, in
    bursts of up to `burst` calls."""

    per_second: float
    burst: float = 1.0


@dataclass(frozen=True, slots=True)
class Pacing:
    """How fast one platform is sent to: a `Rate` per API call name (the names a sender's `calls`
    lists; a call without a rate is not limited), and the least time between two messages to one
    channel (Slack: one message a second per channel; Discord: 5 per 5 s per channel)."""

    rates: Mapping[str, Rate] = field(default_factory=dict)
    channel_interval: float = 0.0


class Bucket:
    """A token bucket. Taking may overdraw it (a message needed more calls than its admission
    foresaw); the debt is paid by waiting longer before the next call."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate, self.tokens, self.stamp = rate, rate.burst, now

    def _fill(self, now: float) -> None:
        self.tokens = min(self.rate.burst, self.tokens + (now - self.stamp) * self.rate.per_second)
        self.stamp = now

    def wait(self, now: float, count: float = 1.0) -> float:
        """Seconds before `count` calls may be made (0: now)."""
        self._fill(now)
        missing = min(count, self.rate.burst) - self.tokens
        return max(0.0, missing / self.rate.per_second)

    def take(self, now: float, count: float = 1.0) -> None:
        """`count` calls are being made."""
        self._fill(now)
        self.tokens -= count


class Pacer:
    """The platforms' buckets and each channel's turn, asked without waiting (`wait`) and charged
    when calls go out (`take`)."""

    def __init__(self, pacing: Mapping[str, Pacing], monotonic: Callable[[], float]) -> None:
        self.pacing, self.monotonic = pacing, monotonic
        self.replicas = 1
        """How many replicas share the platforms' rates (`share`)."""
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        """(platform, scope, call) -> bucket: a scope is what the platform counts a rate over apart (a
        Slack workspace: its limits are per workspace); "" for the whole platform (one bot, one token)."""
        self._turns: dict[tuple[str, str], float] = {}

    def share(self, replicas: int) -> None:
        """Keep to 1/`replicas` of each rate (bursts too, at least one call): the platforms count per bot
        token, and every replica delivering from one database sends with the same tokens."""
        self.replicas = max(1, replicas)
        for (platform, _scope, call), bucket in self._buckets.items():
            rate = self._rate(platform, call)
            if rate is not None:
                bucket.rate = rate

    def _rate(self, platform: str, call: str) -> Rate | None:
        rate = self.pacing.get(platform, Pacing()).rates.get(call)
        if rate is None or rate.per_second <= 0:
            return None
        if self.replicas == 1:
            return rate
        return Rate(rate.per_second / self.replicas, max(1.0, rate.burst / self.replicas))

    def _bucket(self, platform: str, scope: str, call: str, now: float) -> Bucket | None:
        bucket = self._buckets.get((platform, scope, call))
        if bucket is None:
            rate = self._rate(platform, call)
            if rate is None:
                return None
            bucket = self._buckets[(platform, scope, call)] = Bucket(rate, now)
        return bucket

    def wait(self, platform: str, calls: Sequence[str], channel_id: str | None = None,
             scope: str = "") -> float:
        """Seconds before `calls` may be made in `scope` (and, with `channel_id`, before that channel's
        turn)."""
        now = self.monotonic()
        waits = [0.0]
        for call, count in Counter(calls).items():
            bucket = self._bucket(platform, scope, call, now)
            if bucket is not None:
                waits.append(bucket.wait(now, count))
        if channel_id is not None:
            waits.append(self._turns.get((platform, channel_id), 0.0) - now)
        return max(waits)

    def take(self, platform: str, calls: Sequence[str], channel_id: str | None = None,
             scope: str = "") -> None:
        """Charge `calls` in `scope` (and, with `channel_id`, start that channel's interval)."""
        now = self.monotonic()
        for call in calls:
            bucket = self._bucket(platform, scope, call, now)
            if bucket is not None:
                bucket.take(now)
        interval = self.pacing.get(platform, Pacing()).channel_interval
        if channel_id is not None and interval > 0:
            if len(self._turns) > 10_000:  # forget the channels whose turn has long come
                self._turns = {k: t for k, t in self._turns.items() if t > now}
            self._turns[(platform, channel_id)] = now + interval


class _Later(Exception):
    """Internal: the platform's budget is spent for a message that was slow to prepare; its channel
    waits `wait` seconds (without its slot)."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


Decorate = Callable[[str, str, Event, Reply], Awaitable[Reply]]
"""A hook adding to a single alert before it is sent: (platform, channel id, event, reply) -> reply."""


class Sender(Protocol):
    """What a chat adapter provides for delivery (Slack, Discord).

    A sender may also have `calls`: for each step (`post`, `reply`, `edit`, `image`, `check`) the
    names of the API calls it makes, which `Pacing.rates` limits; without it nothing is paced. And
    `pace_scope(channel_id)`: what the platform counts a channel's calls against apart (Slack: its
    workspace), each scope with rates of its own; without it the platform is one scope.
    """

    platform: str

    async def send(self, channel_id: str, reply: Reply, delivery_key: str,
                   thread: str | None = None) -> str | None:
        """Post `reply` to the channel, tagged with `delivery_key`, in the thread of the message
        `thread` when given; the platform's id of the (first) message posted, None when it cannot
        tell. `DeliveryError` on failure, with `message_gone` when `thread`'s message was deleted."""
        ...

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        """Make the message `message_ref` read `reply`; `DeliveryError(message_gone=True)` when it was
        deleted."""
        ...

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        """The id of the message tagged `delivery_key` posted in the channel (in `thread`'s thread when
        given) at or after `since`, or None.

        Slack looks for the key in recent messages' metadata, Discord for its reference in recent
        messages; a sender that cannot tell answers None (the row is resent).
        """
        ...


def retry_delay(attempts: int, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt; `jitter` is uniform in [0, 1).

    With `retry_after` (a 429's Retry-After) the platform said when: wait that, plus under a second
    so rate-limited channels do not all come back at once; never less. Otherwise 5 s doubling per
    attempt (5, 10, 20, 40 ...), capped at 15 minutes, plus up to 20 %: the first retries are quick
    enough for a blip, and a platform down for hours is asked four times an hour, not hammered.
    """
    if retry_after is not None:
        return max(0.0, retry_after) + RETRY_AFTER_JITTER * jitter
    return backoff(attempts, BASE_DELAY, MAX_DELAY, 1 + JITTER * jitter)


def digest_key(delivery_keys: Sequence[str]) -> str:
    """The key of one digest message: stable for the same rows, so a crash recovery can find it."""
    return hashlib.sha256(("digest|" + "|".join(delivery_keys)).encode()).hexdigest()[:32]


def _ceil_second(when: datetime) -> datetime:
    """Times are stored to the second; round up so a retry is never due before it was asked for."""
    if when.microsecond == 0:
        return when
    return when.replace(microsecond=0) + timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows that go out as one message: one alert, or a channel's due digest rows."""

    platform: str
    channel_id: str
    rows: tuple[OutboxItem, ...]
    digest: str | None

    @property
    def key(self) -> str:
        """The delivery key the platform sees."""
        if self.digest is None:
            return self.rows[0].delivery_key
        return digest_key([r.delivery_key for r in self.rows])

    @property
    def action(self) -> str:
        """`post`, `reply` or `edit` (a digest is a post)."""
        return self.rows[0].action

    @property
    def ids(self) -> list[int]:
        """The outbox row ids."""
        return [r.id for r in self.rows]

    @property
    def since(self) -> datetime:
        """The earliest time the message can have reached the platform (minus a clock margin)."""
        starts = [t for r in self.rows for t in (r.created_at, r.hold_until) if t is not None]
        start = max(starts) if starts else min(r.next_attempt_at for r in self.rows)
        return start - RECHECK_MARGIN

    def describe(self) -> str:
        """For log lines: where and what, never the message text or a token."""
        what = (f"{self.digest} digest of {len(self.rows)} alert(s)" if self.digest else
                 "alert" if self.action == outbox.POST else f"{self.action} of a follow-up")
        return f"{what} to {self.platform}:{self.channel_id} (key {self.key})"


def batches(rows: Sequence[OutboxItem], now: datetime) -> list[Batch]:
    """The messages to send now, per channel in order, from `outbox.channel_rows` rows (id order).

    A channel's rows are taken up to its first row that is not due (waiting to retry, or in
    flight), so a later alert never overtakes an earlier one. Due digest rows of a channel become
    one message, placed where its first row stood.
    """
    channels: dict[tuple[str, str], list[OutboxItem]] = {}
    for row in rows:
        channels.setdefault((row.platform, row.channel_id), []).append(row)
    out: list[Batch] = []
    for (platform, channel_id), queue in channels.items():
        order: list[tuple[str | None, list[OutboxItem]]] = []
        digests: dict[str, list[OutboxItem]] = {}
        for row in queue:
            if row.status != "pending" or row.next_attempt_at > now:
                break
            if row.digest is None:
                order.append((None, [row]))
            elif row.digest in digests:
                digests[row.digest].append(row)
            else:
                digests[row.digest] = [row]
                order.append((row.digest, digests[row.digest]))
        out += [Batch(platform, channel_id, tuple(group), digest) for digest, group in order]
    return out


def in_flight_batches(rows: Sequence[OutboxItem]) -> list[Batch]:
    """`sending` rows as the messages they were claimed for (a digest's rows are claimed together)."""
    out: list[Batch] = []
    digests: dict[tuple[str, str, str], list[OutboxItem]] = {}
    for row in rows:
        if row.digest is None:
            out.append(Batch(row.platform, row.channel_id, (row,), None))
        else:
            digests.setdefault((row.platform, row.channel_id, row.digest), []).append(row)
    out += [Batch(p, c, tuple(group), d) for (p, c, d), group in digests.items()]
    return out


class Dispatcher:
    """Delivers due outbox rows through the platforms' senders.

    Permanent failures: a "channel gone" answer is not trusted at once. Slack's channel_not_found
    or not_in_channel and Discord's Unknown Channel or Missing Access also come from fixable causes
    (a token of another workspace after a redeploy, the bot re-invited, a permission edit, a guild
    outage), while disabling throws away the channel's queued alerts and needs someone to subscribe
    again. So the channel is retried at least a minute apart, and only the third such failure in
    a row (no success in between) disables it: about two minutes, costing two extra API calls for
    a channel that is really gone. The count lives in memory; a restart starts it again, which
    only delays the decision.
    """

    def __init__(self, db: Database, senders: Mapping[str, Sender], clock: Callable[[], datetime],
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 board_urls: Mapping[str, str] | None = None, *,
                 jitter: Callable[[], float] = random.random, concurrency: int = 4,
                 metrics: Metrics | None = None, decorate: Decorate | None = None,
                 suites: Suites = BUILT_IN, pacing: Mapping[str, Pacing] | None = None,
                 send_timeout: float | None = None, slow_after: float = SLOW_AFTER,
                 monotonic: Callable[[], float] = time.monotonic, replica: str | None = None) -> None:
        self.db, self.senders, self.clock, self.sleep = db, senders, clock, sleep
        self.replica = replica or replica_id()
        """Who this dispatcher's claims name (`host:pid`, as `/healthz` calls the replica)."""
        self.suites = suites
        self.metrics = metrics
        self.decorate = decorate
        self.board_urls = board_urls or {}
        self.jitter = jitter
        self.slots = max(1, concurrency)
        self.send_timeout, self.slow_after, self.monotonic = send_timeout, slow_after, monotonic
        self.pacer = Pacer(pacing or {}, monotonic)
        self._recovered = False
        self._recovered_at: float | None = None
        self._gone: dict[tuple[str, str], int] = {}
        # Keys whose last attempt the platform certainly refused (429, channel gone, recovered as
        # missing): resent without asking. Any other retry (5xx, timeout) may have landed, so
        # `already_delivered` is asked first. Lost on restart, which only costs a check.
        self._refused: set[str] = set()
        self._no_sender: set[str] = set()
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None
        # The channels ready to send, per platform and scope, oldest head row first; those waiting their turn
        # (by when); and every channel in one of these or in flight (never twice).
        self._ready: dict[tuple[str, str], list[tuple[int, str]]] = {}
        """(platform, scope) -> its channels ready to send, oldest head first (`Pacer` on scopes)."""
        self._waiting: list[tuple[float, int, str, str]] = []
        self._queued: set[tuple[str, str]] = set()
        self._read_at: float | None = None
        self._read_cost = 0.0
        self._dirty = True
        self.next_try: float | None = None
        """Seconds until the pace lets the next message go, when the last round ended waiting for it."""

    def wake(self) -> None:
        """New rows were queued: deliver them now rather than at the next interval."""
        self._dirty = True
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver due rows every `interval` seconds (or when woken, or when the pace lets the next
        message go) until `stop` is set."""
        self._stop = stop
        unreachable = False  # said once per outage of the database server, not every round
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception as exc:  # noqa: BLE001 - a database hiccup must not end delivery for good
                    if not is_unreachable(exc):
                        logger.exception("delivery round failed; trying again in %.0f s", interval)
                    elif not unreachable:
                        logger.warning("delivery paused: %s; trying again every %.0f s, nothing is lost",
                                       exc, interval)
                    unreachable = unreachable or is_unreachable(exc)
                    self.next_try = None
                else:
                    if unreachable:
                        logger.info("delivery resumed: the database answers again")
                    unreachable = False
                await self._pause(stop, interval if self.next_try is None else min(interval, self.next_try))
        finally:
            self._stop = None

    async def _pause(self, stop: asyncio.Event, interval: float) -> None:
        waits = [asyncio.ensure_future(self.sleep(interval)), asyncio.ensure_future(stop.wait()),
                 asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self._wake.clear()

    async def run_once(self) -> int:
        """Deliver everything due now that the platforms' pace lets go; how many alerts (rows) were
        delivered. A round that has only paced channels left waits for them up to `ROUND_WAIT`."""
        delivered = 0
        if self._recovery_due():
            delivered += await self.recover()
        self.next_try = None
        self._read(force=True)
        running: dict[asyncio.Task[int], float] = {}  # task -> when it started (monotonic)
        slow: set[asyncio.Task[int]] = set()
        try:
            while self._stop is None or not self._stop.is_set():
                if self._lapse_due():  # a long round on a shared database: another replica may have died
                    delivered += await self.recover()
                self._read()
                wait = self._start(running, slow)
                if running:
                    now = self.monotonic()
                    marks = [start + self.slow_after - now for t, start in running.items() if t not in slow]
                    # Back when a task ends, a send turns slow, the pace lets one go, or it is time to read.
                    timeout = min(w for w in (wait, *marks, REFRESH_SECONDS) if w is not None)
                    done, _ = await asyncio.wait(set(running), timeout=max(timeout, 0.001),
                                                 return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        running.pop(task)
                        slow.discard(task)
                        delivered += task.result()
                    self._mark_slow(running, slow)
                elif wait is not None and wait <= ROUND_WAIT:
                    await self.sleep(wait)
                else:
                    self.next_try = wait
                    break
            # Stopping: the sends in flight finish (and are confirmed) before the round ends.
            delivered += sum(await asyncio.gather(*running))
            running.clear()
        finally:
            if running:  # the round itself was cancelled: so are its sends (recovered at the next start)
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        return delivered

    def _read(self, force: bool = False) -> None:
        """Add the channels whose oldest row is due (and not queued or in flight) to the ready heaps:
        the oldest `READ_LIMIT` of each platform (a platform's backlog never hides another's)."""
        if not force and not self._dirty and self._read_at is not None and \
                self.monotonic() - self._read_at < max(REFRESH_SECONDS, 20 * self._read_cost):
            return
        self._dirty = False
        start = self._read_at = self.monotonic()
        now = self.clock()
        for platform in outbox.waiting_platforms(self.db) - set(self.senders):
            self._sender(platform)  # says once that no adapter runs for it
        for platform in self.senders:
            for head, channel_id in outbox.ready_channels(self.db, now, platform, READ_LIMIT):
                if (platform, channel_id) not in self._queued:
                    self._queued.add((platform, channel_id))
                    self._make_ready(platform, head, channel_id)
        self._read_cost = self.monotonic() - start  # a large queue is read less often

    def _mark_slow(self, running: dict[asyncio.Task[int], float], slow: set[asyncio.Task[int]]) -> None:
        """Sends running longer than `slow_after` stop counting as slots (up to a cap)."""
        now = self.monotonic()
        for task, start in running.items():
            if task not in slow and now - start >= self.slow_after and len(slow) < SLOW_PER_SLOT * self.slots:
                slow.add(task)

    def _scope(self, platform: str, channel_id: str) -> str:
        """What the platform counts a channel's calls against: its sender's `pace_scope` (a Slack
        workspace, whose limits are its own), else "" (the whole platform)."""
        scope_of = getattr(self.senders.get(platform), "pace_scope", None)
        return str(scope_of(channel_id)) if scope_of is not None else ""

    def _make_ready(self, platform: str, head: int, channel_id: str) -> None:
        lane = (platform, self._scope(platform, channel_id))
        heapq.heappush(self._ready.setdefault(lane, []), (head, channel_id))

    def _start(self, running: dict[asyncio.Task[int], float], slow: set[asyncio.Task[int]]) -> float | None:
        """Start a channel's delivery in each free slot, platforms (and, within one, its scopes: Slack's
        workspaces) in turn, oldest head first, as the pace allows; the seconds until the pace lets the
        next one go (None: nothing is waiting). A scope whose budget is spent waits without holding up
        the others."""
        now = self.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            _, head, platform, channel_id = heapq.heappop(self._waiting)
            self._make_ready(platform, head, channel_id)
        waits: list[float] = [self._waiting[0][0] - now] if self._waiting else []
        blocked: set[tuple[str, str]] = set()
        while len(running) - len(slow) < self.slots:
            started = False
            for lane, heap in self._ready.items():
                if lane in blocked or not heap or len(running) - len(slow) >= self.slots:
                    continue
                platform, scope = lane
                wait = self.pacer.wait(platform, self._calls(platform, outbox.POST), scope=scope)
                if wait > 0:
                    blocked.add(lane)
                    waits.append(wait)
                    continue
                head, channel_id = heapq.heappop(heap)
                turn = self.pacer.wait(platform, (), channel_id)
                if turn > 0:
                    heapq.heappush(self._waiting, (now + turn, head, platform, channel_id))
                    waits.append(turn)
                    continue
                # Its first message's calls are taken now, so the next admissions see them gone.
                reserved = self._calls(platform, outbox.POST)
                self.pacer.take(platform, reserved, scope=scope)
                task = asyncio.ensure_future(self._deliver_channel(platform, channel_id, reserved, now))
                running[task] = self.monotonic()
                started = True
            if not started and all(lane in blocked or not h for lane, h in self._ready.items()):
                break
        return min(waits) if waits else None

    def _calls(self, platform: str, step: str) -> tuple[str, ...]:
        """The API calls the platform's sender makes for a step (`post`, `reply`, `edit`, `image`,
        `check`); none when it does not say."""
        sender = self.senders.get(platform)
        calls: Mapping[str, Sequence[str]] = getattr(sender, "calls", None) or {}
        return tuple(calls.get(step, ()))

    def lease(self, now: datetime) -> Lease:
        """The lease of a claim made `now`: it lapses `send_timeout` (the longest a send may take) and
        `outbox.LEASE_MARGIN` later."""
        runs = timedelta(seconds=self.send_timeout) if self.send_timeout is not None else UNTIMED_LEASE
        return Lease(self.replica, now + runs + outbox.LEASE_MARGIN)

    def _recovery_due(self) -> bool:
        """Whether a round starts by looking for rows left in flight: until those found at start are all
        resolved, and then as `_lapse_due` says."""
        return not self._recovered or self._lapse_due()

    def _lapse_due(self) -> bool:
        """On a database replicas share, whether to look for lapsed claims (a replica died mid-send) again:
        every `LAPSED_EVERY` seconds, in a long round too."""
        return outbox.shared(self.db) and (
            self._recovered_at is None or self.monotonic() - self._recovered_at >= LAPSED_EVERY)

    def _share_pace(self) -> None:
        """On a database replicas share, keep to this replica's share of the platforms' rates (they count
        per bot token): 1/N of `[delivery]` with N replicas delivering."""
        try:
            replicas = outbox.dispatchers(self.db)
        except DATABASE_ERRORS as exc:  # the count is a refinement: delivery goes on at the last share
            logger.warning("cannot count the replicas delivering (%s); keeping 1/%d of the [delivery] rates",
                           exc, self.pacer.replicas)
            return
        if replicas != self.pacer.replicas:
            self.pacer.share(replicas)
            if replicas == 1:
                logger.info("this replica alone delivers from this database now: it keeps to the whole "
                            "[delivery] rates")
            else:
                logger.info("%d replicas deliver from this database: this one keeps to 1/%d of the "
                            "[delivery] rates (the platforms count per bot token)", replicas, replicas)

    async def recover(self) -> int:
        """Resolve rows left `sending` by a crash: delivered if the platform has them, else pending. On a
        database replicas share, only rows whose claim has lapsed, taken over first (`outbox.lapsed`).

        An edit is not looked for: making it again changes nothing, so it is simply pending again.
        """
        found = 0
        unresolved = False
        if outbox.shared(self.db):
            self._recovered_at = self.monotonic()
            self._share_pace()
            now = self.clock()
            # Only the platforms this replica sends to: another replica may run the others.
            taken = sorted((row for platform in self.senders
                            for row in outbox.lapsed(self.db, now, self.lease(now), platform)),
                           key=lambda row: row.id)
            if taken:
                logger.info("taking over %d alert(s) whose sender stopped mid-send (claim lapsed): checking "
                            "each channel before resending", len(taken))
        else:
            taken = outbox.in_flight(self.db)
        for batch in in_flight_batches(taken):
            sender = self._sender(batch.platform)
            if sender is None:
                unresolved = True
                continue
            if batch.action == outbox.EDIT:
                outbox.mark_retry_all(self.db, batch.ids, self.clock(), "interrupted; editing again")
                continue
            try:
                self.pacer.take(batch.platform, self._calls(batch.platform, "check"),
                                scope=self._scope(batch.platform, batch.channel_id))
                there = await self._find(sender, batch, self._thread_of(batch))
            except Exception as exc:  # noqa: BLE001 - keep the rows in flight and ask again next round
                logger.warning("cannot check %s after a restart (%s); will ask again", batch.describe(),
                               _reason(exc))
                unresolved = True
                continue
            now = self.clock()
            if there is not None:
                outbox.mark_delivered_all(self.db, batch.ids, now, there or None)
                found += len(batch.rows)
                logger.info("recovered %s: the platform has it, not resending", batch.describe())
            else:
                outbox.mark_retry_all(self.db, batch.ids, now, "interrupted before confirmation; resending")
                self._refused.add(batch.key)
                logger.info("recovered %s: the platform does not have it, resending", batch.describe())
        self._recovered = not unresolved
        if taken:
            self._dirty = True  # their channels may be ready again
        return found

    async def _find(self, sender: Sender, batch: Batch, thread: str | None) -> str | None:
        """The platform's id of the batch's message if it is there ("" when there without an id)."""
        try:
            there = await sender.already_delivered(batch.channel_id, batch.key, batch.since, thread)
        except DeliveryError as exc:
            if exc.message_gone:  # the thread's first message is deleted: the reply is not in it
                return None
            raise
        return there

    def _parent(self, batch: Batch) -> OutboxItem | None:
        parent_id = batch.rows[0].parent_id
        return outbox.item(self.db, parent_id) if parent_id is not None else None

    def _thread_of(self, batch: Batch) -> str | None:
        """The message a reply or an edit is about (its story's first alert), once delivered."""
        if batch.action == outbox.POST:
            return None
        parent = self._parent(batch)
        return parent.message_ref if parent is not None and parent.status == "delivered" else None

    def _sender(self, platform: str) -> Sender | None:
        sender = self.senders.get(platform)
        if sender is None and platform not in self._no_sender:
            self._no_sender.add(platform)
            logger.warning("no %s adapter is running: its alerts stay queued until one is", platform)
        return sender

    async def _deliver_channel(self, platform: str, channel_id: str, reserved: Sequence[str] = (),
                               reserved_at: float = 0.0) -> int:
        """Send a channel's due messages in order, while its pace lets them go at once; a channel that
        must wait its turn goes back to wait for it, without holding the slot."""
        delivered = 0
        key = (platform, channel_id)
        later: tuple[float, int] | None = None
        try:
            now = self.clock()
            for batch in batches(outbox.channel_rows(self.db, platform, channel_id, now), now):
                needed = Counter(self._calls(platform, batch.action)) - Counter(reserved)
                turn = self.pacer.wait(platform, list(needed.elements()), channel_id,
                                       self._scope(platform, channel_id))
                if turn > 0:
                    later = (self.monotonic() + turn, batch.rows[0].id)
                    break
                try:
                    sent, go_on = await self._deliver(batch, reserved, reserved_at)
                except _Later as wait:
                    later = (self.monotonic() + wait.wait, batch.rows[0].id)
                    break
                reserved = ()
                delivered += sent
                if not go_on:
                    break
        finally:
            if later is not None:
                heapq.heappush(self._waiting, (later[0], later[1], platform, channel_id))
            else:
                self._queued.discard(key)
        return delivered

    def _events(self, rows: Sequence[OutboxItem]) -> list[Event]:
        events: list[Event] = []
        for row in rows:
            event = event_by_key(self.db, row.event_key)
            if event is None:
                logger.error("outbox row %d names event %s, which is not stored", row.id, row.event_key)
            else:
                events.append(event)
        return events

    def _render(self, batch: Batch) -> Reply | None:
        events = self._events(batch.rows)
        if not events:
            return None
        if batch.digest is not None:
            return digest_reply(events, batch.digest)
        event = events[0]
        if event.kind == reports.KIND:
            return reports.report_reply(event)
        if event.kind == drift.KIND:
            return drift.ops_reply(event)
        if event.kind == alerter.MORE:
            return alerter.more_reply(event)
        if batch.action == outbox.EDIT:
            return self._render_edit(batch)
        return with_actions(event_reply(event, self.board_urls.get(event.board, "")), event,
                            self._patterns(batch, event))

    def _render_edit(self, batch: Batch) -> Reply | None:
        """The story's first alert as it stands after the follow-ups queued up to this edit."""
        parent = self._parent(batch)
        roots = self._events([parent]) if parent is not None else []
        if parent is None or not roots:
            return None
        root = roots[0]
        follow_ups = self._events(outbox.follow_ups(self.db, parent.id, batch.rows[0].id))
        reply = event_reply(root, self.board_urls.get(root.board, ""), update_lines(root, follow_ups),
                            status(root, follow_ups))
        return with_actions(reply, root, self._patterns(batch, root))

    def _patterns(self, batch: Batch, event: Event) -> list[str]:
        return sending_patterns(self.db, self.suites, batch.platform, batch.channel_id, event)

    async def _deliver(self, batch: Batch, reserved: Sequence[str] = (),
                       reserved_at: float = 0.0) -> tuple[int, bool]:
        """Send one message; (rows delivered, whether the channel's next messages may follow).
        `reserved`: calls already taken from the platform's buckets for it (at `reserved_at`, its
        channel's admission); `_Later` when that was too long ago and the budget is spent now."""
        sender = self.senders[batch.platform]
        stored = outbox.item(self.db, batch.ids[0]) if batch.action == outbox.EDIT else None
        if stored is not None and stored.status != "pending":
            return 0, True  # skipped meanwhile: its reply went out as a message of its own
        parent = self._parent(batch) if batch.action != outbox.POST else None
        if parent is not None and parent.status in ("pending", "sending"):
            return 0, False  # its story's first alert has not gone out yet (held, or retrying): after it
        thread = parent.message_ref if parent is not None and parent.status == "delivered" else None
        if batch.action == outbox.EDIT and not thread:
            outbox.mark_skipped(self.db, batch.ids[0], "the first alert of the story was not delivered, or "
                                "platform gave no message id: nothing to edit")
            return 0, True
        if batch.action == outbox.REPLY and not thread:
            # The first alert failed or is gone: this follow-up starts the story's thread itself.
            outbox.become_root(self.db, batch.ids[0], batch.rows[0].parent_id or 0)
            return await self._deliver(self._reread(batch))
        reply = self._render(batch)
        if reply is None:
            outbox.mark_failed_all(self.db, batch.ids, "event not stored")
            self._count(batch, "permanent")
            return 0, True
        if self.decorate is not None and batch.digest is None and batch.action == outbox.POST:
            reply = await self._decorated(batch, reply)
        attempts = max(r.attempts for r in batch.rows)
        if reserved and self.monotonic() - reserved_at > STALE_RESERVATION:
            # Taken long ago: messages that were slow to prepare must not all go out in one burst.
            reserved = ()
            wait = self.pacer.wait(batch.platform, self._calls(batch.platform, batch.action),
                                   scope=self._scope(batch.platform, batch.channel_id))
            if wait > 0:
                raise _Later(wait)
        now = self.clock()
        spacing = timedelta(seconds=self.pacer.pacing.get(batch.platform, Pacing()).channel_interval)
        if not await self._committed(outbox.claim_all, self.db, batch.ids, now, self.lease(now), spacing):
            return 0, False  # taken meanwhile (by another replica, on a shared database)
        calls = Counter(self._calls(batch.platform, batch.action)) - Counter(reserved)
        self.pacer.take(batch.platform, list(calls.elements()), batch.channel_id,
                        self._scope(batch.platform, batch.channel_id))
        try:
            ref = await self._timed(self._send(sender, batch, reply, thread, attempts), batch)
        except DeliveryError as exc:
            if exc.message_gone and batch.action == outbox.EDIT:
                outbox.mark_skipped(self.db, batch.ids[0], f"the first alert was deleted: {exc.reason}")
                logger.info("%s: the first alert was deleted, nothing to edit", batch.describe())
                return 0, True
            if exc.message_gone and batch.action == outbox.REPLY:
                # Someone deleted the first alert: the follow-up goes out on its own and takes its place.
                logger.info("%s: the first alert was deleted; posting the follow-up as a new message",
                            batch.describe())
                outbox.become_root(self.db, batch.ids[0], batch.rows[0].parent_id or 0)
                outbox.mark_retry_all(self.db, batch.ids, self.clock(), "the first alert was deleted")
                self._refused.add(batch.key)
                return await self._deliver(self._reread(batch))
            return 0, self._failed(batch, exc, attempts + 1)
        except Exception as exc:  # noqa: BLE001 - an adapter bug: keep the row, retry, log the traceback
            logger.exception("sending %s raised", batch.describe())
            return 0, self._failed(batch, DeliveryError(_reason(exc), retryable=True), attempts + 1)
        except BaseException:
            # Cancelled mid-call: the platform may have it; the next round checks before resending.
            self._recovered = False
            raise
        await self._committed(outbox.mark_delivered_all, self.db, batch.ids, self.clock(), ref)
        self._gone.pop((batch.platform, batch.channel_id), None)
        self._refused.discard(batch.key)
        logger.info("delivered %s, attempt %d", batch.describe(), attempts + 1,
                    extra=_delivery_fields(batch, "delivered", attempts + 1))
        self._count(batch, None)
        return (len(batch.rows) if batch.action != outbox.EDIT else 0), True

    async def _committed(self, write: Callable[..., T], *args: object) -> T:
        """A claim or a confirmation, whose commit waits for the disk: on a database replicas share (a
        PostgreSQL pool, used from any thread) in a worker thread, so that the other channels' sends go on
        meanwhile; on SQLite (one connection) here. Cancelled meanwhile, the write still completes (a
        claim made so lapses and is taken over: see `recover`)."""
        if outbox.shared(self.db):
            return await asyncio.to_thread(write, *args)
        return write(*args)

    def _reread(self, batch: Batch) -> Batch:
        """The batch with its rows as stored now (after `become_root` changed them)."""
        return replace(batch, rows=tuple(outbox.item(self.db, r.id) or r for r in batch.rows))

    async def _timed(self, call: Awaitable[str | None], batch: Batch) -> str | None:
        """`call`, cut off after `send_timeout` seconds: then an uncertain failure (it may have landed),
        retried after checking, like a 5xx."""
        if self.send_timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, self.send_timeout)
        except TimeoutError:
            raise DeliveryError(f"no answer from {batch.platform} in {self.send_timeout:g} s",
                                retryable=True) from None

    async def _send(self, sender: Sender, batch: Batch, reply: Reply, thread: str | None,
                    attempts: int) -> str | None:
        """One platform call for the batch (after checking for an uncertain earlier attempt); the
        message's id when known."""
        if batch.action == outbox.EDIT:
            assert thread is not None
            await sender.edit(batch.channel_id, thread, reply, batch.key)
            return None
        if attempts and batch.key not in self._refused:
            self.pacer.take(batch.platform, self._calls(batch.platform, "check"),
                            scope=self._scope(batch.platform, batch.channel_id))
            there = await self._find(sender, batch, thread)
            if there is not None:
                logger.info("%s was already there after an uncertain attempt; not resending",
                            batch.describe())
                return there or None
        return await sender.send(batch.channel_id, reply, batch.key, thread)

    async def _decorated(self, batch: Batch, reply: Reply) -> Reply:
        """The `decorate` hook's reply (e.g. with a chart); the plain alert when the hook fails."""
        event = event_by_key(self.db, batch.rows[0].event_key)
        if event is None or self.decorate is None:
            return reply
        decorated = reply
        try:
            decorated = await self.decorate(batch.platform, batch.channel_id, event, reply)
        except Exception:  # noqa: BLE001 - an extra must never hold the alert back
            logger.exception("decorating %s failed; sending it plain", batch.describe())
        if decorated.image is None:
            return decorated
        uploads, scope = self._calls(batch.platform, "image"), self._scope(batch.platform, batch.channel_id)
        if self.pacer.wait(batch.platform, uploads, scope=scope) > 0:
            # The upload budget is spent (Slack's files methods are slower than its messages): the alert
            # goes now without its chart rather than wait for it.
            logger.debug("%s goes without its chart: the upload rate is used up", batch.describe())
            if self.metrics is not None:
                self.metrics.chart_skipped(batch.platform)
            return replace(decorated, image=None)
        self.pacer.take(batch.platform, uploads, scope=scope)  # taken now, just before the upload
        return decorated

    def _count(self, batch: Batch, failure: str | None) -> None:
        """Metrics: one message delivered (`failure` None) or one failed attempt, by reason."""
        if self.metrics is None:
            return
        if failure is None:
            self.metrics.delivered(batch.platform)
        else:
            self.metrics.delivery_failed(batch.platform, failure)

    def _failed(self, batch: Batch, exc: DeliveryError, attempt: int) -> bool:
        """Record a failed attempt; whether the channel's next messages may still go this round."""
        now = self.clock()
        channel = (batch.platform, batch.channel_id)
        self._count(batch, "channel_gone" if exc.channel_gone else
                    "retryable" if exc.retryable else "permanent")
        if exc.channel_gone:
            count = self._gone.get(channel, 0) + 1
            self._gone[channel] = count
            if count >= GONE_THRESHOLD:
                self._disable(batch, exc, count)
                return False
            delay = max(GONE_DELAY, retry_delay(attempt, exc.retry_after, self.jitter()))
            self._retry(batch, now + timedelta(seconds=delay), f"channel gone ({count}/{GONE_THRESHOLD}): "
                        f"{exc.reason}")
            self._refused.add(batch.key)
            logger.warning("%s failed (channel gone, %d/%d in a row): %s; retrying in %.0f s",
                           batch.describe(), count, GONE_THRESHOLD, exc.reason, delay,
                           extra=_delivery_fields(batch, "channel_gone", attempt))
            return False
        if exc.retryable:
            delay = retry_delay(attempt, exc.retry_after, self.jitter())
            self._retry(batch, now + timedelta(seconds=delay), exc.reason)
            if exc.retry_after is not None:
                self._refused.add(batch.key)  # rate limited: the platform refused it, nothing to check
            else:
                self._refused.discard(batch.key)
            logger.warning("%s failed (attempt %d): %s; retrying in %.1f s", batch.describe(), attempt,
                           exc.reason, delay, extra=_delivery_fields(batch, "retry", attempt))
            return False
        outbox.mark_failed_all(self.db, batch.ids, exc.reason)
        self._refused.discard(batch.key)
        logger.error("%s failed permanently: %s; giving up on it", batch.describe(), exc.reason,
                     extra=_delivery_fields(batch, "failed", attempt))
        return True

    def _retry(self, batch: Batch, when: datetime, reason: str) -> None:
        outbox.mark_retry_all(self.db, batch.ids, _ceil_second(when), reason)

    def _disable(self, batch: Batch, exc: DeliveryError, count: int) -> None:
        """The channel is gone: disable its subscriptions (with the reason) and fail its queued rows."""
        now = self.clock()
        reason = f"{batch.platform} channel unreachable ({count} failures in a row): {exc.reason}"
        with self.db.atomic():
            subscriptions = disable_channel(self.db, batch.platform, batch.channel_id, reason, now)
            failed = outbox.fail_channel(self.db, batch.platform, batch.channel_id, reason)
            record_audit(self.db, now, batch.platform, batch.channel_id, SYSTEM_USER, SYSTEM_USER,
                         "disable", reason)
        self._gone.pop((batch.platform, batch.channel_id), None)
        logger.error("%s failed: %s; disabled %d subscription(s) of %s:%s and gave up on %d alert(s)",
                     batch.describe(), exc.reason, subscriptions, batch.platform, batch.channel_id, failed)


def _delivery_fields(batch: Batch, outcome: str, attempt: int) -> dict[str, object]:
    """The fields of a delivery's log line (JSON logs carry them as keys)."""
    return {"platform": batch.platform, "channel": batch.channel_id, "delivery_key": batch.key,
            "outcome": outcome, "attempt": attempt, "alerts": len(batch.rows)}


def _reason(exc: BaseException) -> str:
    """An exception as a short reason (its type and message; adapters keep tokens out of both)."""
    return f"{type(exc).__name__}: {exc}"[:300]
