"""Epoch AI Benchmarking Hub: the benchmark CSVs, ECI snapshots, the 2025 hub format, the 2026 zip
(`benchmark_metadata.csv`, the moved ECI) and the live zip.

Everything but the whole-history check reads the excerpts in tests/data/epoch (README.md there), laid
out like the recordings (`epoch/benchmark_data_2026-04-19/...`).
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources.base import ShapeError, SourceError
from leaderwatch.sources.epoch import (
    ZIP_URL,
    EpochSource,
    parse_benchmark_csv,
    parse_benchmark_zip,
    parse_hub_runs,
    read_metadata,
)
from leaderwatch.sources.http import Fetcher

AS_OF = datetime(2026, 4, 19, tzinfo=UTC)
DATA = Path(__file__).resolve().parent.parent / "data"
"""tests/data: its `epoch/` folder holds the excerpts under the recordings' relative paths."""
SHAPE_2026 = DATA / "epoch" / "benchmark_data_2026-09"
"""Typed in the 2026 zip's shape: `benchmark_metadata.csv` and `epoch_capabilities_index/` (README.md)."""


def export(root: Path, name: str) -> Path:
    return root / "epoch" / "benchmark_data_2026-04-19" / name


def parse(identity, content: bytes, slug: str):
    return parse_benchmark_csv(content, slug=slug, identity=identity, url=f"{slug}.csv", as_of=AS_OF,
                               fetched_at=AS_OF)


def row(snapshot, name: str):
    matches = [e for e in snapshot.entries if e.name == name]
    assert len(matches) == 1, f"{name} on {snapshot.board.id}: {matches}"
    return matches[0]


def test_eci_export(identity):
    snap = parse(identity, export(DATA, "epoch_capabilities_index.csv").read_bytes(), "eci")
    assert snap.board.id == "epoch/eci" and snap.board.higher_is_better
    # 18 rows in the excerpt (591 in the file), one with an empty ECI Score (claude-opus-4-7_xhigh,
    # "Unverified"): left out
    assert len(snap.entries) == 17
    assert "claude-opus-4-7_xhigh" not in {e.name for e in snap.entries}
    gemini = row(snap, "gemini-3-pro-preview")
    assert gemini.score == 153.37507453900983
    assert gemini.organization == "Google DeepMind" and gemini.countries == ("US",)
    assert gemini.open_weights is False  # Model accessibility "API access"
    deepseek = row(snap, "DeepSeek-V3")
    assert deepseek.score == 133.1404848741002
    assert (deepseek.organization, deepseek.countries, deepseek.country) == ("DeepSeek", ("CN",), "CN")
    assert deepseek.open_weights is True  # "Open weights (restricted use)"
    assert deepseek.model_key == "deepseek-v3"
    assert snap.entries[0].rank == 1 and snap.as_of == AS_OF


def test_eci_snapshot(identity):
    path = DATA / "epoch" / "eci_snapshots" / "epoch_capabilities_index_2026-02-22.csv"
    snap = parse(identity, path.read_bytes(), "eci")
    top = snap.entries[0]
    assert (top.name, top.score, top.rank) == ("gemini-3-pro-preview", 154.2233541294733, 1)
    assert row(snap, "DeepSeek-V3").score == 132.9594063473253
    assert len(snap.entries) == 16  # the excerpt's rows (265 scored in the file)


def test_gpqa_diamond_row(identity):
    snap = parse(identity, export(DATA, "gpqa_diamond.csv").read_bytes(), "gpqa_diamond")
    assert snap.board.id == "epoch/gpqa_diamond" and len(snap.entries) == 15  # 157 in the file
    deepseek = row(snap, "DeepSeek-V3")
    assert deepseek.score == 0.5653409090909091  # mean_score, a fraction as published
    assert deepseek.rank == 1 + sum(e.score > deepseek.score for e in snap.entries)  # 84 in the file
    assert (deepseek.organization, deepseek.countries, deepseek.mixed) == ("DeepSeek", ("CN",), False)
    top = snap.entries[0]
    assert (top.name, top.score) == ("gpt-5.4-pro-2026-03-05_xhigh", 0.946)
    assert row(snap, "muse-spark").organization == "Meta AI"


