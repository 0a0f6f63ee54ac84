"""The database on PostgreSQL: the surface of `storage.engine.Database` on a psycopg connection pool.

The rest of storage writes SQL once, with `?` placeholders and SQL both stores accept (`ON CONFLICT`,
`RETURNING`, `coalesce`, `CASE`); here `?` becomes psycopg's `%s` (outside string literals, `%` is
doubled) and the few sqlite-utils table helpers (`create`, `add_column`, `create_index`, `insert`,
`upsert`, `rows_where`...) are written as PostgreSQL SQL, so the migrations in storage/db.py run
unchanged on both stores.

Connections come from a `psycopg_pool.ConnectionPool` and run in autocommit: a statement outside
`atomic()` commits on its own, as on SQLite. `atomic()` pins one connection to the current thread for
the transaction (a nested `atomic()` is a savepoint on it), so everything inside runs in that one
transaction, as on SQLite's single connection. Results are read in full before the connection goes
back to the pool. psycopg errors come out as storage errors (`StorageError`; a lock held too long is
`DatabaseLockedError`, a full disk `DiskFullError`): code around a write catches
`storage.db.DATABASE_ERRORS`, SQLite's errors and these.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
import psycopg.errors
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.array import ListBinaryDumper
from psycopg_pool import ConnectionPool, PoolTimeout

from leaderwatch.storage.engine import POSTGRES, Backend, quote_name, redact

POOL_MAX = 8
"""Connections at most in the pool: the event loop, the fan-out's thread and its batch writers
(`fanouts.WRITERS`), the web server's probes."""

CONNECT_TIMEOUT_SECONDS = 10
STREAM_BATCH = 500
"""Rows `stream` fetches at a time: little memory, few round trips."""
_STREAMS = itertools.count(1)
"""Numbers the server-side cursors (two streams read at once on one pinned connection need two names)."""

RECONNECT_SECONDS = 10.0
"""How long the pool retries a lost connection in the background (backing off: 1, 2, 4 s...) before it
gives that attempt up; the next call that finds no connection starts a new one, trying at once. psycopg's
default, 5 minutes, let the back-off grow to 2 minutes: after an outage of 2 minutes every call still
failed for minutes with the server back."""

DOWN_WAIT_SECONDS = 1.0
"""How long a call waits for a connection while the server is known to be unreachable (`_getconn`)."""

NETWORK_LIMITS: dict[str, int] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                                  "keepalives_count": 3, "tcp_user_timeout": 15_000}
"""libpq's TCP limits on the pool's connections. Every database call of a replica runs on its event loop,
so a server that vanished from the network (no reset, a partition) would hold the replica still for as long
as the kernel retransmits, about 15 minutes: a query the server does not acknowledge fails after 15 s
(`tcp_user_timeout`), and a silent server is given up after 10 + 3 x 5 = 25 s (keepalives, which also
cover a query acknowledged but never answered). A slow query is not cut: the server's kernel still
acknowledges."""


# --- SQL: `?` placeholders to psycopg's -----------------------------------------------------------------

@lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """SQL with `?` (or SQLite's numbered `?NNN`) as psycopg SQL with `%s`; for numbered ones, the index
    (0-based) of the parameter each `%s` takes. `%` outside literals is doubled; literals are kept."""
    out: list[str] = []
    order: list[int] = []
    numbered = False
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # '' inside a literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
            continue
        if ch == "?":
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            if j > i + 1:
                numbered = True
                order.append(int(sql[i + 1:j]) - 1)
            else:
                order.append(len(order))
            out.append("%s")
            i = j
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out), (tuple(order) if numbered else None)


