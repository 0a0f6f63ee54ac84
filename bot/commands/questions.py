"""Question commands, for anyone: help, boards, top, race, gap, model, events, why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from leaderwatch.alerts.explain import explain, fired, held_back
from leaderwatch.alerts.formatting import Field, Reply, day, num, plural, signed
from leaderwatch.alerts.models import KINDS, Event, Rule, RuleError
from leaderwatch.alerts.ruleset import KIND_HELP, params_of, parse_rule
from leaderwatch.bot.commands.channel import (
    MAX_TOP,
    channel_groups,
    channel_rules,
    channel_top,
    followed_boards,
)
from leaderwatch.bot.commands.messages import NO_BOARDS, country, standing
from leaderwatch.bot.commands.names import (
    board_ids,
    did_you_mean,
    latest,
    parse_days,
    resolve_board,
    resolve_group,
    resolve_model,
    whole_number,
)
from leaderwatch.bot.commands.registry import (
    COMMANDS,
    CommandContext,
    Invocation,
    UserError,
    command,
    usage_error,
)
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.events import recent_events
from leaderwatch.storage.standings import boards_with_data, current_models, standings

MODEL_DAYS = 30
"""`model` shows moves over this many days."""
GAP_DAYS = 30
EVENTS_DAYS = 7
EVENTS_SHOWN = 25


# --- help, boards, top -----------------------------------------------------------------------------

def rule_help(kind: str) -> Reply:
    """`help overtake`: what a rule kind reports and its parameters."""
    lines = []
    for p in params_of(kind):
        if p.default is not None:
            default = f"default {p.show(p.default)}"
        else:
            default = "required" if p.always_named else "default any"
        lines.append(f"• `{p.name}`: {p.help or p.name} ({default})")
    text = f"{KIND_HELP[kind].capitalize()}.\n" + ("\n".join(lines) if lines else "No parameters.")
    return Reply(title=f"Rule `{kind}`", text=text, ephemeral=True,
                 footer=f"e.g. `/leaderwatch subscribe lmarena/* {kind}`")


@command("help", "help [COMMAND|RULE]")
async def help_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show the commands, how to use one of them, or what a rule kind does.

    `/leaderwatch help top` explains `top`; `/leaderwatch help overtake` explains the `overtake` rule
    (`/leaderwatch help rule gap` for the rule that shares its name with the `gap` command).
    """
    if len(args) == 2 and args[0].lower() == "rule" and args[1].lower() in KINDS:
        return rule_help(args[1].lower())
    if len(args) > 1 and " ".join(args).lower() in COMMANDS:  # a name of several words: `chart model`
        args = [" ".join(args)]
    if len(args) > 1:
        raise usage_error("help", "`help` takes one command or rule name at most.")
    if args:
        name = args[0].lower()
        cmd = COMMANDS.get(name)
        if cmd is None and name in KINDS:
            return rule_help(name)
        if cmd is None:
            raise UserError(f"{did_you_mean(name, sorted(COMMANDS) + list(KINDS), 'command or rule')} "
                            "`/leaderwatch help` lists the commands.")
        who = "\n(channel managers only)" if cmd.configures else ""
        also = f"`{name}` is also a rule: `/leaderwatch help rule {name}`." if name in KINDS else None
        return Reply(title=f"/leaderwatch {cmd.usage}", text=f"{cmd.help}{who}", ephemeral=True, footer=also)
    questions = [c for c in COMMANDS.values() if not c.configures]
    config = [c for c in COMMANDS.values() if c.configures]
    fields = [Field(f"/leaderwatch {c.usage}", c.summary, inline=False) for c in questions]
    fields += [Field(f"/leaderwatch {c.usage}", f"{c.summary} (channel managers)", inline=False)
               for c in config]
    return Reply(title="leaderwatch commands",
                 text="Ask about the AI leaderboards, or (channel managers) choose what this channel is "
                      "told. `/leaderwatch help COMMAND` shows more.",
                 fields=tuple(fields), ephemeral=True,
                 footer=f"Rules: {', '.join(KINDS)} (`/leaderwatch help RULE`)")


