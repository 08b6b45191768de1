"""The hottest single-statement reads, executed straight on the database driver.

SQLAlchemy's connection checkout, execution context and result layers cost about 0.25 ms of
CPU per statement here, several times the statement itself; for the token holder's own row
(every authenticated read) and the meeting list that was most of the request. The statements
stay SQLAlchemy Core, compiled once per dialect; only their execution bypasses the engine:

- SQLite (a file): one sqlite3 connection per process, in autocommit and `query_only` mode.
  A statement runs and is fetched without yielding to the loop, so one connection serves every
  coroutine; a lock (rare for a WAL reader) is waited out with `asyncio.sleep`, never a busy
  wait on the loop, as in `sqlite_inline`.
- PostgreSQL (asyncpg): a small asyncpg pool of its own, with asyncpg's prepared statements.
- Anything else (an in-memory SQLite, another driver): the engine, so behaviour is the same.

Parameters and column values go through the type processors SQLAlchemy would apply, so a row
read here holds the same Python values as one read through the engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from confer.db.sqlite_inline import FIRST_BACKOFF, MAX_BACKOFF, locked

PG_POOL_SIZE = 8
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Compiled:
    """A statement in the dialect's SQL, with what it takes to bind and read it."""

    sql: str
    names: tuple[str, ...]  # the parameter for each positional placeholder
    defaults: Mapping[str, Any]  # values of the statement's literal binds
    binders: tuple[_Processor, ...]
    readers: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, processor) where one applies
    row: type[tuple[Any, ...]]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, bind in zip(self.names, self.binders, strict=True):
            value = params[name] if name in params else self.defaults[name]
            out.append(bind(value) if bind is not None and value is not None else value)
        return out

    def rows(self, raw: list[Any]) -> list[Any]:
        make = self.row._make  # type: ignore[attr-defined]
        if not self.readers:
            return [make(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, f in self.readers:
                if values[i] is not None:
                    values[i] = f(values[i])
            out.append(make(values))
        return out


async def _keep_session(_: Any) -> None:
    """asyncpg's default reset is a round trip per release (RESET ALL, UNLISTEN, ...); these
    connections run only single SELECTs and change no session state, so there is none to undo
    (asyncpg still rolls back a transaction left open, e.g. by a cancelled query)."""


class Reads:
    """`all()` / `first()` of a Core SELECT, on the driver (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        self._sqlite_path = (
            parsed.database
            if backend == "sqlite" and parsed.database not in (None, "", ":memory:")
            else None
        )
        # An address with options (?ssl=..., driver settings) keeps to the engine, which knows
        # how to pass each one on; asyncpg would take them all for server settings.
        self._pg_dsn = (
            parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            if backend == "postgresql"
            and parsed.get_driver_name() == "asyncpg"
            and not parsed.query
            else None
        )
        self._sqlite: sqlite3.Connection | None = None
        self._pg_pool: Any = None
        self._pg_lock = asyncio.Lock()
        self._compiled: dict[int, tuple[Select[Any], Compiled]] = {}
        self.lock_timeout = 30.0

    @property
    def direct(self) -> bool:
        """Whether statements bypass the engine (False: the engine's fallback)."""
        return self._sqlite_path is not None or self._pg_dsn is not None

    def compile(self, stmt: Select[Any]) -> Compiled:
        cached = self._compiled.get(id(stmt))
        if cached is not None and cached[0] is stmt:
            return cached[1]
        c = stmt.compile(dialect=self.dialect)
        names = tuple(c.positiontup or ())
        d = self.dialect
        compiled = Compiled(
            sql=c.string,
            names=names,
            defaults=dict(c.params),
            binders=tuple(c.binds[n].type.dialect_impl(d).bind_processor(d) for n in names),
            readers=tuple(
                (i, f)
                for i, col in enumerate(stmt.selected_columns)
                if (f := col.type.dialect_impl(d).result_processor(d, None)) is not None
            ),
            row=namedtuple("Row", stmt.selected_columns.keys(), rename=True),  # type: ignore[misc]
        )
        self._compiled[id(stmt)] = (stmt, compiled)  # the statement kept alive keeps its id
        return compiled

    async def all(self, stmt: Select[Any], params: Mapping[str, Any] | None = None) -> list[Any]:
        params = params or {}
        if not self.direct:
            async with self.engine.connect() as conn:
                return list((await conn.execute(stmt, dict(params))).all())
        c = self.compile(stmt)
        args = c.args(params)
        if self._sqlite_path is not None:
            return c.rows(await self._sqlite_fetch(c.sql, args))
        pool = self._pg_pool or await self._open_pg()
        try:
            async with pool.acquire() as conn:
                return c.rows(await conn.fetch(c.sql, *args))
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            # The server restarted or dropped us: the other pooled connections are as stale.
            # This read fails; the next ones reconnect (as the engine does after one failure).
            pool.expire_connections()
            raise

    async def first(self, stmt: Select[Any], params: Mapping[str, Any] | None = None) -> Any:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def _sqlite_fetch(self, sql: str, args: list[Any]) -> list[Any]:
        conn = self._sqlite or self._open_sqlite()
        deadline = None
        backoff = FIRST_BACKOFF
        while True:
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if not locked(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.lock_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _open_sqlite(self) -> sqlite3.Connection:
        assert self._sqlite_path is not None
        conn = sqlite3.connect(
            self._sqlite_path, timeout=0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")
        self._sqlite = conn
        return conn

    async def _open_pg(self) -> Any:
        async with self._pg_lock:
            if self._pg_pool is None:
                self._pg_pool = await asyncpg.create_pool(
                    self._pg_dsn, min_size=1, max_size=PG_POOL_SIZE, reset=_keep_session
                )
        return self._pg_pool

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pg_pool is not None:
            pool, self._pg_pool = self._pg_pool, None
            await pool.close()
