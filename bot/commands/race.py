"""The race between groups, for anyone: `race` (who leads on each board) and `gap` (by how much, then and
now)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from leaderwatch.alerts.formatting import Reply, day, num, plural
from leaderwatch.alerts.matching import board_matches
from leaderwatch.bot.commands.channel import MAX_TOP, channel_groups, followed_boards
from leaderwatch.bot.commands.history import (
    Lead,
    Leads,
    history_start,
    snapshot_as_of,
    staleness,
    window_before,
)
from leaderwatch.bot.commands.messages import NO_BOARDS, standing
from leaderwatch.bot.commands.names import parse_days, resolve_board, resolve_group, split_at, whole_number
from leaderwatch.bot.commands.questions import top_entries
from leaderwatch.bot.commands.registry import CommandContext, Invocation, command, usage_error
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store

GAP_DAYS = 30


def best_of(groups: Mapping[str, Group], snap: Snapshot, group: str) -> Entry | None:
    """The best-ranked entry of a group (never a mixed entry for a country group)."""
    g = groups[group]
    return next((e for e in snap.entries if g.contains(e)), None)


def race_boards(ctx: CommandContext, inv: Invocation) -> tuple[list[str], str]:
    """The boards `race` shows without a BOARD, and how they were chosen."""
    stored = [b.id for b in store.boards(ctx.db) if not b.archived]
    followed = followed_boards(ctx, inv, stored)
    if followed:
        return followed, "the boards this channel follows"
    arena = [b for b in stored if b.startswith("lmarena/")]
    if arena:
        return arena, "the LMArena boards (this channel follows none; `/leaderwatch subscribe` chooses)"
    return stored, "every board"


@command("race", "race [BOARD|SUITE] [at DATE]")
async def race_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Who leads the race: per board, the best model of each of the channel's groups, ranks and gap.

    Without BOARD: the boards this channel follows (else the LMArena boards). A suite (`all`,
    `vision`, `coding`, `reasoning`, `lmarena`, or one from the config) answers for each of its boards,
    with how many each group leads now, 30 days and a year before. The groups are china and west
    unless a manager chose others (`/leaderwatch set groups china,us,europe`). `at DATE` answers as
    the boards stood then: `/leaderwatch race lmarena/text at 2025-08-01`, `/leaderwatch race all`.
    """
    args, at = split_at("race", args)
    if len(args) > 1:
        raise usage_error("race", "`race` takes one board or suite at most.")
    groups = channel_groups(ctx, inv)
    if args and args[0].lower() in ctx.suites:
        return race_all(ctx, groups, at, args[0].lower())
    if args:
        ids, chosen = [resolve_board(ctx, args[0])], ""
        snaps = [snapshot_as_of(ctx, ids[0], at)]
    else:
        ids, chosen = race_boards(ctx, inv)
        snaps = [s for b in ids if (s := ctx.snapshots.at(ctx.db, b, at)) is not None]
        if not snaps:
            return Reply(text=NO_BOARDS)
    rows: list[tuple[str, ...]] = [("board", "leads", *groups, "gap")]
    sentences, wins = [], dict.fromkeys(groups, 0)
    for snap in snaps:
        bests = {g: best_of(ctx.groups, snap, g) for g in groups}
        ranked = sorted(((e.rank, g, e) for g, e in bests.items() if e is not None), key=lambda t: t[0])
        lead, gap = "-", "-"
        if len(ranked) >= 2:
            (r1, g1, e1), (r2, g2, e2) = ranked[0], ranked[1]
            gap = num(abs(e1.score - e2.score))
            if r1 == r2:
                lead = "tied"
                sentences.append(f"{snap.board.id}: best {g1} {e1.name} and best {g2} {e2.name} are tied "
                                 f"at #{r1}.")
            else:
                lead = g1
                wins[g1] += 1
                sentences.append(f"{snap.board.id}: {g1} leads: best {g1} {e1.name} #{r1} ({num(e1.score)}) "
                                 f"vs best {g2} {e2.name} #{r2} ({num(e2.score)}), a gap of {gap} "
                                 f"({snap.board.metric}).")
        else:
            missing = [g for g in groups if bests[g] is None]
            sentences.append(f"{snap.board.id}: no {' or '.join(missing)} model on the board.")
        rows.append((snap.board.id, lead, *(standing(bests[g]) for g in groups), gap))
    if len(snaps) == 1:
        stale = staleness(ctx, snaps[0]) if at is None else ""
        text = f"As of {day(snaps[0].as_of)}{stale}. {sentences[0].partition(': ')[2]}"
        title = f"Race on {snaps[0].board.id}: {', '.join(groups)}"
    else:
        tally = ", ".join(f"{g} on {wins[g]}" for g in groups)
        when = f"as of {day(at)}" if at else "as of each one's last snapshot"
        text = f"{plural(len(snaps), 'board')}, {chosen}, {when}. Leads: {tally}."
        title = f"Race: {', '.join(groups)}"
    return Reply(title=title, text=text, table=tuple(rows))


