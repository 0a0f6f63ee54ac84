"""Question commands, for anyone: help, boards, top, race, gap, model, events, why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from leaderwatch.alerts.explain import explain
from leaderwatch.alerts.formatting import Field, Reply, day, num, plural, signed
from leaderwatch.alerts.kinds import KIND_HELP, KINDS, kind_named
from leaderwatch.alerts.kinds.rival import RivalParams
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError
from leaderwatch.alerts.ruleset import params_of, parse_rule
from leaderwatch.bot.commands.channel import (
    MAX_TOP,
    channel_rules,
    channel_top,
    followed_boards,
)
from leaderwatch.bot.commands.history import snapshot_as_of, staleness
from leaderwatch.bot.commands.messages import NO_BOARDS, country
from leaderwatch.bot.commands.names import (
    board_ids,
    did_you_mean,
    latest,
    parse_days,
    resolve_board,
    resolve_model,
    split_at,
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
from leaderwatch.sources.base import Board, Entry, Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.events import recent_events
from leaderwatch.storage.rule_states import SPANNING, load_rule_states, rules_at, spanning_at
from leaderwatch.storage.standings import current_models, rival_elsewhere, standings, standings_before
from leaderwatch.storage.status import all_statuses, held_tables

MODEL_DAYS = 30
"""`model` shows moves over this many days."""
GAP_DAYS = 30
EVENTS_DAYS = 7
EVENTS_SHOWN = 25


# --- help, boards, top -----------------------------------------------------------------------------

RULE_PATTERNS = {"rival": "vision"}
"""The board pattern `help RULE`'s example subscribes to, where lmarena/* would not fit the rule."""


def rule_help(kind: str) -> Reply:
    """`help overtake`: what a rule kind reports and its parameters."""
    lines = []
    for p in params_of(kind):
        if p.default is not None:
            default = f"default {p.show(p.default)}"
        else:
            default = "required" if p.always_named else "default any"
        lines.append(f"• `{p.name}`: {p.help or p.name} ({default})")
    line = KIND_HELP[kind]
    text = f"{line[:1].upper()}{line[1:]}.\n" + ("\n".join(lines) if lines else "No parameters.")
    return Reply(title=f"Rule `{kind}`", text=text, ephemeral=True,
                 footer=f"e.g. `/leaderwatch subscribe {RULE_PATTERNS.get(kind, 'lmarena/*')} "
                        f"{kind_named(kind).example}`")


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
    """List the boards leaderwatch follows, with their last update and size, and the sources whose
    format changed upstream (drifted: their last good tables are shown until they read fine again)."""
    if args:
        raise usage_error("boards", "`boards` takes no arguments.")
    summaries = store.board_summaries(ctx.db, counts=False)  # no count: it reads every board's history
    if not summaries:
        return Reply(text=NO_BOARDS)
    drifted = {name: st for name, st in all_statuses(ctx.db).items() if st.is_drifted}
    held = {h.board_id: h for h in held_tables(ctx.db)}

    def mark(board: Board) -> str:
        if board.id in held:
            return f" (held: {held[board.id].rows} rows)"
        return " (archived)" if board.archived else " (drifted)" if board.source in drifted else ""

    rows = [("board", "updated", "models")]
    rows += [(s.board.id + mark(s.board), day(s.last_as_of) if s.last_as_of else "-", str(s.entries))
             for s in summaries]
    notes = [f"{name} drifted since {day(st.drifted_at) if st.drifted_at else '?'}: {st.drift} "
             f"({st.drift_url or 'origin unknown'}). Its last good tables are kept; every poll retries."
             for name, st in sorted(drifted.items())]
    return Reply(title=f"{len(summaries)} boards", text="\n".join(notes), table=tuple(rows))


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


