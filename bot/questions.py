"""Question commands, for anyone: help, boards, top, race, model, gap, events, why, chart."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alerts.explain import explain, fired, held_back
from alerts.formatting import Field, Reply
from alerts.matching import board_matches
from alerts.models import KINDS, Event, Rule, RuleError
from alerts.ruleset import KIND_HELP, params_of, parse_rule
from bot import charts
from bot.commands import (
    COMMANDS,
    CommandContext,
    Invocation,
    UserError,
    close_matches,
    command,
    did_you_mean,
    usage_error,
)
from bot.messages import BOARDS_HINT, NO_DATA, code, country, day, num, plural, signed, standing
from sources.base import Entry, Snapshot
from storage import snapshots as store
from storage.events import recent_events
from storage.standings import boards_with_data, current_models, standings
from storage.subscriptions import channel_settings, channel_subscriptions

DEFAULT_GROUPS = ("china", "west")
"""The groups `race` compares when the channel has not chosen (`set groups ...`)."""
DEFAULT_TOP = 10
MAX_TOP = 50
MODEL_DAYS = 30
"""`model` shows moves over this many days."""
GAP_DAYS = 30
EVENTS_DAYS = 7
EVENTS_SHOWN = 25
MAX_DAYS = 3650


# --- names -----------------------------------------------------------------------------------------

def board_ids(ctx: CommandContext) -> list[str]:
    """Every board id leaderwatch knows: the sources' boards and any stored one."""
    return sorted(set(ctx.boards) | {b.id for b in store.boards(ctx.db)})


def match_board(name: str, ids: Sequence[str]) -> str | list[str]:
    """The board `name` means (an exact id, a unique prefix, a unique board name: `text` ->
    lmarena/text), else the boards it is a prefix of (several, or none), for the caller's error."""
    wanted = name.strip().lower()
    if wanted in ids:
        return wanted
    prefixed = [b for b in ids if b.startswith(wanted)] if wanted else []
    if len(prefixed) == 1:
        return prefixed[0]
    named = [b for b in ids if b.partition("/")[2] == wanted]
    return named[0] if len(named) == 1 else prefixed


def resolve_board(ctx: CommandContext, name: str) -> str:
    """A board id from an exact id, a unique prefix, or a unique board name (`text` -> lmarena/text)."""
    ids = board_ids(ctx)
    found = match_board(name, ids)
    if isinstance(found, str):
        return found
    if found:
        raise UserError(f"`{name}` matches several boards: {code(found[:8])}"
                        f"{', ...' if len(found) > 8 else ''}. Type more of the name.")
    raise UserError(f"{did_you_mean(name.strip().lower(), ids, 'board')} {BOARDS_HINT}")


def resolve_group(ctx: CommandContext, name: str) -> str:
    """A group name, exact or a unique prefix (`chi` -> china)."""
    wanted = name.strip().lower()
    if wanted in ctx.groups:
        return wanted
    prefixed = [g for g in sorted(ctx.groups) if wanted and g.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise UserError(f"{did_you_mean(wanted, sorted(ctx.groups), 'group')} "
                    f"Groups: {', '.join(sorted(ctx.groups))}.")


def whole_number(word: str) -> int | None:
    """The number a word spells in ASCII digits (`12`), else None (`²` and `1e9` are no numbers here)."""
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 6 else None


def parse_days(name: str, word: str) -> int:
    """`30` or `30d` as a number of days, 1 to 3650."""
    days = whole_number(word.lower().removesuffix("d"))
    if days is None or not 1 <= days <= MAX_DAYS:
        raise usage_error(name, f"DAYS must be a whole number of days from 1 to {MAX_DAYS}, not `{word}`.")
    return days


def latest(ctx: CommandContext, board_id: str) -> Snapshot:
    """The board's newest snapshot, or a UserError when nothing is stored yet."""
    snap = ctx.snapshots.latest(ctx.db, board_id)
    if snap is None:
        raise UserError(NO_DATA.format(board=board_id))
    return snap


# --- channel settings ------------------------------------------------------------------------------

def default_groups(ctx: CommandContext) -> list[str]:
    """china and west, or the first two configured groups when the config dropped them."""
    if all(g in ctx.groups for g in DEFAULT_GROUPS):
        return list(DEFAULT_GROUPS)
    return sorted(ctx.groups)[:2]


def channel_groups(ctx: CommandContext, inv: Invocation) -> list[str]:
    """The groups this channel compares in `race` (setting `groups`), known ones only."""
    return groups_of_channel(ctx, inv.platform, inv.channel_id)


def groups_of_channel(ctx: CommandContext, platform: str, channel_id: str) -> list[str]:
    """`channel_groups` for a channel named by platform and id (alerts have no Invocation)."""
    chosen = channel_settings(ctx.db, platform, channel_id).get("groups")
    names = [g for g in (chosen or "").split(",") if g in ctx.groups]
    return names if len(names) >= 2 else default_groups(ctx)


def channel_top(ctx: CommandContext, inv: Invocation) -> int:
    """The default N of `top` for this channel (setting `top`)."""
    value = whole_number(channel_settings(ctx.db, inv.platform, inv.channel_id).get("top", ""))
    return value if value is not None and 1 <= value <= MAX_TOP else DEFAULT_TOP


def channel_patterns(ctx: CommandContext, inv: Invocation) -> list[str]:
    """The board patterns this channel follows (active subscriptions)."""
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id)
    return sorted({str(r["board_pattern"]) for r in rows})


