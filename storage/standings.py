"""Where models stand across every board at once (for `/leaderwatch model`), without loading each table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from leaderwatch.sources.base import Entry
from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.snapshots import to_entry

_ENTRY = ("e.name, e.model_key, e.organization, e.countries, e.mixed, e.open_weights, e.score, e.rank, "
          "e.ci_lower, e.ci_upper, e.votes, e.components")


def _in_force(at: datetime | None) -> tuple[str, list[str]]:
    """A query of each board's snapshot in force at `at` (the latest when None), and its parameters."""
    where, params = ("WHERE as_of <= ?", [to_text(at)]) if at is not None else ("", [])
    return (f"SELECT id, board_id, as_of, ROW_NUMBER() OVER (PARTITION BY board_id ORDER BY as_of DESC, "
            f"id DESC) AS n FROM snapshots {where}", params)


@dataclass(frozen=True, slots=True)
class Standing:
    """A model's entry on one board, in the snapshot of `as_of`."""

    board_id: str
    as_of: datetime
    entry: Entry


def current_models(db: Database) -> dict[str, str]:
    """Every model key on some board's latest table, with a name it is listed under."""
    sql, params = _in_force(None)
    rows = db.execute(f"WITH s AS ({sql}) SELECT e.model_key, e.name FROM s JOIN entries e "
                      "ON e.snapshot_id = s.id WHERE s.n = 1 ORDER BY s.board_id, e.position", params)
    names: dict[str, str] = {}
    for key, name in rows.fetchall():
        names.setdefault(key, name)
    return names


def standings(db: Database, model_key: str, at: datetime | None = None) -> list[Standing]:
    """A model's best entry on each board, as the boards stood at `at` (now when None), by board id."""
    sql, params = _in_force(at)
    rows = db.execute(f"WITH s AS ({sql}) SELECT s.board_id, s.as_of, {_ENTRY} FROM s JOIN entries e "
                      "ON e.snapshot_id = s.id WHERE s.n = 1 AND e.model_key = ? "
                      "ORDER BY s.board_id, e.position", [*params, model_key]).fetchall()
    found: dict[str, Standing] = {}
    for row in rows:
        if row[0] not in found:  # entries are in rank order: the first is the model's best run
            found[row[0]] = Standing(row[0], from_text(row[1]), to_entry(row[2:]))
    return list(found.values())


def boards_with_data(db: Database, at: datetime) -> set[str]:
    """The boards that had a snapshot at or before `at`."""
    rows = db.execute("SELECT DISTINCT board_id FROM snapshots WHERE as_of <= ?", [to_text(at)]).fetchall()
    return {str(r[0]) for r in rows}
