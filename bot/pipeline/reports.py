"""Posting the weekly race report to the channels that `subscribe report weekly`.

Each Monday at a channel's `digest_hour` (UTC), the report of the week ending then is queued in the
outbox like an alert, so it is delivered once, retried and held by a mute like any alert. A service
that was down at that hour queues it at its next check in the week; the report's key (channel and
week) makes a second queueing a no-op. The chart is drawn when the report is sent (`report_reply`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from leaderwatch.alerts.formatting import Reply, day
from leaderwatch.alerts.matching import Delivery, delivery_key, hold_for
from leaderwatch.alerts.models import Event, dedupe_key
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.channel import groups_of_channel
from leaderwatch.bot.commands.configuration import REPORT, digest_hour
from leaderwatch.bot.commands.report import build_report, report_text
from leaderwatch.storage import outbox
from leaderwatch.storage.events import event_by_key, save_events
from leaderwatch.storage.subscriptions import channel_settings, channels_with

logger = logging.getLogger(__name__)

KIND = "report"
"""The kind of the stored event a report is delivered as (never a rule's; `events` leaves it out)."""
BOARD = "report"
"""What a report event names as its board: it is about every board."""


def last_due(now: datetime, hour: int) -> datetime:
    """The latest Monday at `hour`:00 UTC at or before `now`."""
    at = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    at -= timedelta(days=at.weekday())
    return at if at <= now else at - timedelta(weeks=1)


def report_event(platform: str, channel_id: str, groups: list[str], due: datetime, text: str) -> Event:
    """The stored event a channel's report of the week ending at `due` is delivered as."""
    subject = f"{platform}:{channel_id}"
    return Event(kind=KIND, board=BOARD, at=due, rule="report weekly", subject=subject, model=None,
                 other=None, groups=tuple(groups), rank_before=None, rank_after=None, score_before=None,
                 score_after=None, confidence="n/a", message=text,
                 dedupe_key=dedupe_key(KIND, BOARD, subject, "weekly", due), value="weekly")


def queue_reports(ctx: CommandContext, now: datetime) -> int:
    """Queue this week's report for every subscribed channel whose hour has come; how many were queued."""
    queued = 0
    for platform, channel_id in channels_with(ctx.db, REPORT, "weekly"):
        settings = channel_settings(ctx.db, platform, channel_id)
        due = last_due(now, digest_hour(settings))
        groups = groups_of_channel(ctx, platform, channel_id)
        event = report_event(platform, channel_id, groups, due, "")
        if event_by_key(ctx.db, event.dedupe_key) is not None:  # stored and queued together
            continue
        report = build_report(ctx, groups, due)
        event = event._replace(message=f"Race report, the week to {day(due)}\n{report_text(report)}")
        until, _ = hold_for({k: v for k, v in settings.items() if k != "digest"}, now)
        with ctx.db.atomic():
            save_events(ctx.db, [event], None, now)
            delivery = Delivery(event, platform, channel_id, (),
                                delivery_key(event.dedupe_key, platform, channel_id))
            queued += outbox.enqueue(ctx.db, [delivery], now, held_until(until))
        logger.info("race report of the week to %s queued for %s:%s", day(due), platform, channel_id)
    return queued


def held_until(until: datetime | None) -> outbox.Hold:
    """A hold for every delivery: not before `until` (the channel's mute), no digest."""
    return lambda _: (until, None)


def report_reply(event: Event) -> Reply:
    """How a queued report reads (its chart is added when it is sent)."""
    title, _, text = event.message.partition("\n")
    return Reply(title=f"{title}: {', '.join(event.groups)}", text=text, footer="`/leaderwatch report` "
                 "shows it any time; `/leaderwatch unsubscribe report` stops it")
