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
    """The choices spelled close to `word`, closest first (the one fuzzy match of leaderwatch).

    A board id typed with a source its choices have (`lmarena/txt`) is matched on the part after the
    slash among that source's boards first: with 22 arenas, the whole-string similarity of a shared
    `lmarena/` prefix would otherwise suggest `lmarena/agent` for a typo of `text`.
    """
    options = list(choices)
    whole = difflib.get_close_matches(word, options, n=n, cutoff=0.5)
    source, slash, rest = word.partition("/")
    tails = {c[len(source) + 1:]: c for c in options if slash and rest and c.startswith(f"{source}/")}
    close = [tails[t] for t in difflib.get_close_matches(rest, list(tails), n=n, cutoff=0.5)]
    if not close:
        return whole
    # Besides the source's boards close after the slash, only patterns (`lmarena/*`) from the whole match.
    return (close + [c for c in whole if c not in close and (c not in tails.values() or "*" in c)])[:n]


def close_matches(word: str, choices: Sequence[str]) -> str:
    """` Did you mean `y` or `z`?`, or "" when nothing is close."""
    close = similar(word, choices)
    return f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


NO_DATA = "`{board}` has no data yet; try again after its next poll."
NO_BOARDS = "No board has been fetched yet. The first polls run a few seconds after start-up."
BOARDS_HINT = "`/leaderwatch boards` lists them."
DATABASE_BUSY = ("leaderwatch's database is busy right now (another program is writing to it): nothing was "
                 "changed. Try again in a minute.")
DISK_FULL = ("leaderwatch cannot save anything right now: the disk of its server is full, so nothing was "
             "changed. Please tell whoever runs leaderwatch.")
DATABASE_DOWN = ("leaderwatch cannot reach its database right now, so nothing was read or changed. Try again "
                 "in a few minutes; if it lasts, please tell whoever runs leaderwatch.")
INTERNAL_ERROR = ("Sorry, something went wrong on our side. The operator can find it in the log under "
                  "error id `{error_id}`.")
WHO_MANAGES = {
    "slack": "Ask a workspace admin or owner (or a user listed in the config). ",
    "discord": "It needs the Manage Channels permission in this channel. ",
}
