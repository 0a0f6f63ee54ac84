"""Chart commands, for anyone: `chart BOARD` (groups' best scores), `chart model NAME` (a model's ranks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import leaderwatch.bot.commands.names as names
from leaderwatch.alerts.formatting import Reply, day, num, plural
from leaderwatch.bot import charts
from leaderwatch.bot.commands.channel import channel_groups
from leaderwatch.bot.commands.history import snapshot_as_of
from leaderwatch.bot.commands.messages import NO_BOARDS, NO_DATA
from leaderwatch.bot.commands.registry import CommandContext, Invocation, UserError, command, usage_error
from leaderwatch.sources.base import Entry
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import Database
from leaderwatch.storage.standings import best_entries, current_models, standings

CHART_DAYS = 180
"""`chart` and `chart model` draw this many days back unless told otherwise."""


def parse_chart_args(ctx: CommandContext, inv: Invocation, args: list[str]) -> tuple[str, list[str], int]:
    """`BOARD [GROUP ...] [DAYS]`: groups may also be written `china,west`; DAYS anywhere after BOARD."""
    if not args:
        raise usage_error("chart", "Which board?")
    board = names.resolve_board(ctx, args[0])
    groups: list[str] = []
    days: int | None = None
    for word in (w for arg in args[1:] for w in arg.split(",") if w):
        if names.whole_number(word.lower().removesuffix("d")) is not None:
            if days is not None:
                raise usage_error("chart", "Give DAYS once.")
            days = names.parse_days("chart", word)
            continue
        group = names.resolve_group(ctx.groups, word)
        if group in groups:
            raise usage_error("chart", f"`{group}` is given twice.")
        groups.append(group)
    if len(groups) > charts.MAX_SERIES:
        raise usage_error("chart", f"One chart shows at most {charts.MAX_SERIES} groups.")
    return board, groups or channel_groups(ctx, inv)[:charts.MAX_SERIES], days or CHART_DAYS


# --- what the charts read: at most MAX_POINTS tables a line, however dense the history ----------------

MAX_POINTS = 120
"""Tables one line is drawn from at most (the newest of each of as many equal slices of the period)."""


def group_bests(db: Database, snapshot_id: int, groups: Mapping[str, Group]) -> dict[str, Entry]:
    """Each group's best entry in a stored table, read in rank order only until every group is found."""
    found: dict[str, Entry] = {}
    for entry in store.iter_entries(db, snapshot_id):
        for name, group in groups.items():
            if name not in found and group.contains(entry):
                found[name] = entry
        if len(found) == len(groups):
            break
    return found


def board_chart(db: Database, board_id: str, groups: Mapping[str, Group], start: datetime,
                end: datetime) -> charts.Chart | None:
    """Each group's best score on a board from `start` to `end`, with the board's events there (None:
    no snapshot in the period)."""
    board = store.board(db, board_id)
    points = store.spread_between(db, board_id, start, end, MAX_POINTS)
    if board is None or not points:
        return None
    dates = tuple(when for _, when in points)
    bests = [group_bests(db, snapshot_id, groups) for snapshot_id, _ in points]
    series = []
    for name in groups:
        found = [b.get(name) for b in bests]
        series.append(charts.Series(name, dates, tuple(None if e is None else e.score for e in found),
                                    tuple(None if e is None else e.name for e in found)))
    first, last = dates[0], dates[-1]
    title = f"{board_id}: best {board.metric} of {charts.and_list(list(groups))}, {day(first)} to {day(last)}"
    return charts.Chart(title, board.metric, tuple(series),
                        charts.event_markers(charts.board_events(db, board_id, start, end)), first, last)


def model_chart(db: Database, model_key: str, name: str, board_ids: Sequence[str], start: datetime,
                end: datetime) -> charts.Chart | None:
    """A model's rank on each of the boards from `start` to `end` (boards where it has no point left
    out); None when none of them lists it in the period."""
    series = []
    for board_id in board_ids:
        points = store.spread_between(db, board_id, start, end, MAX_POINTS)
        found = best_entries(db, model_key, (snapshot_id for snapshot_id, _ in points))
        line = charts.Series(board_id, tuple(when for _, when in points),
                             tuple(float(found[i].rank) if i in found else None for i, _ in points),
                             tuple(found[i].name if i in found else None for i, _ in points))
        if line.points():
            series.append(line)
    if not series:
        return None
    dates = [d for s in series for d, _, _ in s.points()]
    first, last = min(dates), max(dates)
    boards = "1 board" if len(series) == 1 else f"{len(series)} boards"
    return charts.Chart(f"{name}: rank on {boards}, {day(first)} to {day(last)}", "rank (1 = best)",
                        tuple(series), (), first, last, inverted=True)


