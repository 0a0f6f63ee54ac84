"""Opening the history database (a SQLite file, or a PostgreSQL server), and the schema migrations.

A path (or `:memory:`) opens SQLite through sqlite-utils: WAL, a busy timeout, one `run` per file (the run
lock). A `postgresql://` URL opens PostgreSQL (storage/postgres.py). One schema and one list of
migrations serve both: the `mNNN_*` functions below use only what both offer (`storage.engine`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database as SqliteDatabase

from leaderwatch.storage.engine import (
    NOT_A_URL,
    POSTGRES,
    SQLITE,
    Backend,
    Cursor,
    backend_of,
    is_postgres_conninfo,
    is_postgres_url,
    redact,
)
from leaderwatch.storage.engine import Database as Database  # the handle the other packages type against

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "leaderwatch_migrations"
"""Which migrations a database has had (name, applied_at), on both stores."""

OLD_MIGRATIONS_TABLE = "_sqlite_migrations"
"""Where sqlite-utils recorded them before issue 15 (set `leaderwatch`): read, then kept as it is."""

MIGRATIONS_LOCK = 0x6C77_6D69_6772  # "lwmigr": replicas starting together apply each migration once

Step = TypeVar("Step", bound="Callable[[Database], None]")


class Migrations:
    """The schema's migrations: functions registered with `@migrations()`, applied in name order, each in
    a transaction with the record of it, on SQLite and PostgreSQL alike."""

    def __init__(self) -> None:
        self._steps: dict[str, Callable[[Database], None]] = {}

    def __call__(self, *, name: str | None = None) -> Callable[[Step], Step]:
        """Register a migration (its function's name unless `name`); a name used twice is refused."""
        def register(step: Step) -> Step:
            key = name or step.__name__
            if key in self._steps:
                raise ValueError(f"migration {key} is registered twice")
            self._steps[key] = step
            return step
        return register

    def names(self) -> list[str]:
        """Every migration, in the order they apply."""
        return sorted(self._steps)

    def applied(self, db: Database) -> set[str]:
        """The migrations the database has had (read only: nothing is written)."""
        if db.table(MIGRATIONS_TABLE).exists():
            return {str(r[0]) for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}").fetchall()}
        if backend_of(db) == SQLITE and db.table(OLD_MIGRATIONS_TABLE).exists():
            return {str(r[0]) for r in db.execute(
                f"SELECT name FROM {OLD_MIGRATIONS_TABLE} WHERE migration_set = 'leaderwatch'").fetchall()}
        return set()

    def pending(self, db: Database) -> list[str]:
        """The migrations still to apply, in order."""
        done = self.applied(db)
        return [n for n in self.names() if n not in done]

    def apply(self, db: Database) -> list[str]:
        """Apply the pending migrations; their names. A database made before issue 15 has its record
        (sqlite-utils' table) copied into ours first, so nothing runs twice."""
        with db.atomic():
            self._lock(db)
            if not db.table(MIGRATIONS_TABLE).exists():
                db.table(MIGRATIONS_TABLE).create({"name": str, "applied_at": str}, pk="name")
                if backend_of(db) == SQLITE and db.table(OLD_MIGRATIONS_TABLE).exists():
                    db.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) SELECT name, applied_at "
                               f"FROM {OLD_MIGRATIONS_TABLE} WHERE migration_set = 'leaderwatch' "
                               "ON CONFLICT DO NOTHING")
        done: list[str] = []
        for name in self.names():
            with db.atomic():
                self._lock(db)
                if db.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", [name]).fetchone():
                    continue  # applied already (by another replica meanwhile, on PostgreSQL)
                self._steps[name](db)
                db.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                           [name, to_text(datetime.now(UTC))])
                done.append(name)
        return done

    @staticmethod
    def _lock(db: Database) -> None:
        """On PostgreSQL, one replica at a time migrates (a lock held until the transaction ends)."""
        if backend_of(db) == POSTGRES:
            db.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATIONS_LOCK])


migrations = Migrations()


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands: its latest migration, those still to apply, and those this
    version does not know (a newer leaderwatch migrated it)."""

    latest: str | None
    pending: tuple[str, ...]
    unknown: tuple[str, ...]


def schema_state(db: Database) -> SchemaState:
    """The database's schema version as `leaderwatch doctor` reports it (nothing is written)."""
    done = migrations.applied(db)
    known = set(migrations.names())
    return SchemaState(max(done) if done else None, tuple(migrations.pending(db)),
                       tuple(sorted(done - known)))


