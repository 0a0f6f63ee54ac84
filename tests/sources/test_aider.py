"""Aider source: every recorded YAML variant, composite architect rows, errors and the live fetch."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leaderwatch.sources.aider import (
    EDIT,
    EDIT_URL,
    FAMILY_EDIT,
    FAMILY_POLYGLOT,
    ORIGIN,
    POLYGLOT,
    POLYGLOT_URL,
    AiderSource,
    parse_leaderboard,
)
from leaderwatch.sources.base import MIXED, SourceError
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity

AS_OF = datetime(2024, 6, 17, tzinfo=UTC)


async def no_sleep(_: float) -> None:
    return None


def small_identity() -> Identity:
    """Fixed model->org and org->country tables, so `mixed` does not depend on the shipped CSVs."""
    ident = Identity()
    ident.model_orgs = [
        (re.compile(p), org, ow) for p, org, ow in [
            (r"^claude", "Anthropic", False),
            (r"^deepseek", "DeepSeek", True),
            (r"^(gpt|o\d)", "OpenAI", False),
            (r"^(qwq|qwen)", "Alibaba", True),
        ]
    ]
    ident.org_countries = {"anthropic": ("US",), "deepseek": ("CN",), "openai": ("US",), "alibaba": ("CN",)}
    return ident


DATA = Path(__file__).resolve().parent.parent / "data" / "aider"
"""Excerpts of the recorded YAML files (tests/data/aider/README.md): whole, or cut at run boundaries."""


def recorded(board: str, date: str) -> bytes:
    return (DATA / f"{board}_leaderboard" / f"{board}_leaderboard_{date}.yml").read_bytes()


def parse(content: bytes, board=EDIT, identity=None):
    return parse_leaderboard(content, board=board, identity=identity or Identity(), url="test://aider",
                             as_of=AS_OF, fetched_at=AS_OF)


def by_name(snapshot, name: str):
    return [e for e in snapshot.entries if e.name == name]


# -- recorded variants ------------------------------------------------------------------------------

def test_edit_2024_06_17_deepseek_coder_v2_leads_gpt_4o(identity):
    [snap] = parse(recorded("edit", "2024-06-17"), identity=identity)
    assert snap.board is EDIT
    assert snap.origin == ORIGIN
    assert snap.as_of == AS_OF and snap.as_of.tzinfo is not None
    assert len(snap.entries) == 27
    first, second = snap.entries[:2]
    assert (first.name, first.score, first.rank) == ("Deepseek Coder V2", 75.2, 1)
    assert (second.name, second.score, second.rank) == ("gpt-4o", 72.9, 2)
    # Two runs at 66.2 share rank 5 and the next run is 7th (competition ranks).
    tied = [(e.name, e.rank) for e in snap.entries if e.score == 66.2]
    assert tied == [("gpt-4-0125-preview", 5), ("gpt-4-0314", 5)]
    assert [e.rank for e in snap.entries if e.score == 65.4] == [7]


def test_edit_2024_05_06_oldest_file_has_no_released_field(identity):
    [snap] = parse(recorded("edit", "2024-05-06"), identity=identity)
    assert len(snap.entries) == 15
    top = snap.entries[0]
    assert (top.name, top.score, top.rank) == ("claude-3-opus-20240229", 68.4, 1)
    # "openai/deepseek-coder" keeps its display name; its key drops the vendor prefix.
    [ds] = by_name(snap, "openai/deepseek-coder")
    assert (ds.score, ds.model_key) == (54.5, "deepseek-coder")


def test_edit_2024_12_22_keeps_the_stray_polyglot_run_the_site_shows(identity):
    [snap] = parse(recorded("edit", "2024-12-22"), identity=identity)
    assert len(snap.entries) == 14  # the excerpt's runs (98 in the file)
    # A 225-case polyglot run of o1-mini sits in the edit file; the edit page renders every row.
    [stray] = by_name(snap, "o1-mini-2024-09-12")
    assert stray.score == 27.1
    [partial] = by_name(snap, "o1-mini")  # a 36-case partial run, also shown
    assert partial.score == 61.1
    # claude-3-5-sonnet-20241022 and o1 tie at 84.2 for first.
    assert [(e.name, e.score, e.rank) for e in snap.entries[:3]] == [
        ("claude-3-5-sonnet-20241022", 84.2, 1), ("o1", 84.2, 1), ("gemini-exp-1206 (whole)", 80.5, 3)]


def test_polyglot_2025_10_04_rows_and_ties(identity):
    [snap] = parse(recorded("polyglot", "2025-10-04"), board=POLYGLOT, identity=identity)
    assert snap.board is POLYGLOT
    assert len(snap.entries) == 13  # the excerpt's runs (69 in the file)
    top = snap.entries[0]
    assert (top.name, top.score, top.rank) == ("gpt-5 (high)", 88.0, 1)
    tied = [(e.name, e.rank) for e in snap.entries if e.score == 81.3]
    assert tied == [("gpt-5 (low)", 5), ("o3 (high)", 5)]
    [grok] = by_name(snap, "grok-4 (high)")
    assert (grok.score, grok.rank) == (79.6, 7)


def test_polyglot_keeps_every_run_of_the_same_model(identity):
    [snap] = parse(recorded("polyglot", "2025-08-25"), board=POLYGLOT, identity=identity)
    runs = by_name(snap, "openai/gpt-5")  # high, medium and low reasoning, same display name
    assert [(e.score, e.rank) for e in runs] == [(88.0, 1), (86.7, 2), (81.3, 5)]
    qwen = by_name(snap, "Qwen2.5-Coder-32B-Instruct")  # diff and whole edit formats
    assert sorted(e.score for e in qwen) == [8.0, 16.4]


def test_architect_row_is_composite_and_mixed():
    [snap] = parse(recorded("polyglot", "2025-01-24"), board=POLYGLOT, identity=small_identity())
    [arch] = by_name(snap, "DeepSeek R1 + claude-3-5-sonnet-20241022")
    assert (arch.score, arch.rank) == (64.0, 1)
    assert arch.components == ("DeepSeek R1", "claude-3-5-sonnet-20241022")
    assert arch.mixed and arch.organization == MIXED and arch.country is None
    assert set(arch.countries) == {"CN", "US"}
    [single] = by_name(snap, "DeepSeek R1")
    assert (single.score, single.components, single.organization) == (56.9, (), "DeepSeek")
    assert not single.mixed and single.country == "CN"


def test_architect_row_of_one_organization_is_not_mixed():
    [snap] = parse(recorded("polyglot", "2025-03-25"), board=POLYGLOT, identity=small_identity())
    [arch] = by_name(snap, "QwQ-32B + Qwen 2.5 Coder Instruct")
    assert arch.score == 26.2
    assert arch.components == ("QwQ-32B", "Qwen 2.5 Coder Instruct")
    assert not arch.mixed and arch.organization == "Alibaba"


# -- recordings -------------------------------------------------------------------------------------

@pytest.mark.whole_history
def test_every_recording_loads(recordings, identity):
    source = AiderSource(identity)
    found = source.recordings(recordings)
    assert [r.family for r in found].count(FAMILY_EDIT) == 7
    assert [r.family for r in found].count(FAMILY_POLYGLOT) == 13
    assert all(r.priority == 10 for r in found)
    assert not any("other" in r.path.parts for r in found)  # qwen3 / refactor boards are not listed
    for rec in found:
        [snap] = source.load(rec)
        assert snap.board.id in rec.board_ids and len(rec.board_ids) == 1
        assert snap.as_of == rec.as_of == snap.fetched_at
        assert snap.as_of.tzinfo is UTC
        assert len(snap.entries) >= 10
    first, last = found[0], found[-1]
    assert (first.as_of.date().isoformat(), first.family) == ("2024-05-06", FAMILY_EDIT)
    assert (last.as_of.date().isoformat(), last.family) == ("2025-10-04", FAMILY_POLYGLOT)
    assert {b.id for b in source.boards()} == {"aider/polyglot", "aider/edit"}
    assert {rid for r in found for rid in r.board_ids} == {"aider/polyglot", "aider/edit"}


# -- errors -----------------------------------------------------------------------------------------

def test_truncated_between_keys():
    raw = recorded("edit", "2024-06-17")
    cut = raw.index(b"  pass_rate_2: 72.9") + len(b"  pass_rate_2: 72")  # 72.9 cut to 72
    with pytest.raises(SourceError, match="the last run lacks fields every other run has .*truncated"):
        parse(raw[:cut])


def test_a_complete_file_whose_last_run_has_no_cost_is_not_truncated():
    # Real versions (edit 2024-11-23, polyglot 2025-01-30) end with a run that has no `total_cost`.
    raw = recorded("edit", "2024-06-17")
    head, sep, last = raw.rpartition(b"\n- ")
    last_run = b"\n".join(line for line in last.split(b"\n") if not line.lstrip().startswith(b"total_cost"))
    assert last_run != last
    [snapshot] = parse(head + sep + last_run)
    assert len(snapshot.entries) == raw.count(b"\n- ") + (1 if raw.startswith(b"- ") else 0)


def test_truncated_mid_run_drops_required_fields():
    raw = recorded("edit", "2024-06-17")
    with pytest.raises(SourceError, match=r"run 10 \(.*\) lacks required field\(s\) model, pass_rate_2"):
        parse(raw[: len(raw) // 3])


def test_yaml_that_does_not_parse():
    raw = recorded("polyglot", "2025-10-04")
    broken = raw[:2000] + b"\n  model: [unclosed\n"
    with pytest.raises(SourceError, match="YAML does not parse at line"):
        parse(broken, board=POLYGLOT)


def test_required_field_renamed():
    raw = recorded("polyglot", "2025-10-04").replace(b"pass_rate_2:", b"percent_correct:")
    with pytest.raises(SourceError, match=r"run 1 \(2025-02-25-20-23-07--gemini-pro\) lacks required "
                                          r"field\(s\) pass_rate_2"):
        parse(raw, board=POLYGLOT)


@pytest.mark.parametrize("content", [b"", b"[]\n", b"# no runs yet\n"])
def test_empty_table(content):
    with pytest.raises(SourceError, match="empty leaderboard"):
        parse(content)


def test_not_a_list():
    with pytest.raises(SourceError, match="expected a YAML list of runs, got a dict"):
        parse(b"runs:\n  - model: x\n")


def test_html_error_page():
    with pytest.raises(SourceError, match="HTML page"):
        parse(b"<!DOCTYPE html><html><body>404: Not Found</body></html>")


def test_unparseable_score_drops_its_run(caplog):
    # Issue 14: one broken row is dropped and counted in one log line; the rest of the table stands.
    good = parse(recorded("edit", "2024-05-06"))[0]
    raw = recorded("edit", "2024-05-06").replace(b"pass_rate_2: 68.4", b"pass_rate_2: n/a", 1)
    [snap] = parse(raw)
    assert len(snap.entries) == len(good.entries) - 1
    assert 68.4 not in [e.score for e in snap.entries]
    [line] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "aider/edit as of" in line and "dropped 1 of" in line and "(1 unreadable)" in line


# -- live fetch -------------------------------------------------------------------------------------

def fetcher(handler) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=no_sleep)


async def test_live_fetch_reads_both_files(identity):
    served = {
        POLYGLOT_URL: recorded("polyglot", "2025-10-04"),
        EDIT_URL: recorded("edit", "2024-12-22"),
    }
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        assert request.method == "GET" and url in served
        return httpx.Response(200, content=served[url], headers={"etag": '"v1"'})

    before = datetime.now(UTC)
    snaps = await AiderSource(identity).fetch(fetcher(handler))
    assert seen == [
        "https://raw.githubusercontent.com/Aider-AI/aider/main/aider/website/_data/polyglot_leaderboard.yml",
        "https://raw.githubusercontent.com/Aider-AI/aider/main/aider/website/_data/edit_leaderboard.yml",
    ]
    assert [(s.board.id, len(s.entries)) for s in snaps] == [("aider/polyglot", 13), ("aider/edit", 14)]
    for s in snaps:
        # The files carry no publication date: the board is as of the fetch.
        assert s.as_of == s.fetched_at and s.as_of >= before and s.as_of.tzinfo is not None
    assert snaps[0].entries[0].name == "gpt-5 (high)"


async def test_live_304_returns_nothing(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(304)

    assert await AiderSource(identity).fetch(fetcher(handler)) == []


async def test_live_one_file_unchanged(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == EDIT_URL:
            return httpx.Response(304)
        return httpx.Response(200, content=recorded("polyglot", "2024-12-22"))

    snaps = await AiderSource(identity).fetch(fetcher(handler))
    assert [(s.board.id, len(s.entries)) for s in snaps] == [("aider/polyglot", 10)]


async def test_live_html_page(identity):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html><body>rate limited</body></html>")

    with pytest.raises(SourceError, match="HTML page"):
        await AiderSource(identity).fetch(fetcher(handler))


async def test_live_server_error(identity):
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    with pytest.raises(SourceError, match="HTTP 503 after 4 attempts"):
        await AiderSource(identity).fetch(fetcher(handler))
    assert calls == 4


async def test_a_configured_url_is_the_folder_of_both_files(identity):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        name = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, content=recorded(name.split("_", 1)[0], "2024-12-22"))

    source = AiderSource(identity, url="https://mirror.example/aider/_data/")
    assert source.probe_url == "https://mirror.example/aider/_data/polyglot_leaderboard.yml"
    snaps = await source.fetch(fetcher(handler))
    assert seen == ["https://mirror.example/aider/_data/polyglot_leaderboard.yml",
                    "https://mirror.example/aider/_data/edit_leaderboard.yml"]
    assert [s.board.id for s in snaps] == ["aider/polyglot", "aider/edit"]
