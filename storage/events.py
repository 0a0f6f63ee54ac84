"""Events found by the rules, kept for `events`, `why` and the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from leaderwatch.alerts.models import Event
from leaderwatch.storage.db import from_text, to_text
from leaderwatch.storage.engine import Database

MESSAGE_KINDS = ("report", "ops", "more")
"""Kinds of the events stored only to be delivered (the weekly race reports, the operators' messages, the
"N more changes" summaries): not found by the rules, so not among `events` or the alerts on Home."""
NOT_A_MESSAGE = f"kind NOT IN ({', '.join(repr(k) for k in MESSAGE_KINDS)})"
"""The SQL condition keeping an `events` row (or a table aliased so) to the rules' own events."""


def save_events(db: Database, events: Iterable[Event], snapshot_id: int | None, now: datetime) -> None:
    """Store events; one already stored (same dedupe key) is left as it is."""
    db.executemany(
        "INSERT INTO events (dedupe_key, kind, board_id, at, rule, subject, model, other, groups, "
        "rank_before, rank_after, score_before, score_after, confidence, message, snapshot_id, created_at, "
        "value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(e.dedupe_key, e.kind, e.board, to_text(e.at), e.rule, e.subject, e.model, e.other,
          json.dumps(list(e.groups)), e.rank_before, e.rank_after, e.score_before, e.score_after,
          e.confidence, e.message, snapshot_id, to_text(now), e.value) for e in events])


def to_event(row: dict[str, Any]) -> Event:
    """An `events` row as an Event."""
    return Event(
        kind=row["kind"], board=row["board_id"], at=from_text(row["at"]), rule=row["rule"],
        subject=row["subject"], model=row["model"], other=row["other"],
        groups=tuple(json.loads(row["groups"] or "[]")), rank_before=row["rank_before"],
        rank_after=row["rank_after"], score_before=row["score_before"], score_after=row["score_after"],
        confidence=row["confidence"], message=row["message"], dedupe_key=row["dedupe_key"],
        value=row.get("value") or "",
    )


def event_by_key(db: Database, key: str) -> Event | None:
    """One stored event."""
    rows = list(db.table("events").rows_where("dedupe_key = ?", [key]))
    return to_event(rows[0]) if rows else None


def recent_events(db: Database, since: datetime, board_ids: Iterable[str] | None = None,
                  limit: int = 50, until: datetime | None = None) -> list[Event]:
    """Events the rules found at or after `since` (and at or before `until`), newest first, optionally
    only on some boards (the weekly reports, the operators' messages and the "N more changes" summaries,
    stored as events of kind `report`, `ops` and `more` to be delivered, are not among them)."""
    where, params = f"at >= ? AND {NOT_A_MESSAGE}", [to_text(since)]
    if until is not None:
        where += " AND at <= ?"
        params.append(to_text(until))
    if board_ids is not None:
        ids = list(board_ids)
        if not ids:
            return []
        where += f" AND board_id IN ({', '.join('?' * len(ids))})"
        params += ids
    rows = db.table("events").rows_where(where, params, order_by="at DESC, kind, dedupe_key", limit=limit)
    return [to_event(r) for r in rows]


def events_of_snapshot(db: Database, snapshot_id: int) -> list[Event]:
    """The events a stored snapshot produced."""
    return [to_event(r) for r in db.table("events").rows_where("snapshot_id = ?", [snapshot_id])]
