"""Every chat question reads through indexes (issue 14 item 3): no query it runs scans all snapshots,
entries, events or outbox rows, nor reads a model's entries over its whole history.

Each question is asked on the imported excerpts with SQLite's statement trace on; every SELECT it ran
goes through `EXPLAIN QUERY PLAN`. Plans do not depend on how many rows the tables hold (no ANALYZE),
so what passes here stays flat as history grows (bench/bench_latency.py measures it).

SQLite only by nature (issue 15): these are SQLite's plans and its `INDEXED BY` hints; PostgreSQL plans by
its statistics, and the same queries run there in the command tests (tests/bot/test_commands.py).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from leaderwatch.bot.commands import COMMANDS, Invocation, dispatch
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import open_db
from tests.helpers import build_context

NOW = datetime(2025, 12, 15, tzinfo=UTC)
QUESTIONS = {
    "boards": ["boards"],
    "top": ["top lmarena/text", "top lmarena/text 5 china at 2025-03-01"],
    "model": ["model gemini-2.5-pro", "model claude-opus-4-20250514 at 2025-08-01"],
    "events": ["events", "events lmarena/text 30", "events 30 at 2025-08-04"],
    "why": ["why lmarena/text", "why lmarena/text at 2025-06-01"],
    "race": ["race lmarena/text", "race all", "race all at 2025-02-01"],
    "gap": ["gap lmarena/text china west", "gap lmarena/text china west 90 at 2025-08-01"],
    "share": ["share lmarena/text", "share lmarena/text 5 at 2025-06-01"],
    "report": ["report", "report at 2025-08-04"],
    "versus": ["versus gemini-2.5-pro claude-opus-4-20250514"],
    "chart": ["chart lmarena/text", "chart lmarena/text china 365 at 2025-06-01"],
    "chart model": ["chart model gemini-2.5-pro", "chart model gemini-2.5-pro 90 at 2025-09-01"],
}
GROWING = ("snapshots", "entries", "events", "outbox")
"""The tables that grow with history: read by index search only."""
NOT_ALIASES = {"WHERE", "ON", "JOIN", "ORDER", "GROUP", "LIMIT", "INNER", "LEFT", "USING", "AND", "SET"}


def full_reads(db: Database, sql: str) -> list[str]:
    """The steps of `sql`'s plan that read a growing table whole, or a model's entries over all time."""
    tables = {t: t for t in GROWING}
    for table, alias in re.findall(r"\b(snapshots|entries|events|outbox)\s+(?:AS\s+)?(\w+)", sql, re.I):
        if alias.upper() not in NOT_ALIASES:
            tables[alias] = table
    found = []
    for *_, detail in db.execute("EXPLAIN QUERY PLAN " + sql).fetchall():
        scan = re.match(r"SCAN (\w+)", detail)
        if (scan and scan.group(1) in tables) or "idx_entries_model_key" in detail:
            found.append(detail)
    return found


@pytest.fixture(scope="module")
def template(imported_excerpts: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "excerpts.db"
    shutil.copy(imported_excerpts[0], path)
    return path


@pytest.fixture(scope="module")
def plans_db(template: Path) -> Iterator[Database]:
    db = open_db(template)
    yield db
    db.close()


def test_every_question_is_checked() -> None:
    questions = {name for name, cmd in COMMANDS.items() if not cmd.configures and name != "help"}
    assert questions <= set(QUESTIONS)


def test_the_check_sees_a_scan_and_a_read_over_all_history(plans_db: Database) -> None:
    assert full_reads(plans_db, "SELECT count(*) FROM entries WHERE score > 1")
    assert full_reads(plans_db, "SELECT s.id FROM snapshots s WHERE s.entry_count > 3")
    assert full_reads(plans_db, "SELECT rank FROM entries WHERE model_key = 'o3'")
    assert not full_reads(plans_db, "SELECT rank FROM entries WHERE snapshot_id = 1 AND +model_key = 'o3'")


@pytest.mark.parametrize("text", [t for texts in QUESTIONS.values() for t in texts])
async def test_the_question_reads_through_indexes(plans_db: Database, identity: Identity, text: str) -> None:
    ctx = build_context(plans_db, lambda: NOW, identity=identity)
    ran: list[str] = []
    plans_db.conn.set_trace_callback(ran.append)
    try:
        reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", text))
    finally:
        plans_db.conn.set_trace_callback(None)
    assert not reply.error, reply.text
    selects = [sql for sql in ran if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects
    assert {sql: steps for sql in selects if (steps := full_reads(plans_db, sql))} == {}
