"""Open LLM Leaderboard: the three recorded CSV layouts, the live rows API, and refusals.

Everything but the whole-history checks reads the excerpts in tests/data/openllm (README.md there),
laid out like the recordings (`open_llm_leaderboard/v2/...`).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources.base import SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.openllm import (
    BOARD_V1,
    BOARD_V2,
    V1_LAYOUT,
    V2_SCHEMA_A,
    V2_SCHEMA_B,
    OpenLLMSource,
    Row,
    build_snapshot,
    detect_layout,
    parse_csv,
    parse_rows_page,
    parse_rows_pages,
)

AS_OF = datetime(2025, 3, 21, tzinfo=UTC)
V1 = "open_llm_leaderboard/v1/huggingface_v1_2024-07-13.csv"
V2 = "open_llm_leaderboard/v2/huggingface_v2_{}.csv"
DATA = Path(__file__).resolve().parent.parent / "data" / "openllm"
"""The excerpts, under the recordings' relative paths (top rows by average, README.md)."""
FIRST_105 = DATA / "rows_api" / "huggingface_v2_2025-03-21_first_105_rows.csv.gz"
"""The final table's first 105 rows in file order, for the paging tests (gzip: 40 wide columns)."""


def parse(content: bytes, identity, url: str = "test.csv"):
    return parse_csv(content, identity=identity, url=url, as_of=AS_OF, fetched_at=AS_OF)


def load(DATA, rel: str, identity):
    [snap] = parse((DATA / rel).read_bytes(), identity, rel)
    return snap


def by_name(snap):
    return {e.name: e for e in snap.entries}


# --- recorded CSV layouts -------------------------------------------------------------------


def test_v2_schema_a_2024_07_13_qwen2_first(identity):
    raw = (DATA / V2.format("2024-07-13")).read_bytes()
    assert detect_layout(raw.decode().split("\n", 1)[0].split(",")) is V2_SCHEMA_A
    snap = load(DATA, V2.format("2024-07-13"), identity)
    assert snap.board is BOARD_V2
    assert len(snap.entries) == 20  # the excerpt's top 20 (237 in the file)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score) == ("Qwen/Qwen2-72B-Instruct", 1, 42.49)
    assert top.organization == "Qwen"
    assert top.model_key == "qwen2-72b-instruct"
    assert top.open_weights is True
    second = snap.entries[1]
    assert (second.name, second.rank, second.score) == ("meta-llama/Meta-Llama-3-70B-Instruct", 2, 36.18)
    assert snap.origin == "fboulnois-csv"
    assert snap.as_of == AS_OF and snap.fetched_at == AS_OF
    assert not snap.truncated


def test_v2_schema_a_renamed_columns_2024_12_06(identity):
    header = (DATA / V2.format("2024-12-06")).read_text().split("\n", 1)[0].split(",")
    assert "official_providers" in header and "co_cost_kg" in header
    assert "maintainers_highlight" not in header
    assert detect_layout(header) is V2_SCHEMA_A
    snap = load(DATA, V2.format("2024-12-06"), identity)
    assert len(snap.entries) == 10  # 2159 in the file
    e = by_name(snap)["dfurman/CalmeRys-78B-Orpo-v0.1"]
    assert (e.rank, e.score, e.organization) == (2, 51.24, "dfurman")
    assert snap.entries[0].name == "MaziyarPanahi/calme-3.2-instruct-78b"
    assert snap.entries[0].score == 52.02


def test_v2_schema_a_2024_09_17(identity):
    snap = load(DATA, V2.format("2024-09-17"), identity)
    assert len(snap.entries) == 10  # 987 in the file
    top = snap.entries[0]
    assert (top.name, top.rank, top.score, top.organization) == (
        "MaziyarPanahi/calme-2.4-rys-78b", 1, 50.26, "MaziyarPanahi")