@command("boards", "boards")
async def boards_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """List the boards leaderwatch follows, with their last update and size."""
    if args:
        raise usage_error("boards", "`boards` takes no arguments.")
    summaries = store.board_summaries(ctx.db)
    if not summaries:
        return Reply(text=NO_BOARDS)
    rows = [("board", "updated", "models")]
    rows += [(s.board.id + (" (archived)" if s.board.archived else ""),
              day(s.last_as_of) if s.last_as_of else "-", str(s.entries)) for s in summaries]
    return Reply(title=f"{len(summaries)} boards", text="", table=tuple(rows))


def parse_top_args(ctx: CommandContext, inv: Invocation, args: list[str]) -> tuple[str, int, str | None]:
    """`BOARD [N] [GROUP]` in any order after the board."""
    if not args:
        raise usage_error("top", "Which board?")
    if len(args) > 3:
        raise usage_error("top", "Too many words.")
    board = resolve_board(ctx, args[0])
    n, group = channel_top(ctx, inv), None
    for word in args[1:]:
        number = whole_number(word)
        if number is not None:
            if not 1 <= number <= MAX_TOP:
                raise usage_error("top", f"N must be between 1 and {MAX_TOP}, not {number}.")
            n = number
        elif word.lower() in ctx.groups:
            group = word.lower()
        else:
            raise usage_error("top", f"`{word}` is neither a number nor a group "
                                     f"({', '.join(sorted(ctx.groups))}).")
    return board, n, group


def top_entries(snap: Snapshot, n: int, group: Group | None = None) -> list[Entry]:
    """A board's top N as published, or a group's first N, ties at the cut kept: the one `top` of chat
    and the CLI.

    On the board a top N is ranks 1 to N as published (LMArena's 1, 1, 2, 3, 3, 3, 5 make a top 5 of
    7); a group's ranks are the board's, so its top N is its first N and any tied with the N-th (a
    group top 2 whose models rank #4, #9, #9, #12 lists three).
    """
    entries = [e for e in snap.entries if group is None or group.contains(e)]
    if len(entries) <= n:
        return entries
    cut = entries[n - 1].rank if group is not None else max(n, entries[n - 1].rank)
    return entries[:n] + [e for e in entries[n:] if e.rank <= cut]


@command("top", "top BOARD [N] [GROUP]")
async def top_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show a board's top N (default 10, or the channel's `top` setting), optionally one group's models.

    `/leaderwatch top lmarena/text 5 china`
    """
    board_id, n, group = parse_top_args(ctx, inv, args)
    snap = latest(ctx, board_id)
    entries = top_entries(snap, n, ctx.groups[group] if group else None)
    rows = [("#", "model", "score", "org", "country")]
    for e in entries:
        rows.append((str(e.rank), e.name, num(e.score), e.organization or "?", country(e)))
    age = ctx.clock() - snap.fetched_at
    stale = " (stale: last fetched over a day ago)" if age > timedelta(days=1) else ""
    title = f"Top {n} on {board_id}" + (f", {group} only" if group else "")
    text = f"as of {day(snap.as_of)}{stale}"
    if not entries:
        text += f"; no {group} model on the board" if group else "; the board is empty"
    return Reply(title=title, text=text, table=tuple(rows) if entries else (),
                 url=snap.board.url or None, group=group)



# --- race, gap ---------------------------------------------------------------------------------------

def best_of(ctx: CommandContext, snap: Snapshot, group: str) -> Entry | None:
    """The best-ranked entry of a group (never a mixed entry for a country group)."""
    g = ctx.groups[group]
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


@command("race", "race [BOARD]")
async def race_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Who leads the race: per board, the best model of each of the channel's groups, ranks and gap.

    Without BOARD: the boards this channel follows (else the LMArena boards). The groups are
    china and west unless a manager chose others (`/leaderwatch set groups china,us,europe`).
    """
    if len(args) > 1:
        raise usage_error("race", "`race` takes one board at most.")
    groups = channel_groups(ctx, inv)
    if args:
        ids, chosen = [resolve_board(ctx, args[0])], ""
        snaps = [latest(ctx, ids[0])]
    else:
        ids, chosen = race_boards(ctx, inv)
        snaps = [s for b in ids if (s := ctx.snapshots.latest(ctx.db, b)) is not None]
        if not snaps:
            return Reply(text=NO_BOARDS)
    rows: list[tuple[str, ...]] = [("board", "leads", *groups, "gap")]
    sentences, wins = [], dict.fromkeys(groups, 0)
    for snap in snaps:
        bests = {g: best_of(ctx, snap, g) for g in groups}
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
        text = f"As of {day(snaps[0].as_of)}. {sentences[0].partition(': ')[2]}"
        title = f"Race on {snaps[0].board.id}: {', '.join(groups)}"
    else:
        tally = ", ".join(f"{g} on {wins[g]}" for g in groups)
        text = f"{plural(len(snaps), 'board')}, {chosen}, as of each one's last snapshot. Leads: {tally}."
        title = f"Race: {', '.join(groups)}"
    return Reply(title=title, text=text, table=tuple(rows))


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