LEAD_WINDOWS = (30, 365)
"""`race all` counts the boards each group leads now and this many days before."""


def lead_counts(leads: Sequence[Lead], groups: Sequence[str]) -> dict[str, int]:
    """How many boards each group leads (a tie leads nothing)."""
    counts = dict.fromkeys(groups, 0)
    for lead in leads:
        if lead.leader in counts:
            counts[lead.leader] += 1
    return counts


def race_all(ctx: CommandContext, groups: Sequence[str], at: datetime | None, suite: str = "all") -> Reply:
    """`race all` (or a suite): each of its boards with a table by the date, who leads it, and the lead
    counts over time."""
    leads = Leads(ctx.db, ctx.groups, groups)
    boards = [b for b in leads.boards() if board_matches(suite, b.id, ctx.suites)]
    end = at or ctx.clock()
    now = [lead for b in boards if (lead := leads.at(b.id, at)) is not None]
    if not now:
        by = f" by {day(at)}" if at else ""
        return Reply(text=NO_BOARDS if suite == "all" and at is None else
                     f"No board of the suite `{suite}` had a table{by} ({', '.join(ctx.suites[suite])}).")
    rows: list[tuple[str, ...]] = [("board", "table of", "leads", "gap", *groups)]
    for lead in now:
        rows.append((lead.board.id, day(lead.as_of), lead.leader or "-", num(lead.gap),
                     *(standing(lead.bests[g]) for g in groups)))
    counts = lead_counts(now, groups)
    before: list[str] = []
    for days in LEAD_WINDOWS:
        then = [lead for b in boards if (lead := leads.at(b.id, end - timedelta(days=days))) is not None]
        was = lead_counts(then, groups)
        before.append(f"{plural(days, 'day')} before: " + ", ".join(
            f"{g} {was[g]}" for g in groups) + f" of {len(then)}")
    tally = ", ".join(f"{g} leads on {counts[g]}" for g in groups)
    when = f"as of {day(at)}" if at else "as of each board's last table"
    scope = "The whole race" if suite == "all" else f"The race on {suite}"
    return Reply(title=f"{scope}: {', '.join(groups)}",
                 text=f"{plural(len(now), 'board')}, {when}: {tally} of {len(now)}. "
                      f"({'; '.join(before)}.)",
                 table=tuple(rows))


def margin(snap: Snapshot, a: Entry | None, b: Entry | None) -> float | None:
    """How far group A's best is ahead of group B's (negative: behind), in the board's metric."""
    if a is None or b is None:
        return None
    return a.score - b.score if snap.board.higher_is_better else b.score - a.score


def lead_phrase(m: float | None, a: str, b: str, now: bool) -> str:
    """`west leads by 36`, `china led by 2`, `china and west are level`."""
    if m is None:
        return "-"
    if m == 0:
        return f"{a} and {b} {'are' if now else 'were'} level"
    return f"{a if m > 0 else b} {'leads' if now else 'led'} by {num(abs(m))}"


def gap_move(m_now: float, m_then: float) -> str:
    """`the lead changed hands.`, `the gap did not move.`, `the gap narrowed by 12.`"""
    if m_now * m_then < 0:
        return "the lead changed hands."
    if abs(m_now) == abs(m_then):
        return "the gap did not move."
    word = "widened" if abs(m_now) > abs(m_then) else "narrowed"
    return f"the gap {word} by {num(abs(abs(m_now) - abs(m_then)))}."


