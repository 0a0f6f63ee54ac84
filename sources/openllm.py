"""Hugging Face Open LLM Leaderboard: the v2 contents dataset and the fboulnois CSV history.

Retired by Hugging Face on 2025-03-13 (RETIRED): both boards are archived and the source is not
polled unless the config turns it on (`[sources.openllm] enabled = true`); its table is frozen.
Live: the datasets-server rows API over `open-llm-leaderboard/contents`, 100 rows a page. History:
copies of fboulnois/llm-leaderboard-csv `csv/huggingface_v{1,2}.csv` in three header layouts (v1;
v2 "schema A" up to 2024-12-06; v2 "schema B" from 2024-12-15), told apart by the header alone.
Neither form publishes a rank, so ranks are competition ranks by the average.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from leaderwatch.sources.base import Board, Entry, Recording, Snapshot, SourceError, make_snapshot, ranked
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import (
    load_json,
    midnight_utc,
    read_csv,
    read_recording,
    read_score,
    require_columns,
)

logger = logging.getLogger(__name__)

SOURCE = "openllm"
ROWS_URL = "https://datasets-server.huggingface.co/rows"
DATASET = "open-llm-leaderboard/contents"
PAGE_LENGTH = 100
CONCURRENT_PAGES = 4
LIVE_ORIGIN = "hf-datasets-server"
CSV_ORIGIN = "fboulnois-csv"
CSV_FAMILY = f"{SOURCE}/{CSV_ORIGIN}"
CSV_PRIORITY = 10  # copies of the official table

RETIRED = "2025-03-13"
"""The day Hugging Face retired the leaderboard; its contents dataset has not changed since."""
BOARD_V2 = Board("openllm/v2", "Open LLM Leaderboard v2",
                 "Average of IFEval, BBH, MATH Lvl 5, GPQA, MUSR, MMLU-PRO (normalized, 0-100)",
                 url="https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard",
                 archived=True)
BOARD_V1 = Board("openllm/v1", "Open LLM Leaderboard v1",
                 "Average of ARC, HellaSwag, MMLU, TruthfulQA, Winogrande, GSM8K",
                 url="https://huggingface.co/spaces/open-llm-leaderboard-old/open_llm_leaderboard",
                 archived=True)
BOARDS = {BOARD_V1.id: BOARD_V1, BOARD_V2.id: BOARD_V2}

# Columns of the contents dataset as the rows API names them (the leaderboard's display names).
LIVE_NAME = "fullname"
LIVE_SCORE = "Average ⬆️"
LIVE_PRECISION = "Precision"

_FILE_NAME = re.compile(r"^huggingface_(v[12])_(\d{4}-\d{2}-\d{2})\.csv$")


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """Where one recorded CSV header layout keeps the repo id, the average and the precision."""

    shape: str
    board: Board
    name: str
    score: str
    precision: str


V1_LAYOUT = CsvLayout("v1", BOARD_V1, "fullname", "average", "precision")
V2_SCHEMA_A = CsvLayout("v2 schema A", BOARD_V2, "fullname", "average", "precision")
V2_SCHEMA_B = CsvLayout("v2 schema B", BOARD_V2, "model_name", "model_average_score", "model_precision")

# Benchmark columns that only one layout has; required columns are checked after detection so
# that a renamed score or name column is reported by name rather than as an unknown file.
_V1_MARKERS = frozenset({"arc", "hellaswag", "truthfulqa", "winogrande", "gsm8k"})
_V2A_MARKERS = frozenset({"ifeval", "bbh", "math_lvl_5", "gpqa", "musr", "mmlupro"})


@dataclass(frozen=True, slots=True)
class Row:
    """One published row: the HF repo id, its evaluation precision and its average."""

    repo: str
    precision: str
    score: float


@dataclass(frozen=True, slots=True)
class RowsPage:
    """One page of the datasets-server rows API, reduced to what the board needs."""

    total: int
    rows: tuple[tuple[int, Row], ...]  # (row_idx, row)


def detect_layout(header: Sequence[str]) -> CsvLayout | None:
    """The CSV layout a header belongs to, from its columns alone (never from the file date)."""
    columns = set(header)
    if "model_average_score" in columns or any(c.startswith("evaluations_") for c in columns):
        return V2_SCHEMA_B
    if columns & _V1_MARKERS:
        return V1_LAYOUT
    if columns & _V2A_MARKERS:
        return V2_SCHEMA_A
    return None


def parse_csv(
    content: bytes, *, identity: Identity, url: str, as_of: datetime, fetched_at: datetime,
) -> list[Snapshot]:
    """Parse a fboulnois `huggingface_v1.csv`/`huggingface_v2.csv` copy into one snapshot."""
    table = read_csv(content, source=SOURCE, url=url)
    if not content.endswith(b"\n"):
        # Every published copy ends with a newline; a cut inside the last field (the url column)
        # would otherwise leave a row with the right number of fields.
        raise SourceError(SOURCE, url, "file ends mid-line (no final newline): truncated")
    header = table.header
    layout = detect_layout(header)
    if layout is None:
        raise SourceError(
            SOURCE, url,
            "unrecognized header: expected Open LLM Leaderboard v1 columns (average, arc, "
            "hellaswag, ...), v2 schema A (average, ifeval, bbh, ...) or v2 schema B "
            f"(model_name, model_average_score, evaluations_*); got {','.join(header[:8])}...",
        )
    wanted = (layout.name, layout.score, layout.precision)
    require_columns(header, wanted, f"{layout.shape} CSV", source=SOURCE, url=url)
    i_name, i_score, i_prec = (header.index(c) for c in wanted)
    rows: list[Row] = []
    for line, fields in table.rows:
        repo = fields[i_name].strip()
        if not repo:
            raise SourceError(SOURCE, url, f"line {line}: empty {layout.name}")
        score = read_score(fields[i_score], f"line {line}: {layout.score}", source=SOURCE, url=url)
        rows.append(Row(repo, fields[i_prec].strip(), score))
    return [build_snapshot(layout.board, rows, identity=identity, as_of=as_of,
                           fetched_at=fetched_at, origin=CSV_ORIGIN)]


def parse_rows_page(content: bytes, *, url: str) -> RowsPage:
    """Parse one datasets-server `/rows` response of the contents dataset."""
    doc = load_json(content, source=SOURCE, url=url, expected="rows JSON",
                    invalid="rows response is not valid JSON")
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise SourceError(SOURCE, url, "rows response has no `rows` list")
    total = doc.get("num_rows_total")
    if not isinstance(total, int) or isinstance(total, bool):
        raise SourceError(SOURCE, url, "rows response has no integer `num_rows_total`")
    if doc.get("partial"):
        # datasets-server serves only a prefix of datasets too large to convert whole.
        raise SourceError(SOURCE, url, "rows response is marked partial: the table is incomplete")
    features = doc.get("features")
    if isinstance(features, list):
        names = {f.get("name") for f in features if isinstance(f, dict)}
        require_columns(names, (LIVE_NAME, LIVE_SCORE, LIVE_PRECISION), "contents dataset", source=SOURCE,
                        url=url)
    rows: list[tuple[int, Row]] = []
    for item in doc["rows"]:
        idx = item.get("row_idx") if isinstance(item, dict) else None
        row = item.get("row") if isinstance(item, dict) else None
        if not isinstance(idx, int) or not isinstance(row, dict):
            raise SourceError(SOURCE, url, f"malformed rows item: {str(item)[:120]}")
        truncated = set(item.get("truncated_cells") or ())
        if truncated & {LIVE_NAME, LIVE_SCORE, LIVE_PRECISION}:
            raise SourceError(SOURCE, url, f"row {idx}: required cells truncated: {sorted(truncated)}")
        require_columns(row, (LIVE_NAME, LIVE_SCORE), f"row {idx}", source=SOURCE, url=url)
        repo = row[LIVE_NAME]
        if not isinstance(repo, str) or not repo.strip():
            raise SourceError(SOURCE, url, f"row {idx}: {LIVE_NAME} {repo!r} is not a model id")
        score = read_score(row[LIVE_SCORE], f"row {idx}: {LIVE_SCORE}", source=SOURCE, url=url)
        precision = row.get(LIVE_PRECISION)
        rows.append((idx, Row(repo.strip(), precision if isinstance(precision, str) else "", score)))
    return RowsPage(total, tuple(rows))


def snapshot_from_pages(
    pages: Sequence[RowsPage], *, identity: Identity, url: str, as_of: datetime,
    fetched_at: datetime,
) -> list[Snapshot]:
    """Join every page of the contents dataset into the v2 snapshot; refuse a partial table."""
    if not pages:
        raise SourceError(SOURCE, url, "no rows pages")
    total = pages[0].total
    if total == 0:
        raise SourceError(SOURCE, url, "empty table: num_rows_total is 0")
    by_idx: dict[int, Row] = {}
    for page in pages:
        if page.total != total:
            raise SourceError(SOURCE, url, f"num_rows_total changed between pages ({total} then "
                                           f"{page.total}): the dataset was updated mid-fetch")
        by_idx.update(page.rows)
    if sorted(by_idx) != list(range(total)):
        raise SourceError(SOURCE, url, f"got {len(by_idx)} distinct rows where num_rows_total is {total}")
    rows = [by_idx[i] for i in range(total)]
    return [build_snapshot(BOARD_V2, rows, identity=identity, as_of=as_of, fetched_at=fetched_at,
                           origin=LIVE_ORIGIN)]


def parse_rows_pages(
    contents: Sequence[bytes], *, identity: Identity, url: str, as_of: datetime,
    fetched_at: datetime,
) -> list[Snapshot]:
    """Parse every `/rows` response of one fetch into the v2 snapshot."""
    pages = [parse_rows_page(c, url=url) for c in contents]
    return snapshot_from_pages(pages, identity=identity, url=url, as_of=as_of, fetched_at=fetched_at)


def distinct_names(rows: Sequence[Row]) -> list[str]:
    """Entry names: the repo id, with ` (precision)` on a repo's further rows.

    The leaderboard lists a model once per evaluated precision. The repo's best row (highest
    average, then first published) keeps the bare repo id so it matches other boards; the other
    rows read e.g. `MTSAIR/MultiVerse_70B (float16)`.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.repo, []).append(i)
    names = [row.repo for row in rows]
    taken = set(groups)
    for indexes in groups.values():
        if len(indexes) == 1:
            continue
        indexes.sort(key=lambda i: (-rows[i].score, i))
        for i in indexes[1:]:
            base = f"{rows[i].repo} ({rows[i].precision or 'unknown precision'})"
            name, n = base, 2
            while name in taken:  # never seen in the data: same repo and precision twice
                name, n = f"{base} #{n}", n + 1
            taken.add(name)
            names[i] = name
    return names


