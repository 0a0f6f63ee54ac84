"""LMArena source: the leaderboard dataset (parquet, live and backfill), every recorded history shape, errors.

Everything here reads the excerpts in tests/data/lmarena (see its README); only the tests marked
`whole_history` read the whole recorded folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leaderwatch.bot.cli.main import main
from leaderwatch.bot.pipeline.importer import import_recordings
from leaderwatch.sources import lmarena
from leaderwatch.sources.base import ShapeError, SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.lmarena import (
    ARENAS,
    ARENAS_BY_CONFIG,
    BOARDS,
    FAMILY_CATALOG,
    FAMILY_DATASET,
    FAMILY_HISTORY,
    FAMILY_LMARENA_CSV,
    FAMILY_LMSYS_CSV,
    FAMILY_SCRAPE,
    TEXT,
    TEXT_STYLE_CONTROL,
    VISION,
    VISION_STYLE_CONTROL,
    WEBDEV,
    LmarenaSource,
    catalog_board,
    ci_ranks,
    dataset_snapshot,
    download_history,
    open_weights_of,
    parse_catalog_json,
    parse_daily_scrape,
    parse_dataset_pages,
    parse_fboulnois_csv,
    parse_history_csv,
    read_dataset_parquet,
)
from leaderwatch.sources.timeline import build_timelines
from leaderwatch.storage.db import open_db

DAY = datetime(2025, 1, 24, tzinfo=UTC)
EXCERPTS = Path(__file__).parents[1] / "data" / "lmarena"
RECORDED = EXCERPTS / "recorded"
"""The trimmed recordings: a root laid out like ../shared/data (`lmarena/...`)."""
HUB = "https://huggingface.co/datasets/lmarena-ai/leaderboard-dataset/resolve/main"


async def no_sleep(_: float) -> None:
    return None


def data(*parts: str, root: Path = RECORDED) -> bytes:
    return root.joinpath("lmarena", *parts).read_bytes()


def lmsys(day: str, identity: Identity, root: Path = RECORDED):
    [snap] = parse_fboulnois_csv(data("fboulnois_lmsys_csv", f"lmsys_{day}.csv", root=root),
                                 identity=identity, board=TEXT, url="test://lmsys", as_of=DAY, fetched_at=DAY)
    return snap


def catalog(name: str, identity: Identity, root: Path = RECORDED):
    path = root / "lmarena" / "arena_catalog" / name
    target = catalog_board(path)
    assert target is not None
    board, method, as_of = target
    [snap] = parse_catalog_json(path.read_bytes(), identity=identity, board=board, method=method,
                                url="test://catalog", as_of=as_of, fetched_at=as_of)
    return snap


def one(snapshot, name: str):
    [entry] = [e for e in snapshot.entries if e.name == name]
    return entry


def test_one_board_per_arena_of_the_dataset():
    source = LmarenaSource(Identity())
    ids = [b.id for b in source.boards()]
    assert ids[:6] == ["lmarena/text", "lmarena/text-style-control", "lmarena/text-factuality",
                       "lmarena/vision", "lmarena/vision-style-control", "lmarena/webdev"]
    assert len(ids) == len(set(ids)) == len(ARENAS) == 22
    assert {"lmarena/search", "lmarena/document-style-control", "lmarena/text-to-image", "lmarena/video-edit",
            "lmarena/agent", "lmarena/agent-tool-hallucination"} <= set(ids)
    for board in BOARDS:
        assert board.has_ci and board.higher_is_better
        assert board.url.startswith("https://arena.ai/leaderboard/")
    assert ARENAS_BY_CONFIG["agent"].board.metric == "Agent score (IPS)"
    assert TEXT.metric == VISION_STYLE_CONTROL.metric == "Arena score"
    assert (VISION_STYLE_CONTROL.url, WEBDEV.url) == ("https://arena.ai/leaderboard/vision",
                                                      "https://arena.ai/leaderboard/code")


# -- the dataset's parquet files -------------------------------------------------------------------

def parquet(config: str, split: str = "full") -> Path:
    return EXCERPTS / config / f"{split}-00000-of-00001.parquet"


def test_full_split_read_by_publish_date_overall_only():
    rows = read_dataset_parquet(parquet("vision"), ARENAS_BY_CONFIG["vision"], "u")
    assert sorted(rows) == ["2024-06-29", "2024-09-27", "2024-12-01", "2025-08-04", "2025-12-11"]
    # `english` rows of 2024-06-29 and 2024-12-01 are not part of the overall board.
    assert [len(rows[d]) for d in sorted(rows)] == [5, 6, 7, 6, 5]
    file = pq.ParquetFile(parquet("vision"))
    assert file.metadata.num_row_groups == 4  # read across several row groups


def test_text_full_elo_era_has_no_intervals_and_nan_category_rows_are_skipped(identity):
    rows = read_dataset_parquet(parquet("text"), ARENAS_BY_CONFIG["text"], "u")
    assert sorted(rows) == ["2023-05-08", "2024-06-19", "2025-08-04"]  # the NaN `korean` row is ignored
    snap = dataset_snapshot(rows["2023-05-08"], identity=identity, arena=ARENAS_BY_CONFIG["text"],
                            day="2023-05-08", url="u", fetched_at=DAY)
    assert (snap.board, snap.origin, snap.method, snap.as_of) == (
        TEXT, "lmarena-dataset", "default", datetime(2023, 5, 8, tzinfo=UTC))
    assert [(e.name, e.rank, e.score, e.ci_lower, e.votes) for e in snap.entries[:2]] == [
        ("gpt-4", 1, 1274.0, None, None), ("claude-v1", 2, 1225.0, None, None)]


def test_ranks_are_derived_from_the_intervals(identity):
    rows = read_dataset_parquet(parquet("text"), ARENAS_BY_CONFIG["text"], "u")
    snap = dataset_snapshot(rows["2024-06-19"], identity=identity, arena=ARENAS_BY_CONFIG["text"],
                            day="2024-06-19", url="u", fetched_at=DAY)
    # The same ranks as LMArena's official table of that day (lmsys_2024-06-19.csv): 1, 2, 2, 4, 4, 6, 6.
    assert [(e.name, e.rank) for e in snap.entries] == [
        ("gpt-4o-2024-05-13", 1), ("gemini-advanced-0514", 2), ("gemini-1.5-pro-api-0514", 2),
        ("gemini-1.5-pro-api-0409-preview", 4), ("gpt-4-turbo-2024-04-09", 4), ("gpt-4-1106-preview", 6),
        ("claude-3-opus-20240229", 6)]
    official = {row.split(",")[1]: int(row.split(",")[0])
                for row in data("fboulnois_lmsys_csv", "lmsys_2024-06-19.csv").decode().splitlines()[1:8]}
    assert [e.rank for e in snap.entries] == list(official.values())
    top = snap.entries[0]
    assert (top.ci_lower, top.ci_upper, top.votes, top.organization, top.open_weights) == (
        1284.0, 1290.0, 42046, "OpenAI", False)


@pytest.mark.parametrize(("scored", "ranks"), [
    ([(10.0, 9.0, 11.0), (8.0, 7.0, 9.5), (5.0, 4.0, 6.0)], [1, 1, 3]),
    ([(10.0, 9.0, 11.0), (8.0, 7.0, 8.5), (5.0, 4.0, 6.0)], [1, 2, 3]),
    ([(10.0, 0.0, 20.0), (8.0, 7.0, 9.0), (5.0, 4.0, 6.0)], [1, 1, 2]),
    ([(10.0, None, None), (10.0, None, None), (5.0, None, None)], [1, 1, 3]),  # no CIs: competition ranks
    ([(10.0, 9.0, 11.0), (9.0, None, None)], [1, 2]),
])
def test_ci_ranks(scored, ranks):
    assert ci_ranks(scored) == ranks


def test_webdev_duplicate_keeps_more_votes_and_logs_once(identity, caplog):
    rows = read_dataset_parquet(parquet("webdev", "latest"), ARENAS_BY_CONFIG["webdev"], "u")
    assert sorted(rows) == ["2026-05-05"]  # the newer `image_to_webdev` date is not the overall board
    logged: set[tuple[str, str]] = set()
    caplog.set_level("WARNING", logger="leaderwatch.sources.lmarena")
    for _ in range(3):
        snap = dataset_snapshot(rows["2026-05-05"], identity=identity, arena=ARENAS_BY_CONFIG["webdev"],
                                day="2026-05-05", url="u", fetched_at=DAY, logged=logged)
    codex = one(snap, "gpt-5.3-codex (codex-harness)")
    assert (codex.score, codex.votes) == (1372.8, 3540)
    assert (len(snap.entries), snap.method) == (5, "code-arena")
    assert [r.message for r in caplog.records].count(
        "u: gpt-5.3-codex (codex-harness) listed twice on 2026-05-05 (1406.4 with 2962.0 votes, 1372.8 with "
        "3540.0 votes); keeping the row with more votes") == 1


def test_agent_arena_reads_the_ips_score(identity):
    rows = read_dataset_parquet(parquet("agent", "latest"), ARENAS_BY_CONFIG["agent"], "u")
    snap = dataset_snapshot(rows["2026-10-02"], identity=identity, arena=ARENAS_BY_CONFIG["agent"],
                            day="2026-10-02", url="u", fetched_at=DAY)
    assert snap.board.id == "lmarena/agent" and snap.method == "ips"
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes) == (
        "Claude Fable 5.1 (Max)", 1, 0.14310371476177605, 15130)
    assert top.ci_lower == pytest.approx(0.12415154305)
    assert [e.rank for e in snap.entries] == [1, 1, 2, 4]


def write_table(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(("columns", "message"), [
    ({"model_name": ["a"], "organization": ["o"], "license": ["MIT"], "score_x": [1.0],
      "category": ["overall"], "leaderboard_publish_date": ["2025-01-01"]},
     r"the dataset table is missing required columns: rating, rating_lower, rating_upper, vote_count"),
    ({"model_name": ["a"], "organization": ["o"], "license": ["MIT"], "rating": [None], "rating_lower": [1.0],
      "rating_upper": [2.0], "vote_count": [3.0], "category": ["overall"],
      "leaderboard_publish_date": ["2025-01-01"]},
     r"2025-01-01: model 'a' has no score"),
    ({"model_name": ["a"], "organization": ["o"], "license": ["MIT"], "rating": ["1300"],
      "rating_lower": [1.0],
      "rating_upper": [2.0], "vote_count": [3.0], "category": ["overall"],
      "leaderboard_publish_date": ["2025-01-01"]},
     r"column `rating` holds string, not numbers"),
])
def test_dataset_shape_errors(tmp_path, identity, columns, message):
    path = write_table(tmp_path / "x.parquet", columns)
    with pytest.raises(ShapeError, match=message):
        rows = read_dataset_parquet(path, ARENAS_BY_CONFIG["text"], "u")
        dataset_snapshot(rows["2025-01-01"], identity=identity, arena=ARENAS_BY_CONFIG["text"],
                         day="2025-01-01", url="u", fetched_at=DAY)


def test_renamed_interval_columns_are_accepted(tmp_path, identity):
    path = write_table(tmp_path / "x.parquet", {
        "model_name": ["a", "b"], "organization": ["o", "o"], "license": ["MIT", "MIT"],
        "rating": [10.0, 5.0],
        "rating_q025": [9.0, 4.0], "rating_q975": [11.0, 6.0], "vote_count": [3.0, 4.0],
        "category": ["overall", "overall"], "leaderboard_publish_date": ["2025-01-01", "2025-01-01"]})
    rows = read_dataset_parquet(path, ARENAS_BY_CONFIG["text"], "u")
    assert [(r.lower, r.upper) for r in rows["2025-01-01"]] == [(9.0, 11.0), (4.0, 6.0)]


@pytest.mark.parametrize(("content", "drift"), [
    (b"", True), (b"{\"rows\": []}", True),  # another format: the source has drifted
    (parquet("text").read_bytes()[:-100], False),  # cut short: a plain error, the next poll retries
])
def test_not_a_parquet_file(content, drift):
    with pytest.raises(SourceError, match="not a readable parquet file") as caught:
        read_dataset_parquet(content, ARENAS_BY_CONFIG["text"], "u")
    assert isinstance(caught.value, ShapeError) is drift


# -- live: each arena's `latest` parquet file ------------------------------------------------------

class Hub:
    """The Hub's `resolve` URLs answered from tests/data/lmarena; every request is kept."""

    def __init__(self, base: str = HUB, missing: frozenset[str] = frozenset()) -> None:
        self.base, self.missing = base, missing
        self.requests: list[str] = []
        self.fail: dict[str, httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        assert url.startswith(self.base + "/"), url
        config, name = url[len(self.base) + 1:].split("/")
        if config in self.fail:
            return self.fail[config]
        path = EXCERPTS / config / name
        if config in self.missing or not path.is_file():
            return httpx.Response(404, text="Entry not found")
        if request.headers.get("if-none-match") == f'"{config}-{name}"':
            return httpx.Response(304)
        return httpx.Response(200, content=path.read_bytes(), headers={"etag": f'"{config}-{name}"'})


async def fetch_with(hub: Hub, source: LmarenaSource | None = None, fetcher: Fetcher | None = None):
    async with httpx.AsyncClient(transport=httpx.MockTransport(hub)) as client:
        fetcher = fetcher or Fetcher(client, sleep=no_sleep)
        fetcher.client = client
        return await (source or LmarenaSource(Identity())).fetch(fetcher)


async def test_fetch_reads_each_arenas_latest_parquet():
    # vision and text_style_control have no `latest` excerpt: answered 304 as if unchanged.
    hub = Hub()
    hub.fail = {c: httpx.Response(304) for c in ("text_style_control", "vision")}
    snaps = await fetch_with(hub)
    assert hub.requests == [f"{HUB}/{a.config}/latest-00000-of-00001.parquet" for a in ARENAS]
    assert [(s.board.id, s.method, len(s.entries)) for s in snaps] == [
        ("lmarena/text", "default", 7), ("lmarena/webdev", "code-arena", 5), ("lmarena/agent", "ips", 4)]
    text = snaps[0]
    assert text.origin == "lmarena-dataset" and not text.truncated
    assert text.as_of == datetime(2025, 8, 4, tzinfo=UTC)
    assert text.fetched_at.tzinfo is not None and text.fetched_at > text.as_of
    assert [(e.name, e.rank, e.score) for e in text.entries[:4]] == [
        ("gemini-2.5-pro", 1, 1470.0), ("gemini-2.5-pro-preview-05-06", 2, 1446.0), ("glm-4.5", 2, 1434.0),
        ("grok-4-0709", 2, 1434.0)]
    glm = one(text, "glm-4.5")
    assert (glm.ci_lower, glm.ci_upper, glm.votes, glm.organization, glm.open_weights) == (
        1425.0, 1443.0, 4112, "zai", True)  # the dataset's own slug, kept as published


async def test_fetch_is_conditional_and_skips_unchanged_files():
    hub = Hub()
    hub.fail = {c: httpx.Response(304) for c in ("text_style_control", "vision")}
    async with httpx.AsyncClient(transport=httpx.MockTransport(hub)) as client:
        fetcher = Fetcher(client, sleep=no_sleep)
        source = LmarenaSource(Identity())
        assert len(await source.fetch(fetcher)) == 3
        fetcher.commit_validators("lmarena")
        assert await source.fetch(fetcher) == []


async def test_fetch_uses_the_url_setting():
    hub = Hub(base="http://mirror.test/lmarena")
    hub.fail = {c: httpx.Response(304) for c in ("text_style_control", "vision")}
    snaps = await fetch_with(hub, LmarenaSource(Identity(), url="http://mirror.test/lmarena/"))
    assert len(snaps) == 3 and all(u.startswith("http://mirror.test/lmarena/") for u in hub.requests)
    assert LmarenaSource(Identity()).probe_url == f"{HUB}/text/latest-00000-of-00001.parquet"


async def test_fetch_a_withdrawn_minor_arena_is_skipped_but_a_main_one_is_an_error():
    hub = Hub()
    hub.fail = {c: httpx.Response(304) for c in ("text_style_control", "vision")}
    assert len(await fetch_with(hub)) == 3  # 18 arenas without an excerpt answer 404
    hub.fail["vision"] = httpx.Response(404, text="Entry not found")
    gone = r"lmarena/vision: the dataset no longer publishes `vision` \(HTTP 404\)"
    with pytest.raises(ShapeError, match=gone):
        await fetch_with(hub)


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(200, content=b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"), "HTML page"),
    (httpx.Response(503), "HTTP 503 after 4 attempts"),
    (httpx.Response(200, content=b"PAR1garbage"), "not a readable parquet file"),
])
async def test_fetch_errors(response, message):
    hub = Hub()
    hub.fail = {"text": response}
    with pytest.raises(SourceError, match=message):
        await fetch_with(hub)


