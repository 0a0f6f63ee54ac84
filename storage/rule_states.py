"""What the rules remember per board between polls, and what a board's history says about its models.

Each row holds a rule's state after the snapshot it last ran at (`snapshot_id`) and its state just
before it (`previous_*`), so the rule can be run on that snapshot again exactly as the engine did
(`/leaderwatch why`). All of it is readable JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leaderwatch.alerts.context import base_key_of
from leaderwatch.alerts.models import BoardState, RuleState
from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database
from leaderwatch.storage.snapshots import in_force

_STATE_TABLE = "rule_states"
SPANNING = "~spanning"
"""The pseudo board under which the rules that compare boards (`rival`) keep their states: one state
each for all the boards they span, so a lead is reported once, not once per board."""


def _to_state(confirmed: str, streak: str, last_fired: str) -> RuleState:
    return RuleState(json.loads(confirmed),
                     {k: (v[0], int(v[1])) for k, v in json.loads(streak).items()},
                     {k: from_text(v) for k, v in json.loads(last_fired).items()})


def _columns(state: RuleState | None, prefix: str = "") -> dict[str, str | None]:
    if state is None:
        return {f"{prefix}confirmed": None, f"{prefix}streak": None, f"{prefix}last_fired": None}
    return {f"{prefix}confirmed": json.dumps(dict(state.confirmed), sort_keys=True),
            f"{prefix}streak": json.dumps({k: list(v) for k, v in state.streak.items()}, sort_keys=True),
            f"{prefix}last_fired": json.dumps({k: to_text(t) for k, t in state.last_fired.items()},
                                              sort_keys=True)}


def load_rule_states(db: Database, board_id: str) -> dict[str, RuleState]:
    """Every rule's state on a board, by rule name."""
    return {row["rule"]: _to_state(row["confirmed"], row["streak"], row["last_fired"])
            for row in db.table(_STATE_TABLE).rows_where("board_id = ?", [board_id])}


def save_rule_states(db: Database, board_id: str, states: Mapping[str, RuleState], now: datetime, *,
                     before: Mapping[str, RuleState], snapshot_id: int) -> None:
    """Replace a board's rule states after the rules ran at a snapshot (one row per rule).

    `before` holds the states the rules started from (a rule missing there had none).
    """
    with db.atomic():
        db.execute(f"DELETE FROM {_STATE_TABLE} WHERE board_id = ?", [board_id])
        db.table(_STATE_TABLE).insert_all([{
            "board_id": board_id, "rule": name, **_columns(s), **_columns(before.get(name), "previous_"),
            "snapshot_id": snapshot_id, "updated_at": to_text(now)} for name, s in states.items()])


@dataclass(frozen=True, slots=True)
class RulesAt:
    """What a board's rules had when they ran at one snapshot: enough to run them on it again.

    `states` holds, for each rule that ran there, its state before the snapshot (None: it had none);
    `evaluated_at` is the engine's clock then, None when no rule ran there (imported history).
    """

    snapshot_id: int
    board_state: BoardState
    evaluated_at: datetime | None
    states: Mapping[str, RuleState | None]


def board_state_before(db: Database, board_id: str, snapshot_id: int) -> BoardState:
    """The engine's memory of a board's models before a snapshot, derived from the stored history."""
    listed, count = names_listed_before(db, board_id, snapshot_id)
    return BoardState(frozenset(key for _, key in listed), count,
                      frozenset(base_key_of(name, key) for name, key in listed))


def rules_at(db: Database, board_id: str, at: datetime | None = None) -> RulesAt | None:
    """The rules' memory at the board's snapshot in force at `at` (the latest when None), or None
    when the board has no snapshot."""
    found = in_force(db, board_id, at)
    if found is None:
        return None
    snapshot_id = found[0]
    states: dict[str, RuleState | None] = {}
    evaluated_at = None
    for r in db.table(_STATE_TABLE).rows_where("board_id = ? AND snapshot_id = ?", [board_id, snapshot_id]):
        states[r["rule"]] = _previous(r)
        evaluated_at = from_text(r["updated_at"])
    return RulesAt(snapshot_id, board_state_before(db, board_id, snapshot_id), evaluated_at, states)


def _previous(row: Mapping[str, Any]) -> RuleState | None:
    """The state a stored row's rule started from at its snapshot (None: it had none)."""
    if row["previous_confirmed"] is None:
        return None
    return _to_state(row["previous_confirmed"], row["previous_streak"], row["previous_last_fired"])


def names_listed_before(db: Database, board_id: str, snapshot_id: int) -> tuple[set[tuple[str, str]], int]:
    """Every distinct (name, model key) a board listed before a snapshot, and how many snapshots it had then.

    The rules' memory of models seen on a board is derived from the history, not kept twice.
    """
    rows = db.execute(
        "SELECT DISTINCT e.name, e.model_key FROM entries e "
        "JOIN snapshots s ON s.id = e.snapshot_id WHERE s.board_id = ? AND s.id != ? "
        "AND s.as_of <= (SELECT as_of FROM snapshots WHERE id = ?)",
        [board_id, snapshot_id, snapshot_id]).fetchall()
    count = db.execute("SELECT count(*) FROM snapshots WHERE board_id = ? AND id != ? AND as_of <= "
                       "(SELECT as_of FROM snapshots WHERE id = ?)",
                       [board_id, snapshot_id, snapshot_id]).fetchone()[0]
    return {(name, key) for name, key in rows}, int(count)


def spanning_at(db: Database, snapshot_id: int) -> dict[str, RuleState | None]:
    """The states the rules that compare boards started from when they last ran, if that was on this
    snapshot's update (by rule name; None: the rule had none)."""
    rows = db.table(_STATE_TABLE).rows_where("board_id = ? AND snapshot_id = ?", [SPANNING, snapshot_id])
    return {r["rule"]: _previous(r) for r in rows}
