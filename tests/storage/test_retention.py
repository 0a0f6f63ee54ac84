"""Retention: which snapshots a policy keeps (a table of cases and a property), and removing the others
from a real history stored the way the service stores it (polls through the rules)."""

from __future__ import annotations

import bisect
import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from leaderwatch.alerts.models import Event
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.importer import find_recordings
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Recording, Snapshot, Source
from leaderwatch.sources.identity import Identity, default_groups
from leaderwatch.sources.registry import all_sources
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import from_text, open_db
from leaderwatch.storage.events import events_of_snapshot
from leaderwatch.storage.retention import (
    EventRef,
    RetentionPolicy,
    RetentionReport,
    SnapshotRef,
    apply_retention,
    cutoff,
    period_of,
    snapshots_to_keep,
    snapshots_to_remove,
    vacuum,
)
from leaderwatch.storage.rule_states import names_listed_before

# --- the policy, as a table of cases ---------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
"""Keeping 7 days puts the cutoff at 2025-02-22T00:00Z. 2025-02-10 is a Monday."""


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2025-{text}").replace(tzinfo=UTC)


def refs(*specs: str) -> list[SnapshotRef]:
    """"3 a 02-10T05" is snapshot 3 of board a, stored 2025-02-10 05:00 UTC."""
    out = []
    for spec in specs:
        i, board, when = spec.split()
        out.append(SnapshotRef(int(i), board, at(when)))
    return out


BASE = ("1 a 01-01T00", "98 a 02-28T10", "99 a 02-28T11")
"""Board a's first snapshot, and its latest two (recent): kept in every case."""

CASES = [
    ("the last snapshot of each older day",
     "day", ("2 a 02-10T01", "3 a 02-10T05", "4 a 02-10T23", "5 a 02-11T02"), (), (), {1, 4, 5, 98, 99}),
    ("weekly: the last of each ISO week (Monday to Sunday)",
     "week", ("2 a 02-10T01", "3 a 02-12T05", "4 a 02-16T23", "5 a 02-17T00", "6 a 02-19T00"), (), (),
     {1, 4, 6, 98, 99}),
    ("everything from the cutoff on: midnight UTC, keep_days before today",
     "day", ("2 a 02-21T10", "3 a 02-21T23", "4 a 02-22T00", "5 a 02-22T01"), (), (), {1, 3, 4, 5, 98, 99}),
    ("two snapshots at the same time: the higher id, the one snapshot_at answers with",
     "day", ("3 a 02-10T05", "2 a 02-10T05"), (), (), {1, 3, 98, 99}),
    ("the snapshot that produced an event, and the one before it",
     "day", ("2 a 02-10T01", "3 a 02-10T05", "4 a 02-10T23"), (EventRef("a", at("02-10T05"), 3),), (),
     {1, 2, 3, 4, 98, 99}),
    ("an event stored without a snapshot: the snapshot in force at its time",
     "day", ("2 a 02-10T01", "3 a 02-10T05", "4 a 02-10T23"), (EventRef("a", at("02-10T06")),), (),
     {1, 2, 3, 4, 98, 99}),
    ("an event whose snapshot is gone: the snapshot in force at its time",
     "day", ("2 a 02-10T01", "3 a 02-10T05", "4 a 02-10T23"), (EventRef("a", at("02-10T02"), 77),), (),
     {1, 2, 4, 98, 99}),
    ("an event before the board's history, or on an unknown board, keeps nothing",
     "day", ("2 a 02-10T01", "3 a 02-10T05"), (EventRef("a", at("01-01T00") - timedelta(days=9)),
                                               EventRef("zzz", at("02-10T05"))), (), {1, 3, 98, 99}),
    ("a snapshot that first listed a model (unknown ids ignored)",
     "day", ("2 a 02-10T01", "3 a 02-10T05", "4 a 02-10T23"), (), (3, 500), {1, 3, 4, 98, 99}),
    ("a board's first, latest and the one before the latest, however old",
     "day", ("10 b 01-05T01", "11 b 01-05T02", "12 b 01-20T01", "13 b 01-20T02", "14 b 01-20T03"), (), (),
     {1, 98, 99, 10, 11, 13, 14}),
    ("boards are thinned separately",
     "day", ("2 a 02-10T01", "3 b 02-10T02", "8 a 02-10T03", "4 b 02-10T04", "5 b 02-10T06", "6 b 02-27T00",
             "7 b 02-28T00"), (), (), {1, 8, 98, 99, 3, 5, 6, 7}),
]


