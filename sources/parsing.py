"""Reading helpers every source shares: payload checks, CSV and JSON, numbers, record fields, dates, files.

Each helper raises `SourceError(source, url, reason)` worded the same for every source, so a fix to,
say, number parsing or the refusal of a truncated CSV is made here once. The sources keep only what is
specific to their service: which columns or keys they need, and what the values mean.

A payload in a shape the parser does not know raises the subclass `ShapeError`: an HTML page where
data was expected, an empty table, missing or renamed columns and fields, values of the wrong type, a
board gone from the fetch. The poller shows such a source as `drifted` and tells the operators once.
A cut-off or malformed download (truncated CSV or JSON, a short last row) stays a plain SourceError: it
is what a network failure looks like, and the next poll usually gets the whole file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import Board, ShapeError, SourceError, looks_like_html

logger = logging.getLogger(__name__)

MISSING = frozenset({"", "-", "n/a", "na", "none", "null", "unknown"})
"""Cell texts (case-folded, stripped) that leaderboards write for "no value"."""

# Only a well-formed thousands grouping ("1,234", "12,345.6") loses its commas: "1,5" (a decimal
# comma) must stay an error rather than become 15.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


# ---------------------------------------------------------------------------------------------
# Payloads


def refuse_html(content: bytes, *, source: str, url: str, expected: str) -> None:
    """Refuse an HTML page (an error page or a login wall) where `expected` data was asked for."""
    if looks_like_html(content):
        raise ShapeError(source, url, f"got an HTML page where {expected} was expected")


def to_text(content: bytes, *, source: str, url: str, expected: str) -> str:
    """A payload's text: no HTML page, not empty, UTF-8 (a leading byte-order mark dropped)."""
    refuse_html(content, source=source, url=url, expected=expected)
    if not content.strip():
        raise ShapeError(source, url, "empty file")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ShapeError(source, url, f"not UTF-8 text: {exc}") from None


