"""Question commands, for anyone: help, boards, top, race, model, gap, events, why."""

from __future__ import annotations

from datetime import timedelta

from alerts.formatting import Field, Reply
from bot.commands import COMMANDS, CommandContext, Invocation, UserError, command, did_you_mean, usage_error
from storage import snapshots as store


def resolve_board(ctx: CommandContext, name: str) -> str:
    """A board id from an exact id, a unique prefix, or a unique board name (`text` -> lmarena/text)."""
    ids = sorted(set(ctx.boards) | {b.id for b in store.boards(ctx.db)})
    wanted = name.strip().lower()
    if wanted in ids:
        return wanted
    prefixed = [b for b in ids if b.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    named = [b for b in ids if b.split("/", 1)[1] == wanted]
    if len(named) == 1:
        return named[0]
    if len(prefixed) > 1:
        raise UserError(f"`{name}` matches several boards: {', '.join(f'`{b}`' for b in prefixed[:8])}"
                        f"{', ...' if len(prefixed) > 8 else ''}. Type more of the name.")
    raise UserError(f"{did_you_mean(wanted, ids, 'board')} `/leaderwatch boards` lists them.")


@command("help", "help [COMMAND]")
async def help_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show the commands, or how to use one of them.

    `/leaderwatch help top` explains `top`.
    """
    if args:
        name = args[0].lower()
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise did_you_mean(name, sorted(COMMANDS), "command")
        who = " (channel managers only)" if cmd.configures else ""
        return Reply(title=f"/leaderwatch {cmd.usage}", text=f"{cmd.help}{who}", ephemeral=True)
    questions = [c for c in COMMANDS.values() if not c.configures]
    config = [c for c in COMMANDS.values() if c.configures]
    fields = [Field(f"/leaderwatch {c.usage}", c.summary, inline=False) for c in questions + config]
    return Reply(title="leaderwatch commands",
                 text="Ask about the AI leaderboards, or (channel managers) choose what this channel is "
                      "told. `/leaderwatch help COMMAND` shows more.",
                 fields=tuple(fields), ephemeral=True)


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
              f"{s.last_as_of:%Y-%m-%d}" if s.last_as_of else "-", str(s.entries)) for s in summaries]
    return Reply(title=f"{len(summaries)} boards", text="", table=tuple(rows))


def parse_top_args(ctx: CommandContext, args: list[str]) -> tuple[str, int, str | None]:
    """`BOARD [N] [GROUP]` in any order after the board."""
    if not args:
        raise usage_error("top", "Which board?")
    board = resolve_board(ctx, args[0])
    n, group = 10, None
    for word in args[1:]:
        if word.isdigit():
            n = int(word)
            if not 1 <= n <= 50:
                raise usage_error("top", f"N must be between 1 and 50, not {n}.")
        elif word.lower() in ctx.groups:
            group = word.lower()
        else:
            raise usage_error("top", f"`{word}` is neither a number nor a group "
                                     f"({', '.join(sorted(ctx.groups))}).")
    return board, n, group


@command("top", "top BOARD [N] [GROUP]")
async def top_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show a board's top N (default 10), optionally only one group's models.

    `/leaderwatch top lmarena/text 5 china`
    """
    board_id, n, group = parse_top_args(ctx, args)
    snap = store.latest_snapshot(ctx.db, board_id)
    if snap is None:
        raise UserError(f"`{board_id}` has no data yet; try again after its next poll.")
    entries = [e for e in snap.entries if group is None or ctx.groups[group].contains(e)][:n]
    rows = [("#", "model", "score", "org", "country")]
    for e in entries:
        country = "mixed" if e.mixed else (e.countries[0] if e.countries else "?")
        rows.append((str(e.rank), e.name, f"{e.score:.2f}".rstrip("0").rstrip("."),
                     e.organization or "?", country))
    age = ctx.clock() - snap.fetched_at
    stale = " (stale: last fetched over a day ago)" if age > timedelta(days=1) else ""
    title = f"Top {n} on {board_id}" + (f", {group} only" if group else "")
    return Reply(title=title, text=f"as of {snap.as_of:%Y-%m-%d}{stale}", table=tuple(rows),
                 url=snap.board.url or None, group=group)
