"""Running the rules on each changed snapshot, keeping their events, and queueing the deliveries.

Two steps. `stage`, inside the poll's transaction, runs the rules and stores the snapshot's events
with the list of events to fan out (`storage.fanouts`): the snapshot and its events are kept together
or not at all. `fan_out`, once that transaction has committed, writes the outbox rows of every listed
event: the channels are found through the index of followed board patterns (each pattern matched
against a board once, not once per channel), the channels' hold settings are read in one query, and
the rows are written a batch at a time in short transactions, yielding to the event loop between
them. An event leaves the list in the fan-out's last transaction; one still listed after a crash is
fanned out again and the rows written before are left alone, so no alert is lost or sent twice.

A channel gets at most `alert_cap` alerts from one fan-out (one poll); the rest are folded into one
message for it ("...and 37 more changes on 12 boards").
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.kinds.rival import RivalParams
from leaderwatch.alerts.matching import Followed, board_matches, delivery_key, hold_for
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError, dedupe_key
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.alerts.stories import story_keys
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import fanouts, outbox
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database, db_file, open_db, to_text
from leaderwatch.storage.events import event_by_key, save_events
from leaderwatch.storage.rule_states import SPANNING, board_state_before, load_rule_states, save_rule_states
from leaderwatch.storage.standings import rival_elsewhere
from leaderwatch.storage.subscriptions import followed, hold_settings, subscribers

logger = logging.getLogger(__name__)

ALERT_CAP = 20
"""Alerts one channel gets from one poll at most; the rest are folded into one message."""
BATCH = 2_000
"""Outbox rows written per transaction (a few milliseconds each: the event loop and other writers
wait for one batch at most)."""
WRITERS_FROM = 4
"""Batches an event's fan-out needs for them to be written a few at once (`fanouts.writers`): below, the
other connections (opened on first use) cost more than they save."""
FAN_OUT_NICENESS = 10
"""How much lower than the event loop the fan-out thread runs (`nice` steps)."""
CHECKPOINT_AFTER = 1_000
"""Rows after which a fan-out copies the write-ahead log into the database itself (`fanouts.checkpoint`)."""
MORE = "more"
"""The kind of the stored event a channel's folded alerts are delivered as (never a rule's)."""
LIMIT_SETTING = "LEADERWATCH_ALERTS_PER_POLL"

Channel = tuple[str, str]
"""(platform, channel id)."""
Receiver = tuple[str, str, str]
"""(platform, channel id, the ids of the subscriptions that send it, as JSON)."""
Hold = Callable[[Channel, str | None], tuple[str | None, str | None]]
"""A channel's hold on a board's alerts (stored text, None: none) and its digest kind."""


def more_event(platform: str, channel_id: str, folded: Sequence[Event], cap: int) -> Event:
    """The one message that stands for the alerts of a poll beyond a channel's cap.

    Its key follows from the channel and the events it folds, so a fan-out started again after a crash
    queues the same message, once.
    """
    boards = sorted({e.board for e in folded})
    named = ", ".join(boards[:5]) + (f" and {len(boards) - 5} more" if len(boards) > 5 else "")
    n, b = len(folded), len(boards)
    message = (f"…and {n} more change{'s' if n != 1 else ''} on {b} board{'s' if b != 1 else ''} "
               f"({named}): `/leaderwatch events` lists them. A channel gets at most {cap} alerts from "
               "one update; the rest are summed up here.")
    subject = f"{platform}:{channel_id}"
    at = max(e.at for e in folded)
    return Event(kind=MORE, board=MORE, at=at, rule="alerts per update", subject=subject, model=None,
                 other=None, groups=(), rank_before=None, rank_after=None, score_before=None,
                 score_after=None, confidence="n/a", message=message,
                 dedupe_key=dedupe_key(MORE, MORE, subject, ",".join(e.dedupe_key for e in folded), at),
                 value=str(n))


def _yielding() -> None:
    """Lower the fan-out thread's priority (Linux schedules threads on their own): on a busy machine the
    event loop's thread, answering chat, goes first; the fan-out takes what is left."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FAN_OUT_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the same priority as the loop
        pass


