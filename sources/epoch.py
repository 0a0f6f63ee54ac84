"""Epoch AI Benchmarking Hub: one board per benchmark CSV of `benchmark_data.zip`, ECI included.

Every CSV of the export starts `Model version, <score>[, <score 2>], Release date, Organization,
Country, ...`; the score column's name differs per file. The zip names it: `benchmark_metadata.csv`
(`benchmark, in_eci, source_file, score_column, scale, ...`; `scale` 1.0 for fractions, 0.01 for
percents, 0.1 for 0-10) gives it for the files that feed the ECI. For a file it does not name, and for
copies without it (the recorded 2026-04-19 export), the column is looked up in a table of known names
(BENCHMARKS, which also keeps the known boards' titles and metrics), else taken as the
first column between `Model version` and `Release date` that is not a descriptor (`Scaffold`,
`Agent`, `Tools`). Scores stay as published: fractions 0-1 in most files, percents in a few (Aider,
OS World), points (GeoBench), Elo (WebDev Arena), minutes (METR), ECI units.

The ECI moved in 2026 from `epoch_capabilities_index.csv` (`Model version, ECI Score, ...`) to
`epoch_capabilities_index/eci_scores.csv` (`Model, Display name, eci, eci_ci_low, eci_ci_high, date,
Organization, Country (of organization), Model accessibility, ...`: one row per model group, with a
90% interval); both feed `epoch/eci`. A live zip without the ECI is a ShapeError (the source shows as
drifted) at every poll; another board of the last fetch missing from the next is reported once.

The files collect results from many origins (papers with different shot counts, agents, scaffolds),
so one model version can have several rows; a board keeps its best published score. Rows with no
`Model version` (raw results Epoch did not link to a model: no organization, country or date) and rows
with an empty score (unverified, e.g. fresh ECI rows) are left out.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath

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
    check_boards,
    midnight_utc,
    read_csv,
    read_optional_number,
    read_optional_score,
    read_recording,
    refuse_html,
    require_columns,
)

logger = logging.getLogger(__name__)

NAME = "epoch"
ZIP_URL = "https://epoch.ai/data/benchmark_data.zip"
SITE_URL = "https://epoch.ai/benchmarks"
FAMILY = "epoch/benchmark-csv"
HUB_RUNS_FAMILY = "epoch/hub-runs-2025"


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A file of the export: its board suffix, title, metric and the score column if known."""

    slug: str
    title: str
    metric: str
    score_column: str | None = None


# The metric of the score columns that many files share; a file with another column names its own.
_COLUMN_METRICS = {
    "Best score (across scorers)": "best score across scorers (fraction 0-1)",
    "Score": "score (fraction 0-1)",
    "mean_score": "mean score (fraction 0-1)",
    "EM": "exact match (fraction 0-1)",
    "Accuracy": "accuracy (fraction 0-1)",
}


def _known(slug: str, title: str, column: str, metric: str = "") -> Benchmark:
    """A benchmark whose score column is known; its metric defaults to the column's usual one."""
    return Benchmark(slug, title, metric or _COLUMN_METRICS[column], column)


