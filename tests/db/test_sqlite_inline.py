"""The inline SQLite dialect: statements run on the event loop, lock waits do not block it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from confer.db.session import create_engine
from confer.db.sqlite_inline import DRIVER, inline_url
from tests.support.loop import loop_ticks


def create_engine_with_timeout(tmp_path: Path, timeout: float) -> AsyncEngine:
    return create_async_engine(
        inline_url(f"sqlite:///{tmp_path / 'x.db'}"), connect_args={"timeout": timeout}
    )


def test_sqlite_urls_of_any_driver_map_to_the_inline_dialect() -> None:
    assert inline_url("sqlite+aiosqlite:///data/confer.db") == f"sqlite+{DRIVER}:///data/confer.db"
    assert inline_url("sqlite:////abs/x.db") == f"sqlite+{DRIVER}:////abs/x.db"
    assert inline_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_reads_and_writes_round_trip(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
            await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).all()
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        assert [r.name for r in rows] == ["a", "b"]
        assert mode == "wal"
    finally:
        await engine.dispose()


async def test_a_locked_database_waits_without_blocking_the_event_loop(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        holder = await engine.connect()
        await holder.execute(text("INSERT INTO t (name) VALUES ('first')"))  # holds the write lock

        async def second_writer() -> float:
            started = time.monotonic()
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (name) VALUES ('second')"))
            return time.monotonic() - started

        async with loop_ticks() as ticks:
            writer = asyncio.create_task(second_writer())
            await asyncio.sleep(0.3)
            assert not writer.done()  # still waiting for the lock ...
            assert ticks.count >= 20  # ... while the loop kept running
            await holder.commit()
            await holder.close()
            waited = await asyncio.wait_for(writer, 5)
        assert waited >= 0.3
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert names == ["first", "second"]
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_timeout_is_the_usual_locked_error(tmp_path: Path) -> None:
    setup = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    impatient = create_engine_with_timeout(tmp_path, 0.2)
    try:
        async with setup.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        holder = await setup.connect()
        await holder.execute(text("INSERT INTO t DEFAULT VALUES"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            async with impatient.begin() as conn:
                await conn.execute(text("INSERT INTO t DEFAULT VALUES"))
        assert 0.2 <= time.monotonic() - started < 2
        await holder.rollback()
        await holder.close()
    finally:
        await impatient.dispose()
        await setup.dispose()
