"""`leaderwatch backfill`: each origin's published history into a cache folder, then imported like recordings.

The downloads (`sources/history.py`) lay the cache folder out like the recordings folder, so the
existing importer does the rest: parsers, one timeline per board, the import ledger (a recording
already imported is skipped) and the per-board summary. An origin that fails is reported with what to
do next; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from leaderwatch.sources.base import SourceError
from leaderwatch.sources.history import Downloader, GitHubRateLimitError, Progress, downloaders
from leaderwatch.sources.http import Fetcher

logger = logging.getLogger(__name__)

EMPTY_DATABASE_HINT = ("No history stored yet: `leaderwatch backfill` loads each leaderboard's published "
                       "history (a few minutes); until then `race`, `gap`, `chart` and `model` have little "
                       "to say")
"""What `leaderwatch run` logs first on an empty database."""


def default_cache(db_path: str) -> Path:
    """The cache folder beside the database: `leaderwatch.db` -> `leaderwatch.db.history/`."""
    return Path(f"{db_path}.history")


@dataclass(frozen=True, slots=True)
class OriginResult:
    """One origin's line in the summary; `failed` when its download stopped on an error."""

    source: str
    line: str
    failed: bool = False


def failure_line(source: str, exc: SourceError) -> str:
    """What failed and what to do next, in one line."""
    if isinstance(exc, GitHubRateLimitError):
        return exc.reason
    return (f"failed: {exc.reason} ({exc.url}); run `leaderwatch backfill {source}` again later "
            "(already downloaded files are kept)")


async def download_history(http: Fetcher, cache: Path, names: Sequence[str], since: date | None,
                           progress_for: Callable[[str], Progress],
                           table: Mapping[str, Downloader] | None = None) -> list[OriginResult]:
    """Run the downloader of each named source in turn; one that fails does not stop the others."""
    table = downloaders() if table is None else table
    results: list[OriginResult] = []
    for name in names:
        try:
            line = await table[name](http, cache, since, progress_for(name))
        except SourceError as exc:
            logger.error("backfill of %s failed: %s", name, exc)
            results.append(OriginResult(name, failure_line(name, exc), failed=True))
        except OSError as exc:  # the cache folder: full disk, no permission
            logger.error("backfill of %s failed: %s", name, exc)
            results.append(OriginResult(name, f"failed: cannot write to {cache}: {exc.strerror}; free space "
                                              "or choose another folder with --cache", failed=True))
        except Exception:  # a bug in one downloader must not cost the others their history
            logger.exception("backfill of %s failed", name)
            results.append(OriginResult(name, "failed: unexpected error (logged above); the other origins "
                                              "went on; please report it", failed=True))
        else:
            results.append(OriginResult(name, line))
    return results
