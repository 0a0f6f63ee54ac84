"""Recorded history through the default rules: the events a user would have seen, and how many.

On the recorded excerpts (tests/data/recordings), except the backtest of the whole recorded history."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leaderwatch.alerts.models import CONFIDENCES, KINDS, Event
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.cli.history import BoardReplay, backtest, replay
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Identity, load_groups
from leaderwatch.sources.registry import all_sources
from tests.helpers import run_cli


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped defaults: no config file, no user rules."""
    import os

    for key in list(os.environ):
        if key.startswith("LEADERWATCH_"):
            monkeypatch.delenv(key)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def replayed(folder: Path, timeline: tuple[Snapshot, ...]) -> tuple[list[Event], dict[str, BoardReplay]]:
    """Every event of the default rules over the recordings in `folder`, and each board's bookkeeping."""
    identity = Identity.load()
    groups = load_groups({}, identity)
    boards: dict[str, BoardReplay] = {}
    events = list(replay(all_sources(identity), folder, default_rules(list(groups)), groups,
                         boards=boards, snapshots=timeline))
    return events, boards


@pytest.fixture(scope="module")
def history(excerpts: Path, excerpt_timeline: tuple[Snapshot, ...]
            ) -> tuple[list[Event], dict[str, BoardReplay]]:
    """Every event of the default rules over the recorded excerpts, and each board's bookkeeping."""
    return replayed(excerpts, excerpt_timeline)


def aider_edit(events: list[Event], when: str) -> list[Event]:
    return [e for e in events if e.board == "aider/edit" and e.at == day(when)]


def test_deepseek_coder_v2_takes_aider_edit_from_gpt_4o(history: tuple[list[Event], dict[str, BoardReplay]]
                                                         ) -> None:
    events, _ = history
    found = {e.kind: e for e in aider_edit(events, "2024-06-17")}
    overtake = found["overtake"]
    assert (overtake.model, overtake.other, overtake.groups) == ("Deepseek Coder V2", "gpt-4o",
                                                                 ("china", "west"))
    assert (overtake.rank_before, overtake.rank_after, overtake.score_after) == (None, 1, 75.2)
    assert overtake.confidence == "n/a"  # Aider publishes no intervals
    assert overtake.message == (
        "aider/edit: china model Deepseek Coder V2 (DeepSeek, CN) now ranks above the best west model "
        "gpt-4o (OpenAI, US): #1 vs #2, 75.2 vs 72.9")
    leader = found["new_leader"]
    assert (leader.model, leader.other) == ("Deepseek Coder V2", "gpt-4o")
    assert leader.message == ("aider/edit: new #1: Deepseek Coder V2 (DeepSeek, CN) with 75.2, taking it "
                              "from gpt-4o (OpenAI, US)")
    # A new model (not the older deepseek-coder renamed: that one left the table the same day).
    assert found["new_model"].model == "Deepseek Coder V2" and found["new_model"].rank_after == 1
    assert sorted(found) == ["new_leader", "new_model", "overtake"]


def test_claude_3_5_sonnet_takes_it_back_for_the_west(history: tuple[list[Event], dict[str, BoardReplay]]
                                                      ) -> None:
    events, _ = history
    between = [e for e in events if e.board == "aider/edit" and day("2024-06-18") <= e.at < day("2024-06-21")]
    assert between == []
    found = {e.kind: e for e in aider_edit(events, "2024-06-21")}
    overtake = found["overtake"]
    assert overtake.model == "claude-3.5-sonnet (whole)"
    assert overtake.other == "DeepSeek Coder V2 (whole)"  # Aider renamed the run; it is the same model
    assert overtake.groups == ("china", "west")
    assert overtake.message.startswith("aider/edit: west model claude-3.5-sonnet (whole) (Anthropic, US) now "
                                       "ranks above the best china model DeepSeek Coder V2 (whole)")
    assert found["new_leader"].model == "claude-3.5-sonnet (whole)"


def test_no_event_on_a_first_snapshot_or_a_change_of_method(
        history: tuple[list[Event], dict[str, BoardReplay]]) -> None:
    events, boards = history
    assert events and boards
    by_board: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_board[e.board].append(e)
    changes = 0
    for board, st in boards.items():
        assert st.first is not None and st.last is not None and st.snapshots >= 1
        quiet = {st.first} | {when for when, _ in st.changes}
        changes += len(st.changes)
        loud = [e for e in by_board.get(board, []) if e.at in quiet]
        assert loud == [], f"{board}: events on a baseline snapshot: {loud[:3]}"
        assert all(st.first < e.at <= st.last for e in by_board.get(board, []))
        for _, reason in st.changes:
            assert re.fullmatch(r"method .+ -> .+|recording .+ -> .+|most scores moved at once|"
                                r"most models changed places at once", reason), reason
    assert changes > 0  # the recorded history has changes of method (LiveBench releases, LMArena's
    assert any(reason.startswith("method ") for st in boards.values() for _, reason in st.changes)


def test_every_replayed_event_is_well_formed(history: tuple[list[Event], dict[str, BoardReplay]]) -> None:
    events, _ = history
    assert {e.kind for e in events} == {"overtake", "new_leader", "new_model"}
    assert [e.at for e in events] == sorted(e.at for e in events)  # replayed in time order
    for e in events:
        assert e.kind in KINDS and e.confidence in CONFIDENCES and e.model
        assert e.message.startswith(f"{e.board}: ")
        if e.kind == "overtake":
            assert e.groups == ("china", "west") and e.other
    keys = [e.dedupe_key for e in events]
    assert len(keys) == len(set(keys))


