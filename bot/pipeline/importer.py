"""`leaderwatch import`: recorded history, one timeline per board, stored in time order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from leaderwatch.alerts.models import BoardState, Rule, RuleState
from leaderwatch.alerts.rules import evaluate
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Recording, Snapshot, Source, SourceError
from leaderwatch.sources.identity import Group
from leaderwatch.sources.timeline import Timeline, build_timelines, selected
from leaderwatch.storage import status
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import save_events
from leaderwatch.storage.snapshots import history

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    """What an import did, for the summary printed at the end."""

    timelines: dict[str, Timeline] = field(default_factory=dict)
    recordings: int = 0
    already_imported: int = 0
    snapshots_stored: int = 0
    snapshots_unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    changed_boards: set[str] = field(default_factory=set)
    events: int = 0
    """Events the rules found in the history of the boards this import changed (stored, not delivered)."""


def recording_id(rec: Recording, root: Path) -> str:
    """A stable name of a recording relative to the recordings folder."""
    try:
        rel = rec.path.relative_to(root)
    except ValueError:
        rel = rec.path
    return f"{rel.as_posix()}#{rec.part}" if rec.part else rel.as_posix()


def find_recordings(sources: Sequence[Source], root: Path) -> dict[Recording, Source]:
    """Every recording of every source under `root`, with the source that reads it."""
    found: dict[Recording, Source] = {}
    for source in sources:
        for rec in source.recordings(root):
            found[rec] = source
    return found


def import_recordings(db: Database, sources: Sequence[Source], root: Path, now: datetime,
                      progress: Progress | None = None, rules: Sequence[Rule] = (),
                      groups: Mapping[str, Group] | None = None) -> ImportReport:
    """Load the recorded history under `root` into the database; safe to run again.

    A recording that fails to parse is reported and skipped; the others are still imported. With
    `rules` (the service's own, not the channels'), the events they find in the history of every
    board the import changed are stored too, so `events` and the charts' marks cover it; nothing is
    delivered, and a second import stores no event twice.
    """
    owners = find_recordings(sources, root)
    report = ImportReport(timelines=build_timelines(list(owners)))
    chosen = selected(report.timelines.values())
    order = sorted(chosen, key=lambda r: (r.as_of, r.family, str(r.path), r.part))
    report.recordings = len(order)
    for i, rec in enumerate(order, start=1):
        name = recording_id(rec, root)
        if progress:
            progress(i, len(order), name)
        if status.is_imported(db, name):
            report.already_imported += 1
            continue
        try:
            snaps = [s for s in owners[rec].load(rec) if s.board.id in chosen[rec]]
        except SourceError as exc:
            report.errors.append(f"{name}: {exc.reason}")
            logger.error("import of %s failed: %s", name, exc)
            continue
        # History may legitimately shrink when a recording family changes, so no shrink check here.
        with db.atomic():
            stored = store_all(db, snaps, str(rec.path), check_shrink=False)
            status.record_import(db, name, rec.family, rec.as_of, len(snaps), now)
        report.snapshots_stored += sum(1 for s in stored if s.result.stored)
        report.snapshots_unchanged += sum(1 for s in stored if not s.result.stored)
        report.changed_boards.update(s.snapshot.board.id for s in stored if s.result.stored)
    if rules:
        for board_id in sorted(report.changed_boards):
            report.events += store_history_events(db, board_id, rules, groups or {}, now)
    return report


def store_history_events(db: Database, board_id: str, rules: Sequence[Rule], groups: Mapping[str, Group],
                         now: datetime) -> int:
    """Run the rules over a board's whole stored history, in time order as a replay does, and store the
    events they find (one already stored is kept); how many were new.

    The whole history, not only what an import added: a recording may slot in before stored tables,
    and the rules' memory (confirmations, cooldowns, the models seen) must be what it was then.
    """
    prev: Snapshot | None = None
    states: Mapping[str, RuleState] = {}
    board_state = BoardState()
    before = db.execute("SELECT count(*) FROM events WHERE board_id = ?", [board_id]).fetchone()[0]
    with db.atomic():
        for snapshot_id, snap in history(db, board_id):
            result = evaluate(prev, snap, rules, states, board_state, groups, snap.as_of)
            prev, states, board_state = snap, result.rule_states, result.board_state
            if result.events:
                save_events(db, result.events, snapshot_id, now)
    after = db.execute("SELECT count(*) FROM events WHERE board_id = ?", [board_id]).fetchone()[0]
    return int(after - before)


def summary_lines(report: ImportReport, seconds: float) -> list[str]:
    """What `import` (and `backfill` after its downloads) prints at the end: coverage per board, counts."""
    return [*coverage_lines(report),
            f"imported {report.recordings - report.already_imported - len(report.errors)} recording(s) "
            f"({report.already_imported} already imported): {report.snapshots_stored} snapshot(s) stored, "
            f"{report.snapshots_unchanged} unchanged, in {seconds:.1f}s",
            f"{report.events} event(s) found by the rules in the history of {len(report.changed_boards)} "
            "changed board(s): stored for `events` and the charts, not delivered"]


def coverage_lines(report: ImportReport) -> list[str]:
    """Which recording family covers which period of each board, as printed by `import`."""
    lines: list[str] = []
    for board_id, tl in sorted(report.timelines.items()):
        lines.append(board_id)
        for p in tl.periods:
            span = f"{p.start:%Y-%m-%d} .. {p.end:%Y-%m-%d}"
            lines.append(f"  {span}  {p.family}  ({len(p.recordings)} recording"
                         f"{'s' if len(p.recordings) != 1 else ''})")
        if tl.superseded:
            fams = sorted({r.family for r in tl.superseded})
            lines.append(f"  left out {len(tl.superseded)} recording(s) covered by more authoritative "
                         f"ones: {', '.join(fams)}")
    return lines