def test_v2_schema_b_2025_03_21(identity):
    header = (DATA / V2.format("2025-03-21")).read_text().split("\n", 1)[0].split(",")
    assert detect_layout(header) is V2_SCHEMA_B
    snap = load(DATA, V2.format("2025-03-21"), identity)
    assert snap.board is BOARD_V2
    assert len(snap.entries) == 15  # top 10 and five named rows (4576 in the file)
    top = snap.entries[0]
    assert (top.name, top.rank, top.score) == ("MaziyarPanahi/calme-3.2-instruct-78b", 1, 52.0813839787917)
    assert top.organization == "MaziyarPanahi"
    e = by_name(snap)["dfurman/CalmeRys-78B-Orpo-v0.1"]
    assert (e.rank, e.score) == (3, 51.231323076027)
    # Schema B lists rows alphabetically, so the rank comes from the average alone.
    yi = by_name(snap)["01-ai/Yi-1.5-34B"]
    assert yi.score == 25.6464941942931 and yi.organization == "01-ai"


def test_v2_schema_b_highlighted_by_maintainer_2024_12_15(identity):
    header = (DATA / V2.format("2024-12-15")).read_text().split("\n", 1)[0].split(",")
    assert "features_is_highlighted_by_maintainer" in header
    snap = load(DATA, V2.format("2024-12-15"), identity)
    assert len(snap.entries) == 10  # 2223 in the file
    top = snap.entries[0]
    assert (top.name, top.rank, top.score) == ("MaziyarPanahi/calme-3.2-instruct-78b", 1, 52.0184433947031)


def test_v2_duplicate_precisions_keep_both_rows(identity):
    snap = load(DATA, V2.format("2025-03-21"), identity)
    names = by_name(snap)
    assert len(names) == len(snap.entries)  # every row stays distinguishable
    best = names["Qwen/Qwen2.5-Coder-7B-Instruct"]
    other = names["Qwen/Qwen2.5-Coder-7B-Instruct (float16)"]
    assert (best.score, other.score) == (28.052321182705, 22.5245158164521)
    assert best.model_key == "qwen2-5-coder-7b-instruct"
    assert other.model_key != best.model_key
    assert other.organization == "Qwen"
    # The bare name goes to the better row even when it is not bfloat16.
    assert names["Qwen/Qwen2.5-0.5B-Instruct"].score == 10.1075438507193
    assert names["Qwen/Qwen2.5-0.5B-Instruct (bfloat16)"].score == 8.14064731927608


def test_organization_and_country_come_from_the_namespace():
    ident = Identity(model_orgs=[(re.compile(r"^qwen"), "Alibaba", True)],
                     org_countries={"alibaba": ("CN",), "qwen": ("CN",)})
    rows = [Row("Qwen/Qwen2-72B-Instruct", "bfloat16", 42.49),
            Row("huihui-ai/Qwen2.5-72B-Instruct-abliterated", "bfloat16", 48.1064709244232),
            Row("gpt2", "float16", 6.0)]
    snap = build_snapshot(BOARD_V2, rows, identity=ident, as_of=AS_OF, fetched_at=AS_OF, origin="t")
    names = by_name(snap)
    assert (names["Qwen/Qwen2-72B-Instruct"].organization, names["Qwen/Qwen2-72B-Instruct"].countries) == (
        "Qwen", ("CN",))
    community = names["huihui-ai/Qwen2.5-72B-Instruct-abliterated"]
    assert (community.organization, community.countries, community.rank) == ("huihui-ai", (), 1)
    assert names["gpt2"].organization is None and names["gpt2"].open_weights is True


