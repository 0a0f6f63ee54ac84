"""`replay` and `backtest`: recorded history, in time order, through the rules."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from leaderwatch.alerts.context import Pairing
from leaderwatch.alerts.kinds.rival import RivalParams, pairing
from leaderwatch.alerts.matching import board_matches
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleState
from leaderwatch.alerts.rules import evaluate
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.pipeline.importer import find_recordings
from leaderwatch.sources.base import Snapshot, Source
from leaderwatch.sources.identity import Group
from leaderwatch.sources.timeline import build_timelines, selected


@dataclass
class BoardReplay:
    """One board's running state during a replay."""

    prev: Snapshot | None = None
    rule_states: Mapping[str, RuleState] = field(default_factory=dict)
    board_state: BoardState = field(default_factory=BoardState)
    first: datetime | None = None
    last: datetime | None = None
    snapshots: int = 0
    changes: list[tuple[datetime, str]] = field(default_factory=list)


def recorded_snapshots(sources: Sequence[Source], root: Path, board_pattern: str | None = None
                       ) -> Iterator[Snapshot]:
    """Every recorded snapshot, in time order, on the same timeline as `import` (one recording family
    per period); unchanged ones included."""
    owners = find_recordings(sources, root)
    chosen = selected(build_timelines(list(owners)).values())
    for rec in sorted(chosen, key=lambda r: (r.as_of, r.family, str(r.path), r.part)):
        wanted = {b for b in chosen[rec] if board_pattern is None or fnmatch.fnmatch(b, board_pattern)}
        if wanted:
            yield from sorted((s for s in owners[rec].load(rec) if s.board.id in wanted),
                              key=lambda s: s.as_of)


def replay(sources: Sequence[Source], root: Path, rules: Sequence[Rule], groups: Mapping[str, Group],
           board_pattern: str | None = None, boards: dict[str, BoardReplay] | None = None,
           snapshots: Iterable[Snapshot] | None = None, suites: Suites = BUILT_IN) -> Iterator[Event]:
    """Every event the rules find over the recorded history, in time order.

    Unchanged snapshots are skipped like an unchanged poll. `boards`, if given, collects each
    board's span and changes. `snapshots`: the timeline already read (`recorded_snapshots`), instead
    of reading the recordings under `root`. Rules that compare boards (`rival`) see each other board
    as its latest table so far, and keep one state for all the boards they span, as the service does.
    """
    state = boards if boards is not None else {}
    local = [r for r in rules if not r.spec.spans_boards]
    spanning = [r for r in rules if isinstance(r.params, RivalParams)]
    span_states: dict[str, RuleState] = {}
    latest: dict[str, Snapshot] = {}
    timeline = (recorded_snapshots(sources, root, board_pattern) if snapshots is None else
                (s for s in snapshots if board_pattern is None or fnmatch.fnmatch(s.board.id, board_pattern)))
    for snap in timeline:
        st = state.setdefault(snap.board.id, BoardReplay())
        if st.prev is not None and st.prev.content_hash == snap.content_hash:
            continue
        result = evaluate(st.prev, snap, local, st.rule_states, st.board_state, groups, snap.as_of)
        mine = [r for r in spanning if isinstance(r.params, RivalParams)
                and board_matches(r.params.boards, snap.board.id, suites)]
        if mine:
            elsewhere = {r.params.span: seen_elsewhere(r.params, snap.board.id, latest, groups, suites)
                         for r in mine if isinstance(r.params, RivalParams)}
            across = evaluate(st.prev, snap, mine, span_states, st.board_state, groups, snap.as_of, elsewhere)
            span_states.update(across.rule_states)
            result = dataclasses.replace(result, events=result.events + across.events)
        latest[snap.board.id] = snap
        st.prev, st.rule_states, st.board_state = snap, result.rule_states, result.board_state
        st.first = st.first or snap.as_of
        st.last = snap.as_of
        st.snapshots += 1
        if result.changed:
            st.changes.append((snap.as_of, result.changed))
        yield from result.events