# stem of the CSV in benchmark_data.zip (without `_external`) -> board. Covers every file of the
# 2026-04-19 export; a file the export adds later gets a generic board (see `benchmark_for`).
BENCHMARKS: dict[str, Benchmark] = {b.slug: b for b in (
    _known("eci", "Epoch Capabilities Index (ECI)", "ECI Score", "ECI score"),
    _known("adversarial_nli", "Adversarial NLI", "Score"),
    _known("aider_polyglot", "Aider Polyglot", "Percent correct", "percent correct (0-100)"),
    _known("apex_agents", "APEX-Agents", "Pass@1 score", "pass@1 (fraction 0-1)"),
    _known("arc_agi", "ARC-AGI", "Score"),
    _known("arc_agi_2", "ARC-AGI-2", "Score"),
    _known("arc_ai2", "ARC (AI2) Challenge", "Challenge score", "challenge score (fraction 0-1)"),
    _known("balrog", "BALROG", "Average progress", "average progress (fraction 0-1)"),
    _known("bbh", "BIG-Bench Hard", "Average", "average (fraction 0-1)"),
    _known("bool_q", "BoolQ", "Score"),
    _known("cad_eval", "CadEval", "Overall pass (%)", "overall pass (fraction 0-1)"),
    _known("chess_puzzles", "Chess puzzles", "mean_score"),
    _known("common_sense_qa_2", "CommonsenseQA 2.0", "Score"),
    _known("cybench", "Cybench", "Unguided % Solved", "unguided solved (fraction 0-1)"),
    _known("deepresearchbench", "DeepResearch Bench", "Average score", "average score (fraction 0-1)"),
    _known("fictionlivebench", "Fiction.LiveBench", "120k token score", "120k-token score (fraction 0-1)"),
    _known("frontiermath", "FrontierMath (tiers 1-3)", "mean_score"),
    _known("frontiermath_tier_4", "FrontierMath tier 4", "mean_score"),
    _known("gdpval", "GDPval", "Win Rate (%)", "win rate (fraction 0-1)"),
    _known("geobench", "GeoBench", "ACW Avg Score", "ACW average score (points, max 5000)"),
    _known("gpqa_diamond", "GPQA Diamond", "mean_score"),
    _known("gsm8k", "GSM8K", "EM"),
    _known("gso", "GSO", "Score OPT@1", "OPT@1 (fraction 0-1)"),
    _known("hella_swag", "HellaSwag", "Overall accuracy", "accuracy (fraction 0-1)"),
    _known("hle", "Humanity's Last Exam", "Accuracy"),
    _known("lambada", "LAMBADA", "Score"),
    _known("lech_mazur_writing", "Lech Mazur creative writing", "Mean score", "mean score (0-10)"),
    _known("live_bench", "LiveBench (via Epoch)", "Global average", "global average (0-100)"),
    _known("math_level_5", "MATH level 5", "mean_score"),
    _known("metr_time_horizons", "METR time horizons", "Time horizon", "50% time horizon (minutes)"),
    _known("mmlu", "MMLU", "EM"),
    _known("open_book_qa", "OpenBookQA", "Accuracy"),
    _known("os_world", "OSWorld", "Score", "score (percent 0-100)"),
    _known("otis_mock_aime_2024_2025", "OTIS Mock AIME 2024-2025", "mean_score"),
    _known("piqa", "PIQA", "Score"),
    _known("posttrainbench", "PostTrainBench", "Average (%)", "average (fraction 0-1)"),
    _known("science_qa", "ScienceQA", "Score"),
    _known("simplebench", "SimpleBench", "Score (AVG@5)", "AVG@5 (fraction 0-1)"),
    _known("simpleqa_verified", "SimpleQA Verified", "mean_score"),
    _known("superglue", "SuperGLUE", "Score"),
    _known("swe_bench_bash", "SWE-bench (bash only)", "% Resolved", "resolved (fraction 0-1)"),
    _known("swe_bench_verified", "SWE-bench Verified", "mean_score"),
    _known("terminalbench", "Terminal-Bench", "Accuracy mean", "accuracy mean (fraction 0-1)"),
    _known("the_agent_company", "TheAgentCompany", "% Score", "score (fraction 0-1)"),
    _known("trivia_qa", "TriviaQA", "EM"),
    _known("video_mme", "Video-MME", "Overall (no subtitles)", "overall, no subtitles (fraction 0-1)"),
    _known("vpct", "VPCT", "Correct", "correct (fraction 0-1)"),
    _known("webdev_arena", "WebDev Arena", "Arena Score", "Arena score (Elo)"),
    _known("weirdml", "WeirdML", "Accuracy"),
    _known("wino_grande", "WinoGrande", "Accuracy"),
)}
STEM_ALIASES = {"epoch_capabilities_index": "eci", "eci_scores": "eci"}
METADATA_FILE = "benchmark_metadata.csv"
ECI_FILE = "epoch_capabilities_index/eci_scores.csv"
ECI_MODEL_COLUMN = "Model"
ECI_BENCHMARK = Benchmark("eci", "Epoch Capabilities Index (ECI)", "ECI score", "eci")
CORE_BOARDS = ("eci",)
"""Boards every live zip must give; another board of the last fetch missing from the next is
reported once."""
_SCALE_UNITS = {1.0: "fraction 0-1", 0.01: "percent 0-100", 0.1: "0-10"}
# Members of the zip that are not benchmark tables.
_NOT_BOARDS = frozenset({METADATA_FILE, "model_metadata.csv"})