@pytest.mark.parametrize(("period", "specs", "events", "firsts", "kept"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_snapshots_to_keep(period: str, specs: tuple[str, ...], events: tuple[EventRef, ...],
                           firsts: tuple[int, ...], kept: set[int]) -> None:
    policy = RetentionPolicy(7, period)
    assert snapshots_to_keep(refs(*BASE, *specs), policy, NOW, events, firsts) == kept


def test_cutoff_and_periods() -> None:
    assert cutoff(RetentionPolicy(7), NOW) == datetime(2025, 2, 22, tzinfo=UTC)
    midnight = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert cutoff(RetentionPolicy(1), midnight) == datetime(2025, 2, 28, tzinfo=UTC)
    assert period_of(at("02-16T23"), "week") == period_of(at("02-10T00"), "week") == at("02-10T00").date()
    assert period_of(at("02-17T00"), "week") == at("02-17T00").date()
    assert period_of(at("02-16T23"), "day") == at("02-16T00").date()


@pytest.mark.parametrize(("keep_days", "period", "message"), [
    (0, "day", "keep_days must be at least 1, got 0"),
    (30, "month", "period must be one of day, week, got 'month'"),
])
def test_policy_refuses_nonsense(keep_days: int, period: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        RetentionPolicy(keep_days, period)
    assert str(info.value) == message


def in_force(snaps: list[SnapshotRef], board: str, when: datetime) -> int | None:
    """What `snapshot_at` answers, over a list of snapshot refs."""
    ordered = sorted((s for s in snaps if s.board_id == board), key=lambda s: (s.as_of, s.id))
    i = bisect.bisect_right([s.as_of for s in ordered], when) - 1
    return ordered[i].id if i >= 0 else None


histories = st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 60 * 24 - 1)), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(histories, st.integers(1, 40), st.sampled_from(["day", "week"]))
def test_answers_at_the_end_of_each_period_never_change(history: list[tuple[str, int]], keep_days: int,
                                                        period: str) -> None:
    """Whatever the history: the table in force at the end of every older day (week) and at any time
    in the window is the same after thinning; first and latest stay; thinning again removes nothing."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    now = start + timedelta(days=60)
    snaps = [SnapshotRef(i, b, start + timedelta(hours=h)) for i, (b, h) in enumerate(history, start=1)]
    policy = RetentionPolicy(keep_days, period)
    kept_ids = snapshots_to_keep(snaps, policy, now)
    kept = [s for s in snaps if s.id in kept_ids]
    limit = cutoff(policy, now)
    step = timedelta(days=7 if period == "week" else 1)
    for board in "ab":
        mine = sorted((s for s in snaps if s.board_id == board), key=lambda s: (s.as_of, s.id))
        if not mine:
            continue
        assert {mine[0].id, mine[-1].id} <= kept_ids
        first_period = datetime.combine(period_of(mine[0].as_of, period), datetime.min.time(), UTC)
        end = first_period + step - timedelta(seconds=1)
        while end < limit:
            assert in_force(kept, board, end) == in_force(snaps, board, end), end
            end += step
        for when in [limit, now] + [s.as_of for s in mine if s.as_of >= limit]:
            assert in_force(kept, board, when) == in_force(snaps, board, when), when
    assert snapshots_to_keep(kept, policy, now) == kept_ids


# --- on a real history ---------------------------------------------------------------------------

HELD_BACK = datetime(2026, 4, 18, tzinfo=UTC)
"""The daily scrape's last two days (new #1s and new models on 2026-04-18) are polled after retention."""

RETAINED_AT = datetime(2026, 4, 17, 12, 0, tzinfo=UTC)
WEEKLY = RetentionPolicy(7, "week")
"""Cutoff 2026-04-10: the scrape's first three weeks are thinned to a snapshot per board and week."""


def scrape_recordings(excerpts: Path, folder: Path) -> list[tuple[Recording, Source]]:
    """LMArena's daily scrape (2026-03-19 .. 2026-04-19, 3 boards, times of day included; the excerpts keep
    each day's top 40 text, 25 vision and 10 code rows), in time order."""
    root = folder / "recordings"
    (root / "lmarena").mkdir(parents=True)
    (root / "lmarena" / "arena_ai_daily_scrape").symlink_to(excerpts / "lmarena" / "arena_ai_daily_scrape")
    owners = find_recordings(all_sources(Identity.load()), root)
    return sorted(owners.items(), key=lambda kv: (kv[0].as_of, str(kv[0].path), kv[0].part))


def poll(db: Database, recs: list[tuple[Recording, Source]],
         restamp: dict[datetime, datetime] | None = None) -> list[Event]:
    """Store recordings the way a poll does (through the rules, events saved with their snapshot)."""
    groups = default_groups()
    clock = [datetime.min.replace(tzinfo=UTC)]
    alerter = Alerter(db, default_rules(list(groups)), groups, lambda: clock[0])
    events: list[Event] = []
    for rec, source in recs:
        snaps: list[Snapshot] = source.load(rec)
        if restamp is not None:
            snaps = [dataclasses.replace(s, as_of=restamp[rec.as_of], fetched_at=restamp[rec.as_of])
                     for s in snaps]
        clock[0] = snaps[0].as_of
        with db.atomic():
            for stored in store_all(db, snaps, str(rec.path), check_shrink=False):
                if stored.result.stored:
                    events.extend(alerter.on_change(stored))
    return events


@pytest.fixture(scope="module")
def scrape(excerpts: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Recording, Source]]:
    return scrape_recordings(excerpts, tmp_path_factory.mktemp("scrape"))


