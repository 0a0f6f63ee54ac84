"""LMArena (ex LMSYS Chatbot Arena): its leaderboard dataset, live and whole, and older recorded copies.

Live: each arena's `latest` parquet file of `lmarena-ai/leaderboard-dataset` (CC BY 4.0), one board per
arena. History: the same dataset's `full` split (`download_history`, LMArena's own published history,
the most authoritative family), then fboulnois's CSV copies of the official table, LMArena's
arena-catalog JSON, jasontrigg0's rebuilt Elo history and a third-party daily scrape of arena.ai (see
PROVENANCE.md section 1). The datasets-server rows API reader stays for recorded pages.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import (
    Board,
    Entry,
    Recording,
    ShapeError,
    Snapshot,
    SourceError,
    competition_ranks,
    make_snapshot,
    ranked,
)
from leaderwatch.sources.http import Fetcher, size_text, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import (
    check_record,
    is_missing,
    load_json,
    midnight_utc,
    missing_fields,
    read_csv,
    read_recording,
    read_score,
    refuse_missing,
    to_number,
)

logger = logging.getLogger(__name__)

NAME = "lmarena"
METRIC = "Arena score"


def _board(slug: str, title: str, page: str, metric: str = METRIC, *, negative_scores: bool = False) -> Board:
    return Board(f"{NAME}/{slug}", title, metric, True, True, f"https://arena.ai/leaderboard/{page}",
                 negative_scores=negative_scores)


TEXT = _board("text", "LMArena Text", "text")
TEXT_STYLE_CONTROL = _board("text-style-control", "LMArena Text (style control)", "text")
VISION = _board("vision", "LMArena Vision", "vision")
# arena.ai's default vision view is style-controlled (the dataset's `vision_style_control`).
VISION_STYLE_CONTROL = _board("vision-style-control", "LMArena Vision (style control)", "vision")
# arena.ai lists the coding board as "Code" since Code Arena replaced WebDev Arena (2025-11-12).
WEBDEV = _board("webdev", "LMArena WebDev / Code", "code")

DEFAULT = "default"
STYLE_CONTROL = "style-control"
ELO_ONLINE = "elo-online"
BRADLEY_TERRY = "bradley-terry"
CODE_ARENA = "code-arena"
FACTUALITY = "factuality"
IPS = "ips"
AGENT_METRIC = "Agent score (IPS)"


@dataclass(frozen=True, slots=True)
class Arena:
    """One config of the leaderboard dataset and the board it feeds.

    Agent Arena configs publish an IPS `score` with `score_ci_lower/upper` and `session_count`
    instead of the Bradley-Terry `rating`, `rating_lower/upper` and `vote_count`.
    """

    config: str
    board: Board
    method: str
    agent: bool = False
    core: bool = False
    """The four boards followed before the dataset listed more arenas: a failure there is an error."""


def _agent(config: str, title: str) -> Arena:
    slug = config.replace("_", "-")
    # An IPS score below zero is a real result (the agent did worse than the reference), not a broken row.
    return Arena(config, _board(slug, title, "agent", AGENT_METRIC, negative_scores=True), IPS, agent=True)


# Every config of `lmarena-ai/leaderboard-dataset` as listed on 2026-10-08 (each has `full` and
# `latest` parquet files); see tests/data/lmarena/README.md for how this list was confirmed.
ARENAS: tuple[Arena, ...] = (
    Arena("text", TEXT, DEFAULT, core=True),
    Arena("text_style_control", TEXT_STYLE_CONTROL, STYLE_CONTROL, core=True),
    Arena("text_factuality", _board("text-factuality", "LMArena Text (factuality)", "text"), FACTUALITY),
    Arena("vision", VISION, DEFAULT, core=True),
    Arena("vision_style_control", VISION_STYLE_CONTROL, STYLE_CONTROL),
    Arena("webdev", WEBDEV, CODE_ARENA, core=True),
    Arena("search", _board("search", "LMArena Search", "search"), DEFAULT),
    Arena("search_style_control", _board("search-style-control", "LMArena Search (style control)", "search"),
          STYLE_CONTROL),
    Arena("search_factuality", _board("search-factuality", "LMArena Search (factuality)", "search"),
          FACTUALITY),
    Arena("document", _board("document", "LMArena Document", "document"), DEFAULT),
    Arena("document_style_control",
          _board("document-style-control", "LMArena Document (style control)", "document"), STYLE_CONTROL),
    Arena("text_to_image", _board("text-to-image", "LMArena Text-to-Image", "text-to-image"), DEFAULT),
    Arena("image_edit", _board("image-edit", "LMArena Image Edit", "image-edit"), DEFAULT),
    Arena("text_to_video", _board("text-to-video", "LMArena Text-to-Video", "text-to-video"), DEFAULT),
    Arena("image_to_video", _board("image-to-video", "LMArena Image-to-Video", "image-to-video"), DEFAULT),
    Arena("video_edit", _board("video-edit", "LMArena Video Edit", "video-edit"), DEFAULT),
    _agent("agent", "LMArena Agent"),
    _agent("agent_bash_recovery_steps", "LMArena Agent (bash recovery steps)"),
    _agent("agent_praise_complaint", "LMArena Agent (praise / complaint)"),
    _agent("agent_steerability", "LMArena Agent (steerability)"),
    _agent("agent_task_outcome_explicit", "LMArena Agent (explicit task outcome)"),
    _agent("agent_tool_hallucination", "LMArena Agent (tool hallucination)"),
)
ARENAS_BY_CONFIG = {a.config: a for a in ARENAS}
ARENAS_BY_BOARD = {a.board.id: a for a in ARENAS}
BOARDS: tuple[Board, ...] = tuple(a.board for a in ARENAS)
BOARDS_BY_ID = {b.id: b for b in BOARDS}

DATASET = "lmarena-ai/leaderboard-dataset"
FILES_URL = f"https://huggingface.co/datasets/{DATASET}/resolve/main"
"""The default base of the dataset's files: `{base}/{config}/{split}-00000-of-00001.parquet`."""
ROWS_URL = "https://datasets-server.huggingface.co/rows"
PAGE_LENGTH = 100
DATASET_FOLDER = "leaderboard_dataset"
"""Where `download_history` puts the `full` files: `<cache>/lmarena/leaderboard_dataset/<config>/`."""
BACKFILL_NOTE = "backfill.json"