BUSY_TIMEOUT_SECONDS = 10.0
"""How long a write waits for another connection's write lock before it fails (SQLite's busy timeout)."""


class StorageError(Exception):
    """The database cannot be opened or written."""


class DatabaseLockedError(StorageError):
    """Another connection held the write lock for longer than the busy timeout."""


class DiskFullError(StorageError):
    """The disk (or the quota) holding the database has no room for a write."""


class UnreachableError(StorageError):
    """The database server cannot be reached (PostgreSQL: refused, timed out, gone mid-query)."""


class AlreadyRunningError(StorageError):
    """Another `leaderwatch run` holds the database's run lock."""

    def __init__(self, db_path: str, holder: RunLockHolder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another leaderwatch run (its lock file names no process)"
        super().__init__(f"{db_path} is already used by {who}. One `leaderwatch run` per database: stop "
                         f"that one first, or give this one another database with --db")


def to_text(when: datetime) -> str:
    """The one timestamp format stored everywhere: ISO 8601 in UTC, sortable as text."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: every stored time must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="seconds")


def from_text(text: str) -> datetime:
    """Parse a stored timestamp."""
    return datetime.fromisoformat(text)


@migrations()
def m001_initial(db: Database) -> None:
    """Boards, snapshots, entries, models, aliases, organizations, source status, imports."""
    db.table("boards").create({
        "id": str, "source": str, "title": str, "metric": str, "higher_is_better": int,
        "has_ci": int, "url": str, "archived": int,
    }, pk="id")
    db.table("snapshots").create({
        "id": int, "board_id": str, "as_of": str, "fetched_at": str, "last_seen_at": str,
        "content_hash": str, "origin": str, "method": str, "truncated": int, "entry_count": int,
    }, pk="id", foreign_keys=[("board_id", "boards", "id")])
    db.table("snapshots").create_index(["board_id", "as_of"])
    db.table("snapshots").create_index(["board_id", "as_of", "content_hash"], unique=True)
    db.table("entries").create({
        "snapshot_id": int, "position": int, "name": str, "model_key": str, "organization": str,
        "countries": str, "mixed": int, "open_weights": int, "score": float, "rank": int,
        "ci_lower": float, "ci_upper": float, "votes": int, "components": str,
    }, pk=("snapshot_id", "position"), foreign_keys=[("snapshot_id", "snapshots", "id")])
    db.table("entries").create_index(["model_key"])
    db.table("models").create({
        "key": str, "name": str, "organization": str, "first_seen_at": str, "first_board": str,
    }, pk="key")
    db.table("aliases").create({"alias": str, "key": str, "origin": str}, pk="alias")
    db.table("organizations").create({"name": str, "countries": str}, pk="name")
    db.table("source_status").create({
        "source": str, "status": str, "last_attempt_at": str, "last_success_at": str,
        "last_error": str, "consecutive_failures": int,
    }, pk="source")
    db.table("http_validators").create({"url": str, "etag": str, "last_modified": str}, pk="url")
    db.table("imports").create({
        "recording": str, "family": str, "as_of": str, "snapshots": int, "imported_at": str,
    }, pk="recording")


@migrations()
def m002_rule_states(db: Database) -> None:
    """What each rule remembers per board (confirmed values, streaks, cooldowns), as JSON text."""
    db.table("rule_states").create({
        "board_id": str, "rule": str, "confirmed": str, "streak": str, "last_fired": str,
        "updated_at": str,
    }, pk=("board_id", "rule"))


@migrations()
def m003_chat(db: Database) -> None:
    """Events, channel subscriptions and settings, the audit trail, and the delivery outbox."""
    db.table("events").create({
        "dedupe_key": str, "kind": str, "board_id": str, "at": str, "rule": str, "subject": str,
        "model": str, "other": str, "groups": str, "rank_before": int, "rank_after": int,
        "score_before": float, "score_after": float, "confidence": str, "message": str,
        "snapshot_id": int, "created_at": str,
    }, pk="dedupe_key")
    db.table("events").create_index(["board_id", "at"])
    db.table("subscriptions").create({
        "id": int, "platform": str, "channel_id": str, "board_pattern": str, "rule": str,
        "created_by": str, "created_at": str, "disabled_at": str, "disabled_reason": str,
    }, pk="id")
    db.table("subscriptions").create_index(["platform", "channel_id", "board_pattern", "rule"], unique=True)
    db.table("channel_settings").create({
        "platform": str, "channel_id": str, "key": str, "value": str, "updated_at": str,
    }, pk=("platform", "channel_id", "key"))
    db.table("audit").create({
        "id": int, "at": str, "platform": str, "channel_id": str, "user_id": str, "user_name": str,
        "action": str, "detail": str,
    }, pk="id")
    db.table("outbox").create({
        "id": int, "delivery_key": str, "event_key": str, "platform": str, "channel_id": str,
        "subscription_ids": str, "status": str, "hold_until": str, "digest": str, "attempts": int,
        "next_attempt_at": str, "last_error": str, "created_at": str, "sent_at": str,
        "delivered_at": str,
    }, pk="id", foreign_keys=[("event_key", "events", "dedupe_key")])
    db.table("outbox").create_index(["delivery_key"], unique=True)
    db.table("outbox").create_index(["status", "next_attempt_at"])


@migrations()
def m004_rule_states_before(db: Database) -> None:
    """Each rule's state as it was before the snapshot it last ran at, and that snapshot's id, so
    `why` can run the rule again exactly as the engine did (JSON text; NULL: the rule had no state)."""
    states = db.table("rule_states")
    for column in ("previous_confirmed", "previous_streak", "previous_last_fired"):
        states.add_column(column, str)
    states.add_column("snapshot_id", int)


@migrations()
def m005_stories(db: Database) -> None:
    """Follow-ups in the thread of the first alert, and edits of it (issue 12).

    `events.value`: the outcome a rule saw (tells a reversal from a confirmation). `outbox.action`:
    `post` (a message of its own), `reply` (in the thread of the row `parent_id`) or `edit` (of the
    message of `parent_id`); `outbox.message_ref`: the platform's id of the delivered message (Slack
    ts, Discord message id). `stories`: per channel, the row whose message a story's follow-ups
    thread under, and when the story last moved.
    """
    db.table("events").add_column("value", str)
    outbox = db.table("outbox")
    outbox.add_column("action", str, not_null_default="post")
    outbox.add_column("parent_id", int)
    outbox.add_column("message_ref", str)
    outbox.create_index(["parent_id"])
    db.table("stories").create({
        "platform": str, "channel_id": str, "story": str, "root_id": int, "updated_at": str,
    }, pk=("platform", "channel_id", "story"))
    db.table("stories").create_index(["root_id"])


@migrations()
def m006_source_drift(db: Database) -> None:
    """Sources that say when they change (issue 13 item 5).

    `source_status.drift`: what changed in the origin's shape (NULL while the source reads fine),
    `drift_url` the origin's URL, `drifted_at` when the drift began. `held_tables`: a board's table with
    fewer than half the rows of its last stored one, held until the next poll confirms it.
    """
    status = db.table("source_status")
    status.add_column("drift", str)
    status.add_column("drift_url", str)
    status.add_column("drifted_at", str)
    db.table("held_tables").create({
        "board_id": str, "source": str, "content_hash": str, "rows": int, "previous_rows": int,
        "held_at": str,
    }, pk="board_id")


@migrations()
def m007_snapshot_returns(db: Database) -> None:
    """A table may come back (issue 14): an origin that goes A -> B -> A under one publish date stores
    A again as a new row, the table in force. The unique index on (board, as_of, content hash) refused
    that row and failed every later poll; `save_snapshot`'s check against the table in force keeps
    saves idempotent, and the plain (board_id, as_of) index still serves the reads."""
    db.execute("DROP INDEX IF EXISTS idx_snapshots_board_id_as_of_content_hash")


@migrations()
def m008_fanout(db: Database) -> None:
    """Fan-out that scales (issue 14): a poll's events wait in `fanout_queue` until their outbox rows are
    all written (in short transactions after the poll's own); an event still there after a crash is
    fanned out again, and the rows already written are left alone.

    Indexes: the active subscriptions by rule and board pattern (covering, `disabled_at` included for
    SQLite to see it: the channels of one rule on one pattern, and the distinct patterns, are read
    without touching the table); stories by story; the outbox by parent only for the rows that have one.
    """
    db.table("fanout_queue").create({"event_key": str, "staged_at": str}, pk="event_key")
    db.execute("CREATE INDEX IF NOT EXISTS idx_subscriptions_active_rule_pattern ON subscriptions "
               "(rule, board_pattern, platform, channel_id, disabled_at) WHERE disabled_at IS NULL")
    db.execute('CREATE INDEX "idx_stories_story_updated_at" ON "stories" ("story", "updated_at")')
    # Only replies and edits have a parent: a post adds nothing to this index.
    db.execute("DROP INDEX IF EXISTS idx_outbox_parent_id")
    db.execute('CREATE INDEX "idx_outbox_parent_id" ON "outbox" ("parent_id") WHERE parent_id IS NOT NULL')


@migrations()
def m009_events_by_date(db: Database) -> None:
    """Flat latency (issue 14): `events` without a board reads the newest events of every board through
    an index by date, not by scanning every event ever stored."""
    db.execute("CREATE INDEX IF NOT EXISTS idx_events_at ON events (at)")


@migrations()
def m010_outbox_by_channel(db: Database) -> None:
    """Delivery at the platforms' pace (issue 14): the undelivered rows by channel, oldest first (a
    partial index that delivered rows leave), so the dispatcher finds each channel's oldest row and
    reads one channel's queue without scanning every pending row."""
    db.execute("CREATE INDEX IF NOT EXISTS idx_outbox_undelivered_channel ON outbox "
               "(platform, channel_id, id) WHERE status IN ('pending', 'sending')")