def followed_boards(ctx: CommandContext, inv: Invocation, ids: Sequence[str]) -> list[str]:
    """Those of `ids` this channel follows."""
    patterns = channel_patterns(ctx, inv)
    return [b for b in ids if any(board_matches(p, b) for p in patterns)]


def channel_rules(ctx: CommandContext, inv: Invocation, board_id: str) -> list[str]:
    """The names of the rules this channel follows on a board, in a stable order."""
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id)
    return sorted({str(r["rule"]) for r in rows if board_matches(str(r["board_pattern"]), board_id)})


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
        return Reply(text="No board has been fetched yet. The first polls run a few seconds after start-up.")
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


@command("top", "top BOARD [N] [GROUP]")
async def top_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show a board's top N (default 10, or the channel's `top` setting), optionally one group's models.

    `/leaderwatch top lmarena/text 5 china`
    """
    board_id, n, group = parse_top_args(ctx, inv, args)
    snap = latest(ctx, board_id)
    entries = [e for e in snap.entries if group is None or ctx.groups[group].contains(e)][:n]
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
            return Reply(text="No board has been fetched yet. The first polls run a few seconds after "
                              "start-up.")
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
    a, b = resolve_group(ctx, args[1]), resolve_group(ctx, args[2])
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

def resolve_model(ctx: CommandContext, name: str, names: Mapping[str, str]) -> str:
    """A model key from a name, alias, key or unique prefix of one, among `names` (key -> name)."""
    key = ctx.identity.key(name)
    if key in names:
        return key
    wanted = name.strip().lower()
    hits = sorted({k for k, n in names.items()
                   if (key and k.startswith(key)) or (wanted and n.lower().startswith(wanted))})
    if len(hits) == 1:
        return hits[0]
    if hits:
        shown = ", ".join(f"`{k}`" for k in hits[:8]) + (", ..." if len(hits) > 8 else "")
        raise UserError(f"`{name}` matches several models: {shown}. Type more of the name.")
    hint = close_matches(key or wanted, list(names))
    raise UserError(f"No model `{name}` on any board's current table.{hint}")


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
        raise UserError("No board has been fetched yet. The first polls run a few seconds after start-up.")
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


# --- chart, chart model, and the charts under alerts -------------------------------------------------

CHART_DAYS = 180
"""`chart` and `chart model` draw this many days back unless told otherwise."""
ALERT_CHART_DAYS = 90
CHARTED_KINDS = frozenset({"overtake", "new_leader"})
"""Alerts that carry a chart of their board (unless the channel's `charts` setting is off)."""
ALERT_CHARTS_KEPT = 16


def parse_chart_args(ctx: CommandContext, inv: Invocation, args: list[str]) -> tuple[str, list[str], int]:
    """`BOARD [GROUP ...] [DAYS]`: groups may also be written `china,west`; DAYS anywhere after BOARD."""
    if not args:
        raise usage_error("chart", "Which board?")
    board = resolve_board(ctx, args[0])
    groups: list[str] = []
    days: int | None = None
    for word in (w for arg in args[1:] for w in arg.split(",") if w):
        if whole_number(word.lower().removesuffix("d")) is not None:
            if days is not None:
                raise usage_error("chart", "Give DAYS once.")
            days = parse_days("chart", word)
            continue
        group = resolve_group(ctx, word)
        if group in groups:
            raise usage_error("chart", f"`{group}` is given twice.")
        groups.append(group)
    if len(groups) > charts.MAX_SERIES:
        raise usage_error("chart", f"One chart shows at most {charts.MAX_SERIES} groups.")
    return board, groups or channel_groups(ctx, inv)[:charts.MAX_SERIES], days or CHART_DAYS


def no_history(ctx: CommandContext, board_id: str, days: int) -> UserError:
    """Nothing stored in the period asked: say what the board's history covers and how to reach it."""
    snap = latest(ctx, board_id)  # NO_DATA when nothing at all is stored
    first = next(iter(store.snapshots_between(ctx.db, board_id)), snap)
    needed = min(MAX_DAYS, (ctx.clock() - first.as_of).days + 1)
    return UserError(f"{board_id} has no snapshot in the last {plural(days, 'day')}: its history runs from "
                     f"{day(first.as_of)} to {day(snap.as_of)}. Ask for more days, e.g. "
                     f"`/leaderwatch chart {board_id} {needed}`.")


def latest_bests(chart: charts.Chart) -> str:
    """`best china GLM-4.5 (1434), best west Gemini-2.5-Pro (1470)`, from each line's newest point."""
    parts = []
    for series in chart.series:
        last = series.last()
        parts.append(f"best {series.label} {last[2]} ({num(last[1])})" if last
                     else f"no {series.label} model")
    return ", ".join(parts)


@command("chart", "chart BOARD [GROUP ...] [DAYS]")
async def chart_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Draw each group's best score on a board over time, with the board's events marked.

    Without GROUP: the channel's groups (as `race`); without DAYS: the last 180 days.
    `/leaderwatch chart lmarena/text china us 90`. `chart model` draws a model's ranks instead.
    """
    board_id, groups, days = parse_chart_args(ctx, inv, args)
    end = ctx.clock()
    chart = charts.board_chart(ctx.db, board_id, {g: ctx.groups[g] for g in groups},
                               end - timedelta(days=days), end)
    if chart is None:
        raise no_history(ctx, board_id, days)
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


@command("chart model", "chart model NAME [DAYS]")
async def chart_model_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Draw a model's rank over time on every board that lists it (default: the last 180 days).

    `/leaderwatch chart model o3-2025-04-16 90`; quote names with spaces:
    `/leaderwatch chart model "GLM 4.5"`.
    """
    days = CHART_DAYS
    if len(args) > 1 and whole_number(args[-1].lower().removesuffix("d")) is not None:
        days, args = parse_days("chart model", args[-1]), args[:-1]
    if not args:
        raise usage_error("chart model", "Which model?")
    names = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    if not names:
        raise UserError("No board has been fetched yet. The first polls run a few seconds after start-up.")
    key = resolve_model(ctx, " ".join(args), names)
    listed = sorted(standings(ctx.db, key), key=lambda s: (s.entry.rank, s.board_id))
    shown = sorted(s.board_id for s in listed[:charts.MAX_SERIES])
    name = listed[0].entry.name
    end = ctx.clock()
    chart = charts.model_chart(ctx.db, key, name, shown, end - timedelta(days=days), end)
    if chart is None:
        raise UserError(f"{name} is on no board's table in the last {plural(days, 'day')}; its boards "
                        f"were last updated earlier. Ask for more days, e.g. "
                        f"`/leaderwatch chart model {key} 365`.")
    ranks = ", ".join(f"{s.label} #{last[1]:.0f}" for s in chart.series if (last := s.last()))
    more = (f" Its {charts.MAX_SERIES} best boards of {len(listed)} are drawn."
            if len(listed) > charts.MAX_SERIES else "")
    return Reply(title=chart.title, text=f"Latest: {ranks}.{more}", image=await charts.draw(chart))


def chart_alerts(ctx: CommandContext) -> Callable[[str, str, Event, Reply], Awaitable[Reply]]:
    """The Dispatcher's `decorate` hook: overtake and new #1 alerts get a small chart of their board.

    The last 90 days up to the event, for the overtake's two groups or the channel's groups; not
    for channels whose `charts` setting is off. The history up to an event does not change, so a
    chart is drawn once for all the channels an alert goes to (the last few are kept).
    """
    drawn: OrderedDict[tuple[str, datetime, tuple[str, ...]], bytes | None] = OrderedDict()

    async def decorate(platform: str, channel_id: str, event: Event, reply: Reply) -> Reply:
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