def test_replay_through_the_cli_as_jsonl(excerpts: Path, tmp_path: Path,
                                         history: tuple[list[Event], dict[str, BoardReplay]]) -> None:
    code, out, err = run_cli("--db", str(tmp_path / "x.db"), "replay", "--recordings", str(excerpts),
                             "--board", "aider/*", "--format", "jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(x["board"].startswith("aider/") for x in lines)
    for x in lines:
        assert {"at", "kind", "board", "model", "other", "groups", "confidence", "message"} <= set(x)
        assert datetime.fromisoformat(x["at"]).tzinfo is not None
        assert x["kind"] in KINDS and x["confidence"] in CONFIDENCES
        assert isinstance(x["groups"], list) and x["message"].startswith(x["board"] + ": ")
    june = [x for x in lines if x["at"].startswith("2024-06-17")]
    overtake = next(x for x in june if x["kind"] == "overtake")
    assert overtake["at"] == "2024-06-17T00:00:00+00:00"
    assert (overtake["board"], overtake["model"], overtake["other"], overtake["groups"]) == (
        "aider/edit", "Deepseek Coder V2", "gpt-4o", ["china", "west"])
    assert any(x["kind"] == "new_leader" and x["model"] == "Deepseek Coder V2" for x in june)
    back = next(x for x in lines if x["at"].startswith("2024-06-21") and x["kind"] == "overtake")
    assert back["model"] == "claude-3.5-sonnet (whole)"
    # The same events as the library's replay, restricted to the Aider boards.
    events, _ = history
    assert [x["dedupe_key"] for x in lines] == [e.dedupe_key for e in events if e.board.startswith("aider/")]


def test_replay_from_to(excerpts: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("--db", str(tmp_path / "x.db"), "replay", "--recordings", str(excerpts),
                             "--board", "aider/edit", "--from", "2024-06-17", "--to", "2024-06-21")
    assert code == 0, err
    lines = out.splitlines()
    assert lines and all(line[:10] in ("2024-06-17", "2024-06-21") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("2024-06-17")] == [
        "overtake", "new_leader", "new_model"]
    assert f"{len(lines)} event(s)" in err
    code, out, _ = run_cli("--db", str(tmp_path / "x.db"), "replay", "--recordings", str(excerpts),
                           "--board", "aider/edit", "--from", "2024-06-18", "--to", "2024-06-20")
    assert code == 0 and out == ""


@pytest.mark.whole_history
def test_backtest_of_all_history_is_quiet_enough(recordings: Path, tmp_path: Path,
                                                  recorded_timeline: tuple[Snapshot, ...]) -> None:
    code, out, err = run_cli("--db", str(tmp_path / "x.db"), "backtest", "--recordings", str(recordings))
    assert code == 0, err
    found = re.search(r"^average alerts per board per week: (\d+\.\d+)$", out, re.MULTILINE)
    assert found, out[-2000:]
    average = float(found.group(1))
    assert 0 < average <= 3
    # The printed figure is the library's.
    events, boards = replayed(recordings, recorded_timeline)
    rules = default_rules(list(load_groups({}, Identity.load())))
    assert f"{backtest(events, boards, rules).per_board_week():.2f}" == found.group(1)
    assert f"alerts in all: {len(events)} over {len(boards)} boards" in out


def test_unknown_rules_file_is_a_user_error(excerpts: Path, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nkind = "overtake"\ngroups = ["china", "atlantis"]\n')
    code, out, err = run_cli("--db", str(tmp_path / "x.db"), "replay", "--recordings", str(excerpts),
                             "--rules", str(bad))
    assert code == 2 and out == ""
    assert "unknown group `atlantis`" in err and str(bad) in err


def test_a_share_rule_replayed_on_lmarena_text_names_the_models_and_never_fires_on_a_baseline(
        excerpts: Path, tmp_path: Path, excerpt_timeline: tuple[Snapshot, ...]) -> None:
    """`replay --rules` with `share group=china count=3 top=10` on the real lmarena/text history."""
    rules = tmp_path / "share.toml"
    rules.write_text('[[rule]]\nkind = "share"\ngroup = "china"\ncount = 3\ntop = 10\n')
    code, out, err = run_cli("replay", "--recordings", str(excerpts), "--board", "lmarena/text", "--rules",
                             str(rules), "--format", "jsonl")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) >= 4 and {e["kind"] for e in events} == {"share"}
    held = re.compile(r"^lmarena/text: china now holds ([3-9]|10) of the top 10: (.+ #\d+, ){2,}.+ #\d+$")
    lost = re.compile(r"^lmarena/text: china no longer holds 3 of the top 10 \(([0-2]) now(: .+ #\d+)?\)$")
    assert all(held.match(e["message"]) or lost.match(e["message"]) for e in events), events
    assert any(held.match(e["message"]) for e in events) and any(lost.match(e["message"]) for e in events)
    # Never on a baseline: the board's first snapshot, or one whose method or recording changed.
    identity = Identity.load()
    groups = load_groups({}, identity)
    boards: dict[str, BoardReplay] = {}
    list(replay(all_sources(identity), excerpts, default_rules(list(groups)), groups, "lmarena/text",
                boards, excerpt_timeline))
    baselines = {boards["lmarena/text"].first} | {at for at, _ in boards["lmarena/text"].changes}
    assert not {datetime.fromisoformat(e["at"]) for e in events} & baselines