@migrations()
def m011_drop_scoreless_entries(db: Database) -> None:
    """Rows stored before scores were checked (issue 14): a NaN rating was stored as a NULL score, which
    no reader can rank or print (`model NAME` failed). They were never a score: dropped."""
    db.execute("DELETE FROM entries WHERE score IS NULL")


@migrations()
def m012_workspaces(db: Database) -> None:
    """A public multi-workspace Slack app (issue 15): each installed workspace with its bot token
    encrypted (`storage/installations.py`), the OAuth states of installs in progress, which workspace
    each channel belongs to (its alerts go with that workspace's token), and the workspace on audit rows."""
    db.table("installations").create({
        "platform": str, "workspace": str, "team_id": str, "team_name": str, "enterprise_id": str,
        "enterprise_name": str, "is_enterprise_install": int, "app_id": str, "bot_user_id": str,
        "bot_id": str, "bot_scopes": str, "bot_token_encrypted": str, "installer_user_id": str,
        "installed_at": str, "updated_at": str,
    }, pk=("platform", "workspace"))
    db.table("oauth_states").create({"state": str, "created_at": str, "expires_at": str}, pk="state")
    db.table("channel_workspaces").create({
        "platform": str, "channel_id": str, "workspace": str, "seen_at": str,
    }, pk=("platform", "channel_id"))
    db.table("channel_workspaces").create_index(["platform", "workspace"])
    db.table("audit").add_column("workspace", str)


