"""Boards, snapshots and their entries: save a snapshot once, read any board as of any time."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from leaderwatch.sources.base import Board, Entry, Snapshot
from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database

logger = logging.getLogger(__name__)

T = TypeVar("T")

_ENTRY_COLUMNS = ("snapshot_id", "position", "name", "model_key", "organization", "countries", "mixed",
                  "open_weights", "score", "rank", "ci_lower", "ci_upper", "votes", "components")
_INSERT_ENTRIES = (f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_ENTRY_COLUMNS))})")
_INSERT_MODELS = ("INSERT INTO models (key, name, organization, first_seen_at, first_board) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What `save_snapshot` did: `stored` is False when the content was unchanged."""

    snapshot_id: int
    stored: bool
    previous_id: int | None


def save_board(db: Database, board: Board) -> None:
    """Insert or update a board's description."""
    db.table("boards").upsert({
        "id": board.id, "source": board.source, "title": board.title, "metric": board.metric,
        "higher_is_better": int(board.higher_is_better), "has_ci": int(board.has_ci),
        "url": board.url, "archived": int(board.archived),
    }, pk="id")


def to_board(row: dict[str, Any]) -> Board:
    """A `boards` row as a Board."""
    return Board(row["id"], row["title"], row["metric"], bool(row["higher_is_better"]),
                 bool(row["has_ci"]), row["url"], bool(row["archived"]))


def boards(db: Database) -> list[Board]:
    """Every board that has been stored, by id."""
    return [to_board(r) for r in db.table("boards").rows_where(order_by="id")]


def _entry_rows(snapshot_id: int, entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
    return [
        (snapshot_id, i, e.name, e.model_key, e.organization, ",".join(e.countries), int(e.mixed),
         None if e.open_weights is None else int(e.open_weights), e.score, e.rank, e.ci_lower,
         e.ci_upper, e.votes, json.dumps(list(e.components)) if e.components else None)
        for i, e in enumerate(entries)
    ]


def _previous(db: Database, board_id: str, as_of: str) -> dict[str, Any] | None:
    rows = db.execute(
        "SELECT id, content_hash, as_of FROM snapshots WHERE board_id = ? AND as_of <= ? "
        "ORDER BY as_of DESC, id DESC LIMIT 1", [board_id, as_of]).fetchall()
    if not rows:
        return None
    return {"id": rows[0][0], "content_hash": rows[0][1], "as_of": rows[0][2]}


def save_snapshot(db: Database, snap: Snapshot) -> SaveResult:
    """Store a snapshot and its entries in one transaction, unless its content is unchanged.

    Unchanged means the board's snapshot in force at `snap.as_of` has the same content hash: then
    only its `last_seen_at` moves and no entry row is written. Saving the same snapshot twice is a
    no-op, which makes imports idempotent.

    A table that comes back (A, then B, then A again under one publish date) is stored again as a
    new row: it is the table in force from then on, and the rules compare it with B, the table it
    replaced. Skipping it would leave B in force, so `top` would show B and every later poll would
    see A as a change again.
    """
    as_of = to_text(snap.as_of)
    with db.atomic():
        if not db.execute("SELECT 1 FROM boards WHERE id = ?", [snap.board.id]).fetchone():
            save_board(db, snap.board)
        prev = _previous(db, snap.board.id, as_of)
        if prev is not None and prev["content_hash"] == snap.content_hash:
            seen = to_text(snap.fetched_at)
            db.execute("UPDATE snapshots SET last_seen_at = CASE WHEN last_seen_at >= ? THEN last_seen_at "
                       "ELSE ? END WHERE id = ?", [seen, seen, prev["id"]])
            return SaveResult(prev["id"], False, prev["id"])
        cursor = db.execute(
            "INSERT INTO snapshots (board_id, as_of, fetched_at, last_seen_at, content_hash, origin, "
            "method, truncated, entry_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [snap.board.id, as_of, to_text(snap.fetched_at), to_text(snap.fetched_at),
             snap.content_hash, snap.origin, snap.method, int(snap.truncated), len(snap.entries)])
        snapshot_id = int(cursor.fetchall()[0][0])
        db.executemany(_INSERT_ENTRIES, _entry_rows(snapshot_id, snap.entries))
        db.executemany(_INSERT_MODELS, (
            (e.model_key, e.name, e.organization, as_of, snap.board.id) for e in snap.entries))
    return SaveResult(snapshot_id, True, prev["id"] if prev else None)