def test_multi_country_and_multi_org_rows_are_mixed(identity):
    gpqa = parse(identity, export(DATA, "gpqa_diamond.csv").read_bytes(), "gpqa_diamond")
    eurus = row(gpqa, "Eurus-2-7B-PRIME")  # Country "United States of America,China"
    assert eurus.countries == ("US", "CN") and eurus.mixed and eurus.country is None
    flash = row(gpqa, "gemini-2.0-flash-001")  # Organization "Google DeepMind,Google", one country
    assert flash.organization == "Google DeepMind,Google"
    # One model co-developed by two organizations of one country is credited to that country.
    assert flash.countries == ("US",) and not flash.mixed and flash.country == "US"
    video = parse(identity, export(DATA, "video_mme_external.csv").read_bytes(), "video_mme")
    assert video.board.id == "epoch/video_mme"
    intern = row(video, "InternVL2_5-78B")  # Country "Hong Kong,China"
    assert intern.score == 0.721 and intern.countries == ("HK", "CN") and intern.mixed


def test_scores_kept_as_published_with_ci_and_votes(identity):
    aider = parse(identity, export(DATA, "aider_polyglot_external.csv").read_bytes(), "aider_polyglot")
    assert max(e.score for e in aider.entries) == 88.0  # percents in this file
    arena = parse(identity, export(DATA, "webdev_arena_external.csv").read_bytes(), "webdev_arena")
    opus = row(arena, "claude-opus-4-6")
    assert (opus.score, opus.ci_lower, opus.ci_upper, opus.votes) == (1555.35, 1542.73, 1567.97, 3273)
    assert arena.board.has_ci


def test_duplicate_and_unlinked_rows(identity):
    swe = parse(identity, export(DATA, "swe_bench_verified.csv").read_bytes(), "swe_bench_verified")
    # claude-opus-4-6 has two runs (0.7871900826446281 and 0.756198347107438): the best is kept
    assert row(swe, "claude-opus-4-6").score == 0.7871900826446281
    assert len(swe.entries) == 23  # 25 rows, two models twice
    osw = parse(identity, export(DATA, "os_world_external.csv").read_bytes(), "os_world")
    # 37 of 56 rows have no Model version (agents such as "agi-0 (50 steps)"): left out
    assert all(e.name for e in osw.entries) and len(osw.entries) == 8  # 19 linked rows, 8 models
    assert row(osw, "claude-sonnet-4-5-20250929").score == 62.9  # best of its 100/50/15-step runs


def test_score_column_detection(identity):
    content = (b"Model version,Scaffold,Pass rate,Release date,Organization,Country\n"
               b"gpt-5.2-2025-12-11_high,Codex CLI,0.5,2025-12-11,OpenAI,United States of America\n")
    snap = parse(identity, content, "brand_new_bench")
    assert snap.board.id == "epoch/brand_new_bench"
    assert row(snap, "gpt-5.2-2025-12-11_high").score == 0.5
    with pytest.raises(SourceError, match="no score column found") as err:
        parse(identity, b"Model version,Scaffold,Release date\nx,y,2025-01-01\n", "brand_new_bench")
    assert "brand_new_bench.csv" in str(err.value)


def test_old_hub_format(identity):
    path = DATA / "epoch" / "benchmarking_hub_2025-05" / "benchmarks_runs.csv"
    as_of = datetime(2025, 5, 12, tzinfo=UTC)
    snaps = {s.board.id: s for s in parse_hub_runs(path.read_bytes(), identity=identity, url=str(path),
                                                    as_of=as_of, fetched_at=as_of)}
    assert set(snaps) == {"epoch/gpqa_diamond", "epoch/math_level_5", "epoch/otis_mock_aime_2024_2025",
                          "epoch/frontiermath", "epoch/frontiermath_public", "epoch/swe_bench_verified"}
    gpqa = snaps["epoch/gpqa_diamond"]
    assert len(gpqa.entries) == 5 and gpqa.method == "best-across-scorers"  # 100 in the file
    assert gpqa.origin == "epoch-hub-runs"
    assert row(gpqa, "claude-3-7-sonnet-20250219").score == 0.6603535353535354
    swe = snaps["epoch/swe_bench_verified"]
    top = swe.entries[0]
    assert (top.name, top.score, top.rank) == ("claude-3-7-sonnet-20250219", 0.522, 1)
    assert top.organization == "Anthropic"  # inferred from the name: this format has no organization
    # FrontierMath-2025-02-28-Private is the benchmark of the later frontiermath.csv
    assert row(snaps["epoch/frontiermath"], "claude-3-7-sonnet-20250219").score == 0.0310344827586206
    assert snaps["epoch/frontiermath_public"].board.archived


