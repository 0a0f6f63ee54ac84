"""The race as people tell it, on the recorded excerpts (tests/data/recordings): shares of a top N, a
model against its rival on every board, the whole race at a glance, and windows that name the tables
they compare."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch
from leaderwatch.bot.commands.questions import top_entries
from leaderwatch.sources.identity import Identity, default_groups
from leaderwatch.sources.registry import all_boards, all_sources
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database, open_db
from leaderwatch.storage.export import copy_database
from tests.conftest import new_postgres_schema

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def race_db(request: pytest.FixtureRequest, imported_excerpts: tuple[Path, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The imported excerpts on each store in turn: a copy of the file, or their rows copied into a
    PostgreSQL schema of this module's own (kept for the module, dropped after)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("race-db") / "lw.db"
        shutil.copy(imported_excerpts[0], path)
        with contextlib.closing(open_db(path)) as db:
            yield db
        return
    with new_postgres_schema("race") as url, contextlib.closing(open_db(url)) as db:
        with contextlib.closing(open_db(imported_excerpts[0])) as source:
            copy_database(source, db)
        yield db


@pytest.fixture(scope="module")
def ctx(race_db: Database) -> CommandContext:
    """A read-only context over the imported excerpts (the questions here change nothing)."""
    identity = Identity.load()
    groups = default_groups()
    return CommandContext(race_db, identity, groups, default_rules(list(groups)),
                          all_boards(all_sources(identity)), lambda: NOW)


async def ask(ctx: CommandContext, text: str) -> Reply:
    reply = await dispatch(ctx, Invocation("console", "C1", "U1", "tester", text))
    assert not reply.error, reply.text
    return reply


async def test_qwen_holds_3_of_the_open_llm_top_10_on_2024_07_13(ctx: CommandContext) -> None:
    reply = await ask(ctx, "share openllm/v2 10 at 2024-07-13")
    assert reply.title == "Who holds the top 10 of openllm/v2"
    assert reply.text.startswith("As of 2024-07-13; 11 models: ties at #10 are kept. Alibaba (as Qwen) holds "
                                 "the most, 3: Qwen/Qwen2-72B-Instruct #1, Qwen/Qwen2-72B #3, "
                                 "Qwen/Qwen1.5-110B #10.")
    assert reply.table[1] == ("Alibaba (as Qwen)", "3", "Qwen/Qwen2-72B-Instruct #1, Qwen/Qwen2-72B #3, "
                                                         "Qwen/Qwen1.5-110B #10")
    china = next(r for r in reply.table if r[0] == "group china")
    assert china[1] == "5"


def both_listed(db: Database, key_a: str, key_b: str) -> dict[str, tuple[int, int]]:
    """Independently of `versus`: each board whose latest table lists both keys, with their best ranks."""
    out = {}
    for board in store.boards(db):
        snap = store.snapshot_at(db, board.id)
        assert snap is not None
        ranks_a = [e.rank for e in snap.entries if e.model_key == key_a]
        ranks_b = [e.rank for e in snap.entries if e.model_key == key_b]
        if ranks_a and ranks_b:
            out[board.id] = (min(ranks_a), min(ranks_b))
    return out


@pytest.mark.parametrize(("a", "b"), [
    ("gemini-2.5-pro", "claude-opus-4-20250514"),
    ("gemini-3-pro", "gpt-5.1-high"),
    ("deepseek-v3.2-thinking", "gpt-5-mini-high"),  # eight LiveBench boards, each ahead on some
    ("qwen2-72b-instruct", "meta-llama-3-70b-instruct"),
])
async def test_versus_lists_exactly_the_boards_listing_both_with_the_right_leader(
        ctx: CommandContext, a: str, b: str) -> None:
    key_a, key_b = ctx.identity.key(a), ctx.identity.key(b)
    expected = both_listed(ctx.db, key_a, key_b)
    assert expected, "the pair should share boards in the recorded history"
    reply = await ask(ctx, f"versus {a} {b}")
    rows = {r[0]: r for r in reply.table[1:]}
    assert set(rows) == set(expected)
    for board_id, (rank_a, rank_b) in expected.items():
        row = rows[board_id]
        assert row[3].startswith(f"#{rank_a} ") and row[4].startswith(f"#{rank_b} ")
        # The leader is the one `top` lists first on that board.
        snap = store.snapshot_at(ctx.db, board_id)
        assert snap is not None
        shown = top_entries(snap, max(rank_a, rank_b))
        first = next(e for e in shown if e.model_key in (key_a, key_b) and e.rank == min(rank_a, rank_b))
        if rank_a == rank_b:
            assert row[2] == "tied"
        else:
            assert row[2] == first.name
    ahead = sum(1 for ra, rb in expected.values() if ra < rb)
    assert f"is ahead on {ahead} of {len(expected)} board" in reply.text


async def test_versus_a_group_takes_its_best_model_other_than_the_model_itself(ctx: CommandContext) -> None:
    reply = await ask(ctx, "versus qwen3-vl-235b-a22b-instruct china lmarena/*")
    assert reply.title.lower() == "qwen3-vl-235b-a22b-instruct vs group china"
    for row in reply.table[1:]:
        assert row[0].startswith("lmarena/") and "qwen3-vl-235b-a22b-instruct (" not in row[4].lower()
    # China's best on lmarena/vision is the model itself (#5): the rival is the next one.
    vision = next(row for row in reply.table[1:] if row[0] == "lmarena/vision")
    assert (vision[3], vision[4]) == ("#5 (1241.42)", "#10 ernie-5.0-preview-1120 (1223.61)")
    org = await ask(ctx, "versus deepseek-v3.2-thinking OpenAI")
    assert org.title.endswith(" vs OpenAI") and len(org.table) == 1 + 9  # eight LiveBench boards, one LMArena
    assert ("livebench/coding", "2025-12-23", "gpt-5.1-codex-max", "#25 (64.62)",
            "#1 gpt-5.1-codex-max (81.38)", "-16.76") in org.table


async def test_versus_names_resolve_as_in_model_with_did_you_mean(ctx: CommandContext) -> None:
    reply = await dispatch(ctx, Invocation("console", "C1", "U1", "tester",
                                           "versus claude-3-5-sonnet gemini-3-pro"))
    assert reply.error and reply.text.startswith(
        "`claude-3-5-sonnet` matches several models: `claude-3-5-sonnet-diff`, `claude-3-5-sonnet-whole`")
    typo = await dispatch(ctx, Invocation("console", "C1", "U1", "tester", "versus gemini-2.5-pro chnia"))
    assert typo.error and "Did you mean `china`?" in typo.text


async def test_race_all_covers_every_board_with_a_table_by_the_date(ctx: CommandContext) -> None:
    at = datetime(2025, 2, 1, 23, 59, 59, tzinfo=UTC)
    expected = {b.id for b in store.boards(ctx.db)
                if (first := store.first_as_of(ctx.db, b.id)) is not None and first <= at}
    reply = await ask(ctx, "race all at 2025-02-01")
    assert {r[0] for r in reply.table[1:]} == expected
    assert reply.text.startswith(f"{len(expected)} boards, as of 2025-02-01: china leads on ")
    assert "30 days before: " in reply.text and "365 days before: " in reply.text
    for row in reply.table[1:]:
        assert row[1] <= "2025-02-01"


async def test_gap_over_a_year_compares_two_tables_about_a_year_apart(ctx: CommandContext) -> None:
    reply = await ask(ctx, "gap lmarena/text china west 365")
    start, before = reply.table[1], reply.table[2]
    assert before[0] == "365 days before"
    days = (datetime.fromisoformat(start[1]) - datetime.fromisoformat(before[1])).days
    assert 365 <= days <= 365 + 14, (start, before)  # the table in force a year before the last one
    assert f"in the table of {before[1]}" in reply.text and f"In the table of {start[1]}" in reply.text
    assert timedelta(days=days) >= timedelta(days=365)