# Tasks of the 2025 hub format (`benchmarks_runs.csv`) -> board slug; the public FrontierMath
# sample has no file of its own in later exports.
HUB_TASKS: dict[str, str] = {
    "GPQA diamond": "gpqa_diamond",
    "MATH level 5": "math_level_5",
    "OTIS Mock AIME 2024-2025": "otis_mock_aime_2024_2025",
    "FrontierMath-2025-02-28-Private": "frontiermath",
    "FrontierMath-2025-02-28-Public": "frontiermath_public",
    "SWE-Bench verified": "swe_bench_verified",
}
_ARCHIVED = {"frontiermath_public": Benchmark(
    "frontiermath_public", "FrontierMath public sample (2025-02-28)", "best score (fraction 0-1)")}
HUB_RUNS_AS_OF = {"benchmarking_hub_2025-05": date(2025, 5, 12)}
"""Snapshot dates of the recorded hub-format folders (PROVENANCE.md: commit date)."""

# Columns between `Model version` and `Release date` that describe the run rather than score it.
DESCRIPTORS = frozenset({"Scaffold", "Agent", "Tools", "Name", "Best score (across scorers)"})
# Known (lower, upper) CI columns and vote counts.
CI_COLUMNS = (("95% CI Low", "95% CI High"), ("CI_low", "CI_high"), ("eci_ci_low", "eci_ci_high"))
COUNTRY_COLUMNS = ("Country", "Country (of organization)")
VOTES_COLUMN = "Votes"
MODEL_COLUMN = "Model version"
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_DATED = re.compile(r"_(?P<date>\d{4}-\d{2}-\d{2})$")


def board_slug(stem: str) -> str:
    """The board slug of a CSV stem: `_external` removed, ECI shortened."""
    stem = stem.removesuffix("_external")
    return STEM_ALIASES.get(stem, stem)


def benchmark_for(slug: str) -> Benchmark:
    """The known benchmark of a slug, or a generic one for a file the export added since."""
    known = BENCHMARKS.get(slug) or _ARCHIVED.get(slug)
    if known:
        return known
    return Benchmark(slug, slug.replace("_", " ").title(), "score as published")


def board_for(slug: str) -> Board:
    """The Board of a benchmark slug."""
    bench = benchmark_for(slug)
    has_ci = slug in ("webdev_arena", "metr_time_horizons", "eci")
    return Board(f"{NAME}/{slug}", f"Epoch AI: {bench.title}", bench.metric, has_ci=has_ci, url=SITE_URL,
                 archived=slug in _ARCHIVED)


def score_column(header: Sequence[str], bench: Benchmark, *, url: str) -> str:
    """The column holding the board's score: the known name, else the first scoring column."""
    if bench.score_column and bench.score_column in header:
        return bench.score_column
    try:
        end = header.index("Release date")
    except ValueError:
        end = len(header)
    for column in header[1:end]:
        if column not in DESCRIPTORS:
            return column
    raise SourceError(NAME, url, f"no score column found between {MODEL_COLUMN!r} and 'Release date' "
                                 f"(columns {list(header[:6])}...)")