def load_json(content: bytes, *, source: str, url: str, expected: str, invalid: str = "") -> Any:
    """Decode a JSON payload; `invalid` words a parse failure (default: "<expected> does not parse")."""
    text = to_text(content, source=source, url=url, expected=expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = invalid or f"{expected} does not parse (malformed or truncated JSON)"
        raise SourceError(source, url, f"{reason}: {exc}") from None


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A CSV file's header (cells stripped) and its non-blank rows, each with its line number."""

    header: list[str]
    rows: list[tuple[int, list[str]]]


def read_csv(
    content: bytes, *, source: str, url: str, expected: str = "a CSV file", short_rows: bool = False,
) -> CsvTable:
    """Parse a CSV payload; refuse an HTML page, an empty table and rows whose field count is off.

    Blank lines are skipped. `short_rows` accepts rows with fewer fields than the header (their
    trailing cells empty) except the last one: a short last row is what a cut-off download looks like.
    """
    text = to_text(content, source=source, url=url, expected=expected)
    # strict: a file cut inside a quoted field is an error, not a row with a shorter last cell.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not any(cell.strip() for cell in fields):
                continue
            if header is None:
                header = [cell.strip() for cell in fields]
            else:
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        reason = f"malformed or truncated CSV at line {reader.line_num}: {exc}"
        raise SourceError(source, url, reason) from None
    if header is None:
        raise ShapeError(source, url, "empty CSV (no header)")
    if not rows:
        raise ShapeError(source, url, "no rows (empty table)")
    width = len(header)
    for n, (line, fields) in enumerate(rows, start=1):
        short = len(fields) < width
        if len(fields) == width or (short_rows and short and n < len(rows)):
            continue
        where = "last row" if short_rows and short else f"line {line}"
        raise SourceError(source, url, f"{where} has {len(fields)} fields where the header has {width} "
                                       "(truncated or malformed file)")
    return CsvTable(header, rows)


# ---------------------------------------------------------------------------------------------
# Values


def is_missing(value: object) -> bool:
    """True for None and for a blank or placeholder cell ("", "-", "N/A", "unknown", ...)."""
    return value is None or (isinstance(value, str) and value.strip().casefold() in MISSING)


def to_number(value: object) -> float:
    """A finite float from a number or a numeric string ("12.5", " 1,234 "); ValueError otherwise."""
    # bool is an int subclass: `pass_rate_2: true` is a broken file, not a score of 1.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if "," in text and _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        number = float(text)
    else:
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            raise ValueError(f"not a finite number: {value!r}") from None
    # NaN would break every ranking and comparison downstream; a leaderboard never means infinity.
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def read_number(
    value: object, what: str, *, source: str, url: str, within: tuple[float, float] | None = None,
) -> float:
    """`value` as a finite number (within the bounds if given), else a SourceError naming `what`."""
    try:
        number = to_number(value)
    except ValueError:
        raise ShapeError(source, url, f"{what} {value!r} is not a number") from None
    if within is not None and not within[0] <= number <= within[1]:
        raise ShapeError(source, url, f"{what} {value!r} is outside {within[0]:g}-{within[1]:g}")
    return number


def read_optional_number(value: object, what: str, *, source: str, url: str) -> float | None:
    """None for a missing cell (see `is_missing`), else `read_number`."""
    if is_missing(value):
        return None
    return read_number(value, what, source=source, url=url)


def read_score(
    value: object, what: str, *, source: str, url: str, within: tuple[float, float] | None = None,
) -> float:
    """A row's score: like `read_number`, except that a cell that is not a finite number ("n/a", "NaN",
    "inf", `true`) or is outside `within` gives NaN instead of an error.

    One such row is a broken row, not a broken table: `make_snapshot` drops it and counts it in the
    snapshot's one log line (`base.usable_entries`). A table with no usable score left (a column that
    changed meaning or scale) is a ShapeError there; one that lost over half its rows is held by the
    poller's shrink check.
    """
    try:
        number = to_number(value)
    except ValueError:
        logger.debug("%s: %s %r is not a number; the row is dropped (%s)", source, what, value, url)
        return math.nan
    if within is not None and not within[0] <= number <= within[1]:
        logger.debug("%s: %s %r is outside %g-%g; the row is dropped (%s)", source, what, value, within[0],
                     within[1], url)
        return math.nan
    return number


def read_optional_score(value: object, what: str, *, source: str, url: str) -> float | None:
    """None for a missing cell (see `is_missing`), else `read_score`."""
    if is_missing(value):
        return None
    return read_score(value, what, source=source, url=url)


def require_columns(present: Collection[object], required: Sequence[str], what: str, *, source: str, url: str
                    ) -> None:
    """Refuse a table (`what`, e.g. "v1 CSV") whose columns lack any of `required`, naming them all."""
    refuse_missing([name for name in required if name not in present], present, what, source=source, url=url)


def refuse_missing(missing: Sequence[str], present: Collection[object], what: str, *, source: str, url: str
                   ) -> None:
    """The one wording of a table lacking columns: which ones, and the first columns it has instead
    (`missing` may name alternatives: `arena_score (or arena_elo)`)."""
    if not missing:
        return
    has = [str(c) for c in present]
    shown = ", ".join(has[:8]) + (", ..." if len(has) > 8 else "")
    raise ShapeError(source, url, f"{what} is missing required columns: {', '.join(missing)} "
                                   f"(it has: {shown or 'none'})")


def missing_fields(record: Mapping[Any, Any], required: Sequence[str]) -> list[str]:
    """The required fields a record lacks or leaves blank (None, "" or spaces)."""
    return [name for name in required
            if (value := record.get(name)) is None or (isinstance(value, str) and not value.strip())]


def check_record(item: object, required: Sequence[str], where: str, *, source: str, url: str
                 ) -> dict[Any, Any]:
    """`item` as a JSON/YAML object holding every required field, else a SourceError naming `where`."""
    if not isinstance(item, dict):
        raise ShapeError(source, url, f"{where} is a {type(item).__name__}, not an object")
    missing = missing_fields(item, required)
    if missing:
        raise ShapeError(source, url, f"{where} lacks required field(s) {', '.join(missing)}")
    return item


def check_boards(found: Iterable[str], expected: Iterable[Board], *, source: str, url: str) -> None:
    """Refuse (ShapeError) a fetch from which a board the source is expected to publish is gone.

    For sources whose one payload holds every board (a zip of CSVs, one JSON of benchmarks): `found`
    are the board ids the payload gave, `expected` the live boards it must give (archived boards are
    not expected). A board that vanished upstream stops updating silently otherwise.
    """
    have = set(found)
    gone = sorted(b.id for b in expected if not b.archived and b.id not in have)
    if gone:
        raise ShapeError(source, url, f"board(s) gone from the fetch: {', '.join(gone)} "
                                      f"(it gave: {', '.join(sorted(have)) or 'none'})")


# ---------------------------------------------------------------------------------------------
# Dates and recorded files


def midnight_utc(day: date | str) -> datetime:
    """00:00 UTC of a date or of an ISO date text ("2025-01-24"); ValueError for a bad text."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def dated_files(folder: Path, glob: str, pattern: re.Pattern[str], *, source: str
                ) -> list[tuple[Path, datetime]]:
    """Files of `folder` matching `glob` with the date their name carries (`pattern` group `date`).

    A file whose name has no valid date is logged and left out rather than guessed.
    """
    found: list[tuple[Path, datetime]] = []
    for path in sorted(folder.glob(glob)):
        match = pattern.search(path.name)
        try:
            as_of = midnight_utc(match["date"]) if match else None
        except ValueError:  # a date that does not exist, e.g. 2025-02-30
            as_of = None
        if as_of is None:
            logger.warning("%s: no snapshot date in file name %s; skipped", source, path)
            continue
        found.append((path, as_of))
    return found


def read_recording(path: Path, *, source: str) -> bytes:
    """The bytes of a recorded file; a SourceError when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(source, str(path), f"cannot read recording: {exc}") from exc
