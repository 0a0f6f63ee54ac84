"""The command layer's words: texts every platform shows the same, and helpers that write names.

Numbers, dates and counts are written by `leaderwatch.alerts.formatting` (`num`, `day`, `plural`...);
what is here is only the command layer's: code-quoted names, a model's country and standing, "did
you mean", and the texts more than one command uses.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from leaderwatch.alerts.formatting import num
from leaderwatch.sources.base import Entry


def code(names: Iterable[str]) -> str:
    """`a`, `b`, `c`."""
    return ", ".join(f"`{n}`" for n in names)


def country(entry: Entry, detailed: bool = False) -> str:
    """`CN`, `mixed` (`detailed`: `mixed (CN, US)`) or `?` when unknown."""
    if entry.mixed:
        return "mixed" + (f" ({', '.join(entry.countries)})" if detailed and entry.countries else "")
    return entry.countries[0] if entry.countries else "?"


def standing(entry: Entry | None) -> str:
    """`#3 GLM-4.5 (1434)`, or `-` when the group has no model on the board."""
    return "-" if entry is None else f"#{entry.rank} {entry.name} ({num(entry.score)})"


def similar(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices spelled close to `word`, closest first (the one fuzzy match of leaderwatch)."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)


def close_matches(word: str, choices: Sequence[str]) -> str:
    """` Did you mean `y` or `z`?`, or "" when nothing is close."""
    close = similar(word, choices)
    return f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


NO_DATA = "`{board}` has no data yet; try again after its next poll."
NO_BOARDS = "No board has been fetched yet. The first polls run a few seconds after start-up."
BOARDS_HINT = "`/leaderwatch boards` lists them."
INTERNAL_ERROR = ("Sorry, something went wrong on our side. The operator can find it in the log under "
                  "error id `{error_id}`.")
WHO_MANAGES = {
    "slack": "Ask a workspace admin or owner (or a user listed in the config). ",
    "discord": "It needs the Manage Channels permission in this channel. ",
}
