"""Running the rules on each changed snapshot a poll stores, with their state kept in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlite_utils import Database

from alerts.models import BoardState, Event, Rule
from alerts.rules import base_key, evaluate
from bot.ingest import Stored
from sources.identity import Group
from storage import snapshots as store
from storage.rule_states import listed_before, load_rule_states, save_rule_states

logger = logging.getLogger(__name__)


class Alerter:
    """Evaluates the rules against the previous snapshot of a board and hands the events on."""

    def __init__(self, db: Database, rules: Sequence[Rule], groups: Mapping[str, Group],
                 clock: Callable[[], datetime], sink: Callable[[Event], None]) -> None:
        self.db, self.rules, self.groups, self.clock, self.sink = db, rules, groups, clock, sink

    def on_change(self, stored: Stored) -> list[Event]:
        """The events of one newly stored snapshot; the rules' new state is saved."""
        snap, result = stored.snapshot, stored.result
        prev = store.snapshot_by_id(self.db, result.previous_id) if result.previous_id else None
        listed, count = listed_before(self.db, snap.board.id, result.snapshot_id)
        board_state = BoardState(frozenset(e.model_key for e in listed), count,
                                 frozenset(base_key(e) for e in listed))
        now = self.clock()
        evaluation = evaluate(prev, snap, self.rules, load_rule_states(self.db, snap.board.id),
                              board_state, self.groups, now)
        save_rule_states(self.db, snap.board.id, evaluation.rule_states, now)
        if evaluation.changed:
            logger.info("%s changed method (%s): per-model alerts paused for this update",
                        snap.board.id, evaluation.changed)
        for event in evaluation.events:
            logger.info("event %s on %s: %s", event.kind, event.board, event.message)
            self.sink(event)
        return list(evaluation.events)