def to_open_weights(accessibility: str) -> bool | None:
    """`Model accessibility` -> open weights (True), not (False) or unknown (None)."""
    text = accessibility.strip().lower()
    if not text:
        return None
    return text.startswith("open weights")


def _split(cell: str) -> list[str]:
    out: list[str] = []
    for part in cell.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def _float(cell: str, *, url: str, line: int, column: str) -> float | None:
    return read_optional_number(cell, f"line {line}: {column}", source=NAME, url=url)


def _score(cell: str, *, url: str, line: int, column: str) -> float | None:
    return read_optional_score(cell, f"line {line}: {column}", source=NAME, url=url)


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    score: float
    organization: str | None
    countries: tuple[str, ...] | None
    open_weights: bool | None
    ci: tuple[float | None, float | None]
    votes: int | None


def _entry(identity: Identity, row: _Row, rank: int) -> Entry:
    entry = identity.entry(
        row.name, row.score, rank, organization=row.organization, countries=row.countries,
        open_weights=row.open_weights, ci_lower=row.ci[0], ci_upper=row.ci[1], votes=row.votes,
    )
    # A model co-developed by several organizations of one country ("Google DeepMind,Google") is
    # one model, credited to that country; organizations in several countries make it mixed, which
    # `Identity.entry` does from the countries.
    return entry


def _snapshot(board: Board, best: dict[str, _Row], identity: Identity, *, url: str, as_of: datetime,
              fetched_at: datetime, origin: str, method: str) -> Snapshot:
    if not best:
        raise SourceError(NAME, url, f"{board.id}: empty table, no row with a model version and a score")
    scored = [(row, row.score) for row in best.values()]
    entries = [_entry(identity, row, rank) for row, _, rank in ranked(board, scored)]
    return make_snapshot(board, as_of, fetched_at, entries, origin=origin, method=method)


def _keep_best(best: dict[str, _Row], row: _Row) -> None:
    held = best.get(row.name)
    # A score `read_score` could not read is NaN: any real score of the same model is better.
    if held is None or row.score > held.score or held.score != held.score:
        best[row.name] = row


def parse_benchmark_csv(
    content: bytes,
    *,
    slug: str,
    identity: Identity,
    url: str,
    as_of: datetime,
    fetched_at: datetime,
    origin: str = "epoch-benchmark-csv",
    bench: Benchmark | None = None,
) -> Snapshot:
    """Parse one benchmark CSV of the export (or an ECI snapshot) into its board's snapshot.

    `bench` overrides the known benchmark of `slug` (e.g. with the score column the zip's metadata
    names); the new ECI file (`eci_scores.csv`) is keyed by `Model` instead of `Model version`.
    """
    # A known board keeps its title and metric (its history reads the same); a file the export added
    # since is titled as the metadata names it.
    board = board_for(slug) if bench is None or slug in BENCHMARKS or slug in _ARCHIVED else Board(
        f"{NAME}/{slug}", f"Epoch AI: {bench.title}", bench.metric, url=SITE_URL)
    bench = bench or benchmark_for(slug)
    table = read_csv(content, source=NAME, url=url)
    header = table.header
    model_column = ECI_MODEL_COLUMN if MODEL_COLUMN not in header and ECI_MODEL_COLUMN in header \
        and slug == "eci" else MODEL_COLUMN
    require_columns(header, [model_column], f"{slug}.csv", source=NAME, url=url)
    column = score_column(header, bench, url=url)
    idx = {name: i for i, name in enumerate(header)}
    model_i, score_i = idx[model_column], idx[column]
    org_i = idx.get("Organization")
    country_i = next((idx[c] for c in COUNTRY_COLUMNS if c in idx), None)
    access_i, votes_i = idx.get("Model accessibility"), idx.get(VOTES_COLUMN)
    ci_i = next(((idx[lo], idx[hi]) for lo, hi in CI_COLUMNS if lo in idx and hi in idx), None)
    best: dict[str, _Row] = {}
    for n, row in table.rows:
        name = row[model_i].strip()
        score = _score(row[score_i], url=url, line=n, column=column)
        if not name or score is None:
            continue
        org = row[org_i].strip() if org_i is not None else ""
        country_names = _split(row[country_i]) if country_i is not None else []
        codes: list[str] = []
        for country in country_names:
            code = identity.country_code(country)
            if code is None:
                logger.debug("%s: unknown country %r in %s", NAME, country, url)
            elif code not in codes:
                codes.append(code)
        ci: tuple[float | None, float | None] = (None, None)
        if ci_i is not None:
            ci = (_float(row[ci_i[0]], url=url, line=n, column="CI low"),
                  _float(row[ci_i[1]], url=url, line=n, column="CI high"))
        votes_f = _float(row[votes_i], url=url, line=n, column=VOTES_COLUMN) if votes_i is not None else None
        _keep_best(best, _Row(
            name=name, score=score, organization=org or None,
            countries=tuple(codes) if codes else None,
            open_weights=to_open_weights(row[access_i]) if access_i is not None else None,
            ci=ci, votes=int(votes_f) if votes_f is not None else None,
        ))
    return _snapshot(board, best, identity, url=url, as_of=as_of, fetched_at=fetched_at,
                     origin=origin, method="")


