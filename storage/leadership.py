"""Which replica leads: a PostgreSQL advisory lock held on a connection of its own (issue 15).

Every `leaderwatch run` on one PostgreSQL database tries the same session-level advisory lock; the one
whose session holds it leads (it runs the polls). The lock lives exactly as long as that session: a
process killed with -9, or a connection the server drops, frees it at once, and another replica takes it
at its next try.

The connection is dedicated (a pool could hand it to other work, or recycle it and so drop the lock) and
in autocommit (no transaction stays open on it). TCP keepalives run both ways: the client's through
libpq, the server's through `SET tcp_keepalives_*`, so that a leader cut off by the network is found dead
by the server within about 11 s and its lock freed; the leader itself stops leading as soon as its
heartbeat (`SELECT 1`) fails or goes unanswered for `timeout` seconds, before the server frees the lock.

On SQLite one `run` uses a database file (the run lock in `storage/db.py`): it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from leaderwatch.storage.engine import is_postgres_url, replica_id

logger = logging.getLogger(__name__)

APPLICATION_NAME = "leaderwatch-leader"
"""The leader connection's name in `pg_stat_activity` (every replica's, whether it leads or not)."""
CONNECT_TIMEOUT = 5
"""Seconds to open the leader connection."""
KEEPALIVES_IDLE, KEEPALIVES_INTERVAL, KEEPALIVES_COUNT = 5, 2, 3
"""TCP keepalives (libpq's, and the server's `tcp_keepalives_*`): a silent peer is given up after about
5 + 3 x 2 = 11 s."""
TCP_USER_TIMEOUT_MS = 5000
"""libpq's `tcp_user_timeout`: a query the server does not acknowledge within 5 s fails the socket
(keepalives do not help while a query waits, the kernel would retransmit for minutes)."""
SERVER_KEEPALIVES = (f"SET tcp_keepalives_idle = {KEEPALIVES_IDLE}; "
                     f"SET tcp_keepalives_interval = {KEEPALIVES_INTERVAL}; "
                     f"SET tcp_keepalives_count = {KEEPALIVES_COUNT}")
"""The same keepalives on the server's side, so that the server ends a vanished leader's session (and
frees its lock) in about 11 s instead of the system's default of two hours."""
QUERY_TIMEOUT = 4.0
"""Seconds any query on the leader connection may take before the leadership counts as lost. With the
2 s heartbeat a leader cut off stops within 2 + 4 = 6 s, well before the server frees its lock (9 s at
the earliest)."""


