"""LiveBench: category and global averages from the recorded release tables, release switching, the
release index, live fetch.

Everything but the whole-history checks reads the excerpts in tests/data/livebench (README.md there),
laid out like the recordings (`livebench/table_<release>/...`), so `table_path(DATA, ...)` finds them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources.base import ShapeError, SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.livebench import (
    INDEX_URL,
    LiveBenchSource,
    parse_livebench,
    releases_in_index,
)

AS_OF = datetime(2025, 3, 31, tzinfo=UTC)
DATA = Path(__file__).resolve().parent.parent / "data"
"""tests/data: its `livebench/` folder holds the excerpts under the recordings' relative paths."""
INDEX = DATA / "livebench" / "index"


def table_path(root: Path, release: str, day: str) -> Path:
    return root / "livebench" / f"table_{release}" / f"table_{release}__as_of_{day}.csv"


def categories_path(root: Path, release: str, day: str) -> Path:
    return root / "livebench" / f"categories_{release}" / f"categories_{release}__as_of_{day}.json"


def parse(identity, table: bytes, categories: bytes, release: str = "2024_11_25"):
    snaps = parse_livebench(table, categories, identity=identity, url="table.csv",
                            categories_url="categories.json", as_of=AS_OF, fetched_at=AS_OF,
                            release=release)
    return {s.board.id: s for s in snaps}


def row(snapshot, name: str):
    matches = [e for e in snapshot.entries if e.name == name]
    assert len(matches) == 1, f"{name} on {snapshot.board.id}: {matches}"
    return matches[0]


@pytest.fixture
def release_2024_11_25(identity):
    table = table_path(DATA, "2024_11_25", "2025-03-31").read_bytes()
    cats = categories_path(DATA, "2024_11_25", "2024-11-25").read_bytes()
    return parse(identity, table, cats)


def test_global_average_is_the_mean_of_category_means(release_2024_11_25):
    # claude-3-7-sonnet-thinking in table_2024_11_25 as of 2025-03-31, by category of
    # categories_2024_11_25.json (values copied from the CSV row):
    reasoning = (100.0 + 81.5 + 82.0) / 3           # web_of_lies_v2, zebra_puzzle, spatial = 87.833
    coding = (73.077 + 76.0) / 2                     # LCB_generation, coding_completion = 74.539
    math = (84.0 + 81.25 + 71.747) / 3               # AMPS_Hard, math_comp, olympiad = 78.999
    data_analysis = (66.0 + 70.16 + 86.0) / 3        # cta, tablejoin, tablereformat = 74.053
    language = (71.333 + 56.455 + 52.0) / 3          # connections, plot_unscrambling, typos = 59.929
    instruction = (85.683 + 79.75 + 81.333 + 78.25) / 4  # paraphrase, simplify, story, summarize = 81.254
    expected = (reasoning + coding + math + data_analysis + language + instruction) / 6
    assert round(expected, 2) == 76.1  # Epoch's live_bench_external.csv recorded 76.1 for this model too
    snap = release_2024_11_25["livebench/global"]
    entry = row(snap, "claude-3-7-sonnet-thinking")
    assert entry.score == 76.1
    assert entry.rank == 2
    # no organization in the CSV: the identity tables infer it from the model name
    assert (entry.organization, entry.country) == ("Anthropic", "US")
    assert (snap.entries[0].name, snap.entries[0].score) == ("gemini-2.5-pro-exp-03-25", 82.35)
    assert snap.method == "2024_11_25" and snap.origin == "livebench-table"
    assert snap.as_of == AS_OF and not snap.truncated
    assert row(snap, "claude-3-7-sonnet").score == 65.56