ORIGIN_DATASET = "lmarena-dataset"
ORIGIN_LMSYS_CSV = "fboulnois-lmsys-csv"
ORIGIN_LMARENA_CSV = "fboulnois-lmarena-csv"
ORIGIN_CATALOG = "arena-catalog"
ORIGIN_HISTORY = "jasontrigg0-history"
ORIGIN_SCRAPE = "arena-ai-daily-scrape"

FAMILY_DATASET = f"{NAME}/{ORIGIN_DATASET}"
FAMILY_LMSYS_CSV = f"{NAME}/{ORIGIN_LMSYS_CSV}"
FAMILY_LMARENA_CSV = f"{NAME}/{ORIGIN_LMARENA_CSV}"
FAMILY_CATALOG = f"{NAME}/{ORIGIN_CATALOG}"
FAMILY_HISTORY = f"{NAME}/{ORIGIN_HISTORY}"
FAMILY_SCRAPE = f"{NAME}/{ORIGIN_SCRAPE}"

# LMArena's own published history comes first; the copies and scrapes fill the dates it lacks.
PRIORITY_DATASET = 5
PRIORITY_CSV = 10
PRIORITY_CATALOG = 20
PRIORITY_HISTORY = 30
PRIORITY_SCRAPE = 40

# arena.ai's default view is style-controlled: the scraped `text` scores match arena-catalog's
# style-control ratings (mean gap ~3 points) and not its default ones (~20 points). `code` is Code
# Arena, the successor of WebDev Arena, rated afresh without the WebDev votes.
SCRAPE_BOARDS: dict[str, tuple[Board, str]] = {
    "text": (TEXT_STYLE_CONTROL, STYLE_CONTROL),
    "vision": (VISION_STYLE_CONTROL, STYLE_CONTROL),
    "code": (WEBDEV, CODE_ARENA),
}

# jasontrigg0's first two elo_results files only carried the online Elo ratings.
_ONLINE_ELO_DATES = frozenset({"20230508", "20230522"})
# arena-catalog's `leaderboard-data.json` held style-controlled ratings until the separate
# `-style-control` file appeared on this date; from then on it holds the default ratings.
_CATALOG_SPLIT = date(2025, 2, 28)
_CATALOG_FILE = re.compile(r"^leaderboard-(data|text|vision)(-style-control)?_(\d{4}-\d{2}-\d{2})$")
_LMSYS_FILE = re.compile(r"^lmsys_(\d{4}-\d{2}-\d{2})$")
_LMARENA_FILE = re.compile(r"^lmarena_([a-z]+)_(\d{4}-\d{2}-\d{2})$")
_LMARENA_CSV_BOARDS = {"text": TEXT, "vision": VISION}  # `image` is no board we list
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_CSV_REQUIRED = ("rank", "model", "95_pct_ci", "votes", "organization", "license")
_HISTORY_REQUIRED = ("key", "Model", "rating", "License", "Organization", "date")


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _error(url: str, reason: str) -> SourceError:
    return SourceError(NAME, url, reason)


def _shape(url: str, reason: str) -> ShapeError:
    """A payload in a shape this parser does not know (the source shows as drifted)."""
    return ShapeError(NAME, url, reason)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(4)
    except OSError:
        return b""