@command("top", "top BOARD [N] [GROUP] [at DATE]")
async def top_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show a board's top N (default 10, or the channel's `top` setting), optionally one group's models.

    Ties at #N are all shown. `/leaderwatch top lmarena/text 5 china`; `at DATE` shows the table as
    it stood then: `/leaderwatch top lmarena/text 5 at 2025-08-01`.
    """
    args, at = split_at("top", args)
    board_id, n, group = parse_top_args(ctx, inv, args)
    snap = snapshot_as_of(ctx, board_id, at)
    entries = top_entries(snap, n, ctx.groups[group] if group else None)
    rows = [("#", "model", "score", "org", "country")]
    for e in entries:
        rows.append((str(e.rank), e.name, num(e.score), e.organization or "?", country(e)))
    title = f"Top {n} on {board_id}" + (f", {group} only" if group else "")
    text = f"as of {day(snap.as_of)}{staleness(ctx, snap) if at is None else ''}"
    if not entries:
        text += f"; no {group} model on the board" if group else "; the board is empty"
    return Reply(title=title, text=text, table=tuple(rows) if entries else (),
                 url=snap.board.url or None, group=group)



# --- model ---------------------------------------------------------------------------------------------

def rank_move(before: int, after: int) -> str:
    """`up 2`, `down 1`, `same rank`."""
    if before == after:
        return "same rank"
    return f"up {before - after}" if after < before else f"down {after - before}"


@command("model", "model NAME [at DATE]")
async def model_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Where a model stands on every board, and how it moved over the 30 days before each board's table.

    Names accept aliases and unique prefixes: `/leaderwatch model glm-4.5`. Quote names with
    spaces: `/leaderwatch model "GLM 4.5"`. `at DATE` reads the boards as they stood then.
    """
    args, at = split_at("model", args)
    if not args:
        raise usage_error("model", "Which model?")
    name = " ".join(args)
    names = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    if not names:
        raise UserError(NO_BOARDS)
    key = resolve_model(ctx, name, names)
    now = standings(ctx.db, key, at)
    if not now:
        raise UserError(f"{names[key]} was on no board's table as of {day(at or ctx.clock())}.")
    then = standings_before(ctx.db, key, {s.board_id: s.as_of - timedelta(days=MODEL_DAYS) for s in now})
    rows: list[tuple[str, ...]] = [("board", "table of", "#", "score", f"{MODEL_DAYS} days before", "move")]
    for s in now:
        e, (old_as_of, old) = s.entry, then.get(s.board_id, (None, None))
        if old_as_of is None:
            was, move = "no table yet", "-"
        elif old is None:
            was, move = f"not listed ({day(old_as_of)})", "new"
        else:
            was = f"#{old.rank} ({num(old.score)}) on {day(old_as_of)}"
            move = f"{rank_move(old.rank, e.rank)}, {signed(e.score - old.score)}"
        rows.append((s.board_id, day(s.as_of), str(e.rank), num(e.score), was, move))
    first = now[0].entry
    origin = ", ".join(x for x in (first.organization, country(first)) if x and x != "?") or "origin unknown"
    when = f"as of {day(at)}" if at else "at its last update"
    return Reply(title=f"{first.name} on {plural(len(now), 'board')}",
                 text=f"{origin}. Each board's table {when}, against its table {MODEL_DAYS} days before.",
                 table=tuple(rows))


# --- events, why -------------------------------------------------------------------------------------

@command("events", "events [BOARD] [DAYS] [at DATE]")
async def events_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """What the rules found lately, newest first (default: the last 7 days).

    Without BOARD: the boards this channel follows, else every board. `/leaderwatch events text 30`;
    `at DATE` looks at the DAYS up to that date: `/leaderwatch events text 30 at 2025-08-04`.
    """
    args, at = split_at("events", args)
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
    end = at or ctx.clock()
    found = recent_events(ctx.db, end - timedelta(days=days), ids, limit=EVENTS_SHOWN, until=at)
    period = (f"the {plural(days, 'day')} up to {day(at)}" if at else f"the last {plural(days, 'day')}")
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


