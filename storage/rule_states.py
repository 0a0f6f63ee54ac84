"""What the rules remember per board between polls, and what a board's history says about its models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlite_utils import Database

from leaderwatch.alerts.models import RuleState
from leaderwatch.storage.db import from_text, to_text

_STATE_TABLE = "rule_states"


def load_rule_states(db: Database, board_id: str) -> dict[str, RuleState]:
    """Every rule's state on a board, by rule name."""
    out = {}
    for row in db.table(_STATE_TABLE).rows_where("board_id = ?", [board_id]):
        streak = {k: (v[0], int(v[1])) for k, v in json.loads(row["streak"]).items()}
        fired = {k: from_text(v) for k, v in json.loads(row["last_fired"]).items()}
        out[row["rule"]] = RuleState(json.loads(row["confirmed"]), streak, fired)
    return out


def save_rule_states(db: Database, board_id: str, states: Mapping[str, RuleState], now: datetime) -> None:
    """Replace a board's rule states (readable JSON columns, one row per rule)."""
    with db.atomic():
        db.execute(f"DELETE FROM {_STATE_TABLE} WHERE board_id = ?", [board_id])
        db.table(_STATE_TABLE).insert_all([{
            "board_id": board_id, "rule": name, "confirmed": json.dumps(dict(s.confirmed), sort_keys=True),
            "streak": json.dumps({k: list(v) for k, v in s.streak.items()}, sort_keys=True),
            "last_fired": json.dumps({k: to_text(t) for k, t in s.last_fired.items()}, sort_keys=True),
            "updated_at": to_text(now)} for name, s in states.items()])


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