# -- backfill: the `full` split, downloaded then imported -------------------------------------------

async def backfill(hub: Hub, cache: Path, since: date | None = None
                   ) -> tuple[str, list[tuple[str, int, int | None]]]:
    seen: list[tuple[str, int, int | None]] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(hub)) as client:
        line = await download_history(Fetcher(client, sleep=no_sleep), cache, since,
                                      lambda what, done, total: seen.append((what, done, total)))
    return line, seen


def test_backfill_fills_lmarena_vision_from_2024_and_top_answers(tmp_path):
    cache = tmp_path / "cache"
    hub = Hub()
    line, seen = asyncio.run(backfill(hub, cache))
    assert line == ("LMArena's leaderboard dataset (CC BY 4.0), `full` split of 5 arenas: 5 downloaded "
                    "(34.7 KB), 0 already there; not published: text_factuality, search, "
                    "search_style_control, search_factuality, document, document_style_control, "
                    "text_to_image, image_edit, "
                    "text_to_video, image_to_video, video_edit, agent, agent_bash_recovery_steps, "
                    "agent_praise_complaint, agent_steerability, agent_task_outcome_explicit, "
                    "agent_tool_hallucination")
    assert seen[-1][1:] == (22, 22) and [s[1] for s in seen] == list(range(1, 23))
    folder = cache / "lmarena" / "leaderboard_dataset"
    assert (folder / "vision" / "full-00000-of-00001.parquet").read_bytes() == parquet("vision").read_bytes()
    assert not list(folder.rglob(".*partial*"))

    db_path = tmp_path / "lw.db"
    db = open_db(db_path)
    report = import_recordings(db, [LmarenaSource(Identity.load())], cache, datetime(2026, 12, 4, tzinfo=UTC))
    assert not report.errors
    vision = [r[0] for r in db.execute(
        "SELECT as_of FROM snapshots WHERE board_id = 'lmarena/vision' ORDER BY as_of").fetchall()]
    assert [v[:10] for v in vision] == ["2024-06-29", "2024-09-27", "2024-12-01", "2025-08-04", "2025-12-11"]
    db.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", str(db_path), "top", "lmarena/vision", "--at", "2024-12-01", "-n", "3"]) == 0
    text = out.getvalue()
    assert "2024-12-01" in text
    assert text.index("gemini-exp-1121") < text.index("chatgpt-4o-latest-20240903") < text.index(
        "gemini-1.5-pro-002")


