"""LiveBench (livebench.ai): per-task scores in a wide CSV, averaged into category and global boards.

The site publishes one table per benchmark release, `table_<YYYY_MM_DD>.csv` (`model,<task>,...`,
scores 0-100), and `categories_<YYYY_MM_DD>.json` (category -> task list). Neither the global nor the
category averages are in the CSV: the site computes them in the browser, and so do we, the same way
(LiveBench/livebench.github.io `src/Table/Averaging.js`):

- a category average is the mean over the category's tasks that have a number for the model (empty,
  blank or `N/A` cells are skipped); a model with no number in any of the category's tasks has no
  average for it and is left off that category board;
- the global average is the mean of the category averages; a model missing a whole category has none
  (the site shows `-`) and is left off the global board, but stays on its other category boards;
- both are shown rounded to 2 decimals, and the site sorts on the rounded value.

The newest release is not published in any machine-readable file of the site: its React bundle
hard-codes it (`useState('<date>')` and a slider of release dates in `src/App.js`). The files it
serves are those of the `public/` folder of its repository, LiveBench/livebench.github.io, which
GitHub's contents API lists (INDEX_URL). So each poll reads that listing and follows the newest release
that has both its `table_<date>.csv` and `categories_<date>.json`; a new release is a new snapshot of
the same boards (the release is the snapshot's `method`), never a new board. When the listing cannot be
had (GitHub's limit is 60 requests an hour without a token), the release found last is kept.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from leaderwatch.sources.base import (
    Board,
    Entry,
    Recording,
    ShapeError,
    Snapshot,
    SourceError,
    make_snapshot,
    ranked,
)
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import (
    load_json,
    midnight_utc,
    read_csv,
    read_optional_score,
    read_recording,
)

logger = logging.getLogger(__name__)

NAME = "livebench"
SITE_URL = "https://livebench.ai/"
BASE_URL = "https://livebench.ai/"
"""Where the site serves each release's `table_<date>.csv` and `categories_<date>.json`."""
TABLE_FILE = "table_{release}.csv"
CATEGORIES_FILE = "categories_{release}.json"
INDEX_URL = "https://api.github.com/repos/LiveBench/livebench.github.io/contents/public"
"""GitHub's listing of the site's `public/` folder: the releases published."""
_RELEASE_FILE = re.compile(r"^(?P<kind>table|categories)_(?P<release>\d{4}_\d{2}_\d{2})\.(?P<ext>csv|json)$")

ORIGIN = "livebench-table"
FAMILY = "livebench/table-csv"
GLOBAL_BOARD = "livebench/global"

# Category names as the categories files spell them -> board slug. A category a future release adds
# gets `slugify(name)` (e.g. "Agentic Coding" -> "agentic_coding").
CATEGORY_SLUGS: dict[str, str] = {
    "Reasoning": "reasoning",
    "Coding": "coding",
    "Agentic Coding": "agentic_coding",
    "Mathematics": "math",
    "Data Analysis": "data_analysis",
    "Language": "language",
    "IF": "instruction_following",
}
_CATEGORY_TITLES: dict[str, str] = {
    "reasoning": "Reasoning",
    "coding": "Coding",
    "agentic_coding": "Agentic Coding",
    "math": "Mathematics",
    "data_analysis": "Data Analysis",
    "language": "Language",
    "instruction_following": "Instruction Following",
}

# The site overrides two global averages by hand (Averaging.js, commits a281e0b and 4ae1ecb,
# 2025-02-21/27): xAI's Grok 3 rows were published with most tasks `N/A` and a global average taken
# from xAI's own report. We show what the site shows.
SITE_GLOBAL_OVERRIDES: dict[str, float] = {"grok-3-thinking": 72.0, "grok-3": 58.0}

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_AS_OF = r"__as_of_(?P<date>\d{4}-\d{2}-\d{2})"
_TABLE_FILE = re.compile(r"^table(?:_(?P<release>\d{4}_\d{2}_\d{2}))?" + _AS_OF + r"\.csv$")
_CATEGORIES_FILE = re.compile(r"^categories(?:_\d{4}_\d{2}_\d{2})?" + _AS_OF + r"\.json$")
PRERELEASE_DIR = "table_prerelease_2024"
PRERELEASE_RELEASE = "2024_06_24"
"""The pre-release `public/table.csv` (2024-06 to 2024-07) holds the 2024-06-24 release's rows."""


def slugify(category: str) -> str:
    """The board slug of a category name ("Data Analysis" -> "data_analysis")."""
    known = CATEGORY_SLUGS.get(category)
    if known:
        return known
    return _SLUG_JUNK.sub("_", category.strip().lower()).strip("_")


