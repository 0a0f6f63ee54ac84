"""Per-source poll status, HTTP validators for conditional requests, and the imports ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from leaderwatch.storage.db import from_text, to_text

DEGRADED_AFTER = 3
"""Consecutive failures after which a source is shown as degraded."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How a source's polling is going."""

    source: str
    status: str  # "ok", "failing" or "degraded"
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int


def record_success(db: Database, source: str, now: datetime) -> None:
    """A poll of `source` succeeded at `now`."""
    with db.atomic():
        db.table("source_status").upsert({
            "source": source, "status": "ok", "last_attempt_at": to_text(now),
            "last_success_at": to_text(now), "last_error": None, "consecutive_failures": 0,
        }, pk="source")


def record_failure(db: Database, source: str, now: datetime, error: str) -> SourceStatus:
    """A poll of `source` failed; after DEGRADED_AFTER failures in a row it is degraded."""
    with db.atomic():
        current = status_of(db, source)
        failures = (current.consecutive_failures if current else 0) + 1
        db.table("source_status").upsert({
            "source": source, "status": "degraded" if failures >= DEGRADED_AFTER else "failing",
            "last_attempt_at": to_text(now), "last_error": error[:500],
            "consecutive_failures": failures,
        }, pk="source")
    result = status_of(db, source)
    assert result is not None
    return result


def status_of(db: Database, source: str) -> SourceStatus | None:
    """The stored status of one source."""
    rows = list(db.table("source_status").rows_where("source = ?", [source]))
    if not rows:
        return None
    r = rows[0]
    return SourceStatus(
        r["source"], r["status"], from_text(r["last_attempt_at"]) if r["last_attempt_at"] else None,
        from_text(r["last_success_at"]) if r["last_success_at"] else None, r["last_error"],
        r["consecutive_failures"] or 0)


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