@migrations()
def m013_fanout_order(db: Database) -> None:
    """The fan-out's list in the order events were listed on both stores (issue 15): a `position` column,
    as PostgreSQL has no `rowid` to order by (rows listed before this keep their SQLite order)."""
    db.table("fanout_queue").add_column("position", int)
    if backend_of(db) == SQLITE:
        db.execute("UPDATE fanout_queue SET position = rowid")


@migrations()
def m014_outbox_claims(db: Database) -> None:
    """Every replica delivers (issue 15): a row being sent names the replica that claimed it (`claimed_by`,
    `host:pid`) and when that claim lapses (`claimed_until`: the send's timeout and a margin on). Other
    replicas leave a live claim alone and take over a lapsed one (its replica died mid-send), checking the
    channel before resending (storage/outbox.py)."""
    db.table("outbox").add_column("claimed_by", str)
    db.table("outbox").add_column("claimed_until", str)


class _WritingDatabase(SqliteDatabase):
    """The SQLite database: sqlite-utils' Database, whose `atomic()` takes the write lock when it begins
    (BEGIN IMMEDIATE), with the little `storage.engine.Database` adds (`backend`, `executemany`).

    sqlite-utils begins with a plain BEGIN: a transaction that reads before it writes then holds a read
    snapshot, and SQLite does not wait (no busy timeout) to turn a reader into the writer while another
    connection writes: "database is locked" at once. Beginning as the writer waits the busy timeout.
    """

    backend: Backend = SQLITE

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        """Run one statement for each row of parameters (`cursor.rowcount`: the rows written in all)."""
        return self.conn.executemany(sql, rows)

    def stream(self, sql: str, parameters: Any = None) -> Iterator[Any]:
        """A read's rows as they are consumed: SQLite's cursor steps through them."""
        return iter(self.execute(sql, parameters if parameters is not None else []))

    def waiting_at_most(self, seconds: float) -> AbstractContextManager[Any]:
        """No connection to wait for: the file is opened already (its locks have `busy_timeout`)."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[_WritingDatabase]:
        """A transaction (a savepoint when one is open already) that holds the write lock from its start."""
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


if TYPE_CHECKING:  # both stores offer what the rest of the code types against
    from leaderwatch.storage.postgres import PostgresDatabase

    _SQLITE_IS_A_DATABASE: type[Database] = _WritingDatabase
    _POSTGRES_IS_A_DATABASE: type[Database] = PostgresDatabase


def open_db(path: str | Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Database:
    """Open (creating if needed) the database at `path` and bring its schema up to date.

    A `postgresql://` (or `postgres://`) URL opens that PostgreSQL database (`storage/postgres.py`).
    `:memory:` gives a private in-memory SQLite database (tests). Opening an up-to-date database writes
    nothing, so it works while another program holds the write lock (reads go on under WAL); a
    write that meets that lock waits `busy_timeout` seconds, then fails (`storage_error` says so).
    """
    if is_postgres_url(path):
        return _open_postgres(str(path), busy_timeout)
    if is_postgres_conninfo(path):
        raise StorageError(f"cannot open the database: the setting {NOT_A_URL}")
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = _WritingDatabase(path)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if str(path) != ":memory:":
            # Switching to WAL takes the write lock; a database already in WAL needs no switch.
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            # WAL is durable across a crash with NORMAL; FULL would fsync every commit.
            db.execute("PRAGMA synchronous = NORMAL")
        if migrations.pending(db):  # checked first: applying (even nothing) would write
            migrations.apply(db)
    except sqlite3.Error as exc:
        known = storage_error(exc, str(path))
        if known is not None:
            raise known from exc
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    except Exception as exc:  # permissions, a directory in the way
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    return db


def _open_postgres(url: str, busy_timeout: float) -> Database:
    """The PostgreSQL database at `url`, its schema brought up to date (errors come out as StorageError).
    psycopg is imported here, on first use: a SQLite install never loads it."""
    from leaderwatch.storage.postgres import PostgresDatabase

    db = PostgresDatabase(url, busy_timeout)
    try:
        if migrations.pending(db):
            migrations.apply(db)
    except BaseException:
        db.close()
        raise
    return db


def db_file(db: Database) -> str:
    """The file of the database behind `db` (`:memory:` for an in-memory one); for PostgreSQL its URL
    without the password."""
    if backend_of(db) == POSTGRES:
        return redact(str(getattr(db, "url", "postgresql://")))
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(file) or ":memory:"
    return ":memory:"


DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StorageError)
"""What a database call may raise on either store: SQLite's errors, and PostgreSQL's as storage errors
(storage/postgres.py). Code that must go on after a failed write (a poll, a probe) catches these."""


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" (another connection kept the write lock too long), and for
    PostgreSQL's lock waits that gave up (`DatabaseLockedError`)."""
    if isinstance(exc, DatabaseLockedError):
        return True
    return isinstance(exc, sqlite3.OperationalError) and (
        "database is locked" in str(exc) or "database is busy" in str(exc)
        or getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))


