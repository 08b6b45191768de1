"""Hot reads on the driver: the same rows as the engine reads, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Integer, bindparam, column, select, table
from sqlalchemy.ext.asyncio import create_async_engine

from confer.api.deps import _USER_ROW
from confer.db.migrate import upgrade_async
from confer.db.models import Meeting, Participant, User
from confer.db.reads import Reads
from confer.db.session import Database, create_engine
from confer.services.meetings import _LISTING, listing
from tests.support.loop import loop_ticks


async def seed(db: Database) -> tuple[int, int]:
    """A host with three meetings (one public, one with a password) and a member of one."""
    async with db.session() as s:
        host = User(username="ana", email="ana@example.com", password_hash="x", full_name="Ana")
        guest = User(username="bo", email="bo@example.com", password_hash="x")
        s.add_all([host, guest])
        await s.flush()
        meetings = [
            Meeting(
                title=f"会议 {i}",
                meeting_code=f"ABC-DEF-GH{'IJK'[i]}",
                host_id=host.id,
                start_time=datetime(2030, 1, 1 + i, 9, 30, tzinfo=UTC) if i else None,
                duration=30,
                max_participants=10,
                is_public=i == 2,
                password_hash="hash" if i == 1 else None,
            )
            for i in range(3)
        ]
        s.add_all(meetings)
        await s.flush()
        s.add(Participant(meeting_id=meetings[0].id, user_id=guest.id, role="participant"))
        return host.id, guest.id


async def engine_rows(db: Database, stmt, params):  # type: ignore[no-untyped-def]
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt, params)).all()]


async def test_rows_hold_the_values_the_engine_reads(db: Database) -> None:
    host_id, guest_id = await seed(db)
    assert db.reads.direct
    for user_id in (host_id, guest_id):
        for with_status, extra in ((False, {}), (True, {"status": "scheduled"})):
            stmt = _LISTING[with_status][0]
            params = {"user_id": user_id, "offset": 0, "limit": 20, **extra}
            direct = await db.reads.all(stmt, params)
            assert [tuple(r) for r in direct] == await engine_rows(db, stmt, params)
            assert direct, "every user sees at least the public meeting"
    user = await db.reads.first(_USER_ROW, {"user_id": host_id})
    assert (user.username, user.full_name, user.is_active) == ("ana", "Ana", True)
    assert user.created_at.tzinfo is not None
    assert await db.reads.first(_USER_ROW, {"user_id": 999_999}) is None


async def test_the_meeting_listing_reads_through_it(db: Database) -> None:
    host_id, guest_id = await seed(db)
    views, total = await listing(db.reads, host_id, None, 1, 2)
    assert total == 3 and len(views) == 2
    assert [v.meeting.start_time for v in views] == [
        datetime(2030, 1, 3, 9, 30, tzinfo=UTC),
        datetime(2030, 1, 2, 9, 30, tzinfo=UTC),
    ]
    assert {v.role for v in views} == {"host"}
    # Past the last page the total comes from the separate count.
    assert await listing(db.reads, host_id, None, 5, 2) == ([], 3)
    guest_views, guest_total = await listing(db.reads, guest_id, None, 1, 20)
    assert guest_total == 2  # the meeting they joined and the public one
    assert {v.host_name for v in guest_views} == {"Ana"}


async def test_an_in_memory_database_reads_through_the_engine() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    reads = Reads(engine, "sqlite+aiosqlite://")
    try:
        assert not reads.direct
        one = select(bindparam("n", type_=Integer).label("n"))
        assert (await reads.first(one, {"n": 7})).n == 7
    finally:
        await reads.close()
        await engine.dispose()


async def test_a_locked_database_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (n INTEGER)")
    writer.execute("INSERT INTO t VALUES (1)")
    writer.execute("BEGIN EXCLUSIVE")  # rollback journal: an exclusive lock shuts readers out
    engine = create_engine(f"sqlite:///{path}")
    reads = Reads(engine, f"sqlite:///{path}")
    t = table("t", column("n", Integer))
    stmt = select(t.c.n).where(t.c.n >= bindparam("k", type_=Integer))
    try:
        async with loop_ticks() as ticks:
            read = asyncio.create_task(reads.all(stmt, {"k": 1}))
            await asyncio.sleep(0.2)
            assert not read.done() and ticks.count >= 10  # waiting, and the loop runs meanwhile
            writer.execute("ROLLBACK")
            assert [tuple(r) for r in await asyncio.wait_for(read, 5)] == [(1,)]

            writer.execute("BEGIN EXCLUSIVE")
            reads.lock_timeout = 0.1
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await reads.all(stmt, {"k": 2})
            assert time.monotonic() - started < 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        await reads.close()
        await engine.dispose()


async def test_the_direct_sqlite_connection_cannot_write(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ro.db'}"
    await upgrade_async(url)
    database = Database(url)
    try:
        await database.reads.first(_USER_ROW, {"user_id": 1})
        assert database.reads._sqlite is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            database.reads._sqlite.execute("DELETE FROM users")
    finally:
        await database.dispose()


async def test_the_meeting_list_looks_meetings_up_by_index_never_by_scanning(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await upgrade_async(url)
    database = Database(url)
    try:
        for statements in _LISTING.values():
            for stmt in statements:
                compiled = database.reads.compile(stmt)
                args = compiled.args({"user_id": 1, "status": "active", "offset": 0, "limit": 20})
                plan = [
                    row[3]
                    for row in database.reads._open_sqlite().execute(
                        "EXPLAIN QUERY PLAN " + compiled.sql, args
                    )
                ]
                # Only the partial index of public meetings is ever read through.
                scans = [step for step in plan if step.startswith("SCAN meetings")]
                assert set(scans) == {"SCAN meetings USING INDEX ix_meetings_public_status"}, plan
    finally:
        await database.dispose()