def parse_hub_runs(
    content: bytes,
    *,
    identity: Identity,
    url: str,
    as_of: datetime,
    fetched_at: datetime,
) -> list[Snapshot]:
    """Parse the 2025 hub format `benchmarks_runs.csv` (id,task,model,Best score ...) per task."""
    table = read_csv(content, source=NAME, url=url)
    header = table.header
    required = ("task", "model", "Best score (across scorers)")
    require_columns(header, required, "benchmarks_runs.csv", source=NAME, url=url)
    task_i, model_i, score_i = (header.index(c) for c in required)
    per_task: dict[str, dict[str, _Row]] = {}
    for n, row in table.rows:
        task, name = row[task_i].strip(), row[model_i].strip()
        score = _score(row[score_i], url=url, line=n, column=required[2])
        if not task or not name or score is None:
            continue
        # No organization column in this format (model_versions.csv has only a Hugging Face account):
        # the identity tables infer it from the model name.
        _keep_best(per_task.setdefault(task, {}), _Row(name, score, None, None, None, (None, None), None))
    if not per_task:
        raise SourceError(NAME, url, "empty table: no scored run")
    snapshots = []
    for task, best in per_task.items():
        slug = HUB_TASKS.get(task) or _SLUG_JUNK.sub("_", task.lower()).strip("_")
        snapshots.append(_snapshot(board_for(slug), best, identity, url=url, as_of=as_of,
                                   fetched_at=fetched_at, origin="epoch-hub-runs",
                                   method="best-across-scorers"))
    return snapshots


def _is_benchmark_member(name: str) -> bool:
    path = PurePosixPath(name)
    return (path.suffix == ".csv" and "additional_eci_data" not in path.parts
            and not path.name.startswith(("._", ".")))


@dataclass(frozen=True, slots=True)
class FileMetadata:
    """One file's line of `benchmark_metadata.csv`: its benchmark name, score column and scale."""

    benchmark: str
    score_column: str
    scale: float | None
    superseded: bool = False