def is_unreachable(exc: BaseException) -> bool:
    """True when the database server cannot be reached (`UnreachableError`; a SQLite file never is)."""
    return isinstance(exc, UnreachableError)


def is_disk_full(exc: BaseException) -> bool:
    """True for a write that found no room: SQLite's "database or disk is full", or ENOSPC / EDQUOT (and
    PostgreSQL's `DiskFullError`)."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, sqlite3.Error):
        return ("database or disk is full" in str(exc)
                or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def storage_error(exc: BaseException, db_path: str) -> StorageError | None:
    """A locked database or a full disk, said plainly (who holds the lock, when known); None otherwise.
    A PostgreSQL error has been said plainly already (storage/postgres.py): it is its own answer."""
    if isinstance(exc, DatabaseLockedError | DiskFullError):
        return exc
    if is_locked(exc):
        holder = run_lock_holder(db_path)
        if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
            holder = None  # this process is the run: the lock is someone else's
        who = holder.describe() if holder else "another program (a running `leaderwatch run` or `import`, "\
                                                "or a tool such as sqlite3 or datasette)"
        return DatabaseLockedError(f"the database {db_path} is locked by {who}: a write waited for the lock "
                                   "and gave up. Try again when it is done (or stop it)")
    if is_disk_full(exc):
        return DiskFullError(f"the disk holding {db_path} is full: {exc}. Free some space there (or set "
                             "LEADERWATCH_DB to a disk with room); nothing queued is lost")
    return None


# --- one `leaderwatch run` per database -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RunLockHolder:
    """Who holds a database's run lock, as its lock file says."""

    pid: int
    host: str
    started: datetime

    def describe(self) -> str:
        """`leaderwatch run (pid 4242 on host1, since 2026-01-02 03:04:05 UTC)`."""
        return (f"leaderwatch run (pid {self.pid} on {self.host}, "
                f"since {self.started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)")