def test_v1_final_table(identity):
    raw = (DATA / V1).read_text()
    assert detect_layout(raw.split("\n", 1)[0].split(",")) is V1_LAYOUT
    snap = load(DATA, V1, identity)
    assert snap.board is BOARD_V1 and snap.board.archived
    assert len(snap.entries) == 17  # top 15 and the two gpt2 rows (7169 in the file)
    got = [(e.name, e.rank, e.score) for e in snap.entries[:11]]
    assert got == [
        ("paloalma/Le_Triomphant-ECE-TW3", 1, 81.31),
        ("SF-Foundation/Ein-70B-v2", 2, 81.29),
        ("freewheelin/free-evo-qwen72b-v0.8", 3, 81.28),
        ("freewheelin/free-evo-qwen72b-v0.8-re", 3, 81.28),
        ("davidkim205/Rhea-72b-v0.5", 5, 81.22),
        ("Contamination/contaminated_proof_7b_v1.0", 6, 81.14),
        ("Contamination/contaminated_proof_7b_v1.0_safetensor", 6, 81.14),
        ("davidkim205/Rhea-72b-v0.4", 8, 81.09),
        ("MTSAIR/MultiVerse_70B", 9, 81.0),
        ("binbi/Ein-72B-v0.1", 10, 80.99),
        ("MTSAIR/MultiVerse_70B (float16)", 11, 80.98),
    ]
    assert snap.entries[0].organization == "paloalma"
    names = by_name(snap)
    assert len(names) == 17
    # Namespace-less legacy repo ids: both gpt2 rows kept, the 8bit one marked.
    assert names["gpt2"].score == 28.53
    assert names["gpt2 (8bit)"].score == 28.28


# --- refusals on bad files --------------------------------------------------------------------


