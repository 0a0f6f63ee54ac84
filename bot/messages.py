"""How the command layer writes numbers, times and names, so every platform words things identically."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sources.base import Entry


def num(value: float | None) -> str:
    """1470.0 -> `1470`, 83.14 -> `83.14`, None -> `-`."""
    return "-" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def signed(value: float) -> str:
    """+4, -1.5, 0."""
    text = num(abs(value))
    return "0" if text == "0" else ("+" if value > 0 else "-") + text


def day(when: datetime) -> str:
    """`2025-08-04`."""
    return f"{when:%Y-%m-%d}"


def moment(when: datetime) -> str:
    """`2025-08-26 12:30 UTC`."""
    return f"{when:%Y-%m-%d %H:%M} UTC"


def code(names: Iterable[str]) -> str:
    """`a`, `b`, `c`."""
    return ", ".join(f"`{n}`" for n in names)


def plural(count: int, word: str) -> str:
    """`1 rule`, `3 rules`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def country(entry: Entry) -> str:
    """`CN`, `mixed` or `?`."""
    if entry.mixed:
        return "mixed"
    return entry.countries[0] if entry.countries else "?"


def standing(entry: Entry | None) -> str:
    """`#3 GLM-4.5 (1434)`, or `-` when the group has no model on the board."""
    return "-" if entry is None else f"#{entry.rank} {entry.name} ({num(entry.score)})"


NO_DATA = "`{board}` has no data yet; try again after its next poll."
BOARDS_HINT = "`/leaderwatch boards` lists them."
INTERNAL_ERROR = ("Sorry, something went wrong on our side. The operator can find it in the log under "
                  "error id `{error_id}`.")
WHO_MANAGES = {
    "slack": "Ask a workspace admin or owner (or a user listed in the config). ",
    "discord": "It needs the Manage Channels permission in this channel. ",
}