@command("gap", "gap BOARD GROUP_A GROUP_B [DAYS]")
async def gap_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """The gap between two groups' best scores on a board, now and DAYS ago (default 30).

    `/leaderwatch gap lmarena/text china west 90`
    """
    if not 3 <= len(args) <= 4:
        raise usage_error("gap", "Give a board and two groups.")
    board_id = resolve_board(ctx, args[0])
    a, b = resolve_group(ctx.groups, args[1]), resolve_group(ctx.groups, args[2])
    if a == b:
        raise usage_error("gap", f"Give two different groups, not `{a}` twice.")
    days = parse_days("gap", args[3]) if len(args) == 4 else GAP_DAYS
    snap = latest(ctx, board_id)
    old = ctx.snapshots.at(ctx.db, board_id, ctx.clock() - timedelta(days=days))
    now_a, now_b = best_of(ctx, snap, a), best_of(ctx, snap, b)
    m_now = margin(snap, now_a, now_b)
    rows: list[tuple[str, ...]] = [("", "as of", f"best {a}", f"best {b}", "gap"),
                                   ("now", day(snap.as_of), standing(now_a), standing(now_b),
                                    lead_phrase(m_now, a, b, True))]
    if m_now is None:
        missing = a if now_a is None else b
        text = f"No {missing} model on {board_id} now."
    else:
        text = f"Now {lead_phrase(m_now, a, b, True)} ({snap.board.metric})."
    ago = f"{plural(days, 'day')} ago"
    if old is None:
        first = next(iter(store.snapshots_between(ctx.db, board_id)), snap)
        text += f" No data from {ago}: the board's history starts {day(first.as_of)}."
    else:
        then_a, then_b = best_of(ctx, old, a), best_of(ctx, old, b)
        m_then = margin(old, then_a, then_b)
        rows.append((ago, day(old.as_of), standing(then_a), standing(then_b),
                     lead_phrase(m_then, a, b, False)))
        if m_then is None:
            text += f" {ago.capitalize()} there was no {a if then_a is None else b} model on the board."
        elif m_now is not None:
            text += f" {ago.capitalize()} {lead_phrase(m_then, a, b, False)}: "
            if m_now * m_then < 0:
                text += "the lead changed hands."
            elif abs(m_now) == abs(m_then):
                text += "the gap did not move."
            else:
                word = "widened" if abs(m_now) > abs(m_then) else "narrowed"
                text += f"the gap {word} by {num(abs(abs(m_now) - abs(m_then)))}."
    return Reply(title=f"Gap {a} vs {b} on {board_id}", text=text, table=tuple(rows),
                 url=snap.board.url or None)



# --- model ---------------------------------------------------------------------------------------------

def rank_move(before: int, after: int) -> str:
    """`up 2`, `down 1`, `same rank`."""
    if before == after:
        return "same rank"
    return f"up {before - after}" if after < before else f"down {after - before}"


