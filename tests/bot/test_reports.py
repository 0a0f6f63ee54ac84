"""The weekly race report: subscribing from chat, queued once a week per channel at its hour, delivered
through the outbox with its chart, held by a mute, and answered on demand (`report`, `leaderwatch report`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaderwatch.alerts.formatting import Reply
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch
from leaderwatch.bot.pipeline.alert_charts import chart_alerts
from leaderwatch.bot.pipeline.delivery import Dispatcher
from leaderwatch.bot.pipeline.reports import last_due, queue_reports
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import recent_events
from tests.helpers import Clock, build_context, import_subset

RECORDED = tuple(f"lmarena/fboulnois_lmarena_csv/lmarena_text_{day}.csv"
                 for day in ("2025-07-27", "2025-07-28", "2025-08-01", "2025-08-04"))
MONDAY = datetime(2025, 8, 4, 9, 0, tzinfo=UTC)
"""The Monday of the last recorded table, at the default digest hour."""


@pytest.fixture(scope="module")
def template(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reports")
    db, report = import_subset(excerpts, folder, RECORDED, MONDAY)
    assert not report.errors
    db.close()
    return folder / "template.db"


@pytest.fixture
def db(any_template_db: Database) -> Database:
    """The template on each store (SQLite, PostgreSQL)."""
    return any_template_db


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY - timedelta(hours=2))


@pytest.fixture
def ctx(db: Database, clock: Clock) -> CommandContext:
    return build_context(db, clock)


async def ask(ctx: CommandContext, text: str, channel: str = "C1") -> Reply:
    return await dispatch(ctx, Invocation("slack", channel, "U1", "alice", text, can_configure=True))


class Sender:
    """A Sender that records what each channel got."""

    platform = "slack"

    def __init__(self) -> None:
        self.got: list[tuple[str, Reply]] = []

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        assert thread is None, "a report never threads"
        self.got.append((channel_id, reply))
        return delivery_key

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        raise AssertionError("a report is never edited")

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        return None


def test_a_report_is_due_on_mondays_at_the_hour() -> None:
    assert last_due(datetime(2025, 8, 4, 9, 0, tzinfo=UTC), 9) == datetime(2025, 8, 4, 9, tzinfo=UTC)
    assert last_due(datetime(2025, 8, 4, 8, 59, tzinfo=UTC), 9) == datetime(2025, 7, 28, 9, tzinfo=UTC)
    assert last_due(datetime(2025, 8, 10, 23, 0, tzinfo=UTC), 0) == datetime(2025, 8, 4, 0, tzinfo=UTC)


async def test_subscribe_report_weekly_queues_one_report_a_week_at_the_channels_hour(
        ctx: CommandContext, clock: Clock) -> None:
    on = await ask(ctx, "subscribe report weekly")
    assert (on.title, on.error) == ("Race report on", False)
    assert "weekly, Mondays at 09:00 UTC" in on.text
    assert (await ask(ctx, "subscribe report weekly")).text.startswith("The race report is already weekly")
    settings = await ask(ctx, "settings")
    assert any(f.name == "Race report" and f.value == "weekly, Mondays at 09:00 UTC" for f in settings.fields)
    # Monday 07:00: the report of the week to Monday 28 July 09:00 (the last one due) is queued
    # once; the next one waits for Monday 09:00.
    assert queue_reports(ctx, clock()) == 1
    assert queue_reports(ctx, clock()) == 0
    clock.now = MONDAY
    assert queue_reports(ctx, clock()) == 1
    clock.now = MONDAY + timedelta(hours=5)
    assert queue_reports(ctx, clock()) == 0
    assert recent_events(ctx.db, MONDAY - timedelta(days=30), None) == []  # reports are no rule events
    sender = Sender()
    dispatcher = Dispatcher(ctx.db, {"slack": sender}, clock, decorate=chart_alerts(ctx))
    assert await dispatcher.run_once() == 2
    titles = [reply.title for _, reply in sender.got]
    assert titles == ["Race report, the week to 2025-07-28: china, west",
                      "Race report, the week to 2025-08-04: china, west"]
    latest = sender.got[1][1]
    assert latest.text.startswith("Boards led, of the 1 board with a table: china 0 (0 in the week")
    assert latest.image is not None and latest.image.startswith(b"\x89PNG")
    off = await ask(ctx, "unsubscribe report")
    assert off.title == "Race report off"
    clock.now = MONDAY + timedelta(weeks=1)
    assert queue_reports(ctx, clock()) == 0


async def test_a_muted_channel_gets_its_report_when_the_mute_ends(ctx: CommandContext, clock: Clock) -> None:
    clock.now = MONDAY
    await ask(ctx, "subscribe report weekly", channel="C2")
    await ask(ctx, "mute 2h", channel="C2")
    assert queue_reports(ctx, clock()) == 1
    sender = Sender()
    dispatcher = Dispatcher(ctx.db, {"slack": sender}, clock)
    assert await dispatcher.run_once() == 0
    clock.now = MONDAY + timedelta(hours=2, seconds=1)
    assert await dispatcher.run_once() == 1
    assert sender.got[0][1].title == "Race report, the week to 2025-08-04: china, west"


async def test_report_on_demand_and_its_errors(ctx: CommandContext) -> None:
    reply = await ask(ctx, "report at 2025-08-04")
    assert reply.title == "Race report: china, west, the week to 2025-08-04"
    assert reply.image is not None
    assert (await ask(ctx, "report at 2024-01-01")).text == "No board had a table by 2024-01-01."
    assert (await ask(ctx, "report now")).text == ("`report` takes only `at DATE`.\n"
                                                    "Usage: `/leaderwatch report [at DATE]`")
    assert (await ask(ctx, "subscribe report daily")).text.startswith(
        "The race report is `weekly` (or `off`)")
