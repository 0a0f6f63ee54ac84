"""Per-source poll status (drift included), held tables, HTTP validators, and the imports ledger.

A source is `ok`, `failing` (a poll failed), `degraded` (DEGRADED_AFTER failures in a row) or
`drifted`: the origin answered in a shape the parser does not know, or a board's table shrank by more
than half and is held for confirmation. A drift lasts until a poll succeeds, whatever fails meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database

DEGRADED_AFTER = 3
"""Consecutive failures after which a source is shown as degraded."""


DRIFTED = "drifted"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How a source's polling is going; `drift` says what changed in the origin's shape, if anything."""

    source: str
    status: str  # "ok", "failing", "degraded" or "drifted"
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    drift: str | None = None
    drift_url: str | None = None
    drifted_at: datetime | None = None

    @property
    def is_drifted(self) -> bool:
        """True while the origin's shape is not one the parser knows (or a shrunk table is held)."""
        return self.drift is not None


@dataclass(frozen=True, slots=True)
class HeldTable:
    """A board's table with fewer than half the rows of its last stored one, not stored yet."""

    board_id: str
    source: str
    content_hash: str
    rows: int
    previous_rows: int
    held_at: datetime


def record_success(db: Database, source: str, now: datetime) -> SourceStatus | None:
    """A poll of `source` succeeded at `now`: failures, drift and held tables are cleared. Returns the
    status it had before (None the first time), so the caller can tell a recovery from a drift."""
    with db.atomic():
        before = status_of(db, source)
        db.table("source_status").upsert({
            "source": source, "status": "ok", "last_attempt_at": to_text(now),
            "last_success_at": to_text(now), "last_error": None, "consecutive_failures": 0,
            "drift": None, "drift_url": None, "drifted_at": None,
        }, pk="source")
        db.execute("DELETE FROM held_tables WHERE source = ?", [source])
    return before


def record_failure(db: Database, source: str, now: datetime, error: str) -> SourceStatus:
    """A poll of `source` failed; after DEGRADED_AFTER failures in a row it is degraded (a drifted
    source stays drifted: a network failure says nothing about the origin's shape)."""
    with db.atomic():
        current = status_of(db, source)
        failures = (current.consecutive_failures if current else 0) + 1
        state = "degraded" if failures >= DEGRADED_AFTER else "failing"
        db.table("source_status").upsert({
            "source": source, "status": DRIFTED if current is not None and current.is_drifted else state,
            "last_attempt_at": to_text(now), "last_error": error[:500],
            "consecutive_failures": failures,
        }, pk="source")
    result = status_of(db, source)
    assert result is not None
    return result


def record_drift(db: Database, source: str, now: datetime, reason: str, url: str
                 ) -> tuple[SourceStatus, bool]:
    """A poll of `source` found a shape it does not know (`reason`, at `url`); nothing was stored.

    Returns the new status and whether the drift is new (the source was not drifted before): only a
    new drift is announced, however many polls see it.
    """
    with db.atomic():
        current = status_of(db, source)
        new = current is None or not current.is_drifted
        since = now if new or current is None or current.drifted_at is None else current.drifted_at
        db.table("source_status").upsert({
            "source": source, "status": DRIFTED, "last_attempt_at": to_text(now),
            "last_error": reason[:500],
            "consecutive_failures": (current.consecutive_failures if current else 0) + 1,
            "drift": reason[:500], "drift_url": url, "drifted_at": to_text(since),
        }, pk="source")
    result = status_of(db, source)
    assert result is not None
    return result, new


def hold_table(db: Database, held: HeldTable) -> None:
    """Keep a shrunk table's fingerprint until the next poll (replacing one held for the board)."""
    db.table("held_tables").upsert({
        "board_id": held.board_id, "source": held.source, "content_hash": held.content_hash,
        "rows": held.rows, "previous_rows": held.previous_rows, "held_at": to_text(held.held_at),
    }, pk="board_id")


def held_table(db: Database, board_id: str) -> HeldTable | None:
    """The table held for a board, if any."""
    rows = list(db.table("held_tables").rows_where("board_id = ?", [board_id]))
    return _held(rows[0]) if rows else None


def held_tables(db: Database) -> list[HeldTable]:
    """Every held table, by board."""
    return [_held(r) for r in db.table("held_tables").rows_where(order_by="board_id")]


def _held(r: dict[str, Any]) -> HeldTable:
    return HeldTable(r["board_id"], r["source"], r["content_hash"], r["rows"], r["previous_rows"],
                     from_text(r["held_at"]))


def status_of(db: Database, source: str) -> SourceStatus | None:
    """The stored status of one source."""
    rows = list(db.table("source_status").rows_where("source = ?", [source]))
    if not rows:
        return None
    r = rows[0]
    return SourceStatus(
        r["source"], r["status"], from_text(r["last_attempt_at"]) if r["last_attempt_at"] else None,
        from_text(r["last_success_at"]) if r["last_success_at"] else None, r["last_error"],
        r["consecutive_failures"] or 0, r.get("drift"), r.get("drift_url"),
        from_text(r["drifted_at"]) if r.get("drifted_at") else None)


def all_statuses(db: Database) -> dict[str, SourceStatus]:
    """Every source's status by name."""
    out = {}
    for name in [r["source"] for r in db.table("source_status").rows]:
        s = status_of(db, name)
        if s:
            out[name] = s
    return out


def load_validators(db: Database) -> dict[str, tuple[str | None, str | None]]:
    """Stored ETag / Last-Modified per URL, so conditional requests survive a restart."""
    return {r["url"]: (r["etag"], r["last_modified"]) for r in db.table("http_validators").rows}


def save_validators(db: Database, validators: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Store ETag / Last-Modified per URL, replacing what was stored (rolled-back ones included)."""
    with db.atomic():
        db.execute("DELETE FROM http_validators")
        db.table("http_validators").upsert_all(
            [{"url": u, "etag": e, "last_modified": m} for u, (e, m) in validators.items()], pk="url")


def is_imported(db: Database, recording: str) -> bool:
    """True when this recording was already imported."""
    return db.execute("SELECT 1 FROM imports WHERE recording = ?", [recording]).fetchone() is not None


def record_import(db: Database, recording: str, family: str, as_of: datetime, snapshots: int,
                  now: datetime) -> None:
    """Remember that a recording was imported."""
    db.table("imports").upsert({
        "recording": recording, "family": family, "as_of": to_text(as_of), "snapshots": snapshots,
        "imported_at": to_text(now)}, pk="recording")
