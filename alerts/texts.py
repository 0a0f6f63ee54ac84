"""How numbers, dates and counts read: the one way leaderwatch writes them, in alerts, answers, charts and
the terminal (re-exported by `formatting`, where the rest of the code finds them)."""

from __future__ import annotations

from datetime import datetime


def num(value: float | None, missing: str = "-") -> str:
    """1470.0 -> `1470`, 83.14 -> `83.14`, 8.005 -> `8.01` (two decimals at most); None -> `missing`."""
    return missing if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


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


def plural(count: int, word: str) -> str:
    """`1 rule`, `3 rules`."""
    return f"{count} {word}{'' if count == 1 else 's'}"
