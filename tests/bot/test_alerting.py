"""The rules run on every stored change, with their state kept in the database across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from leaderwatch.alerts.models import Event
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Board, Entry, make_snapshot
from leaderwatch.sources.identity import default_groups
from leaderwatch.storage.db import open_db

BOARD = Board("t/board", "Test", "score", True, False, "https://example.org")
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def entry(name: str, score: float, rank: int, country: str) -> Entry:
    return Entry(name=name, model_key=name.lower(), score=score, rank=rank, organization=name.split("-")[0],
                 countries=(country,))


def standings(day: int, *rows: tuple[str, float, str]) -> list:
    when = T0 + timedelta(days=day)
    ordered = sorted(rows, key=lambda r: -r[1])
    entries = [entry(n, s, i, c) for i, (n, s, c) in enumerate(ordered, start=1)]
    return [make_snapshot(BOARD, when, when, entries)]


def test_rules_run_on_stored_changes_and_remember_across_restarts(tmp_path: Path) -> None:
    groups = default_groups()
    rules = default_rules(list(groups))
    db = open_db(tmp_path / "lw.db")
    now = [T0]
    seen: list[Event] = []

    def alerter() -> Alerter:
        return Alerter(db, rules, groups, lambda: now[0], seen.append)

    def ingest(day: int, *rows: tuple[str, float, str]) -> list[Event]:
        now[0] = T0 + timedelta(days=day)
        before = len(seen)
        for stored in store_all(db, standings(day, *rows), "test"):
            if stored.result.stored:
                alerter().on_change(stored)  # a new Alerter each time: state comes from the database
        return seen[before:]

    assert ingest(0, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 70, "CN"), ("Mistral-c", 60, "FR")) == []
    events = ingest(1, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR"))
    assert sorted(e.kind for e in events) == ["new_leader", "overtake"]
    overtake = next(e for e in events if e.kind == "overtake")
    assert (overtake.model, overtake.other, overtake.groups) == ("DeepSeek-b", "OpenAI-a", ("china", "west"))
    back = ingest(2, ("OpenAI-a", 90, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR"))
    assert sorted(e.kind for e in back) == ["new_leader", "overtake"]
    # A third flip within the 7-day cooldown of the first one stays quiet, even across restarts.
    assert ingest(3, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR")) == []
    new = ingest(4, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 85, "CN"), ("Qwen-d", 82, "CN"))
    assert [(e.kind, e.model) for e in new] == [("new_model", "Qwen-d")]
    assert db.execute("SELECT count(*) FROM rule_states WHERE board_id = 't/board'").fetchone()[0] == 2
