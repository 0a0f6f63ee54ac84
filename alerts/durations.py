"""The one way leaderwatch reads and writes a duration: a number and a unit, `90s`, `30m`, `1.5h`, `2d`, `2w`.

Rule cooldowns, channel mutes and source intervals all take this grammar; each caller sets its own
bounds (a mute must last, a poll interval must be polite) and `DurationError` messages name the grammar,
so a user who typed `soon` learns what to write instead.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
GRAMMAR = "a number and a unit: s, m, h, d or w, e.g. 90s, 30m, 1.5h, 2d, 2w"
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([smhdw])")
MAX = timedelta(days=10 * 365)
"""Nothing leaderwatch waits for is longer than ten years; longer is a typo."""


class DurationError(ValueError):
    """Text that is not a duration, or one outside the bounds a setting allows; says what to write."""


def parse_duration(text: str, *, minimum: timedelta = timedelta(0), maximum: timedelta = MAX,
                   zero: bool = False) -> timedelta:
    """`90s`, `30m`, `1.5h`, `2d`, `2w` (any case) as a timedelta within [minimum, maximum].

    `zero`: a bare `0` means no time at all (a cooldown of 0). Whole seconds only: `1.5s` is 1 second.
    """
    value = text.strip().lower()
    if zero and value == "0":
        seconds = 0.0
    else:
        found = _DURATION.fullmatch(value)
        if found is None:
            raise DurationError(f"`{text.strip()}` is not a duration; write {GRAMMAR}")
        seconds = float(found.group(1)) * UNITS[found.group(2)]
    if not math.isfinite(seconds) or seconds > maximum.total_seconds():
        raise DurationError(f"`{text.strip()}` is too long: at most {format_duration(maximum)}")
    length = timedelta(seconds=int(seconds))
    if length < minimum or (length == timedelta(0) and not zero):
        least = format_duration(minimum) if minimum > timedelta(0) else "1s"
        raise DurationError(f"`{text.strip()}` is too short: at least {least} ({GRAMMAR})")
    return length


def format_duration(value: timedelta) -> str:
    """The shortest way to write a duration back in the same grammar (`7d`, `12h`, `90s`, `0`)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", UNITS["w"]), ("d", UNITS["d"]), ("h", UNITS["h"]), ("m", UNITS["m"])):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"
