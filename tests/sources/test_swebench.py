"""SWE-bench source: every recorded file shape, Model:/Org: tags, the 2026 boards, errors and the live fetch.

Everything but the whole-history check reads the excerpts in tests/data/swebench (README.md there).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources.base import MIXED, ShapeError, SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.swebench import (
    BASH_ONLY,
    FAMILY_LEADERBOARDS,
    FAMILY_TEMPLATE,
    LITE,
    LIVE_URL,
    MINI_V2,
    MULTILINGUAL,
    ORIGIN_LEADERBOARDS,
    ORIGIN_TEMPLATE,
    VERIFIED,
    SWEBenchSource,
    parse_leaderboards,
)

AS_OF = datetime(2025, 12, 10, tzinfo=UTC)
DATA = Path(__file__).resolve().parent.parent / "data" / "swebench"
DEC_10 = "leaderboards_2025-12-10.json"
TYPED_2026 = "leaderboards_2026-02-18_typed.json"
"""The 2026 shape (Multilingual, mini-SWE-agent 2.x rows), typed from the 2025-12-10 rows (README.md)."""


async def no_sleep(_: float) -> None:
    return None


def small_identity() -> Identity:
    """Fixed model->org and org->country tables, so `mixed` does not depend on the shipped CSVs."""
    ident = Identity()
    ident.model_orgs = [
        (re.compile(p), org, ow) for p, org, ow in [
            (r"^claude", "Anthropic", False),
            (r"^(gpt|o\d)", "OpenAI", False),
            (r"^doubao", "ByteDance", False),
            (r"kimi", "Moonshot AI", True),
            (r"^qwen", "Alibaba", True),
        ]
    ]
    ident.org_countries = {
        "anthropic": ("US",), "openai": ("US",), "bytedance": ("CN",), "moonshot ai": ("CN",),
        "alibaba": ("CN",), "qwen": ("CN",), "swe-agent": ("US",), "atlassian": ("AU",),
    }
    return ident


def leaderboards(name: str = DEC_10) -> bytes:
    return (DATA / name).read_bytes()


def template(date: str) -> bytes:
    return (DATA / f"data_{date}.json").read_bytes()


def parse(content: bytes, identity=None, origin=ORIGIN_LEADERBOARDS):
    snaps = parse_leaderboards(content, identity=identity or Identity(), url="test://swebench",
                               as_of=AS_OF, fetched_at=AS_OF, origin=origin)
    return {s.board.id: s for s in snaps}


def row(snapshot, name: str):
    [found] = [e for e in snapshot.entries if e.name == name]
    return found


# -- the tagged shape (2025-07 on, the live format) -------------------------------------------------

def test_row_counts_per_board_2025_12_10(identity):
    snaps = parse(leaderboards(), identity)
    # Test and Multimodal are in the file but not listed boards; no 2.x mini-SWE-agent row yet.
    # (The excerpt keeps 14 of 162 Verified, 5 of 84 Lite and 8 of 31 bash-only rows.)
    assert {k: len(s.entries) for k, s in snaps.items()} == {
        "swebench/verified": 14, "swebench/lite": 5, "swebench/bash-only": 8}
    for s in snaps.values():
        assert s.origin == ORIGIN_LEADERBOARDS and s.as_of == AS_OF and not s.truncated


def test_verified_row_carries_model_and_org_tags():
    verified = parse(leaderboards(), small_identity())["swebench/verified"]
    top = verified.entries[0]
    # tags: Model: Doubao-Seed-Code, Model: Doubao-Seed-1.6, Org: ByteDance, System: Attempts - 2+
    assert (top.name, top.score, top.rank) == ("TRAE + Doubao-Seed-Code", 78.8, 1)
    assert top.components == ("Doubao-Seed-Code", "Doubao-Seed-1.6")
    assert top.organization == "ByteDance"
    assert top.open_weights is False  # os_model: false
    assert top.countries == ("CN",) and not top.mixed
    epam = row(verified, "EPAM AI/Run Developer Agent v20250719 + Claude 4 Sonnet")
    assert (epam.score, epam.rank) == (76.8, 3)
    assert epam.components == ("claude-sonnet-4-20250514",)
    assert epam.organization == "EPAM Systems, Inc."


def test_system_with_two_model_tags_is_mixed():
    verified = parse(leaderboards(), small_identity())["swebench/verified"]
    rovo = row(verified, "Atlassian Rovo Dev (2025-09-02)")
    # Ties with EPAM at 76.8 for 3rd; tags Model: claude-sonnet-4-20250514, Model: gpt-5, Org: Atlassian.
    assert (rovo.score, rovo.rank) == (76.8, 3)
    assert rovo.components == ("claude-sonnet-4-20250514", "gpt-5")
    assert rovo.organization == "Atlassian"
    assert rovo.mixed and rovo.country is None
    assert set(rovo.countries) == {"AU", "US"}
    acoder = row(verified, "ACoder")
    assert (acoder.score, acoder.rank) == (76.4, 5)
    assert acoder.components == ("claude-4-sonnet", "claude-4.1-opus", "gpt-5-0807-global",
                                 "gemini-2.5-pro-06-17")


def test_org_in_another_country_than_the_model_is_mixed():
    verified = parse(leaderboards(), small_identity())["swebench/verified"]
    # tags: Model: Kimi-K2-Instruct, Org: Moonshot AI, System: Attempts - 1, Org: SWE-agent
    kimi = row(verified, "mini-SWE-agent + Kimi K2 Instruct")
    assert (kimi.score, kimi.components, kimi.organization) == (43.8, ("Kimi-K2-Instruct",), "Moonshot AI")
    assert kimi.mixed and set(kimi.countries) == {"CN", "US"} and kimi.open_weights is True
    # tags: Model: claude-opus-4-5-20251101, Org: Anthropic, ..., Org: SWE-agent: both US, one country.
    opus = row(verified, "mini-SWE-agent + Claude 4.5 Opus medium (20251101)")
    assert opus.organization == "Anthropic" and opus.country == "US" and not opus.mixed


def test_several_model_organizations_without_org_tag():
    lite = parse(leaderboards(), small_identity())["swebench/lite"]
    # tags: Model: claude-4-sonnet-20250514, Model: o3-mini, Model: o4-mini, System: ... (no Org:)
    top = lite.entries[0]
    assert (top.name, top.score, top.rank) == ("ExpeRepair-v1.0 + Claude 4 Sonnet", 60.33, 1)
    assert top.components == ("claude-4-sonnet-20250514", "o3-mini", "o4-mini")
    assert top.organization == MIXED and top.mixed


def test_hugging_face_url_model_tag_becomes_the_repo_id():
    verified = parse(leaderboards(), small_identity())["swebench/verified"]
    oh = row(verified, "OpenHands + Qwen3-Coder-480B-A35B-Instruct")
    assert oh.components == ("Qwen/Qwen3-Coder-480B-A35B-Instruct",)
    assert oh.organization == "Qwen" and oh.score == 69.6


def test_tagged_row_without_model_tag():
    verified = parse(leaderboards("leaderboards_2025-07-11.json"), small_identity())[
        "swebench/verified"]
    # An older TRAE run tagged only "System: Attempts - 2+": no components, no organization.
    [old_trae] = [e for e in verified.entries if e.name == "TRAE" and e.score == 70.6]
    assert old_trae.components == () and old_trae.organization is None and not old_trae.mixed
    openhands = row(verified, "OpenHands")
    assert openhands.components == () and openhands.organization == "OpenHands"


def test_bash_only_board(identity):
    snaps = parse(leaderboards("leaderboards_2025-07-11.json"), identity)
    bash = snaps["swebench/bash-only"]
    assert bash.board is BASH_ONLY and len(bash.entries) == 12
    top = bash.entries[0]
    assert (top.name, top.score, top.rank) == ("Claude 4 Sonnet (20250514)", 65.17, 1)
    assert top.components == ("claude-4-sonnet-20250514",)
    assert top.organization == "Anthropic"


def test_duplicate_system_names_are_separate_rows(identity):
    verified = parse(leaderboards(), identity)["swebench/verified"]
    devlo = [(e.score, e.rank) for e in verified.entries if e.name == "devlo"]
    assert [score for score, _ in devlo] == [70.2, 58.2, 54.2]


# -- old shapes -------------------------------------------------------------------------------------

def test_leaderboards_2025_05_07_has_old_rows_and_no_bash_only(identity):
    snaps = parse(leaderboards("leaderboards_2025-05-07.json"), identity)
    # (the excerpt keeps 8 of 69 Verified and 6 of 66 Lite rows)
    assert {k: len(s.entries) for k, s in snaps.items()} == {"swebench/verified": 8, "swebench/lite": 6}
    top = snaps["swebench/verified"].entries[0]
    assert (top.name, top.score, top.rank) == ("Augment Agent v0", 65.4, 1)
    assert top.components == () and top.organization is None


def test_template_2024_10_22_row(identity):
    snaps = parse(template("2024-10-22"), identity, origin=ORIGIN_TEMPLATE)
    # (the excerpt keeps 8 of 30 Verified and 8 of 40 Lite rows)
    assert {k: len(s.entries) for k, s in snaps.items()} == {"swebench/verified": 8, "swebench/lite": 8}
    top = snaps["swebench/verified"].entries[0]
    assert (top.name, top.score, top.rank) == ("Tools + Claude 3.5 Sonnet (2024-10-22)", 49.0, 1)
    # org_logo is only a logo URL; no organization is guessed, the name is not split.
    assert top.organization is None and top.components == () and not top.mixed
    lite = snaps["swebench/lite"].entries[0]
    assert (lite.name, lite.score, lite.rank) == ("CodeStory Aide + Mixed Models", 43.0, 1)
    assert snaps["swebench/lite"].origin == ORIGIN_TEMPLATE


def test_template_2024_04_16_two_key_shape_with_string_scores(identity):
    snaps = parse(template("2024-04-16"), identity, origin=ORIGIN_TEMPLATE)
    assert list(snaps) == ["swebench/lite"]  # test_leaderboard is the unlisted full set
    lite = snaps["swebench/lite"]
    assert lite.board is LITE and len(lite.entries) == 8
    top = lite.entries[0]
    # "resolved": "17.00" (a string); "SWE-agent + GPT 4" names a system and is not split.
    assert (top.name, top.score, top.rank) == ("SWE-agent + GPT 4", 17.0, 1)
    assert top.components == () and top.organization is None
    assert [(e.name, e.score) for e in lite.entries[-2:]] == [("RAG + SWE-Llama 7B", 1.33),
                                                            ("RAG + ChatGPT 3.5", 0.33)]


def test_template_2024_06_24_ties(identity):
    lite = parse(template("2024-06-24"), identity)["swebench/lite"]
    assert len(lite.entries) == 23
    tied = [(e.name, e.rank) for e in lite.entries if e.score == 26.67]
    assert tied == [("IBM Research Agent-101", 6), ("Moatless Tools + Claude 3.5 Sonnet", 6)]
    assert row(lite, "Aider + GPT 4o & Claude 3 Opus").rank == 8


# -- recordings -------------------------------------------------------------------------------------

@pytest.mark.whole_history
def test_every_recording_loads(recordings, identity):
    source = SWEBenchSource(identity)
    found = source.recordings(recordings)
    assert [r.family for r in found].count(FAMILY_LEADERBOARDS) == 6
    assert [r.family for r in found].count(FAMILY_TEMPLATE) == 4
    assert all(r.priority == 10 for r in found)
    for rec in found:
        snaps = source.load(rec)
        assert tuple(sorted(s.board.id for s in snaps)) == tuple(sorted(rec.board_ids))
        for s in snaps:
            assert s.as_of == rec.as_of == s.fetched_at and s.as_of.tzinfo is UTC
            assert s.entries
    dates = [(r.as_of.date().isoformat(), r.board_ids) for r in found]
    assert dates[0] == ("2024-04-16", ("swebench/lite",))
    assert dates[-1] == ("2025-12-10", ("swebench/verified", "swebench/lite", "swebench/bash-only"))
    promised = {b.id for b in source.boards()}
    assert promised == {"swebench/verified", "swebench/lite", "swebench/bash-only",
                        "swebench/verified-mini-v2", "swebench/multilingual"}
    # the recordings end 2025-12-10, before the Multilingual board and mini-SWE-agent 2.x
    assert {rid for r in found for rid in r.board_ids} == promised - {MINI_V2.id, MULTILINGUAL.id}
    # bash-only appears from 2025-07 on.
    assert [r.as_of.date().isoformat() for r in found if BASH_ONLY.id in r.board_ids][0] == "2025-07-11"


# -- errors -----------------------------------------------------------------------------------------

def test_truncated_file():
    raw = leaderboards()
    with pytest.raises(SourceError, match="JSON does not parse"):
        parse(raw[: len(raw) // 2])


def test_required_field_renamed():
    raw = template("2024-10-22").replace(b'"resolved":', b'"resolved_pct":')
    with pytest.raises(SourceError, match=r"verified row 1 lacks required field\(s\) resolved"):
        parse(raw)


def test_empty_results():
    content = json.dumps({"leaderboards": [{"name": "Verified", "results": []}]}).encode()
    with pytest.raises(SourceError, match="verified: empty leaderboard"):
        parse(content)


def test_no_listed_board():
    content = json.dumps({"leaderboards": [{"name": "Multimodal", "results": [
        {"name": "x", "resolved": 1.0}]}]}).encode()
    with pytest.raises(ShapeError, match=r"no Verified, Lite or bash-only leaderboard .*Multimodal"):
        parse(content)


def test_unknown_shape():
    with pytest.raises(SourceError, match="expected a 'leaderboards' list"):
        parse(b'{"data": []}')


def test_unparseable_score_drops_its_row(caplog):
    # Issue 14: the row is dropped and counted in one log line; the board stands.
    good = parse(template("2024-04-16"))["swebench/lite"]
    raw = template("2024-04-16").replace(b'"17.00"', b'"n/a"')
    lite = parse(raw)["swebench/lite"]
    assert len(lite.entries) == len(good.entries) - 1
    assert "SWE-agent + GPT 4" not in [e.name for e in lite.entries]
    assert any("swebench/lite" in r.getMessage() and "'SWE-agent + GPT 4'" in r.getMessage()
               for r in caplog.records)


def test_html_error_page():
    with pytest.raises(SourceError, match="HTML page"):
        parse(b"<!DOCTYPE html>\n<html><head><title>404</title></head></html>")


# -- live fetch -------------------------------------------------------------------------------------

def fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=no_sleep)


async def test_live_fetch(identity):
    # The live file also carries per_instance_details on bash-only rows; put some back.
    data = json.loads(leaderboards())
    for board in data["leaderboards"]:
        if board["name"] == "bash-only":
            board["results"][0]["per_instance_details"] = {"astropy__astropy-12907": {"resolved": True}}
    body = json.dumps(data).encode()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.method == "GET"
        return httpx.Response(200, content=body, headers={"etag": '"abc"'})

    before = datetime.now(UTC)
    snaps = await SWEBenchSource(identity).fetch(fetcher(handler))
    assert seen == [LIVE_URL]
    assert LIVE_URL == ("https://raw.githubusercontent.com/SWE-bench/swe-bench.github.io/master/"
                        "data/leaderboards.json")
    assert {s.board.id: len(s.entries) for s in snaps} == {
        "swebench/verified": 14, "swebench/lite": 5, "swebench/bash-only": 8}
    for s in snaps:
        assert s.as_of == s.fetched_at and s.as_of >= before and s.as_of.tzinfo is not None
    verified = next(s for s in snaps if s.board is VERIFIED)
    assert verified.entries[0].name == "TRAE + Doubao-Seed-Code"


async def test_live_304_returns_nothing(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(304)

    assert await SWEBenchSource(identity).fetch(fetcher(handler)) == []


async def test_live_html_page(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html><body>Service unavailable</body></html>")

    with pytest.raises(SourceError, match="HTML page"):
        await SWEBenchSource(identity).fetch(fetcher(handler))


async def test_live_server_error(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502)

    with pytest.raises(SourceError, match="HTTP 502 after 4 attempts"):
        await SWEBenchSource(identity).fetch(fetcher(handler))


# -- the 2026 boards: the site's default Verified view, Multilingual ---------------------------------

def test_2026_shape_gives_the_boards_the_site_shows(identity):
    snaps = parse(leaderboards(TYPED_2026), identity)
    assert set(snaps) == {"swebench/verified", "swebench/lite", "swebench/bash-only",
                          "swebench/verified-mini-v2", "swebench/multilingual"}
    # the Verified tab's default: bash-only rows run with mini-SWE-agent 2.x only
    default = snaps["swebench/verified-mini-v2"]
    assert default.board is MINI_V2
    assert [(e.name, e.score, e.rank) for e in default.entries] == [
        ("Claude 4.5 Opus medium (20251101)", 76.8, 1), ("Gemini 3 Pro Preview (2025-11-18)", 75.6, 2)]
    # "bash-only" keeps every mini-SWE-agent version; "All agents" is the Verified list, unchanged
    assert len(snaps["swebench/bash-only"].entries) == 6
    assert snaps["swebench/verified"].entries[0].name == "TRAE + Doubao-Seed-Code"
    multilingual = snaps["swebench/multilingual"]
    assert multilingual.board is MULTILINGUAL and len(multilingual.entries) == 3
    top = multilingual.entries[0]
    assert (top.name, top.score, top.organization) == ("Claude 4.5 Opus medium (20251101)", 68.0, "Anthropic")
    assert top.components == ("claude-opus-4-5-20251101",)


def test_mini_rows_inside_the_verified_list_make_the_bash_only_boards():
    # Should mini-SWE-agent runs move into the Verified list with no bash-only list left.
    data = json.loads(leaderboards(TYPED_2026))
    bash = next(lb for lb in data["leaderboards"] if lb["name"] == "bash-only")
    data["leaderboards"].remove(bash)
    verified = next(lb for lb in data["leaderboards"] if lb["name"] == "Verified")
    verified["results"] += bash["results"]
    snaps = parse(json.dumps(data).encode(), small_identity())
    assert len(snaps["swebench/verified"].entries) == 3 + 6
    assert len(snaps["swebench/bash-only"].entries) == 6
    assert len(snaps["swebench/verified-mini-v2"].entries) == 2


def test_boards_in_a_recorded_2026_file(tmp_path, identity):
    folder = tmp_path / "swebench" / "leaderboards_json"
    folder.mkdir(parents=True)
    (folder / "leaderboards_2026-02-18.json").write_bytes(leaderboards(TYPED_2026))
    source = SWEBenchSource(identity)
    [rec] = source.recordings(tmp_path)
    assert set(rec.board_ids) == {b.id for b in source.boards()}
    assert {s.board.id for s in source.load(rec)} == set(rec.board_ids)


async def test_a_board_gone_from_the_live_file_is_reported_once(identity):
    served = {"body": leaderboards(TYPED_2026)}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=served["body"])

    source = SWEBenchSource(identity)
    http = fetcher(handler)
    assert len(await source.fetch(http)) == 5
    data = json.loads(served["body"])
    data["leaderboards"] = [lb for lb in data["leaderboards"] if lb["name"] != "Multilingual"]
    served["body"] = json.dumps(data).encode()
    with pytest.raises(ShapeError, match=r"board\(s\) gone from the fetch: swebench/multilingual"):
        await source.fetch(http)
    assert len(await source.fetch(http)) == 4  # told once: the next poll stores the four boards
    # a board every file has (CORE) is missed at every poll
    data["leaderboards"] = [lb for lb in data["leaderboards"] if lb["name"] != "Lite"]
    served["body"] = json.dumps(data).encode()
    for _ in range(2):
        with pytest.raises(ShapeError, match="gone from the fetch: swebench/lite"):
            await source.fetch(http)


async def test_a_configured_url_is_the_file_fetched(identity):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=leaderboards())

    source = SWEBenchSource(identity, url="https://mirror.example/swe/leaderboards.json")
    assert source.probe_url == "https://mirror.example/swe/leaderboards.json"
    assert len(await source.fetch(fetcher(handler))) == 3
    assert seen == ["https://mirror.example/swe/leaderboards.json"]
