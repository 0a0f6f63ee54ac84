"""Each origin's own published history, downloaded into a folder laid out like the recordings folder.

`leaderwatch backfill` runs one downloader per source, then imports the folder as `leaderwatch import`
does: the files land under the same relative paths and names the sources' `recordings(root)` find in
`../shared/data`. Origins that keep their table in a public GitHub repository (Aider, SWE-bench,
LiveBench, and the daily copy of the Open LLM Leaderboard) are read through GitHub's commits API, one
file per day a version was committed (the last version of the day), fetched from
raw.githubusercontent.com at that commit.

Every downloader has the signature of `Downloader`: it writes each file atomically (a temporary file
renamed into place), skips a file already present, and returns one line for the summary. A failure
raises SourceError (`GitHubRateLimitError` when GitHub's API limit is spent), naming what to do next.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from leaderwatch.sources import lmarena
from leaderwatch.sources.base import SourceError
from leaderwatch.sources.http import Fetcher, size_text

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
"""progress(what, done, total): the file being written and how many of the total are done."""
Downloader = Callable[[Fetcher, Path, date | None, Progress], Awaitable[str]]
"""download(http, cache, since, progress) -> the summary's line for the origin; SourceError on failure."""

GITHUB_API = "https://api.github.com"
GITHUB_RAW = "https://raw.githubusercontent.com"
GITHUB_HOSTS = frozenset({"api.github.com", "raw.githubusercontent.com"})
PER_PAGE = 100
GONE_FILE = ".gone-upstream"
"""In the cache folder: the file versions upstream does not have (the commit deleted or moved the file)."""


class GitHubRateLimitError(SourceError):
    """GitHub's API refused a request for its rate limit; `reason` says when to run again."""