def to_entry(row: Sequence[Any]) -> Entry:
    """An `entries` row (columns from `name` on, in table order) as an Entry."""
    (name, key, org, countries, mixed, open_weights, score, rank, lo, hi, votes, components) = row
    return Entry(
        name=name, model_key=key, score=score, rank=rank, organization=org,
        countries=tuple(c for c in (countries or "").split(",") if c), mixed=bool(mixed),
        open_weights=None if open_weights is None else bool(open_weights), ci_lower=lo, ci_upper=hi,
        votes=votes, components=tuple(json.loads(components)) if components else (),
    )


def _snapshot_from_row(db: Database, board: Board, row: Sequence[Any]) -> Snapshot:
    snapshot_id, as_of, fetched_at, content_hash, origin, method, truncated = row
    cols = ", ".join(_ENTRY_COLUMNS[2:])
    entries = tuple(to_entry(r) for r in db.execute(
        f"SELECT {cols} FROM entries WHERE snapshot_id = ? ORDER BY position", [snapshot_id]))
    return Snapshot(board, from_text(as_of), from_text(fetched_at), content_hash, entries, origin,
                    bool(truncated), method)


_SNAPSHOT_COLUMNS = "id, as_of, fetched_at, content_hash, origin, method, truncated"


def board(db: Database, board_id: str) -> Board | None:
    """A stored board by id."""
    rows = list(db.table("boards").rows_where("id = ?", [board_id]))
    return to_board(rows[0]) if rows else None


def snapshot_at(db: Database, board_id: str, at: datetime | None = None) -> Snapshot | None:
    """The board's table as it stood at `at` (the latest snapshot when `at` is None)."""
    found = in_force(db, board_id, at)
    return snapshot_by_id(db, found[0]) if found else None


def latest_snapshot(db: Database, board_id: str) -> Snapshot | None:
    """The board's newest stored snapshot."""
    return snapshot_at(db, board_id, None)


def in_range(board_id: str, start: datetime | None, end: datetime | None,
             table: str = "") -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for a board's snapshots with `start <= as_of <= end`.

    `table` qualifies the columns (`s.`) when the snapshots table is aliased in a join.
    """
    where, params = f"{table}board_id = ?", [board_id]
    if start is not None:
        where += f" AND {table}as_of >= ?"
        params.append(to_text(start))
    if end is not None:
        where += f" AND {table}as_of <= ?"
        params.append(to_text(end))
    return where, params


def history(db: Database, board_id: str) -> Iterator[tuple[int, Snapshot]]:
    """Every stored table of a board with its row id, in time order, read as the caller goes."""
    b = board(db, board_id)
    if b is None:
        return
    rows = db.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE board_id = ? ORDER BY as_of, id",
                      [board_id]).fetchall()
    for row in rows:
        yield int(row[0]), _snapshot_from_row(db, b, row)


def snapshots_between(db: Database, board_id: str, start: datetime | None = None,
                      end: datetime | None = None) -> Iterable[Snapshot]:
    """The board's snapshots in time order, lazily."""
    b = board(db, board_id)
    if b is None:
        return
    where, params = in_range(board_id, start, end)
    sql = f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE {where}"
    for row in db.execute(sql + " ORDER BY as_of, id", params).fetchall():
        yield _snapshot_from_row(db, b, row)


def spread_between(db: Database, board_id: str, start: datetime | None, end: datetime | None,
                   most: int) -> list[tuple[int, datetime]]:
    """Ids and dates of at most `most` of the board's snapshots from `start` to `end`, oldest first.

    With more in the period, the period is cut into `most` equal slices and the newest snapshot of each
    is kept (the newest of all always is): a chart then reads as many tables however dense the history.
    Only the index of snapshots by board and date is read.
    """
    where, params = in_range(board_id, start, end)
    rows = [(int(i), from_text(a)) for i, a in db.execute(
        f"SELECT id, as_of FROM snapshots WHERE {where} ORDER BY as_of, id", params).fetchall()]
    if len(rows) <= most:
        return rows
    first, width = rows[0][1], (rows[-1][1] - rows[0][1]) / most
    picked: dict[int, tuple[int, datetime]] = {}
    for snapshot_id, when in rows:
        picked[min(most - 1, int((when - first) / width)) if width else 0] = (snapshot_id, when)
    return [picked[slot] for slot in sorted(picked)]


def in_force(db: Database, board_id: str, at: datetime | None = None) -> tuple[int, datetime] | None:
    """The id and date of the board's table in force at `at` (its newest when None), by index."""
    sql, params = "SELECT id, as_of FROM snapshots WHERE board_id = ?", [board_id]
    if at is not None:
        sql += " AND as_of <= ?"
        params.append(to_text(at))
    row = db.execute(sql + " ORDER BY as_of DESC, id DESC LIMIT 1", params).fetchone()
    return (int(row[0]), from_text(row[1])) if row else None


