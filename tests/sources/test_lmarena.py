"""LMArena source: every recorded history shape, the live dataset fetch with paging, and errors."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources import lmarena
from leaderwatch.sources.base import SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.lmarena import (
    BOARDS,
    FAMILY_CATALOG,
    FAMILY_HISTORY,
    FAMILY_LMARENA_CSV,
    FAMILY_LMSYS_CSV,
    FAMILY_SCRAPE,
    TEXT,
    TEXT_STYLE_CONTROL,
    VISION,
    WEBDEV,
    LmarenaSource,
    catalog_board,
    open_weights_of,
    parse_catalog_json,
    parse_daily_scrape,
    parse_dataset_pages,
    parse_fboulnois_csv,
    parse_history_csv,
)

DAY = datetime(2025, 1, 24, tzinfo=UTC)


async def no_sleep(_: float) -> None:
    return None


def data(recordings: Path, *parts: str) -> bytes:
    return recordings.joinpath("lmarena", *parts).read_bytes()


def lmsys(recordings: Path, day: str, identity: Identity):
    [snap] = parse_fboulnois_csv(data(recordings, "fboulnois_lmsys_csv", f"lmsys_{day}.csv"),
                                 identity=identity, board=TEXT, url="test://lmsys", as_of=DAY, fetched_at=DAY)
    return snap


def catalog(recordings: Path, name: str, identity: Identity):
    path = recordings / "lmarena" / "arena_catalog" / name
    target = catalog_board(path)
    assert target is not None
    board, method, as_of = target
    [snap] = parse_catalog_json(path.read_bytes(), identity=identity, board=board, method=method,
                                url="test://catalog", as_of=as_of, fetched_at=as_of)
    return snap


def one(snapshot, name: str):
    [entry] = [e for e in snapshot.entries if e.name == name]
    return entry


def test_boards_are_the_four_promised():
    source = LmarenaSource(Identity())
    assert [b.id for b in source.boards()] == [
        "lmarena/text", "lmarena/text-style-control", "lmarena/vision", "lmarena/webdev"]
    for board in BOARDS:
        assert board.has_ci and board.higher_is_better and board.metric == "Arena score"
        assert board.url.startswith("https://arena.ai/leaderboard/")


# -- fboulnois lmsys.csv ----------------------------------------------------------------------------

def test_lmsys_2025_01_24_deepseek_r1(recordings, identity):
    snap = lmsys(recordings, "2025-01-24", identity)
    assert (snap.board, snap.origin, snap.method, snap.truncated) == (
        TEXT, "fboulnois-lmsys-csv", "default", False)
    assert len(snap.entries) == 190
    r1 = one(snap, "DeepSeek-R1")
    assert (r1.rank, r1.score, r1.organization, r1.votes) == (3, 1357.0, "DeepSeek", 1883)
    assert (r1.ci_lower, r1.ci_upper) == (1344.0, 1369.0)
    assert r1.open_weights is True  # MIT
    assert r1.model_key == "deepseek-r1"


def test_lmsys_2024_06_19_arena_elo_column(recordings, identity):
    snap = lmsys(recordings, "2024-06-19", identity)
    assert len(snap.entries) == 109
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes) == ("GPT-4o-2024-05-13", 1, 1287.0, 42046)
    llama = one(snap, "Llama-3-70b-Instruct")
    assert (llama.rank, llama.score, llama.ci_lower, llama.ci_upper) == (12, 1207.0, 1205.0, 1210.0)
    assert (llama.votes, llama.organization, llama.open_weights) == (135075, "Meta", True)
    # LMArena's CI-based rank has ties: two Gemini rows share rank 2.
    assert [e.rank for e in snap.entries[:3]] == [1, 2, 2]


def test_lmsys_2024_10_16_rank_stylectrl_column_is_not_the_rank(recordings, identity):
    snap = lmsys(recordings, "2024-10-16", identity)
    assert len(snap.entries) == 152
    llama = one(snap, "Llama-3-70b-Instruct")  # rank 39, rank_stylectrl 38
    assert (llama.rank, llama.score, llama.ci_lower, llama.ci_upper, llama.votes) == (
        39, 1206.0, 1204.0, 1208.0, 163997)
    assert [(e.name, e.rank) for e in snap.entries[:3]] == [
        ("ChatGPT-4o-latest (2024-09-03)", 1), ("o1-preview", 1), ("o1-mini", 3)]


def test_lmsys_licence_typo_propretary_is_proprietary(recordings, identity):
    snap = lmsys(recordings, "2024-12-12", identity)
    haiku = one(snap, "Claude 3.5 Haiku (20241022)")
    assert (haiku.rank, haiku.score, haiku.open_weights) == (32, 1243.0, False)


def test_command_r_and_command_r_plus_both_kept(recordings, identity):
    snap = lmsys(recordings, "2024-10-16", identity)
    names = {e.name for e in snap.entries if e.name.startswith("Command R")}
    assert {"Command R (08-2024)", "Command R+ (08-2024)", "Command R (04-2024)",
            "Command R+ (04-2024)"} <= names


@pytest.mark.parametrize(("licence", "expected"), [
    ("Proprietary", False), ("proprietary", False), ("Propretary", False), ("MIT", True),
    ("Other", True), ("Non-commercial", True), ("open", True), ("", None), ("-", None), ("N/A", None),
    (None, None),
])
def test_open_weights_of(licence, expected):
    assert open_weights_of(licence) is expected


# -- fboulnois lmarena_{text,vision}.csv ------------------------------------------------------------

def test_lmarena_vision_2025_08_04(recordings, identity):
    content = data(recordings, "fboulnois_lmarena_csv", "lmarena_vision_2025-08-04.csv")
    [snap] = parse_fboulnois_csv(content, identity=identity, board=VISION, url="test://v", as_of=DAY,
                                 fetched_at=DAY, origin="fboulnois-lmarena-csv")
    assert (snap.board, snap.origin, len(snap.entries)) == (VISION, "fboulnois-lmarena-csv", 86)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes, top.ci_lower, top.ci_upper) == (
        "Gemini-2.5-Pro", 1, 1317.0, 7681, 1308.0, 1326.0)


def test_lmarena_text_2025_08_04_duplicate_row_kept_once(recordings, identity):
    content = data(recordings, "fboulnois_lmarena_csv", "lmarena_text_2025-08-04.csv")
    [snap] = parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://t", as_of=DAY,
                                 fetched_at=DAY)
    assert len(snap.entries) == 265  # 266 rows, Yi-34B-Chat listed twice (ranks 200 and 201)
    yi = one(snap, "Yi-34B-Chat")
    assert (yi.rank, yi.score, yi.organization) == (200, 1134.0, "01 AI")
    glm = one(snap, "GLM-4.5")
    assert (glm.rank, glm.score, glm.votes, glm.open_weights) == (3, 1434.0, 4112, True)


# -- arena-catalog JSON ----------------------------------------------------------------------------

def test_catalog_2025_01_28_holds_style_controlled_ratings(recordings, identity):
    snap = catalog(recordings, "leaderboard-data_2025-01-28.json", identity)
    assert (snap.board, snap.method, snap.origin) == (TEXT_STYLE_CONTROL, "style-control", "arena-catalog")
    assert snap.as_of == datetime(2025, 1, 28, tzinfo=UTC)
    assert len(snap.entries) == 195
    o1 = snap.entries[0]
    assert (o1.name, o1.rank, round(o1.score)) == ("o1-2024-12-17", 1, 1323)
    assert o1.score == pytest.approx(1322.91512983838)
    assert o1.ci_lower == pytest.approx(1317.8953058096051)
    assert o1.ci_upper == pytest.approx(1329.2930661497314)
    assert o1.votes is None
    r1 = one(snap, "deepseek-r1")
    assert (r1.rank, round(r1.score)) == (4, 1316)


def test_catalog_2025_03_04_holds_default_ratings(recordings, identity):
    snap = catalog(recordings, "leaderboard-data_2025-03-04.json", identity)
    assert (snap.board, snap.method) == (TEXT, "default")
    grok = snap.entries[0]
    assert (grok.name, grok.rank, round(grok.score)) == ("grok-3-preview-02-24", 1, 1412)
    # The same figure fboulnois copied from the official table that day.
    assert one(lmsys(recordings, "2025-03-04", identity), "Grok-3-Preview-02-24").score == 1412.0
    style = catalog(recordings, "leaderboard-data-style-control_2025-03-04.json", identity)
    assert style.board == TEXT_STYLE_CONTROL
    assert (style.entries[0].name, round(style.entries[0].score)) == ("gpt-4.5-preview-2025-02-27", 1370)


def test_catalog_vision_2025_12_11(recordings, identity):
    snap = catalog(recordings, "leaderboard-vision_2025-12-11.json", identity)
    assert (snap.board, len(snap.entries)) == (VISION, 87)
    assert (snap.entries[0].name, round(snap.entries[0].score)) == ("gemini-3-pro", 1330)


@pytest.mark.parametrize(("name", "board", "method"), [
    ("leaderboard-data_2025-01-28.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-data_2025-03-04.json", TEXT, "default"),
    ("leaderboard-data-style-control_2025-03-04.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-text_2025-05-24.json", TEXT, "default"),
    ("leaderboard-text-style-control_2025-11-06.json", TEXT_STYLE_CONTROL, "style-control"),
    ("leaderboard-vision_2025-12-11.json", VISION, "default"),
    ("leaderboard-vision-style-control_2025-12-11.json", None, None),
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

def test_scrape_code_is_code_arena_on_the_webdev_board(recordings, identity):
    [snap] = parse_daily_scrape(data(recordings, "arena_ai_daily_scrape", "2026-03-19", "code.json"),
                                identity=identity, url="test://scrape")
    assert (snap.board, snap.method, snap.origin, snap.truncated) == (
        WEBDEV, "code-arena", "arena-ai-daily-scrape", True)
    assert snap.as_of == datetime(2026, 3, 19, 14, 51, 18, 40878, tzinfo=UTC)
    assert len(snap.entries) == 55
    first, second = snap.entries[:2]
    assert (first.name, first.rank, first.score, first.votes) == ("claude-opus-4-6", 1, 1547.0, 4090)
    assert (first.ci_lower, first.ci_upper, first.organization, first.open_weights) == (
        1536.0, 1558.0, "Anthropic", False)
    # The rank is the position on the page: equal scores keep ranks 1 and 2 as published.
    assert (second.name, second.rank, second.score) == ("claude-opus-4-6-thinking", 2, 1547.0)


def test_scrape_text_is_the_style_controlled_default_view(recordings, identity):
    [snap] = parse_daily_scrape(data(recordings, "arena_ai_daily_scrape", "2026-04-19", "text.json"),
                                identity=identity, url="test://scrape")
    assert (snap.board, snap.method, len(snap.entries)) == (TEXT_STYLE_CONTROL, "style-control", 50)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.votes) == ("claude-opus-4-7-thinking", 1, 1505.0, 2618)
    assert (top.ci_lower, top.ci_upper) == (1494.0, 1516.0)


def test_scrape_null_licence_is_unknown(recordings):
    [snap] = parse_daily_scrape(data(recordings, "arena_ai_daily_scrape", "2026-04-12", "vision.json"),
                                identity=Identity(), url="test://scrape")
    assert (snap.board, len(snap.entries)) == (VISION, 71)
    gemma = one(snap, "gemma-3-27b-it")
    assert (gemma.rank, gemma.score, gemma.votes, gemma.open_weights) == (59, 1158.0, 17777, None)


def test_scrape_model_count_mismatch_is_an_error(recordings, identity):
    doc = json.loads(data(recordings, "arena_ai_daily_scrape", "2026-03-19", "text.json"))
    doc["models"] = doc["models"][:10]
    with pytest.raises(SourceError, match="model_count is 30 but 10 models"):
        parse_daily_scrape(json.dumps(doc).encode(), identity=identity, url="test://scrape")


# -- jasontrigg0 history ---------------------------------------------------------------------------

def history(recordings, identity):
    content = data(recordings, "jasontrigg0_history", "alltime.csv")
    return {s.as_of.date().isoformat(): s for s in parse_history_csv(content, identity=identity, url="t://h")}


def test_history_dates_methods_and_rows(recordings, identity):
    snaps = history(recordings, identity)
    assert len(snaps) == 105
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
    assert len(last.entries) == 220  # 221 rows, yi-34b-chat listed twice
    top = last.entries[0]
    assert (top.name, top.rank, round(top.score, 2)) == ("Gemini-2.5-Pro-Exp-03-25", 1, 1442.96)
    assert one(last, "Grok-3-Preview-02-24").rank == 3


def test_history_file_is_parsed_once_for_all_its_recordings(recordings, identity, monkeypatch):
    calls = []
    real = lmarena.parse_history_csv

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lmarena, "parse_history_csv", counting)
    source = LmarenaSource(identity)
    parts = [r for r in source.recordings(recordings) if r.family == FAMILY_HISTORY]
    assert len(parts) == 105
    assert [s.as_of for r in parts[:3] for s in source.load(r)] == [r.as_of for r in parts[:3]]
    assert source.load(parts[-1])[0].as_of == datetime(2025, 3, 26, tzinfo=UTC)
    assert len(calls) == 1


# -- errors ----------------------------------------------------------------------------------------

def test_truncated_csv(recordings, identity):
    content = data(recordings, "fboulnois_lmsys_csv", "lmsys_2025-01-24.csv")
    cut = content[: content.index(b"DeepSeek-R1") + 5]  # mid-row: the row has 3 fields
    with pytest.raises(SourceError, match=r"3 fields where the header has 10 \(truncated or malformed"):
        parse_fboulnois_csv(cut, identity=identity, board=TEXT, url="test://cut", as_of=DAY, fetched_at=DAY)


def test_renamed_score_column(recordings, identity):
    content = data(recordings, "fboulnois_lmsys_csv", "lmsys_2025-01-24.csv")
    content = content.replace(b"arena_score", b"score", 1)
    missing = r"the table is missing required columns: arena_score \(or arena_elo\) \(it has: rank, "
    with pytest.raises(SourceError, match=missing):
        parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://r", as_of=DAY, fetched_at=DAY)


def test_header_only_csv(recordings, identity):
    content = data(recordings, "fboulnois_lmsys_csv", "lmsys_2025-01-24.csv").split(b"\n", 1)[0] + b"\n"
    with pytest.raises(SourceError, match=r"no rows \(empty table\)"):
        parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://h", as_of=DAY, fetched_at=DAY)


def test_unparseable_score(recordings, identity):
    content = data(recordings, "fboulnois_lmsys_csv", "lmsys_2025-01-24.csv").replace(b",1357,", b",n/a!,", 1)
    with pytest.raises(SourceError, match=r"arena_score: unparseable number 'n/a!'"):
        parse_fboulnois_csv(content, identity=identity, board=TEXT, url="test://n", as_of=DAY, fetched_at=DAY)
    nan = data(recordings, "fboulnois_lmsys_csv", "lmsys_2025-01-24.csv").replace(b",1357,", b",NaN,", 1)
    with pytest.raises(SourceError, match=r"arena_score: unparseable number 'NaN'"):
        parse_fboulnois_csv(nan, identity=identity, board=TEXT, url="test://n", as_of=DAY, fetched_at=DAY)


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


def test_truncated_json(recordings, identity):
    content = data(recordings, "arena_catalog", "leaderboard-text_2025-05-24.json")
    with pytest.raises(SourceError, match="malformed or truncated JSON"):
        parse_catalog_json(content[: len(content) // 2], identity=identity, board=TEXT, method="", url="u",
                           as_of=DAY, fetched_at=DAY)
    scrape = data(recordings, "arena_ai_daily_scrape", "2026-03-19", "code.json")
    with pytest.raises(SourceError, match="malformed or truncated JSON"):
        parse_daily_scrape(scrape[:1000], identity=identity, url="u")


def test_history_errors(recordings, identity):
    content = data(recordings, "jasontrigg0_history", "alltime.csv")
    with pytest.raises(SourceError, match="fields where the header has 6"):
        parse_history_csv(content[: len(content) // 2 - 7], identity=identity, url="u")
    with pytest.raises(SourceError, match=r"the table is missing required columns: rating \(it has: key, "):
        parse_history_csv(content.replace(b"rating", b"elo", 1), identity=identity, url="u")
    with pytest.raises(SourceError, match=r"no rows \(empty table\)"):
        parse_history_csv(content.split(b"\n", 1)[0], identity=identity, url="u")


# -- recordings ------------------------------------------------------------------------------------

def test_recordings_families_and_all_load(recordings, identity):
    source = LmarenaSource(identity)
    found = source.recordings(recordings)
    families = {}
    for r in found:
        families.setdefault((r.family, r.priority), []).append(r)
    assert {k: len(v) for k, v in families.items()} == {
        (FAMILY_LMSYS_CSV, 10): 88, (FAMILY_LMARENA_CSV, 10): 8, (FAMILY_CATALOG, 20): 10,
        (FAMILY_HISTORY, 30): 105, (FAMILY_SCRAPE, 40): 96,
    }
    assert not any(r.path.name in ("latest.json", "scatterplot-data_2025-12-17.json") for r in found)
    assert not any("image" in r.path.name for r in found)
    boards = set()
    started = time.perf_counter()
    for r in found:
        assert r.as_of.tzinfo is not None
        snaps = source.load(r)
        assert snaps and all(s.entries for s in snaps)
        assert {s.board.id for s in snaps} == set(r.board_ids)
        assert all(s.as_of.date() == r.as_of.date() for s in snaps)
        boards.update(r.board_ids)
    assert time.perf_counter() - started < 20
    assert boards == {b.id for b in BOARDS}


# -- live: the datasets-server rows API ------------------------------------------------------------

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


def check_request(request: httpx.Request) -> dict[str, str]:
    assert request.url.scheme == "https" and request.url.host == "datasets-server.huggingface.co"
    assert request.url.path == "/rows"
    assert b"dataset=lmarena-ai%2Fleaderboard-dataset" in request.url.query
    params = dict(request.url.params)
    assert params["dataset"] == "lmarena-ai/leaderboard-dataset"
    assert params["split"] == "latest" and params["length"] == "100"
    assert params["config"] in ("text", "text_style_control", "vision", "webdev")
    return params


async def fetch_with(handler):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await LmarenaSource(Identity()).fetch(Fetcher(client, sleep=no_sleep))


async def test_fetch_every_config_one_page():
    seen = []

    def handler(request):
        params = check_request(request)
        seen.append((params["config"], params["offset"]))
        return httpx.Response(200, json=page(SMALL_ROWS))

    snaps = await fetch_with(handler)
    assert seen == [("text", "0"), ("text_style_control", "0"), ("vision", "0"), ("webdev", "0")]
    assert [(s.board, s.method) for s in snaps] == [
        (TEXT, "default"), (TEXT_STYLE_CONTROL, "style-control"), (VISION, "default"), (WEBDEV, "")]
    snap = snaps[0]
    assert snap.origin == "lmarena-dataset" and not snap.truncated
    assert snap.as_of == datetime(2025, 8, 4, tzinfo=UTC)
    assert snap.fetched_at.tzinfo is not None and snap.fetched_at > snap.as_of
    assert [(e.name, e.rank, e.score) for e in snap.entries] == [
        ("gemini-2.5-pro", 1, 1470.0), ("glm-4.5", 3, 1434.0), ("deepseek-r1-0528", 8, 1427.0)]
    top = snap.entries[0]
    assert (top.ci_lower, top.ci_upper, top.votes, top.organization, top.open_weights) == (
        1465.0, 1475.0, 26019, "Google", False)
    assert snap.entries[1].open_weights is True


def csv_rows_as_dataset(recordings):
    text = data(recordings, "fboulnois_lmarena_csv", "lmarena_text_2025-08-04.csv").decode()
    rows, names = [], set()
    for r in csv.DictReader(io.StringIO(text)):
        if r["model"] in names:
            continue
        names.add(r["model"])
        score = float(r["arena_score"])
        plus, minus = r["95_pct_ci"].split("/")
        rows.append(live_row(r["model"], r["organization"], r["license"], score, score + float(minus),
                             score + float(plus), int(r["votes"]), int(r["rank"])))
    return rows


async def test_fetch_pages_until_num_rows_total(recordings):
    overall = csv_rows_as_dataset(recordings)
    rows = overall + [dict(r, category="coding") for r in overall[:20]]
    assert len(rows) == 285
    offsets = []

    def handler(request):
        params = check_request(request)
        if params["config"] != "text":
            return httpx.Response(304)
        offset = int(params["offset"])
        offsets.append(offset)
        return httpx.Response(200, json=page(rows[offset:offset + 100], total=len(rows), offset=offset))

    [snap] = await fetch_with(handler)
    assert offsets == [0, 100, 200]
    assert snap.board == TEXT and len(snap.entries) == 265
    glm = one(snap, "GLM-4.5")
    assert (glm.rank, glm.score, glm.ci_lower, glm.ci_upper, glm.votes) == (3, 1434.0, 1425.0, 1443.0, 4112)


async def test_fetch_accepts_renamed_rating_q025_q975():
    rows = [{k.replace("rating_lower", "rating_q025").replace("rating_upper", "rating_q975"): v
             for k, v in r.items()} for r in SMALL_ROWS]
    [snap] = parse_dataset_pages([json.dumps(page(rows)).encode()], identity=Identity(), board=TEXT,
                                 method="default", url="u", fetched_at=DAY)
    assert (snap.entries[0].ci_lower, snap.entries[0].ci_upper) == (1465.0, 1475.0)


async def test_fetch_304_everywhere_is_empty():
    assert await fetch_with(lambda request: httpx.Response(304)) == []


async def test_fetch_html_page_is_an_error():
    with pytest.raises(SourceError, match="HTML page"):
        await fetch_with(lambda request: httpx.Response(200, content=HTML))


async def test_fetch_5xx_is_an_error():
    with pytest.raises(SourceError, match="HTTP 503 after 4 attempts"):
        await fetch_with(lambda request: httpx.Response(503))


async def test_fetch_dataset_changed_mid_paging(recordings):
    rows = csv_rows_as_dataset(recordings)

    def handler(request):
        params = check_request(request)
        offset = int(params["offset"])
        total = len(rows) if offset == 0 else len(rows) + 1
        return httpx.Response(200, json=page(rows[offset:offset + 100], total=total, offset=offset))

    with pytest.raises(SourceError, match="num_rows_total changed while paging"):
        await fetch_with(handler)


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
def test_dataset_errors(doc, message):
    with pytest.raises(SourceError, match=message):
        parse_dataset_pages([json.dumps(doc).encode()], identity=Identity(), board=TEXT, method="default",
                            url="u", fetched_at=DAY)