def advisory_key(name: str) -> int:
    """A fixed signed 64-bit advisory lock key derived from `name` (PostgreSQL's bigint lock space)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


LEADER_KEY = advisory_key("leaderwatch")
"""The one lock every replica of a database competes for (in its default schema, `public`)."""

APPLICATION_NAME_SQL = ("left('leaderwatch-leader' || CASE WHEN current_schema() = 'public' THEN '' "
                        "ELSE ':' || current_schema() END, 63)")
"""`application_name(url)` as the server computes it for a session using that schema (the replicas' count)."""


def schema_of(url: str) -> str:
    """The schema a URL's sessions use: `options=-csearch_path=SCHEMA` (the README's way to give one
    install a schema of its own), else `public`."""
    try:
        options = str(conninfo_to_dict(url).get("options") or "")
    except psycopg.ProgrammingError:
        return "public"
    found = re.search(r"search_path\s*=\s*([^\s,]+)", options)
    return found.group(1).strip('"') if found else "public"


def leader_key(url: str) -> int:
    """The lock the replicas of the install at `url` compete for: one per schema, so two installs in two
    schemas of one database each have their own leader."""
    schema = schema_of(url)
    return LEADER_KEY if schema == "public" else advisory_key(f"leaderwatch:{schema}")


def application_name(url: str) -> str:
    """The leader connection's name in `pg_stat_activity`: `leaderwatch-leader`, with `:SCHEMA` for an
    install in a schema of its own (at most 63 characters, PostgreSQL's limit)."""
    schema = schema_of(url)
    return (APPLICATION_NAME if schema == "public" else f"{APPLICATION_NAME}:{schema}")[:63]


def describe_url(url: str) -> str:
    """`host:port/dbname` of a PostgreSQL URL, without the user's password (for log lines)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL (an unreadable URL)"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class LeadershipError(Exception):
    """The leader connection failed, or PostgreSQL did not answer in time."""


@dataclass(frozen=True, slots=True)
class Holder:
    """The session holding the leadership, as PostgreSQL sees it."""

    replica: str | None
    """`<host>:<pid>` of the leading replica (read from its last query's comment), when known."""
    client: str | None
    """Its address and port as the server sees them (None over a Unix socket)."""
    backend_pid: int | None
    """Its PostgreSQL backend's process id (None on SQLite)."""
    since: datetime | None
    """When its connection opened."""

    def describe(self) -> str:
        """One line for the logs: who leads, from where, since when."""
        who = f"replica {self.replica}" if self.replica else "a leaderwatch replica"
        where = f" at {self.client}" if self.client else ""
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        backend = f" (PostgreSQL backend {self.backend_pid}{since})" if self.backend_pid is not None else ""
        return f"{who}{where}{backend}"


_REPLICA_IN_QUERY = re.compile(r"/\* leaderwatch replica ([\w.:-]+) \*/")
_UNSAFE_IN_COMMENT = re.compile(r"[^\w.:-]")


def _first_line(exc: BaseException) -> str:
    """An exception as one short line (psycopg's messages span several)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Leadership:
    """The leadership of one PostgreSQL database, tried through a dedicated connection.

    `try_lead()` takes the advisory lock when it is free, `check()` is the leader's heartbeat, and
    `release()` gives the lock up and closes the connection. Any failure of the connection loses the
    leadership: the connection is dropped and the next `try_lead()` opens a new one. Methods never raise
    for a database problem: they return False and `problem` says what went wrong.
    """

    def __init__(self, url: str, *, key: int | None = None, replica: str | None = None,
                 timeout: float = QUERY_TIMEOUT) -> None:
        self.url = url
        self.key = leader_key(url) if key is None else key
        self.replica = replica or replica_id()
        self.timeout = timeout
        self.problem: str | None = None
        """Why the last attempt failed or the leadership was lost; None after a success."""
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._leading = False
        self._closing: set[asyncio.Task[None]] = set()
        # Every query names the replica in a comment: `pg_stat_activity.query` then tells the other
        # replicas who leads (`holder`), with no table to write.
        self._tag = f" /* leaderwatch replica {_UNSAFE_IN_COMMENT.sub('_', self.replica)} */"

    @property
    def is_leader(self) -> bool:
        """Whether this replica led at its last try or heartbeat."""
        return self._leading

    @property
    def where(self) -> str:
        """The database, for log lines (no password)."""
        return describe_url(self.url)

    async def try_lead(self) -> bool:
        """Take the leadership if no one holds it; whether this replica leads now."""
        if self._leading:
            return True
        try:
            row = await self._query("SELECT pg_try_advisory_lock(%s)", (self.key,))
        except LeadershipError as exc:
            self.problem = str(exc)
            return False
        self.problem = None
        self._leading = bool(row and row[0])
        return self._leading

    async def check(self) -> bool:
        """The heartbeat: whether the leadership still holds. A failed or unanswered `SELECT 1` loses it
        (the connection is closed: its session, and so the lock, may be gone)."""
        if not self._leading:
            return False
        try:
            await self._query("SELECT 1")
        except LeadershipError as exc:
            self._leading = False
            self.problem = str(exc)
            return False
        return True

    async def release(self) -> None:
        """Give the leadership up (another replica can take it at once) and close the connection."""
        if self._leading and self._conn is not None:
            # Closing the session would free the lock too, but only once the server has ended it: unlocking
            # first lets another replica in the moment this returns.
            with contextlib.suppress(LeadershipError):
                await self._query("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._leading = False
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close(conn)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=self.timeout)

    async def holder(self) -> Holder | None:
        """Who leads now (None: no one); LeadershipError when PostgreSQL cannot tell."""
        row = await self._query(
            "SELECT a.pid, a.query, host(a.client_addr), a.client_port, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            ((self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF))
        if row is None:
            return None
        pid, query, addr, port, since = row
        found = _REPLICA_IN_QUERY.search(query or "")
        return Holder(found.group(1) if found else None, f"{addr}:{port}" if addr else None, int(pid), since)

    def _tagged(self, sql: str) -> bytes:
        return (sql + self._tag).encode()

    async def _connect(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The dedicated connection, opened when there is none."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                application_name=application_name(self.url),
                tcp_user_timeout=TCP_USER_TIMEOUT_MS, keepalives=1, keepalives_idle=KEEPALIVES_IDLE,
                keepalives_interval=KEEPALIVES_INTERVAL, keepalives_count=KEEPALIVES_COUNT)
        except psycopg.Error as exc:
            raise LeadershipError(f"cannot connect to {self.where}: {_first_line(exc)}") from None
        self._conn = conn
        return conn

    async def _query(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        """Run one query on the leader connection within `timeout`; its first row.

        The query runs as a task of its own: when it does not answer in time the leadership is given
        up at once, while the task (psycopg asks the server to cancel, which can itself take seconds on
        a broken network) and the connection are closed in the background.
        """
        fresh = self._conn is None or self._conn.closed
        conn = await self._connect()
        task = asyncio.ensure_future(self._fetch(conn, sql, params, settings=fresh))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:
            self._drop(conn, task)
            raise
        if not done:
            self._drop(conn, task)
            raise LeadershipError(f"{self.where} did not answer within {self.timeout:g}s")
        try:
            return task.result()
        except psycopg.Error as exc:
            self._drop(conn, None)
            raise LeadershipError(f"the connection to {self.where} failed: {_first_line(exc)}") from None

    async def _fetch(self, conn: psycopg.AsyncConnection[tuple[Any, ...]], sql: str,
                     params: Sequence[object], *, settings: bool) -> tuple[Any, ...] | None:
        if settings:
            await conn.execute(self._tagged(SERVER_KEEPALIVES))
        cursor = await conn.execute(self._tagged(sql), params)
        return await cursor.fetchone()

    def _drop(self, conn: psycopg.AsyncConnection[tuple[Any, ...]], task: asyncio.Task[Any] | None) -> None:
        """Forget a failed connection now; cancel its query and close it in the background."""
        if self._conn is conn:
            self._conn = None
        self._leading = False
        closing = asyncio.ensure_future(self._abandon(conn, task))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _abandon(self, conn: psycopg.AsyncConnection[tuple[Any, ...]],
                       task: asyncio.Task[Any] | None) -> None:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await self._close(conn)

    @staticmethod
    async def _close(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        try:
            await conn.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
            logger.debug("closing the leader connection failed", exc_info=True)


class SoloLeadership:
    """The leadership of a SQLite database: the one `run` on the file (its run lock) always leads."""

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica or replica_id()
        self.problem: str | None = None
        self._leading = False

    @property
    def is_leader(self) -> bool:
        """Whether `try_lead` was called (and `release` not since)."""
        return self._leading

    @property
    def where(self) -> str:
        """Nothing to name: the database is a local file."""
        return "the local database"

    async def try_lead(self) -> bool:
        """Lead: no other replica can share the file."""
        self._leading = True
        return True

    async def check(self) -> bool:
        """Still leading (nothing can take it away)."""
        return self._leading

    async def release(self) -> None:
        """Stop leading."""
        self._leading = False

    async def holder(self) -> Holder | None:
        """This process, when it leads."""
        return Holder(self.replica, None, None, None) if self._leading else None


AnyLeadership = Leadership | SoloLeadership


def open_leadership(db: str, *, replica: str | None = None) -> AnyLeadership:
    """The leadership for the database setting (`LEADERWATCH_DB`): PostgreSQL's for a URL, else SQLite's."""
    return Leadership(db, replica=replica) if is_postgres_url(db) else SoloLeadership(replica)