async def test_backfill_resumes_and_since_skips_older_dates(tmp_path):
    cache = tmp_path / "cache"
    hub = Hub()
    hub.fail = {"vision": httpx.Response(503)}
    with pytest.raises(SourceError, match="HTTP 503 after 4 attempts"):
        await backfill(hub, cache)
    folder = cache / "lmarena" / "leaderboard_dataset"
    assert [p.parent.name for p in folder.rglob("*.parquet")] == ["text", "text_style_control"]
    assert not list(folder.rglob(".*partial*"))
    hub.fail = {}
    hub.requests.clear()
    line, _ = await backfill(hub, cache, since=date(2024, 9, 1))
    assert "3 downloaded" in line and "2 already there" in line and "publish dates before 2024-09-01" in line
    assert f"{HUB}/text/full-00000-of-00001.parquet" not in hub.requests
    source = LmarenaSource(Identity())
    days = [r.part for r in source.recordings(cache) if r.board_ids == (VISION.id,)]
    assert days == ["2024-09-27", "2024-12-01", "2025-08-04", "2025-12-11"]
    hub.requests.clear()
    line, _ = await backfill(hub, cache)
    assert "0 downloaded" in line and "5 already there" in line
    assert not [u for u in hub.requests if "/vision/" in u]
    assert len(source.recordings(cache)) == 3 + 2 + 5 + 3 + 2  # text, text SC, vision, vision SC, webdev


