"""The acceptance path through the real CLI: import the recorded excerpts, then ask `top` and `boards`."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture(scope="module")
def imported(imported_excerpts: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[str, str]]:
    """A database holding every recorded excerpt (this module's copy: its tests change it), and the
    import's output."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LEADERWATCH_")}
    db = tmp_path_factory.mktemp("e2e") / "history.db"
    shutil.copy(imported_excerpts[0], db)
    yield str(db), imported_excerpts[1]
    os.environ.update(saved)


def row_of(output: str, name: str) -> list[str]:
    line = next(ln for ln in output.splitlines() if f" {name} " in ln)
    return line.split()


def test_import_prints_the_timeline_of_each_board(imported: tuple[str, str]) -> None:
    _, out = imported
    assert "lmarena/text\n" in out
    text_section = out.split("lmarena/text\n", 1)[1].split("\nlmarena/", 1)[0]
    assert "fboulnois" in text_section and "2024-06-19" in text_section


def test_import_stores_the_events_of_the_history_once_and_delivers_nothing(imported: tuple[str, str],
                                                                          excerpts: Path) -> None:
    """`events` answers for imported history; importing again finds nothing new and stores no event twice."""
    db, out = imported
    found = next(ln for ln in out.splitlines() if "event(s) found by the rules" in ln)
    assert found.startswith("94 event(s) found by the rules in the history of 21 changed board(s)")
    assert "not delivered" in found
    code, events, err = run_cli("--db", db, "query", "events lmarena/text 365 at 2025-12-11")
    assert code == 0, err
    assert "new #1: gemini-3-pro (Google, US) with 1486.6, taking it from gemini-2.5-pro" in events
    totals = "SELECT count(*), (SELECT count(*) FROM outbox) FROM events"
    count = sqlite3.connect(db).execute(totals).fetchone()
    assert count[0] == 94  # each event found is stored
    code, again, err = run_cli("--db", db, "import", "--recordings", str(excerpts))
    assert code == 0, err
    assert "0 event(s) found by the rules in the history of 0 changed board(s)" in again
    assert sqlite3.connect(db).execute(totals).fetchone() == count
    assert count[1] == 0  # nothing was queued for delivery


def test_top_lmarena_text_on_2025_01_24(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, out, err = run_cli("--db", db, "top", "lmarena/text", "--at", "2025-01-24", "-n", "5")
    assert code == 0, err
    assert "as of 2025-01-24" in out.splitlines()[0]
    row = row_of(out, "DeepSeek-R1")
    assert row[0] == "3" and "1357" in row and "DeepSeek" in row and "CN" in row


def test_top_openllm_v2_on_2024_07_13(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, out, err = run_cli("--db", db, "top", "openllm/v2", "--at", "2024-07-13", "-n", "2")
    assert code == 0, err
    rows = [ln for ln in out.splitlines()[4:] if ln.strip()]
    assert len(rows) == 2
    assert rows[0].split()[:2] == ["1", "Qwen/Qwen2-72B-Instruct"]


def test_top_with_group_filters_rows(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, out, _ = run_cli("--db", db, "top", "lmarena/text", "--at", "2025-01-24", "-n", "3",
                           "--group", "china")
    assert code == 0
    rows = [ln for ln in out.splitlines()[4:] if ln.strip()]
    assert rows and all(" CN " in f" {ln} " for ln in rows)


def test_reimport_is_idempotent(imported: tuple[str, str], excerpts: Path) -> None:
    db, _ = imported
    code, out, _ = run_cli("--db", db, "import", "--recordings", str(excerpts))
    assert code == 0
    assert "0 snapshot(s) stored" in out


def test_boards_lists_every_source(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, out, _ = run_cli("--db", db, "boards")
    assert code == 0
    for board in ("lmarena/text", "lmarena/vision", "openllm/v1", "openllm/v2", "aider/polyglot",
                  "aider/edit", "livebench/global", "swebench/verified", "epoch/eci"):
        assert board in out


def test_unknown_board_suggests(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, _, err = run_cli("--db", db, "top", "lmarena/txt")
    assert code == 2
    assert "did you mean" in err.lower() and "lmarena/text" in err


def test_boards_are_named_as_in_chat(imported: tuple[str, str]) -> None:
    """The CLI resolves board names like the chat commands: a unique board name, a prefix, any case."""
    db, _ = imported
    code, out, err = run_cli("--db", db, "top", "Text", "--at", "2025-01-24", "-n", "5")
    assert code == 0, err
    assert row_of(out, "DeepSeek-R1")[0] == "3"
    code, _, err = run_cli("--db", db, "top", "lmarena/")
    assert code == 2 and "`lmarena/` matches several boards: `lmarena/text`, `lmarena/text-style" in err


def test_bad_date_is_explained(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, _, err = run_cli("--db", db, "top", "lmarena/text", "--at", "24/01/2025")
    assert code == 2 and "`24/01/2025` is not a date: give one like 2025-01-24" in err


def test_config_error_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADERWATCH_SLACK_MODE", "carrier-pigeon")
    code, _, err = run_cli("--db", str(tmp_path / "x.db"), "boards")
    assert code == 2 and "LEADERWATCH_SLACK_MODE" in err


def test_bad_group_in_config_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lw.toml"
    config.write_text('[groups.asia]\ncountrys = ["JP"]\n')
    monkeypatch.setenv("LEADERWATCH_CONFIG", str(config))
    code, _, err = run_cli("--db", str(tmp_path / "x.db"), "boards")
    assert code == 2 and "config [groups]" in err and "`asia`" in err and "countrys" in err


def test_config_group_is_usable_in_top(imported: tuple[str, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = imported
    config = tmp_path / "lw.toml"
    config.write_text('[groups.google]\norganizations = ["Google"]\n')
    monkeypatch.setenv("LEADERWATCH_CONFIG", str(config))
    code, out, err = run_cli("--db", db, "top", "lmarena/text", "--at", "2025-01-24", "-n", "2",
                             "--group", "google")
    assert code == 0, err
    rows = [ln for ln in out.splitlines()[4:] if ln.strip()]
    # The group's first two (both published #1); Gemini-Exp-1121 (#2) is not tied with the second.
    assert [r.split()[:2] for r in rows] == [["1", "Gemini-2.0-Flash-Thinking-Exp-01-21"],
                                             ["1", "Gemini-Exp-1206"]]


def test_top_in_the_cli_and_in_chat_lists_the_same_rows_ties_kept(imported: tuple[str, str]) -> None:
    """One `top`: o3 (high) ties at #5 on aider/polyglot, so both list six rows."""
    db, _ = imported
    code, cli_out, err = run_cli("--db", db, "top", "aider/polyglot", "-n", "5")
    assert code == 0, err
    code, chat_out, err = run_cli("--db", db, "query", "top aider/polyglot 5")
    assert code == 0, err
    cli_rows = [ln.split()[:2] for ln in cli_out.splitlines()[4:] if ln.strip()]
    chat_rows = [ln.split()[:2] for ln in chat_out.splitlines()[3:] if ln.strip()[:1].isdigit()]
    assert len(cli_rows) == 6 and cli_rows == chat_rows
    assert [r[0] for r in cli_rows] == ["1", "2", "3", "4", "5", "5"]
    assert any(ln.split()[1:3] == ["o3", "(high)"] for ln in cli_out.splitlines()[4:] if ln.strip())


def test_query_runs_the_chat_command_layer_in_the_terminal(imported: tuple[str, str]) -> None:
    db, _ = imported
    code, out, _ = run_cli("--db", db, "query", "top", "lmarena/text", "3")
    assert code == 0
    assert out.splitlines()[0] == "*Top 3 on lmarena/text*"
    assert "gemini-3-pro" in out
    code, out, err = run_cli("--db", db, "query", "subscribe lmarena/* overtake top_n top=5")
    assert code == 0 and "Subscribed" in out
    code, out, _ = run_cli("--db", db, "query", "settings")
    assert "lmarena/*" in out and "top_n top=5" in out
    code, _, err = run_cli("--db", db, "query", "tpo")
    assert code == 1 and "Did you mean `top`?" in err
