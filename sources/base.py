"""The domain of leaderboards (Board, Entry, Snapshot), the Source protocol, SourceError and ShapeError.

This module imports no I/O library at run time so that `alerts/` (pure) and `storage/` can use the
domain objects without pulling httpx in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from leaderwatch.sources.http import Fetcher

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

MIXED = "mixed"
"""Organization written for an entry built from several organizations or countries."""


class SourceError(Exception):
    """A source could not be fetched or parsed; nothing from it may be stored."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source = source
        self.url = url
        self.reason = reason
        super().__init__(f"{source}: {reason} ({url})")


class ShapeError(SourceError):
    """The origin answered, but not in a shape the parser knows: a column renamed or gone, a value of
    the wrong type, an HTML page where data was expected, an empty table, a board gone from the fetch.

    Unlike a network or server failure (a plain SourceError), retrying soon rarely helps: the source
    is shown as `drifted` and the operators are told once (`bot/pipeline/drift.py`).
    """


@dataclass(frozen=True, slots=True)
class Board:
    """One leaderboard: `id` is `source/name`, e.g. `lmarena/text`."""

    id: str
    title: str
    metric: str
    higher_is_better: bool = True
    has_ci: bool = False
    url: str = ""
    archived: bool = False
    negative_scores: bool = field(default=False, compare=False)
    """Whether a score below zero means something here (the LMArena agent boards' IPS); on the other
    boards (percentages, fractions, arena ratings) a negative score is a broken row, dropped by
    `make_snapshot`. A parse-time property, not stored (hence left out of comparisons)."""

    @property
    def source(self) -> str:
        """The source part of the id (`lmarena` for `lmarena/text`)."""
        return self.id.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a leaderboard as published, with the model's identity and origin resolved.

    `countries` holds ISO 3166 alpha-2 codes; an entry built from several organizations' models or
    from organizations in several countries has `mixed` set and is never credited to one country.
    `open_weights` is True, False (proprietary) or None when unknown. `components` lists the models
    a composite entry is built from (Aider's "A + B" architect runs, SWE-bench `Model:` tags).
    """

    name: str
    model_key: str
    score: float
    rank: int
    organization: str | None = None
    countries: tuple[str, ...] = ()
    mixed: bool = False
    open_weights: bool | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    votes: int | None = None
    components: tuple[str, ...] = ()

    @property
    def country(self) -> str | None:
        """The single country to credit this entry to, or None (unknown or mixed)."""
        if self.mixed or len(self.countries) != 1:
            return None
        return self.countries[0]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A board's full table at one time. Build it with `make_snapshot` so the hash is consistent.

    `truncated` says the publication lists only a top N (absent models have not dropped out);
    `origin` names the recording or endpoint it came from (e.g. `lmarena-dataset`, `fboulnois-csv`);
    `method` names the scoring method where a source changed it (e.g. `style-control`).
    """

    board: Board
    as_of: datetime
    fetched_at: datetime
    content_hash: str
    entries: tuple[Entry, ...]
    origin: str = ""
    truncated: bool = False
    method: str = ""


def content_hash(entries: Iterable[Entry]) -> str:
    """A stable SHA-256 over the entries' published content (not over the raw bytes)."""
    digest = hashlib.sha256()
    for e in entries:
        row = [e.name, e.model_key, e.score, e.rank, e.organization, list(e.countries), e.mixed,
               e.open_weights, e.ci_lower, e.ci_upper, e.votes, list(e.components)]
        digest.update(json.dumps(row, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def make_snapshot(
    board: Board,
    as_of: datetime,
    fetched_at: datetime,
    entries: Sequence[Entry],
    *,
    origin: str = "",
    truncated: bool = False,
    method: str = "",
) -> Snapshot:
    """Build a Snapshot with entries ordered by rank then score, and its content hash.

    Rows whose score is unusable (see `score_problem`) are dropped here, for every source, with one
    log line per snapshot counting them; a table with no usable score left is a ShapeError.
    """
    entries = usable_entries(board, as_of, entries)
    sign = -1.0 if board.higher_is_better else 1.0
    ordered = tuple(sorted(entries, key=lambda e: (e.rank, sign * e.score, e.name)))
    return Snapshot(board, as_of, fetched_at, content_hash(ordered), ordered, origin, truncated, method)


def score_problem(board: Board, score: object) -> str | None:
    """Why a row's score cannot be stored ("unreadable", "infinite", "negative"), None when it can.

    NaN (what `parsing.read_score` gives for a cell it cannot read or that is out of range) and
    infinities would break every ranking and comparison after them (SQLite stores NaN as NULL); a
    negative score on a board of percentages, fractions or arena ratings is a broken row.
    """
    if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
        return "unreadable"
    if math.isinf(score):
        return "infinite"
    if score < 0 and not board.negative_scores:
        return "negative"
    return None


def usable_entries(board: Board, as_of: datetime, entries: Sequence[Entry]) -> list[Entry]:
    """The entries whose score can be stored and whose name names a model, without NUL characters
    (`without_nul`); the others are counted in one log line. A name with no letter or digit (`***`, only
    control characters) has an empty model key: it would be one model with every other such name, and
    shows as nothing.

    Raises ShapeError when rows were given but none is usable (a column that changed meaning is
    drift, not an empty table).
    """
    kept: list[Entry] = []
    dropped: dict[str, list[str]] = {}
    for entry in entries:
        cleaned = without_nul(entry)
        problem = "unnamed" if not cleaned.model_key.strip() else score_problem(board, cleaned.score)
        if problem is None:
            kept.append(cleaned)
        else:
            dropped.setdefault(problem, []).append(entry.name)
    if not dropped:
        return kept
    count = sum(len(names) for names in dropped.values())
    reasons = ", ".join(f"{len(names)} {problem}" for problem, names in dropped.items())
    # Names come from the origin: repr() shows control characters, and the line stays short.
    shown = ", ".join(repr(name[:40]) for names in dropped.values() for name in names[:3])
    logger.warning("%s as of %s: dropped %d of %d row(s) that cannot be stored (%s): %s",
                   board.id, as_of.date().isoformat(), count, len(entries), reasons, shown)
    if not kept:
        raise ShapeError(board.source, board.url or board.id,
                         f"{board.id}: no usable row (a name and a score that can be stored): {reasons}")
    return kept


def without_nul(entry: Entry) -> Entry:
    """The entry with no NUL character in its text: PostgreSQL's text cannot hold one, and a row must be
    judged by the rules as it is stored (on SQLite too), or its model would look new at every poll."""
    texts = (entry.name, entry.model_key, entry.organization or "", *entry.components)
    if not any("\x00" in text for text in texts):
        return entry
    def clean(text: str) -> str:
        return text.replace("\x00", "")
    return replace(entry, name=clean(entry.name), model_key=clean(entry.model_key),
                   organization=clean(entry.organization) if entry.organization is not None else None,
                   components=tuple(clean(c) for c in entry.components))


def competition_ranks(scores: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Standard competition ranks (1, 2, 2, 4) for boards that publish no rank.

    A score that is not a finite number ranks after all the others (`make_snapshot` drops its row):
    NaN in a sort would scramble the ranks of the good rows.
    """
    finite = [s for s in scores if isinstance(s, int | float) and math.isfinite(s)]
    ordered = sorted(finite, reverse=higher_is_better)
    first: dict[float, int] = {}
    for i, s in enumerate(ordered, start=1):
        first.setdefault(s, i)
    return [first.get(s, len(ordered) + 1) for s in scores]


def ranked(board: Board, scored: Iterable[tuple[_T, float]]) -> list[tuple[_T, float, int]]:
    """Each (item, score) with its competition rank on `board`, for boards that publish no rank."""
    items = list(scored)
    ranks = competition_ranks([score for _, score in items], board.higher_is_better)
    return [(item, score, rank) for (item, score), rank in zip(items, ranks, strict=True)]


def looks_like_html(content: bytes) -> bool:
    """True for an HTML page (an error page or a login wall) where data was expected."""
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def is_shrunk(snapshot: Snapshot, previous_rows: int | None) -> bool:
    """True when a full table has fewer than half the rows of the board's last stored one (a top-N
    publication, `truncated`, may shrink: its absent models have not dropped out)."""
    return bool(previous_rows) and len(snapshot.entries) * 2 < (previous_rows or 0) and not snapshot.truncated


def check_not_shrunk(snapshot: Snapshot, previous_rows: int | None, url: str) -> None:
    """Refuse (ShapeError) a snapshot with fewer than half the rows of the board's last stored one."""
    if is_shrunk(snapshot, previous_rows):
        raise ShapeError(
            snapshot.board.source, url,
            f"{snapshot.board.id}: only {len(snapshot.entries)} rows where the last stored snapshot "
            f"had {previous_rows}; refusing a partial table",
        )


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded file (or part of one) that holds history of one or more boards.

    `family` names the recording's shape (e.g. `lmarena/fboulnois-lmsys-csv`); `priority` orders
    families by authority for the timeline (lower is more authoritative: official tables first).
    `as_of` is the date the data represents. `load()` parses it into snapshots.
    """

    family: str
    priority: int
    board_ids: tuple[str, ...]
    as_of: datetime
    path: Path
    part: str = field(default="")


class Source(Protocol):
    """A leaderboard service: its boards, a live fetch, and a reader of its recorded history."""

    name: str
    interval_seconds: int

    def boards(self) -> Sequence[Board]:
        """Every board this source publishes."""
        ...

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Fetch the live boards now ([] when the server says nothing changed); SourceError on failure."""
        ...

    def recordings(self, root: Path) -> list[Recording]:
        """The recorded files of this source found under `root` (e.g. `../shared/data`)."""
        ...

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recording into snapshots; raises SourceError on a bad file."""
        ...