async def test_backfill_refuses_an_html_page_and_keeps_no_file(tmp_path):
    hub = Hub()
    hub.fail = {"text": httpx.Response(200, content=b"<html><body>Sign in</body></html>")}
    with pytest.raises(SourceError, match="HTML page"):
        await backfill(hub, tmp_path)
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob(".*partial*"))


async def test_the_dataset_history_wins_the_timeline(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(RECORDED, root)
    await backfill(Hub(), root)
    source = LmarenaSource(Identity())
    timelines = build_timelines(source.recordings(root))
    text = timelines[TEXT.id]
    # The dataset covers 2023-05-08 .. 2025-08-04: every copy of those dates gives way to it.
    assert [(p.family, p.start.date().isoformat()) for p in text.periods] == [
        (FAMILY_DATASET, "2023-05-08")]
    assert {r.family for r in text.superseded} == {FAMILY_LMSYS_CSV, FAMILY_LMARENA_CSV, FAMILY_CATALOG,
                                                   FAMILY_HISTORY}
    vision_sc = timelines[VISION_STYLE_CONTROL.id]
    assert [(p.family, p.start.date().isoformat(), p.end.date().isoformat()) for p in vision_sc.periods] == [
        (FAMILY_DATASET, "2024-10-15", "2026-04-10")]
    assert [r.family for r in vision_sc.superseded] == [FAMILY_SCRAPE]  # the 2026-04-12 scrape


# -- recorded history: fboulnois lmsys.csv ----------------------------------------------------------

def test_lmsys_2025_01_24_deepseek_r1(identity):
    snap = lmsys("2025-01-24", identity)
    assert (snap.board, snap.origin, snap.method, snap.truncated) == (
        TEXT, "fboulnois-lmsys-csv", "default", False)
    r1 = one(snap, "DeepSeek-R1")
    assert (r1.rank, r1.score, r1.organization, r1.votes) == (3, 1357.0, "DeepSeek", 1883)
    assert (r1.ci_lower, r1.ci_upper) == (1344.0, 1369.0)
    assert r1.open_weights is True  # MIT
    assert r1.model_key == "deepseek-r1"


def test_lmsys_2024_06_19_arena_elo_column(identity):
    snap = lmsys("2024-06-19", identity)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes) == ("GPT-4o-2024-05-13", 1, 1287.0, 42046)
    llama = one(snap, "Llama-3-70b-Instruct")
    assert (llama.rank, llama.score, llama.ci_lower, llama.ci_upper) == (12, 1207.0, 1205.0, 1210.0)
    assert (llama.votes, llama.organization, llama.open_weights) == (135075, "Meta", True)
    # LMArena's CI-based rank has ties: two Gemini rows share rank 2.
    assert [e.rank for e in snap.entries[:3]] == [1, 2, 2]


