"""The rules run on every stored change, with their state kept in the database across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leaderwatch.alerts.models import Event
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Board, Entry, make_snapshot
from leaderwatch.sources.identity import Identity, default_groups
from leaderwatch.storage.db import Database

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


def test_rules_run_on_stored_changes_and_remember_across_restarts(any_db: Database) -> None:
    groups = default_groups()
    rules = default_rules(list(groups))
    db = any_db
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
    # One row per rule that ran, new_model's (it remembers nothing) too: it says the rule ran there.
    assert db.execute("SELECT count(*) FROM rule_states WHERE board_id = 't/board'").fetchone()[0] == 3


async def test_why_runs_the_rules_again_as_the_engine_ran_them(any_db: Database) -> None:
    """`why` on polled snapshots: fired exactly when the rule fired, else what held it back."""
    groups = default_groups()
    rules = default_rules(list(groups))
    db = any_db
    now = [T0]
    stored: list[Event] = []
    ctx = CommandContext(db, Identity.load(), groups, rules, {}, lambda: now[0])

    def ingest(day: int, *rows: tuple[str, float, str]) -> None:
        now[0] = T0 + timedelta(days=day, hours=1)  # the poll comes an hour after the as-of time
        for result in store_all(db, standings(day, *rows), "test"):
            if result.result.stored:
                Alerter(db, rules, groups, lambda: now[0], stored.append).on_change(result)

    async def why() -> dict[str, str]:
        reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "why t/board"))
        return {f.name: f.value for f in reply.fields}

    ingest(0, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 70, "CN"), ("Mistral-c", 60, "FR"))
    await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "subscribe t/board", can_configure=True))
    ingest(1, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR"))
    fired = await why()
    assert fired["overtake groups=china,west"] == (
        "fired: china model DeepSeek-b (DeepSeek, CN) now ranks above the best west model OpenAI-a (OpenAI, "
        "US): #1 vs #2, 85 vs 80")
    assert fired["new_leader"] == (
        "fired: new #1: DeepSeek-b (DeepSeek, CN) with 85, taking it from OpenAI-a (OpenAI, US)")
    assert fired["new_model top=10"] == "quiet: no new model in the top 10 since the previous snapshot"
    ingest(2, ("OpenAI-a", 90, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR"))
    ingest(3, ("OpenAI-a", 80, "US"), ("DeepSeek-b", 85, "CN"), ("Mistral-c", 60, "FR"))
    await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "subscribe t/board top_n top=1",
                                   can_configure=True))
    held = await why()
    assert held["overtake groups=china,west"] == (
        "quiet: china leads: best china DeepSeek-b #1 vs best west OpenAI-a #2, after west led; inside the "
        "cooldown since 2024-06-02 01:00 UTC, when the same outcome fired (cooldown=1w)")
    assert held["new_leader"] == (
        "quiet: #1 changed: DeepSeek-b (85) after OpenAI-a; inside the cooldown since 2024-06-02 01:00 UTC, "
        "when the same outcome fired (cooldown=1w)")
    # A rule subscribed after the snapshot is judged as it would have been, and says so.
    assert held["top_n top=1"] == (
        "fired: DeepSeek-b (DeepSeek, CN) entered the top 1 at #1, was #2 (had it been there: the rule was "
        "added after this snapshot arrived)")
    assert not [e for e in stored if e.at == T0 + timedelta(days=3)]
