"""One timeline per board: the most authoritative family per period, never interleaved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from leaderwatch.sources.base import Recording
from leaderwatch.sources.timeline import board_timeline, build_timelines, selected


def rec(family: str, priority: int, day: str, boards: tuple[str, ...] = ("x/text",)) -> Recording:
    when = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return Recording(family, priority, boards, when, Path(f"/data/{family}/{day}"))


def test_official_table_wins_and_others_fill_before_and_after() -> None:
    history = [rec("derived-elo", 30, d) for d in ("2023-05-08", "2024-01-01", "2024-06-14", "2024-07-01")]
    official = [rec("official-csv", 10, d) for d in ("2024-06-19", "2024-09-01", "2025-07-18")]
    scrape = [rec("scrape", 40, d) for d in ("2025-07-20", "2026-03-19", "2026-04-19")]
    tl = board_timeline("x/text", history + official + scrape)
    spans = [(p.family, f"{p.start:%Y-%m-%d}", f"{p.end:%Y-%m-%d}") for p in tl.periods]
    assert spans == [
        ("derived-elo", "2023-05-08", "2024-01-01"),
        ("official-csv", "2024-06-19", "2025-07-18"),
        ("scrape", "2026-03-19", "2026-04-19"),
    ]
    left_out = sorted(f"{r.family}@{r.as_of:%Y-%m-%d}" for r in tl.superseded)
    # 2024-06-14 is within the margin of the official table: no interleaving on nearby dates.
    assert left_out == ["derived-elo@2024-06-14", "derived-elo@2024-07-01", "scrape@2025-07-20"]


def test_a_gap_inside_a_lower_family_splits_it_into_periods() -> None:
    low = [rec("json", 20, d) for d in ("2025-01-01", "2025-03-01", "2025-06-01")]
    high = [rec("csv", 10, "2025-03-03")]
    tl = board_timeline("x/text", low + high)
    assert [(p.family, len(p.recordings)) for p in tl.periods] == [("json", 1), ("csv", 1), ("json", 1)]


def test_recordings_of_other_boards_are_ignored_and_selection_is_per_board() -> None:
    both = rec("multi", 10, "2025-01-01", ("a/x", "a/y"))
    only_y = rec("better-y", 0, "2025-01-02", ("a/y",))
    timelines = build_timelines([both, only_y])
    assert set(timelines) == {"a/x", "a/y"}
    chosen = selected(timelines.values())
    assert chosen[both] == {"a/x"} and chosen[only_y] == {"a/y"}


def test_margin_is_configurable() -> None:
    a = rec("a", 10, "2025-01-10")
    b = rec("b", 20, "2025-01-12")
    assert len(board_timeline("x/text", [a, b]).periods) == 1
    assert len(board_timeline("x/text", [a, b], margin=timedelta(0)).periods) == 2