def test_lmsys_2024_10_16_rank_stylectrl_column_is_not_the_rank(identity):
    snap = lmsys("2024-10-16", identity)
    llama = one(snap, "Llama-3-70b-Instruct")  # rank 39, rank_stylectrl 38
    assert (llama.rank, llama.score, llama.ci_lower, llama.ci_upper, llama.votes) == (
        39, 1206.0, 1204.0, 1208.0, 163997)
    assert [(e.name, e.rank) for e in snap.entries[:3]] == [
        ("ChatGPT-4o-latest (2024-09-03)", 1), ("o1-preview", 1), ("o1-mini", 3)]


def test_lmsys_licence_typo_propretary_is_proprietary(identity):
    haiku = one(lmsys("2024-12-12", identity), "Claude 3.5 Haiku (20241022)")
    assert (haiku.rank, haiku.score, haiku.open_weights) == (32, 1243.0, False)


def test_command_r_and_command_r_plus_both_kept(identity):
    names = {e.name for e in lmsys("2024-10-16", identity).entries if e.name.startswith("Command R")}
    assert names == {"Command R (08-2024)", "Command R+ (08-2024)", "Command R (04-2024)",
                     "Command R+ (04-2024)"}


@pytest.mark.parametrize(("licence", "expected"), [
    ("Proprietary", False), ("proprietary", False), ("Propretary", False), ("MIT", True),
    ("Other", True), ("Non-commercial", True), ("open", True), ("", None), ("-", None), ("N/A", None),
    (None, None),
])
def test_open_weights_of(licence, expected):
    assert open_weights_of(licence) is expected


# -- fboulnois lmarena_{text,vision}.csv ------------------------------------------------------------

def test_lmarena_vision_2025_08_04(identity):
    content = data("fboulnois_lmarena_csv", "lmarena_vision_2025-08-04.csv")
    [snap] = parse_fboulnois_csv(content, identity=identity, board=VISION, url="test://v", as_of=DAY,
                                 fetched_at=DAY, origin="fboulnois-lmarena-csv")
    assert (snap.board, snap.origin, len(snap.entries)) == (VISION, "fboulnois-lmarena-csv", 10)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes, top.ci_lower, top.ci_upper) == (
        "Gemini-2.5-Pro", 1, 1317.0, 7681, 1308.0, 1326.0)


def test_lmarena_text_2025_08_04_duplicate_row_kept_once(identity):
    content = data("fboulnois_lmarena_csv", "lmarena_text_2025-08-04.csv")
    [snap] = parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://t", as_of=DAY,
                                 fetched_at=DAY)
    assert len(snap.entries) == 13  # 14 rows, Yi-34B-Chat listed twice (ranks 200 and 201)
    yi = one(snap, "Yi-34B-Chat")
    assert (yi.rank, yi.score, yi.organization) == (200, 1134.0, "01 AI")
    glm = one(snap, "GLM-4.5")
    assert (glm.rank, glm.score, glm.votes, glm.open_weights) == (3, 1434.0, 4112, True)


# -- arena-catalog JSON ----------------------------------------------------------------------------

def test_catalog_2025_01_28_holds_style_controlled_ratings(identity):
    snap = catalog("leaderboard-data_2025-01-28.json", identity)
    assert (snap.board, snap.method, snap.origin) == (TEXT_STYLE_CONTROL, "style-control", "arena-catalog")
    assert snap.as_of == datetime(2025, 1, 28, tzinfo=UTC)
    o1 = snap.entries[0]
    assert (o1.name, o1.rank, round(o1.score)) == ("o1-2024-12-17", 1, 1323)
    assert o1.score == pytest.approx(1322.91512983838)
    assert o1.ci_lower == pytest.approx(1317.8953058096051)
    assert o1.ci_upper == pytest.approx(1329.2930661497314)
    assert o1.votes is None
    r1 = one(snap, "deepseek-r1")
    assert (r1.rank, round(r1.score)) == (4, 1316)


def test_catalog_2025_03_04_holds_default_ratings(identity):
    snap = catalog("leaderboard-data_2025-03-04.json", identity)
    assert (snap.board, snap.method) == (TEXT, "default")
    grok = snap.entries[0]
    assert (grok.name, grok.rank, round(grok.score)) == ("grok-3-preview-02-24", 1, 1412)
    # The same figure fboulnois copied from the official table that day.
    assert one(lmsys("2025-03-04", identity), "Grok-3-Preview-02-24").score == 1412.0
    style = catalog("leaderboard-data-style-control_2025-03-04.json", identity)
    assert style.board == TEXT_STYLE_CONTROL
    assert (style.entries[0].name, round(style.entries[0].score)) == ("gpt-4.5-preview-2025-02-27", 1370)