def lock_path(db_path: str | Path) -> Path:
    """The run lock's file beside the database: `<db>.lock`."""
    return Path(f"{db_path}.lock")


def _read_holder(handle: IO[str]) -> RunLockHolder | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "{}")
        return RunLockHolder(int(data["pid"]), str(data["host"]), from_text(str(data["started"])))
    except (ValueError, KeyError, TypeError):
        return None


def run_lock_holder(db_path: str | Path) -> RunLockHolder | None:
    """The `leaderwatch run` holding the database's run lock now; None when nobody holds it.

    The lock is the kernel's (`flock`): a process killed with -9 loses it at once, so a file left
    behind by a dead run names nobody. PostgreSQL has no run lock (replicas elect a leader instead).
    """
    if is_postgres_url(db_path):
        return None
    path = lock_path(db_path)
    if str(db_path) == ":memory:" or not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(handle) or RunLockHolder(0, "?", datetime.fromtimestamp(0, UTC))
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


class RunLock:
    """The database's run lock: an exclusive `flock` on `<db>.lock`, which names its holder.

    Held for the life of `leaderwatch run`; the kernel releases it when the process ends, however it
    ends (no stale lock after kill -9). For a PostgreSQL URL it does nothing: several replicas share one
    server and elect a leader (storage/leadership.py).
    """

    def __init__(self, db_path: str | Path, clock: datetime | None = None) -> None:
        self.db_path = str(db_path)
        self.path = lock_path(db_path)
        self._started = clock
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock and write pid, host and start time into it; AlreadyRunningError if held."""
        if self.db_path == ":memory:" or is_postgres_url(self.db_path) or self._handle is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # "a+": never truncate the holder's record
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            handle.close()
            raise AlreadyRunningError(self.db_path, holder) from None
        except OSError:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        started = self._started or datetime.now(UTC)
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": to_text(started)}))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go (the file stays: it names nobody once unlocked)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_writable(db: Database) -> bool:
    """True when the main database takes a write now; nothing is committed.

    A table is created in `main` inside a savepoint that is rolled back: that needs the write lock
    on the database file itself, so a read-only file or folder and a lock held by another program
    both show (a TEMP table would not: a read-only file accepts those). On PostgreSQL the same probe runs
    in a transaction rolled back (a read-only server, a full disk or a lock held show alike).
    """
    if backend_of(db) == POSTGRES:
        return _postgres_writable(db)
    # A probe (/healthz) waits half a second for another program's lock, not the busy timeout of writes.
    waits = int(db.execute("PRAGMA busy_timeout").fetchone()[0])
    db.execute(f"PRAGMA busy_timeout = {min(waits, 500)}")
    try:
        db.execute("SAVEPOINT leaderwatch_write_probe")
        try:
            db.execute("CREATE TABLE main._leaderwatch_write_probe (x)")
        finally:
            db.execute("ROLLBACK TO leaderwatch_write_probe")
            db.execute("RELEASE leaderwatch_write_probe")
    except sqlite3.Error:
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout = {waits}")
    return True


class _Probe(Exception):
    """Internal: rolls back the write probe's transaction."""


def _postgres_writable(db: Database) -> bool:
    try:
        with db.atomic():
            db.execute("SET LOCAL lock_timeout = 500")
            db.execute("CREATE TABLE _leaderwatch_write_probe (x BIGINT)")
            raise _Probe
    except _Probe:
        return True
    except StorageError:
        return False
