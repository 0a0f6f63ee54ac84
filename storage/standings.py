"""Where models stand across every board at once (for `/leaderwatch model`), without loading each table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.context import Pairing
from leaderwatch.alerts.kinds.rival import RivalParams, pair
from leaderwatch.alerts.matching import board_matches
from leaderwatch.alerts.suites import Suites
from leaderwatch.sources.base import Entry
from leaderwatch.sources.identity import Group, canonical_key
from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database, not_indexed
from leaderwatch.storage.snapshots import in_force, iter_entries, to_entry

_ENTRY = ("e.name, e.model_key, e.organization, e.countries, e.mixed, e.open_weights, e.score, e.rank, "
          "e.ci_lower, e.ci_upper, e.votes, e.components")


def _in_force(at: datetime | None) -> tuple[str, list[str]]:
    """A query of each board's snapshot in force at `at` (the latest when None), and its parameters.

    One indexed lookup per board (snapshots by board and date): the cost follows the number of boards,
    not the length of their histories.
    """
    where, params = ("AND as_of <= ?", [to_text(at)]) if at is not None else ("", [])
    return (f"SELECT b.id AS board_id, (SELECT id FROM snapshots WHERE board_id = b.id {where} "
            f"ORDER BY as_of DESC, id DESC LIMIT 1) AS id FROM boards b", params)


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
                      "ON e.snapshot_id = s.id ORDER BY s.board_id, e.position", params)
    names: dict[str, str] = {}
    for key, name in rows.fetchall():
        names.setdefault(key, name)
    return names


def standings(db: Database, model_key: str, at: datetime | None = None) -> list[Standing]:
    """A model's best entry on each board, as the boards stood at `at` (now when None), by board id."""
    sql, params = _in_force(at)
    rows = db.execute(f"WITH s AS ({sql}) SELECT s.board_id, sn.as_of, {_ENTRY} FROM s "
                      "JOIN snapshots sn ON sn.id = s.id JOIN entries e ON e.snapshot_id = s.id "
                      "WHERE e.model_key = ? ORDER BY s.board_id, e.position",
                      [*params, model_key]).fetchall()
    found: dict[str, Standing] = {}
    for row in rows:
        if row[0] not in found:  # entries are in rank order: the first is the model's best run
            found[row[0]] = Standing(row[0], from_text(row[1]), to_entry(row[2:]))
    return list(found.values())


def standings_before(db: Database, model_key: str, cutoffs: Mapping[str, datetime]
                     ) -> dict[str, tuple[datetime, Entry | None]]:
    """For each board, its table in force at the board's cutoff: when it was published, and the model's best
    entry in it (None: not listed). Boards with no table by their cutoff are left out."""
    out: dict[str, tuple[datetime, Entry | None]] = {}
    for board_id, cutoff in cutoffs.items():
        row = db.execute("SELECT id, as_of FROM snapshots WHERE board_id = ? AND as_of <= ? "
                         "ORDER BY as_of DESC, id DESC LIMIT 1", [board_id, to_text(cutoff)]).fetchone()
        if row is None:
            continue
        entry = db.execute(f"SELECT {_ENTRY} FROM entries e WHERE e.snapshot_id = ? "
                           f"AND {not_indexed(db, 'e.model_key')} = ? "
                           "ORDER BY e.position LIMIT 1", [row[0], model_key]).fetchone()
        out[board_id] = (from_text(row[1]), to_entry(entry) if entry else None)
    return out


def best_entries(db: Database, model_key: str, snapshot_ids: Iterable[int]) -> dict[int, Entry]:
    """The model's best entry in each of these snapshots (those not listing it left out).

    Each is read through its snapshot's own rows (the primary key), never through the model's
    entries over all history, which grow with it.
    """
    out: dict[int, Entry] = {}
    for snapshot_id in snapshot_ids:
        row = db.execute(f"SELECT {_ENTRY} FROM entries e WHERE e.snapshot_id = ? "
                         f"AND {not_indexed(db, 'e.model_key')} = ? "
                         "ORDER BY e.position LIMIT 1", [snapshot_id, model_key]).fetchone()
        if row is not None:
            out[snapshot_id] = to_entry(row)
    return out


def organizations(db: Database) -> set[str]:
    """Every organization a stored model is credited to, as the boards spell it."""
    rows = db.execute("SELECT DISTINCT organization FROM models WHERE organization IS NOT NULL").fetchall()
    return {str(r[0]) for r in rows}


def pairings(db: Database, key: str, rival_key: str, rival_group: Group | None, board_ids: Iterable[str]
             ) -> tuple[Pairing, ...]:
    """On each board's latest table, a model's best entry and its rival's (a model by key, or a group's
    best model other than the model), each None when not listed; boards listing neither are left out.

    Each table is read only until both are found (rule `rival`, which compares boards).
    """
    out: list[Pairing] = []
    for board_id in board_ids:
        found = in_force(db, board_id)
        if found is not None:
            model, rival = pair(iter_entries(db, found[0]), key, rival_key, rival_group)
            if model is not None or rival is not None:
                out.append(Pairing(board_id, model, rival))
    return tuple(out)


def rival_elsewhere(db: Database, p: RivalParams, board_id: str, groups: Mapping[str, Group],
                    suites: Suites) -> tuple[Pairing, ...]:
    """For a `rival` rule evaluated on one board: the model and its rival on the other boards of its span,
    as their latest tables list them (`Context.elsewhere`)."""
    others = [b for (b,) in db.execute("SELECT id FROM boards ORDER BY id").fetchall()
              if b != board_id and board_matches(p.boards, b, suites)]
    return pairings(db, p.key, canonical_key(p.rival), groups.get(p.rival.lower()), others)