def _csv_rows(
    content: bytes, url: str, required: Iterable[str],
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row by column) pairs of a CSV holding every `required` column."""
    table = read_csv(content, source=NAME, url=url)
    header = table.header
    _refuse_missing_columns(header, [c for c in required if c not in header], url)
    return header, [(line, dict(zip(header, row, strict=True))) for line, row in table.rows]


def _refuse_missing_columns(header: Sequence[str], missing: Sequence[str], url: str) -> None:
    refuse_missing(missing, header, "the table", source=NAME, url=url)


def _number(value: Any, what: str, url: str) -> float:
    # `to_number` decides what a number is, as for every source; only this wording is LMArena's own.
    try:
        return to_number(value)
    except ValueError:
        raise _error(url, f"{what}: unparseable number {value!r}") from None


def _score(value: Any, what: str, url: str) -> float:
    # A rating that is not a finite number drops its row (make_snapshot counts it), as for every source.
    return read_score(value, what, source=NAME, url=url)


def _optional_number(value: Any, what: str, url: str) -> float | None:
    return None if is_missing(value) else _number(value, what, url)


def _integer(value: Any, what: str, url: str) -> int:
    number = _number(value, what, url)
    if not number.is_integer():
        raise _error(url, f"{what}: expected a whole number, got {value!r}")
    return int(number)


def _optional_integer(value: Any, what: str, url: str) -> int | None:
    number = _optional_number(value, what, url)
    if number is None:
        return None
    if not number.is_integer():
        raise _error(url, f"{what}: expected a whole number, got {value!r}")
    return int(number)


def _optional_text(value: Any) -> str | None:
    return None if is_missing(value) else str(value).strip()


def _timestamp(value: Any, what: str, url: str) -> datetime:
    """A date (`2025-01-24`, `20250124`) at 00:00 UTC, or an ISO datetime made UTC."""
    text = str(value).strip()
    try:
        if len(text) == 8 and text.isdigit():
            return midnight_utc(datetime.strptime(text, "%Y%m%d").date())
        if _DAY.match(text):
            return midnight_utc(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _error(url, f"{what}: unparseable date {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def open_weights_of(licence: str | None) -> bool | None:
    """False for a proprietary licence, True for any named licence, None when not stated."""
    text = _optional_text(licence)
    if text is None:
        return None
    # "propr" also catches "Propretary", a typo in fboulnois lmsys CSVs (Claude 3.5 Haiku rows).
    return not text.casefold().startswith("propr")


def _unique(entries: Iterable[Entry], url: str) -> list[Entry]:
    """One entry per published name, the first listed kept (some tables list a row twice).

    Deduplicated on the name, not on the model key: "Command R" and "Command R+" are two models.
    """
    kept: dict[str, Entry] = {}
    for entry in entries:
        first = kept.get(entry.name)
        if first is None:
            kept[entry.name] = entry
        elif first.score != entry.score:
            logger.warning("%s: %s listed twice (%s and %s); keeping the first", url, entry.name,
                           first.score, entry.score)
    return list(kept.values())


# ---------------------------------------------------------------------------------------------
# The leaderboard dataset: one table shape, read from parquet (live and history) or the rows API


@dataclass(frozen=True, slots=True)
class DatasetRow:
    """One `overall` row of the leaderboard dataset, as published (`votes`: battles or sessions)."""

    name: str
    organization: str | None
    license: str | None
    score: float | None
    lower: float | None
    upper: float | None
    votes: float | None


def _day_text(value: Any) -> str:
    """A publish date as `YYYY-MM-DD` (the dataset stores a string; a date or timestamp type is accepted)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()[:10]


