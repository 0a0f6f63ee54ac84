"""`leaderwatch backfill` against a fake of GitHub's API and raw host replaying recorded answers.

The fake serves `tests/data/origins/` (see its README): commits-API pages, a contents-API listing and
the files at those commits, trimmed. No test needs `../shared` or the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.bot.app import App, build_app, run
from leaderwatch.bot.cli.main import build_parser, execute
from leaderwatch.bot.pipeline.backfill import EMPTY_DATABASE_HINT, default_cache, download_history
from leaderwatch.bot.runtime.logs import secrets_of
from leaderwatch.bot.settings import Settings, load_settings
from leaderwatch.sources.base import SourceError
from leaderwatch.sources.history import (
    TrackedFile,
    Version,
    download_aider,
    list_versions,
    one_per_day,
    write_atomically,
)
from leaderwatch.sources.http import Fetcher

ORIGINS = Path(__file__).parents[1] / "data" / "origins"
REPOS = {"Aider-AI/aider": "aider", "SWE-bench/swe-bench.github.io": "swebench",
         "LiveBench/livebench.github.io": "livebench", "fboulnois/llm-leaderboard-csv": "openllm"}
RESET = int(datetime(2026, 12, 4, 9, 41, tzinfo=UTC).timestamp())
ORIGINS_WITHOUT_ARENA = ["openllm", "aider", "livebench", "swebench", "epoch", "opencompass"]
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Upstream:
    """GitHub's REST API and raw.githubusercontent.com, answering from tests/data/origins.

    `limited` repositories get GitHub's rate-limit refusal on the API; after `raw_budget` files the raw
    host refuses every file (a run that breaks halfway). Every request is kept in `requests`.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.limited: set[str] = set()
        self.raw_budget: int | None = None
        self.broken: dict[str, bytes] = {}
        """Commit (first 12 hex) -> the bytes the raw host gives for it instead of the recorded file."""

    def raw_requests(self) -> list[str]:
        return [r.url.path for r in self.requests if r.url.host == "raw.githubusercontent.com"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.strip("/").split("/")
        if request.url.host == "api.github.com":
            return self.api(request, parts)
        if request.url.host == "raw.githubusercontent.com":
            if self.raw_budget is not None:
                if self.raw_budget <= 0:
                    return httpx.Response(403, text="Forbidden")
                self.raw_budget -= 1
            if parts[2][:12] in self.broken:
                return httpx.Response(200, content=self.broken[parts[2][:12]])
            origin = REPOS.get("/".join(parts[:2]))
            path = ORIGINS / str(origin) / "raw" / parts[2][:12] / parts[-1]
            return httpx.Response(200, content=path.read_bytes()) if path.is_file() else \
                httpx.Response(404, text="404: Not Found")
        return httpx.Response(404, text="not served by this fake")

    def api(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        if parts == ["rate_limit"]:
            core = {"limit": 60, "remaining": 0 if self.limited else 42, "reset": RESET, "used": 60}
            return httpx.Response(200, json={"resources": {"core": core}, "rate": core})
        repo = "/".join(parts[1:3])
        if repo in self.limited:
            return httpx.Response(
                403, headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0",
                              "x-ratelimit-reset": str(RESET)},
                json={"message": "API rate limit exceeded for 203.0.113.7. (But here's the good news: "
                                 "Authenticated requests get a higher rate limit. Check out the "
                                 "documentation for more details.)",
                      "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api"
                                           "#rate-limiting"})
        origin = REPOS[repo]
        if parts[3:] == ["contents", "public"]:
            return httpx.Response(200, content=(ORIGINS / origin / "contents_public.json").read_bytes())
        assert parts[3:] == ["commits"], parts
        page = int(request.url.params.get("page", "1"))
        listed = ORIGINS / origin / "commits" / (request.url.params["path"].replace("/", "~") + ".json")
        items = json.loads(listed.read_bytes()) if page == 1 and listed.is_file() else []
        since = request.url.params.get("since")
        if since:  # GitHub filters on the committer date
            items = [c for c in items if c["commit"]["committer"]["date"] >= since]
        return httpx.Response(200, json=items)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


async def no_sleep(seconds: float) -> None:
    return None


def make_app(db_path: Path, upstream: Upstream, **settings: object) -> App:
    app = build_app(Settings(db_path=str(db_path), **settings),  # type: ignore[arg-type]
                    client=httpx.AsyncClient(transport=httpx.MockTransport(upstream)), clock=lambda: NOW)
    app.fetcher.sleep = no_sleep
    return app


@pytest.fixture
def app(tmp_path: Path, upstream: Upstream) -> Iterator[App]:
    made = make_app(tmp_path / "lw.db", upstream)
    yield made
    asyncio.run(made.aclose())


def cli(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = execute(app, build_parser().parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def origin_line(out: str, name: str) -> str:
    return next(ln.strip() for ln in out.splitlines() if ln.startswith(f"  {name}: "))


def stored(app: App) -> list[tuple[str, str, str]]:
    return app.db.execute("SELECT board_id, as_of, content_hash FROM snapshots ORDER BY 1, 2").fetchall()


def test_backfill_fills_the_boards_from_each_origins_history(app: App, upstream: Upstream,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(app, capsys, "backfill", *ORIGINS_WITHOUT_ARENA)
    assert code == 0, err
    cache = default_cache(app.settings.db_path)
    polyglot = sorted(p.name for p in (cache / "aider" / "polyglot_leaderboard").iterdir())
    # One file per day: of the two 2024-12-22 commits, the later one (2b1625e) only.
    assert polyglot == [f"polyglot_leaderboard_2024-12-{d}.yml" for d in ("21", "22", "23", "25")]
    assert not any("e62003c" in p for p in upstream.raw_requests())
    assert (cache / "swebench" / "leaderboards_json" / "leaderboards_2025-05-11.json").is_file()
    assert (cache / "livebench" / "table_2025_04_25" / "table_2025_04_25__as_of_2025-05-08.csv").is_file()
    assert (cache / "livebench" / "categories_2025_04_02" / "categories_2025_04_02__as_of_2025-04-03.json"
            ).is_file()
    boards = {row[0] for row in stored(app)}
    assert {"aider/polyglot", "aider/edit", "livebench/global", "swebench/verified", "openllm/v2"} <= boards
    # The importer's per-board summary, then one line per origin.
    assert "aider/polyglot\n  2024-12-21 .. 2024-12-25  aider/polyglot-leaderboard-yml  (4 recordings)" in out
    assert origin_line(out, "aider") == ("aider: 5 versions 2024-12-21 .. 2024-12-25: 5 downloaded "
                                         "(31.6 KB), 0 already in the cache (git history of Aider-AI/aider)")
    assert origin_line(out, "openllm").startswith(
        "openllm: 2 versions 2024-07-13 .. 2024-07-15: 2 downloaded")
    # template/data.json's last commit is the one that moved it away: nothing to download there.
    assert "1 gone upstream" in origin_line(out, "swebench")
    assert origin_line(out, "epoch").startswith("epoch: no history upstream: the hub's benchmark_data.zip "
                                                "holds today's tables only")
    assert origin_line(out, "opencompass") == (
        "opencompass: no history upstream: the OpenVLM file is one table, frozen since 2025-09-17; "
        "`leaderwatch poll opencompass` stores it")
    # The boards answer from the backfilled history.
    code, out, err = cli(app, capsys, "top", "aider/polyglot", "--at", "2024-12-23", "-n", "3")
    assert code == 0, err
    assert "as of 2024-12-23" in out.splitlines()[0]
    assert "o1-2024-12-17 (high)" in out


def test_a_second_run_downloads_and_imports_nothing(app: App, upstream: Upstream,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(app, capsys, "backfill", *ORIGINS_WITHOUT_ARENA)[0] == 0
    before = stored(app)
    events = app.db.execute("SELECT count(*) FROM events").fetchone()[0]
    upstream.requests.clear()
    code, out, err = cli(app, capsys, "backfill", *ORIGINS_WITHOUT_ARENA)
    assert code == 0, err
    assert upstream.raw_requests() == []
    assert "0 snapshot(s) stored" in out and "imported 0 recording(s)" in out
    assert "5 versions 2024-12-21 .. 2024-12-25: 0 downloaded (0 bytes), 5 already in the cache" in out
    assert stored(app) == before
    assert app.db.execute("SELECT count(*) FROM events").fetchone()[0] == events


def test_a_run_that_breaks_halfway_resumes_without_duplicates(tmp_path: Path, upstream: Upstream,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    whole = make_app(tmp_path / "whole.db", Upstream())
    try:
        assert cli(whole, capsys, "backfill", "aider", "livebench")[0] == 0
        expected = stored(whole)
    finally:
        asyncio.run(whole.aclose())
    app = make_app(tmp_path / "lw.db", upstream)
    try:
        upstream.raw_budget = 3
        code, out, _ = cli(app, capsys, "backfill", "aider", "livebench")
        assert code == 1
        line = origin_line(out, "aider")
        assert line.startswith("aider: failed: HTTP 403")
        assert "run `leaderwatch backfill aider` again later" in line
        assert "livebench: failed: HTTP 403" in out
        assert not list(default_cache(app.settings.db_path).rglob(".*partial*"))
        partly = stored(app)
        assert partly and len(partly) < len(expected)
        upstream.raw_budget = None
        code, out, err = cli(app, capsys, "backfill", "aider", "livebench")
        assert code == 0, err
        assert "5 versions 2024-12-21 .. 2024-12-25: 2 downloaded" in origin_line(out, "aider")
        assert stored(app) == expected
    finally:
        asyncio.run(app.aclose())


def test_a_rate_limit_stops_only_that_origin(app: App, upstream: Upstream,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    upstream.limited.add("Aider-AI/aider")
    code, out, _ = cli(app, capsys, "backfill", *ORIGINS_WITHOUT_ARENA)
    assert code == 1
    assert origin_line(out, "aider") == (
        "aider: GitHub rate limit reached; run `leaderwatch backfill` again after 09:41 UTC (already "
        "downloaded files are kept) or set GITHUB_TOKEN")
    assert "failed" not in origin_line(out, "livebench") and "failed" not in origin_line(out, "swebench")
    boards = {row[0] for row in stored(app)}
    assert "livebench/global" in boards and "swebench/verified" in boards
    assert not any(b.startswith("aider/") for b in boards)


def test_a_version_committed_broken_upstream_is_left_out(app: App, upstream: Upstream,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream history holds versions that never parsed; the run names them and stores the rest."""
    upstream.broken["87a964355b13"] = b"- dirname: 2024-12-23--broken\n  model: [unclosed\n"
    code, out, err = cli(app, capsys, "backfill", "aider")
    assert code == 0, err
    assert ("skipped: aider/polyglot_leaderboard/polyglot_leaderboard_2024-12-23.yml: YAML does not parse"
            in err)
    assert "1 downloaded version(s) do not parse and were left out" in out
    days = [row[1][:10] for row in stored(app) if row[0] == "aider/polyglot"]
    assert days == ["2024-12-21", "2024-12-22", "2024-12-25"]


def test_since_skips_older_versions(app: App, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(app, capsys, "backfill", "aider", "livebench", "--since", "2024-12-23")
    assert code == 0, err
    cache = default_cache(app.settings.db_path)
    assert sorted(p.name for p in (cache / "aider").rglob("*.yml")) == [
        "polyglot_leaderboard_2024-12-23.yml", "polyglot_leaderboard_2024-12-25.yml"]
    assert origin_line(out, "aider").startswith("aider: 2 versions 2024-12-23 .. 2024-12-25: 2 downloaded")
    commits = [r for r in upstream.requests if r.url.path.endswith("/commits")]
    assert commits and all(r.url.params["since"] == "2024-12-23T00:00:00Z" for r in commits
                           if "categories" not in r.url.params["path"])
    assert app.db.execute("SELECT min(as_of) FROM snapshots WHERE board_id = 'aider/polyglot'"
                          ).fetchone()[0].startswith("2024-12-23")


def test_the_cache_folder_can_be_chosen(app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "elsewhere"
    code, out, err = cli(app, capsys, "backfill", "aider", "--cache", str(cache))
    assert code == 0, err
    assert (cache / "aider" / "edit_leaderboard" / "edit_leaderboard_2024-12-22.yml").is_file()
    assert f"history per origin (cached in {cache}):" in out
    assert not default_cache(app.settings.db_path).exists()


def test_an_unknown_source_gets_a_did_you_mean(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(app, capsys, "backfill", "aidr")
    assert code == 2
    assert "Unknown source `aidr`" in err and "aider" in err


def test_github_token_goes_to_github_only(tmp_path: Path, upstream: Upstream,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"GITHUB_TOKEN": "ghp_example0123456789", "LEADERWATCH_DB": str(tmp_path / "lw.db")}
    settings = load_settings(environ, cwd=tmp_path)
    assert settings.github_token == "ghp_example0123456789"
    app = make_app(tmp_path / "lw.db", upstream, github_token=settings.github_token)
    try:
        assert cli(app, capsys, "backfill", "aider")[0] == 0
        elsewhere = asyncio.run(app.client.get("https://example.org/"))
        assert elsewhere.request.headers.get("authorization") is None
    finally:
        asyncio.run(app.aclose())
    github = [r for r in upstream.requests if r.url.host in {"api.github.com", "raw.githubusercontent.com"}]
    assert github and all(r.headers["authorization"] == "Bearer ghp_example0123456789" for r in github)


async def test_versions_are_read_page_after_page() -> None:
    """The commits API gives at most 100 commits a page: every page is read until a shorter one."""
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        pages.append(page)
        count = {1: 100, 2: 100, 3: 7}.get(page, 0)
        stamp = f"2025-01-{page:02d}T12:00:00Z"
        return httpx.Response(200, json=[{"sha": f"{page:02d}{i:038d}", "commit": {"author": {"date": stamp}}}
                                         for i in range(count)])

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        found = await list_versions(Fetcher(client), "aider", TrackedFile("o/r", "f.yml", "x/f_{date}.yml"),
                                    None)
    assert pages == [1, 2, 3] and len(found) == 207
    assert [v.target() for v in one_per_day(found, None)] == [f"x/f_2025-01-0{d}.yml" for d in (1, 2, 3)]


def test_a_moved_file_takes_the_new_path_on_the_day_it_moved() -> None:
    old = TrackedFile("o/r", "website/_data/f.yml", "x/f_{date}.yml")
    new = TrackedFile("o/r", "aider/website/_data/f.yml", "x/f_{date}.yml")
    moved = datetime(2024, 7, 5, 12, tzinfo=UTC)
    versions = [Version(old, "a" * 40, moved), Version(old, "b" * 40, datetime(2024, 6, 1, tzinfo=UTC)),
                Version(new, "a" * 40, moved)]
    chosen = one_per_day(versions, since=date(2024, 6, 2))
    assert [(v.file.path, v.day) for v in chosen] == [("aider/website/_data/f.yml", date(2024, 7, 5))]


def test_a_file_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.csv"
    target.mkdir(parents=True)  # the rename into place fails
    with pytest.raises(OSError):
        write_atomically(target, b"model,score\n")
    assert list(tmp_path.rglob("*")) == [tmp_path / "a", target]
    target.rmdir()
    write_atomically(target, b"model,score\n")
    assert target.read_bytes() == b"model,score\n" and list((tmp_path / "a").iterdir()) == [target]


async def test_downloaders_report_progress_per_file(tmp_path: Path, upstream: Upstream) -> None:
    seen: list[tuple[str, int, int | None]] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        line = await download_aider(Fetcher(client), tmp_path, None, lambda w, d, t: seen.append((w, d, t)))
    assert line.startswith("5 versions")
    counted = [(d, t) for _, d, t in seen if t is not None]
    assert counted == [(i, 5) for i in range(1, 6)]
    assert seen[-1][0] == "polyglot_leaderboard_2024-12-25.yml (31.6 KB)"


async def test_run_on_an_empty_database_offers_the_backfill(tmp_path: Path, upstream: Upstream,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(Settings(db_path=str(tmp_path / "lw.db")), sources=[],
                    client=httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
    stop = asyncio.Event()
    stop.set()
    try:
        with caplog.at_level(logging.INFO):
            await run(app, stop)
    finally:
        await app.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == EMPTY_DATABASE_HINT
    assert sqlite3.connect(tmp_path / "lw.db").execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


async def test_one_origin_failing_in_any_way_leaves_the_others_going(tmp_path: Path) -> None:
    async def broken(http: Fetcher, cache: Path, since: date | None, progress: object) -> str:
        raise ValueError("a bug")

    async def network(http: Fetcher, cache: Path, since: date | None, progress: object) -> str:
        raise SourceError("swebench", "https://api.github.com/x",
                          "network error: ConnectError after 4 attempts")

    async def fine(http: Fetcher, cache: Path, since: date | None, progress: object) -> str:
        return "3 versions"

    table = {"lmarena": broken, "swebench": network, "aider": fine}
    async with httpx.AsyncClient() as client:
        results = await download_history(Fetcher(client), tmp_path, ["lmarena", "swebench", "aider"],
                                         None, lambda name: lambda w, d, t: None,
                                         table)  # type: ignore[arg-type]
    assert [(r.source, r.failed) for r in results] == [
        ("lmarena", True), ("swebench", True), ("aider", False)]
    assert results[0].line.startswith("failed: unexpected error")
    assert results[1].line == (
        "failed: network error: ConnectError after 4 attempts (https://api.github.com/x); "
        "run `leaderwatch backfill swebench` again later (already downloaded files are kept)")
    assert results[2].line == "3 versions"


def test_github_token_never_reaches_the_logs() -> None:
    assert "ghp_example0123456789" in secrets_of(Settings(github_token="ghp_example0123456789"))
