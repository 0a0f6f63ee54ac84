"""OpenCompass OpenVLM source: the excerpt's boards, the average rule, errors, the live fetch, and `versus`.

Reads only tests/data/openvlm/ (see its README): nothing outside the repository.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leaderwatch.alerts.suites import board_matches
from leaderwatch.sources.base import Snapshot, SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.openvlm import (
    AVERAGE,
    BOARDS,
    FAMILY,
    LEADERBOARD_URL,
    LIVE_URL,
    ORIGIN,
    OpenVLMSource,
    numpy_mean,
    parse_openvlm,
    snapshot_date,
)
from leaderwatch.sources.registry import all_boards, all_sources

DATA = Path(__file__).resolve().parent.parent / "data" / "openvlm"
EXCERPT = DATA / "OpenVLM_2025-09-17.json"
FILE_DAY = datetime(2025, 9, 17, tzinfo=UTC)
FETCHED = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
BOARD_IDS = ["opencompass/mmbench", "opencompass/mmstar", "opencompass/mmmu", "opencompass/mathvista",
             "opencompass/ocrbench", "opencompass/ai2d", "opencompass/hallusionbench", "opencompass/mmvet",
             "opencompass/average"]


async def no_sleep(_: float) -> None:
    return None


def excerpt() -> dict[str, Any]:
    return json.loads(EXCERPT.read_bytes())


def encoded(data: object) -> bytes:
    return json.dumps(data).encode()


def parse(content: bytes | None = None, identity: Identity | None = None) -> dict[str, Snapshot]:
    snaps = parse_openvlm(EXCERPT.read_bytes() if content is None else content,
                          identity=identity or Identity.load(), url="test://openvlm", fetched_at=FETCHED)
    return {s.board.id: s for s in snaps}


def scores(snap: Snapshot) -> list[tuple[int, str, float]]:
    return [(e.rank, e.name, e.score) for e in snap.entries]


def row(snap: Snapshot, name: str):
    [found] = [e for e in snap.entries if e.name == name]
    return found


def error_of(data: object) -> str:
    with pytest.raises(SourceError) as info:
        parse(encoded(data))
    assert info.value.source == "opencompass" and info.value.url == "test://openvlm"
    return info.value.reason


# -- the boards of the excerpt ----------------------------------------------------------------------

def test_one_snapshot_per_benchmark_and_the_average_as_of_the_files_time():
    snaps = parse()
    assert list(snaps) == BOARD_IDS == [b.id for b in BOARDS]
    assert {k: len(s.entries) for k, s in snaps.items()} == {
        **{k: 15 for k in BOARD_IDS}, "opencompass/mmvet": 14, "opencompass/average": 14}
    for s in snaps.values():
        # `time` 20250917132916: the day the file was made, not the day it was fetched.
        assert (s.as_of, s.fetched_at, s.origin, s.truncated) == (FILE_DAY, FETCHED, ORIGIN, False)
        assert s.board.url == LEADERBOARD_URL and s.board.higher_is_better and not s.board.archived


def test_mmbench_is_the_mean_of_the_english_and_chinese_tests_rounded_as_the_space_does():
    mmbench = parse()["opencompass/mmbench"]
    # EN 88.4, CN 87.9 -> 88.15 -> 88.2; EN 86.1, CN 85.8 -> 85.95 (85.9499... in binary) -> 85.9.
    assert scores(mmbench)[:5] == [(1, "Qwen2.5-VL-72B", 88.2), (2, "InternVL2.5-78B", 87.2),
                                   (3, "Qwen2-VL-72B", 85.9), (4, "Taiyi", 84.8),
                                   (5, "LLaVA-OneVision-72B", 84.5)]
    assert mmbench.board.title.startswith("MMBench v1.1")


def test_boards_without_published_ranks_use_competition_ranks():
    snaps = parse()
    assert scores(snaps["opencompass/mmbench"])[10:13] == [
        (11, "DeepSeek-VL2", 80.2), (11, "Pixtral-Large-Instruct-2411", 80.2),
        (13, "GPT-4v (0409, detail-high)", 79.1)]
    assert scores(snaps["opencompass/ocrbench"])[4:8] == [
        (5, "DeepSeek-VL2", 811.0), (6, "GPT-4o (0806, detail-high)", 806.0),
        (6, "GPT-4o (1120, detail-high)", 806.0), (8, "Claude3.5-Sonnet-20241022", 798.0)]
    assert scores(snaps["opencompass/mmmu"])[:3] == [
        (1, "GPT-4o (1120, detail-high)", 70.7), (2, "InternVL2.5-78B", 70.0),
        (3, "GPT-4o (0806, detail-high)", 69.9)]


def test_ocrbench_board_is_out_of_1000_and_counts_a_tenth_in_the_average():
    snaps = parse()
    ocr = snaps["opencompass/ocrbench"]
    assert ocr.board.metric == "final score (of 1000)"
    assert scores(ocr)[:2] == [(1, "Qwen2.5-VL-72B", 882.0), (2, "Qwen2-VL-72B", 877.0)]
    # Qwen2-VL-72B: 85.9, 68.6, 64.3, 69.7, 877 / 10, 88.3, 58.1, 73.9 -> 74.5625 -> 74.6.
    assert row(snaps["opencompass/average"], "Qwen2-VL-72B").score == 74.6
    assert numpy_mean([85.9, 68.6, 64.3, 69.7, 87.7, 88.3, 58.1, 73.9]) == pytest.approx(74.5625)


def test_average_board_leaves_off_a_model_missing_a_main_benchmark():
    snaps = parse()
    average = snaps["opencompass/average"]
    assert average.board == AVERAGE
    assert scores(average) == [
        (1, "Qwen2.5-VL-72B", 76.2), (2, "InternVL2.5-78B", 75.4), (3, "Qwen2-VL-72B", 74.6),
        (4, "GPT-4o (1120, detail-high)", 72.0), (5, "Gemini-1.5-Pro-002", 71.9),
        (6, "GPT-4o (0806, detail-high)", 71.6), (7, "Claude3.5-Sonnet-20241022", 70.6),
        (8, "GPT-4o (0513, detail-high)", 69.9), (9, "Pixtral-Large-Instruct-2411", 69.6),
        (10, "LLaVA-OneVision-72B", 68.2), (11, "DeepSeek-VL2", 65.4),
        (12, "GPT-4v (0409, detail-high)", 63.4), (13, "Llama-3.2-90B-Vision-Instruct", 62.7),
        (14, "GLM-4v-9B", 60.4)]
    # Taiyi has no MMVet: no average (the space shows none), but it keeps its other seven boards.
    on = [k for k, s in snaps.items() if any(e.name == "Taiyi" for e in s.entries)]
    assert on == [k for k in BOARD_IDS if k not in ("opencompass/mmvet", "opencompass/average")]


def test_average_rounds_half_to_even_on_numpys_sum_like_the_space():
    # GPT-4o (0806): the eight scores sum to 71.55 exactly in numpy's pairwise order; numpy.round
    # gives 71.6 where Python's round(71.55, 1) gives 71.5. LLaVA-OneVision-72B: 68.15 -> 68.2.
    average = parse()["opencompass/average"]
    assert row(average, "GPT-4o (0806, detail-high)").score == 71.6
    assert row(average, "LLaVA-OneVision-72B").score == 68.2
    gpt = [80.5, 64.7, 69.9, 62.7, 80.6, 84.7, 54.2, 75.1]
    assert round(sum(gpt) / 8, 1) == 71.5 and round(numpy_mean(gpt) * 10) / 10 == 71.6


def test_organizations_countries_and_open_weights():
    snaps = parse()
    mmstar = snaps["opencompass/mmstar"]
    found = {e.name: (e.model_key, e.organization, e.countries, e.mixed, e.open_weights)
             for e in mmstar.entries}
    assert found == {
        "Qwen2.5-VL-72B": ("qwen2-5-vl-72b", "Alibaba", ("CN",), False, True),
        "InternVL2.5-78B": ("internvl2-5-78b", "Shanghai AI Lab", ("CN",), False, True),
        "Qwen2-VL-72B": ("qwen2-vl-72b", "Alibaba", ("CN",), False, True),
        "GPT-4o (1120, detail-high)": ("gpt-4o-20241120", "OpenAI", ("US",), False, False),
        "Gemini-1.5-Pro-002": ("gemini-1-5-pro-002", "Google", ("US",), False, False),
        "GPT-4o (0806, detail-high)": ("gpt-4o-20240806", "OpenAI", ("US",), False, False),
        "Claude3.5-Sonnet-20241022": ("claude-3-5-sonnet-20241022", "Anthropic", ("US",), False, False),
        "GPT-4o (0513, detail-high)": ("gpt-4o-20240513", "OpenAI", ("US",), False, False),
        "Pixtral-Large-Instruct-2411": ("pixtral-large-2411", "Mistral AI", ("FR",), False, True),
        # Org ByteDance; the name also matches the LLaVA project, which has no country.
        "LLaVA-OneVision-72B": ("llava-onevision-72b", "ByteDance", ("CN",), False, True),
        "DeepSeek-VL2": ("deepseek-vl2", "DeepSeek", ("CN",), False, True),
        "GPT-4v (0409, detail-high)": ("gpt-4-turbo-20240409", "OpenAI", ("US",), False, False),
        "Llama-3.2-90B-Vision-Instruct": ("llama-3-2-90b-vision-instruct", "Meta", ("US",), False, True),
        "GLM-4v-9B": ("glm-4v-9b", "Zhipu AI", ("CN",), False, True),
        "Taiyi": ("taiyi", "Megvii", ("CN",), False, False),
    }


def test_every_organization_of_the_excerpt_has_a_row_in_the_identity_table(identity):
    orgs = {e.organization for s in parse().values() for e in s.entries}
    assert orgs and all(o and identity.is_known_organization(o) for o in orgs), orgs


def test_keys_meet_the_arena_boards_keys(identity):
    # OpenVLM names the GPT runs by date and image detail; the arena by release. Same model, same key.
    for openvlm, arena in [("GPT-4o (0513, detail-high)", "gpt-4o-2024-05-13"),
                           ("GPT-4o (0806, detail-high)", "gpt-4o-2024-08-06"),
                           ("GPT-4v (0409, detail-high)", "gpt-4-turbo-2024-04-09"),
                           ("Claude3.5-Sonnet-20241022", "claude-3-5-sonnet-20241022"),
                           ("Qwen2-VL-72B", "qwen2-vl-72b"), ("Gemini-1.5-Pro-002", "gemini-1.5-pro-002"),
                           ("Pixtral-Large-Instruct-2411", "pixtral-large-2411"),
                           ("Llama-3.2-90B-Vision-Instruct", "llama-3.2-vision-90b-instruct")]:
        assert identity.key(openvlm) == identity.key(arena), openvlm


def test_org_is_canonicalized_and_the_name_is_the_methods():
    data = excerpt()
    results = data["results"]
    record = results.pop("InternVL2.5-78B")
    record["META"]["Org"] = "OpenGVLab"
    record["META"]["Method"] = ["InternVL2.5-78B", "https://huggingface.co/OpenGVLab/InternVL2_5-78B"]
    results["InternVL2_5-78B"] = record  # the toolkit's key; the space shows Method's name
    gpt = results["GPT-4o (0513, detail-high)"]
    del gpt["META"]["Method"], gpt["META"]["Org"], gpt["META"]["OpenSource"]
    mmstar = parse(encoded(data))["opencompass/mmstar"]
    intern = row(mmstar, "InternVL2.5-78B")
    assert (intern.organization, intern.countries) == ("Shanghai AI Lab", ("CN",))
    # Without Method, Org and OpenSource: the key as name, the organization guessed from the name.
    bare = row(mmstar, "GPT-4o (0513, detail-high)")
    assert (bare.organization, bare.countries, bare.open_weights) == ("OpenAI", ("US",), False)


@pytest.mark.parametrize(("stamp", "day"), [
    ("20250917132916", datetime(2025, 9, 17, tzinfo=UTC)),  # the file's form since 2025
    ("240917123000", datetime(2024, 9, 17, tzinfo=UTC)),  # YYMMDDhhmmss, the space's older reading
    ("20250917", datetime(2025, 9, 17, tzinfo=UTC)),
    (20250917, datetime(2025, 9, 17, tzinfo=UTC)),
])
def test_time_stamps(stamp, day):
    assert snapshot_date(stamp, url="u") == day


@pytest.mark.parametrize("stamp", ["2025-09-17", "20251317", "2025091", "", None, True, 2.5])
def test_bad_time_stamps(stamp):
    expected = r"`time` .* is no date stamp \(expected YYYYMMDD or YYYYMMDDhhmmss\)"
    with pytest.raises(SourceError, match=expected):
        snapshot_date(stamp, url="u")


# -- files that are not the leaderboard's -------------------------------------------------------------

def test_html_page_is_refused():
    with pytest.raises(SourceError, match="got an HTML page where the OpenVLM leaderboard JSON was expected"):
        parse(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")


def test_truncated_file_is_refused():
    with pytest.raises(SourceError, match="does not parse"):
        parse(EXCERPT.read_bytes()[:5000])


def test_missing_results_is_refused():
    assert error_of({"time": "20250917132916", "models": {}}) == (
        "no `results` object in the file (its keys: time, models)")
    stamp = "20250917132916"
    assert error_of({"time": stamp, "results": []}) == "`results` is a list, not an object of models"
    assert error_of({"time": stamp, "results": {}}) == "empty leaderboard: `results` holds no model"
    assert error_of([1, 2]) == "expected a JSON object with `time` and `results`, got a list"
    data = excerpt()
    del data["time"]
    assert error_of(data) == "`time` None is no date stamp (expected YYYYMMDD or YYYYMMDDhhmmss)"


def test_renamed_benchmark_key_is_refused():
    data = excerpt()
    for record in data["results"].values():
        record["MMStar_V2"] = record.pop("MMStar")
    reason = error_of(data)
    assert reason.startswith("no model has results for MMStar (renamed or removed?); "
                             "benchmarks in the file: ")
    assert "MMStar_V2" in reason and "META" not in reason
    data = excerpt()
    for record in data["results"].values():
        record.pop("MMBench_TEST_CN_V11")
    assert error_of(data).startswith("no model has results for MMBench_TEST_EN_V11 + MMBench_TEST_CN_V11 ")


def test_benchmark_without_its_score_is_refused():
    data = excerpt()
    data["results"]["Qwen2-VL-72B"]["MMMU_VAL"] = {"Accuracy": 64.3}
    assert error_of(data) == "model 'Qwen2-VL-72B': MMMU_VAL has no `Overall` score (it has: Accuracy)"
    data = excerpt()
    data["results"]["DeepSeek-VL2"]["OCRBench"].pop("Final Score")
    assert error_of(data).startswith(
        "model 'DeepSeek-VL2': OCRBench has no `Final Score` score (it has: Text Recognition, ")
    data = excerpt()
    data["results"]["GLM-4v-9B"]["AI2D"] = 71.2
    assert error_of(data) == "model 'GLM-4v-9B': AI2D is a float, not an object"
    data = excerpt()
    data["results"]["GLM-4v-9B"]["META"] = "Zhipu AI"
    assert error_of(data) == "model 'GLM-4v-9B': META is a str, not an object"
    data = excerpt()
    del data["results"]["GLM-4v-9B"]["META"]
    assert error_of(data) == "model 'GLM-4v-9B' lacks required field(s) META"


@pytest.mark.parametrize(("bench", "field", "value", "board"), [
    ("MMStar", "Overall", "n/a", "opencompass/mmstar"),
    ("MMStar", "Overall", None, "opencompass/mmstar"),
    ("MMStar", "Overall", True, "opencompass/mmstar"),
    ("MMStar", "Overall", 101.5, "opencompass/mmstar"),
    ("OCRBench", "Final Score", 1877, "opencompass/ocrbench"),
])
def test_non_numeric_or_impossible_score_drops_the_model_from_that_board(bench, field, value, board):
    # Issue 14: a broken score is a broken row, dropped and counted; the other boards keep the model.
    data = excerpt()
    data["results"]["Qwen2-VL-72B"][bench][field] = value
    boards = parse(encoded(data))
    assert "Qwen2-VL-72B" not in [e.name for e in boards[board].entries]
    assert boards[board].entries  # the rest of the board stands
    others = [b for b in boards.values() if b.board.id != board and "avg" not in b.board.id]
    assert any("Qwen2-VL-72B" in [e.name for e in b.entries] for b in others)


def test_numeric_text_scores_are_read():
    data = excerpt()
    data["results"]["Qwen2-VL-72B"]["MMStar"]["Overall"] = "68.6"
    assert row(parse(encoded(data))["opencompass/mmstar"], "Qwen2-VL-72B").score == 68.6


# -- the live fetch -----------------------------------------------------------------------------------

def fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=no_sleep)


async def test_live_fetch_then_304(identity):
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("if-none-match")))
        if request.headers.get("if-none-match") == '"openvlm-20250917"':
            return httpx.Response(304)
        return httpx.Response(200, content=EXCERPT.read_bytes(), headers={"etag": '"openvlm-20250917"'})

    source = OpenVLMSource(identity)
    http = fetcher(handler)
    before = datetime.now(UTC)
    snaps = await source.fetch(http)
    assert [s.board.id for s in snaps] == BOARD_IDS
    assert all(s.as_of == FILE_DAY and s.fetched_at >= before for s in snaps)
    assert await source.fetch(http) == []
    assert seen == [(LIVE_URL, None), (LIVE_URL, '"openvlm-20250917"')]
    assert LIVE_URL == "https://cdn.opencompass.org.cn/assets/OpenVLM.json"


async def test_live_html_error_page_is_a_source_error(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html><head><title>Certificate error</title></head></html>")

    with pytest.raises(SourceError) as info:
        await OpenVLMSource(identity).fetch(fetcher(handler))
    assert info.value.source == "opencompass" and info.value.url == LIVE_URL
    assert info.value.reason == "got an HTML page where data was expected"


async def test_refetched_unchanged_file_stores_nothing_new(identity, fresh_db):
    from leaderwatch.bot.pipeline.store import store_all

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=EXCERPT.read_bytes())  # no validators: a full answer each time

    source = OpenVLMSource(identity)
    first = store_all(fresh_db, await source.fetch(fetcher(handler)), LIVE_URL)
    again = store_all(fresh_db, await source.fetch(fetcher(handler)), LIVE_URL)
    assert [s.result.stored for s in first] == [True] * 9
    assert [s.result.stored for s in again] == [False] * 9
    assert fresh_db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 9


# -- recordings, the registry and the vision suite ------------------------------------------------------

def test_recordings_none_without_a_folder_then_one_per_dated_file(tmp_path, identity):
    source = OpenVLMSource(identity)
    assert source.recordings(tmp_path) == []
    folder = tmp_path / "opencompass"
    folder.mkdir()
    shutil.copy(EXCERPT, folder / "OpenVLM_2026-05-01.json")
    (folder / "OpenVLM_latest.json").write_text("{}")  # no date in the name: skipped with a warning
    [rec] = source.recordings(tmp_path)
    saved = datetime(2026, 5, 1, tzinfo=UTC)
    assert (rec.family, rec.board_ids, rec.as_of) == (FAMILY, tuple(BOARD_IDS), saved)
    snaps = source.load(rec)
    assert [s.board.id for s in snaps] == BOARD_IDS
    # As of the file's own `time`, whenever it was saved.
    assert all((s.as_of, s.fetched_at) == (FILE_DAY, rec.as_of) for s in snaps)


def test_registered_and_in_the_vision_suite(identity):
    sources = {s.name: s for s in all_sources(identity)}
    assert isinstance(sources["opencompass"], OpenVLMSource)
    assert sources["opencompass"].interval_seconds == 86400
    boards = all_boards(list(sources.values()))
    assert [b for b in boards if b.startswith("opencompass/")] == BOARD_IDS
    assert all(board_matches("vision", b) for b in BOARD_IDS)


# -- `versus` on these boards ---------------------------------------------------------------------------

async def test_versus_qwen2_vl_72b_against_gpt_4o_and_gpt_4v(identity, fresh_db):
    from leaderwatch.bot.commands import Invocation, dispatch
    from leaderwatch.bot.pipeline.store import store_all
    from tests.helpers import build_context

    store_all(fresh_db, list(parse(identity=identity).values()), "test://openvlm")
    ctx = build_context(fresh_db, lambda: FETCHED, identity=identity)

    async def ask(text: str):
        return await dispatch(ctx, Invocation("slack", "C1", "U1", "ada", text))

    # Three GPT-4o releases are listed: `gpt-4o` alone names none of them.
    reply = await ask("versus qwen2-vl-72b gpt-4o vision")
    assert reply.error and reply.text == ("`gpt-4o` matches several models: `gpt-4o-20240513`, "
                                          "`gpt-4o-20240806`, `gpt-4o-20241120`. Type more of the name.")

    reply = await ask("versus qwen2-vl-72b gpt-4o-2024-05-13 vision")
    assert not reply.error
    assert reply.title == "Qwen2-VL-72B vs GPT-4o (0513, detail-high)"
    assert reply.text == ("Qwen2-VL-72B is ahead on 8 of 9 boards matching `vision`, as of each board's "
                          "last table. Gap: the model's score minus the rival's, in each board's unit "
                          "(positive: ahead).")
    assert reply.table == (
        ("board", "table of", "ahead", "Qwen2-VL-72B", "GPT-4o (0513, detail-high)", "gap"),
        ("opencompass/ai2d", "2025-09-17", "Qwen2-VL-72B", "#3 (88.3)", "#8 (84.6)", "3.7"),
        ("opencompass/average", "2025-09-17", "Qwen2-VL-72B", "#3 (74.6)", "#8 (69.9)", "4.7"),
        ("opencompass/hallusionbench", "2025-09-17", "Qwen2-VL-72B", "#1 (58.1)", "#6 (55)", "3.1"),
        ("opencompass/mathvista", "2025-09-17", "Qwen2-VL-72B", "#3 (69.7)", "#11 (61.3)", "8.4"),
        ("opencompass/mmbench", "2025-09-17", "Qwen2-VL-72B", "#3 (85.9)", "#7 (82.2)", "3.7"),
        ("opencompass/mmmu", "2025-09-17", "GPT-4o (0513, detail-high)", "#8 (64.3)", "#4 (69.2)", "-4.9"),
        ("opencompass/mmstar", "2025-09-17", "Qwen2-VL-72B", "#3 (68.6)", "#11 (63.9)", "4.7"),
        ("opencompass/mmvet", "2025-09-17", "Qwen2-VL-72B", "#4 (73.9)", "#9 (69.1)", "4.8"),
        ("opencompass/ocrbench", "2025-09-17", "Qwen2-VL-72B", "#2 (877)", "#13 (736)", "141"),
    )

    # GPT-4V by the name the leaderboard shows it under (its key is the release, gpt-4-turbo-2024-04-09).
    reply = await ask("versus Qwen2-VL-72B GPT-4V vision")
    assert reply.title == "Qwen2-VL-72B vs GPT-4v (0409, detail-high)"
    assert reply.text.startswith("Qwen2-VL-72B is ahead on 9 of 9 boards matching `vision`, ")
    assert [r[2] for r in reply.table[1:]] == ["Qwen2-VL-72B"] * 9


async def test_versus_against_an_organization_takes_its_best_model_per_board(identity, fresh_db):
    from leaderwatch.bot.commands import Invocation, dispatch
    from leaderwatch.bot.pipeline.store import store_all
    from tests.helpers import build_context

    store_all(fresh_db, list(parse(identity=identity).values()), "test://openvlm")
    ctx = build_context(fresh_db, lambda: FETCHED, identity=identity)
    text = "versus qwen2-vl-72b OpenAI opencompass/*"
    reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "ada", text))
    assert reply.title == "Qwen2-VL-72B vs OpenAI"
    assert reply.text.startswith("Qwen2-VL-72B is ahead on 7 of 9 boards matching `opencompass/*`, ")
    behind = {r[0]: r[4] for r in reply.table[1:] if r[2] != "Qwen2-VL-72B"}
    assert behind == {"opencompass/mmmu": "#1 GPT-4o (1120, detail-high) (70.7)",
                      "opencompass/mmvet": "#2 GPT-4o (0806, detail-high) (75.1)"}
    assert [r for r in reply.table if r[0] == "opencompass/average"] == [
        ("opencompass/average", "2025-09-17", "Qwen2-VL-72B", "#3 (74.6)",
         "#4 GPT-4o (1120, detail-high) (72)", "2.6")]


def test_excerpt_is_small_and_in_the_files_shape():
    assert EXCERPT.stat().st_size < 50_000
    data = excerpt()
    assert list(data) == ["time", "results"] and data["time"] == "20250917132916"
    assert len(data["results"]) == 15
    assert all(list(record)[0] == "META" and record["META"]["Method"][0] == name
               for name, record in data["results"].items())