def test_catalog_vision_2025_12_11(identity):
    snap = catalog("leaderboard-vision_2025-12-11.json", identity)
    assert snap.board == VISION
    assert (snap.entries[0].name, round(snap.entries[0].score)) == ("gemini-3-pro", 1330)


@pytest.mark.parametrize(("name", "board", "method"), [
    ("leaderboard-data_2025-01-28.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-data_2025-03-04.json", TEXT, "default"),
    ("leaderboard-data-style-control_2025-03-04.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-text_2025-05-24.json", TEXT, "default"),
    ("leaderboard-text-style-control_2025-11-06.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-vision_2025-12-11.json", VISION, "default"),
    ("leaderboard-vision-style-control_2025-12-11.json", VISION_STYLE_CONTROL, "style-control"),
    ("leaderboard-image_2025-12-11.json", None, None),
    ("scatterplot-data_2025-12-17.json", None, None),
])
def test_catalog_file_names(name, board, method):
    target = catalog_board(Path(name))
    if board is None:
        assert target is None
    else:
        assert target is not None and target[:2] == (board, method)


def test_catalog_without_full_category_is_an_error(identity):
    content = json.dumps({"coding": {"o1": {"rating": 1300.0}}}).encode()
    with pytest.raises(SourceError, match="no `full` category"):
        parse_catalog_json(content, identity=identity, board=TEXT, method="default", url="test://c",
                           as_of=DAY, fetched_at=DAY)


# -- arena.ai daily scrape -------------------------------------------------------------------------

def test_scrape_code_is_code_arena_on_the_webdev_board(identity):
    [snap] = parse_daily_scrape(data("arena_ai_daily_scrape", "2026-03-19", "code.json"),
                                identity=identity, url="test://scrape")
    assert (snap.board, snap.method, snap.origin, snap.truncated) == (
        WEBDEV, "code-arena", "arena-ai-daily-scrape", True)
    assert snap.as_of == datetime(2026, 3, 19, 14, 51, 18, 40878, tzinfo=UTC)
    first, second = snap.entries[:2]
    assert (first.name, first.rank, first.score, first.votes) == ("claude-opus-4-6", 1, 1547.0, 4090)
    assert (first.ci_lower, first.ci_upper, first.organization, first.open_weights) == (
        1536.0, 1558.0, "Anthropic", False)
    # The rank is the position on the page: equal scores keep ranks 1 and 2 as published.
    assert (second.name, second.rank, second.score) == ("claude-opus-4-6-thinking", 2, 1547.0)


def test_scrape_text_is_the_style_controlled_default_view(identity):
    [snap] = parse_daily_scrape(data("arena_ai_daily_scrape", "2026-04-19", "text.json"),
                                identity=identity, url="test://scrape")
    assert (snap.board, snap.method) == (TEXT_STYLE_CONTROL, "style-control")
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes) == ("claude-opus-4-7-thinking", 1, 1505.0, 2618)
    assert (top.ci_lower, top.ci_upper) == (1494.0, 1516.0)


def test_scrape_vision_is_the_style_controlled_vision_board():
    [snap] = parse_daily_scrape(data("arena_ai_daily_scrape", "2026-04-12", "vision.json"),
                                identity=Identity(), url="test://scrape")
    assert (snap.board, snap.method) == (VISION_STYLE_CONTROL, "style-control")
    gemma = one(snap, "gemma-3-27b-it")  # a null licence is unknown
    assert (gemma.rank, gemma.score, gemma.votes, gemma.open_weights) == (59, 1158.0, 17777, None)


def test_scrape_model_count_mismatch_is_an_error(identity):
    doc = json.loads(data("arena_ai_daily_scrape", "2026-03-19", "text.json"))
    doc["models"] = doc["models"][:2]
    with pytest.raises(SourceError, match="model_count is 3 but 2 models"):
        parse_daily_scrape(json.dumps(doc).encode(), identity=identity, url="test://scrape")


# -- jasontrigg0 history ---------------------------------------------------------------------------

def history(identity, root: Path = RECORDED):
    content = data("jasontrigg0_history", "alltime.csv", root=root)
    return {s.as_of.date().isoformat(): s for s in parse_history_csv(content, identity=identity, url="t://h")}


def test_history_dates_methods_and_rows(identity):
    snaps = history(identity)
    assert list(snaps) == ["2023-05-08", "2023-05-22", "2023-06-19", "2025-03-26"]
    first = snaps["2023-05-08"]
    assert (first.board, first.method, first.origin) == (TEXT, "elo-online", "jasontrigg0-history")
    assert snaps["2023-05-22"].method == "elo-online"
    assert snaps["2023-06-19"].method == "bradley-terry"
    assert len(first.entries) == 13
    gpt4 = first.entries[0]
    assert (gpt4.name, gpt4.rank, gpt4.organization, gpt4.open_weights) == ("ChatGPT-4", 1, "OpenAI", False)
    assert gpt4.score == pytest.approx(1274.1856580388371)
    koala = one(first, "Koala-13B")
    assert (koala.organization, koala.open_weights) == ("UC Berkeley", True)
    assert koala.score == pytest.approx(1022.3520972128268)
    last = snaps["2025-03-26"]
    assert len(last.entries) == 7  # 8 rows, yi-34b-chat listed twice
    top = last.entries[0]
    assert (top.name, top.rank, round(top.score, 2)) == ("Gemini-2.5-Pro-Exp-03-25", 1, 1442.96)
    assert one(last, "Grok-3-Preview-02-24").rank == 3