@pytest.fixture(scope="module")
def template(scrape: list[tuple[Recording, Source]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("retention") / "history.db"
    db = open_db(path)
    poll(db, [(r, s) for r, s in scrape if r.as_of < HELD_BACK])
    db.close()
    return path


@pytest.fixture
def db(any_template_db: Database) -> Database:
    """The template on each store (SQLite, PostgreSQL)."""
    return any_template_db


def count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def snapshot_rows(db: Database) -> list[SnapshotRef]:
    return [SnapshotRef(int(i), b, from_text(a)) for i, b, a in
            db.execute("SELECT id, board_id, as_of FROM snapshots ORDER BY id").fetchall()]


def answers(db: Database, board: str, times: list[datetime]) -> dict[datetime, Snapshot | None]:
    return {t: store.snapshot_at(db, board, t) for t in times}


def seen_models(db: Database, board: str) -> set[tuple[str, str]]:
    """What the rules remember a board has listed, as of its latest snapshot."""
    latest = db.execute("SELECT id FROM snapshots WHERE board_id = ? ORDER BY as_of DESC, id DESC LIMIT 1",
                        [board]).fetchone()[0]
    listed, _ = names_listed_before(db, board, latest)
    return {(key, name) for name, key in listed}


BOARDS = ("lmarena/text-style-control", "lmarena/vision-style-control", "lmarena/webdev")


def test_weekly_thinning_of_a_real_history_keeps_what_the_questions_read(db: Database) -> None:
    before = snapshot_rows(db)
    entries_before = count(db, "entries")
    event_snapshots = {int(r[0]) for r in db.execute("SELECT DISTINCT snapshot_id FROM events").fetchall()}
    events_before = {i: events_of_snapshot(db, i) for i in event_snapshots}
    limit = cutoff(WEEKLY, RETAINED_AT)
    # Every Sunday 23:59:59 before the cutoff, every day's end and every snapshot time after it, now.
    sundays = [datetime(2026, 3, 22, 23, 59, 59, tzinfo=UTC) + timedelta(days=7 * k) for k in range(3)]
    recent = [limit + timedelta(days=d, seconds=-1) for d in range(1, 8)]
    times = sundays + recent + [s.as_of for s in before if s.as_of >= limit] + [RETAINED_AT]
    asked = {b: answers(db, b, times) for b in BOARDS}
    seen = {b: seen_models(db, b) for b in BOARDS}
    firsts = {b: next(iter(store.snapshots_between(db, b))).as_of for b in BOARDS}
    doomed = snapshots_to_remove(db, WEEKLY, RETAINED_AT)

    report = apply_retention(db, WEEKLY, RETAINED_AT)

    assert (report.snapshots_before, report.snapshots_removed, report.entries_removed) == (41, 8, 260)
    assert dict(report.removed_by_board) == {"lmarena/text-style-control": 7,
                                            "lmarena/vision-style-control": 1}
    assert sorted(doomed) == [7, 10, 11, 12, 17, 19, 20, 23]
    after = snapshot_rows(db)
    assert [s.id for s in after] == [s.id for s in before if s.id not in doomed]
    assert all(s.as_of < limit for s in before if s.id in doomed)
    assert count(db, "entries") == entries_before - report.entries_removed
    assert db.execute("SELECT count(*) FROM entries WHERE snapshot_id NOT IN (SELECT id FROM snapshots)"
                      ).fetchone()[0] == 0
    for board in BOARDS:
        assert answers(db, board, times) == asked[board], board
        assert seen_models(db, board) == seen[board], board
        assert next(iter(store.snapshots_between(db, board))).as_of == firsts[board]
    assert {i: events_of_snapshot(db, i) for i in event_snapshots} == events_before
    assert report.summary() == (
        "retention: removed 8 of 41 snapshot(s) (260 entries) from before 2026-04-10: "
        "lmarena/text-style-control 7, lmarena/vision-style-control 1")


def test_models_seen_only_in_removed_snapshots_are_still_remembered(db: Database) -> None:
    """Without keeping first listings, two real models of the truncated top-N scrape (listed only in its
    longer tables) would drop out of the rules' memory and come back as "new"."""
    snaps = snapshot_rows(db)
    events = [EventRef(b, from_text(a), s) for b, a, s in
              db.execute("SELECT board_id, at, snapshot_id FROM events").fetchall()]
    naive = snapshots_to_keep(snaps, WEEKLY, RETAINED_AT, events)
    ids = ", ".join(str(i) for i in naive)
    naive_seen = set(db.execute(
        "SELECT DISTINCT e.model_key FROM entries e JOIN snapshots s ON s.id = e.snapshot_id "
        f"WHERE s.board_id = 'lmarena/text-style-control' AND s.id IN ({ids})").fetchall())
    all_seen = set(db.execute(
        "SELECT DISTINCT e.model_key FROM entries e JOIN snapshots s ON s.id = e.snapshot_id "
        "WHERE s.board_id = 'lmarena/text-style-control'").fetchall())
    assert sorted(k for (k,) in all_seen - naive_seen) == ["gemma-4-26b-a4b", "longcat-flash-chat-2602-exp"]
    apply_retention(db, WEEKLY, RETAINED_AT)
    assert {"gemma-4-26b-a4b", "longcat-flash-chat-2602-exp"} <= {
        k for k, _ in seen_models(db, "lmarena/text-style-control")}


def test_the_rules_find_the_same_events_after_retention(db: Database, template: Path, tmp_path: Path,
                                                        scrape: list[tuple[Recording, Source]]) -> None:
    untouched = open_db(shutil.copy(template, tmp_path / "untouched.db"))
    apply_retention(db, WEEKLY, RETAINED_AT)
    later = [(r, s) for r, s in scrape if r.as_of >= HELD_BACK]
    found = poll(db, later)
    expected = poll(untouched, later)
    untouched.close()
    assert [e.message for e in found] == [e.message for e in expected]
    assert found == expected
    assert [e.message for e in found] == [
        "lmarena/webdev: new #1: claude-opus-4-7 (Anthropic, US) with 1583, taking it from "
        "claude-opus-4-6-thinking (Anthropic, US)",
        "lmarena/webdev: new model claude-opus-4-7 (Anthropic, US) entered the top 10 at #1 with 1583",
        "lmarena/text-style-control: new #1: claude-opus-4-7-thinking (Anthropic, US) with 1505, taking "
        "it from claude-opus-4-6-thinking (Anthropic, US) (statistically tied: the confidence intervals "
        "overlap)",
        "lmarena/text-style-control: new model claude-opus-4-7-thinking (Anthropic, US) entered the top "
        "10 at #1 with 1505",
        "lmarena/text-style-control: new model claude-opus-4-7 (Anthropic, US) entered the top 10 at #3 "
        "with 1498",
    ]


def test_retention_twice_removes_nothing_more(db: Database) -> None:
    apply_retention(db, WEEKLY, RETAINED_AT)
    again = apply_retention(db, WEEKLY, RETAINED_AT)
    assert again == RetentionReport(datetime(2026, 4, 10, tzinfo=UTC), 33, 0, 0, {})
    assert again.summary() == ("retention: nothing to remove (33 snapshot(s), none thinnable before "
                               "2026-04-10)")


def test_a_young_history_is_left_alone(db: Database) -> None:
    report = apply_retention(db, RetentionPolicy(365), RETAINED_AT)
    assert (report.snapshots_removed, count(db, "snapshots")) == (0, 41)


def test_daily_thinning_of_several_polls_a_day(scrape: list[tuple[Recording, Source]],
                                               any_db: Database) -> None:
    """The scrape's real tables, four polls a day (days 1-4 at 00, 06, 12 and 18 h on 2026-03-01, ...):
    after thinning, `top --at DAY` (the end of the day) answers with the same table for every day."""
    days = sorted({r.as_of for r, _ in scrape})
    base = datetime(2026, 3, 1, tzinfo=UTC)
    restamp = {d: base + timedelta(days=k // 4, hours=6 * (k % 4)) for k, d in enumerate(days)}
    db = any_db
    poll(db, scrape, restamp)
    ends = [base + timedelta(days=k + 1, seconds=-1) for k in range(len(days) // 4 + 1)]
    asked = {b: answers(db, b, ends) for b in BOARDS}
    before = count(db, "snapshots")
    report = apply_retention(db, RetentionPolicy(7, "day"), base + timedelta(days=30))
    assert (before, report.snapshots_removed) == (45, 11)
    for board in BOARDS:
        assert answers(db, board, ends) == asked[board], board


def test_vacuum_gives_the_space_back(db: Database, template: Path, tmp_path: Path) -> None:
    # SQLite only by nature: the file's size, its write-ahead log, PRAGMA integrity_check.
    if db.backend != "sqlite":
        pytest.skip("a SQLite file's size")
    apply_retention(db, RetentionPolicy(1, "week"), datetime(2027, 1, 1, tzinfo=UTC))
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    vacuum(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size < size
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
