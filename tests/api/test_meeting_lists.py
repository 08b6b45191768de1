"""Meeting lists served from each worker's cache are never older than the last write a client
was told succeeded, whichever worker or tool made it (SQLite and PostgreSQL, two workers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.api.meetings_support import ServerDb, create_meeting, join
from tests.support.api import Api, User, ok
from tests.support.servers import ConferServer, Postgres

FRESH_CONNECTIONS = 8  # each lands on either worker, by the kernel's hash of its address


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def two_workers(
    request: pytest.FixtureRequest, server_factory: Callable[..., ConferServer]
) -> ConferServer:
    env = {"CONFER_REDIS_URL": request.getfixturevalue("redis_server").url}
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        env["CONFER_DATABASE_URL"] = pg.create_database("list_cache")
    return server_factory(env, ["--workers", "2"])


def lists(server: ConferServer, user: User) -> list[dict[str, Any]]:
    """The user's list as every worker answers it: the same over each fresh connection."""
    seen = []
    for _ in range(FRESH_CONNECTIONS):
        with httpx.Client(base_url=server.url, timeout=30) as fresh:
            seen.append(ok(fresh.get("/api/v1/meetings", headers=user.auth)))
    assert all(page == seen[0] for page in seen), "workers disagree"
    return seen[0]["meetings"]  # type: ignore[no-any-return]


def item(server: ConferServer, user: User, meeting_id: int) -> dict[str, Any] | None:
    return next((m for m in lists(server, user) if m["meeting_id"] == meeting_id), None)


def test_two_people_see_each_change_to_a_meeting_in_their_lists_at_once(
    two_workers: ConferServer,
) -> None:
    api = Api(two_workers.url)
    try:
        ana, bo = api.register(full_name="Ana"), api.register(full_name="Bo")
        standup = create_meeting(api, ana, is_public=True)["meeting_id"]
        assert item(two_workers, ana, standup)["participant_count"] == 0  # type: ignore[index]
        assert item(two_workers, bo, standup)["role"] is None  # type: ignore[index]

        # Bo joins: both lists count him, and his shows his role.
        pid = ok(join(api, bo, standup))["participant_id"]
        assert item(two_workers, ana, standup)["participant_count"] == 1  # type: ignore[index]
        assert item(two_workers, bo, standup)["role"] == "participant"  # type: ignore[index]

        # Ana renames herself and starts the meeting.
        ok(api.put("/api/v1/users/profile", ana, json={"full_name": "Ana María"}))
        ok(api.post(f"/api/v1/meetings/{standup}/start", ana))
        seen_by_bo = item(two_workers, bo, standup)
        assert seen_by_bo is not None
        assert (seen_by_bo["host_name"], seen_by_bo["status"]) == ("Ana María", "active")

        # A private meeting appears in Ana's list; Bo never sees it.
        private = create_meeting(api, ana, is_public=False)["meeting_id"]
        assert item(two_workers, ana, private) is not None
        assert item(two_workers, bo, private) is None

        # Ana promotes Bo, then removes him.
        ok(
            api.put(
                f"/api/v1/meetings/{standup}/participants/{pid}/role", ana, json={"role": "co_host"}
            )
        )
        assert item(two_workers, bo, standup)["role"] == "co_host"  # type: ignore[index]
        ok(api.post(f"/api/v1/meetings/{standup}/participants/{pid}/kick", ana, json={}))
        assert item(two_workers, ana, standup)["participant_count"] == 0  # type: ignore[index]

        # A change made outside this server (another server, an operator's SQL) shows too.
        ServerDb(two_workers).run(
            "UPDATE meetings SET title = :t WHERE id = :m", t="改期", m=private
        )
        assert item(two_workers, ana, private)["title"] == "改期"  # type: ignore[index]
    finally:
        api.close()


def test_a_list_is_served_from_the_cache_until_a_write_moves_the_version(
    postgres_server: ConferServer,
) -> None:
    """Shown by a write that bypasses the triggers (as `pg_restore --disable-triggers` would):
    the list keeps the page it had until the next write that counts."""
    api = Api(postgres_server.url)
    try:
        ana = api.register(full_name="Ana")
        mid = create_meeting(api, ana, title="周会")["meeting_id"]
        assert item(postgres_server, ana, mid)["title"] == "周会"  # type: ignore[index]

        async def rename_behind_the_triggers() -> None:
            engine = create_async_engine(ServerDb(postgres_server).url, poolclass=NullPool)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("SET LOCAL session_replication_role = replica"))
                    await conn.execute(
                        text("UPDATE meetings SET title = '暗改' WHERE id = :m"), {"m": mid}
                    )
            finally:
                await engine.dispose()

        asyncio.run(rename_behind_the_triggers())
        assert item(postgres_server, ana, mid)["title"] == "周会"  # type: ignore[index]
        ok(api.put("/api/v1/users/profile", ana, json={"full_name": "Ana María"}))
        assert item(postgres_server, ana, mid)["title"] == "暗改"  # type: ignore[index]
    finally:
        api.close()