def latest_bests(chart: charts.Chart) -> str:
    """`best china GLM-4.5 (1434), best west Gemini-2.5-Pro (1470)`, from each line's newest point."""
    parts = []
    for series in chart.series:
        last = series.last()
        parts.append(f"best {series.label} {last[2]} ({num(last[1])})" if last
                     else f"no {series.label} model")
    return ", ".join(parts)


@command("chart", "chart BOARD [GROUP ...] [DAYS] [at DATE]")
async def chart_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Draw each group's best score on a board over time, with the board's events marked.

    Without GROUP: the channel's groups (as `race`); without DAYS: the 180 days up to the board's last
    table (or its table as of DATE). `/leaderwatch chart lmarena/text china us 90`;
    `/leaderwatch chart lmarena/text 365 at 2025-08-04`. `chart model` draws a model's ranks instead.
    """
    args, at = names.split_at("chart", args)
    board_id, groups, days = parse_chart_args(ctx, inv, args)
    end = snapshot_as_of(ctx, board_id, at).as_of
    chart = board_chart(ctx.db, board_id, {g: ctx.groups[g] for g in groups}, end - timedelta(days=days), end)
    if chart is None:  # the board's table at `end` is in the window: only a race with retention
        raise UserError(NO_DATA.format(board=board_id))
    if chart.is_empty:
        return Reply(text=f"No {' or '.join(groups)} model on {board_id} from {day(chart.start)} to "
                          f"{day(chart.end)}: nothing to draw.")
    board = store.board(ctx.db, board_id)
    snapshots = len(chart.series[0].dates)
    return Reply(title=chart.title,
                 text=f"{plural(snapshots, 'snapshot')}, {plural(len(chart.markers), 'event')} marked. "
                      f"Latest: {latest_bests(chart)}.",
                 url=board.url if board and board.url else None,
                 group=groups[0] if len(groups) == 1 else None, image=await charts.draw(chart))


@command("chart model", "chart model NAME [DAYS] [at DATE]")
async def chart_model_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Draw a model's rank over time on every board that lists it (default: the 180 days up to its
    boards' last tables, or up to DATE).

    `/leaderwatch chart model o3-2025-04-16 90`; quote names with spaces:
    `/leaderwatch chart model "GLM 4.5"`.
    """
    args, at = names.split_at("chart model", args)
    days = CHART_DAYS
    if len(args) > 1 and names.whole_number(args[-1].lower().removesuffix("d")) is not None:
        days, args = names.parse_days("chart model", args[-1]), args[:-1]
    if not args:
        raise usage_error("chart model", "Which model?")
    models = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    if not models:
        raise UserError(NO_BOARDS)
    key = names.resolve_model(ctx, " ".join(args), models)
    listed = sorted(standings(ctx.db, key, at), key=lambda s: (s.entry.rank, s.board_id))
    if not listed:
        raise UserError(f"{models[key]} was on no board's table as of {day(at or ctx.clock())}.")
    shown = sorted(s.board_id for s in listed[:charts.MAX_SERIES])
    name = listed[0].entry.name
    end = max(s.as_of for s in listed)
    chart = model_chart(ctx.db, key, name, shown, end - timedelta(days=days), end)
    if chart is None:  # its boards' tables at `end` are in the window: only a race with retention
        raise UserError(f"{name}: nothing to draw from {day(end - timedelta(days=days))} to {day(end)}.")
    ranks = ", ".join(f"{s.label} #{last[1]:.0f}" for s in chart.series if (last := s.last()))
    more = (f" Its {charts.MAX_SERIES} best boards of {len(listed)} are drawn."
            if len(listed) > charts.MAX_SERIES else "")
    return Reply(title=chart.title, text=f"Latest: {ranks}.{more}", image=await charts.draw(chart))