def merged(receivers: Sequence[Receiver]) -> list[Receiver]:
    """One receiver per channel, with all its subscriptions, in channel order."""
    ids: dict[Channel, list[int]] = {}
    for platform, channel_id, subs in receivers:
        ids.setdefault((platform, channel_id), []).extend(json.loads(subs))
    return [(p, c, json.dumps(sorted(set(s)))) for (p, c), s in sorted(ids.items())]


def more_reply(event: Event) -> Reply:
    """How a channel's folded alerts read on every platform (for the dispatcher, as `drift.ops_reply`)."""
    n = int(event.value or 0)
    return Reply(title=f"{n} more change{'s' if n != 1 else ''} in this update", text=event.message,
                 footer=f"`{LIMIT_SETTING}` sets how many alerts a channel gets from one update")


@dataclass
class FanOut:
    """What one fan-out queued."""

    events: int = 0
    rows: int = 0
    """Outbox rows added (a follow-up's reply and edit count as one)."""
    channels: int = 0
    folded: int = 0
    """Alerts beyond a channel's cap, folded into its summary message."""
    summaries: int = 0
    seconds: float = 0.0
    """From the first read to the last commit."""
    checkpoint_seconds: float = 0.0
    """Copying the write-ahead log into the database afterwards (in a worker thread)."""
    boards: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per board: (rows added, channels)."""


class Alerter:
    """Evaluates the default rules and every subscribed rule on a board's new snapshot."""

    def __init__(self, db: Database, rules: Sequence[Rule], groups: Mapping[str, Group],
                 clock: Callable[[], datetime], sink: Callable[[Event], None] | None = None, *,
                 metrics: Metrics | None = None, suites: Suites = BUILT_IN, alert_cap: int = ALERT_CAP,
                 batch: int = BATCH) -> None:
        self.db, self.default_rules, self.groups, self.clock, self.sink = db, rules, groups, clock, sink
        self.metrics, self.suites, self.alert_cap, self.batch = metrics, suites, alert_cap, batch
        self._fanning = asyncio.Lock()

    def rules_for(self, board_id: str, follows: Followed) -> list[Rule]:
        """The default rules plus every rule a channel follows on this board."""
        rules = {r.name: r for r in self.default_rules}
        for name in sorted(follows.on_board(board_id)):
            if name not in rules:
                try:
                    rules[name] = parse_rule(name, list(self.groups))
                except RuleError as exc:  # e.g. a group removed from the config since
                    logger.error("subscribed rule `%s` on %s is no longer valid: %s", name, board_id, exc)
        return list(rules.values())

    def on_change(self, stored: Stored) -> list[Event]:
        """The events of one newly stored snapshot, stored, queued and announced at once.

        For callers that commit right away (tests, tools); the poller uses `stage`, awaits `fan_out`
        once its transaction has committed, and then announces.
        """
        staged = self.stage(stored)
        for _ in self._fan_out(FanOut(), self.db):
            pass
        staged.announce()
        return staged.events

    def stage(self, stored: Stored) -> Staged:
        """Store the events of one newly stored snapshot and list them to fan out, without announcing.

        Runs inside the caller's transaction; adds `fan_out` to the work `stored` leaves for after the
        commit. `Staged.announce` logs, counts and prints the events once committed, so a rolled-back
        poll never reports events that were not kept.
        """
        snap, result = stored.snapshot, stored.result
        prev = store.snapshot_by_id(self.db, result.previous_id) if result.previous_id else None
        board_state = board_state_before(self.db, snap.board.id, result.snapshot_id)
        now = self.clock()
        before = load_rule_states(self.db, snap.board.id)
        rules = self.rules_for(snap.board.id, Followed(followed(self.db), self.suites))
        evaluation = evaluate(prev, snap, [r for r in rules if not r.spec.spans_boards], before, board_state,
                              self.groups, now)
        # The states before are kept beside the new ones: `why` runs a rule on this snapshot again.
        save_rule_states(self.db, snap.board.id, evaluation.rule_states, now, before=before,
                         snapshot_id=result.snapshot_id)
        events = list(evaluation.events)
        spanning = [r for r in rules if r.spec.spans_boards and self.spans(r, snap.board.id)]
        if spanning:
            events += self.stage_spanning(spanning, prev, snap, board_state, now, result.snapshot_id)
        save_events(self.db, events, result.snapshot_id, now)
        fanouts.stage(self.db, [e.dedupe_key for e in events], now)
        if events:
            stored.after_commit.append(self.fan_out)
        return Staged(self, snap.board.id, events, evaluation.changed)

    def spans(self, rule: Rule, board_id: str) -> bool:
        """Whether a rule that spans boards (`rival`) looks at this board."""
        p = rule.params
        return isinstance(p, RivalParams) and board_matches(p.boards, board_id, self.suites)

    def stage_spanning(self, rules: Sequence[Rule], prev: Snapshot | None, snap: Snapshot,
                       board_state: BoardState, now: datetime, snapshot_id: int) -> list[Event]:
        """Evaluate the rules that compare boards, handed the other boards' latest tables, from the one
        state each keeps for all the boards it spans (so a lead is reported once, not once per board)."""
        before = load_rule_states(self.db, SPANNING)
        board = snap.board.id
        elsewhere = {r.params.span: rival_elsewhere(self.db, r.params, board, self.groups, self.suites)
                     for r in rules if isinstance(r.params, RivalParams)}
        evaluation = evaluate(prev, snap, rules, before, board_state, self.groups, now, elsewhere)
        save_rule_states(self.db, SPANNING, {**before, **evaluation.rule_states}, now, before=before,
                         snapshot_id=snapshot_id)
        return list(evaluation.events)

    async def fan_out(self) -> FanOut:
        """Queue the outbox rows of every event waiting to be fanned out, a batch per transaction; what
        was queued. One fan-out runs at a time.

        The work runs in a worker thread of lower priority on a connection of its own (SQLite lets the
        event loop's thread go on meanwhile: chat commands keep answering), then the write-ahead log is
        copied into the database there too. An in-memory database has one connection: there the batches
        run on the event loop, which gets a turn between them.
        """
        async with self._fanning:
            done = FanOut()
            path = db_file(self.db)
            if path == ":memory:":
                with fanouts.checkpoints_paused(self.db):
                    for _ in self._fan_out(done, self.db):
                        await asyncio.sleep(0)
            else:
                wait = (int(self.db.execute("PRAGMA busy_timeout").fetchone()[0]) / 1000
                        if self.db.backend == "sqlite" else 0.0)
                pool = ThreadPoolExecutor(1, thread_name_prefix="leaderwatch-fanout", initializer=_yielding)
                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(pool, self._fan_out_apart, path, wait, done)
                finally:
                    pool.shutdown(wait=False)  # done, or cancelled: the batch under way ends on its own
            return done

    def _fan_out_apart(self, path: str, busy_timeout: float, done: FanOut) -> None:
        """The fan-out on a connection of its own (in a worker thread), then the log's checkpoint."""
        if self.db.backend != "sqlite":  # PostgreSQL: the pool gives this thread connections of its own
            for _ in self._fan_out(done, self.db):
                pass
            return
        db = open_db(path, busy_timeout)
        try:
            with fanouts.checkpoints_paused(db):
                for _ in self._fan_out(done, db):
                    pass
        finally:
            db.close()
        if done.rows + done.summaries >= CHECKPOINT_AFTER:
            started = time.perf_counter()
            fanouts.checkpoint(path)
            done.checkpoint_seconds = time.perf_counter() - started

    def _fan_out(self, done: FanOut, db: Database) -> Iterator[None]:
        """The fan-out as steps, each ending outside any transaction of its own (see `fan_out`)."""
        started = time.perf_counter()
        waiting = fanouts.waiting(db)
        if not waiting:
            return
        events = [e for e in (event_by_key(db, k) for k in waiting) if e is not None]
        now = self.clock()
        stamp = to_text(now)
        follows = Followed(followed(db), self.suites)
        settings = hold_settings(db)
        holds: dict[tuple[str, str, str | None], tuple[str | None, str | None]] = {}

        def hold(channel: Channel, board: str | None) -> tuple[str | None, str | None]:
            """A channel's hold (stored text) and digest for a board; None, None without settings."""
            own = settings.get(channel)
            if own is None:
                return None, None
            found = holds.get((*channel, board))
            if found is None:
                until, digest = hold_for(own, now, board, self.suites)
                found = holds[(*channel, board)] = (to_text(until) if until else None, digest)
            return found

        # A channel can pass its cap only when more events than the cap are fanned out together.
        counting = len(events) > self.alert_cap
        seen: dict[Channel, int] = {}  # alerts of this fan-out per channel, queued or not
        folded: dict[Channel, list[Event]] = {}
        channels: set[Channel] = set()
        for event in events:
            receivers: list[Receiver] = []
            patterns = follows.patterns(event.rule, event.board)
            for page in subscribers(db, event.rule, patterns):
                receivers += page
                yield
            if len(patterns) > 1:  # a channel following the board through two patterns gets it once
                receivers = merged(receivers)
            if counting:
                kept: list[Receiver] = []
                for r in receivers:
                    channel = (r[0], r[1])
                    n = seen[channel] = seen.get(channel, 0) + 1
                    if n > self.alert_cap:
                        folded.setdefault(channel, []).append(event)
                    else:
                        kept.append(r)
                receivers = kept
            there = outbox.keys_of_events(db, [event.dedupe_key])
            if there:  # fanned out before a crash cut it short: those rows stay as they are
                receivers = [r for r in receivers if delivery_key(event.dedupe_key, r[0], r[1]) not in there]
            added = 0
            for n in self._batches(db, event, receivers, hold if settings else None, now):
                added += n
                yield
            if len(events) > 1:  # distinct channels over several events (one event: its receivers)
                channels.update((p, c) for p, c, _ in receivers)
            was = done.boards.get(event.board, (0, 0))
            done.boards[event.board] = (was[0] + added, was[1] + len(receivers))
            done.rows += added
        summaries = [more_event(*channel, evs, self.alert_cap) for channel, evs in folded.items()]
        rows: list[outbox.NewRow] = []
        for channel, summary in zip(folded, summaries, strict=True):
            until, digest = hold(channel, None)
            key = delivery_key(summary.dedupe_key, *channel)
            rows.append((key, summary.dedupe_key, *channel, "[]", until, digest, outbox.POST, None, stamp))
        there = outbox.keys_of_events(db, [s.dedupe_key for s in summaries]) if summaries else set()
        rows = [r for r in rows if r[0] not in there]
        for start in range(0, len(rows), self.batch):
            with db.atomic():
                chunk = rows[start:start + self.batch]
                keys_in = {r[1] for r in chunk}
                save_events(db, [s for s in summaries if s.dedupe_key in keys_in], None, now)
                outbox.add_batch(db, chunk)
            yield
        with db.atomic():
            fanouts.done(db, waiting)
        done.events += len(events)
        done.channels += len(channels | set(folded)) if len(events) > 1 else done.rows
        done.folded += sum(len(evs) for evs in folded.values())
        done.summaries += len(rows)
        done.seconds += time.perf_counter() - started
        if done.rows or done.summaries:
            logger.info("%d alert(s) queued for %d channel(s) in %.2fs%s", done.rows, done.channels,
                        done.seconds, f"; {done.folded} more folded into one message for each of "
                        f"{len(folded)} channel(s) over their cap of {self.alert_cap}" if folded else "")

    def _batches(self, db: Database, event: Event, receivers: Sequence[Receiver], hold: Hold | None,
                 now: datetime) -> Iterator[int]:
        """Write an event's rows a batch per transaction (channels in order); each batch's rows added, as
        they commit. Where the store lets them (`fanouts.writers`: PostgreSQL), batches are written a few
        at once, each in a thread and a transaction of its own: the server's work per row (the indexes, the
        check of the event's key) is most of a fan-out there, and one connection keeps one core busy.
        Batches committed out of order change nothing: each stands alone, and the event stays listed until
        they all have."""
        keys = story_keys(event)
        batches = [receivers[start:start + self.batch] for start in range(0, len(receivers), self.batch)]

        def write(batch: Sequence[Receiver]) -> int:
            with db.atomic():
                return self._write(db, event, batch, keys, self._roots(db, batch, keys, now), hold, now)

        writers = fanouts.writers(db) if len(batches) >= WRITERS_FROM else 1
        if writers <= 1:
            yield from map(write, batches)
            return
        pool = ThreadPoolExecutor(writers, thread_name_prefix="leaderwatch-fanout-batch")
        running: deque[Future[int]] = deque()  # `writers` batches at most: a stop leaves no more begun
        try:
            for batch in batches:
                if len(running) == writers:
                    yield running.popleft().result()
                running.append(pool.submit(write, batch))
            while running:
                yield running.popleft().result()
        finally:  # done, or a batch failed, or the fan-out stopped: the batches under way end on their own
            pool.shutdown(cancel_futures=True)

    def _roots(self, db: Database, batch: Sequence[Receiver], keys: Sequence[str], now: datetime
               ) -> dict[Channel, int]:
        """The open stories of the batch's channels (in channel order) under `keys`: their first alerts."""
        roots: dict[Channel, int] = {}
        if not keys or not batch:
            return roots
        by_platform: dict[str, list[str]] = {}
        for platform, channel_id, _ in batch:
            by_platform.setdefault(platform, []).append(channel_id)
        for platform, ids in by_platform.items():  # one range of the stories' key per platform
            roots.update(outbox.story_roots(db, keys, now, platform, min(ids), max(ids)))
        return roots

    def _write(self, db: Database, event: Event, receivers: Sequence[Receiver], keys: Sequence[str],
               roots: Mapping[Channel, int], hold: Hold | None, now: datetime) -> int:
        """One batch of an event's rows (channels in order), in the caller's transaction; how many were
        added. `hold` None: no channel has a mute or a digest.

        A channel with a story of this event open gets a reply in its thread and an edit of its first
        alert (numbered after the batch's other rows); any other a post, which opens the stories.
        """
        rows: list[outbox.NewRow] = []
        edits: list[outbox.NewRow] = []
        replied: list[tuple[str, str, str, int, str]] = []
        ek, board, stamp, post = event.dedupe_key, event.board, to_text(now), outbox.POST
        if not roots and hold is None:  # the usual case: posts, nothing held; this runs per channel
            rows = [(f"{ek}/{platform}/{channel_id}", ek, platform, channel_id, subs, None, None, post, None,
                     stamp) for platform, channel_id, subs in receivers]
            receivers = ()
        for platform, channel_id, subs in receivers:
            until, digest = hold((platform, channel_id), board) if hold is not None else (None, None)
            key = f"{ek}/{platform}/{channel_id}"  # delivery_key, inlined: this loop runs per channel
            root = roots.get((platform, channel_id)) if roots and digest is None else None
            if root is not None:
                rows.append((key, ek, platform, channel_id, subs, until, None, outbox.REPLY, root, stamp))
                edits.append((outbox.edit_key(key), ek, platform, channel_id, subs, until, None, outbox.EDIT,
                              root, stamp))
                replied += [(platform, channel_id, story, root, stamp) for story in keys]
            else:
                rows.append((key, ek, platform, channel_id, subs, until, digest, post, None, stamp))
        outbox.add_batch(db, rows, keys)  # its posts without a digest open the stories `keys`
        if edits:
            outbox.add_batch(db, sorted(edits))
        if replied:
            outbox.touch_stories_batch(db, sorted(replied))
        return len(rows)

    def announce(self, staged: Staged) -> None:
        """Log, count and hand to the sink the events of a committed `stage`."""
        if staged.method_change:
            logger.info("%s changed method (%s): per-model alerts paused for this update",
                        staged.board_id, staged.method_change)
        for event in staged.events:
            logger.info("event %s on %s: %s", event.kind, event.board, event.message,
                        extra={"kind": event.kind, "board": event.board})
            if self.metrics is not None:
                self.metrics.event(event.kind)
            if self.sink:
                self.sink(event)


@dataclass(frozen=True)
class Staged:
    """One snapshot's events, stored and listed to fan out in a transaction not yet committed."""

    alerter: Alerter
    board_id: str
    events: list[Event]
    method_change: str | None

    def announce(self) -> None:
        """Report the events: call once the transaction that stored them has committed."""
        self.alerter.announce(self)