def read_metadata(content: bytes, *, url: str) -> dict[str, FileMetadata]:
    """`benchmark_metadata.csv` -> {source file name: its metadata}; lines naming no file or column
    (benchmarks outside the ECI) are left out. Where two lines name one file, a current benchmark
    wins over one `superseded_by` another."""
    table = read_csv(content, source=NAME, url=url, expected="the benchmark metadata CSV")
    require_columns(table.header, ("benchmark", "source_file", "score_column"), METADATA_FILE,
                    source=NAME, url=url)
    idx = {name: i for i, name in enumerate(table.header)}
    scale_i, superseded_i = idx.get("scale"), idx.get("superseded_by")
    found: dict[str, FileMetadata] = {}
    for n, row in table.rows:
        cell = dict(zip(table.header, row, strict=False))
        file, column = cell.get("source_file", "").strip(), cell.get("score_column", "").strip()
        if not file or not column:
            continue
        scale = _float(row[scale_i], url=url, line=n, column="scale") if scale_i is not None else None
        superseded = bool(row[superseded_i].strip()) if superseded_i is not None else False
        meta = FileMetadata(cell.get("benchmark", "").strip() or file, column, scale, superseded)
        held = found.get(file)
        if held is None or (held.superseded and not superseded):
            found[file] = meta
    return found


def benchmark_from_metadata(slug: str, meta: FileMetadata) -> Benchmark:
    """The benchmark of a file as the zip's metadata describes it (the known title kept)."""
    known = BENCHMARKS.get(slug)
    if known and known.score_column == meta.score_column:
        return known
    metric = _COLUMN_METRICS.get(meta.score_column)
    if metric is None:
        unit = _SCALE_UNITS.get(meta.scale) if meta.scale is not None else None
        metric = f"{meta.score_column.lower()} ({unit or 'as published'})"
    return Benchmark(slug, known.title if known else meta.benchmark, metric, meta.score_column)


def parse_benchmark_zip(
    content: bytes, *, identity: Identity, url: str, as_of: datetime, fetched_at: datetime,
) -> list[Snapshot]:
    """Parse `benchmark_data.zip`: one snapshot per benchmark CSV inside, the ECI included.

    A known benchmark's file that cannot be read is an error; a file the export added since is
    skipped with a warning. A zip without the ECI board is a ShapeError.
    """
    refuse_html(content, source=NAME, url=url, expected="the benchmark zip")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise SourceError(NAME, url, f"not a zip archive (truncated download?): {exc}") from exc
    snapshots: list[Snapshot] = []
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir() and _is_benchmark_member(i.filename)]
        metadata: dict[str, FileMetadata] = {}
        for info in members:
            if PurePosixPath(info.filename).name == METADATA_FILE:
                metadata = read_metadata(_read_member(archive, info, url), url=f"{url}#{info.filename}")
        # Should a zip hold both ECI files, the moved one is the current one.
        moved_eci = any(PurePosixPath(i.filename).as_posix().endswith(ECI_FILE) for i in members)
        for info in members:
            path = PurePosixPath(info.filename)
            bench: Benchmark | None = None
            if path.name in _NOT_BOARDS or (moved_eci and path.name == "epoch_capabilities_index.csv"):
                continue
            if path.parent.name == "epoch_capabilities_index":
                if path.name != PurePosixPath(ECI_FILE).name:
                    continue  # the ECI's fit data (difficulties, bootstraps), no board
                slug, bench = "eci", ECI_BENCHMARK
            else:
                slug = board_slug(path.stem)
                meta = metadata.get(path.name)
                bench = benchmark_from_metadata(slug, meta) if meta else None
            member_url = f"{url}#{info.filename}"
            data = _read_member(archive, info, url)
            try:
                snapshots.append(parse_benchmark_csv(data, slug=slug, identity=identity, url=member_url,
                                                     as_of=as_of, fetched_at=fetched_at,
                                                     origin="epoch-benchmark-zip", bench=bench))
            except SourceError as exc:
                if slug in BENCHMARKS:
                    raise
                # A file the export added since this table was written must not block the others.
                logger.warning("%s: skipping new file %s: %s", NAME, info.filename, exc.reason)
    found = {s.board.id for s in snapshots}
    if f"{NAME}/eci" not in found:
        raise ShapeError(NAME, url, f"no ECI in the zip (neither {ECI_FILE} nor "
                                    "epoch_capabilities_index.csv): renamed or moved? epoch/eci is not "
                                    "updated until the parser knows it")
    if not any(s.board.id.removeprefix(f"{NAME}/") in BENCHMARKS for s in snapshots):
        raise ShapeError(NAME, url, "no known benchmark CSV in the zip")
    return snapshots


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, url: str) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(NAME, f"{url}#{info.filename}", f"cannot read zip member: {exc}") from exc


