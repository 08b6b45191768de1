"""Async engine and session factory, one per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from confer.db.reads import Reads
from confer.db.sqlite_inline import inline_url


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # Connections are cheap but opening one costs PRAGMAs: keep enough that a burst of
        # concurrent requests does not open and discard overflow connections.
        engine = create_async_engine(
            inline_url(url), connect_args={"timeout": 30}, pool_size=32, max_overflow=32
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets readers proceed while one writer commits; FKs are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # No pre-ping: it is a second round trip on every checkout. A connection the server has
    # dropped (a database restart) fails its request once and SQLAlchemy then invalidates the
    # pool; connections are recycled after 30 minutes so none outlives server-side timeouts.
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)


class Database:
    """Owns the engine; `session()` yields a unit of work that commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        # The hottest single-statement reads, on the driver (see confer.db.reads).
        self.reads = Reads(self.engine, url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    async def dispose(self) -> None:
        await self.reads.close()
        await self.engine.dispose()