def test_truncated_csv_is_refused(identity):
    raw = (DATA / V2.format("2024-07-13")).read_bytes()
    cut = raw[: len(raw) // 2]
    with pytest.raises(SourceError, match="truncated"):
        parse(cut, identity)
    # Cut mid-row but ending in a newline: the short row gives it away.
    with pytest.raises(SourceError, match=r"line \d+ has \d+ fields where the header has 33"):
        parse(cut + b"\n", identity)


def test_truncated_schema_b_csv_is_refused(identity):
    raw = (DATA / V2.format("2025-03-21")).read_bytes()
    with pytest.raises(SourceError, match="truncated"):
        parse(raw[: len(raw) // 3 * 2], identity)


@pytest.mark.parametrize(
    ("rel", "old", "new", "missing"),
    [
        (V2.format("2025-03-21"), b"model_average_score", b"model_avg_score", "model_average_score"),
        (V2.format("2024-07-13"), b",fullname,", b",repo,", "fullname"),
        (V2.format("2024-12-06"), b"t,model,average,", b"t,model,avg,", "average"),
        (V1, b",precision,", b",dtype,", "precision"),
    ],
)
def test_renamed_required_column_is_named(identity, rel, old, new, missing):
    raw = (DATA / rel).read_bytes()
    header, rest = raw.split(b"\n", 1)
    with pytest.raises(SourceError) as info:
        parse(header.replace(old, new, 1) + b"\n" + rest, identity)
    assert re.search(rf"CSV is missing required columns: {missing} \(it has: .+\)$", info.value.reason)
    assert info.value.source == "openllm" and info.value.url == "test.csv"


def test_unknown_header_is_refused(identity):
    with pytest.raises(SourceError, match="unrecognized header"):
        parse(b"name,score\nx,1\n", identity)


def test_header_only_is_an_empty_table(identity):
    header = (DATA / V2.format("2025-03-21")).read_bytes().split(b"\n", 1)[0] + b"\n"
    with pytest.raises(SourceError, match="empty table"):
        parse(header, identity)


def test_empty_file_is_refused(identity):
    with pytest.raises(SourceError, match="empty file"):
        parse(b"", identity)


def test_html_page_is_refused(identity):
    page = b"<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n"
    with pytest.raises(SourceError, match="HTML page"):
        parse(page, identity)


def test_unparseable_average_drops_its_row(identity):
    # Issue 14: the row is dropped (make_snapshot counts it in its log line), the table stands.
    raw = (DATA / V2.format("2024-07-13")).read_bytes()
    [good] = parse(raw, identity)
    for cell in (b"n/a", b"NaN"):
        bad = raw.replace(b"Qwen/Qwen2-72B-Instruct,42.49,", b"Qwen/Qwen2-72B-Instruct," + cell + b",", 1)
        [snap] = parse(bad, identity)
        assert len(snap.entries) == len(good.entries) - 1
        assert 42.49 not in [e.score for e in snap.entries]


def test_recording_whose_header_contradicts_its_name(identity, tmp_path):
    fake = tmp_path / "open_llm_leaderboard" / "v1" / "huggingface_v1_2025-01-01.csv"
    fake.parent.mkdir(parents=True)
    fake.write_bytes((DATA / V2.format("2024-07-13")).read_bytes())
    source = OpenLLMSource(identity)
    [rec] = source.recordings(tmp_path)
    with pytest.raises(SourceError, match="openllm/v2 table but the file name says openllm/v1"):
        source.load(rec)


# --- recordings and boards --------------------------------------------------------------------


def test_boards(identity):
    boards = {b.id: b for b in OpenLLMSource(identity).boards()}
    assert set(boards) == {"openllm/v1", "openllm/v2"}
    assert boards["openllm/v1"].archived and boards["openllm/v2"].archived  # retired 2025-03-13
    assert all(b.higher_is_better and not b.has_ci and b.url.startswith("https://huggingface.co/")
               for b in boards.values())


def test_recordings_found(identity):
    recs = OpenLLMSource(identity).recordings(DATA)
    got = [(r.board_ids, r.as_of.date().isoformat()) for r in recs]
    assert got == [
        (("openllm/v1",), "2024-07-13"),
        (("openllm/v2",), "2024-07-13"),
        (("openllm/v2",), "2024-09-17"),
        (("openllm/v2",), "2024-12-06"),
        (("openllm/v2",), "2024-12-15"),
        (("openllm/v2",), "2025-03-21"),
    ]
    assert {(r.family, r.priority) for r in recs} == {("openllm/fboulnois-csv", 10)}
    assert all(r.as_of.tzinfo is UTC for r in recs)


@pytest.mark.whole_history
def test_every_recording_loads(recordings, identity):
    source = OpenLLMSource(identity)
    seen = set()
    counts = {}
    for rec in source.recordings(recordings):
        snaps = source.load(rec)
        assert snaps, rec.path
        for snap in snaps:
            assert snap.board.id in rec.board_ids
            assert snap.as_of == rec.as_of == snap.fetched_at
            assert snap.entries and snap.entries[0].rank == 1
            assert len({e.name for e in snap.entries}) == len(snap.entries)
            seen.add(snap.board.id)
            counts[(snap.board.id, rec.as_of.date().isoformat())] = len(snap.entries)
    assert seen == {b.id for b in source.boards()}
    assert counts[("openllm/v2", "2024-07-13")] == 237
    assert counts[("openllm/v2", "2025-03-21")] == 4576
    assert counts[("openllm/v1", "2024-07-13")] == 7169


def test_no_recordings_under_an_unrelated_folder(identity, tmp_path):
    assert OpenLLMSource(identity).recordings(tmp_path) == []


# --- the live rows API ------------------------------------------------------------------------

FEATURES = [
    ("eval_name", "string"), ("Precision", "string"), ("Type", "string"), ("T", "string"),
    ("Weight type", "string"), ("Architecture", "string"), ("Model", "string"), ("fullname", "string"),
    ("Model sha", "string"), ("Average ⬆️", "float64"), ("Hub License", "string"), ("Hub ❤️", "int64"),
    ("#Params (B)", "float64"), ("Available on the hub", "bool"), ("MoE", "bool"), ("Flagged", "bool"),
    ("Chat Template", "bool"), ("CO₂ cost (kg)", "float64"), ("IFEval Raw", "float64"),
    ("IFEval", "float64"), ("BBH Raw", "float64"), ("BBH", "float64"), ("MATH Lvl 5 Raw", "float64"),
    ("MATH Lvl 5", "float64"), ("GPQA Raw", "float64"), ("GPQA", "float64"), ("MUSR Raw", "float64"),
    ("MUSR", "float64"), ("MMLU-PRO Raw", "float64"), ("MMLU-PRO", "float64"), ("Merged", "bool"),
    ("Official Providers", "bool"), ("Upload To Hub Date", "string"), ("Submission Date", "string"),
    ("Generation", "int64"), ("Base Model", "string"),
]

LINK = ('<a target="_blank" href="https://huggingface.co/{0}" style="color: var(--link-text-color); '
        'text-decoration: underline;text-decoration-style: dotted;">{0}</a>  <a target="_blank" '
        'href="https://huggingface.co/datasets/open-llm-leaderboard/{1}-details" style="color: '
        'var(--link-text-color); text-decoration: underline;text-decoration-style: dotted;">📑</a>')

# The first row exactly as the real rows API serves it (it matches the 2025-03-21 CSV row).
MATTER_ROW = {
    "eval_name": "0-hero_Matter-0.2-7B-DPO_bfloat16", "Precision": "bfloat16",
    "Type": "💬 chat models (RLHF, DPO, IFT, ...)", "T": "💬", "Weight type": "Original",
    "Architecture": "MistralForCausalLM",
    "Model": LINK.format("0-hero/Matter-0.2-7B-DPO", "0-hero__Matter-0.2-7B-DPO"),
    "fullname": "0-hero/Matter-0.2-7B-DPO", "Model sha": "26a66f0d862e2024ce4ad0a09c37052ac36e8af6",
    "Average ⬆️": 8.90636130175029, "Hub License": "apache-2.0", "Hub ❤️": 3, "#Params (B)": 7.242,
    "Available on the hub": True, "MoE": False, "Flagged": False, "Chat Template": True,
    "CO₂ cost (kg)": 1.219174164123715, "IFEval Raw": 0.3302792147058693, "IFEval": 33.02792147058693,
    "BBH Raw": 0.3596254301656297, "BBH": 10.055525080241035, "MATH Lvl 5 Raw": 0.014350453172205438,
    "MATH Lvl 5": 1.4350453172205437, "GPQA Raw": 0.25922818791946306, "GPQA": 1.230425055928408,
    "MUSR Raw": 0.381375, "MUSR": 5.871874999999999, "MMLU-PRO Raw": 0.1163563829787234,
    "MMLU-PRO": 1.8173758865248217, "Merged": False, "Official Providers": False,
    "Upload To Hub Date": "2024-04-13", "Submission Date": "2024-08-05", "Generation": 0,
    "Base Model": "0-hero/Matter-0.2-7B-DPO",
}

TYPES = {
    "chatmodels": ("💬", "💬 chat models (RLHF, DPO, IFT, ...)"),
    "pretrained": ("🟢", "🟢 pretrained"),
    "continuouslypretrained": ("🟩", "🟩 continuously pretrained"),
    "fine-tunedondomain-specificdatasets": ("🔶", "🔶 fine-tuned on domain-specific datasets"),
    "basemergesandmoerges": ("🤝", "🤝 base merges and moerges"),
    "multimodal": ("🌸", "🌸 multimodal"),
}


def _num(text: str, kind=float):
    return kind(text) if text else None


def live_row(r: dict[str, str]) -> dict:
    """A schema B CSV row (2025-03-21) in the contents dataset's display columns."""
    repo, prec = r["model_name"], r["model_precision"]
    t, type_ = TYPES.get(r["model_type"], ("❓", "❓ other"))
    row = {
        "eval_name": f"{repo.replace('/', '_')}_{prec}", "Precision": prec, "Type": type_, "T": t,
        "Weight type": r["model_weight_type"], "Architecture": r["model_architecture"],
        "Model": LINK.format(repo, repo.replace("/", "__")), "fullname": repo,
        "Model sha": r["model_sha"], "Average ⬆️": float(r["model_average_score"]),
        "Hub License": r["metadata_hub_license"], "Hub ❤️": _num(r["metadata_hub_hearts"], int),
        "#Params (B)": _num(r["metadata_params_billions"]),
        "Available on the hub": r["features_is_not_available_on_hub"] == "TRUE",
        "MoE": r["features_is_moe"] == "TRUE", "Flagged": r["features_is_flagged"] == "TRUE",
        "Chat Template": r["model_has_chat_template"] == "TRUE",
        "CO₂ cost (kg)": _num(r["metadata_co2_cost"]),
    }
    for col, key in (("IFEval", "ifeval"), ("BBH", "bbh"), ("MATH Lvl 5", "math"), ("GPQA", "gpqa"),
                     ("MUSR", "musr"), ("MMLU-PRO", "mmlu_pro")):
        row[f"{col} Raw"] = _num(r[f"evaluations_{key}_value"])
        row[col] = _num(r[f"evaluations_{key}_normalized_score"])
    row.update({
        "Merged": r["features_is_merged"] == "TRUE",
        "Official Providers": r["features_is_official_provider"] == "TRUE",
        "Upload To Hub Date": r["metadata_upload_date"], "Submission Date": r["metadata_submission_date"],
        "Generation": _num(r["metadata_generation"], int), "Base Model": r["metadata_base_model"],
    })
    return row


def rows_payload(rows: list[dict], offset: int, total: int, **extra) -> bytes:
    doc = {
        "features": [{"feature_idx": i, "name": n, "type": {"dtype": d, "_type": "Value"}}
                     for i, (n, d) in enumerate(FEATURES)],
        "rows": [{"row_idx": offset + i, "row": row, "truncated_cells": []} for i, row in enumerate(rows)],
        "num_rows_total": total, "num_rows_per_page": 100, "partial": False,
    }
    doc.update(extra)
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def live_rows() -> list[dict]:
    """The first 105 real rows of the final table (2025-03-21) as the rows API shapes them."""
    text = gzip.decompress(FIRST_105.read_bytes()).decode("utf-8")
    rows = [live_row(r) for r in csv.DictReader(io.StringIO(text, newline=""))]
    assert len(rows) == 105
    rows[0] = MATTER_ROW
    return rows


@pytest.fixture(scope="module")
def all_live_rows(recordings) -> list[dict]:
    """The 4,576 real rows of the final table (2025-03-21) as the rows API shapes them."""
    text = (recordings / V2.format("2025-03-21")).read_text(encoding="utf-8")
    rows = [live_row(r) for r in csv.DictReader(io.StringIO(text, newline=""))]
    assert rows[0]["fullname"] == MATTER_ROW["fullname"]
    assert rows[0]["Average ⬆️"] == MATTER_ROW["Average ⬆️"]
    rows[0] = MATTER_ROW
    return rows


def check_request(request: httpx.Request) -> int:
    """Assert the exact endpoint and query the real service uses; return the page offset."""
    assert request.method == "GET"
    assert str(request.url).startswith(
        "https://datasets-server.huggingface.co/rows?dataset=open-llm-leaderboard%2Fcontents"
        "&config=default&split=train&offset=")
    params = request.url.params
    assert params["dataset"] == "open-llm-leaderboard/contents"
    assert (params["config"], params["split"], params["length"]) == ("default", "train", "100")
    offset = int(params["offset"])
    assert offset % 100 == 0
    return offset


async def no_sleep(_seconds: float) -> None:
    return None


def fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=no_sleep)


def serve(rows: list[dict], seen: list[int] | None = None, etag: str | None = None):
    """A handler paging `rows` 100 at a time, answering 304 to a matching If-None-Match."""
    def handler(request: httpx.Request) -> httpx.Response:
        offset = check_request(request)
        if seen is not None:
            seen.append(offset)
        headers = {"etag": f'"{etag}-{offset}"'} if etag else {}
        if etag and request.headers.get("if-none-match") == headers["etag"]:
            return httpx.Response(304, headers=headers)
        body = rows_payload(rows[offset:offset + 100], offset, len(rows))
        return httpx.Response(200, content=body, headers={"content-type": "application/json", **headers})
    return handler


async def test_fetch_two_pages(live_rows, identity):
    rows = live_rows[:105]
    seen: list[int] = []
    source = OpenLLMSource(identity)
    http = fetcher(serve(rows, seen))
    before = datetime.now(UTC)
    [snap] = await source.fetch(http)
    await http.client.aclose()
    assert sorted(seen) == [0, 100]
    assert snap.board is BOARD_V2 and snap.origin == "hf-datasets-server"
    assert len(snap.entries) == 105
    assert snap.as_of == snap.fetched_at and snap.as_of >= before and snap.as_of.tzinfo is not None
    names = by_name(snap)
    matter = names["0-hero/Matter-0.2-7B-DPO"]
    assert (matter.score, matter.organization, matter.open_weights) == (8.90636130175029, "0-hero", True)
    yi = names["01-ai/Yi-1.5-34B"]
    assert (yi.score, yi.organization) == (25.6464941942931, "01-ai")
    last = names["BAAI/Infinity-Instruct-7M-0729-mistral-7B"]  # row_idx 104, on the second page
    assert last.score == 23.2164493465878
    assert [e.rank for e in snap.entries] == sorted(e.rank for e in snap.entries)
    assert snap.entries[0].rank == 1


@pytest.mark.whole_history
async def test_fetch_all_46_pages_politely_matches_the_csv(all_live_rows, recordings, identity):
    in_flight = 0
    peak = 0
    seen: list[int] = []
    plain = serve(all_live_rows, seen)

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        try:
            return plain(request)
        finally:
            in_flight -= 1

    http = fetcher(handler)
    [snap] = await OpenLLMSource(identity).fetch(http)
    await http.client.aclose()
    assert sorted(seen) == list(range(0, 4576, 100)) and len(seen) == 46
    assert 1 < peak <= 4
    assert len(snap.entries) == 4576
    recorded = load(recordings, V2.format("2025-03-21"), identity)
    assert [(e.name, e.rank, e.score, e.organization) for e in snap.entries] == [
        (e.name, e.rank, e.score, e.organization) for e in recorded.entries]
    top = snap.entries[0]
    assert (top.name, top.rank, top.score) == ("MaziyarPanahi/calme-3.2-instruct-78b", 1, 52.0813839787917)


async def test_fetch_not_modified_returns_nothing(live_rows, identity):
    rows = live_rows[:105]
    seen: list[int] = []
    source = OpenLLMSource(identity)
    http = fetcher(serve(rows, seen, etag="v1"))
    assert len(await source.fetch(http)) == 1
    assert await source.fetch(http) == []
    await http.client.aclose()
    assert sorted(seen) == [0, 0, 100, 100]


async def test_fetch_reuses_unchanged_pages(live_rows, identity):
    rows = [dict(r) for r in live_rows[:105]]
    source = OpenLLMSource(identity)
    state = {"changed": False}

    def handler(request: httpx.Request) -> httpx.Response:
        offset = check_request(request)
        if offset == 0 and request.headers.get("if-none-match") == '"p0"':
            return httpx.Response(304)
        served = rows[:]
        if state["changed"]:
            served[104] = {**served[104], "Average ⬆️": 60.0}
        body = rows_payload(served[offset:offset + 100], offset, len(served))
        return httpx.Response(200, content=body, headers={"etag": f'"p{offset}"'})

    http = fetcher(handler)
    [first] = await source.fetch(http)
    state["changed"] = True
    [second] = await source.fetch(http)
    await http.client.aclose()
    assert first.entries[0].name != "BAAI/Infinity-Instruct-7M-0729-mistral-7B"
    assert len(second.entries) == 105
    top = second.entries[0]
    assert (top.name, top.rank, top.score) == ("BAAI/Infinity-Instruct-7M-0729-mistral-7B", 1, 60.0)
    assert "0-hero/Matter-0.2-7B-DPO" in by_name(second)  # from the cached first page


async def test_fetch_304_without_cached_page_refetches_unconditionally(live_rows, identity):
    rows = live_rows[:105]
    http = fetcher(serve(rows, etag="v1"))
    assert len(await OpenLLMSource(identity).fetch(http)) == 1
    # A new source instance sharing the Fetcher has validators but no parsed pages.
    [snap] = await OpenLLMSource(identity).fetch(http)
    await http.client.aclose()
    assert len(snap.entries) == 105


async def test_fetch_html_page_is_an_error(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        check_request(request)
        return httpx.Response(200, content=b"<!DOCTYPE html><html><body>Hugging Face is down</body></html>")

    http = fetcher(handler)
    with pytest.raises(SourceError, match="HTML page"):
        await OpenLLMSource(identity).fetch(http)
    await http.client.aclose()


async def test_fetch_server_error_is_an_error(identity):
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(check_request(request))
        return httpx.Response(503)

    http = fetcher(handler)
    with pytest.raises(SourceError, match="HTTP 503 after 4 attempts") as info:
        await OpenLLMSource(identity).fetch(http)
    await http.client.aclose()
    assert info.value.source == "openllm" and len(calls) == 4


async def test_fetch_error_on_a_later_page_fails_the_whole_fetch(live_rows, identity):
    plain = serve(live_rows)

    def handler(request: httpx.Request) -> httpx.Response:
        if check_request(request) == 100:
            return httpx.Response(404)
        return plain(request)

    http = fetcher(handler)
    with pytest.raises(SourceError, match="HTTP 404") as info:
        await OpenLLMSource(identity).fetch(http)
    await http.client.aclose()
    assert "offset=100" in info.value.url


def test_rows_pages_missing_rows_are_refused(live_rows, identity):
    page = rows_payload(live_rows[:100], 0, 105)
    with pytest.raises(SourceError, match="got 100 distinct rows where num_rows_total is 105"):
        parse_rows_pages([page], identity=identity, url="u", as_of=AS_OF, fetched_at=AS_OF)


def test_rows_page_renamed_required_column(live_rows):
    rows = [{("Average" if k == "Average ⬆️" else k): v for k, v in r.items()} for r in live_rows[:3]]
    doc = json.loads(rows_payload(rows, 0, 3))
    doc["features"] = [f if f["name"] != "Average ⬆️" else {**f, "name": "Average"} for f in doc["features"]]
    with pytest.raises(SourceError) as info:
        parse_rows_page(json.dumps(doc).encode(), url="u")
    assert info.value.reason.startswith("contents dataset is missing required columns: Average ⬆️ (it has: ")
    del doc["features"]
    with pytest.raises(SourceError) as info:
        parse_rows_page(json.dumps(doc).encode(), url="u")
    assert info.value.reason.startswith("row 0 is missing required columns: Average ⬆️ (it has: ")


def test_rows_page_errors(live_rows, identity):
    good = rows_payload(live_rows[:3], 0, 3)
    with pytest.raises(SourceError, match="not valid JSON"):
        parse_rows_page(good[: len(good) // 2], url="u")
    with pytest.raises(SourceError, match="HTML page"):
        parse_rows_page(b"<html><body>error</body></html>", url="u")
    with pytest.raises(SourceError, match="marked partial"):
        parse_rows_page(rows_payload(live_rows[:3], 0, 3, partial=True), url="u")
    with pytest.raises(SourceError, match="no `rows` list"):
        parse_rows_page(b'{"error": "The dataset does not exist."}', url="u")
    with pytest.raises(SourceError, match="empty table"):
        parse_rows_pages([rows_payload([], 0, 0)], identity=identity, url="u", as_of=AS_OF,
                         fetched_at=AS_OF)
    bad = [{**live_rows[0], "Average ⬆️": None}]
    [(_, row)] = parse_rows_page(rows_payload(bad, 0, 1), url="u").rows
    assert math.isnan(row.score)  # dropped, and counted, when the snapshot is made (issue 14)


def test_retired_not_polled_unless_enabled_and_a_configured_url(identity):
    source = OpenLLMSource(identity)
    assert source.enabled_by_default is False  # retired upstream 2025-03-13
    assert source.probe_url.startswith("https://datasets-server.huggingface.co/rows?dataset=open-llm")
    mirror = OpenLLMSource(identity, url="https://hf-mirror.example/rows")
    assert mirror.probe_url.startswith("https://hf-mirror.example/rows?dataset=open-llm-leaderboard%2Fcontents")


async def test_a_configured_url_is_the_rows_endpoint(live_rows, identity):
    seen: list[str] = []
    plain = serve(live_rows[:40])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.url.host == "hf-mirror.example"
        return plain(httpx.Request("GET", str(request.url).replace(
            "https://hf-mirror.example/rows", "https://datasets-server.huggingface.co/rows")))

    http = fetcher(handler)
    [snap] = await OpenLLMSource(identity, url="https://hf-mirror.example/rows").fetch(http)
    await http.client.aclose()
    assert len(snap.entries) == 40 and len(seen) == 1
