"""Helpers shared by the benchmarks: where the recordings are, and timing."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def recordings() -> Path:
    """`$LEADERWATCH_RECORDINGS` or `../shared/data`; exits with a message when missing."""
    path = Path(os.environ.get("LEADERWATCH_RECORDINGS") or ROOT.parent / "shared" / "data")
    if not path.is_dir():
        sys.exit(f"recordings not found at {path}: set LEADERWATCH_RECORDINGS")
    return path


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The best wall time of `runs` calls, in seconds (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
