"""The meeting lists' data version: raised by the database itself, in the writing transaction,
by every write a meeting list shows and by no other (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from alembic import command
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import confer.db
from confer.db.migrate import alembic_config, upgrade_async
from confer.db.models import (
    MEETING_LISTS,
    ChatMessage,
    DataVersion,
    Meeting,
    Participant,
    User,
)
from confer.db.session import Database
from confer.services.meetings import _LIST_COLUMNS
from tests.support.servers import Postgres

VERSION = select(DataVersion.version).where(DataVersion.name == MEETING_LISTS)


async def version(db: Database) -> int:
    """As a request reads it: on another connection than the writer's."""
    return int((await db.reads.first(VERSION))[0])


async def seed(db: Database) -> tuple[int, int, int]:
    """(host id, guest id, meeting id), the guest a participant of the host's meeting."""
    async with db.session() as s:
        host = User(username="ana", email="ana@example.com", password_hash="x", full_name="Ana")
        guest = User(username="bo", email="bo@example.com", password_hash="x")
        s.add_all([host, guest])
        await s.flush()
        meeting = Meeting(title="周会", meeting_code="ABC-DEF-GHI", host_id=host.id)
        s.add(meeting)
        await s.flush()
        s.add(Participant(meeting_id=meeting.id, user_id=guest.id))
        await s.commit()
        return host.id, guest.id, meeting.id


Write = Callable[[AsyncSession, tuple[int, int, int]], Awaitable[object]]

SHOWN_IN_LISTS: dict[str, Write] = {
    "a meeting is created": lambda s, ids: s.execute(
        insert(Meeting).values(title="新会", meeting_code="JKL-MNO-PQR", host_id=ids[0])
    ),
    "a meeting is renamed": lambda s, ids: s.execute(
        update(Meeting).where(Meeting.id == ids[2]).values(title="改名")
    ),
    "a meeting starts": lambda s, ids: s.execute(
        update(Meeting).where(Meeting.id == ids[2]).values(status="active")
    ),
    "a meeting is deleted": lambda s, ids: s.execute(delete(Meeting).where(Meeting.id == ids[2])),
    "someone joins": lambda s, ids: s.execute(
        insert(Participant).values(meeting_id=ids[2], user_id=ids[0])
    ),
    "someone leaves": lambda s, ids: s.execute(
        update(Participant).where(Participant.user_id == ids[1]).values(state="left")
    ),
    "someone's role changes": lambda s, ids: s.execute(
        update(Participant).where(Participant.user_id == ids[1]).values(role="co_host")
    ),
    "a participant row is removed": lambda s, ids: s.execute(
        delete(Participant).where(Participant.user_id == ids[1])
    ),
    "a host changes their name": lambda s, ids: s.execute(
        update(User).where(User.id == ids[0]).values(full_name="Ana María")
    ),
}

NOT_SHOWN: dict[str, Write] = {
    "a meeting row is locked by rewriting its status": lambda s, ids: s.execute(
        update(Meeting).where(Meeting.id == ids[2]).values(status=Meeting.status)
    ),
    "a participant's role is set to what it was": lambda s, ids: s.execute(
        update(Participant).where(Participant.user_id == ids[1]).values(role="participant")
    ),
    "someone mutes": lambda s, ids: s.execute(
        update(Participant).where(Participant.user_id == ids[1]).values(audio_muted=True)
    ),
    "someone is active": lambda s, ids: s.execute(
        update(Participant)
        .where(Participant.user_id == ids[1])
        .values(last_active_at=Participant.joined_at)
    ),
    "someone changes their password": lambda s, ids: s.execute(
        update(User).where(User.id == ids[1]).values(password_hash="y")
    ),
    "a chat message is sent": lambda s, ids: s.execute(
        insert(ChatMessage).values(
            meeting_id=ids[2], sender_id=ids[1], sender_name="bo", content="你好"
        )
    ),
}


async def test_a_write_counts_once_it_commits_not_before(db: Database) -> None:
    ids = await seed(db)
    before = await version(db)
    async with db.session() as s:
        await SHOWN_IN_LISTS["a meeting is renamed"](s, ids)
        await s.flush()
        # Outside the writer's transaction nothing has changed yet, the counter included.
        assert await version(db) == before
        await s.commit()
    assert await version(db) > before


@pytest.mark.parametrize("write", SHOWN_IN_LISTS, ids=list(SHOWN_IN_LISTS))
async def test_a_write_a_list_shows_raises_the_version_when_it_commits(
    db: Database, write: str
) -> None:
    ids = await seed(db)
    before = await version(db)
    async with db.session() as s:
        await SHOWN_IN_LISTS[write](s, ids)
        await s.commit()
    assert await version(db) > before


@pytest.mark.parametrize("write", NOT_SHOWN, ids=list(NOT_SHOWN))
async def test_a_write_no_list_shows_leaves_the_version_alone(db: Database, write: str) -> None:
    ids = await seed(db)
    before = await version(db)
    async with db.session() as s:
        await NOT_SHOWN[write](s, ids)
        await s.commit()
    assert await version(db) == before


async def test_a_write_rolled_back_leaves_the_version_alone(db: Database) -> None:
    ids = await seed(db)
    before = await version(db)
    async with db.session() as s:
        await SHOWN_IN_LISTS["a meeting is renamed"](s, ids)
        await s.rollback()
    assert await version(db) == before


async def test_writers_crossing_a_meeting_and_its_participants_do_not_deadlock(
    postgres: Postgres,
) -> None:
    """PostgreSQL: the counter is locked at commit, never while a writer may still wait for a
    row another writer holds."""
    db = Database(postgres.create_database(f"crossing_{uuid4().hex[:8]}"))
    await upgrade_async(db.url)
    try:
        _, guest_id, meeting_id = await seed(db)
        before = await version(db)
        rename = update(Meeting).where(Meeting.id == meeting_id)
        async with db.engine.connect() as first, db.engine.connect() as second:
            await first.begin()
            await second.begin()
            await first.execute(
                update(Participant).where(Participant.user_id == guest_id).values(state="left")
            )
            # Not held up by `first`, which has not committed yet.
            await asyncio.wait_for(second.execute(rename.values(title="second")), 10)
            # Waits for `second`'s row lock on the meeting...
            blocked = asyncio.create_task(first.execute(rename.values(title="first")))
            await asyncio.sleep(0.2)
            assert not blocked.done()
            await second.commit()  # ...which is released here, not deadlocked
            await asyncio.wait_for(blocked, 10)
            await first.commit()
        assert await version(db) >= before + 2
    finally:
        await db.dispose()


def test_the_triggers_watch_every_column_a_list_shows() -> None:
    """A column added to the list must be added to what raises the version (a migration)."""
    path = Path(confer.db.__file__).parent / "migrations/versions/0004_meeting_list_version.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    shown = {c.name for c in _LIST_COLUMNS} - {"id"}  # a meeting's id never changes
    assert shown <= set(migration.WATCHED["meetings"])
    assert {"meeting_id", "user_id", "role", "state"} <= set(migration.WATCHED["participants"])
    assert {"username", "full_name"} <= set(migration.WATCHED["users"])


async def test_the_migration_goes_down_and_up_again(db: Database) -> None:
    await seed(db)
    await asyncio.to_thread(command.downgrade, alembic_config(db.url), "0003")
    await upgrade_async(db.url)
    before = await version(db)
    async with db.session() as s:
        await s.execute(update(Meeting).values(title="又改"))
        await s.commit()
    assert await version(db) > before