def build_snapshot(
    board: Board, rows: Sequence[Row], *, identity: Identity, as_of: datetime,
    fetched_at: datetime, origin: str,
) -> Snapshot:
    """Rank rows by average (competition ranks) and build their entries (org = repo namespace)."""
    named = [((row, name), row.score) for row, name in zip(rows, distinct_names(rows), strict=True)]
    entries: list[Entry] = []
    for (row, name), _, rank in ranked(board, named):
        namespace, slash, _ = row.repo.partition("/")
        if not slash:
            # A few old rows (`gpt2`, `distilgpt2`) have no namespace: let identity guess the org.
            entries.append(identity.entry(name, row.score, rank, open_weights=True))
            continue
        # The publisher is the namespace: a community fine-tune named after Qwen is not credited
        # to Qwen's country, which identity's name patterns would otherwise add.
        entries.append(identity.entry(name, row.score, rank, organization=namespace,
                                      countries=identity.countries_of(namespace), open_weights=True))
    return make_snapshot(board, as_of, fetched_at, entries, origin=origin)


def page_params(offset: int) -> dict[str, str | int]:
    """Query parameters of one rows page (httpx encodes the dataset as `open-llm-leaderboard%2Fcontents`)."""
    return {"dataset": DATASET, "config": "default", "split": "train", "offset": offset,
            "length": PAGE_LENGTH}


