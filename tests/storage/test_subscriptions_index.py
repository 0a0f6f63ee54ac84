"""Reading subscriptions for a fan-out through their index: the followed (rule, pattern) pairs by skipping
through it, a pattern's channels a page at a time, the hold settings of every channel in one query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leaderwatch.storage.subscriptions import (
    add_subscription,
    disable_channel,
    followed,
    hold_settings,
    set_channel_setting,
    subscribers,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def db(any_db):
    with any_db.atomic():
        for platform, channel, pattern, rule in [
                ("slack", "C1", "lmarena/*", "overtake groups=china,west"),
                ("slack", "C1", "lmarena/*", "new_leader"),
                ("slack", "C2", "lmarena/*", "new_leader"),
                ("discord", "1001", "lmarena/*", "new_leader"),
                ("discord", "1002", "lmarena/*", "new_leader"),
                ("slack", "C3", "coding", "new_leader"),
                ("slack", "C4", "aider/*", "top_n top=5"),
                ("slack", "C9", "swebench/*", "gap groups=china,west")]:
            add_subscription(any_db, platform, channel, pattern, rule, "U1", T0)
        disable_channel(any_db, "slack", "C9", "channel_not_found", T0)
    return any_db


def test_followed_lists_each_active_pair_once_in_order(db) -> None:
    assert followed(db) == [("new_leader", "coding"), ("new_leader", "lmarena/*"),
                            ("overtake groups=china,west", "lmarena/*"), ("top_n top=5", "aider/*")]


def test_followed_of_an_empty_table_is_empty(any_db) -> None:
    assert followed(any_db) == []


@pytest.mark.parametrize("page", [1, 2, 3, 100])
def test_subscribers_come_a_page_at_a_time_each_platform_in_channel_order(db, page: int) -> None:
    pages = list(subscribers(db, "new_leader", ["lmarena/*", "coding"], page=page))
    assert all(len(rows) <= page for rows in pages)
    assert [row for rows in pages for row in rows] == [
        ("discord", "1001", "[4]"), ("discord", "1002", "[5]"),
        ("slack", "C1", "[2]"), ("slack", "C2", "[3]"), ("slack", "C3", "[6]")]


def test_a_disabled_subscription_is_neither_followed_nor_a_subscriber(db) -> None:
    assert list(subscribers(db, "gap groups=china,west", ["swebench/*"])) == []


@pytest.mark.parametrize("query", [
    "SELECT min(rule) FROM subscriptions INDEXED BY idx_subscriptions_active_rule_pattern "
    "WHERE disabled_at IS NULL AND rule > ?",
    "SELECT platform, channel_id, '[' || id || ']' FROM subscriptions INDEXED BY "
    "idx_subscriptions_active_rule_pattern WHERE disabled_at IS NULL AND rule = ? AND board_pattern = ? "
    "AND platform = ? AND channel_id > ? ORDER BY channel_id LIMIT 10"])
def test_the_fan_out_reads_subscriptions_by_seeking_never_scanning(db, query: str) -> None:
    # SQLite only by nature: its query plans and its INDEXED BY hint (PostgreSQL plans by statistics).
    if db.backend != "sqlite":
        pytest.skip("SQLite's query plan (EXPLAIN QUERY PLAN, INDEXED BY)")
    plan = " ".join(str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + query, ["x"] * query.count("?")))
    assert "SEARCH subscriptions USING COVERING INDEX idx_subscriptions_active_rule_pattern" in plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan


def test_hold_settings_are_the_mutes_and_digests_of_every_channel(db) -> None:
    with db.atomic():
        set_channel_setting(db, "slack", "C1", "mute_until", "2025-03-02T00:00:00+00:00", T0)
        set_channel_setting(db, "slack", "C1", "mute_until:aider/*", "2025-03-03T00:00:00+00:00", T0)
        set_channel_setting(db, "slack", "C1", "groups", "china,west", T0)
        set_channel_setting(db, "discord", "1001", "digest", "daily", T0)
        set_channel_setting(db, "discord", "1001", "digest_hour", "7", T0)
        set_channel_setting(db, "slack", "C2", "groups", "us", T0)
    assert hold_settings(db) == {
        ("slack", "C1"): {"mute_until": "2025-03-02T00:00:00+00:00",
                          "mute_until:aider/*": "2025-03-03T00:00:00+00:00"},
        ("discord", "1001"): {"digest": "daily", "digest_hour": "7"}}