class GitHubAuth(httpx.Auth):
    """Sends GITHUB_TOKEN to GitHub's hosts, and only to them (5,000 API requests an hour, not 60)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        """Add the token to a request for api.github.com or raw.githubusercontent.com."""
        if request.url.host in GITHUB_HOSTS:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@dataclass(frozen=True, slots=True)
class TrackedFile:
    """A file of a public GitHub repository whose versions are recordings.

    `target` is the recording's path under the cache folder, with `{date}` for the version's day.
    """

    repo: str
    path: str
    target: str
    use_since: bool = True
    """False for small files every recording needs whatever its date (LiveBench's categories)."""


@dataclass(frozen=True, slots=True)
class Version:
    """One commit that changed a tracked file."""

    file: TrackedFile
    sha: str
    at: datetime

    @property
    def day(self) -> date:
        """The day (UTC) the version was committed: the recording's date."""
        return self.at.date()

    def target(self) -> str:
        """The recording's path under the cache folder."""
        return self.file.target.format(date=self.day.isoformat())

    def raw_url(self) -> str:
        """The file as it was at this commit."""
        return f"{GITHUB_RAW}/{self.file.repo}/{self.sha}/{self.file.path}"


@dataclass
class Tally:
    """What a downloader did, for its summary line."""

    written: int = 0
    kept: int = 0
    gone: int = 0
    bytes: int = 0
    days: list[date] = field(default_factory=list)

    def line(self, what: str) -> str:
        """The summary's words: `N versions FIRST .. LAST: W downloaded (SIZE), K already in the cache`."""
        if not self.days:
            return f"no {what} found upstream"
        span = f"{min(self.days):%Y-%m-%d} .. {max(self.days):%Y-%m-%d}"
        text = (f"{len(self.days)} {what} {span}: {self.written} downloaded ({size_text(self.bytes)}), "
                f"{self.kept} already in the cache")
        return text + (f", {self.gone} gone upstream" if self.gone else "")




def write_atomically(path: Path, content: bytes) -> None:
    """Write `content` to `path` through a temporary file renamed into place: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _is_refusal(exc: SourceError) -> bool:
    return exc.reason.startswith(("HTTP 403", "HTTP 429"))


def _utc_text(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%H:%M} UTC"


async def rate_limit_error(http: Fetcher, source: str, refused: SourceError) -> SourceError:
    """The error to raise for a 403 or 429 from GitHub's API: a GitHubRateLimitError saying when to run
    again when the limit is spent (asked of `/rate_limit`, which costs no request), else `refused`."""
    url = f"{GITHUB_API}/rate_limit"
    reset: float | None = None
    try:
        body = await http.get(source, url, conditional=False) or b""
        core = json.loads(body)["resources"]["core"]
        if int(core["remaining"]) > 0 and refused.reason.startswith("HTTP 403"):
            return refused  # not the rate limit: a repository or file we may not read
        reset = float(core["reset"])
    except (SourceError, ValueError, KeyError, TypeError):
        pass  # a refusal from GitHub's API on a public repository is its rate limit
    when = f"after {_utc_text(reset)}" if reset is not None else "in an hour"
    return GitHubRateLimitError(
        source, refused.url,
        f"GitHub rate limit reached; run `leaderwatch backfill` again {when} (already downloaded files "
        "are kept) or set GITHUB_TOKEN")


async def github_api(http: Fetcher, source: str, url: str, params: dict[str, str | int]) -> Any:
    """GET one JSON answer of GitHub's REST API; GitHubRateLimitError when its limit is spent."""
    try:
        body = await http.get(source, url, params=params, conditional=False) or b""
    except SourceError as exc:
        if _is_refusal(exc):
            raise await rate_limit_error(http, source, exc) from exc
        raise
    try:
        return json.loads(body)
    except ValueError as exc:
        raise SourceError(source, url, f"GitHub's API answered something that is not JSON: {exc}") from exc


def _commit_time(item: Any, url: str, source: str) -> tuple[str, datetime]:
    try:
        sha = str(item["sha"])
        stamp = str(item["commit"]["author"]["date"])
    except (KeyError, TypeError) as exc:
        raise SourceError(source, url, f"a commit without sha or commit.author.date ({exc})") from exc
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise SourceError(source, url, f"commit {sha[:12]}: unreadable date {stamp!r}") from exc
    return sha, at


async def list_versions(http: Fetcher, source: str, tracked: TrackedFile, since: date | None
                        ) -> list[Version]:
    """Every commit that changed `tracked` (from `since` on, if it applies), newest first."""
    url = f"{GITHUB_API}/repos/{tracked.repo}/commits"
    versions: list[Version] = []
    page = 1
    while True:
        params: dict[str, str | int] = {"path": tracked.path, "per_page": PER_PAGE, "page": page}
        if since is not None and tracked.use_since:
            params["since"] = f"{since.isoformat()}T00:00:00Z"
        items = await github_api(http, source, url, params)
        if not isinstance(items, list):
            raise SourceError(source, url, "GitHub's commits API answered something other than a list")
        for item in items:
            sha, at = _commit_time(item, url, source)
            versions.append(Version(tracked, sha, at))
        if len(items) < PER_PAGE:
            return versions
        page += 1


def one_per_day(versions: Sequence[Version], since: date | None) -> list[Version]:
    """The last version of each recording (one per target name and day), oldest first.

    A file that moved is listed under its old path too, by the commit that moved it (where it is
    gone): on equal times the path listed later (the newer one) wins.
    """
    order = {id(v.file): i for i, v in enumerate(versions)}
    best: dict[str, Version] = {}
    for v in versions:
        if since is not None and v.file.use_since and v.day < since:
            continue
        key = v.target()
        held = best.get(key)
        if held is None or (v.at, order[id(v.file)]) > (held.at, order[id(held.file)]):
            best[key] = v
    return sorted(best.values(), key=lambda v: (v.at, v.target()))


async def save_versions(http: Fetcher, source: str, cache: Path, versions: Sequence[Version],
                        progress: Progress, tally: Tally | None = None) -> Tally:
    """Download each version not yet in `cache`; one missing upstream (deleted by that commit) is skipped."""
    tally = tally or Tally()
    gone_list = cache / GONE_FILE
    gone = set(gone_list.read_text(encoding="utf-8").split()) if gone_list.is_file() else set()
    for done, v in enumerate(versions, start=1):
        target = cache / v.target()
        tally.days.append(v.day)
        if target.exists():
            tally.kept += 1
        elif v.raw_url() in gone:
            tally.gone += 1
            tally.days.pop()
        else:
            try:
                body = await http.get(source, v.raw_url(), conditional=False) or b""
            except SourceError as exc:
                if not exc.reason.startswith("HTTP 404"):
                    raise
                logger.info("%s: %s is not in commit %s; skipped", source, v.file.path, v.sha[:12])
                tally.gone += 1
                tally.days.pop()
                with gone_list.open("a", encoding="utf-8") as fh:  # not asked again by the next run
                    fh.write(v.raw_url() + "\n")
            else:
                write_atomically(target, body)
                tally.written += 1
                tally.bytes += len(body)
        progress(f"{target.name} ({size_text(tally.bytes)})", done, len(versions))
    return tally


async def download_files(http: Fetcher, source: str, cache: Path, files: Sequence[TrackedFile],
                         since: date | None, progress: Progress) -> Tally:
    """List the versions of `files` through the commits API, then download the missing ones."""
    found: list[Version] = []
    for i, tracked in enumerate(files, start=1):
        progress(f"listing the versions of {tracked.path.rsplit('/', 1)[-1]}", 0, None)
        found += await list_versions(http, source, tracked, since)
        logger.debug("%s: %d/%d files listed", source, i, len(files))
    return await save_versions(http, source, cache, one_per_day(found, since), progress)


AIDER_REPO = "Aider-AI/aider"
AIDER_FILES = (
    # The edit leaderboard moved twice (PROVENANCE.md §3); polyglot has one path.
    TrackedFile(AIDER_REPO, "_data/edit_leaderboard.yml",
                "aider/edit_leaderboard/edit_leaderboard_{date}.yml"),
    TrackedFile(AIDER_REPO, "website/_data/edit_leaderboard.yml",
                "aider/edit_leaderboard/edit_leaderboard_{date}.yml"),
    TrackedFile(AIDER_REPO, "aider/website/_data/edit_leaderboard.yml",
                "aider/edit_leaderboard/edit_leaderboard_{date}.yml"),
    TrackedFile(AIDER_REPO, "aider/website/_data/polyglot_leaderboard.yml",
                "aider/polyglot_leaderboard/polyglot_leaderboard_{date}.yml"),
)


async def download_aider(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
    """Every committed version of Aider's edit and polyglot leaderboard YAML files."""
    tally = await download_files(http, "aider", cache, AIDER_FILES, since, progress)
    return f"{tally.line('versions')} (git history of {AIDER_REPO})"


SWEBENCH_REPO = "SWE-bench/swe-bench.github.io"
SWEBENCH_FILES = (
    TrackedFile(SWEBENCH_REPO, "template/data.json", "swebench/template_data_json/data_{date}.json"),
    TrackedFile(SWEBENCH_REPO, "data/leaderboards.json",
                "swebench/leaderboards_json/leaderboards_{date}.json"),
)


async def download_swebench(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
    """Every committed version of the SWE-bench site's leaderboard JSON and its older `template/data.json`."""
    tally = await download_files(http, "swebench", cache, SWEBENCH_FILES, since, progress)
    return f"{tally.line('versions')} (git history of {SWEBENCH_REPO})"


OPENLLM_REPO = "fboulnois/llm-leaderboard-csv"
OPENLLM_FILES = (
    # `csv/huggingface.csv` was renamed `csv/huggingface_v1.csv` on 2024-07-13, when v2 got its own file.
    TrackedFile(OPENLLM_REPO, "csv/huggingface.csv", "open_llm_leaderboard/v1/huggingface_v1_{date}.csv"),
    TrackedFile(OPENLLM_REPO, "csv/huggingface_v1.csv", "open_llm_leaderboard/v1/huggingface_v1_{date}.csv"),
    TrackedFile(OPENLLM_REPO, "csv/huggingface_v2.csv", "open_llm_leaderboard/v2/huggingface_v2_{date}.csv"),
)


async def download_openllm(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
    """The daily CSV copies of the Open LLM Leaderboard kept in fboulnois/llm-leaderboard-csv.

    The contents dataset itself is one table with no history, and the board retired on 2025-03-13.
    """
    tally = await download_files(http, "openllm", cache, OPENLLM_FILES, since, progress)
    return (f"{tally.line('versions')} (the daily copy in {OPENLLM_REPO}; the contents dataset itself "
            "is one table, the board retired 2025-03-13)")


LIVEBENCH_REPO = "LiveBench/livebench.github.io"
_RELEASE_FILE = re.compile(r"^(?P<kind>table|categories)_(?P<release>\d{4}_\d{2}_\d{2})\.(?:csv|json)$")
LIVEBENCH_PRERELEASE = (
    # `public/table.csv` held the first release's rows from 2024-06-03 until it was renamed on 2024-08-02.
    TrackedFile(LIVEBENCH_REPO, "public/categories.json",
                "livebench/table_prerelease_2024/categories__as_of_{date}.json", use_since=False),
    TrackedFile(LIVEBENCH_REPO, "public/table.csv",
                "livebench/table_prerelease_2024/table__as_of_{date}.csv"),
)


def livebench_files(listing: Any, url: str) -> list[TrackedFile]:
    """The release tables and categories files a contents-API listing of `public/` shows.

    A release without a categories file is left out: its table cannot be averaged.
    """
    if not isinstance(listing, list):
        raise SourceError("livebench", url, "GitHub's contents API answered something other than a list")
    releases: dict[str, set[str]] = {}
    for item in listing:
        m = _RELEASE_FILE.match(str(item.get("name", ""))) if isinstance(item, dict) else None
        if m:
            releases.setdefault(m["release"], set()).add(m["kind"])
    files = list(LIVEBENCH_PRERELEASE)
    for release, kinds in sorted(releases.items()):
        if kinds != {"table", "categories"}:
            logger.warning("livebench: release %s has no %s file upstream; skipped", release,
                           "categories" if "table" in kinds else "table")
            continue
        files.append(TrackedFile(LIVEBENCH_REPO, f"public/categories_{release}.json",
                                 f"livebench/categories_{release}/categories_{release}__as_of_{{date}}.json",
                                 use_since=False))
        files.append(TrackedFile(LIVEBENCH_REPO, f"public/table_{release}.csv",
                                 f"livebench/table_{release}/table_{release}__as_of_{{date}}.csv"))
    return files


async def download_livebench(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
    """Every committed version of each LiveBench release table, with its categories files.

    The releases are those the repository's `public/` folder lists now; categories files are
    downloaded whatever `since` says, since every table needs the one in force on its date.
    """
    url = f"{GITHUB_API}/repos/{LIVEBENCH_REPO}/contents/public"
    progress("listing the releases", 0, None)
    files = livebench_files(await github_api(http, "livebench", url, {}), url)
    releases = sum(1 for f in files if f.path.startswith("public/table_"))
    tally = await download_files(http, "livebench", cache, files, since, progress)
    return (f"{releases} releases, {tally.line('table and categories versions')} "
            f"(git history of {LIVEBENCH_REPO})")


def note_only(line: str) -> Downloader:
    """A downloader that downloads nothing and gives `line` for the summary."""
    async def download(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
        return line
    return download


def no_history(note: str) -> Downloader:
    """A downloader for an origin that publishes no history: it downloads nothing and says so."""
    return note_only(f"no history upstream: {note}")


EPOCH_NOTE = ("the hub's benchmark_data.zip holds today's tables only; `leaderwatch poll epoch` stores them")
OPENCOMPASS_NOTE = ("the OpenVLM file is one table, frozen since 2025-09-17; `leaderwatch poll opencompass` "
                    "stores it")
def downloaders(urls: Mapping[str, str] | None = None) -> Mapping[str, Downloader]:
    """The downloader of each source's history, by source name, in the registry's order. `urls`: the
    `[sources.NAME] url` settings; LMArena's (a mirror of the dataset) serves its history too."""
    arena_url = (urls or {}).get("lmarena")

    async def arena(http: Fetcher, cache: Path, since: date | None, progress: Progress) -> str:
        return await lmarena.download_history(http, cache, since, progress, url=arena_url)

    return {
        "lmarena": arena,
        "openllm": download_openllm,
        "aider": download_aider,
        "livebench": download_livebench,
        "swebench": download_swebench,
        "epoch": no_history(EPOCH_NOTE),
        "opencompass": no_history(OPENCOMPASS_NOTE),
    }