def why_then(ctx: CommandContext, board_id: str, then: Snapshot, newest: Snapshot, names: list[str]) -> Reply:
    """`why` about an earlier snapshot: what each rule found there, from the events stored with it.

    The rules keep their memory of the latest update only, so they cannot be run again on an
    earlier one: the events they stored then say what fired; the rest did not fire then.
    """
    found = recent_events(ctx.db, then.as_of, [board_id], limit=500, until=then.as_of)
    fields = []
    for name in names:
        fired = [e for e in found if e.rule == name]
        said = event_line(fired) if fired else "did not fire at this update"
        fields.append(Field(name, said, inline=False))
    return Reply(title=f"Why on {board_id}, {day(then.as_of)}",
                 text=f"The snapshot of {day(then.as_of)}, through the {plural(len(names), 'rule')} this "
                      f"channel follows there. The board has updated since ({day(newest.as_of)}): "
                      f"`/leaderwatch why {board_id}` explains its latest snapshot step by step.",
                 fields=tuple(fields), url=then.board.url or None)


@command("why", "why BOARD [at DATE]")
async def why_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Which of this channel's rules looked at a board's last snapshot, and why each fired or not.

    `/leaderwatch why lmarena/text`; `at DATE` asks about the snapshot in force then (the *Why* button
    under an alert asks about the snapshot the alert came from).
    """
    args, at = split_at("why", args)
    if len(args) != 1:
        raise usage_error("why", "Give one board.")
    board_id = resolve_board(ctx, args[0])
    snap = latest(ctx, board_id)
    names = channel_rules(ctx, inv, board_id)
    if not names:
        return Reply(text=f"This channel follows no rule on {board_id}, so nothing from it is posted here. "
                          f"A channel manager can run `/leaderwatch subscribe {board_id}`.")
    then = snapshot_as_of(ctx, board_id, at) if at is not None else snap
    if then.as_of != snap.as_of:
        return why_then(ctx, board_id, then, snap, names)
    prev = ctx.snapshots.at(ctx.db, board_id, snap.as_of - timedelta(seconds=1))
    # The rules run again as the engine ran them on this snapshot: from their states before it,
    # with its clock; a rule with no stored state there joined after it and is judged as new.
    ran = rules_at(ctx.db, board_id, snap.as_of)
    board_state = ran.board_state if ran else BoardState()
    states = ran.states if ran else {}
    now = ran.evaluated_at if ran and ran.evaluated_at else snap.as_of
    spanning_before = spanning_at(ctx.db, ran.snapshot_id) if ran else {}
    spanning_now = load_rule_states(ctx.db, SPANNING)
    fields = []
    for name in names:
        try:
            rule: Rule = parse_rule(name, list(ctx.groups))
        except RuleError as exc:
            fields.append(Field(name, f"not run: the rule is no longer valid ({exc})", inline=False))
            continue
        if isinstance(rule.params, RivalParams):  # it compares boards: one state for all of them
            elsewhere = {rule.params.span: rival_elsewhere(ctx.db, rule.params, board_id, ctx.groups,
                                                           ctx.suites)}
            ran_here = name in spanning_before
            state = spanning_before[name] if ran_here else spanning_now.get(name)
            found = explain(rule, prev, snap, state, board_state, ctx.groups, now, elsewhere)
            value = event_line(found.events) if found.fired else f"quiet: {found.reason}"
            if not ran_here:
                value += (" (as the boards stand now: the rule last ran on another board's update)"
                          if name in spanning_now else
                          " (had it been there: the rule was added after this snapshot arrived)")
            fields.append(Field(name, value, inline=False))
            continue
        found = explain(rule, prev, snap, states.get(name), board_state, ctx.groups, now)
        value = event_line(found.events) if found.fired else f"quiet: {found.reason}"
        if name not in states:
            value += " (had it been there: the rule was added after this snapshot arrived)"
        fields.append(Field(name, value, inline=False))
    against = f"compared with the one of {day(prev.as_of)}" if prev else "the board's first"
    return Reply(title=f"Why on {board_id}",
                 text=f"The last snapshot ({day(snap.as_of)}, {against}), through the "
                      f"{plural(len(names), 'rule')} this channel follows there:",
                 fields=tuple(fields), url=snap.board.url or None)