def seen_elsewhere(p: RivalParams, board_id: str, latest: Mapping[str, Snapshot], groups: Mapping[str, Group],
                   suites: Suites) -> tuple[Pairing, ...]:
    """A `rival` rule's two models on the other boards it spans, as their latest tables so far list them."""
    return tuple(pairing(p, s, groups) for b, s in latest.items()
                 if b != board_id and board_matches(p.boards, b, suites))


def in_range(event: Event, start: datetime | None, end: datetime | None) -> bool:
    """True when the event's time is within [start, end]."""
    return (start is None or event.at >= start) and (end is None or event.at <= end)


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """How often one rule would have alerted on one board."""

    rule: str
    board: str
    alerts: int
    weeks: float

    @property
    def per_week(self) -> float:
        return self.alerts / self.weeks


@dataclass
class Backtest:
    """Alert counts per rule and board over the history, and the busiest weeks."""

    rows: list[BacktestRow]
    board_weeks: dict[str, float]
    weekly: Counter[tuple[str, str]]  # (ISO week, board) -> alerts

    @property
    def total_alerts(self) -> int:
        return sum(r.alerts for r in self.rows)

    def per_board_week(self) -> float:
        """All alerts over all boards' weeks of history: the average alerts per board per week."""
        weeks = sum(self.board_weeks.values())
        return self.total_alerts / weeks if weeks else 0.0


def backtest(events: Sequence[Event], boards: Mapping[str, BoardReplay], rules: Sequence[Rule]) -> Backtest:
    """Count events per rule and board; a board's weeks are the span of its history (at least 1)."""
    board_weeks = {}
    for board, st in boards.items():
        span = (st.last - st.first).total_seconds() / (7 * 86400) if st.first and st.last else 0.0
        board_weeks[board] = max(1.0, span)
    counts: Counter[tuple[str, str]] = Counter((e.rule, e.board) for e in events)
    weekly: Counter[tuple[str, str]] = Counter()
    for e in events:
        year, week, _ = e.at.isocalendar()
        weekly[(f"{year}-W{week:02d}", e.board)] += 1
    rows = [BacktestRow(rule.name, board, counts.get((rule.name, board), 0), board_weeks[board])
            for board in sorted(boards) for rule in rules]
    return Backtest(rows, board_weeks, weekly)


def backtest_lines(result: Backtest, busiest: int = 10) -> list[str]:
    """The printed report of `backtest`."""
    lines = [f"{'board':<34} {'rule':<42} {'alerts':>6} {'weeks':>7} {'per week':>9}"]
    for r in result.rows:
        if r.alerts:
            lines.append(f"{r.board:<34} {r.rule:<42} {r.alerts:>6} {r.weeks:>7.1f} {r.per_week:>9.2f}")
    per_board: dict[str, int] = defaultdict(int)
    for r in result.rows:
        per_board[r.board] += r.alerts
    quiet = [b for b, n in per_board.items() if n == 0]
    if quiet:
        lines.append(f"({len(quiet)} board(s) with no alert: {', '.join(sorted(quiet)[:12])}"
                     f"{', ...' if len(quiet) > 12 else ''})")
    worst = max(per_board, key=lambda b: per_board[b] / result.board_weeks[b], default=None)
    lines.append("")
    lines.append(f"alerts in all: {result.total_alerts} over {len(result.board_weeks)} boards and "
                 f"{sum(result.board_weeks.values()):.0f} board-weeks of history")
    lines.append(f"average alerts per board per week: {result.per_board_week():.2f}")
    if worst:
        lines.append(f"busiest board: {worst} with {per_board[worst] / result.board_weeks[worst]:.2f} "
                     "alerts per week")
    lines.append("")
    lines.append(f"busiest weeks (week, board, alerts), top {busiest}:")
    for (week, board), n in result.weekly.most_common(busiest):
        lines.append(f"  {week}  {board:<34} {n}")
    return lines