def test_errors(identity):
    real = export(DATA, "gpqa_diamond.csv").read_bytes()
    cut = real[: real.index(b"\n", len(real) // 2) - 30]
    with pytest.raises(SourceError, match="truncated"):
        parse(identity, cut, "gpqa_diamond")
    missing = r"gpqa_diamond\.csv is missing required columns: Model version \(it has: Model, "
    with pytest.raises(SourceError, match=missing):
        parse(identity, b"Model" + real[len(b"Model version"):], "gpqa_diamond")
    header_only = real.split(b"\n", 1)[0] + b"\n"
    with pytest.raises(SourceError, match="empty table"):
        parse(identity, header_only, "gpqa_diamond")
    with pytest.raises(SourceError, match="HTML page"):
        parse(identity, b"<!DOCTYPE html><html><body>Error</body></html>", "gpqa_diamond")
    unscored = b"Model version,ECI Score,Release date\nclaude-opus-4-7_xhigh,,2026-04-16\n"
    with pytest.raises(SourceError, match="empty table"):
        parse(identity, unscored, "eci")
    # The shared score rule (issue 14): a row whose score is not a finite number is dropped; a table
    # left with none is drift. A placeholder is no score.
    with pytest.raises(SourceError, match=r"no usable row \(a name and a score that can be stored\): "
                                          r"1 unreadable"):
        parse(identity, b"Model version,mean_score,Release date\nx,high,2026-01-01\n", "gpqa_diamond")
    nan = parse(identity, b"Model version,mean_score,Release date\ny,0.5,2026-01-01\nx,NaN,2026-01-01\n"
                b"x,0.25,2026-01-01\n", "gpqa_diamond")
    assert [(e.name, e.score) for e in nan.entries] == [("y", 0.5), ("x", 0.25)]
    dashed = parse(identity, b"Model version,mean_score,Release date\ny,0.5,2026-01-01\nx,-,2026-01-01\n",
                   "gpqa_diamond")
    assert [e.name for e in dashed.entries] == ["y"]
    runs = (DATA / "epoch" / "benchmarking_hub_2025-05" / "benchmarks_runs.csv").read_bytes()
    with pytest.raises(SourceError, match=r"benchmarks_runs\.csv is missing required columns: task \(it has"):
        parse_hub_runs(runs.replace(b"id,task,", b"id,benchmark,", 1), identity=identity, url="runs.csv",
                       as_of=AS_OF, fetched_at=AS_OF)


@pytest.mark.whole_history
def test_every_recording_loads(recordings, identity):
    source = EpochSource(identity)
    recs = source.recordings(recordings)
    assert len(recs) == 54  # 50 export CSVs, 3 ECI snapshots, 1 hub-format file
    families = {(r.family, r.priority) for r in recs}
    assert families == {("epoch/benchmark-csv", 10), ("epoch/hub-runs-2025", 10)}
    assert not any("additional_eci_data" in str(r.path) for r in recs)
    eci_dates = sorted(r.as_of.date().isoformat() for r in recs if r.board_ids == ("epoch/eci",))
    assert eci_dates == ["2026-02-22", "2026-03-12", "2026-04-10", "2026-04-19"]
    seen: set[str] = set()
    for rec in recs:
        snaps = source.load(rec)
        assert {s.board.id for s in snaps} == set(rec.board_ids)
        for s in snaps:
            assert s.entries and s.as_of == rec.as_of == s.fetched_at and s.as_of.tzinfo is UTC
            seen.add(s.board.id)
    assert seen == {b.id for b in source.boards()}
    assert len(source.boards()) == 51


def _zip(recordings: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("epoch_capabilities_index.csv", "gpqa_diamond.csv", "video_mme_external.csv"):
            zf.write(export(DATA, name), f"benchmark_data/{name}")
        zf.write(export(DATA, "additional_eci_data/eci_scaling.csv"),
                 "benchmark_data/additional_eci_data/eci_scaling.csv")
        zf.write(export(DATA, "README.md"), "benchmark_data/README.md")
    return buf.getvalue()


async def _no_sleep(_: float) -> None:
    return None


def _fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=_no_sleep)


async def test_fetch_live_zip(identity):
    payload = _zip(DATA)

    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == ZIP_URL == "https://epoch.ai/data/benchmark_data.zip"
        if request.headers.get("if-none-match") == '"z1"':
            return httpx.Response(304)
        return httpx.Response(200, content=payload, headers={"etag": '"z1"'})

    source = EpochSource(identity)
    http = _fetcher(handler)
    snaps = {s.board.id: s for s in await source.fetch(http)}
    assert set(snaps) == {"epoch/eci", "epoch/gpqa_diamond", "epoch/video_mme"}
    assert row(snaps["epoch/eci"], "DeepSeek-V3").score == 133.1404848741002
    assert snaps["epoch/gpqa_diamond"].origin == "epoch-benchmark-zip"
    assert await source.fetch(http) == []


async def test_fetch_errors(identity):
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html><head><title>Maintenance</title></head></html>")

    with pytest.raises(SourceError, match="HTML page"):
        await EpochSource(identity).fetch(_fetcher(html))

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502)

    with pytest.raises(SourceError, match="HTTP 502"):
        await EpochSource(identity).fetch(_fetcher(down))


def test_broken_zip(identity):
    payload = _zip(DATA)
    with pytest.raises(SourceError, match="not a zip archive"):
        parse_benchmark_zip(payload[: len(payload) // 2], identity=identity, url=ZIP_URL, as_of=AS_OF,
                            fetched_at=AS_OF)
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("README.md", "nothing here")
    with pytest.raises(ShapeError, match="no ECI in the zip"):
        parse_benchmark_zip(empty.getvalue(), identity=identity, url=ZIP_URL, as_of=AS_OF, fetched_at=AS_OF)


# -- the 2026 zip: benchmark_metadata.csv names the score columns; the ECI moved --------------------

def _zip_2026(*, eci: bool = True, extra: dict[str, bytes] | None = None,
              skip: frozenset[str] | set[str] = frozenset()) -> bytes:
    """A zip in the 2026 shape: the typed metadata and ECI files with three of the 2026-04-19 CSVs."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if "benchmark_metadata.csv" not in skip:
            zf.write(SHAPE_2026 / "benchmark_metadata.csv", "benchmark_metadata.csv")
        if eci:
            for name in ("eci_scores.csv", "edi_scores.csv"):
                zf.write(SHAPE_2026 / "epoch_capabilities_index" / name, f"epoch_capabilities_index/{name}")
        for name in ("gpqa_diamond.csv", "aider_polyglot_external.csv", "video_mme_external.csv"):
            if name not in skip:
                zf.write(export(DATA, name), name)
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_read_metadata():
    meta = read_metadata((SHAPE_2026 / "benchmark_metadata.csv").read_bytes(), url="benchmark_metadata.csv")
    # CursorBench feeds no ECI and names no file: left out
    assert set(meta) == {"gpqa_diamond.csv", "frontiermath.csv", "swe_bench_verified.csv",
                         "aider_polyglot_external.csv", "lech_mazur_writing_external.csv"}
    assert (meta["gpqa_diamond.csv"].score_column, meta["gpqa_diamond.csv"].scale) == (
        "Best score (across scorers)", 1.0)
    assert (meta["aider_polyglot_external.csv"].score_column, meta["aider_polyglot_external.csv"].scale) == (
        "Percent correct", 0.01)
    assert meta["frontiermath.csv"].superseded
    with pytest.raises(ShapeError, match="missing required columns: score_column"):
        read_metadata(b"benchmark,in_eci,source_file,scale\nGPQA diamond,True,gpqa_diamond.csv,1.0\n",
                      url="benchmark_metadata.csv")


def test_2026_zip_reads_the_metadata_and_the_moved_eci(identity):
    snaps = {s.board.id: s for s in parse_benchmark_zip(_zip_2026(), identity=identity, url=ZIP_URL,
                                                        as_of=AS_OF, fetched_at=AS_OF)}
    assert set(snaps) == {"epoch/eci", "epoch/gpqa_diamond", "epoch/aider_polyglot", "epoch/video_mme"}
    eci = snaps["epoch/eci"]
    top = eci.entries[0]
    assert (top.name, top.score, top.rank) == ("GPT-6 Astra", 166.31, 1)
    assert (top.ci_lower, top.ci_upper) == (163.0, 171.88)
    assert (top.organization, top.countries, top.open_weights) == ("OpenAI", ("US",), False)
    assert [e.name for e in eci.entries] == ["GPT-6 Astra", "Claude Fable 5.1", "Claude Fable 5"]
    assert eci.board.has_ci
    assert max(e.score for e in snaps["epoch/aider_polyglot"].entries) == 88.0  # percents, as published
    assert snaps["epoch/gpqa_diamond"].board.metric == "mean score (fraction 0-1)"  # a known board's own


def test_the_metadata_names_the_score_column(identity):
    # the two score columns of an Epoch-run file agree in the excerpt; where they differ, the
    # metadata's (`Best score (across scorers)`) is read, not the hand list's `mean_score`
    gpqa = (b"Model version,mean_score,Best score (across scorers),Release date,Organization,Country\n"
            b"gpt-5.4-mini-2026-03-17_high,0.80,0.84,2026-03-17,OpenAI,United States of America\n")
    payload = _zip_2026(skip={"gpqa_diamond.csv"}, extra={"gpqa_diamond.csv": gpqa})
    snaps = {s.board.id: s for s in parse_benchmark_zip(payload, identity=identity, url=ZIP_URL,
                                                        as_of=AS_OF, fetched_at=AS_OF)}
    assert snaps["epoch/gpqa_diamond"].entries[0].score == 0.84
    without = {s.board.id: s for s in parse_benchmark_zip(
        _zip_2026(skip={"gpqa_diamond.csv", "benchmark_metadata.csv"}, extra={"gpqa_diamond.csv": gpqa}),
        identity=identity, url=ZIP_URL, as_of=AS_OF, fetched_at=AS_OF)}
    assert without["epoch/gpqa_diamond"].entries[0].score == 0.80  # older zips: the hand list


def test_2026_zip_titles_a_new_file_from_the_metadata(identity):
    metadata = (SHAPE_2026 / "benchmark_metadata.csv").read_bytes() + (
        b"Brand New Bench,True,brand_new_bench_external.csv,Solve rate (%),0.01,0.0,1.0,2026-08-01,\n")
    new = (b"Model version,Notes,Solve rate (%),Release date,Organization,Country\n"
           b"gpt-5.2-2025-12-11_high,,41.5,2025-12-11,OpenAI,United States of America\n")
    payload = _zip_2026(extra={"brand_new_bench_external.csv": new})
    # the metadata inside names no such file yet: the generic detection takes `Notes`, finds no
    # score, and the new file is skipped (the others are stored)
    snaps = {s.board.id: s for s in parse_benchmark_zip(payload, identity=identity, url=ZIP_URL,
                                                        as_of=AS_OF, fetched_at=AS_OF)}
    assert "epoch/brand_new_bench" not in snaps and "epoch/eci" in snaps
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, metadata if info.filename == "benchmark_metadata.csv" else src.read(info))
    snaps = {s.board.id: s for s in parse_benchmark_zip(buf.getvalue(), identity=identity, url=ZIP_URL,
                                                        as_of=AS_OF, fetched_at=AS_OF)}
    assert snaps["epoch/brand_new_bench"].entries[0].score == 41.5
    board = snaps["epoch/brand_new_bench"].board
    assert (board.title, board.metric) == ("Epoch AI: Brand New Bench", "solve rate (%) (percent 0-100)")


def test_a_zip_without_the_eci_is_a_shape_error(identity):
    with pytest.raises(ShapeError, match="no ECI in the zip"):
        parse_benchmark_zip(_zip_2026(eci=False), identity=identity, url=ZIP_URL, as_of=AS_OF,
                            fetched_at=AS_OF)


async def test_a_board_gone_from_the_live_zip_is_reported_once(identity):
    served = {"body": _zip_2026()}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=served["body"])

    source = EpochSource(identity, url="https://mirror.example/epoch/benchmark_data.zip")
    assert source.probe_url == "https://mirror.example/epoch/benchmark_data.zip"
    http = _fetcher(handler)
    assert len(await source.fetch(http)) == 4
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(served["body"])) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            if info.filename != "video_mme_external.csv":
                dst.writestr(info, src.read(info))
    served["body"] = buf.getvalue()
    with pytest.raises(ShapeError, match=r"board\(s\) gone from the fetch: epoch/video_mme"):
        await source.fetch(http)
    assert len(await source.fetch(http)) == 3  # told once
    served["body"] = _zip_2026(eci=False)
    for _ in range(2):  # the ECI is missed at every poll
        with pytest.raises(ShapeError, match="no ECI in the zip"):
            await source.fetch(http)


def test_a_zip_with_both_eci_files_reads_the_moved_one(identity):
    old = export(DATA, "epoch_capabilities_index.csv").read_bytes()
    payload = _zip_2026(extra={"epoch_capabilities_index.csv": old})
    snaps = [s for s in parse_benchmark_zip(payload, identity=identity, url=ZIP_URL, as_of=AS_OF,
                                            fetched_at=AS_OF) if s.board.id == "epoch/eci"]
    assert len(snaps) == 1 and snaps[0].entries[0].name == "GPT-6 Astra"
