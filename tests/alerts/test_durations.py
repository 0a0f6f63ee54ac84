"""The one duration grammar: what it reads, what it refuses, and how it writes a duration back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leaderwatch.alerts.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("1.5h", timedelta(minutes=90)),
    ("2d", timedelta(days=2)), ("2w", timedelta(weeks=2)), (" 2H ", timedelta(hours=2)),
    ("1.5s", timedelta(seconds=1)), (".5h", timedelta(minutes=30)), ("10 m", timedelta(minutes=10)),
])
def test_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "90", "15 minutes", "m", "", "-1h", "1e400s", "infm", "nanh",
                                  "1,5h", "2 w 3 d", "1.h"])
def test_anything_else_is_refused_with_the_grammar(text: str) -> None:
    with pytest.raises(DurationError, match=r"is not a duration; write a number and a unit: s, m, h, d or w, "
                                            r"e\.g\. 90s, 30m, 1\.5h, 2d, 2w"):
        parse_duration(text)


def test_bounds_are_the_callers() -> None:
    assert parse_duration("30d", maximum=timedelta(days=30)) == timedelta(days=30)
    with pytest.raises(DurationError, match="`31d` is too long: at most 30d"):
        parse_duration("31d", maximum=timedelta(days=30))
    with pytest.raises(DurationError, match="`30s` is too short: at least 1m"):
        parse_duration("30s", minimum=timedelta(minutes=1))
    with pytest.raises(DurationError, match="`0s` is too short: at least 1s"):
        parse_duration("0s")
    with pytest.raises(DurationError, match="too long: at most 3650d"):
        parse_duration("99999999w")


def test_zero_only_where_the_caller_allows_it() -> None:
    assert parse_duration("0", zero=True) == timedelta(0)
    assert parse_duration("0m", zero=True) == timedelta(0)
    with pytest.raises(DurationError, match="is not a duration"):
        parse_duration("0")


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(weeks=2), "2w"), (timedelta(days=3), "3d"), (timedelta(hours=36), "36h"),
    (timedelta(seconds=90), "90s"), (timedelta(minutes=90), "90m"), (timedelta(0), "0"),
])
def test_written_back_shortest_and_read_again(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text, zero=True) == value
