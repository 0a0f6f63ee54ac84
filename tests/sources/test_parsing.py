"""The reading helpers every source shares: one wording and one set of rules for all six sources."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from leaderwatch.sources.base import Board, ShapeError, SourceError
from leaderwatch.sources.parsing import (
    CsvTable,
    check_boards,
    check_record,
    dated_files,
    is_missing,
    load_json,
    midnight_utc,
    missing_fields,
    read_csv,
    read_number,
    read_optional_number,
    read_optional_score,
    read_recording,
    read_score,
    refuse_html,
    require_columns,
    to_number,
    to_text,
)

URL = "test://payload"
WHERE = {"source": "test", "url": URL}
HTML_PAGES = [
    b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
    b"\n  <html><head><title>Sign in</title></head></html>",
    b"<HEAD></HEAD>",
    b"<body>Error</body>",
]


def refusal(parse: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The reason of the SourceError that `parse(*args, source=..., url=URL, **kwargs)` raises."""
    with pytest.raises(SourceError) as info:
        parse(*args, **WHERE, **kwargs)
    assert (info.value.source, info.value.url) == ("test", URL)
    return info.value.reason


# --- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [
    (12, 12.0),
    (12.5, 12.5),
    (-3, -3.0),
    ("12.5", 12.5),
    (" 12.5\t", 12.5),
    ("1e3", 1000.0),
    ("-0.25", -0.25),
    # Thousands separators, as a scraped page may write vote counts.
    ("1,234", 1234.0),
    ("12,345,678", 12345678.0),
    ("-1,234.5", -1234.5),
])
def test_numbers_that_read(value, number):
    assert to_number(value) == number


@pytest.mark.parametrize("value", [
    "", "  ", "n/a", "abc", "12.5%", "50 %",
    # A decimal comma or a malformed grouping is refused, not read as thousands.
    "1,5", "1,23", "12,34,567", ",123",
    # Not finite: a NaN would break ranking and every comparison after it.
    "NaN", "nan", "inf", "-Infinity", "1e400", float("nan"), float("inf"), float("-inf"), 10 ** 400,
    # bool is an int subclass; a list or None is a broken record.
    True, False, None, [1], {"score": 1},
])
def test_values_that_are_not_numbers(value):
    with pytest.raises(ValueError):
        to_number(value)


def test_read_number_names_what_and_where():
    assert read_number("42.49", "line 2: average", **WHERE) == 42.49
    assert refusal(read_number, "n/a", "line 2: average") == "line 2: average 'n/a' is not a number"
    assert refusal(read_number, None, "row 0: Average") == "row 0: Average None is not a number"
    assert refusal(read_number, "NaN", "line 2: average") == "line 2: average 'NaN' is not a number"
    assert refusal(read_number, True, "run 1: pass_rate_2") == "run 1: pass_rate_2 True is not a number"


def test_read_number_bounds_are_inclusive():
    assert read_number(0, "resolved", within=(0.0, 100.0), **WHERE) == 0.0
    assert read_number("100", "resolved", within=(0.0, 100.0), **WHERE) == 100.0
    for value in (100.01, "-1", 250):
        assert refusal(read_number, value, "resolved", within=(0.0, 100.0)) == (
            f"resolved {value!r} is outside 0-100")


@pytest.mark.parametrize("cell", [None, "", "  ", "-", "n/a", "N/A", "NA", "none", "null", "Unknown"])
def test_missing_cells(cell):
    assert is_missing(cell)
    assert read_optional_number(cell, "votes", **WHERE) is None


@pytest.mark.parametrize("value", [0, 0.0, "0", "x", False, [], "nan"])
def test_present_values_are_not_missing(value):
    assert not is_missing(value)


def test_read_optional_number_still_refuses_garbage():
    assert read_optional_number(" 7 ", "votes", **WHERE) == 7.0
    assert refusal(read_optional_number, "abc", "model 'm', task 't':") == (
        "model 'm', task 't': 'abc' is not a number")
    assert refusal(read_optional_number, "nan", "line 3: CI low") == "line 3: CI low 'nan' is not a number"


@pytest.mark.parametrize("cell", ["n/a", "abc", "NaN", "inf", "-Infinity", True, None, [1], 100.5, "-1"])
def test_a_score_that_cannot_be_read_is_nan_not_an_error(cell):
    # Issue 14: one broken row must not take the table down; make_snapshot drops and counts it.
    assert math.isnan(read_score(cell, "resolved", within=(0.0, 100.0), **WHERE))


def test_scores_that_read():
    assert read_score(" 42.5 ", "average", **WHERE) == 42.5
    assert read_score("-3", "ips", **WHERE) == -3.0  # negative: the board decides (make_snapshot)
    assert read_score(100, "resolved", within=(0.0, 100.0), **WHERE) == 100.0
    assert read_optional_score("-", "task", **WHERE) is None
    assert math.isnan(read_optional_score("abc", "task", **WHERE) or 0.0)