def global_board() -> Board:
    """The board of the global average (mean of category means)."""
    return Board(GLOBAL_BOARD, "LiveBench global average", "mean of category averages (0-100)",
                 url=SITE_URL)


def category_board(slug: str) -> Board:
    """The board of one category's average."""
    title = _CATEGORY_TITLES.get(slug) or slug.replace("_", " ").title()
    return Board(f"{NAME}/{slug}", f"LiveBench {title} average", "mean of the category's tasks (0-100)",
                 url=SITE_URL)


def _board_id(category: str) -> str:
    return f"{NAME}/{slugify(category)}"


def parse_categories(content: bytes, *, url: str) -> dict[str, list[str]]:
    """Parse a `categories_<release>.json` (category -> list of task columns)."""
    data = load_json(content, source=NAME, url=url, expected="the categories JSON")
    if not isinstance(data, dict) or not data:
        raise SourceError(NAME, url, "categories JSON is not a non-empty object of category -> tasks")
    categories: dict[str, list[str]] = {}
    for category, tasks in data.items():
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
            raise SourceError(NAME, url, f"category {category!r} is not a non-empty list of task names")
        categories[category] = tasks
    return categories


def read_table(content: bytes, *, url: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The task columns and, per model, its numeric task scores (missing cells left out)."""
    # A short row is real (nemotron-3-super-120b-a12b in table_2026_01_08 from 2026-04-07 has 21 of
    # 24 fields): the site's CSV parser leaves the missing trailing cells empty, and so do we.
    table = read_csv(content, source=NAME, url=url, expected="the table CSV", short_rows=True)
    header = table.header
    if header[0] != "model":
        raise SourceError(NAME, url, f"first column must be 'model', found {header[:1]}")
    tasks = header[1:]
    if not tasks:
        raise SourceError(NAME, url, "no task columns after 'model'")
    scores: dict[str, dict[str, float]] = {}
    for line, row in table.rows:
        model = row[0].strip()
        if not model:
            raise SourceError(NAME, url, f"line {line} has no model name")
        if model in scores:
            logger.warning("%s: model %r listed twice in %s; keeping the first row", NAME, model, url)
            continue
        values: dict[str, float] = {}
        for task, cell in zip(tasks, row[1:], strict=False):
            value = read_optional_score(cell, f"model {model!r}, task {task!r}:", source=NAME, url=url)
            if value is not None:
                values[task] = value
        scores[model] = values
    return tasks, scores


def check_categories(tasks: Sequence[str], categories: Mapping[str, Sequence[str]], *, url: str) -> None:
    """Refuse a categories file with a category none of whose tasks is a column of the table."""
    columns = set(tasks)
    for category, members in categories.items():
        if not columns.intersection(members):
            raise SourceError(NAME, url, f"category {category!r} lists tasks {list(members)}, none of "
                                         "which is a column of the table: table and categories differ")


def category_averages(values: Mapping[str, float], categories: Mapping[str, Sequence[str]]
                      ) -> dict[str, float | None]:
    """Per category, the unrounded mean of the tasks the model has a number for (None if none)."""
    out: dict[str, float | None] = {}
    for category, members in categories.items():
        present = [values[t] for t in members if t in values]
        out[category] = sum(present) / len(present) if present else None
    return out


def global_average(model: str, averages: Mapping[str, float | None]) -> float | None:
    """The mean of the category averages, None when a category has no average (site: `-`)."""
    if model in SITE_GLOBAL_OVERRIDES:
        return SITE_GLOBAL_OVERRIDES[model]
    means = list(averages.values())
    if not means or any(m is None for m in means):
        return None
    return sum(m for m in means if m is not None) / len(means)


def _ranked(board: Board, scored: list[tuple[str, float]], identity: Identity, templates: dict[str, Entry]
            ) -> list[Entry]:
    entries = []
    for name, score, rank in ranked(board, scored):
        # A model sits on up to eight boards per file and in ~150 files: resolve its identity once.
        template = templates.get(name)
        if template is None:
            template = templates[name] = identity.entry(name, 0.0, 0)
        # Not dataclasses.replace: it costs a third of the whole history import here.
        entries.append(Entry(
            name=template.name, model_key=template.model_key, score=score, rank=rank,
            organization=template.organization, countries=template.countries, mixed=template.mixed,
            open_weights=template.open_weights, components=template.components,
        ))
    return entries


def parse_livebench(
    table: bytes,
    categories: bytes,
    *,
    identity: Identity,
    url: str,
    categories_url: str,
    as_of: datetime,
    fetched_at: datetime,
    release: str,
    origin: str = ORIGIN,
    templates: dict[str, Entry] | None = None,
) -> list[Snapshot]:
    """Parse one release table with its categories into the global board and one board per category.

    `templates` caches the resolved identity of each model name across calls (score and rank zero).
    """
    templates = {} if templates is None else templates
    cats = parse_categories(categories, url=categories_url)
    tasks, scores = read_table(table, url=url)
    check_categories(tasks, cats, url=url)
    per_board: dict[str, list[tuple[str, float]]] = {GLOBAL_BOARD: []}
    boards: dict[str, Board] = {GLOBAL_BOARD: global_board()}
    for category in cats:
        board = category_board(slugify(category))
        boards[board.id] = board
        per_board[board.id] = []
    for model, values in scores.items():
        averages = category_averages(values, cats)
        for category, avg in averages.items():
            if avg is not None:
                per_board[_board_id(category)].append((model, round(avg, 2)))
        overall = global_average(model, averages)
        if overall is not None:
            per_board[GLOBAL_BOARD].append((model, round(overall, 2)))
    snapshots = []
    for board_id, scored in per_board.items():
        if not scored:
            # A category whose tasks nobody has a number for yet: the site shows `-` everywhere.
            logger.warning("%s: %s has no scored model in %s; board left out", NAME, board_id, url)
            continue
        board = boards[board_id]
        snapshots.append(make_snapshot(board, as_of, fetched_at, _ranked(board, scored, identity, templates),
                                       origin=origin, method=release))
    if not snapshots:
        raise SourceError(NAME, url, "no model has a score on any board")
    return snapshots


@dataclass(frozen=True, slots=True)
class _TableFile:
    release: str
    as_of: date
    path: Path


def _day(text: str) -> date:
    return date.fromisoformat(text)


def categories_files(folder: Path) -> list[tuple[date, Path]]:
    """The categories files of one release folder, oldest first."""
    found = []
    for path in folder.glob("categories_*.json"):
        m = _CATEGORIES_FILE.match(path.name)
        if m:
            found.append((_day(m["date"]), path))
    return sorted(found)


def categories_for(table: Path, as_of: date) -> Path:
    """The categories file for a recorded table: same release, latest as of the table's date.

    Falls back to the release's earliest categories file when none is that old (the 2024 releases'
    categories were first committed after some of their tables).
    """
    folder = table.parent
    if folder.name == PRERELEASE_DIR:
        candidates = categories_files(folder)
    else:
        release = folder.name.removeprefix("table_")
        candidates = categories_files(folder.parent / f"categories_{release}")
    if not candidates:
        raise SourceError(NAME, str(table), "no categories file recorded for this release")
    older = [p for d, p in candidates if d <= as_of]
    return older[-1] if older else candidates[0][1]


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def current_release_files(files: Sequence[_TableFile]) -> list[_TableFile]:
    """Keep the table versions that were the site's current release on their date.

    A release's first file supersedes every older release from its date on (same day included):
    later commits to an older release's table are only visible through the site's release slider.
    """
    first: dict[str, date] = {}
    for f in files:
        first[f.release] = min(first.get(f.release, f.as_of), f.as_of)
    return [f for f in files
            if not any(r > f.release and start <= f.as_of for r, start in first.items())]


def releases_in_index(content: bytes, *, url: str) -> list[str]:
    """The releases (`2026_01_08`) a contents-API listing of `public/` shows with both their table
    and categories files, oldest first; ShapeError for a listing of another shape or with none."""
    data = load_json(content, source=NAME, url=url, expected="GitHub's contents listing")
    if not isinstance(data, list):
        raise ShapeError(NAME, url, f"the contents listing is a {type(data).__name__}, not a list of files")
    files: dict[str, set[str]] = {"table": set(), "categories": set()}
    for item in data:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ShapeError(NAME, url, "an item of the contents listing has no `name`")
        m = _RELEASE_FILE.match(name)
        if m and (m["kind"] == "table") == (m["ext"] == "csv"):
            files[m["kind"]].add(m["release"])
    releases = sorted(files["table"] & files["categories"])
    if not releases:
        raise ShapeError(NAME, url, "no release with both table_<date>.csv and categories_<date>.json in "
                                    f"the listing ({len(data)} files)")
    return releases


class LiveBenchSource:
    """LiveBench: the global average and one board per category of the newest release."""

    name = NAME
    interval_seconds = 3 * 3600

    def __init__(self, identity: Identity, *, url: str | None = None, release: str | None = None,
                 index_url: str = INDEX_URL) -> None:
        """`url`: the base the release files are read from (`<url>table_<date>.csv`,
        `<url>categories_<date>.json`); default BASE_URL (livebench.ai). `release` pins one release
        (`2025_12_23`) instead of the newest one `index_url` lists."""
        self.identity = identity
        self.url = (url or BASE_URL).rstrip("/") + "/"
        self.release = release
        self.index_url = index_url
        self.current_release: str | None = release
        """The release the last fetch read (None before the first)."""
        # The last bodies seen, so that a 304 on one of the two files can reuse it.
        self._last: dict[str, bytes] = {}
        self._templates: dict[str, Entry] = {}

    @property
    def probe_url(self) -> str:
        """The URL polled first (for `leaderwatch doctor`): the release index, or a pinned release's table."""
        return self.table_url(self.release) if self.release else self.index_url

    def table_url(self, release: str) -> str:
        """Where a release's table is read."""
        return self.url + TABLE_FILE.format(release=release)

    def categories_url(self, release: str) -> str:
        """Where a release's categories file is read."""
        return self.url + CATEGORIES_FILE.format(release=release)

    async def newest_release(self, http: Fetcher) -> str:
        """The newest release the index lists; the last one found when the index cannot be had."""
        if self.release:
            return self.release
        try:
            listing, _ = await self._get(http, self.index_url)
            newest = releases_in_index(listing, url=self.index_url)[-1]
        except SourceError as exc:
            # A listing of another shape is drift, told as such; an unreachable or rate-limited one
            # (403 after 60 requests an hour without a token) must not stop the boards updating.
            if isinstance(exc, ShapeError) or self.current_release is None:
                raise
            logger.warning("%s: release index unavailable (%s); staying on release %s", NAME, exc.reason,
                           self.current_release)
            return self.current_release
        if self.current_release is not None and newest != self.current_release:
            logger.info("%s: new release %s (was %s)", NAME, newest, self.current_release)
        self.current_release = newest
        return newest

    def boards(self) -> list[Board]:
        """The global board and every category board any recorded release has had."""
        return [global_board()] + [category_board(s) for s in dict.fromkeys(CATEGORY_SLUGS.values())]

    async def _get(self, http: Fetcher, url: str) -> tuple[bytes, bool]:
        body = await http.get(NAME, url)
        if body is not None:
            self._last[url] = body
            return body, True
        cached = self._last.get(url)
        if cached is None:  # a validator from another instance: ask again without it
            cached = await http.get(NAME, url, conditional=False) or b""
            self._last[url] = cached
        return cached, False

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Fetch the newest release's table and categories; [] when neither changed."""
        release = await self.newest_release(http)
        table_url, cats_url = self.table_url(release), self.categories_url(release)
        table, table_new = await self._get(http, table_url)
        cats, cats_new = await self._get(http, cats_url)
        if not table_new and not cats_new:
            return []
        now = utcnow()
        return parse_livebench(table, cats, identity=self.identity, url=table_url,
                               categories_url=cats_url, as_of=now, fetched_at=now,
                               release=release, origin="livebench-site",
                               templates=self._templates)

    def _table_files(self, root: Path) -> list[_TableFile]:
        files: list[_TableFile] = []
        for path in sorted((root / NAME).glob("table_*/table*__as_of_*.csv")):
            m = _TABLE_FILE.match(path.name)
            if not m:
                continue
            release = m["release"] or PRERELEASE_RELEASE
            files.append(_TableFile(release, _day(m["date"]), path))
        return files

    def recordings(self, root: Path) -> list[Recording]:
        """Every recorded table version that was the site's current release on its date."""
        usable: list[_TableFile] = []
        board_ids: dict[Path, tuple[str, ...]] = {}
        for f in self._table_files(root):
            cats_path = categories_for(f.path, f.as_of)
            cats = parse_categories(cats_path.read_bytes(), url=str(cats_path))
            columns = set(_header(f.path)[1:])
            # The first pre-release tables (2024-06-03 to 06-06) use task names of an earlier
            # categories.json that was not recorded; no recorded categories file fits them.
            if not all(columns.intersection(tasks) for tasks in cats.values()):
                logger.info("%s: skipping %s: its columns do not fit %s", NAME, f.path, cats_path.name)
                continue
            usable.append(f)
            board_ids[f.path] = (GLOBAL_BOARD,) + tuple(_board_id(c) for c in cats)
        return [
            Recording(FAMILY, 10, board_ids[f.path], midnight_utc(f.as_of), f.path)
            for f in current_release_files(usable)
        ]

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recorded table version with the categories file in force on its date."""
        path = recording.path
        m = _TABLE_FILE.match(path.name)
        if not m:
            raise SourceError(NAME, str(path), "not a recorded LiveBench table file name")
        day = _day(m["date"])
        cats_path = categories_for(path, day)
        table, cats = read_recording(path, source=NAME), read_recording(cats_path, source=NAME)
        return parse_livebench(table, cats, identity=self.identity, url=str(path),
                               categories_url=str(cats_path), as_of=recording.as_of,
                               fetched_at=recording.as_of, release=m["release"] or PRERELEASE_RELEASE,
                               templates=self._templates)