def _finite(value: Any) -> float | None:
    """A float, or None for a missing or NaN cell (pyarrow gives None for nulls; NaN is a float)."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _rating(value: Any) -> float | None:
    """A rating cell: None for a null, else a float, NaN and infinities kept (make_snapshot drops and
    counts those rows, as for every source)."""
    if value is None or isinstance(value, bool):
        return None
    return float(value)


def _dataset_columns(present: Sequence[str], arena: Arena, url: str) -> tuple[str, str, str, str]:
    """The score, lower, upper and votes column names of this file; a SourceError when one is missing.

    Bradley-Terry arenas: `rating`, `rating_lower`/`rating_upper` (or `rating_q025`/`rating_q975`, a
    spelling arena-catalog adopted "for compatibility with latest HuggingFace leaderboard data"),
    `vote_count`. Agent arenas: `score`, `score_ci_lower`/`score_ci_upper`, `session_count`.
    """
    names = set(present)
    if arena.agent:
        choice = ("score", "score_ci_lower", "score_ci_upper", "session_count")
    else:
        lower = "rating_lower" if "rating_lower" in names or "rating_q025" not in names else "rating_q025"
        upper = "rating_upper" if "rating_upper" in names or "rating_q975" not in names else "rating_q975"
        choice = ("rating", lower, upper, "vote_count")
    required = [*_DATASET_REQUIRED, choice[0]]
    if not arena.agent:
        required.extend(choice[1:])
    refuse_missing([c for c in required if c not in names], list(present), "the dataset table", source=NAME,
                   url=url)
    return choice


_DATASET_REQUIRED = ("model_name", "organization", "license", "category", "leaderboard_publish_date")


def read_dataset_parquet(source: Path | bytes, arena: Arena, url: str) -> dict[str, list[DatasetRow]]:
    """The `overall` rows of a leaderboard-dataset parquet file, by publish date (`YYYY-MM-DD`).

    Reads only the needed columns, one batch of row groups at a time, and keeps only `overall` rows
    (about 5% of the text history's 1.1 M rows), so memory stays bounded by the boards, not the file.
    """
    # pyarrow is imported where parquet is read: ~80 ms that `leaderwatch --help` and the chat answers skip.
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        # No pre-buffering and small batches: the reader holds about one row group at a time.
        file = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source,
                              pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowException, OSError) as exc:
        # A file cut short keeps parquet's leading magic: a plain error; anything else is another shape.
        head = source[:4] if isinstance(source, bytes) else _head(source)
        error = _error if head == b"PAR1" else _shape
        raise error(url, f"not a readable parquet file ({exc})") from None
    schema = file.schema_arrow
    score, lower, upper, votes = _dataset_columns(schema.names, arena, url)
    present = set(schema.names)
    for name in (score, lower, upper, votes):
        kind = schema.field(name).type if name in present else None
        if kind is not None and not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                     or pa.types.is_decimal(kind) or pa.types.is_null(kind)):
            raise _shape(url, f"column `{name}` holds {kind}, not numbers")
    columns = [c for c in (*_DATASET_REQUIRED, score, lower, upper, votes) if c in present]
    by_day: dict[str, list[DatasetRow]] = {}
    try:
        for batch in file.iter_batches(batch_size=8192, columns=columns):
            overall = batch.filter(pc.equal(batch.column("category"), "overall"))
            if not overall.num_rows:
                continue
            data = overall.to_pydict()
            empty = [None] * overall.num_rows
            for name, org, licence, value, lo, hi, count, day in zip(
                    data["model_name"], data["organization"], data["license"], data[score],
                    data.get(lower, empty), data.get(upper, empty), data.get(votes, empty),
                    data["leaderboard_publish_date"], strict=True):
                by_day.setdefault(_day_text(day), []).append(DatasetRow(
                    "" if name is None else str(name).strip(), org, licence, _rating(value), _finite(lo),
                    _finite(hi), _finite(count)))
    except (pa.ArrowException, OSError) as exc:
        raise _error(url, f"unreadable parquet data ({exc})") from None
    return by_day


def _not_parquet(path: Path) -> str | None:
    """Why `path` is no readable parquet file (its footer and schema), or None when it is one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        return str(exc)
    return None


def ci_ranks(scored: Sequence[tuple[float, float | None, float | None]]) -> list[int]:
    """LMArena's rank from the confidence intervals: 1 + the models whose lower bound is above one's upper.

    The dataset's `rank` column is a plain 1..N order; arena.ai shows this rank, which ties models the
    votes cannot separate. Without a full set of intervals (the 2023 Elo era), competition ranks on
    the score (ties only on equal scores).
    """
    if any(lo is None or hi is None for _, lo, hi in scored):
        return competition_ranks([score for score, _, _ in scored])
    lowers = sorted(lo for _, lo, _ in scored if lo is not None)
    return [1 + len(lowers) - bisect.bisect_right(lowers, hi) for _, _, hi in scored if hi is not None]


def dataset_snapshot(
    rows: Sequence[DatasetRow], *, identity: Identity, arena: Arena, day: str, url: str, fetched_at: datetime,
    logged: set[tuple[str, str]] | None = None,
) -> Snapshot:
    """One board at one publish date from its `overall` rows: duplicates resolved, ranks from the CIs.

    A name listed twice (the webdev board lists `gpt-5.3-codex (codex-harness)` twice since 2026-05-05)
    keeps the row with more votes; each such name is logged once per board while `logged` is kept.
    """
    if not rows:
        raise _shape(url, f"no `overall` rows dated {day}")
    try:
        as_of = midnight_utc(day)
    except ValueError:
        raise _shape(url, f"unparseable leaderboard_publish_date {day!r}") from None
    kept: dict[str, DatasetRow] = {}
    for row in rows:
        if not row.name:
            raise _shape(url, f"{day}: a row without model_name")
        if row.score is None:
            raise _shape(url, f"{day}: model {row.name!r} has no score")
        first = kept.get(row.name)
        if first is None:
            kept[row.name] = row
            continue
        key = (arena.board.id, row.name)
        if logged is None or key not in logged:
            logger.warning("%s: %s listed twice on %s (%s with %s votes, %s with %s votes); keeping the "
                           "row with more votes", url, row.name, day, first.score, first.votes, row.score,
                           row.votes)
            if logged is not None:
                logged.add(key)
        if (row.votes or 0) > (first.votes or 0):
            kept[row.name] = row
    unique = list(kept.values())
    ranks = ci_ranks([(r.score or 0.0, r.lower, r.upper) for r in unique])
    entries = [identity.entry(
        r.name, r.score or 0.0, rank, organization=_optional_text(r.organization),
        open_weights=open_weights_of(r.license), ci_lower=r.lower, ci_upper=r.upper,
        votes=None if r.votes is None else int(r.votes),
    ) for r, rank in zip(unique, ranks, strict=True)]
    return make_snapshot(arena.board, as_of, fetched_at, entries, origin=ORIGIN_DATASET, method=arena.method)


@dataclass(frozen=True, slots=True)
class DatasetPage:
    """One page of the datasets-server rows API: its rows and the split's total row count."""

    rows: tuple[Mapping[str, Any], ...]
    total: int


def dataset_url(config: str, offset: int | None = None) -> str:
    """The rows API URL of one config's latest split (of one page when `offset` is given)."""
    url = f"{ROWS_URL}?dataset=lmarena-ai%2Fleaderboard-dataset&config={config}&split=latest"
    return url if offset is None else f"{url}&offset={offset}&length={PAGE_LENGTH}"


def parse_dataset_page(content: bytes, *, url: str) -> DatasetPage:
    """Parse one rows API page `{"rows": [{"row_idx", "row", "truncated_cells"}], "num_rows_total"}`."""
    data = load_json(content, source=NAME, url=url, expected="a datasets-server rows page")
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise _error(url, "not a datasets-server rows page (no `rows` list)")
    total = data.get("num_rows_total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise _error(url, f"not a datasets-server rows page (num_rows_total is {total!r})")
    if data.get("partial"):
        raise _error(url, "the datasets-server serves only part of this split (partial: true)")
    rows: list[Mapping[str, Any]] = []
    for item in data["rows"]:
        if not isinstance(item, dict) or not isinstance(item.get("row"), dict):
            raise _error(url, f"malformed rows item {str(item)[:80]!r}")
        if item.get("truncated_cells"):
            raise _error(url, f"row {item.get('row_idx')}: cells cut by the datasets-server: "
                              f"{', '.join(map(str, item['truncated_cells']))}")
        rows.append(item["row"])
    return DatasetPage(tuple(rows), total)


def parse_dataset_rows(
    rows: Sequence[Mapping[str, Any]], *, identity: Identity, board: Board, method: str, url: str,
    fetched_at: datetime,
) -> list[Snapshot]:
    """The `overall` rows of a rows API answer as one snapshot; as_of = the latest publish date."""
    overall = [r for r in rows if r.get("category") == "overall"]
    if not overall:
        categories = sorted({str(r.get("category")) for r in rows})
        raise _shape(url, f"no `overall` rows (categories: {', '.join(categories) or 'none'})")
    agent = "score" in overall[0] and "rating" not in overall[0]
    score_field = "score" if agent else "rating"
    missing = sorted({k for r in overall for k in missing_fields(r, ("model_name", score_field))})
    if missing:
        raise _shape(url, f"required field(s) missing: {', '.join(missing)}")
    by_day: dict[str, list[DatasetRow]] = {}
    for row in overall:
        name = str(row["model_name"]).strip()
        where = f"model {name!r}"
        if agent:
            values = (row["score"], row.get("score_ci_lower"), row.get("score_ci_upper"),
                      row.get("session_count"))
        else:
            values = (row["rating"], row.get("rating_lower", row.get("rating_q025")),
                      row.get("rating_upper", row.get("rating_q975")), row.get("vote_count"))
        score = _score(values[0], f"{where} rating", url)
        by_day.setdefault(_day_text(row.get("leaderboard_publish_date") or ""), []).append(DatasetRow(
            name, row.get("organization"), row.get("license"), score,
            _optional_number(values[1], f"{where} rating_lower", url),
            _optional_number(values[2], f"{where} rating_upper", url),
            _optional_number(values[3], f"{where} vote_count", url)))
    if len(by_day) > 1:
        logger.warning("%s: rows carry several publish dates %s; using the latest", url, sorted(by_day))
    day = max(by_day)
    arena = Arena("", board, method, agent=agent)
    if not day:  # no publish date at all: the fetch time stands for it
        snap = dataset_snapshot(by_day[day], identity=identity, arena=arena,
                                day=fetched_at.date().isoformat(), url=url, fetched_at=fetched_at)
        return [make_snapshot(board, fetched_at, fetched_at, snap.entries, origin=ORIGIN_DATASET,
                              method=method)]
    return [dataset_snapshot(by_day[day], identity=identity, arena=arena, day=day, url=url,
                             fetched_at=fetched_at)]


def parse_dataset_pages(
    pages: Sequence[bytes], *, identity: Identity, board: Board, method: str, url: str, fetched_at: datetime,
) -> list[Snapshot]:
    """Every page of one config's latest split, checked to add up to `num_rows_total`, as a snapshot."""
    if not pages:
        raise _error(url, "no pages")
    parsed = [parse_dataset_page(p, url=url) for p in pages]
    total = parsed[0].total
    if any(p.total != total for p in parsed):
        raise _error(url, f"num_rows_total changed while paging ({sorted({p.total for p in parsed})}); "
                          "the dataset was updated mid-fetch")
    rows = [row for page in parsed for row in page.rows]
    if len(rows) != total:
        raise _error(url, f"got {len(rows)} rows where num_rows_total is {total}")
    if not rows:
        raise _error(url, "no rows (empty split)")
    return parse_dataset_rows(rows, identity=identity, board=board, method=method, url=url,
                              fetched_at=fetched_at)


# ---------------------------------------------------------------------------------------------
# Recorded history


def _plus_minus(text: str, score: float, what: str, url: str) -> tuple[float | None, float | None]:
    """`+3/-4` -> (score - 4, score + 3); an empty cell -> (None, None)."""
    if is_missing(text):
        return None, None
    plus, sep, minus = text.strip().partition("/")
    if not sep:
        raise _error(url, f"{what}: unparseable 95% CI {text!r} (expected +a/-b)")
    up = _number(plus, what, url)
    down = _number(minus, what, url)
    return score - abs(down), score + abs(up)


def parse_fboulnois_csv(
    content: bytes, *, identity: Identity, board: Board, url: str, as_of: datetime, fetched_at: datetime,
    origin: str = ORIGIN_LMSYS_CSV,
) -> list[Snapshot]:
    """fboulnois's copy of the official table (`lmsys.csv`, `lmarena_{text,vision}.csv`), default view.

    `arena_elo` (2024-06-19) became `arena_score`; `rank_stylectrl` (from 2024-10-16) is ignored.
    `rank` is LMArena's CI-based rank with ties, kept as published.
    """
    header, rows = _csv_rows(content, url, ())
    score_column = "arena_score" if "arena_score" in header else "arena_elo"
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if score_column not in header:
        missing.append("arena_score (or arena_elo)")
    _refuse_missing_columns(header, missing, url)
    entries: list[Entry] = []
    for line, row in rows:
        name = row["model"].strip()
        if not name:
            raise _error(url, f"line {line}: empty model name")
        where = f"line {line}"
        score = _score(row[score_column], f"{where} {score_column}", url)
        lower, upper = _plus_minus(row["95_pct_ci"], score, f"{where} 95_pct_ci", url)
        entries.append(identity.entry(
            name, score, _integer(row["rank"], f"{where} rank", url),
            organization=_optional_text(row["organization"]),
            open_weights=open_weights_of(row["license"]),
            ci_lower=lower, ci_upper=upper,
            votes=_optional_integer(row["votes"], f"{where} votes", url),
        ))
    return [make_snapshot(board, as_of, fetched_at, _unique(entries, url), origin=origin, method=DEFAULT)]


def parse_catalog_json(
    content: bytes, *, identity: Identity, board: Board, method: str, url: str, as_of: datetime,
    fetched_at: datetime, category: str = "full",
) -> list[Snapshot]:
    """arena-catalog `{category: {model_key: {rating, rating_q975, rating_q025}}}`; `full` is overall.

    No rank is published: competition ranks on the rating. No organization either: Identity infers it.
    """
    data = load_json(content, source=NAME, url=url, expected="the arena-catalog JSON")
    if not isinstance(data, dict):
        raise _error(url, "expected an object {category: {model: {rating, ...}}}")
    table = data.get(category)
    if table is None:
        raise _error(url, f"no `{category}` category (found: {', '.join(sorted(map(str, data)))})")
    if not isinstance(table, dict) or not table:
        raise _error(url, f"the `{category}` category is empty")
    scored: list[tuple[tuple[str, float | None, float | None], float]] = []
    for key, value in table.items():
        where = f"{category}/{key}"
        check_record(value, ("rating",), where, source=NAME, url=url)
        rating = _score(value["rating"], f"{where} rating", url)
        lower = _optional_number(value.get("rating_q025"), f"{where} rating_q025", url)
        upper = _optional_number(value.get("rating_q975"), f"{where} rating_q975", url)
        scored.append(((str(key), lower, upper), rating))
    entries = [identity.entry(name, score, rank, ci_lower=lo, ci_upper=hi)
               for (name, lo, hi), score, rank in ranked(board, scored)]
    return [make_snapshot(board, as_of, fetched_at, _unique(entries, url), origin=ORIGIN_CATALOG,
                          method=method)]


def parse_daily_scrape(
    content: bytes, *, identity: Identity, url: str, as_of: datetime | None = None,
) -> list[Snapshot]:
    """A scraped arena.ai page `{meta: {leaderboard, fetched_at, ...}, models: [...]}`: a top N only.

    as_of is `meta.fetched_at` (the moment the page was read), else the given date; `ci` is one
    +/- number; `rank` is the position on the page.
    """
    data = load_json(content, source=NAME, url=url, expected="a scraped arena.ai page (JSON)")
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or "models" not in data:
        raise _error(url, "expected an object with `meta` and `models`")
    meta, models = data["meta"], data["models"]
    leaderboard = meta.get("leaderboard")
    if leaderboard not in SCRAPE_BOARDS:
        raise _error(url, f"unknown leaderboard {leaderboard!r} (known: {', '.join(SCRAPE_BOARDS)})")
    board, method = SCRAPE_BOARDS[leaderboard]
    if meta.get("fetched_at"):
        as_of = _timestamp(meta["fetched_at"], "meta.fetched_at", url)
    if as_of is None:
        raise _error(url, "no date: meta.fetched_at is missing")
    if not isinstance(models, list) or not models:
        raise _error(url, "no models (empty table)")
    count = meta.get("model_count")
    if isinstance(count, int) and count != len(models):
        raise _error(url, f"meta.model_count is {count} but {len(models)} models are listed")
    entries: list[Entry] = []
    for i, model in enumerate(models):
        check_record(model, ("rank", "model", "score"), f"models[{i}]", source=NAME, url=url)
        where = f"models[{i}] ({model['model']})"
        score = _score(model["score"], f"{where} score", url)
        ci = _optional_number(model.get("ci"), f"{where} ci", url)
        entries.append(identity.entry(
            str(model["model"]).strip(), score, _integer(model["rank"], f"{where} rank", url),
            organization=_optional_text(model.get("vendor")),
            open_weights=open_weights_of(model.get("license")),
            ci_lower=None if ci is None else score - ci, ci_upper=None if ci is None else score + ci,
            votes=_optional_integer(model.get("votes"), f"{where} votes", url),
        ))
    return [make_snapshot(board, as_of, as_of, _unique(entries, url), origin=ORIGIN_SCRAPE,
                          truncated=True, method=method)]


def parse_history_csv(content: bytes, *, identity: Identity, url: str) -> list[Snapshot]:
    """jasontrigg0's long `key,Model,rating,License,Organization,date`: one text snapshot per date.

    No rank is published (competition ranks per date); deprecated models are kept. The first two
    dates are online Elo, later ones Bradley-Terry.
    """
    _, rows = _csv_rows(content, url, _HISTORY_REQUIRED)
    by_date: dict[str, dict[str, tuple[tuple[str, dict[str, str]], float]]] = {}
    for line, row in rows:
        day, key = row["date"].strip(), row["key"].strip()
        rating = _score(row["rating"], f"line {line} rating", url)
        seen = by_date.setdefault(day, {})
        if key in seen:
            # yi-34b-chat appears twice on 96 dates with identical values (a metadata join artefact).
            if seen[key][1] != rating and not (math.isnan(rating) and math.isnan(seen[key][1])):
                raise _error(url, f"line {line}: {key} listed twice on {day} with different ratings")
            continue
        seen[key] = ((row["Model"].strip() or key, row), rating)
    snapshots: list[Snapshot] = []
    for day, models in by_date.items():
        as_of = _timestamp(day, f"date {day!r}", url)
        entries = [identity.entry(name, rating, rank,
                                  organization=_optional_text(row["Organization"]),
                                  open_weights=open_weights_of(row["License"]))
                   for (name, row), rating, rank in ranked(TEXT, models.values())]
        method = ELO_ONLINE if day in _ONLINE_ELO_DATES else BRADLEY_TERRY
        snapshots.append(make_snapshot(TEXT, as_of, as_of, _unique(entries, url), origin=ORIGIN_HISTORY,
                                       method=method))
    return snapshots


def catalog_board(path: Path) -> tuple[Board, str, datetime] | None:
    """(board, method, as_of) of an arena-catalog file from its name, None for files that are no board."""
    match = _CATALOG_FILE.match(path.stem)
    if match is None:
        return None
    kind, style_control, day = match.group(1), bool(match.group(2)), date.fromisoformat(match.group(3))
    if kind == "data" and not style_control:
        # Before the split, `leaderboard-data.json` held the style-controlled ratings.
        style_control = day < _CATALOG_SPLIT
    if kind == "vision":
        if style_control:
            return VISION_STYLE_CONTROL, STYLE_CONTROL, midnight_utc(day)
        return VISION, DEFAULT, midnight_utc(day)
    if style_control:
        return TEXT_STYLE_CONTROL, STYLE_CONTROL, midnight_utc(day)
    return TEXT, DEFAULT, midnight_utc(day)


# ---------------------------------------------------------------------------------------------
# The source


class LmarenaSource:
    """Every arena of LMArena's leaderboard dataset, live and from its history, plus the older copies."""

    name = NAME
    # The dataset is republished about daily; each arena's `latest` file is asked for conditionally.
    interval_seconds = 3600

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        self.identity = identity
        self.url = (url or FILES_URL).rstrip("/")
        """The base of the dataset's files (a mirror or proxy may stand in for the Hub)."""
        # jasontrigg0's single CSV backs ~105 recordings: parse it once per path.
        self._history: dict[Path, dict[str, Snapshot]] = {}
        # A `full` file backs one recording per board and publish date: read it once per version.
        self._dataset: dict[tuple[Path, int, int], dict[str, list[DatasetRow]]] = {}
        self._logged: set[tuple[str, str]] = set()

    def boards(self) -> list[Board]:
        """One board per arena of the dataset."""
        return list(BOARDS)

    def file_url(self, config: str, split: str) -> str:
        """The parquet file of one config's split (`latest` or `full`)."""
        return f"{self.url}/{config}/{split}-00000-of-00001.parquet"

    @property
    def probe_url(self) -> str:
        """What `doctor` asks for to see the source is reachable."""
        return self.file_url("text", "latest")

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Each arena's `latest` parquet file that changed since the last fetch, as a snapshot."""
        snapshots: list[Snapshot] = []
        for arena in ARENAS:
            url = self.file_url(arena.config, "latest")
            try:
                body = await http.get(self.name, url)
            except SourceError as exc:
                # An arena the dataset withdrew must not stop the others; the first four must be there.
                if exc.reason != "HTTP 404":
                    raise
                if arena.core:
                    raise _shape(url, f"{arena.board.id}: the dataset no longer publishes `{arena.config}` "
                                      "(HTTP 404)") from None
                logger.warning("%s: %s answered HTTP 404; skipping the %s board", NAME, url, arena.board.id)
                continue
            if body is None:
                continue
            by_day = read_dataset_parquet(body, arena, url)
            if not by_day:
                raise _shape(url, "no `overall` rows in the latest split")
            day = max(by_day)
            if len(by_day) > 1:
                logger.warning("%s: `overall` rows carry several publish dates %s; using the latest", url,
                               sorted(by_day))
            snapshots.append(dataset_snapshot(by_day[day], identity=self.identity, arena=arena, day=day,
                                              url=url, fetched_at=utcnow(), logged=self._logged))
        return snapshots

    def recordings(self, root: Path) -> list[Recording]:
        """The dataset's `full` files (one per board and publish date), fboulnois CSVs, arena-catalog
        JSON, jasontrigg0's history (one per date), the daily scrape."""
        base = root / "lmarena"
        found = self._dataset_recordings(base / DATASET_FOLDER)
        for path in sorted((base / "fboulnois_lmsys_csv").glob("lmsys_*.csv")):
            match = _LMSYS_FILE.match(path.stem)
            if match:
                day = midnight_utc(match.group(1))
                found.append(Recording(FAMILY_LMSYS_CSV, PRIORITY_CSV, (TEXT.id,), day, path))
        for path in sorted((base / "fboulnois_lmarena_csv").glob("lmarena_*.csv")):
            match = _LMARENA_FILE.match(path.stem)
            if match and match.group(1) in _LMARENA_CSV_BOARDS:
                day = midnight_utc(match.group(2))
                board = _LMARENA_CSV_BOARDS[match.group(1)]
                found.append(Recording(FAMILY_LMARENA_CSV, PRIORITY_CSV, (board.id,), day, path))
        for path in sorted((base / "arena_catalog").glob("*.json")):
            target = catalog_board(path)
            if target is not None:
                found.append(Recording(FAMILY_CATALOG, PRIORITY_CATALOG, (target[0].id,), target[2], path))
        history = base / "jasontrigg0_history" / "alltime.csv"
        if history.is_file():
            for day in _history_dates(history):
                found.append(Recording(FAMILY_HISTORY, PRIORITY_HISTORY, (TEXT.id,), day, history,
                                       day.date().isoformat()))
        # `latest.json` only points at the newest dated folder ({"date", "path"}): not data.
        for folder in sorted(p for p in (base / "arena_ai_daily_scrape").glob("*") if _DAY.match(p.name)):
            day = midnight_utc(folder.name)
            for kind, (board, _) in SCRAPE_BOARDS.items():
                path = folder / f"{kind}.json"
                if path.is_file():
                    found.append(Recording(FAMILY_SCRAPE, PRIORITY_SCRAPE, (board.id,), day, path))
        return found

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recording with the parser of its family."""
        path, url, as_of = recording.path, str(recording.path), recording.as_of
        family = recording.family
        if family == FAMILY_HISTORY:
            return self._load_history(recording)
        if family == FAMILY_DATASET:
            arena = ARENAS_BY_BOARD[recording.board_ids[0]]
            rows = self._dataset_rows(path, arena).get(recording.part)
            if rows is None:
                raise _error(url, f"no `overall` rows dated {recording.part}")
            return [dataset_snapshot(rows, identity=self.identity, arena=arena, day=recording.part, url=url,
                                     fetched_at=as_of, logged=self._logged)]
        content = read_recording(path, source=NAME)
        if family in (FAMILY_LMSYS_CSV, FAMILY_LMARENA_CSV):
            origin = ORIGIN_LMSYS_CSV if family == FAMILY_LMSYS_CSV else ORIGIN_LMARENA_CSV
            board = BOARDS_BY_ID[recording.board_ids[0]]
            return parse_fboulnois_csv(content, identity=self.identity, board=board, url=url, as_of=as_of,
                                       fetched_at=as_of, origin=origin)
        if family == FAMILY_CATALOG:
            target = catalog_board(path)
            if target is None:
                raise _error(url, "not an arena-catalog leaderboard file")
            board, method, day = target
            return parse_catalog_json(content, identity=self.identity, board=board, method=method, url=url,
                                      as_of=day, fetched_at=day)
        if family == FAMILY_SCRAPE:
            return parse_daily_scrape(content, identity=self.identity, url=url, as_of=as_of)
        raise _error(url, f"unknown recording family {family!r}")

    def _dataset_recordings(self, folder: Path) -> list[Recording]:
        """One recording per board and publish date of each downloaded `full` file, from `since` on."""
        since = _backfill_since(folder)
        found: list[Recording] = []
        for arena in ARENAS:
            for path in sorted((folder / arena.config).glob("full-*.parquet")):
                for day in sorted(self._dataset_rows(path, arena)):
                    if since is not None and day < since.isoformat():
                        continue
                    try:
                        as_of = midnight_utc(day)
                    except ValueError:  # one bad date must not hide the file's other boards
                        logger.warning("%s: unparseable leaderboard_publish_date %r; its rows are skipped",
                                       path, day)
                        continue
                    found.append(Recording(FAMILY_DATASET, PRIORITY_DATASET, (arena.board.id,), as_of, path,
                                           day))
        return found

    def _dataset_rows(self, path: Path, arena: Arena) -> dict[str, list[DatasetRow]]:
        try:
            stat = path.stat()
        except OSError as exc:
            raise _error(str(path), f"cannot read the file: {exc.strerror}") from None
        key = (path, stat.st_mtime_ns, stat.st_size)
        rows = self._dataset.get(key)
        if rows is None:
            rows = read_dataset_parquet(path, arena, str(path))
            self._dataset = {k: v for k, v in self._dataset.items() if k[0] != path}
            self._dataset[key] = rows
        return rows

    def _load_history(self, recording: Recording) -> list[Snapshot]:
        by_day = self._history.get(recording.path)
        if by_day is None:
            content, url = read_recording(recording.path, source=NAME), str(recording.path)
            snapshots = parse_history_csv(content, identity=self.identity, url=url)
            by_day = {s.as_of.date().isoformat(): s for s in snapshots}
            self._history[recording.path] = by_day
        snapshot = by_day.get(recording.part)
        if snapshot is None:
            raise _error(str(recording.path), f"no rows dated {recording.part}")
        return [snapshot]


def _history_dates(path: Path) -> list[datetime]:
    """The distinct dates of jasontrigg0's CSV from its last column, without building entries.

    Lines whose last field is no YYYYMMDD date are left for `load` to report.
    """
    days: set[str] = set()
    for line in read_recording(path, source=NAME).decode("utf-8-sig", errors="replace").splitlines()[1:]:
        day = line.rpartition(",")[2].strip()
        if len(day) == 8 and day.isdigit():
            days.add(day)
    found: list[datetime] = []
    for day in sorted(days):
        try:
            found.append(midnight_utc(datetime.strptime(day, "%Y%m%d").date()))
        except ValueError:
            continue
    return found


# ---------------------------------------------------------------------------------------------
# Backfill: the `full` split of every arena


def _backfill_since(folder: Path) -> date | None:
    """The `since` date the last `download_history` into `folder` was given (None: every date)."""
    note = folder / BACKFILL_NOTE
    if not note.is_file():
        return None
    try:
        data = json.loads(note.read_text(encoding="utf-8"))
        return None if data.get("since") is None else date.fromisoformat(data["since"])
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise _error(str(note), f"unreadable backfill note ({exc}); delete it and run the backfill again") \
            from None


async def download_history(
    http: Fetcher, cache: Path, since: date | None, progress: Callable[[str, int, int | None], None], *,
    url: str | None = None,
) -> str:
    """Download the `full` split of every arena into `<cache>/lmarena/leaderboard_dataset/<config>/`.

    A file already there is kept (a rerun resumes; delete the folder to refresh the history). `since`
    is noted beside the files so the import skips older publish dates. Returns the summary line.
    """
    base = (url or FILES_URL).rstrip("/")
    folder = cache / NAME / DATASET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    note = {"since": None if since is None else since.isoformat(), "url": base}
    partial = folder / f".{BACKFILL_NOTE}.partial-{os.getpid()}"
    partial.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / BACKFILL_NOTE)
    fetched = kept = size = 0
    missing: list[str] = []
    for i, arena in enumerate(ARENAS, start=1):
        dest = folder / arena.config / "full-00000-of-00001.parquet"
        file_url = f"{base}/{arena.config}/full-00000-of-00001.parquet"
        if dest.is_file():
            kept += 1
        else:
            try:
                got = await http.download(NAME, file_url, dest)
            except SourceError as exc:
                if arena.core or exc.reason != "HTTP 404":
                    raise
                logger.warning("%s: %s answered HTTP 404; no history for %s", NAME, file_url, arena.board.id)
                missing.append(arena.config)
                progress(f"{arena.config} (not published)", i, len(ARENAS))
                continue
            problem = _not_parquet(dest)
            if problem:
                dest.unlink(missing_ok=True)
                raise _error(file_url, f"the download is not a parquet file ({problem})")
            fetched += 1
            size += got
        progress(f"{arena.config} full", i, len(ARENAS))
    arenas = len(ARENAS) - len(missing)
    line = (f"LMArena's leaderboard dataset (CC BY 4.0), `full` split of {arenas} arenas: "
            f"{fetched} downloaded ({size_text(size)}), {kept} already there")
    if missing:
        line += f"; not published: {', '.join(missing)}"
    if since is not None:
        line += f"; publish dates before {since.isoformat()} skipped"
    return line
