"""Placement: a meeting's media on one node, decided atomically in a real Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from confer.sfu.placement import ALIVE, Placement
from tests.support.servers import Redis

MEETINGS = itertools.count(7000)


@pytest.fixture
async def placement(redis_server: Redis) -> AsyncIterator[Placement]:
    url = redis_server.url.rsplit("/", 1)[0] + "/9"  # placement keys of its own
    p = Placement(url, ttl=5.0)
    await p.redis.flushdb()
    yield p
    await p.redis.flushdb()
    await p.close()


async def test_a_meeting_placed_from_many_nodes_at_once_gets_one_owner(
    placement: Placement, redis_server: Redis
) -> None:
    others = [Placement(redis_server.url.rsplit("/", 1)[0] + "/9", ttl=5.0) for _ in range(3)]
    try:
        for node in ("a", "b", "c"):
            await placement.announce(node, 0, 100)
        meeting = next(MEETINGS)
        placed = await asyncio.gather(
            *(p.place(meeting) for p in [placement, *others] for _ in range(10))
        )
        assert len(set(placed)) == 1 and placed[0] is not None
        assert await placement.owner(meeting) == placed[0]
    finally:
        for p in others:
            await p.close()


async def test_new_meetings_go_to_the_least_loaded_node_and_spread_at_once(
    placement: Placement,
) -> None:
    await placement.announce("busy", 10, 100)
    await placement.announce("idle", 7, 100)
    owners = [await placement.place(next(MEETINGS)) for _ in range(6)]
    # idle takes the first three (7, 8, 9 peers counted), then they alternate from 10.
    assert owners[:3] == ["idle", "idle", "idle"]
    assert sorted(owners[3:5]) == ["busy", "idle"]


async def test_a_node_without_room_gets_no_new_meeting_and_a_full_cluster_says_so(
    placement: Placement,
) -> None:
    await placement.announce("full", 100, 100)
    await placement.announce("roomy", 99, 100)
    assert await placement.place(next(MEETINGS)) == "roomy"
    # roomy counted its newcomer at once: 100 of 100
    assert await placement.place(next(MEETINGS)) is None


async def test_a_dead_owner_is_replaced(placement: Placement) -> None:
    await placement.announce("first", 0, 100)
    meeting = next(MEETINGS)
    assert await placement.place(meeting) == "first"
    await placement.announce("second", 5, 100)
    assert await placement.place(meeting) == "first"  # alive: it keeps the meeting
    await placement.redis.delete(ALIVE + "first")  # its announcement expired
    assert await placement.place(meeting) == "second"


async def test_a_node_known_dead_is_skipped_before_its_announcement_expires(
    placement: Placement,
) -> None:
    await placement.announce("killed", 0, 100)
    await placement.announce("survivor", 50, 100)
    meeting = next(MEETINGS)
    assert await placement.place(meeting) == "killed"
    assert await placement.place(meeting, instead_of="killed") == "survivor"


async def test_claim_takes_an_unowned_meeting_and_release_only_frees_ones_own(
    placement: Placement,
) -> None:
    meeting = next(MEETINGS)
    assert await placement.claim(meeting, "x") == "x"
    assert await placement.claim(meeting, "y") == "x"  # y must send its peers to x
    await placement.release(meeting, "y")
    assert await placement.owner(meeting) == "x"
    await placement.release(meeting, "x")
    assert await placement.owner(meeting) is None


async def test_an_announcement_lapses_without_heartbeats(redis_server: Redis) -> None:
    p = Placement(redis_server.url.rsplit("/", 1)[0] + "/9", ttl=0.3)
    try:
        await p.announce("brief", 0, 10)
        assert await p.place(next(MEETINGS)) == "brief"
        await asyncio.sleep(0.5)
        assert await p.place(next(MEETINGS)) is None
    finally:
        await p.redis.flushdb()
        await p.close()
