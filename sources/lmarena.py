"""LMArena (ex LMSYS Chatbot Arena): the live Hugging Face leaderboard dataset and its recorded history.

Live: the `lmarena-ai/leaderboard-dataset` rows API, one config per board. History: fboulnois's CSV
copies of the official table, LMArena's own arena-catalog JSON, jasontrigg0's rebuilt Elo history
and a third-party daily scrape of arena.ai (see PROVENANCE.md section 1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import Board, Entry, Recording, Snapshot, SourceError, make_snapshot, ranked
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import (
    check_record,
    is_missing,
    load_json,
    midnight_utc,
    missing_fields,
    read_csv,
    read_recording,
    refuse_missing,
    to_number,
)

logger = logging.getLogger(__name__)

NAME = "lmarena"
METRIC = "Arena score"

TEXT = Board("lmarena/text", "LMArena Text", METRIC, True, True, "https://arena.ai/leaderboard/text")
TEXT_STYLE_CONTROL = Board(
    "lmarena/text-style-control", "LMArena Text (style control)", METRIC, True, True,
    "https://arena.ai/leaderboard/text",
)
VISION = Board("lmarena/vision", "LMArena Vision", METRIC, True, True, "https://arena.ai/leaderboard/vision")
# arena.ai lists the coding board as "Code" since Code Arena replaced WebDev Arena (2025-11-12).
WEBDEV = Board("lmarena/webdev", "LMArena WebDev / Code", METRIC, True, True, "https://arena.ai/leaderboard/code")
BOARDS: tuple[Board, ...] = (TEXT, TEXT_STYLE_CONTROL, VISION, WEBDEV)
BOARDS_BY_ID = {b.id: b for b in BOARDS}

DEFAULT = "default"
STYLE_CONTROL = "style-control"
ELO_ONLINE = "elo-online"
BRADLEY_TERRY = "bradley-terry"
CODE_ARENA = "code-arena"

ROWS_URL = "https://datasets-server.huggingface.co/rows"
DATASET = "lmarena-ai/leaderboard-dataset"
PAGE_LENGTH = 100
# A latest split holds every category of every model (a few thousand rows); far more means a
# different dataset shape, and paging through it would hammer the datasets-server.
MAX_ROWS = 50_000
LIVE_CONFIGS: tuple[tuple[str, Board, str], ...] = (
    ("text", TEXT, DEFAULT),
    ("text_style_control", TEXT_STYLE_CONTROL, STYLE_CONTROL),
    ("vision", VISION, DEFAULT),
    ("webdev", WEBDEV, ""),
)

ORIGIN_DATASET = "lmarena-dataset"
ORIGIN_LMSYS_CSV = "fboulnois-lmsys-csv"
ORIGIN_LMARENA_CSV = "fboulnois-lmarena-csv"
ORIGIN_CATALOG = "arena-catalog"
ORIGIN_HISTORY = "jasontrigg0-history"
ORIGIN_SCRAPE = "arena-ai-daily-scrape"

FAMILY_LMSYS_CSV = f"{NAME}/{ORIGIN_LMSYS_CSV}"
FAMILY_LMARENA_CSV = f"{NAME}/{ORIGIN_LMARENA_CSV}"
FAMILY_CATALOG = f"{NAME}/{ORIGIN_CATALOG}"
FAMILY_HISTORY = f"{NAME}/{ORIGIN_HISTORY}"
FAMILY_SCRAPE = f"{NAME}/{ORIGIN_SCRAPE}"

PRIORITY_CSV = 10
PRIORITY_CATALOG = 20
PRIORITY_HISTORY = 30
PRIORITY_SCRAPE = 40

# arena.ai's default view is style-controlled: the scraped `text` scores match arena-catalog's
# style-control ratings (mean gap ~3 points) and not its default ones (~20 points). `code` is Code
# Arena, the successor of WebDev Arena, rated afresh without the WebDev votes.
SCRAPE_BOARDS: dict[str, tuple[Board, str]] = {
    "text": (TEXT_STYLE_CONTROL, STYLE_CONTROL),
    "vision": (VISION, STYLE_CONTROL),
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
# Live: the datasets-server rows API


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
    """The `overall` rows of a leaderboard-dataset split as one snapshot; as_of = the publish date."""
    overall = [r for r in rows if r.get("category") == "overall"]
    if not overall:
        categories = sorted({str(r.get("category")) for r in rows})
        raise _error(url, f"no `overall` rows (categories: {', '.join(categories) or 'none'})")
    missing = sorted({k for r in overall for k in missing_fields(r, ("model_name", "rating", "rank"))})
    if missing:
        raise _error(url, f"required field(s) missing: {', '.join(missing)}")
    entries: list[Entry] = []
    published: set[datetime] = set()
    for row in overall:
        name = str(row["model_name"]).strip()
        where = f"model {name!r}"
        score = _number(row["rating"], f"{where} rating", url)
        # arena-catalog renamed rating_lower/upper to rating_q025/q975 "for compatibility with latest
        # HuggingFace leaderboard data" (2025-11-05): accept both spellings.
        lower = row.get("rating_lower", row.get("rating_q025"))
        upper = row.get("rating_upper", row.get("rating_q975"))
        entries.append(identity.entry(
            name, score, _integer(row["rank"], f"{where} rank", url),
            organization=_optional_text(row.get("organization")),
            open_weights=open_weights_of(row.get("license")),
            ci_lower=_optional_number(lower, f"{where} rating_lower", url),
            ci_upper=_optional_number(upper, f"{where} rating_upper", url),
            votes=_optional_integer(row.get("vote_count"), f"{where} vote_count", url),
        ))
        if row.get("leaderboard_publish_date") not in (None, ""):
            published.add(_timestamp(row["leaderboard_publish_date"], f"{where} publish date", url))
    if len(published) > 1:
        logger.warning("%s: rows carry several publish dates %s; using the latest", url, sorted(published))
    as_of = max(published) if published else fetched_at
    return [make_snapshot(board, as_of, fetched_at, _unique(entries, url), origin=ORIGIN_DATASET,
                          method=method)]


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
        score = _number(row[score_column], f"{where} {score_column}", url)
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
        rating = _number(value["rating"], f"{where} rating", url)
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
        score = _number(model["score"], f"{where} score", url)
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
        rating = _number(row["rating"], f"line {line} rating", url)
        seen = by_date.setdefault(day, {})
        if key in seen:
            # yi-34b-chat appears twice on 96 dates with identical values (a metadata join artefact).
            if seen[key][1] != rating:
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
            return None  # no vision style-control board
        return VISION, DEFAULT, midnight_utc(day)
    if style_control:
        return TEXT_STYLE_CONTROL, STYLE_CONTROL, midnight_utc(day)
    return TEXT, DEFAULT, midnight_utc(day)


# ---------------------------------------------------------------------------------------------
# The source


class LmarenaSource:
    """LMArena's text, text style-control, vision and webdev boards."""

    name = NAME
    # The dataset is republished about daily; paging all four configs is ~100 requests.
    interval_seconds = 3600

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        # jasontrigg0's single CSV backs ~105 recordings: parse it once per path.
        self._history: dict[Path, dict[str, Snapshot]] = {}

    def boards(self) -> list[Board]:
        """The four boards."""
        return list(BOARDS)

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Every config of the leaderboard dataset that changed since the last fetch."""
        snapshots: list[Snapshot] = []
        for config, board, method in LIVE_CONFIGS:
            pages = await self._fetch_pages(http, config)
            if pages is None:
                continue
            snapshots.extend(parse_dataset_pages(
                pages, identity=self.identity, board=board, method=method, url=dataset_url(config),
                fetched_at=utcnow(),
            ))
        return snapshots

    async def _fetch_pages(self, http: Fetcher, config: str) -> list[bytes] | None:
        """All pages of one config's latest split, or None when its first page is unchanged (304)."""
        first = await http.get(self.name, ROWS_URL, params=self._params(config, 0))
        if first is None:
            # Every row carries leaderboard_publish_date, so a new publication changes page one too.
            return None
        total = parse_dataset_page(first, url=dataset_url(config, 0)).total
        if total > MAX_ROWS:
            raise _error(dataset_url(config), f"num_rows_total is {total}, more than {MAX_ROWS}")
        pages = [first]
        for offset in range(PAGE_LENGTH, total, PAGE_LENGTH):
            body = await http.get(self.name, ROWS_URL, params=self._params(config, offset), conditional=False)
            if body is None:
                raise _error(dataset_url(config, offset), "304 Not Modified to an unconditional request")
            pages.append(body)
        return pages

    @staticmethod
    def _params(config: str, offset: int) -> dict[str, str | int]:
        return {"dataset": DATASET, "config": config, "split": "latest", "offset": offset,
                "length": PAGE_LENGTH}

    def recordings(self, root: Path) -> list[Recording]:
        """fboulnois CSVs, arena-catalog JSON, jasontrigg0's history (one per date), the daily scrape."""
        base = root / "lmarena"
        found: list[Recording] = []
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