def test_category_board_row(release_2024_11_25):
    coding = release_2024_11_25["livebench/coding"]
    entry = row(coding, "claude-3-7-sonnet-thinking")
    assert entry.score == round((73.077 + 76.0) / 2, 2) == 74.54
    assert entry.model_key == "claude-3-7-sonnet-thinking"
    assert entry.ci_lower is None and entry.votes is None
    reasoning = release_2024_11_25["livebench/reasoning"]
    assert row(reasoning, "claude-3-7-sonnet-thinking").score == 87.83
    # ranks are competition ranks over the rounded averages, best first
    assert [e.rank for e in reasoning.entries][:3] == sorted(e.rank for e in reasoning.entries)[:3]
    assert set(release_2024_11_25) == {
        "livebench/global", "livebench/reasoning", "livebench/coding", "livebench/math",
        "livebench/data_analysis", "livebench/language", "livebench/instruction_following",
    }


def test_empty_cell_leaves_the_task_out_of_its_category(release_2024_11_25):
    # phi-3-small-8k-instruct has an empty `connections` cell: Language = mean(plot_unscrambling, typos)
    language = release_2024_11_25["livebench/language"]
    assert row(language, "phi-3-small-8k-instruct").score == round((15.888 + 10.0) / 2, 2) == 12.94
    # ...and it keeps a global average, since every category still has a number
    assert row(release_2024_11_25["livebench/global"], "phi-3-small-8k-instruct").score > 0


def test_blank_cells_and_a_missing_category(identity):
    # o1 first appeared (2024-12-09) with only its two coding scores; the other cells are " ".
    table = table_path(DATA, "2024_11_25", "2024-12-09").read_bytes()
    cats = categories_path(DATA, "2024_11_25", "2024-11-25").read_bytes()
    boards = parse(identity, table, cats)
    assert row(boards["livebench/coding"], "o1").score == round((69.231 + 54) / 2, 2) == 61.62
    assert "o1" not in {e.name for e in boards["livebench/global"].entries}
    assert "o1" not in {e.name for e in boards["livebench/math"].entries}


def test_na_cells_and_missing_categories(identity):
    # gpt-5-pro (2025-09-17) has N/A everywhere but reasoning and coding
    table = table_path(DATA, "2025_05_30", "2025-09-17").read_bytes()
    cats = categories_path(DATA, "2025_05_30", "2025-06-11").read_bytes()
    boards = parse(identity, table, cats, release="2025_05_30")
    assert row(boards["livebench/reasoning"], "gpt-5-pro").score == round((100.0 + 98.75 + 98.0) / 3, 2)
    assert row(boards["livebench/coding"], "gpt-5-pro").score == round((73.913 + 70.423) / 2, 2)
    for board in ("livebench/global", "livebench/agentic_coding", "livebench/math", "livebench/language"):
        assert "gpt-5-pro" not in {e.name for e in boards[board].entries}
    assert len(boards["livebench/agentic_coding"].entries) == 79  # 80 rows, gpt-5-pro has no agentic score


def test_site_overrides_grok_3_global(identity):
    # grok-3 was published with most cells N/A (no math, data analysis or IF at all); the site
    # hard-codes its global average to 58 (Averaging.js), so the board shows 58.
    table = table_path(DATA, "2024_11_25", "2025-03-22").read_bytes()
    cats = categories_path(DATA, "2024_11_25", "2024-11-25").read_bytes()
    boards = parse(identity, table, cats)
    assert row(boards["livebench/global"], "grok-3").score == 58.0
    assert row(boards["livebench/coding"], "grok-3").score == round((52.564 + 56.0) / 2, 2)
    assert "grok-3" not in {e.name for e in boards["livebench/math"].entries}