# --- payloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", HTML_PAGES)
def test_html_pages_are_refused_everywhere(page):
    expected = "got an HTML page where the table CSV was expected"
    assert refusal(refuse_html, page, expected="the table CSV") == expected
    assert refusal(to_text, page, expected="the table CSV") == expected
    assert refusal(read_csv, page, expected="the table CSV") == expected
    assert refusal(load_json, page, expected="rows JSON") == "got an HTML page where rows JSON was expected"


def test_data_that_mentions_html_is_not_a_page():
    refuse_html(b'model,url\nx,"<html>"\n', expected="a CSV file", **WHERE)
    refuse_html(b'{"html": "<html>"}', expected="JSON", **WHERE)


def test_to_text():
    assert to_text("\ufeffmodel,score\n".encode(), expected="a CSV file", **WHERE) == "model,score\n"
    assert refusal(to_text, b"", expected="a CSV file") == "empty file"
    assert refusal(to_text, b" \n\t\n", expected="a CSV file") == "empty file"
    assert refusal(to_text, b"model\n\xff\xfe\n", expected="a CSV file").startswith("not UTF-8 text: ")


def test_load_json():
    assert load_json('\ufeff{"a": [1, 2]}'.encode(), expected="JSON", **WHERE) == {"a": [1, 2]}
    assert refusal(load_json, b'{"Coding": ["code_gen', expected="the categories JSON").startswith(
        "the categories JSON does not parse (malformed or truncated JSON): Unterminated string")
    assert refusal(load_json, b"not json", expected="rows JSON", invalid="rows response is not valid JSON"
                   ).startswith("rows response is not valid JSON: Expecting value")
    assert refusal(load_json, b"", expected="JSON") == "empty file"


# --- CSV ------------------------------------------------------------------------------------------


def test_read_csv_header_rows_and_line_numbers():
    content = b'\xef\xbb\xbf model , score\n\na,1\n,,\n"b, the second",2\n"c\nd",3\n'
    assert read_csv(content, **WHERE) == CsvTable(
        ["model", "score"], [(3, ["a", "1"]), (5, ["b, the second", "2"]), (7, ["c\nd", "3"])])


@pytest.mark.parametrize(("content", "message"), [
    (b"model,score\n", r"no rows \(empty table\)"),
    (b"model,score\n\n , \n", r"no rows \(empty table\)"),
    (b",,\n", r"empty CSV \(no header\)"),
    (b"", r"empty file"),
    (b"model,score\na,1\nb\n", r"line 3 has 1 fields where the header has 2 \(truncated or malformed file\)"),
    (b"model,score\na,1,extra\nb,2\n", r"line 2 has 3 fields where the header has 2 .*"),
    # Cut inside a quoted field: an error, not a row with a shorter last cell.
    (b'model,note\na,"unfinished', r"malformed or truncated CSV at line 2: unexpected end of data"),
    (b'model,note\na,"x"y\n', r"malformed or truncated CSV at line 2: .*"),
])
def test_read_csv_refusals(content, message):
    assert re.fullmatch(message, refusal(read_csv, content))


def test_read_csv_short_rows():
    content = b"model,t1,t2,t3\na,1,2,3\nb,1\nc,1,2,3\n"
    assert read_csv(content, short_rows=True, **WHERE).rows[1] == (3, ["b", "1"])
    assert refusal(read_csv, content).startswith("line 3 has 2 fields where the header has 4")
    # A short last row is what a cut-off download looks like.
    assert refusal(read_csv, b"model,t1,t2,t3\na,1,2,3\nb,1\n", short_rows=True) == (
        "last row has 2 fields where the header has 4 (truncated or malformed file)")
    assert refusal(read_csv, b"model,t1,t2,t3\na,1,2,3,4\nb,1,2,3\n", short_rows=True).startswith(
        "line 2 has 5 fields where the header has 4")


# --- columns and records --------------------------------------------------------------------------


def test_require_columns_names_every_missing_one_in_order():
    require_columns(["model", "score", "votes"], ("score", "model"), "v2 CSV", **WHERE)
    require_columns({"fullname": "x", "Average": 1}, ("fullname",), "row 0", **WHERE)
    assert refusal(require_columns, ["model"], ("score", "model", "precision"), "v2 schema B CSV") == (
        "v2 schema B CSV is missing required columns: score, precision (it has: model)")
    many = [f"c{i}" for i in range(10)]
    assert refusal(require_columns, many, ("x",), "t") == (
        "t is missing required columns: x (it has: c0, c1, c2, c3, c4, c5, c6, c7, ...)")


def test_missing_fields_counts_none_and_blank_text():
    record = {"a": None, "b": "", "c": "  ", "d": 0, "e": False, "f": "x"}
    assert missing_fields(record, ("a", "b", "c", "d", "e", "f", "g")) == ["a", "b", "c", "g"]


