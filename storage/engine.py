"""The database every module types against, whichever store is behind it (SQLite or PostgreSQL).

`open_db` (storage/db.py) returns a sqlite-utils `Database` (our `_WritingDatabase`) for a path or
`:memory:`, and a `PostgresDatabase` (storage/postgres.py) for a `postgresql://` URL. Both offer the
small surface named here and nothing else is used outside storage: SQL with `?` placeholders through
`execute` / `executemany` / `query`, a few table helpers (`table(name)`), `atomic()` transactions
(nested: savepoints), and `backend` for the few places that must differ (PRAGMAs, file copies).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

Backend = Literal["sqlite", "postgres"]

SQLITE: Backend = "sqlite"
POSTGRES: Backend = "postgres"


def redact(url: str) -> str:
    """The URL without its password (for messages, `db_file` and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(an unreadable URL)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def replica_id() -> str:
    """This process as `<host>:<pid>`: how the replicas sharing a database name themselves (the outbox's
    claims, the leadership, `/healthz`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_postgres_url(location: str | object) -> bool:
    """Whether a database setting names a PostgreSQL server (else it is a SQLite path or `:memory:`)."""
    return str(location).startswith(("postgresql://", "postgres://"))


_CONNINFO = re.compile(r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options)\s*=",
                       re.IGNORECASE)

NOT_A_URL = ("is a PostgreSQL key=value connection string; leaderwatch takes a URL: "
             "postgresql://USER:PASSWORD@HOST:PORT/DBNAME (a path is a SQLite file)")
"""What to say of a setting `is_postgres_conninfo` catches (after the setting's name)."""


def is_postgres_conninfo(location: str | object) -> bool:
    """Whether a database setting is a libpq `key=value` string (`host=db dbname=lw`): not the URL
    leaderwatch takes for PostgreSQL, and not a file path either (it would make a SQLite file so named)."""
    return bool(_CONNINFO.match(str(location)))


class Cursor(Protocol):
    """What `execute` returns: rows as tuples, and how many rows a write touched."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Table(Protocol):
    """The sqlite-utils table helpers the code uses (the same names and meaning on PostgreSQL)."""

    name: str

    @property
    def count(self) -> int: ...

    @property
    def rows(self) -> Iterator[dict[str, Any]]: ...

    def exists(self) -> bool: ...

    def rows_where(self, where: str | None = None, where_args: Sequence[Any] | dict[str, Any] | None = None,
                   order_by: str | None = None, select: str = "*", limit: int | None = None,
                   offset: int | None = None) -> Iterator[dict[str, Any]]: ...

    def get(self, pk_values: Any) -> dict[Any, Any]: ...

    def insert(self, record: dict[str, Any], *args: Any, **kwargs: Any) -> Any: ...

    def insert_all(self, records: Iterable[dict[str, Any]], *args: Any, **kwargs: Any) -> Any: ...

    def upsert(self, record: dict[str, Any], *args: Any, **kwargs: Any) -> Any: ...

    def upsert_all(self, records: Iterable[dict[str, Any]], *args: Any, **kwargs: Any) -> Any: ...

    def update(self, pk_values: Any, *args: Any, **kwargs: Any) -> Any: ...

    def create(self, columns: dict[str, Any], *args: Any, **kwargs: Any) -> Any: ...

    def add_column(self, col_name: str, *args: Any, **kwargs: Any) -> Any: ...

    def create_index(self, columns: Iterable[Any], *args: Any, **kwargs: Any) -> Any: ...


class Database(Protocol):
    """A database on either store: see the module's docstring."""

    @property
    def backend(self) -> Backend: ...

    @property
    def conn(self) -> Any: ...

    def execute(self, sql: str, parameters: Any = None) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor: ...

    def query(self, sql: str, params: Any = None) -> Iterator[dict[str, Any]]: ...

    def stream(self, sql: str, parameters: Any = None) -> Iterator[Any]:
        """A read's rows as tuples, fetched as they are consumed (an export of years of history)."""
        ...

    def table(self, table_name: str, **kwargs: Any) -> Table: ...

    def table_names(self) -> list[str]: ...

    def atomic(self) -> AbstractContextManager[Any]: ...

    def waiting_at_most(self, seconds: float) -> AbstractContextManager[Any]:
        """A block whose calls (on this thread) wait at most `seconds` for a connection: a probe such as
        `/healthz` answers in time while the server is away. A SQLite file has no connection to wait for."""
        ...

    def close(self) -> None: ...


def quote_name(name: str) -> str:
    """A table or column name as an SQL identifier (double quotes, doubled inside), on both stores."""
    return '"' + name.replace('"', '""') + '"'


def backend_of(db: Database) -> Backend:
    """The store behind `db` (a plain sqlite-utils Database, as some callers build, is SQLite)."""
    return getattr(db, "backend", SQLITE)


def indexed_by(db: Database, index: str) -> str:
    """` INDEXED BY <index>` on SQLite (its planner is told which index serves a query), nothing on
    PostgreSQL (which has no such hint and plans by its statistics)."""
    return f" INDEXED BY {index}" if backend_of(db) == SQLITE else ""


def not_indexed(db: Database, column: str) -> str:
    """A column SQLite's planner must not pick an index for (`+column`: the index on it would read more
    than the one chosen); plain on PostgreSQL, where `+` applies to numbers only."""
    return f"+{column}" if backend_of(db) == SQLITE else column
