"""Running the rules on each changed snapshot, keeping their events, and queueing the deliveries.

Called inside the poll's transaction: the snapshot, its events and their outbox rows are stored
together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.kinds.rival import RivalParams
from leaderwatch.alerts.matching import (
    Delivery,
    Subscription,
    board_matches,
    hold_for,
    match,
    rules_for_board,
)
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.alerts.stories import story_keys
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import outbox
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import save_events
from leaderwatch.storage.rule_states import SPANNING, board_state_before, load_rule_states, save_rule_states
from leaderwatch.storage.standings import rival_elsewhere
from leaderwatch.storage.subscriptions import active_subscriptions, channel_settings

logger = logging.getLogger(__name__)


class Alerter:
    """Evaluates the default rules and every subscribed rule on a board's new snapshot."""

    def __init__(self, db: Database, rules: Sequence[Rule], groups: Mapping[str, Group],
                 clock: Callable[[], datetime], sink: Callable[[Event], None] | None = None, *,
                 metrics: Metrics | None = None, suites: Suites = BUILT_IN) -> None:
        self.db, self.default_rules, self.groups, self.clock, self.sink = db, rules, groups, clock, sink
        self.metrics, self.suites = metrics, suites

    def rules_for(self, board_id: str, subscriptions: Sequence[Subscription]) -> list[Rule]:
        """The default rules plus every rule a channel follows on this board."""
        rules = {r.name: r for r in self.default_rules}
        for name in rules_for_board(board_id, subscriptions, self.suites):
            if name not in rules:
                try:
                    rules[name] = parse_rule(name, list(self.groups))
                except RuleError as exc:  # e.g. a group removed from the config since
                    logger.error("subscribed rule `%s` on %s is no longer valid: %s", name, board_id, exc)
        return list(rules.values())

    def on_change(self, stored: Stored) -> list[Event]:
        """The events of one newly stored snapshot, stored, queued and announced at once.

        For callers that commit right away (tests, tools); the poller uses `stage` and announces
        only once its transaction has committed.
        """
        staged = self.stage(stored)
        staged.announce()
        return staged.events

    def stage(self, stored: Stored) -> Staged:
        """Store the events of one newly stored snapshot and queue them, without announcing them.

        Runs inside the caller's transaction; `Staged.announce` logs, counts and prints the events
        once it has committed, so a rolled-back poll never reports events that were not kept.
        """
        snap, result = stored.snapshot, stored.result
        prev = store.snapshot_by_id(self.db, result.previous_id) if result.previous_id else None
        board_state = board_state_before(self.db, snap.board.id, result.snapshot_id)
        subscriptions = active_subscriptions(self.db)
        now = self.clock()
        before = load_rule_states(self.db, snap.board.id)
        rules = self.rules_for(snap.board.id, subscriptions)
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
        deliveries = match(events, subscriptions, self.suites)
        channels = {(d.platform, d.channel_id) for d in deliveries}
        settings = {(p, c): channel_settings(self.db, p, c) for p, c in channels}

        def hold(d: Delivery) -> tuple[datetime | None, str | None]:
            return hold_for(settings[(d.platform, d.channel_id)], now, d.event.board, self.suites)

        queued = outbox.enqueue(self.db, deliveries, now, hold, story_keys)
        return Staged(self, snap.board.id, events, evaluation.changed, queued, len(channels))

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
        if staged.queued:
            logger.info("%s: %d alert(s) queued for %d channel(s)", staged.board_id, staged.queued,
                        staged.channels)


@dataclass(frozen=True)
class Staged:
    """One snapshot's events, stored and queued in a transaction not yet committed."""

    alerter: Alerter
    board_id: str
    events: list[Event]
    method_change: str | None
    queued: int
    channels: int

    def announce(self) -> None:
        """Report the events: call once the transaction that stored them has committed."""
        self.alerter.announce(self)
