"""The weekly race report, for anyone: `report [at DATE]` (also `leaderwatch report`, and posted weekly to
channels that `subscribe report weekly`).

A week of the race on one page: how many boards each of the channel's groups leads and how that moved,
the week's overtakes and share changes, the biggest moves of the gap between the first two groups, and
a chart of each group's lead count over the last 52 weeks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaderwatch.alerts.formatting import Reply, day, num, plural, signed
from leaderwatch.bot import charts
from leaderwatch.bot.commands.channel import channel_groups
from leaderwatch.bot.commands.history import Lead, Leads
from leaderwatch.bot.commands.messages import NO_BOARDS
from leaderwatch.bot.commands.names import split_at
from leaderwatch.bot.commands.registry import CommandContext, Invocation, command, usage_error
from leaderwatch.storage.events import recent_events

WEEKS = 52
"""The chart of lead counts covers this many weeks."""
MOVES_SHOWN = 5
STORY_KINDS = ("overtake", "share")
"""The events the report retells: overtakes between groups and changes in who holds a top N."""
STORIES_SHOWN = 15


@dataclass(frozen=True, slots=True)
class Report:
    """What one week's report says, before it is worded: lead counts, stories, gap moves, the chart."""

    groups: tuple[str, ...]
    end: datetime
    boards: int
    counts: dict[str, int]
    week_before: dict[str, int]
    year_before: dict[str, int]
    stories: tuple[str, ...]
    moves: tuple[tuple[str, float, float], ...]
    weeks: tuple[datetime, ...]
    weekly: dict[str, tuple[int, ...]]


def counts_at(leads: Leads, groups: Sequence[str], when: datetime) -> tuple[int, dict[str, int]]:
    """How many boards had a table at `when`, and how many of them each group led."""
    counts = dict.fromkeys(groups, 0)
    boards = 0
    for board in leads.boards():
        lead = leads.at(board.id, when)
        if lead is None:
            continue
        boards += 1
        if lead.leader in counts:
            counts[lead.leader] += 1
    return boards, counts


def margin(lead: Lead, a: str, b: str) -> float | None:
    """How far group A's best is ahead of group B's on the table (negative: behind), in the board's unit."""
    best_a, best_b = lead.bests.get(a), lead.bests.get(b)
    if best_a is None or best_b is None:
        return None
    diff = best_a.score - best_b.score
    return diff if lead.board.higher_is_better else -diff


def build_report(ctx: CommandContext, groups: Sequence[str], end: datetime) -> Report:
    """The report of the week ending at `end`, for these groups."""
    leads = Leads(ctx.db, ctx.groups, groups)
    boards, counts = counts_at(leads, groups, end)
    _, week_before = counts_at(leads, groups, end - timedelta(days=7))
    _, year_before = counts_at(leads, groups, end - timedelta(days=365))
    stories = tuple(f"{day(e.at)} {e.message}" for e in reversed(recent_events(
        ctx.db, end - timedelta(days=7), None, limit=500, until=end)) if e.kind in STORY_KINDS)
    moves: list[tuple[str, float, float]] = []
    a, b = groups[0], groups[1]
    for board in leads.boards():
        now, then = leads.at(board.id, end), leads.at(board.id, end - timedelta(days=7))
        if now is None or then is None:
            continue
        m_now, m_then = margin(now, a, b), margin(then, a, b)
        if m_now is not None and m_then is not None and m_now != m_then:
            moves.append((board.id, m_then, m_now))
    moves.sort(key=lambda m: (-abs(m[2] - m[1]) / (abs(m[1]) or 1.0), m[0]))
    weeks = tuple(end - timedelta(weeks=w) for w in range(WEEKS - 1, -1, -1))
    weekly: dict[str, list[int]] = {g: [] for g in groups}
    for when in weeks:
        _, at_week = counts_at(leads, groups, when)
        for g in groups:
            weekly[g].append(at_week[g])
    return Report(tuple(groups), end, boards, counts, week_before, year_before, stories,
                  tuple(moves[:MOVES_SHOWN]), weeks, {g: tuple(v) for g, v in weekly.items()})


def report_chart(report: Report) -> charts.Chart:
    """Each group's lead count, week by week."""
    return charts.count_chart(
        f"Boards each group leads, weekly, {day(report.weeks[0])} to {day(report.weeks[-1])}", "boards led",
        report.weeks, {g: [float(c) for c in report.weekly[g]] for g in report.groups})


def report_text(report: Report) -> str:
    """The report in words."""
    a, b = report.groups[0], report.groups[1]
    lines = [f"Boards led, of the {plural(report.boards, 'board')} with a table: " + ", ".join(
        f"{g} {report.counts[g]} ({signed(report.counts[g] - report.week_before[g])} in the week, "
        f"{signed(report.counts[g] - report.year_before[g])} in a year)" for g in report.groups) + "."]
    if report.stories:
        shown = report.stories[-STORIES_SHOWN:]
        more = len(report.stories) - len(shown)
        lines.append("This week's overtakes and share changes" + (f" (the last {len(shown)} of "
                                                                   f"{len(report.stories)})" if more else "")
                     + ":")
        lines += [f"• {s}" for s in shown]
    else:
        lines.append("No overtake or share change this week.")
    if report.moves:
        lines.append(f"Biggest moves of the gap between the best {a} and the best {b} model:")
        for board_id, then, now in report.moves:
            lines.append(f"• {board_id}: {lead_words(then, a, b)} -> {lead_words(now, a, b)} "
                         f"({signed(now - then)} for {a})")
    else:
        lines.append(f"The gap between {a} and {b} did not move this week.")
    return "\n".join(lines)


def lead_words(m: float, a: str, b: str) -> str:
    """`west +36`, `china +2`, `level`."""
    return "level" if m == 0 else f"{a if m > 0 else b} +{num(abs(m))}"


@command("report", "report [at DATE]")
async def report_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """The week's race report: boards each group leads, the week's overtakes and share changes, the
    biggest gap moves, and a chart of the lead counts over the last 52 weeks.

    The groups are the channel's (`race`'s). `/leaderwatch report`, or the week ending on a date:
    `/leaderwatch report at 2025-02-01`. A channel manager can have it posted every Monday:
    `/leaderwatch subscribe report weekly`.
    """
    args, at = split_at("report", args)
    if args:
        raise usage_error("report", "`report` takes only `at DATE`.")
    groups = channel_groups(ctx, inv)
    end = at or ctx.clock()
    report = build_report(ctx, groups, end)
    if report.boards == 0:
        return Reply(text=NO_BOARDS if at is None else f"No board had a table by {day(end)}.")
    return Reply(title=f"Race report: {', '.join(groups)}, the week to {day(end)}", text=report_text(report),
                 image=await charts.draw(report_chart(report)))
