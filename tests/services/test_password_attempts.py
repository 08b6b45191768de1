"""Wrong meeting passwords are capped per user and meeting, across processes when Redis is set."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from confer.errors import RateLimited
from confer.services.participants import PasswordAttempts
from tests.support.servers import Redis

_meetings = itertools.count(1)


@pytest.fixture
async def shared(redis_server: Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_two_processes_share_one_budget_of_wrong_guesses(shared: aioredis.Redis) -> None:
    meeting = next(_meetings)
    worker_a = PasswordAttempts(3, 60, redis=shared)
    worker_b = PasswordAttempts(3, 60, redis=shared)
    for attempts in (worker_a, worker_b, worker_a):
        await attempts.check(7, meeting)
        await attempts.failed(7, meeting)
    for attempts in (worker_a, worker_b):
        with pytest.raises(RateLimited) as refused:
            await attempts.check(7, meeting)
        assert 1 <= int(refused.value.headers["Retry-After"]) <= 61
    await worker_b.check(8, meeting)  # another user is not affected
    await worker_a.check(7, meeting + 1000)  # nor another meeting


async def test_a_right_password_clears_the_count_and_counts_expire(
    shared: aioredis.Redis,
) -> None:
    meeting = next(_meetings)
    attempts = PasswordAttempts(2, 1, redis=shared)
    await attempts.failed(7, meeting)
    await attempts.succeeded(7, meeting)
    await attempts.failed(7, meeting)
    await attempts.check(7, meeting)  # one failure since the success: still allowed
    await attempts.failed(7, meeting)
    with pytest.raises(RateLimited):
        await attempts.check(7, meeting)
    assert 0 < await shared.pttl(f"{PasswordAttempts.PREFIX}7:{meeting}") <= 2000


async def test_without_redis_or_when_it_fails_this_process_counts() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    for attempts in (PasswordAttempts(2, 60), PasswordAttempts(2, 60, redis=unreachable)):
        await attempts.failed(7, 1)
        await attempts.check(7, 1)
        await attempts.failed(7, 1)
        with pytest.raises(RateLimited):
            await attempts.check(7, 1)
    await unreachable.aclose()