def test_history_file_is_parsed_once_for_all_its_recordings(identity, monkeypatch):
    calls = []
    real = lmarena.parse_history_csv

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lmarena, "parse_history_csv", counting)
    source = LmarenaSource(identity)
    parts = [r for r in source.recordings(RECORDED) if r.family == FAMILY_HISTORY]
    assert len(parts) == 4
    assert [s.as_of for r in parts[:3] for s in source.load(r)] == [r.as_of for r in parts[:3]]
    assert source.load(parts[-1])[0].as_of == datetime(2025, 3, 26, tzinfo=UTC)
    assert len(calls) == 1


# -- errors ----------------------------------------------------------------------------------------

def test_truncated_csv(identity):
    content = data("fboulnois_lmsys_csv", "lmsys_2025-01-24.csv")
    cut = content[: content.index(b"DeepSeek-R1") + 5]  # mid-row: the row has 3 fields
    with pytest.raises(SourceError, match=r"3 fields where the header has 10 \(truncated or malformed"):
        parse_fboulnois_csv(cut, identity=identity, board=TEXT, url="test://cut", as_of=DAY, fetched_at=DAY)


def test_renamed_score_column(identity):
    content = data("fboulnois_lmsys_csv", "lmsys_2025-01-24.csv").replace(b"arena_score", b"score", 1)
    missing = r"the table is missing required columns: arena_score \(or arena_elo\) \(it has: rank, "
    with pytest.raises(SourceError, match=missing):
        parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://r", as_of=DAY, fetched_at=DAY)


def test_header_only_csv(identity):
    content = data("fboulnois_lmsys_csv", "lmsys_2025-01-24.csv").split(b"\n", 1)[0] + b"\n"
    with pytest.raises(SourceError, match=r"no rows \(empty table\)"):
        parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://h", as_of=DAY, fetched_at=DAY)


def test_unparseable_score_drops_its_row(identity, caplog):
    # Issue 14: a rating that is not a finite number drops its row, counted in one log line.
    content = data("fboulnois_lmsys_csv", "lmsys_2025-01-24.csv")
    [good] = parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://n", as_of=DAY,
                                 fetched_at=DAY)
    for bad in (b"n/a!", b"NaN", b"inf", b"-1357"):
        [snap] = parse_fboulnois_csv(content.replace(b",1357,", b"," + bad + b",", 1), identity=identity,
                                     board=TEXT, url="test://n", as_of=DAY, fetched_at=DAY)
        assert len(snap.entries) == len(good.entries) - 1 and 1357 not in [e.score for e in snap.entries]
    reasons = [r.getMessage().rsplit(": ", 1)[0].rsplit("(", 1)[1].rstrip(")") for r in caplog.records
               if "dropped" in r.getMessage()]
    assert reasons == ["1 unreadable"] * 3 + ["1 negative"]  # the text "inf" is unreadable


HTML = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"


@pytest.mark.parametrize("parse", [
    lambda c, i: parse_fboulnois_csv(c, identity=i, board=TEXT, url="u", as_of=DAY, fetched_at=DAY),
    lambda c, i: parse_catalog_json(c, identity=i, board=TEXT, method="", url="u", as_of=DAY, fetched_at=DAY),
    lambda c, i: parse_daily_scrape(c, identity=i, url="u"),
    lambda c, i: parse_history_csv(c, identity=i, url="u"),
])
def test_html_page_is_an_error(parse, identity):
    with pytest.raises(SourceError, match="HTML page"):
        parse(HTML, identity)


