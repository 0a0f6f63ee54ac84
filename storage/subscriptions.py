"""Channel subscriptions, channel settings and the audit trail of configuration changes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from leaderwatch.alerts.matching import MUTE, Subscription
from leaderwatch.storage.db import to_text
from leaderwatch.storage.engine import Database, indexed_by


def _to_sub(row: Mapping[str, object]) -> Subscription:
    return Subscription(int(str(row["id"])), str(row["platform"]), str(row["channel_id"]),
                        str(row["board_pattern"]), str(row["rule"]))


def active_subscriptions(db: Database) -> list[Subscription]:
    """Every subscription not disabled, in creation order."""
    return [_to_sub(r) for r in db.table("subscriptions").rows_where("disabled_at IS NULL", order_by="id")]


def _active(db: Database) -> str:
    """The active subscriptions, read through their index (m008)."""
    return (f"subscriptions{indexed_by(db, 'idx_subscriptions_active_rule_pattern')} "
            "WHERE disabled_at IS NULL")


def _next(db: Database, column: str, where: str, params: Sequence[str], after: str) -> str | None:
    """The smallest value of `column` after `after` among the active subscriptions matching `where`: one
    seek in the index (SQLite does not skip through an index by itself; a row-value comparison such as
    `(a, b) > (?, ?)` would scan)."""
    row = db.execute(f"SELECT min({column}) FROM {_active(db)} {where} AND {column} > ?",
                     [*params, after]).fetchone()
    return None if row[0] is None else str(row[0])


def followed(db: Database) -> list[tuple[str, str]]:
    """Every distinct (rule, board pattern) some channel follows, sorted.

    Read by skipping through the index of active subscriptions, one seek per pair: as fast with a
    hundred thousand channels as with ten (the channels themselves are not read).
    """
    out: list[tuple[str, str]] = []
    rule = _next(db, "rule", "", [], "")
    while rule is not None:
        pattern = _next(db, "board_pattern", "AND rule = ?", [rule], "")
        while pattern is not None:
            out.append((rule, pattern))
            pattern = _next(db, "board_pattern", "AND rule = ?", [rule], pattern)
        rule = _next(db, "rule", "", [], rule)
    return out


def subscribers(db: Database, rule: str, patterns: Sequence[str], page: int = 10_000
                ) -> Iterator[list[tuple[str, str, str]]]:
    """The active subscriptions to `rule` on any of `patterns`, a page at a time: (platform, channel id,
    the subscription's id as a JSON list) each, each pattern's in channel order (read from the covering
    index alone, each page a seek; the rows come from SQLite as they are used)."""
    for pattern in patterns:
        where = "AND rule = ? AND board_pattern = ?"
        platform = _next(db, "platform", where, [rule, pattern], "")
        while platform is not None:
            after = ""
            while True:
                rows = db.execute(
                    f"SELECT platform, channel_id, '[' || id || ']' FROM {_active(db)} {where} "
                    "AND platform = ? AND channel_id > ? ORDER BY channel_id LIMIT ?",
                    [rule, pattern, platform, after, page]).fetchall()
                if rows:
                    yield rows
                if len(rows) < page:
                    break
                after = str(rows[-1][1])
            platform = _next(db, "platform", where, [rule, pattern], platform)


def channel_subscriptions(db: Database, platform: str, channel_id: str,
                          include_disabled: bool = False) -> list[dict[str, object]]:
    """A channel's subscription rows (with disabled ones and their reasons when asked)."""
    where = "platform = ? AND channel_id = ?" + ("" if include_disabled else " AND disabled_at IS NULL")
    return list(db.table("subscriptions").rows_where(where, [platform, channel_id], order_by="id"))


def add_subscription(db: Database, platform: str, channel_id: str, board_pattern: str, rule: str,
                     user: str, now: datetime) -> bool:
    """Subscribe a channel to a rule on a board pattern; False when it already was (re-enabled)."""
    existing = list(db.table("subscriptions").rows_where(
        "platform = ? AND channel_id = ? AND board_pattern = ? AND rule = ?",
        [platform, channel_id, board_pattern, rule]))
    if existing:
        if existing[0]["disabled_at"] is None:
            return False
        db.table("subscriptions").update(existing[0]["id"], {"disabled_at": None, "disabled_reason": None})
        return True
    db.table("subscriptions").insert({
        "platform": platform, "channel_id": channel_id, "board_pattern": board_pattern, "rule": rule,
        "created_by": user, "created_at": to_text(now), "disabled_at": None, "disabled_reason": None})
    return True


def remove_subscriptions(db: Database, platform: str, channel_id: str, board_pattern: str | None) -> int:
    """Unsubscribe a channel from a board pattern (None: from everything); how many were removed."""
    where, params = "platform = ? AND channel_id = ?", [platform, channel_id]
    if board_pattern is not None:
        where += " AND board_pattern = ?"
        params.append(board_pattern)
    count = int(db.execute(f"SELECT count(*) FROM subscriptions WHERE {where}", params).fetchone()[0])
    db.execute(f"DELETE FROM subscriptions WHERE {where}", params)
    return count


def disable_channel(db: Database, platform: str, channel_id: str, reason: str, now: datetime) -> int:
    """Disable every subscription of a channel (gone, bot removed) and record why."""
    cursor = db.execute(
        "UPDATE subscriptions SET disabled_at = ?, disabled_reason = ? WHERE platform = ? AND "
        "channel_id = ? AND disabled_at IS NULL", [to_text(now), reason, platform, channel_id])
    return int(cursor.rowcount)


def channel_settings(db: Database, platform: str, channel_id: str) -> dict[str, str]:
    """A channel's settings (only the ones set; callers apply defaults)."""
    rows = db.table("channel_settings").rows_where("platform = ? AND channel_id = ?", [platform, channel_id])
    return {str(r["key"]): str(r["value"]) for r in rows}


def hold_settings(db: Database) -> dict[tuple[str, str], dict[str, str]]:
    """The settings that hold a channel's alerts (mutes, digest), for every channel that has one: one
    query for all channels (`alerts.matching.hold_for` reads nothing else)."""
    rows = db.execute(
        "SELECT platform, channel_id, key, value FROM channel_settings WHERE key IN (?, 'digest', "
        "'digest_hour') OR key LIKE ?", [MUTE, MUTE + ":%"]).fetchall()
    out: dict[tuple[str, str], dict[str, str]] = {}
    for platform, channel_id, key, value in rows:
        out.setdefault((str(platform), str(channel_id)), {})[str(key)] = str(value)
    return out


def set_channel_setting(db: Database, platform: str, channel_id: str, key: str, value: str | None,
                        now: datetime) -> None:
    """Set (or with None, clear) one channel setting."""
    if value is None:
        db.execute("DELETE FROM channel_settings WHERE platform = ? AND channel_id = ? AND key = ?",
                   [platform, channel_id, key])
        return
    db.table("channel_settings").upsert({"platform": platform, "channel_id": channel_id, "key": key,
                                         "value": value, "updated_at": to_text(now)},
                                        pk=("platform", "channel_id", "key"))


def record_audit(db: Database, now: datetime, platform: str, channel_id: str, user_id: str,
                 user_name: str, action: str, detail: str) -> None:
    """Who changed what, when, from which platform."""
    db.table("audit").insert({"at": to_text(now), "platform": platform, "channel_id": channel_id,
                              "user_id": user_id, "user_name": user_name, "action": action,
                              "detail": detail})


def audit_trail(db: Database, platform: str, channel_id: str, limit: int = 20) -> list[dict[str, object]]:
    """A channel's latest configuration changes, newest first."""
    return list(db.table("audit").rows_where("platform = ? AND channel_id = ?", [platform, channel_id],
                                             order_by="id DESC", limit=limit))


def channels_with(db: Database, key: str, value: str) -> list[tuple[str, str]]:
    """The (platform, channel id) of every channel whose setting `key` is `value`."""
    rows = db.execute("SELECT platform, channel_id FROM channel_settings WHERE key = ? AND value = ? "
                      "ORDER BY platform, channel_id", [key, value]).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]