def iter_entries(db: Database, snapshot_id: int) -> Iterator[Entry]:
    """A stored table's entries in rank order, read as the caller goes (stop early to read less)."""
    cols = ", ".join(_ENTRY_COLUMNS[2:])
    rows = db.execute(f"SELECT {cols} FROM entries WHERE snapshot_id = ? ORDER BY position", [snapshot_id])
    for row in rows:
        yield to_entry(row)


def first_as_of(db: Database, board_id: str) -> datetime | None:
    """When the board's stored history starts."""
    row = db.execute("SELECT min(as_of) FROM snapshots WHERE board_id = ?", [board_id]).fetchone()
    return from_text(row[0]) if row and row[0] else None


def last_seen(db: Database, board_id: str) -> datetime | None:
    """The last time a poll or a recording showed the board's current table (None: nothing stored)."""
    row = db.execute("SELECT last_seen_at FROM snapshots WHERE board_id = ? ORDER BY as_of DESC, id DESC "
                     "LIMIT 1", [board_id]).fetchone()
    return from_text(row[0]) if row and row[0] else None


def entry_count(db: Database, board_id: str) -> int | None:
    """Rows in the board's latest snapshot (for the shrink check), None when nothing is stored."""
    row = db.execute("SELECT entry_count FROM snapshots WHERE board_id = ? "
                     "ORDER BY as_of DESC, id DESC LIMIT 1", [board_id]).fetchone()
    return int(row[0]) if row else None


@dataclass(frozen=True, slots=True)
class BoardSummary:
    """One line of `leaderwatch boards`."""

    board: Board
    snapshots: int
    last_as_of: datetime | None
    last_seen_at: datetime | None
    entries: int


def board_summaries(db: Database, counts: bool = True) -> list[BoardSummary]:
    """Every stored board with its snapshot count, last update and current entry count.

    The last update and entry count come from each board's newest snapshot (one indexed lookup);
    counting the snapshots reads a board's whole history: `counts=False` leaves it at 0 (chat).
    """
    out = []
    for b in boards(db):
        latest = db.execute("SELECT as_of, last_seen_at, entry_count FROM snapshots WHERE board_id = ? "
                            "ORDER BY as_of DESC, id DESC LIMIT 1", [b.id]).fetchone()
        count = db.execute("SELECT count(*) FROM snapshots WHERE board_id = ?", [b.id]).fetchone()[0] \
            if counts and latest else 0
        as_of, seen, entries = latest or (None, None, 0)
        out.append(BoardSummary(b, int(count), from_text(as_of) if as_of else None,
                                from_text(seen) if seen else None, int(entries or 0)))
    return out


def snapshot_by_id(db: Database, snapshot_id: int) -> Snapshot | None:
    """A stored snapshot by its row id."""
    row = db.execute(f"SELECT {_SNAPSHOT_COLUMNS}, board_id FROM snapshots WHERE id = ?",
                     [snapshot_id]).fetchone()
    if row is None:
        return None
    b = board(db, row[-1])
    assert b is not None
    return _snapshot_from_row(db, b, row[:-1])


class SnapshotCache:
    """Recently read snapshots by row id: a stored snapshot never changes, so it never goes stale.

    A lookup still asks the database which snapshot is in force (an indexed query), then reuses
    the parsed object: chat questions answer in a fraction of a millisecond instead of re-reading
    hundreds of rows each time.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[int, Snapshot] = OrderedDict()
        self._derived: dict[str, tuple[int, Any]] = {}

    def derived(self, db: Database, name: str, compute: Callable[[], T]) -> T:
        """A value computed from the stored tables, recomputed only after a new snapshot is stored."""
        row = db.execute("SELECT max(id) FROM snapshots").fetchone()
        generation = int(row[0] or 0)
        cached = self._derived.get(name)
        if cached is not None and cached[0] == generation:
            return cast(T, cached[1])
        value = compute()
        self._derived[name] = (generation, value)
        return value

    def by_id(self, db: Database, snapshot_id: int) -> Snapshot | None:
        """A snapshot by row id, from the cache when it is there."""
        snap = self._items.get(snapshot_id)
        if snap is not None:
            self._items.move_to_end(snapshot_id)
            return snap
        snap = snapshot_by_id(db, snapshot_id)
        if snap is not None:
            self._items[snapshot_id] = snap
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return snap

    def at(self, db: Database, board_id: str, at: datetime | None = None) -> Snapshot | None:
        """Like `snapshot_at`, through the cache."""
        found = in_force(db, board_id, at)
        return self.by_id(db, found[0]) if found else None

    def latest(self, db: Database, board_id: str) -> Snapshot | None:
        """Like `latest_snapshot`, through the cache."""
        return self.at(db, board_id, None)
