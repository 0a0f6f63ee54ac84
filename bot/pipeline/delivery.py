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
One dispatcher per database (the single-writer rule of `storage/db.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from leaderwatch.alerts.formatting import Reply, digest_reply, event_reply
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.stories import status, update_lines
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.commands.actions import sending_patterns, with_actions
from leaderwatch.bot.pipeline import drift, reports
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.http import backoff
from leaderwatch.storage import outbox
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import event_by_key
from leaderwatch.storage.outbox import OutboxItem
from leaderwatch.storage.subscriptions import disable_channel, record_audit

logger = logging.getLogger(__name__)

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


Decorate = Callable[[str, str, Event, Reply], Awaitable[Reply]]
"""A hook adding to a single alert before it is sent: (platform, channel id, event, reply) -> reply."""


class Sender(Protocol):
    """What a chat adapter provides for delivery (Slack, Discord)."""

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
    """The messages to send now, per channel in order, from `outbox.undelivered` rows (id order).

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
                 suites: Suites = BUILT_IN) -> None:
        self.db, self.senders, self.clock, self.sleep = db, senders, clock, sleep
        self.suites = suites
        self.metrics = metrics
        self.decorate = decorate
        self.board_urls = board_urls or {}
        self.jitter = jitter
        self._limit = asyncio.Semaphore(concurrency)
        self._recovered = False
        self._gone: dict[tuple[str, str], int] = {}
        # Keys whose last attempt the platform certainly refused (429, channel gone, recovered as
        # missing): resent without asking. Any other retry (5xx, timeout) may have landed, so
        # `already_delivered` is asked first. Lost on restart, which only costs a check.
        self._refused: set[str] = set()
        self._no_sender: set[str] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New rows were queued: deliver them now rather than at the next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver due rows every `interval` seconds (or when woken) until `stop` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end delivery for good
                logger.exception("delivery round failed; trying again in %.0f s", interval)
            await self._pause(stop, interval)

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
        """Deliver everything due now; how many alerts (rows) were delivered."""
        delivered = 0
        if not self._recovered:
            delivered += await self.recover()
        now = self.clock()
        todo = [b for b in batches(outbox.undelivered(self.db, now), now) if self._sender(b.platform)]
        channels: dict[tuple[str, str], list[Batch]] = {}
        for batch in todo:
            channels.setdefault((batch.platform, batch.channel_id), []).append(batch)
        counts = await asyncio.gather(*(self._deliver_channel(group) for group in channels.values()))
        return delivered + sum(counts)

    async def recover(self) -> int:
        """Resolve rows left `sending` by a crash: delivered if the platform has them, else pending.

        An edit is not looked for: making it again changes nothing, so it is simply pending again.
        """
        found = 0
        unresolved = False
        for batch in in_flight_batches(outbox.in_flight(self.db)):
            sender = self._sender(batch.platform)
            if sender is None:
                unresolved = True
                continue
            if batch.action == outbox.EDIT:
                outbox.mark_retry_all(self.db, batch.ids, self.clock(), "interrupted; editing again")
                continue
            try:
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

    async def _deliver_channel(self, group: Sequence[Batch]) -> int:
        delivered = 0
        async with self._limit:
            for batch in group:
                sent, go_on = await self._deliver(batch)
                delivered += sent
                if not go_on:
                    break
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

    async def _deliver(self, batch: Batch) -> tuple[int, bool]:
        """Send one message; (rows delivered, whether the channel's next messages may follow)."""
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
        if not outbox.claim_all(self.db, batch.ids, self.clock()):
            return 0, False
        try:
            ref = await self._send(sender, batch, reply, thread, attempts)
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
        outbox.mark_delivered_all(self.db, batch.ids, self.clock(), ref)
        self._gone.pop((batch.platform, batch.channel_id), None)
        self._refused.discard(batch.key)
        logger.info("delivered %s, attempt %d", batch.describe(), attempts + 1,
                    extra=_delivery_fields(batch, "delivered", attempts + 1))
        self._count(batch, None)
        return (len(batch.rows) if batch.action != outbox.EDIT else 0), True

    def _reread(self, batch: Batch) -> Batch:
        """The batch with its rows as stored now (after `become_root` changed them)."""
        return replace(batch, rows=tuple(outbox.item(self.db, r.id) or r for r in batch.rows))

    async def _send(self, sender: Sender, batch: Batch, reply: Reply, thread: str | None,
                    attempts: int) -> str | None:
        """One platform call for the batch (after checking for an uncertain earlier attempt); the
        message's id when known."""
        if batch.action == outbox.EDIT:
            assert thread is not None
            await sender.edit(batch.channel_id, thread, reply, batch.key)
            return None
        if attempts and batch.key not in self._refused:
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
        try:
            return await self.decorate(batch.platform, batch.channel_id, event, reply)
        except Exception:  # noqa: BLE001 - an extra must never hold the alert back
            logger.exception("decorating %s failed; sending it plain", batch.describe())
            return reply

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