@command("gap", "gap BOARD GROUP_A GROUP_B [DAYS] [at DATE]")
async def gap_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """The gap between two groups' best scores on a board's last table, and DAYS before it (default 30).

    DAYS count back from the table the answer starts from, and both tables' dates are shown:
    `/leaderwatch gap lmarena/text china west 365`; `at DATE` starts from the table of that day.
    """
    args, at = split_at("gap", args)
    if not 3 <= len(args) <= 4:
        raise usage_error("gap", "Give a board and two groups.")
    board_id = resolve_board(ctx, args[0])
    a, b = resolve_group(ctx.groups, args[1]), resolve_group(ctx.groups, args[2])
    if a == b:
        raise usage_error("gap", f"Give two different groups, not `{a}` twice.")
    days = parse_days("gap", args[3]) if len(args) == 4 else GAP_DAYS
    snap = snapshot_as_of(ctx, board_id, at)
    old = window_before(ctx, snap, days)
    now_a, now_b = best_of(ctx.groups, snap, a), best_of(ctx.groups, snap, b)
    m_now = margin(snap, now_a, now_b)
    rows: list[tuple[str, ...]] = [("", "table of", f"best {a}", f"best {b}", "gap"),
                                   ("start", day(snap.as_of), standing(now_a), standing(now_b),
                                    lead_phrase(m_now, a, b, True))]
    stale = staleness(ctx, snap) if at is None else ""
    if m_now is None:
        text = f"No {a if now_a is None else b} model on {board_id} in its table of {day(snap.as_of)}{stale}."
    else:
        text = (f"In the table of {day(snap.as_of)}{stale}, {lead_phrase(m_now, a, b, True)} "
                f"({snap.board.metric}).")
    before = f"{plural(days, 'day')} before"
    if old is None:
        text += f" No table {before} it: the board's history starts {history_start(ctx, board_id)}."
    else:
        then_a, then_b = best_of(ctx.groups, old, a), best_of(ctx.groups, old, b)
        m_then = margin(old, then_a, then_b)
        rows.append((before, day(old.as_of), standing(then_a), standing(then_b),
                     lead_phrase(m_then, a, b, False)))
        if m_then is None:
            text += (f" {before.capitalize()}, in the table of {day(old.as_of)}, there was no "
                     f"{a if then_a is None else b} model.")
        elif m_now is not None:
            text += (f" {before.capitalize()}, in the table of {day(old.as_of)}, "
                     f"{lead_phrase(m_then, a, b, False)}: {gap_move(m_now, m_then)}")
    return Reply(title=f"Gap {a} vs {b} on {board_id}", text=text, table=tuple(rows),
                 url=snap.board.url or None)


SHARE_TOP = 10


@command("share", "share BOARD [N] [at DATE]")
async def share_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """How many of a board's top N (default 10) each organization and each of the channel's groups holds.

    Ties at #N count (a top 10 with two models at #10 holds eleven):
    `/leaderwatch share lmarena/text 10 at 2025-08-04`.
    """
    args, at = split_at("share", args)
    if not 1 <= len(args) <= 2:
        raise usage_error("share", "Give a board, and how many of its top to count.")
    board_id = resolve_board(ctx, args[0])
    n = SHARE_TOP
    if len(args) == 2:
        number = whole_number(args[1])
        if number is None or not 1 <= number <= MAX_TOP:
            raise usage_error("share", f"N must be between 1 and {MAX_TOP}, not `{args[1]}`.")
        n = number
    snap = snapshot_as_of(ctx, board_id, at)
    top = top_entries(snap, n)
    holders: dict[str, list[Entry]] = {}
    spelled: dict[str, set[str]] = {}
    for e in top:
        if e.organization and not e.mixed:
            org = ctx.identity.canonical_organization(e.organization)
            holders.setdefault(org, []).append(e)
            spelled.setdefault(org, set()).add(e.organization)
    rows: list[tuple[str, ...]] = [("holder", f"of the top {n}", "models")]
    for org, entries in sorted(holders.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        others = sorted(s for s in spelled[org] if s.casefold() != org.casefold())
        label = f"{org} (as {', '.join(others)})" if others else org
        rows.append((label, str(len(entries)), models_and_ranks(entries)))
    for group in channel_groups(ctx, inv):
        members = [e for e in top if ctx.groups[group].contains(e)]
        rows.append((f"group {group}", str(len(members)), models_and_ranks(members) or "-"))
    mixed = [e for e in top if e.mixed or not e.organization]
    if mixed:
        rows.append(("mixed or unknown", str(len(mixed)), models_and_ranks(mixed)))
    ties = f"; {len(top)} models: ties at #{n} are kept" if len(top) > n else ""
    leader = rows[1] if len(rows) > 1 and holders else None
    lead = f" {leader[0]} holds the most, {leader[1]}: {leader[2]}." if leader else ""
    stale = staleness(ctx, snap) if at is None else ""
    return Reply(title=f"Who holds the top {n} of {board_id}",
                 text=f"As of {day(snap.as_of)}{stale}{ties}.{lead}", table=tuple(rows),
                 url=snap.board.url or None)


def models_and_ranks(entries: Sequence[Entry], limit: int = 6) -> str:
    """`Qwen2-72B-Instruct #1, Qwen2-72B #3 and 2 more`."""
    shown = ", ".join(f"{e.name} #{e.rank}" for e in entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")