def page_url(offset: int, rows_url: str = ROWS_URL) -> str:
    """The full URL of one rows page, as error messages name it."""
    return str(httpx.URL(rows_url, params=page_params(offset)))


class OpenLLMSource:
    """The Open LLM Leaderboard, retired upstream on 2025-03-13: both boards archived, not polled
    unless the config turns it on (`[sources.openllm] enabled = true`); the history stays readable."""

    name = SOURCE
    # Upstream froze the table in March 2025; a daily look costs 46 small requests.
    interval_seconds = 24 * 3600
    enabled_by_default = False

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        """`url`: the datasets-server rows endpoint (default ROWS_URL), asked for the contents dataset
        100 rows a page (`?dataset=open-llm-leaderboard/contents&...&offset=N&length=100`)."""
        self.identity = identity
        self.url = url or ROWS_URL
        # Parsed pages of the last fetch, reused when a page answers 304 but others changed.
        self._pages: dict[int, RowsPage] = {}

    @property
    def probe_url(self) -> str:
        """The first rows page (for `leaderwatch doctor`)."""
        return page_url(0, self.url)

    def boards(self) -> list[Board]:
        """The v2 and v1 boards, both archived (the leaderboard is retired)."""
        return [BOARD_V2, BOARD_V1]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Page through the contents dataset a few pages at a time; [] if every page was a 304."""
        first, changed = await self._page(http, 0)
        offsets = list(range(PAGE_LENGTH, first.total, PAGE_LENGTH))
        gate = asyncio.Semaphore(CONCURRENT_PAGES)

        async def polite(offset: int) -> tuple[RowsPage, bool]:
            async with gate:
                return await self._page(http, offset)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(polite(o)) for o in offsets]
        except ExceptionGroup as failures:
            # TaskGroup cancels the other pages on the first failure; report that failure plainly.
            raise failures.exceptions[0] from None
        results = [(first, changed)] + [t.result() for t in tasks]
        if not any(c for _, c in results):
            return []
        pages = [p for p, _ in results]
        now = utcnow()
        snapshots = snapshot_from_pages(pages, identity=self.identity, url=self.url, as_of=now,
                                        fetched_at=now)
        self._pages = dict(zip([0, *offsets], pages, strict=True))
        return snapshots

    async def _page(self, http: Fetcher, offset: int) -> tuple[RowsPage, bool]:
        """One parsed page and whether it changed; a 304 reuses the page from the last fetch."""
        params = page_params(offset)
        body = await http.get(self.name, self.url, params=params)
        if body is None:
            cached = self._pages.get(offset)
            if cached is not None:
                return cached, False
            # The Fetcher kept validators from a fetch whose pages this instance never parsed.
            body = await http.get(self.name, self.url, params=params, conditional=False)
            if body is None:
                raise SourceError(self.name, page_url(offset, self.url), "304 to an unconditional request")
        return parse_rows_page(body, url=page_url(offset, self.url)), True

    def recordings(self, root: Path) -> list[Recording]:
        """The fboulnois CSV copies under `root/open_llm_leaderboard/v{1,2}/`, dated by file name."""
        found: list[Recording] = []
        for path in sorted((root / "open_llm_leaderboard").glob("v?/huggingface_v?_*.csv")):
            match = _FILE_NAME.match(path.name)
            if not match:
                logger.warning("%s: skipping %s: not huggingface_v<N>_<YYYY-MM-DD>.csv", self.name, path)
                continue
            version, day = match.groups()
            as_of = midnight_utc(day)
            found.append(Recording(CSV_FAMILY, CSV_PRIORITY, (f"{SOURCE}/{version}",), as_of, path))
        return sorted(found, key=lambda r: (r.as_of, str(r.path)))

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one CSV copy; its header must match the board its file name promises."""
        url = str(recording.path)
        content = read_recording(recording.path, source=SOURCE)
        snapshots = parse_csv(content, identity=self.identity, url=url, as_of=recording.as_of,
                              fetched_at=recording.as_of)
        for snap in snapshots:
            if snap.board.id not in recording.board_ids:
                raise SourceError(self.name, url, f"header is a {snap.board.id} table but the file "
                                                  f"name says {', '.join(recording.board_ids)}")
        return snapshots
