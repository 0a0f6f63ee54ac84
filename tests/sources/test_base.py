"""Domain helpers of sources/base.py shared by every source."""

from __future__ import annotations

from leaderwatch.sources.base import Board, competition_ranks, ranked

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
