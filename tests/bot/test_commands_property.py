"""Property: whatever is typed, `dispatch` answers, and configuration changes only when a command succeeds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.models import KINDS
from leaderwatch.bot.commands import COMMANDS, CommandContext, Invocation, dispatch, parse_line
from leaderwatch.sources.identity import Identity
from leaderwatch.storage.db import open_db
from tests.bot.test_commands import build_database, make_context

CONFIG_TABLES = ("subscriptions", "channel_settings", "audit", "outbox")
CHANNELS = ("C1", "C2")

WORDS = st.sampled_from([
    *COMMANDS, *KINDS, "lmarena/text", "text", "vision", "aider", "aider/polyglot", "lmarena/*", "lmarna/*",
    "*", "aider/*", "lmarena/webdev", "all", "china", "west", "us", "europe", "mars", "top=5", "top=0",
    "groups=china,west", "groups=china,china", "confidence=clear", "threshold=80", "threshold=x",
    "model=gpt-4o", "by=3", "cooldown=1d", "confirm=2", "group=china", "direction=enter", "margin=2",
    "unit=percent", "=", "x=", "0", "5", "30", "51", "-1", "2h", "30m", "45d", "1w", "0m", "groups",
    "digest_hour", "default", "off", "daily", "weekly", "glm-4.5", "gemini", '"GLM 4.5"', "'", '"', "\\",
])
ARGUMENTS = st.lists(st.one_of(WORDS, WORDS, st.text(max_size=8)), max_size=6)
PATTERNS = st.sampled_from(["lmarena/*", "text", "aider/polyglot", "*", "lmarena/v*", "lmarna/*", "nope"])
PARAMS = st.sampled_from(["", "top=5", "groups=china,us", "confidence=clear", "by=3", "cooldown=1d", "top=0",
                          "threshold=80", "group=china", "direction=enter", "bogus=1"])
PLAUSIBLE = st.one_of(
    st.tuples(PATTERNS, st.lists(st.sampled_from(KINDS), max_size=3), st.lists(PARAMS, max_size=3)).map(
        lambda t: " ".join(["subscribe", t[0], *t[1], *t[2]])),
    st.tuples(st.sampled_from(["set top", "set groups", "set digest_hour", "mute", "digest", "unsubscribe"]),
              WORDS).map(" ".join),
    st.sampled_from(["mute 2h", "mute 1d", "unmute", "digest daily", "digest weekly", "digest off",
                     "set top 5", "set groups china,us,europe", "set top default", "unsubscribe all",
                     "unsubscribe lmarena/*", "settings"]),
)
LINES = st.one_of(
    PLAUSIBLE,
    st.tuples(st.sampled_from(sorted(COMMANDS)), ARGUMENTS).map(lambda t: " ".join([t[0], *t[1]])),
    st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=7).map(" ".join),
    st.text(max_size=60),
    st.text(st.characters(exclude_categories=()), max_size=30),  # lone surrogates and control characters
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, excerpts: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[CommandContext, asyncio.AbstractEventLoop]]:
    """One database of recorded snapshots shared by every example (on each store: PostgreSQL gets the
    SQLite file's rows); each example starts from no config."""
    from leaderwatch.storage.export import copy_database
    from tests.conftest import empty_postgres

    built = open_db(build_database(excerpts, tmp_path_factory.mktemp("property")))
    if request.param == "sqlite":
        db = built
    else:
        db = request.getfixturevalue("postgres_session_db")
        empty_postgres(db)
        copy_database(built, db)
        built.close()
    loop = asyncio.new_event_loop()
    yield make_context(db, Identity.load()), loop
    loop.close()
    if request.param == "sqlite":
        db.close()


ORDER = {"audit": "id", "subscriptions": "id", "outbox": "id",
         "channel_settings": "platform, channel_id, key"}
"""Each table's rows in the order they were written (PostgreSQL has no rowid)."""


def snapshot(db: Database) -> dict[str, list[dict[str, object]]]:
    return {t: list(db.table(t).rows_where(order_by=ORDER.get(t, "1"))) for t in CONFIG_TABLES}


def reset(db: Database) -> None:
    with db.atomic():
        for table in CONFIG_TABLES:
            db.execute(f"DELETE FROM {table}")


def run(world: tuple[CommandContext, asyncio.AbstractEventLoop], text: str, manager: bool,
        channel: str = "C1") -> None:
    """One command; checks that it answered and what it may have changed."""
    ctx, loop = world
    before = snapshot(ctx.db)
    reply = loop.run_until_complete(dispatch(ctx, Invocation("slack", channel, "U1", "ann", text, manager)))
    after = snapshot(ctx.db)
    assert isinstance(reply, Reply)
    assert not reply.text.startswith("Sorry, something went wrong"), text  # no internal error either
    name = parse_line(text)[0]
    configures = name in COMMANDS and COMMANDS[name].configures
    event("changed" if after != before else "error" if reply.error else "answered")
    if reply.error or not configures or not manager:
        assert after == before, (text, reply.text)
    if after != before:
        # Every change is audited, and only the asking channel's configuration moves.
        assert len(after["audit"]) == len(before["audit"]) + 1, text
        assert all(row["channel_id"] == channel for row in after["audit"][len(before["audit"]):])
        for table in ("subscriptions", "channel_settings"):
            others = [r for r in after[table] if r["channel_id"] != channel]
            assert others == [r for r in before[table] if r["channel_id"] != channel], text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=LINES, manager=st.booleans())
def test_any_text_gets_a_reply_and_changes_config_only_on_success(
        world: tuple[CommandContext, asyncio.AbstractEventLoop], text: str, manager: bool) -> None:
    reset(world[0].db)
    run(world, text, manager)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(LINES, st.booleans(), st.sampled_from(CHANNELS)), max_size=8))
def test_any_sequence_of_commands_keeps_those_properties(
        world: tuple[CommandContext, asyncio.AbstractEventLoop], steps: list[tuple[str, bool, str]]) -> None:
    reset(world[0].db)
    for text, manager, channel in steps:
        run(world, text, manager, channel)