@command("model", "model NAME")
async def model_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Where a model stands on every board, with its rank and score moves over the last 30 days.

    Names accept aliases and unique prefixes: `/leaderwatch model glm-4.5`. Quote names with
    spaces: `/leaderwatch model "GLM 4.5"`.
    """
    if not args:
        raise usage_error("model", "Which model?")
    name = " ".join(args)
    names = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    if not names:
        raise UserError(NO_BOARDS)
    key = resolve_model(ctx, name, names)
    since = ctx.clock() - timedelta(days=MODEL_DAYS)
    now = standings(ctx.db, key)
    then = {s.board_id: s.entry for s in standings(ctx.db, key, since)}
    had_data = boards_with_data(ctx.db, since)
    rows: list[tuple[str, ...]] = [("board", "#", "score", f"{MODEL_DAYS} days ago", "move")]
    for s in now:
        e, old = s.entry, then.get(s.board_id)
        if s.board_id not in had_data:
            was, move = "no data", "-"
        elif old is None:
            was, move = "not listed", "new"
        else:
            was = f"#{old.rank} ({num(old.score)})"
            move = f"{rank_move(old.rank, e.rank)}, {signed(e.score - old.score)}"
        rows.append((s.board_id, str(e.rank), num(e.score), was, move))
    first = now[0].entry  # resolve_model only finds keys listed on some current table
    origin = ", ".join(x for x in (first.organization, country(first)) if x and x != "?") or "origin unknown"
    return Reply(title=f"{first.name} on {plural(len(now), 'board')}",
                 text=f"{origin}. Each board's last snapshot; moves since {day(since)}.",
                 table=tuple(rows))



# --- events, why -------------------------------------------------------------------------------------

@command("events", "events [BOARD] [DAYS]")
async def events_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """What the rules found lately, newest first (default: the last 7 days).

    Without BOARD: the boards this channel follows, else every board. `/leaderwatch events text 30`
    """
    if len(args) > 2:
        raise usage_error("events", "Too many words.")
    days, board = EVENTS_DAYS, None
    for word in args:
        if whole_number(word.lower().removesuffix("d")) is not None:
            days = parse_days("events", word)
        elif board is None:
            board = resolve_board(ctx, word)
        else:
            raise usage_error("events", "Give one board at most.")
    ids: list[str] | None
    if board is not None:
        ids, scope = [board], f"{board}"
    else:
        followed = followed_boards(ctx, inv, board_ids(ctx))
        ids, scope = (followed, "this channel's boards") if followed else (None, "all boards")
    found = recent_events(ctx.db, ctx.clock() - timedelta(days=days), ids, limit=EVENTS_SHOWN)
    period = f"the last {plural(days, 'day')}"
    if not found:
        return Reply(text=f"No events on {scope} in {period}.")
    lines = [f"• {day(e.at)} {e.message}" for e in found]
    more = (f"The newest {EVENTS_SHOWN} are shown; give a board or fewer days to see the others."
            if len(found) == EVENTS_SHOWN else None)
    return Reply(title=f"Events on {scope} in {period}", text="\n".join(lines), footer=more)


def event_line(events: Sequence[Event]) -> str:
    """`fired: MESSAGE` (and how many more)."""
    board = events[0].board
    more = f" (and {len(events) - 1} more)" if len(events) > 1 else ""
    return f"fired: {events[0].message.removeprefix(f'{board}: ')}{more}"


@command("why", "why BOARD")
async def why_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Which of this channel's rules looked at a board's last snapshot, and why each fired or not.

    `/leaderwatch why lmarena/text`
    """
    if len(args) != 1:
        raise usage_error("why", "Give one board.")
    board_id = resolve_board(ctx, args[0])
    snap = latest(ctx, board_id)
    names = channel_rules(ctx, inv, board_id)
    if not names:
        return Reply(text=f"This channel follows no rule on {board_id}, so nothing from it is posted here. "
                          f"A channel manager can run `/leaderwatch subscribe {board_id}`.")
    prev = ctx.snapshots.at(ctx.db, board_id, snap.as_of - timedelta(seconds=1))
    events = [e for e in recent_events(ctx.db, snap.as_of, [board_id], limit=1000) if e.at == snap.as_of]
    fields = []
    for name in names:
        try:
            rule: Rule = parse_rule(name, list(ctx.groups))
        except RuleError as exc:
            fields.append(Field(name, f"not run: the rule is no longer valid ({exc})", inline=False))
            continue
        finding = explain(rule, prev, snap, ctx.groups)
        found = fired(rule, finding, events)
        if found:
            value = event_line(found)
        elif finding.changed:
            value = f"quiet: {finding.reason}; no alert was stored: {held_back(rule)}"
        else:
            value = f"quiet: {finding.reason}"
        fields.append(Field(name, value, inline=False))
    against = f"compared with the one of {day(prev.as_of)}" if prev else "the board's first"
    return Reply(title=f"Why on {board_id}",
                 text=f"The last snapshot ({day(snap.as_of)}, {against}), through the "
                      f"{plural(len(names), 'rule')} this channel follows there:",
                 fields=tuple(fields), url=snap.board.url or None)

