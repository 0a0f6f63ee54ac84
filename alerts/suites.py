"""Suites: named sets of boards (`vision`, `coding`...), usable wherever a board pattern is.

A suite is a list of board patterns; a pattern is a board id or a glob (`lmarena/*`). Board ids
always hold a `/` and suite names never do, so one word can name either: `race vision`,
`subscribe coding overtake`, `versus A B vision`. The built-in suites cover the boards leaderwatch
reads (`vision`: the arena's vision boards, the OpenCompass OpenVLM boards `opencompass/*`, Epoch's
video and visual benchmarks); the config adds or redefines suites with `[suites.NAME] boards = [...]`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping

BUILT_IN: dict[str, tuple[str, ...]] = {
    "lmarena": ("lmarena/*",),
    "coding": ("aider/*", "swebench/*", "livebench/coding", "livebench/agentic_coding", "lmarena/webdev",
               "epoch/aider_polyglot", "epoch/swe_bench_*", "epoch/terminalbench", "epoch/webdev_arena",
               "epoch/cybench", "epoch/gso"),
    "vision": ("lmarena/vision*", "opencompass/*", "epoch/video_mme", "epoch/vpct"),
    "reasoning": ("livebench/reasoning", "livebench/math", "epoch/gpqa_diamond", "epoch/frontiermath*",
                  "epoch/math_level_5", "epoch/otis_mock_aime_*", "epoch/arc_agi*", "epoch/hle",
                  "epoch/simplebench", "epoch/bbh", "epoch/chess_puzzles"),
    "all": ("*",),
}
"""The suites every installation has: the arena boards, coding, vision-language, reasoning, everything."""

Suites = Mapping[str, tuple[str, ...]]
"""Suite names and the board patterns each stands for."""

NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


class SuiteError(ValueError):
    """A suite definition is wrong; the message names it and says what is allowed."""


def make_suites(config: Mapping[str, Iterable[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """The built-in suites with the config's added or redefined (`{name: board patterns}`)."""
    suites = dict(BUILT_IN)
    for name, patterns in (config or {}).items():
        if not NAME.fullmatch(name):
            raise SuiteError(f"suite `{name}`: a name is lower-case letters, digits, `-` or `_` (no `/`)")
        listed = tuple(str(p).strip().lower() for p in patterns)
        if not listed or any(not p for p in listed):
            raise SuiteError(f"suite `{name}`: give one or more board patterns, "
                             'e.g. boards = ["lmarena/*"]')
        suites[name] = listed
    return suites


def is_suite(pattern: str, suites: Suites = BUILT_IN) -> bool:
    """Whether a word names a suite rather than a board or a glob."""
    return pattern in suites


def board_matches(pattern: str, board_id: str, suites: Suites = BUILT_IN) -> bool:
    """`lmarena/*` matches `lmarena/text`; a plain id matches itself; a suite matches its boards."""
    patterns = suites.get(pattern)
    if patterns is not None:
        return any(fnmatch.fnmatchcase(board_id, p) for p in patterns)
    return fnmatch.fnmatchcase(board_id, pattern)
