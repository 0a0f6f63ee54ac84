"""Matching through the index of followed patterns: each pattern matched against a board once, and `match`
agreeing with the one-subscription-at-a-time definition on every case."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from leaderwatch.alerts.matching import Followed, Subscription, board_matches, delivery_key, match
from leaderwatch.alerts.models import Event, dedupe_key

T0 = datetime(2025, 3, 1, tzinfo=UTC)
PATTERNS = ["lmarena/*", "lmarena/text", "vision", "coding", "aider/*", "*", "epoch/swe_bench_*"]
BOARDS = ["lmarena/text", "lmarena/vision", "aider/polyglot", "epoch/swe_bench_verified", "livebench/math"]
RULES = ["overtake groups=china,west", "new_leader"]


def event(board: str, rule: str) -> Event:
    return Event(kind="new_leader", board=board, at=T0, rule=rule, subject="leader", model="m", other=None,
                 groups=(), rank_before=2, rank_after=1, score_before=None, score_after=None,
                 confidence="n/a", message=f"{board}: m leads",
                 dedupe_key=dedupe_key("x", board, rule, "", T0))


@pytest.mark.parametrize("board, expected", [
    ("lmarena/text", {"new_leader": ["*", "lmarena/*", "lmarena/text"], "overtake groups=china,west": ["*"]}),
    ("lmarena/vision", {"new_leader": ["*", "lmarena/*", "vision"], "overtake groups=china,west": ["*"]}),
    ("epoch/swe_bench_verified", {"new_leader": ["*", "coding", "epoch/swe_bench_*"],
                                  "overtake groups=china,west": ["*"]}),
    ("livebench/math", {"new_leader": ["*"], "overtake groups=china,west": ["*"]}),
])
def test_followed_on_a_board_names_each_rule_with_its_patterns(board: str, expected) -> None:
    follows = Followed([("new_leader", p) for p in PATTERNS] + [("overtake groups=china,west", "*")])
    assert follows.on_board(board) == expected
    assert follows.patterns("new_leader", board) == expected["new_leader"]
    assert follows.patterns("top_n", board) == []


def test_match_agrees_with_the_definition_on_every_combination() -> None:
    subs = [Subscription(i, platform, channel, pattern, rule) for i, (platform, channel, pattern, rule) in
            enumerate(itertools.product(["slack", "discord"], ["C1", "C2"], PATTERNS, RULES), start=1)
            if (i * 7) % 3]  # about two in three, so channels differ in what they follow
    events = [event(b, r) for b in BOARDS for r in RULES]
    expected: dict[tuple[str, str, str], list[int]] = {}
    for e in events:
        for s in subs:
            if s.rule == e.rule and board_matches(s.board_pattern, e.board):
                expected.setdefault((e.dedupe_key, s.platform, s.channel_id), []).append(s.id)
    got = match(events, subs)
    assert {(d.event.dedupe_key, d.platform, d.channel_id): list(d.subscription_ids) for d in got} == expected
    assert all(d.key == delivery_key(d.event.dedupe_key, d.platform, d.channel_id) for d in got)
    assert len({d.key for d in got}) == len(got)


def test_a_delivery_key_names_its_event_and_channel_and_sorts_as_the_channels_do() -> None:
    assert delivery_key("f" * 24, "slack", "C0123") == "ffffffffffffffffffffffff/slack/C0123"
    channels = [("discord", "1001"), ("discord", "1002"), ("slack", "C1"), ("slack", "C10"), ("slack", "C2")]
    assert sorted(channels, key=lambda c: delivery_key("ab" * 12, *c)) == sorted(channels)
