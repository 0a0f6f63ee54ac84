"""Aider's LLM leaderboards: the polyglot benchmark and the older Python code-editing benchmark.

Both are YAML lists of benchmark runs kept in the Aider repository (`aider/website/_data/`); the site
renders every run as its own row sorted by `pass_rate_2`, so one model can hold several rows (edit
formats, reasoning settings). The files carry no publication date: a live fetch is as of the fetch
time, a recording as of its commit date (the date in its file name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import Board, Recording, Snapshot, SourceError, make_snapshot, ranked
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import check_record, dated_files, read_recording, read_score, refuse_html

logger = logging.getLogger(__name__)

SOURCE = "aider"
RAW_BASE = "https://raw.githubusercontent.com/Aider-AI/aider/main/aider/website/_data"
POLYGLOT_URL = f"{RAW_BASE}/polyglot_leaderboard.yml"
EDIT_URL = f"{RAW_BASE}/edit_leaderboard.yml"
ORIGIN = "aider-website-data-yml"
"""Live and recorded files are the same file (`_data/*.yml`), so they share one origin name."""

METRIC = "percent correct"
POLYGLOT = Board("aider/polyglot", "Aider polyglot coding leaderboard (225 Exercism exercises, 6 languages)",
                 METRIC, url="https://aider.chat/docs/leaderboards/")
# Replaced by the polyglot board in Dec 2024; its data file has not changed since 2024-12-22.
EDIT = Board("aider/edit", "Aider code editing leaderboard (133 Exercism Python exercises)", METRIC,
             url="https://aider.chat/docs/leaderboards/edit.html", archived=True)

FAMILY_POLYGLOT = "aider/polyglot-leaderboard-yml"
FAMILY_EDIT = "aider/edit-leaderboard-yml"
PRIORITY = 10  # a copy of the official published table

# (board, live URL, recordings folder, file prefix, family)
_SERIES: tuple[tuple[Board, str, str, str, str], ...] = (
    (POLYGLOT, POLYGLOT_URL, "aider/polyglot_leaderboard", "polyglot_leaderboard_", FAMILY_POLYGLOT),
    (EDIT, EDIT_URL, "aider/edit_leaderboard", "edit_leaderboard_", FAMILY_EDIT),
)
_FILE_DATE = re.compile(r"_(?P<date>\d{4}-\d{2}-\d{2})\.ya?ml$")
REQUIRED = ("model", "pass_rate_2")


def _run_label(run: object, index: int) -> str:
    dirname = run.get("dirname") if isinstance(run, dict) else None
    return f"run {index}" + (f" ({dirname})" if dirname else "")


def load_runs(content: bytes, *, url: str) -> list[dict[Any, Any]]:
    """Decode an Aider leaderboard YAML file into its list of runs; SourceError on a bad file."""
    import yaml  # ~27 ms, paid by the commands that read Aider's files, not by `--help`

    refuse_html(content, source=SOURCE, url=url, expected="a YAML list of runs")
    try:
        # A safe loader: C if built, else pure Python.
        data = yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SourceError(SOURCE, url, f"YAML does not parse{line}: {problem}") from exc
    if data is None or data == []:
        raise SourceError(SOURCE, url, "empty leaderboard: the YAML file holds no runs")
    if not isinstance(data, list):
        raise SourceError(SOURCE, url, f"expected a YAML list of runs, got a {type(data).__name__}")
    for i, run in enumerate(data, start=1):
        check_record(run, REQUIRED, _run_label(run, i), source=SOURCE, url=url)
    # A file cut between two keys still parses; its last run then lacks keys every other run has. Real
    # complete versions end with a run that has no `total_cost` (edit 2024-11-23, polyglot 2025-01-30), the
    # last key of a run: its absence alone is no sign of a cut (and leaderwatch does not read it).
    if len(data) > 1:
        common = set.intersection(*(set(run) for run in data[:-1]))
        lost = sorted(str(k) for k in common - set(data[-1]) - {"total_cost"})
        if lost:
            raise SourceError(
                SOURCE, url,
                f"the last run lacks fields every other run has ({', '.join(lost)}): "
                "the file looks truncated",
            )
    return data


def parse_leaderboard(
    content: bytes,
    *,
    board: Board,
    identity: Identity,
    url: str,
    as_of: datetime,
    fetched_at: datetime,
    origin: str = ORIGIN,
) -> list[Snapshot]:
    """Parse one Aider leaderboard YAML file into one snapshot of `board`, every run a row."""
    runs = load_runs(content, url=url)
    scored = [(run, read_score(run["pass_rate_2"], f"{_run_label(run, i)}: pass_rate_2", source=SOURCE,
                               url=url, within=(0.0, 100.0)))
              for i, run in enumerate(runs, 1)]
    # `model` is display text; "DeepSeek R1 + claude-3-5-sonnet" architect runs are split into
    # their components by Identity.entry, which marks them mixed across organizations.
    entries = [identity.entry(str(run["model"]).strip(), score, rank)
               for run, score, rank in ranked(board, scored)]
    return [make_snapshot(board, as_of, fetched_at, entries, origin=origin)]


class AiderSource:
    """Aider's polyglot and code-editing leaderboards."""

    name = SOURCE
    interval_seconds = 6 * 3600  # new runs land a few times a month at most

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        """`url`: the folder both YAML files are read from (`<url>/polyglot_leaderboard.yml`,
        `<url>/edit_leaderboard.yml`); default the Aider repository's `_data` folder (RAW_BASE)."""
        self.identity = identity
        self.url = (url or RAW_BASE).rstrip("/")

    @property
    def probe_url(self) -> str:
        """The file polled first (for `leaderwatch doctor`)."""
        return self._url_of(POLYGLOT_URL)

    def _url_of(self, default: str) -> str:
        return f"{self.url}/{default.rsplit('/', 1)[1]}"

    def boards(self) -> Sequence[Board]:
        """The polyglot board and the archived code-editing board."""
        return [POLYGLOT, EDIT]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Fetch both YAML files from the Aider repository; a 304 skips that board."""
        snapshots: list[Snapshot] = []
        for board, default_url, _, _, _ in _SERIES:
            url = self._url_of(default_url)
            body = await http.get(self.name, url)
            if body is None:
                continue
            now = utcnow()
            snapshots += parse_leaderboard(
                body, board=board, identity=self.identity, url=url, as_of=now, fetched_at=now,
            )
        return snapshots

    def recordings(self, root: Path) -> list[Recording]:
        """The recorded edit and polyglot YAML files (`aider/other/*` holds boards not listed)."""
        found: list[Recording] = []
        for board, _, folder, prefix, family in _SERIES:
            for path, as_of in dated_files(root / folder, f"{prefix}*.y*ml", _FILE_DATE, source=SOURCE):
                found.append(Recording(family, PRIORITY, (board.id,), as_of, path))
        return sorted(found, key=lambda r: (r.as_of, r.family))

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recorded YAML file into one snapshot as of its commit date."""
        board = next((b for b, _, _, _, fam in _SERIES if fam == recording.family), None)
        if board is None:
            raise SourceError(self.name, str(recording.path), f"unknown family {recording.family}")
        return parse_leaderboard(
            read_recording(recording.path, source=SOURCE), board=board, identity=self.identity,
            url=str(recording.path), as_of=recording.as_of, fetched_at=recording.as_of,
        )