def _value(v: Any) -> Any:
    """A parameter as SQLite would store it: a bool as 0/1 (the schema has no booleans); text without NUL
    characters, which PostgreSQL's text cannot hold (a leaderboard's rows are cleaned before the rules see
    them, `sources.base.without_nul`; this keeps any other text, a chat user's name say, from failing)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str) and "\x00" in v:
        return v.replace("\x00", "")
    return v


def _params(parameters: Any, order: tuple[int, ...] | None) -> list[Any]:
    if parameters is None:
        return []
    if isinstance(parameters, dict):
        raise TypeError("named parameters are not supported on PostgreSQL: use `?` placeholders")
    values = [_value(v) for v in parameters]
    return [values[i] for i in order] if order is not None else values


class _NumberLoader(Loader):
    """`numeric` (what sum() of a BIGINT column gives) as an int when whole, else a float: what SQLite
    returns, so the callers need no Decimal."""

    def load(self, data: Any) -> int | float:
        number = Decimal(bytes(data).decode())
        return int(number) if number == number.to_integral_value() else float(number)


# --- results ---------------------------------------------------------------------------------------------

class Result:
    """What `execute` returns: the rows read in full (tuples), their column names, and the row count."""

    def __init__(self, rows: list[tuple[Any, ...]], names: list[str], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.names = names
        self.rowcount = rowcount
        self.description = [(name, None, None, None, None, None, None) for name in names] or None

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._next:]
        self._next = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def lastrowid(self) -> None:
        """Never set on PostgreSQL: ask with `RETURNING id`."""
        return None


# --- errors ----------------------------------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    """The error on one line, without its closing punctuation (the sentence it goes into has its own)."""
    return " ".join(str(exc).split()).rstrip(".?!") or type(exc).__name__


def storage_error(exc: BaseException, url: str) -> Exception:
    """A psycopg error as the storage error it is (imported late: storage.db imports this module)."""
    from leaderwatch.storage.db import DatabaseLockedError, DiskFullError, StorageError, UnreachableError

    where = redact(url)
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected
                  | psycopg.errors.QueryCanceled):
        return _pg(DatabaseLockedError, f"the database {where} is locked: a write waited for a lock another "
                   f"connection held and gave up ({_one_line(exc)}). Try again when it is done")
    if isinstance(exc, psycopg.errors.DiskFull):
        return _pg(DiskFullError, f"the disk of the PostgreSQL server {where} is full: {_one_line(exc)}. "
                   "Free some space there; nothing queued is lost")
    if isinstance(exc, PoolTimeout):  # the server answers (`_getconn` asked it): every connection is busy
        return _pg(DatabaseLockedError, f"the database {where} is busy: {_one_line(exc)}, every connection "
                   f"of the pool ({POOL_MAX} at most) being in use. Try again in a moment")
    if isinstance(exc, psycopg.OperationalError):
        return _pg(UnreachableError, f"cannot reach PostgreSQL at {where}: {_one_line(exc)}. Check that the "
                   "server runs and LEADERWATCH_DB names it (host, port, database, user)")
    return _pg(StorageError, f"PostgreSQL ({where}): {_one_line(exc)}")


def _pg(kind: type[Exception], message: str) -> Exception:
    return kind(message)


# --- the database ----------------------------------------------------------------------------------------

class PostgresDatabase:
    """A leaderwatch database on a PostgreSQL server (see the module's docstring)."""

    backend: Backend = POSTGRES

    def __init__(self, url: str, busy_timeout: float = 10.0, max_size: int = POOL_MAX) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.total_changes = 0
        """Rows written through this database (SQLite's `conn.total_changes`: "did that write anything")."""
        self._local = threading.local()
        self._pks: dict[str, list[str]] = {}
        self._tracer: Callable[[str, Any], None] | None = None
        """Called with each statement and its parameters (sqlite-utils' `tracer`, for tests)."""
        self._down = False
        """Whether the server could not be reached when a wait for a connection last ran out (`_getconn`)."""
        with self._errors():
            # One connection first: its error (a wrong password, no such database) is the one to show,
            # not the pool's "could not connect in time".
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
            given = conninfo_to_dict(url)  # the URL's own settings win
            limits: dict[str, Any] = {key: value for key, value in NETWORK_LIMITS.items() if key not in given}
            self._limits = limits
            self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
                url, min_size=1, max_size=max_size, kwargs={"autocommit": True, **limits},
                configure=self._configure, open=False, name="leaderwatch", timeout=busy_timeout + 5,
                reconnect_timeout=RECONNECT_SECONDS)
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)

    def _configure(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """Each new connection: numbers as SQLite returns them, a lock wait as long as SQLite's, and lists
        (the arrays of a batch's columns, `unnest(?::text[])`) sent in binary. As text, psycopg quotes every
        element of an array through a regular expression in Python: a fan-out's 2,000 rows of 10 columns
        took 10 ms of CPU to send, 2.7 ms in binary (a third of the client's CPU at 100,000 channels)."""
        conn.adapters.register_loader("numeric", _NumberLoader)
        conn.adapters.register_dumper(list, ListBinaryDumper)
        conn.execute(f"SET lock_timeout = {int(self.busy_timeout * 1000)}")

    @property
    def conn(self) -> PostgresDatabase:
        """The database stands in for its connection where code reaches for one (`conn.total_changes`)."""
        return self

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            raise storage_error(exc, self.url) from exc

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        conn = self._getconn()
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    def _getconn(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A connection from the pool. A wait that ends without one asks the server directly: when it
        cannot be reached, its own error is raised (not the pool's "couldn't get a connection"), and
        until a connection is had again each call waits `DOWN_WAIT_SECONDS`, not the pool's whole
        timeout: every call runs on a replica's event loop, which chat needs answered meanwhile."""
        wait = DOWN_WAIT_SECONDS if self._down else getattr(self._local, "wait", None)
        try:
            conn = self._pool.getconn(timeout=wait)
        except PoolTimeout:
            try:
                psycopg.connect(self.url, connect_timeout=2, **self._limits).close()
            except psycopg.OperationalError as exc:
                self._down = True
                raise exc from None
            self._down = False  # it answers: the pool was busy, or is reconnecting
            raise
        self._down = False
        return conn

    def _count(self, sql: str, rowcount: int) -> None:
        if rowcount > 0 and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.total_changes += rowcount

    def execute(self, sql: str, parameters: Any = None) -> Result:
        """Run one statement (`?` placeholders); its rows, read in full."""
        text, order = translate(sql)
        params = _params(parameters, order)
        if self._tracer is not None:
            self._tracer(sql, parameters)
        with self._errors(), self._connection() as conn:
            cursor = conn.execute(text, params)
            names = [d.name for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if cursor.description else []
            rowcount = cursor.rowcount
        self._count(sql, rowcount)
        return Result(rows, names, rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Result:
        """Run one statement for each row of parameters; the rows written in all."""
        text, order = translate(sql)
        batch = [_params(r, order) for r in rows]
        if not batch:
            return Result([], [], 0)
        with self._errors(), self._connection() as conn, conn.cursor() as cursor:
            cursor.executemany(text, batch)
            rowcount = cursor.rowcount
        self._count(sql, rowcount)
        return Result([], [], rowcount)

    @contextlib.contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """A block whose calls on this thread wait at most `seconds` for a connection of the pool (a probe:
        `/healthz`), not the pool's timeout."""
        before = getattr(self._local, "wait", None)
        self._local.wait = seconds if before is None else min(before, seconds)
        try:
            yield
        finally:
            self._local.wait = before

    def stream(self, sql: str, parameters: Any = None) -> Iterator[Any]:
        """A read's rows, fetched `STREAM_BATCH` at a time from a server-side cursor as they are consumed,
        on one connection held (in a read transaction) until the last row or until the caller stops."""
        text, order = translate(sql)
        params = _params(parameters, order)
        if self._tracer is not None:
            self._tracer(sql, parameters)
        with self._errors(), self._connection() as conn, conn.transaction(), \
                conn.cursor(name=f"leaderwatch_stream_{next(_STREAMS)}") as cursor:
            cursor.itersize = STREAM_BATCH
            cursor.execute(text, params)
            yield from cursor

    def query(self, sql: str, params: Any = None) -> Iterator[dict[str, Any]]:
        """Rows as dicts by column name."""
        result = self.execute(sql, params)
        return (dict(zip(result.names, row, strict=True)) for row in result.fetchall())

    def table(self, table_name: str, **kwargs: Any) -> PostgresTable:
        """The table helpers for `table_name`."""
        return PostgresTable(self, table_name)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[PostgresDatabase]:
        """A transaction on one connection pinned to this thread (nested: a savepoint)."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            with self._errors(), pinned.transaction():
                yield self
            return
        with self._errors():
            conn = self._getconn()
        self._local.conn = conn
        try:
            with self._errors(), conn.transaction():
                yield self
        finally:
            self._local.conn = None
            self._pool.putconn(conn)

    def in_transaction(self) -> bool:
        """Whether this thread is inside `atomic()`."""
        return getattr(self._local, "conn", None) is not None

    def primary_key(self, table: str) -> list[str]:
        """The primary key's columns of a table, in their order."""
        found = self._pks.get(table)
        if found is None:
            rows = self.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(?) AND i.indisprimary "
                "ORDER BY array_position(i.indkey::int2[], a.attnum)", [quote_name(table)]).fetchall()
            found = self._pks[table] = [str(r[0]) for r in rows]
        return found

    def table_names(self) -> list[str]:
        """The tables of the current schema, by name."""
        return [str(r[0]) for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]

    def server_version(self) -> str:
        """`PostgreSQL 16.4` (what doctor shows)."""
        return str(self.execute("SHOW server_version").fetchone()[0]).split(" ")[0]

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()


# --- the table helpers -----------------------------------------------------------------------------------

_TYPES: dict[Any, str] = {str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION", bool: "BIGINT",
                          bytes: "BYTEA"}


def _columns(names: Iterable[str]) -> str:
    return ", ".join(quote_name(c) for c in names)


def _stored(v: Any) -> Any:
    """A record's value as sqlite-utils stores it: dicts and lists as JSON text, bools as 0/1."""
    if isinstance(v, dict | list | tuple):
        return json.dumps(v)
    return _value(v)


def _pk_list(pk: Any) -> list[str] | None:
    if pk is None:
        return None
    return [pk] if isinstance(pk, str) else list(pk)


class NotFoundError(KeyError):
    """No row has that primary key (sqlite-utils' `NotFoundError`)."""


class PostgresTable:
    """The sqlite-utils table helpers the code uses, in PostgreSQL SQL."""

    def __init__(self, db: PostgresDatabase, name: str) -> None:
        self.db = db
        self.name = name

    @property
    def quoted(self) -> str:
        return quote_name(self.name)

    @property
    def pks(self) -> list[str]:
        return self.db.primary_key(self.name)

    def exists(self) -> bool:
        """Whether the table is there (in the current schema)."""
        return self.db.execute("SELECT 1 FROM information_schema.tables WHERE "
                               "table_schema = current_schema() AND table_name = ?",
                               [self.name]).fetchone() is not None

    @property
    def count(self) -> int:
        return self.count_where()

    def count_where(self, where: str | None = None, where_args: Sequence[Any] | None = None) -> int:
        sql = f"SELECT count(*) FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        return int(self.db.execute(sql, where_args).fetchone()[0])

    @property
    def rows(self) -> Iterator[dict[str, Any]]:
        return self.rows_where()

    def rows_where(self, where: str | None = None, where_args: Sequence[Any] | dict[str, Any] | None = None,
                   order_by: str | None = None, select: str = "*", limit: int | None = None,
                   offset: int | None = None) -> Iterator[dict[str, Any]]:
        sql = f"SELECT {select} FROM {self.quoted}"
        if where is not None:
            sql += f" WHERE {where}"
        if order_by is not None:
            sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if offset is not None:
            sql += f" OFFSET {int(offset)}"
        return self.db.query(sql, where_args)

    def get(self, pk_values: Any) -> dict[str, Any]:
        values = list(pk_values) if isinstance(pk_values, list | tuple) else [pk_values]
        where = " AND ".join(f"{quote_name(c)} = ?" for c in self.pks)
        for row in self.rows_where(where, values):
            return row
        raise NotFoundError(f"no row of {self.name} has the key {pk_values!r}")

    # writes

    def _write(self, records: Iterable[dict[str, Any]], conflict: str) -> PostgresTable:
        """INSERT the records (grouped by their columns); `conflict`: an ON CONFLICT clause or ''."""
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for record in records:
            groups.setdefault(tuple(record), []).append([_stored(v) for v in record.values()])
        for cols, rows in groups.items():
            marks = ", ".join("?" * len(cols))
            sql = f"INSERT INTO {self.quoted} ({_columns(cols)}) VALUES ({marks})"
            self.db.executemany(sql + self._conflict(cols, conflict), rows)
        return self

    def _conflict(self, cols: Sequence[str], conflict: str) -> str:
        if not conflict:
            return ""
        kind, _, keys = conflict.partition(":")
        pk = keys.split(",") if keys else self.pks
        if kind == "ignore":
            return f" ON CONFLICT ({_columns(pk)}) DO NOTHING"
        rest = [c for c in cols if c not in pk]
        if not rest:
            return f" ON CONFLICT ({_columns(pk)}) DO NOTHING"
        sets = ", ".join(f"{quote_name(c)} = excluded.{quote_name(c)}" for c in rest)
        return f" ON CONFLICT ({_columns(pk)}) DO UPDATE SET {sets}"

    @staticmethod
    def _mode(pk: Any, replace: bool, ignore: bool, upsert: bool) -> str:
        keys = ",".join(_pk_list(pk) or [])
        if replace or upsert:
            return f"update:{keys}"
        if ignore:
            return f"ignore:{keys}"
        return ""

    def insert(self, record: dict[str, Any], pk: Any = None, *args: Any, replace: bool = False,
               ignore: bool = False, **kwargs: Any) -> PostgresTable:
        return self._write([record], self._mode(pk, replace, ignore, False))

    def insert_all(self, records: Iterable[dict[str, Any]], pk: Any = None, *args: Any, replace: bool = False,
                   ignore: bool = False, **kwargs: Any) -> PostgresTable:
        return self._write(records, self._mode(pk, replace, ignore, False))

    def upsert(self, record: dict[str, Any], pk: Any = None, *args: Any, **kwargs: Any) -> PostgresTable:
        return self._write([record], self._mode(pk, False, False, True))

    def upsert_all(self, records: Iterable[dict[str, Any]], pk: Any = None, *args: Any,
                   **kwargs: Any) -> PostgresTable:
        return self._write(records, self._mode(pk, False, False, True))

    def update(self, pk_values: Any, updates: dict[str, Any] | None = None, *args: Any,
               **kwargs: Any) -> PostgresTable:
        if not updates:
            return self
        values = list(pk_values) if isinstance(pk_values, list | tuple) else [pk_values]
        sets = ", ".join(f"{quote_name(c)} = ?" for c in updates)
        where = " AND ".join(f"{quote_name(c)} = ?" for c in self.pks)
        self.db.execute(f"UPDATE {self.quoted} SET {sets} WHERE {where}",
                        [_stored(v) for v in updates.values()] + values)
        return self

    # schema (what the migrations use)

    def create(self, columns: dict[str, Any], pk: Any = None, foreign_keys: Any = None, *args: Any,
               if_not_exists: bool = False, **kwargs: Any) -> PostgresTable:
        """CREATE TABLE as sqlite-utils would: a single integer `id` key numbers itself (an identity)."""
        keys = _pk_list(pk) or []
        parts: list[str] = []
        for name, kind in columns.items():
            sql_type = _TYPES.get(kind, "TEXT")
            if keys == [name] and sql_type == "BIGINT":
                parts.append(f"{quote_name(name)} BIGINT GENERATED BY DEFAULT AS IDENTITY")
            else:
                parts.append(f"{quote_name(name)} {sql_type}")
        if keys:
            parts.append(f"PRIMARY KEY ({_columns(keys)})")
        for fk in foreign_keys or ():
            column, other, other_column = fk[0], fk[1], fk[2]
            # Checked at commit: a transaction may write a row before the one it refers to (as SQLite,
            # which does not check them at all, lets it).
            parts.append(f"FOREIGN KEY ({quote_name(column)}) REFERENCES {quote_name(other)} "
                         f"({quote_name(other_column)}) DEFERRABLE INITIALLY DEFERRED")
        exists = "IF NOT EXISTS " if if_not_exists else ""
        self.db.execute(f"CREATE TABLE {exists}{self.quoted} ({', '.join(parts)})")
        self.db._pks.pop(self.name, None)
        return self

    def add_column(self, col_name: str, col_type: Any = None, *args: Any, not_null_default: Any = None,
                   **kwargs: Any) -> PostgresTable:
        sql = f"ALTER TABLE {self.quoted} ADD COLUMN {quote_name(col_name)} {_TYPES.get(col_type, 'TEXT')}"
        if not_null_default is not None:
            literal = (str(int(not_null_default)) if isinstance(not_null_default, bool | int) else
                       "'" + str(not_null_default).replace("'", "''") + "'")
            sql += f" NOT NULL DEFAULT {literal}"
        self.db.execute(sql)
        return self

    def create_index(self, columns: Iterable[Any], index_name: str | None = None, unique: bool = False,
                     if_not_exists: bool = False, *args: Any, **kwargs: Any) -> PostgresTable:
        """CREATE INDEX named as sqlite-utils names it (`idx_<table>_<columns>`), so migrations that drop
        an index by name find it on both stores."""
        cols = [str(c) for c in columns]
        name = index_name or f"idx_{self.name.replace(' ', '_')}_{'_'.join(cols)}"
        exists = "IF NOT EXISTS " if if_not_exists else ""
        kind = "UNIQUE INDEX" if unique else "INDEX"
        self.db.execute(f"CREATE {kind} {exists}{quote_name(name)} ON {self.quoted} ({_columns(cols)})")
        return self