def test_short_row_inside_the_file_is_read_as_missing_trailing_cells(identity):
    # nemotron-3-super-120b-a12b has 21 of 24 fields from 2026-04-07 on: the last three tasks
    # (typescript, typos, zebra_puzzle) are missing, as the site's CSV parser reads it.
    table = table_path(DATA, "2026_01_08", "2026-07-01").read_bytes()
    cats = categories_path(DATA, "2026_01_08", "2026-01-19").read_bytes()
    boards = parse(identity, table, cats, release="2026_01_08")
    language = row(boards["livebench/language"], "nemotron-3-super-120b-a12b")
    assert language.score == round((24.0 + 36.083) / 2, 2)  # connections, plot_unscrambling; no typos
    assert len(boards["livebench/global"].entries) == 41  # the excerpt's 41 rows (127 in the file)


def test_errors(identity):
    real = table_path(DATA, "2024_11_25", "2025-03-31").read_bytes()
    cats = categories_path(DATA, "2024_11_25", "2024-11-25").read_bytes()
    cut = real[: real.index(b"\n", len(real) // 2) - 20]
    with pytest.raises(SourceError, match="last row has .* fields.*truncated"):
        parse(identity, cut, cats)
    with pytest.raises(SourceError, match="first column must be 'model'"):
        parse(identity, b"name" + real[len(b"model"):], cats)
    header_only = real.split(b"\n", 1)[0] + b"\n"
    with pytest.raises(SourceError, match="empty table"):
        parse(identity, header_only, cats)
    html = b"<!DOCTYPE html><html><body>404</body></html>"
    with pytest.raises(SourceError, match="HTML page"):
        parse(identity, html, cats)
    with pytest.raises(SourceError, match="HTML page"):
        parse(identity, real, html)
    with pytest.raises(SourceError, match="categories JSON does not parse"):
        parse(identity, real, cats[: len(cats) // 2])
    # A task cell that is not a finite number drops the model from the boards it counts in (issue 14).
    good = parse(identity, real, cats)
    for bad in (b"abc", b"inf"):
        boards = parse(identity, real.replace(b"84.0,73.077", bad + b",73.077"), cats)
        dropped = [b for b in boards if len(boards[b].entries) == len(good[b].entries) - 1]
        assert dropped and all(len(boards[b].entries) == len(good[b].entries) for b in boards
                               if b not in dropped)
    with pytest.raises(SourceError, match="none of which is a column"):
        parse(identity, real, b'{"Coding": ["code_generation", "code_completion"]}')


@pytest.mark.whole_history
def test_recordings_follow_the_current_release(recordings, identity):
    source = LiveBenchSource(identity)
    recs = source.recordings(recordings)
    names = {r.path.name for r in recs}
    # 2025_11_25's first table (2025-12-01) supersedes 2025_05_30 from that day on
    assert "table_2025_05_30__as_of_2025-11-26.csv" in names
    assert "table_2025_05_30__as_of_2025-12-01.csv" not in names
    assert "table_2025_11_25__as_of_2025-12-01.csv" in names
    assert "table_2025_11_25__as_of_2025-12-23.csv" not in names  # 2025_12_23 starts that day
    # 2024_06_24 got its own file only on 2024-08-02, the day 2024_07_26 became current
    assert not any(n.startswith("table_2024_06_24") for n in names)
    # pre-release public/table.csv: kept from 2024-06-11; the 06-03..06-06 drafts fit no recorded
    # categories file
    assert "table__as_of_2024-06-11.csv" in names
    assert "table__as_of_2024-06-06.csv" not in names
    assert all(r.family == "livebench/table-csv" and r.priority == 10 for r in recs)
    assert all(r.as_of.tzinfo is UTC for r in recs)
    by_name = {r.path.name: r for r in recs}
    assert by_name["table_2025_05_30__as_of_2025-06-11.csv"].as_of == datetime(2025, 6, 11, tzinfo=UTC)
    assert "livebench/agentic_coding" in by_name["table_2025_05_30__as_of_2025-06-11.csv"].board_ids
    assert "livebench/agentic_coding" not in by_name["table_2025_04_25__as_of_2025-05-30.csv"].board_ids
    # one method per release: a release change is a method change
    (pre,) = {s.method for s in source.load(by_name["table__as_of_2024-06-11.csv"])}
    assert pre == "2024_06_24"
    (new,) = {s.method for s in source.load(by_name["table_2025_11_25__as_of_2025-12-01.csv"])}
    assert new == "2025_11_25"


def test_categories_file_in_force_on_the_table_date(identity):
    source = LiveBenchSource(identity)
    by_name = {r.path.name: r for r in source.recordings(DATA)}
    # consecutive_events joined Data Analysis in the categories file of 2026-01-19: the table of that
    # day is averaged with it (with the 2026-01-08 file it would be (45.596 + 100.0) / 2 = 72.8)
    boards = {s.board.id: s for s in source.load(by_name["table_2026_01_08__as_of_2026-01-19.csv"])}
    codex = row(boards["livebench/data_analysis"], "gpt-5.2-codex")
    # consecutive_events, tablejoin, tablereformat
    assert codex.score == round((89.016 + 45.596 + 100.0) / 3, 2) == 78.2


@pytest.mark.whole_history
def test_every_recording_loads(recordings, identity):
    source = LiveBenchSource(identity)
    recs = source.recordings(recordings)
    assert len(recs) == 159
    seen: set[str] = set()
    for rec in recs:
        snaps = source.load(rec)
        assert {s.board.id for s in snaps} == set(rec.board_ids)
        for s in snaps:
            assert s.entries and s.as_of == rec.as_of == s.fetched_at
            seen.add(s.board.id)
    assert seen == {b.id for b in source.boards()}


async def _no_sleep(_: float) -> None:
    return None


def _fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=_no_sleep)


def index_of(day: str) -> bytes:
    """A recorded GitHub contents listing of the site's `public/` folder (tests/data/livebench/README.md)."""
    return (INDEX / f"contents_public_{day}.json").read_bytes()


class Site:
    """livebench.ai and GitHub's contents API as the source sees them: the listing of the day, and the
    release files of tests/data/livebench (the newest table and categories of each release)."""

    def __init__(self, day: str) -> None:
        self.day = day
        self.calls: list[str] = []
        site = "https://livebench.ai/"
        self.files = {
            f"{site}table_2026_01_08.csv": table_path(DATA, "2026_01_08", "2026-07-01"),
            f"{site}categories_2026_01_08.json": categories_path(DATA, "2026_01_08", "2026-01-19"),
            f"{site}table_2025_12_23.csv": table_path(DATA, "2025_12_23", "2026-01-02"),
            f"{site}categories_2025_12_23.json": categories_path(DATA, "2025_12_23", "2025-12-23"),
        }
        self.index_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.calls.append(url)
        if url == INDEX_URL:
            if self.index_status != 200:
                return httpx.Response(self.index_status, json={"message": "API rate limit exceeded"})
            etag = f'W/"{self.day}"'
            if request.headers.get("if-none-match") == etag:
                return httpx.Response(304)
            return httpx.Response(200, content=index_of(self.day), headers={"etag": etag})
        assert url in self.files, url
        if request.headers.get("if-none-match") == "v1":
            return httpx.Response(304)
        return httpx.Response(200, content=self.files[url].read_bytes(), headers={"etag": "v1"})


def test_releases_in_the_recorded_index():
    assert releases_in_index(index_of("2025-12-23"), url=INDEX_URL) == [
        "2025_05_30", "2025_11_25", "2025_12_23"]
    assert releases_in_index(index_of("2026-07-01"), url=INDEX_URL)[-1] == "2026_01_08"


def test_a_table_without_its_categories_is_no_release_yet():
    listing = [i for i in json.loads(index_of("2026-07-01")) if i["name"] != "categories_2026_01_08.json"]
    assert releases_in_index(json.dumps(listing).encode(), url=INDEX_URL)[-1] == "2025_12_23"


@pytest.mark.parametrize("payload, reason", [
    (b'{"message": "Not Found"}', "not a list of files"),
    (b'[{"path": "public/table_2026_01_08.csv"}]', "has no `name`"),
    (b'[{"name": "index.html"}, {"name": "robots.txt"}]', "no release with both"),
])
def test_an_index_of_another_shape_is_a_shape_error(payload, reason):
    with pytest.raises(ShapeError, match=reason):
        releases_in_index(payload, url=INDEX_URL)


async def test_fetch_live_reads_the_newest_release_of_the_index(identity):
    site = Site("2026-07-01")
    source = LiveBenchSource(identity)
    http = _fetcher(site)
    snaps = await source.fetch(http)
    assert site.calls == [INDEX_URL, "https://livebench.ai/table_2026_01_08.csv",
                          "https://livebench.ai/categories_2026_01_08.json"]
    boards = {s.board.id: s for s in snaps}
    assert len(boards) == 8
    top = boards["livebench/global"].entries[0]
    assert (top.name, top.score, top.rank) == ("gpt-5.5-xhigh", 80.71, 1)
    assert boards["livebench/global"].method == "2026_01_08" == source.current_release
    assert boards["livebench/global"].as_of.tzinfo is not None
    # the second poll: index and both files unchanged
    assert await source.fetch(http) == []


async def test_a_new_release_is_a_new_snapshot_of_the_same_boards(identity):
    site = Site("2025-12-23")
    source = LiveBenchSource(identity)
    http = _fetcher(site)
    before = {s.board.id: s for s in await source.fetch(http)}
    assert {s.method for s in before.values()} == {"2025_12_23"}
    site.day = "2026-07-01"  # LiveBench published 2026_01_08
    after = {s.board.id: s for s in await source.fetch(http)}
    assert {s.method for s in after.values()} == {"2026_01_08"}
    assert set(before) <= set(after) <= {b.id for b in source.boards()}
    assert "https://livebench.ai/table_2026_01_08.csv" in site.calls


async def test_the_last_release_is_kept_while_the_index_is_unavailable(identity):
    site = Site("2026-07-01")
    source = LiveBenchSource(identity)
    http = _fetcher(site)
    await source.fetch(http)
    site.index_status = 403  # GitHub's limit for requests without a token
    assert await source.fetch(http) == []  # the release files answered 304: nothing new
    assert source.current_release == "2026_01_08"
    with pytest.raises(SourceError, match="HTTP 403"):  # no release known yet: the poll fails
        await LiveBenchSource(identity).fetch(_fetcher(site))


async def test_fetch_release_parameter_skips_the_index(identity):
    table = table_path(DATA, "2025_12_23", "2026-01-02").read_bytes()
    cats = categories_path(DATA, "2025_12_23", "2025-12-23").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path in ("/table_2025_12_23.csv", "/categories_2025_12_23.json")
        return httpx.Response(200, content=table if request.url.path.endswith(".csv") else cats)

    snaps = await LiveBenchSource(identity, release="2025_12_23").fetch(_fetcher(handler))
    assert {s.method for s in snaps} == {"2025_12_23"}


async def test_a_configured_url_is_the_base_of_the_release_files(identity):
    site = Site("2026-07-01")
    site.files = {u.replace("https://livebench.ai/", "https://mirror.example/lb/"): p
                  for u, p in site.files.items()}
    source = LiveBenchSource(identity, url="https://mirror.example/lb")
    assert source.probe_url == INDEX_URL
    assert len(await source.fetch(_fetcher(site))) == 8
    assert "https://mirror.example/lb/table_2026_01_08.csv" in site.calls


async def test_fetch_errors(identity):
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<!doctype html><html>Not found</html>")

    with pytest.raises(ShapeError, match="HTML page"):
        await LiveBenchSource(identity).fetch(_fetcher(html))

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    with pytest.raises(SourceError, match="HTTP 503"):
        await LiveBenchSource(identity).fetch(_fetcher(down))
