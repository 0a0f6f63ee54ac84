"""The OpenCompass OpenVLM leaderboard: vision-language models on eight image benchmarks and their average.

The Hugging Face space `opencompass/open_vlm_leaderboard` renders one JSON file, `OpenVLM.json`:
`{"time": "20250917132916", "results": {MODEL: {"META": {...}, BENCHMARK: {"Overall": ..., ...}, ...}}}`.
`time` is when the file was made (YYYYMMDDhhmmss; YYMMDDhhmmss before 2025; a bare YYYYMMDD is read too);
each model has `META` (`Method` = [display name, link], `Org`, `Parameters`, `Language Model`,
`Vision Model`, `Time`, `OpenSource` Yes/No, `Verified`) and one object per benchmark it was run on.

The boards are the space's main table (its `gen_table.generate_table` over `DEFAULT_BENCH` in
`meta_data.py`; the same code is on the `leaderboard` branch of github.com/open-compass/VLMEvalKit):
- MMBench v1.1 is no key of the file: the mean of `MMBench_TEST_EN_V11` and `MMBench_TEST_CN_V11`
  `Overall`, rounded to one decimal;
- MMStar, MMMU_VAL, MathVista, AI2D, HallusionBench and MMVet are their `Overall` (percent);
- OCRBench is its `Final Score`, out of 1000; it counts a tenth of that in the average;
- the average ("Avg Score") is the mean of those eight, rounded to one decimal as numpy rounds; a model
  missing any of them has none (the space lists it unranked at the bottom), so it is left off
  `opencompass/average` while it stays on the boards it has.
The space ranks by sorting (1..N); like every board without published ranks, these use competition ranks.

The file has not changed since 2025-09-17 (`time` 20250917132916). It was served from
`opencompass.openxlab.space/assets/OpenVLM.json` (earlier `/utils/OpenVLM.json`) until that host's TLS
certificate expired on 2026-04-16; `cdn.opencompass.org.cn` serves the same file. A fetch of an unchanged
file stores nothing new: the snapshots keep the file's own date and the same content.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import Board, Recording, Snapshot, SourceError, make_snapshot, ranked
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import check_record, dated_files, load_json, read_recording, read_score

logger = logging.getLogger(__name__)

SOURCE = "opencompass"
LIVE_URL = "https://cdn.opencompass.org.cn/assets/OpenVLM.json"
OLD_URL = "http://opencompass.openxlab.space/assets/OpenVLM.json"
"""The space's own URL for the file, a mirror of LIVE_URL (`[sources.opencompass] url = ...`); its
host's TLS certificate expired on 2026-04-16."""
LEADERBOARD_URL = "https://huggingface.co/spaces/opencompass/open_vlm_leaderboard"
ORIGIN = "opencompass-openvlm-json"
"""Live and recorded files are the same file (`OpenVLM.json`), so they share one origin name."""
FAMILY = "opencompass/openvlm-json"
PRIORITY = 10  # a copy of the official published file

PERCENT = (0.0, 100.0)
_FILE_DATE = re.compile(r"^OpenVLM_(?P<date>\d{4}-\d{2}-\d{2})\.json$")
_STAMP = re.compile(r"\d{8}(?:\d{6})?|\d{12}")


def _board(name: str, title: str, metric: str = "accuracy (%)") -> Board:
    """A board of the leaderboard; the space shows them all on one page, one tab each."""
    return Board(f"{SOURCE}/{name}", title, metric, url=LEADERBOARD_URL)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One benchmark of the main table: its board, the file's objects it reads and how it is scored.

    `keys` are the benchmark objects of a model's record (two for MMBench v1.1: the English and the
    Chinese test); `score` is the field read in each; `top` the best possible score (100 or 1000).
    """

    board: Board
    keys: tuple[str, ...]
    score: str = "Overall"
    top: float = 100.0


MMBENCH = Benchmark(_board("mmbench", "MMBench v1.1 (OpenVLM: mean of the English and Chinese test sets, "
                                      "circular evaluation)"),
                    ("MMBench_TEST_EN_V11", "MMBench_TEST_CN_V11"))
MMSTAR = Benchmark(_board("mmstar", "MMStar (OpenVLM: 1,500 questions that need the image)"), ("MMStar",))
MMMU = Benchmark(_board("mmmu", "MMMU validation set (OpenVLM: 900 college-level questions on images)"),
                 ("MMMU_VAL",))
MATHVISTA = Benchmark(_board("mathvista", "MathVista testmini (OpenVLM: 1,000 math problems on images)"),
                      ("MathVista",))
OCRBENCH = Benchmark(_board("ocrbench", "OCRBench (OpenVLM: text recognition and OCR questions, final score "
                                        "out of 1000)", "final score (of 1000)"),
                     ("OCRBench",), score="Final Score", top=1000.0)
AI2D = Benchmark(_board("ai2d", "AI2D test set (OpenVLM: questions on science diagrams)"), ("AI2D",))
HALLUSIONBENCH = Benchmark(_board("hallusionbench", "HallusionBench (OpenVLM: visual hallucination and "
                                                    "illusion, mean of aAcc, fAcc and qAcc)"),
                           ("HallusionBench",))
MMVET = Benchmark(_board("mmvet", "MM-Vet (OpenVLM: open-ended answers graded by GPT-4 Turbo)", "score (%)"),
                  ("MMVet",))
BENCHMARKS = (MMBENCH, MMSTAR, MMMU, MATHVISTA, OCRBENCH, AI2D, HALLUSIONBENCH, MMVET)
"""The space's DEFAULT_BENCH, in its order: the boards, and what the average is taken over."""