def test_check_record():
    run = {"model": "gpt-4o", "pass_rate_2": 72.9}
    assert check_record(run, ("model", "pass_rate_2"), "run 1", **WHERE) is run
    assert refusal(check_record, {"model": " ", "dirname": "x"}, ("model", "pass_rate_2"), "run 2 (x)") == (
        "run 2 (x) lacks required field(s) model, pass_rate_2")
    assert refusal(check_record, ["x", 1], ("name",), "lite row 3") == "lite row 3 is a list, not an object"
    assert refusal(check_record, None, ("name",), "models[0]") == "models[0] is a NoneType, not an object"


# --- dates and files ------------------------------------------------------------------------------


def test_midnight_utc():
    assert midnight_utc(date(2025, 1, 24)) == datetime(2025, 1, 24, tzinfo=UTC)
    assert midnight_utc("2025-01-24") == datetime(2025, 1, 24, tzinfo=UTC)
    with pytest.raises(ValueError):
        midnight_utc("2025-02-30")


def test_dated_files_skip_names_without_a_valid_date(tmp_path, caplog):
    for name in ("board_2025-03-01.json", "board_2024-12-31__trimmed.json", "board_latest.json",
                 "board_2025-02-30.json", "other_2025-01-01.json"):
        (tmp_path / name).write_text("{}")
    pattern = re.compile(r"_(?P<date>\d{4}-\d{2}-\d{2})(?:__[^.]*)?\.json$")
    with caplog.at_level(logging.WARNING, logger="leaderwatch.sources.parsing"):
        found = dated_files(tmp_path, "board_*.json", pattern, source="test")
    assert [(p.name, d) for p, d in found] == [
        ("board_2024-12-31__trimmed.json", datetime(2024, 12, 31, tzinfo=UTC)),
        ("board_2025-03-01.json", datetime(2025, 3, 1, tzinfo=UTC)),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.name == "leaderwatch.sources.parsing"]
    assert len(warnings) == 2
    assert all("test: no snapshot date in file name" in w for w in warnings)
    assert {Path(w.split(" name ", 1)[1].removesuffix("; skipped")).name for w in warnings} == {
        "board_2025-02-30.json", "board_latest.json"}
    assert dated_files(tmp_path / "absent", "*.json", pattern, source="test") == []


def test_read_recording(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"model\n")
    assert read_recording(path, source="test") == b"model\n"
    with pytest.raises(SourceError) as info:
        read_recording(tmp_path / "gone.csv", source="test")
    assert info.value.reason.startswith("cannot read recording: ")
    assert (info.value.source, info.value.url) == ("test", str(tmp_path / "gone.csv"))


# --- shape errors (drift) vs failures -----------------------------------------------------------------

SHAPES = {
    "an HTML page": lambda: refuse_html(HTML_PAGES[0], expected="a CSV file", **WHERE),
    "an empty file": lambda: to_text(b"  \n", expected="JSON", **WHERE),
    "not UTF-8": lambda: to_text(b"\xff\xfe\x00a", expected="JSON", **WHERE),
    "a CSV without rows": lambda: read_csv(b"model,score\n", **WHERE),
    "a renamed column": lambda: require_columns(["model", "elo"], ["model", "rating"], "text CSV", **WHERE),
    "a text where a number was": lambda: read_number("n/a?", "row 3: score", **WHERE),
    "a number out of range": lambda: read_number(140, "pass rate", within=(0, 100), **WHERE),
    "a list where an object was": lambda: check_record([1], ["model"], "row 1", **WHERE),
    "a field gone": lambda: check_record({"model": "x"}, ["model", "score"], "row 1", **WHERE),
}
FAILURES = {
    "a CSV cut inside a quoted field": lambda: read_csv(b'model,score\n"gpt,1\n', **WHERE),
    "a short last row": lambda: read_csv(b"model,score\na,1\nb\n", **WHERE),
    "JSON cut short": lambda: load_json(b'{"a": [1, 2', expected="JSON", **WHERE),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_a_shape_the_parser_does_not_know_is_a_shape_error(case):
    """What the poller shows as drift: the origin answered, in a shape these helpers refuse."""
    with pytest.raises(ShapeError) as info:
        SHAPES[case]()
    assert (info.value.source, info.value.url) == ("test", URL)


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_cut_off_download_stays_a_plain_failure(case):
    """What a network failure looks like: retried as a failure, never announced as drift."""
    with pytest.raises(SourceError) as info:
        FAILURES[case]()
    assert type(info.value) is SourceError


def test_check_boards_refuses_an_expected_board_gone_from_the_fetch():
    boards = [Board("epoch/eci", "ECI", "eci"), Board("epoch/gpqa", "GPQA", "score"),
              Board("epoch/old", "Old", "score", archived=True)]
    check_boards(["epoch/gpqa", "epoch/eci", "epoch/extra"], boards, **WHERE)
    with pytest.raises(ShapeError) as info:
        check_boards(["epoch/gpqa"], boards, **WHERE)
    assert info.value.reason == "board(s) gone from the fetch: epoch/eci (it gave: epoch/gpqa)"
    assert refusal(check_boards, [], boards) == ("board(s) gone from the fetch: epoch/eci, epoch/gpqa "
                                                 "(it gave: none)")
