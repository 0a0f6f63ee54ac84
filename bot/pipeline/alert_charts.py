"""The charts under alerts: overtake and new #1 alerts carry a small chart of their board."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.models import Event
from leaderwatch.bot import charts
from leaderwatch.bot.commands import CommandContext
from leaderwatch.bot.commands.channel import groups_of_channel
from leaderwatch.bot.commands.report import build_report, report_chart
from leaderwatch.bot.pipeline.reports import KIND as REPORT
from leaderwatch.storage.subscriptions import channel_settings

ALERT_CHART_DAYS = 90
CHARTED_KINDS = frozenset({"overtake", "new_leader"})
"""Alerts that carry a chart of their board (unless the channel's `charts` setting is off)."""
ALERT_CHARTS_KEPT = 16


def chart_alerts(ctx: CommandContext) -> Callable[[str, str, Event, Reply], Awaitable[Reply]]:
    """The Dispatcher's `decorate` hook: overtake and new #1 alerts get a small chart of their board,
    a race report its chart of lead counts.

    The last 90 days up to the event, for the overtake's two groups or the channel's groups; not
    for channels whose `charts` setting is off. The history up to an event does not change, so a
    chart is drawn once for all the channels an alert goes to (the last few are kept).
    """
    drawn: OrderedDict[tuple[str, datetime, tuple[str, ...]], bytes | None] = OrderedDict()

    async def decorate(platform: str, channel_id: str, event: Event, reply: Reply) -> Reply:
        if event.kind == REPORT:
            key = (REPORT, event.at, event.groups)
            if key not in drawn:
                report = build_report(ctx, [g for g in event.groups if g in ctx.groups], event.at)
                drawn[key] = await charts.draw(report_chart(report)) if report.boards else None
            png = drawn.get(key)
            return reply if png is None else replace(reply, image=png)
        if event.kind not in CHARTED_KINDS:
            return reply
        if channel_settings(ctx.db, platform, channel_id).get("charts") == "off":
            return reply
        groups = [g for g in event.groups if g in ctx.groups] if event.kind == "overtake" else []
        if len(groups) != 2:
            groups = groups_of_channel(ctx, platform, channel_id)[:charts.MAX_SERIES]
        key = (event.board, event.at, tuple(groups))
        if key not in drawn:
            chart = charts.board_chart(ctx.db, event.board, {g: ctx.groups[g] for g in groups},
                                       event.at - timedelta(days=ALERT_CHART_DAYS), event.at)
            if chart is None or chart.is_empty:
                drawn[key] = None
            else:
                drawn[key] = await charts.draw(chart, charts.ALERT_SIZE)
            while len(drawn) > ALERT_CHARTS_KEPT:
                drawn.popitem(last=False)
        png = drawn.get(key)
        return reply if png is None else replace(reply, image=png)

    return decorate