AVERAGE = _board("average", "OpenVLM average score (mean of MMBench v1.1, MMStar, MMMU, MathVista, "
                            "OCRBench/10, AI2D, HallusionBench and MM-Vet)", "avg score (0-100)")
BOARDS = (*(b.board for b in BENCHMARKS), AVERAGE)


@dataclass(frozen=True, slots=True)
class Model:
    """One model of the file: its display name, maker and licence, and its score on each benchmark run."""

    name: str
    organization: str | None
    open_weights: bool | None
    scores: Mapping[Benchmark, float]


def snapshot_date(stamp: object, *, url: str) -> datetime:
    """Midnight UTC of the day in the file's `time` stamp (`20250917132916`, `240917123000`, `20250917`)."""
    text = str(stamp).strip() if isinstance(stamp, str | int) and not isinstance(stamp, bool) else ""
    if _STAMP.fullmatch(text):
        day = text[:8] if len(text) != 12 else "20" + text[:6]
        try:
            return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise SourceError(SOURCE, url, f"`time` {stamp!r} is no date stamp (expected YYYYMMDD or YYYYMMDDhhmmss)")


def numpy_mean(values: Sequence[float]) -> float:
    """The mean as `numpy.mean` computes it for up to 128 values (pairwise, eight partial sums), so that
    an average on a rounding boundary (71.55) rounds the way the space's does."""
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total / n
    r = list(values[:8])
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += values[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for v in values[i:]:
        total += v
    return total / n


def average_score(model: Model) -> float | None:
    """The space's "Avg Score": the mean of the eight main scores (OCRBench / 10) rounded to one decimal
    half to even, as `numpy.round` does; None when the model lacks any of them."""
    if any(b not in model.scores for b in BENCHMARKS):
        return None
    normalized = [model.scores[b] * 100.0 / b.top for b in BENCHMARKS]
    if any(math.isnan(n) for n in normalized):  # a score read_score could not read: the row is dropped
        return math.nan
    return round(numpy_mean(normalized) * 10) / 10


def _open_weights(value: object) -> bool | None:
    text = value.strip().casefold() if isinstance(value, str) else ""
    return True if text == "yes" else False if text == "no" else None


def _display_name(key: str, meta: dict[Any, Any]) -> str:
    """The name the space shows: `Method`'s first item, else the model's key in the file."""
    method = meta.get("Method")
    if isinstance(method, list) and method and isinstance(method[0], str) and method[0].strip():
        return method[0].strip()
    return key.strip()


def _score(record: dict[Any, Any], bench: Benchmark, model: str, *, url: str) -> float | None:
    """A model's score on one benchmark; None when it was not run on it."""
    if not all(key in record for key in bench.keys):
        return None
    values: list[float] = []
    for key in bench.keys:
        where = f"model {model!r}: {key}"
        scores = check_record(record[key], (), where, source=SOURCE, url=url)
        if bench.score not in scores:
            has = ", ".join(str(k) for k in list(scores)[:8]) or "nothing"
            raise SourceError(SOURCE, url, f"{where} has no `{bench.score}` score (it has: {has})")
        values.append(read_score(scores[bench.score], f"{where} {bench.score}", source=SOURCE, url=url,
                                 within=(0.0, bench.top)))
    if len(values) == 1:
        return values[0]
    # As the space computes MMBench v1.1: the two tests' mean, rounded to one decimal before averaging.
    return float(f"{sum(values) / len(values):.1f}")


def read_models(data: object, *, url: str) -> tuple[datetime, list[Model]]:
    """The file's date and its models, each with the main benchmarks it was run on; SourceError on a
    file whose shape is not the leaderboard's."""
    if not isinstance(data, dict):
        raise SourceError(SOURCE, url, f"expected a JSON object with `time` and `results`, got a "
                                       f"{type(data).__name__}")
    results = data.get("results")
    if results is None:
        keys = ", ".join(map(str, data)) or "none"
        raise SourceError(SOURCE, url, f"no `results` object in the file (its keys: {keys})")
    if not isinstance(results, dict):
        raise SourceError(SOURCE, url, f"`results` is a {type(results).__name__}, not an object of models")
    if not results:
        raise SourceError(SOURCE, url, "empty leaderboard: `results` holds no model")
    as_of = snapshot_date(data.get("time"), url=url)
    models: list[Model] = []
    for key, item in results.items():
        record = check_record(item, ("META",), f"model {key!r}", source=SOURCE, url=url)
        meta = check_record(record["META"], (), f"model {key!r}: META", source=SOURCE, url=url)
        org = meta.get("Org")
        organization = org.strip() if isinstance(org, str) and org.strip() else None
        scores = {b: s for b in BENCHMARKS if (s := _score(record, b, str(key), url=url)) is not None}
        open_weights = _open_weights(meta.get("OpenSource"))
        models.append(Model(_display_name(str(key), meta), organization, open_weights, scores))
    # A benchmark no model has was renamed or dropped: refuse the file rather than lose the board.
    absent = [b for b in BENCHMARKS if not any(b in m.scores for m in models)]
    if absent:
        found = sorted({str(k) for item in results.values() for k in item} - {"META"})
        shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
        missing = ", ".join(" + ".join(b.keys) for b in absent)
        raise SourceError(SOURCE, url, f"no model has results for {missing} (renamed or removed?); "
                                       f"benchmarks in the file: {shown or 'none'}")
    return as_of, models


def parse_openvlm(
    content: bytes,
    *,
    identity: Identity,
    url: str,
    fetched_at: datetime,
    origin: str = ORIGIN,
) -> list[Snapshot]:
    """Parse `OpenVLM.json` into one snapshot per benchmark board and one of the average, as of its `time`."""
    data = load_json(content, source=SOURCE, url=url, expected="the OpenVLM leaderboard JSON")
    as_of, models = read_models(data, url=url)
    # `Org` as the identity tables spell the organization ("OpenGVLab" -> "Shanghai AI Lab").
    makers = [(m, m.organization and identity.canonical_organization(m.organization)) for m in models]
    snapshots: list[Snapshot] = []
    tables = [(b.board, [(p, p[0].scores[b]) for p in makers if b in p[0].scores]) for b in BENCHMARKS]
    tables.append((AVERAGE, [(p, avg) for p in makers if (avg := average_score(p[0])) is not None]))
    for board, scored in tables:
        if not scored:
            raise SourceError(SOURCE, url, f"{board.id}: no model has a score (empty board)")
        entries = [identity.entry(m.name, score, rank, organization=org, open_weights=m.open_weights)
                   for (m, org), score, rank in ranked(board, scored)]
        snapshots.append(make_snapshot(board, as_of, fetched_at, entries, origin=origin))
    return snapshots


class OpenVLMSource:
    """The OpenCompass OpenVLM leaderboard: one board per main benchmark and the average."""

    name = SOURCE
    interval_seconds = 24 * 3600  # the file has been frozen since 2025-09-17; ~6.5 MB, fetched conditionally

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        """`url`: the `OpenVLM.json` file itself; default LIVE_URL (cdn.opencompass.org.cn). OLD_URL,
        the space's own address, serves the same file where its certificate is trusted."""
        self.identity = identity
        self.url = url or LIVE_URL

    @property
    def probe_url(self) -> str:
        """The file (for `leaderwatch doctor`)."""
        return self.url

    def boards(self) -> Sequence[Board]:
        """MMBench v1.1, MMStar, MMMU, MathVista, OCRBench, AI2D, HallusionBench, MM-Vet and the average."""
        return list(BOARDS)

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Fetch `OpenVLM.json`; [] on 304. Its snapshots are as of the file's `time`, not of the fetch."""
        body = await http.get(self.name, self.url)
        if body is None:
            return []
        return parse_openvlm(body, identity=self.identity, url=self.url, fetched_at=utcnow())

    def recordings(self, root: Path) -> list[Recording]:
        """Recorded files `opencompass/OpenVLM_<YYYY-MM-DD>.json` (the date they were saved), if any."""
        ids = tuple(b.id for b in BOARDS)
        found = dated_files(root / SOURCE, "OpenVLM_*.json", _FILE_DATE, source=SOURCE)
        return [Recording(FAMILY, PRIORITY, ids, as_of, path) for path, as_of in found]

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recorded file; its snapshots are as of the file's `time`."""
        if recording.family != FAMILY:
            raise SourceError(self.name, str(recording.path), f"unknown family {recording.family}")
        return parse_openvlm(read_recording(recording.path, source=SOURCE), identity=self.identity,
                             url=str(recording.path), fetched_at=recording.as_of)
