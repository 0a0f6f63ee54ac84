"""Domain helpers of sources/base.py shared by every source."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from leaderwatch.sources.base import Board, Entry, ShapeError, competition_ranks, make_snapshot, ranked

HIGHER = Board("x/score", "X", "score")
LOWER = Board("x/time", "X", "seconds", higher_is_better=False)


def test_ranked_gives_competition_ranks_in_published_order():
    scored = [("c", 70.0), ("a", 90.0), ("b", 90.0), ("d", 10.0)]
    assert ranked(HIGHER, scored) == [("c", 70.0, 3), ("a", 90.0, 1), ("b", 90.0, 1), ("d", 10.0, 4)]


def test_ranked_follows_the_board_direction():
    scored = iter([("slow", 30.0), ("fast", 5.0), ("also fast", 5.0)])  # any iterable, read once
    assert ranked(LOWER, scored) == [("slow", 30.0, 3), ("fast", 5.0, 1), ("also fast", 5.0, 1)]


def test_ranked_of_nothing_is_nothing():
    assert ranked(HIGHER, []) == []


def test_ranked_agrees_with_competition_ranks():
    scores = [1.0, 3.0, 3.0, 2.0, 0.5]
    assert [rank for _, _, rank in ranked(LOWER, enumerate(scores))] == competition_ranks(scores, False)


# -- scores that cannot be stored (issue 14) --------------------------------------------------------------

def entry(name: str, score: object, rank: int) -> Entry:
    return Entry(name=name, model_key=name, score=score, rank=rank)  # type: ignore[arg-type]


def test_a_nan_among_scores_does_not_scramble_the_ranks_of_the_others():
    assert competition_ranks([70.0, math.nan, 90.0, math.inf, 80.0]) == [3, 4, 1, 4, 2]


@pytest.mark.parametrize(("score", "reason"), [
    (math.nan, "unreadable"), ("12", "unreadable"), (None, "unreadable"), (True, "unreadable"),
    (math.inf, "infinite"), (-math.inf, "infinite"), (-0.5, "negative"),
])
def test_make_snapshot_drops_rows_whose_score_cannot_be_stored(score, reason, caplog):
    at = datetime(2026, 1, 2, tzinfo=UTC)
    snap = make_snapshot(HIGHER, at, at, [entry("good", 10.0, 1), entry("bad\u202e", score, 2)])
    assert [e.name for e in snap.entries] == ["good"]
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (f"x/score as of 2026-01-02: dropped 1 of 2 row(s) that cannot be stored "
                    f"(1 {reason}): 'bad\\u202e'")


def test_a_name_with_no_letter_or_digit_is_dropped(caplog):
    at = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [entry("good", 10.0, 1), Entry(name="***", model_key="", score=9.0, rank=2),
            Entry(name="\u202e\x00", model_key="", score=8.0, rank=3)]
    assert [e.name for e in make_snapshot(HIGHER, at, at, rows).entries] == ["good"]
    assert "dropped 2 of 3 row(s) that cannot be stored (2 unnamed): '***', '\\u202e\\x00'" in caplog.text


def test_a_board_may_allow_negative_scores():
    signed = Board("x/ips", "X", "IPS", negative_scores=True)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    assert [e.score for e in make_snapshot(signed, at, at, [entry("a", -0.2, 1)]).entries] == [-0.2]
    assert signed == Board("x/ips", "X", "IPS")  # a parse-time property: boards read back compare equal


def test_a_table_with_no_usable_score_is_drift():
    at = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ShapeError, match=r"x/score: no usable row \(a name and a score that can be stored\): "
                                         r"2 unreadable"):
        make_snapshot(HIGHER, at, at, [entry("a", math.nan, 1), entry("b", "x", 2)])
    assert make_snapshot(HIGHER, at, at, []).entries == ()  # no rows at all: the parsers say so