def test_truncated_json(identity):
    content = data("arena_catalog", "leaderboard-text_2025-05-24.json")
    with pytest.raises(SourceError, match="malformed or truncated JSON"):
        parse_catalog_json(content[: len(content) // 2], identity=identity, board=TEXT, method="", url="u",
                           as_of=DAY, fetched_at=DAY)
    scrape = data("arena_ai_daily_scrape", "2026-03-19", "code.json")
    with pytest.raises(SourceError, match="malformed or truncated JSON"):
        parse_daily_scrape(scrape[:300], identity=identity, url="u")


def test_history_errors(identity):
    content = data("jasontrigg0_history", "alltime.csv")
    with pytest.raises(SourceError, match="fields where the header has 6"):
        parse_history_csv(content[: len(content) // 2 - 7], identity=identity, url="u")
    with pytest.raises(SourceError, match=r"the table is missing required columns: rating \(it has: key, "):
        parse_history_csv(content.replace(b"rating", b"elo", 1), identity=identity, url="u")
    with pytest.raises(SourceError, match=r"no rows \(empty table\)"):
        parse_history_csv(content.split(b"\n", 1)[0], identity=identity, url="u")


# -- recordings ------------------------------------------------------------------------------------

def check_recordings(root: Path, identity: Identity) -> dict[tuple[str, int], int]:
    source = LmarenaSource(identity)
    found = source.recordings(root)
    families: dict[tuple[str, int], int] = {}
    for r in found:
        families[(r.family, r.priority)] = families.get((r.family, r.priority), 0) + 1
        assert r.as_of.tzinfo is not None
        snaps = source.load(r)
        assert snaps and all(s.entries for s in snaps)
        assert {s.board.id for s in snaps} == set(r.board_ids)
        assert all(s.as_of.date() == r.as_of.date() for s in snaps)
    assert not any(r.path.name in ("latest.json", "scatterplot-data_2025-12-17.json") for r in found)
    assert not any("image" in r.path.name for r in found)
    return families


def test_recordings_families_and_all_load(identity):
    assert check_recordings(RECORDED, identity) == {
        (FAMILY_LMSYS_CSV, 10): 5, (FAMILY_LMARENA_CSV, 10): 2, (FAMILY_CATALOG, 20): 5,
        (FAMILY_HISTORY, 30): 4, (FAMILY_SCRAPE, 40): 4}


@pytest.mark.whole_history
def test_whole_recorded_history_families_and_all_load(recordings, identity):
    started = time.perf_counter()
    assert check_recordings(recordings, identity) == {
        (FAMILY_LMSYS_CSV, 10): 88, (FAMILY_LMARENA_CSV, 10): 8, (FAMILY_CATALOG, 20): 10,
        (FAMILY_HISTORY, 30): 105, (FAMILY_SCRAPE, 40): 96,
    }
    assert time.perf_counter() - started < 20


@pytest.mark.whole_history
def test_whole_recorded_files_row_counts(recordings, identity):
    assert len(lmsys("2025-01-24", identity, recordings).entries) == 190
    assert len(lmsys("2024-06-19", identity, recordings).entries) == 109
    assert len(lmsys("2024-10-16", identity, recordings).entries) == 152
    assert len(catalog("leaderboard-data_2025-01-28.json", identity, recordings).entries) == 195
    assert len(catalog("leaderboard-vision_2025-12-11.json", identity, recordings).entries) == 87
    snaps = history(identity, recordings)
    assert len(snaps) == 105 and len(snaps["2025-03-26"].entries) == 220  # 221 rows, yi-34b-chat twice
    [scrape] = parse_daily_scrape(data("arena_ai_daily_scrape", "2026-04-12", "vision.json", root=recordings),
                                  identity=identity, url="u")
    assert len(scrape.entries) == 71


# -- the rows API (datasets-server), as recorded pages ---------------------------------------------

PUBLISHED = "2025-08-04"


def live_row(name, org, licence, rating, lower, upper, votes, rank, category="overall"):
    return {"model_name": name, "organization": org, "license": licence, "rating": rating,
            "rating_lower": lower, "rating_upper": upper, "variance": 6.5, "vote_count": votes, "rank": rank,
            "category": category, "leaderboard_publish_date": PUBLISHED}


# Real rows of the 2025-08-04 text board (fboulnois lmarena_text_2025-08-04.csv) in the dataset's shape.
SMALL_ROWS = [
    live_row("gemini-2.5-pro", "Google", "Proprietary", 1470.0, 1465.0, 1475.0, 26019, 1),
    live_row("glm-4.5", "Z.ai", "MIT", 1434.0, 1425.0, 1443.0, 4112, 3),
    live_row("deepseek-r1-0528", "DeepSeek", "MIT", 1427.0, 1422.0, 1432.0, 18284, 8),
    live_row("gemini-2.5-pro", "Google", "Proprietary", 1481.0, 1474.0, 1488.0, 9000, 1, category="coding"),
]


def page(rows, total=None, offset=0):
    return {"features": [{"feature_idx": 0, "name": "model_name", "type": {"dtype": "string"}}],
            "rows": [{"row_idx": offset + i, "row": r, "truncated_cells": []} for i, r in enumerate(rows)],
            "num_rows_total": len(rows) if total is None else total, "num_rows_per_page": 100,
            "partial": False}


def test_rows_api_pages_add_up_to_one_snapshot():
    rows = [live_row(f"model-{i}", "Org", "MIT", 1500.0 - i, 1490.0 - i, 1510.0 - i, 1000, i + 1)
            for i in range(230)] + [dict(SMALL_ROWS[3])]
    pages = [json.dumps(page(rows[o:o + 100], total=len(rows), offset=o)).encode() for o in (0, 100, 200)]
    [snap] = parse_dataset_pages(pages, identity=Identity(), board=TEXT, method="default", url="u",
                                 fetched_at=DAY)
    assert len(snap.entries) == 230 and snap.as_of == datetime(2025, 8, 4, tzinfo=UTC)
    assert [e.rank for e in snap.entries[:3]] == [1, 1, 1]  # +/-10 intervals overlap their neighbours
    assert one(snap, "model-25").rank == 6  # five models (0..4) sit wholly above it


def test_rows_api_accepts_renamed_rating_q025_q975():
    rows = [{k.replace("rating_lower", "rating_q025").replace("rating_upper", "rating_q975"): v
             for k, v in r.items()} for r in SMALL_ROWS]
    [snap] = parse_dataset_pages([json.dumps(page(rows)).encode()], identity=Identity(), board=TEXT,
                                 method="default", url="u", fetched_at=DAY)
    assert (snap.entries[0].ci_lower, snap.entries[0].ci_upper) == (1465.0, 1475.0)
    assert [e.rank for e in snap.entries] == [1, 2, 2]


@pytest.mark.parametrize(("doc", "message"), [
    (page([dict(r, category="coding") for r in SMALL_ROWS]), "no `overall` rows"),
    (page([{k: v for k, v in r.items() if k != "rating"} for r in SMALL_ROWS]),
     r"required field\(s\) missing: rating"),
    (page([]), r"no rows \(empty split\)"),
    (dict(page(SMALL_ROWS), partial=True), "partial: true"),
    (dict(page(SMALL_ROWS), rows=[{"row_idx": 0, "row": SMALL_ROWS[0], "truncated_cells": ["license"]}]),
     "cells cut by the datasets-server: license"),
    (page(SMALL_ROWS, total=250), "got 4 rows where num_rows_total is 250"),
    ({"error": "The dataset does not exist."}, "not a datasets-server rows page"),
])
def test_rows_api_errors(doc, message):
    with pytest.raises(SourceError, match=message):
        parse_dataset_pages([json.dumps(doc).encode()], identity=Identity(), board=TEXT, method="default",
                            url="u", fetched_at=DAY)
