"""What a name typed in chat or at the terminal means: boards, groups, models, numbers of days.

Chat commands and the CLI resolve names here, so `text`, `lmarena/te` and `lmarena/text` mean the
same board everywhere, and an unknown name gets the same "did you mean".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from leaderwatch.alerts.matching import board_matches
from leaderwatch.bot.commands.messages import BOARDS_HINT, NO_DATA, close_matches, code
from leaderwatch.bot.commands.registry import CommandContext, UserError, usage_error
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store

MAX_DAYS = 3650
"""The longest window a question may look back, in days."""


def did_you_mean(word: str, choices: Sequence[str], what: str) -> UserError:
    """`Unknown board `x`. Did you mean `y`?`"""
    return UserError(f"Unknown {what} `{word}`.{close_matches(word, choices)}")


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


def find_board(name: str, ids: Sequence[str], hint: str = BOARDS_HINT) -> str:
    """The board `name` means among `ids` (see `match_board`); a UserError with "did you mean" and
    `hint` (how to list the boards) when it means none or several."""
    found = match_board(name, ids)
    if isinstance(found, str):
        return found
    if found:
        raise UserError(f"`{name}` matches several boards: {code(found[:8])}"
                        f"{', ...' if len(found) > 8 else ''}. Type more of the name.")
    raise UserError(f"{did_you_mean(name.strip().lower(), ids, 'board')} {hint}")


def resolve_board(ctx: CommandContext, name: str) -> str:
    """A board id from an exact id, a unique prefix, or a unique board name (`text` -> lmarena/text)."""
    return find_board(name, board_ids(ctx))


GLOB = re.compile(r"[*?\[]")
MAX_PATTERN = 100


def resolve_pattern(ctx: CommandContext, text: str) -> tuple[str, list[str]]:
    """A suite (`vision`), a glob (`lmarena/*`) or one board (prefixes and names accepted), with the
    boards it matches; a UserError with "did you mean" when it matches none."""
    pattern = text.strip().lower()
    if len(pattern) > MAX_PATTERN:
        raise UserError(f"A board pattern has at most {MAX_PATTERN} characters.")
    ids = board_ids(ctx)
    if pattern in ctx.suites:
        matched = [b for b in ids if board_matches(pattern, b, ctx.suites)]
        if not matched:
            raise UserError(f"The suite `{pattern}` holds no board leaderwatch has yet "
                            f"({', '.join(ctx.suites[pattern])}). {BOARDS_HINT}")
        return pattern, matched
    if not GLOB.search(pattern):
        board = resolve_board(ctx, pattern)
        return board, [board]
    matched = [b for b in ids if board_matches(pattern, b, ctx.suites)]
    if not matched:
        choices = sorted(set(ids) | {f"{b.partition('/')[0]}/*" for b in ids} | set(ctx.suites))
        raise UserError(f"`{pattern}` matches no board.{close_matches(pattern, choices)} {BOARDS_HINT}")
    return pattern, matched


def resolve_group(groups: Mapping[str, Group], name: str) -> str:
    """A group name, exact or a unique prefix (`chi` -> china), any case; UserError with the groups else."""
    wanted = name.strip().lower()
    if wanted in groups:
        return wanted
    prefixed = [g for g in sorted(groups) if wanted and g.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise UserError(f"{did_you_mean(wanted, sorted(groups), 'group')} Groups: {', '.join(sorted(groups))}.")


def whole_number(word: str) -> int | None:
    """The number a word spells in ASCII digits (`12`), else None (`²` and `1e9` are no numbers here)."""
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 6 else None


def parse_days(name: str, word: str) -> int:
    """`30` or `30d` as a number of days, 1 to 3650."""
    days = whole_number(word.lower().removesuffix("d"))
    if days is None or not 1 <= days <= MAX_DAYS:
        raise usage_error(name, f"DAYS must be a whole number of days from 1 to {MAX_DAYS}, not `{word}`.")
    return days


def parse_date(text: str, end_of_day: bool = True) -> datetime:
    """`YYYY-MM-DD` (the end of that day, UTC, or its start) or a full ISO 8601 time."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, seconds=-1) if end_of_day else day
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"`{text}` is not a date: give one like 2025-01-24 (or 2025-01-24T12:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def split_at(name: str, args: list[str]) -> tuple[list[str], datetime | None]:
    """`... at YYYY-MM-DD` as a command's last words: its other words, and the end of that day (UTC)."""
    if len(args) >= 2 and args[-2].lower() == "at":
        try:
            return args[:-2], parse_date(args[-1])
        except UserError as exc:
            raise usage_error(name, str(exc)) from None
    if args and args[-1].lower() == "at":
        raise usage_error(name, "`at` needs a date, e.g. `at 2025-01-24`.")
    return args, None


def latest(ctx: CommandContext, board_id: str) -> Snapshot:
    """The board's newest snapshot, or a UserError when nothing is stored yet."""
    snap = ctx.snapshots.latest(ctx.db, board_id)
    if snap is None:
        raise UserError(NO_DATA.format(board=board_id))
    return snap



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