class EpochSource:
    """Epoch AI Benchmarking Hub: ECI and one board per benchmark file."""

    name = NAME
    interval_seconds = 6 * 3600  # the zip is rebuilt daily

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        """`url`: the `benchmark_data.zip` file itself; default ZIP_URL (epoch.ai)."""
        self.identity = identity
        self.url = url or ZIP_URL
        self._seen: set[str] = set()

    @property
    def probe_url(self) -> str:
        """The zip (for `leaderwatch doctor`)."""
        return self.url

    def boards(self) -> list[Board]:
        """Every benchmark of the 2026-04-19 export, plus the archived public FrontierMath sample."""
        return [board_for(slug) for slug in (*BENCHMARKS, *_ARCHIVED)]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Download benchmark_data.zip; [] when it has not changed; ShapeError when a board is gone."""
        body = await http.get(NAME, self.url)
        if body is None:
            return []
        now = utcnow()
        snapshots = parse_benchmark_zip(body, identity=self.identity, url=self.url, as_of=now, fetched_at=now)
        found = {s.board.id for s in snapshots}
        # A board of the last fetch gone from this one is told once; the next fetch expects only
        # what this one gave (a benchmark Epoch dropped must not hold the others back for ever).
        expected = [board_for(slug) for slug in CORE_BOARDS] + [
            b for b in self.boards() if b.id in self._seen]
        self._seen = found
        check_boards(found, expected, source=NAME, url=self.url)
        return snapshots

    def recordings(self, root: Path) -> list[Recording]:
        """The export's CSVs, the ECI snapshots and the 2025 hub-format runs found under root."""
        base = root / NAME
        found: list[Recording] = []
        for folder in sorted(base.glob("benchmark_data_*")):
            m = _DATED.search(folder.name)
            if not m or not folder.is_dir():
                continue
            as_of = midnight_utc(m["date"])
            for path in sorted(folder.glob("*.csv")):
                board = f"{NAME}/{board_slug(path.stem)}"
                found.append(Recording(FAMILY, 10, (board,), as_of, path))
        for path in sorted(base.glob("eci_snapshots/epoch_capabilities_index_*.csv")):
            m = _DATED.search(path.stem)
            if m:
                found.append(Recording(FAMILY, 10, (f"{NAME}/eci",), midnight_utc(m["date"]), path))
        for folder in sorted(base.glob("benchmarking_hub_*")):
            day = HUB_RUNS_AS_OF.get(folder.name)
            runs = folder / "benchmarks_runs.csv"
            if day is None or not runs.is_file():
                logger.info("%s: no snapshot date known for %s; skipped", NAME, folder)
                continue
            boards = tuple(dict.fromkeys(f"{NAME}/{s}" for s in HUB_TASKS.values()))
            found.append(Recording(HUB_RUNS_FAMILY, 10, boards, midnight_utc(day), runs))
        return found

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recorded CSV."""
        path = recording.path
        content = read_recording(path, source=NAME)
        if recording.family == HUB_RUNS_FAMILY:
            return parse_hub_runs(content, identity=self.identity, url=str(path), as_of=recording.as_of,
                                  fetched_at=recording.as_of)
        slug = board_slug(_DATED.sub("", path.stem))
        return [parse_benchmark_csv(content, slug=slug, identity=self.identity, url=str(path),
                                    as_of=recording.as_of, fetched_at=recording.as_of)]
