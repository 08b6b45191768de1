"""Token buckets: the arithmetic, bounded memory, and Redis buckets shared between limiters."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from confer.ratelimit import (
    Decision,
    MemoryRateLimiter,
    Rate,
    RedisRateLimiter,
    TokenBucket,
    create_rate_limiter,
)
from tests.support.servers import Redis, free_port


def test_a_bucket_allows_its_burst_then_refuses_with_the_time_to_refill() -> None:
    rate = Rate(per_second=2, burst=3)
    bucket = TokenBucket(rate, now=100.0)
    assert [bucket.take(rate, now=100.0).allowed for _ in range(4)] == [True, True, True, False]
    refused = bucket.take(rate, now=100.0)
    assert refused.retry_after == pytest.approx(0.5)
    assert refused.retry_after_header == "1"


def test_a_bucket_refills_at_its_rate_and_never_beyond_its_burst() -> None:
    rate = Rate(per_second=2, burst=3)
    bucket = TokenBucket(rate, now=0.0)
    for _ in range(3):
        bucket.take(rate, now=0.0)
    assert bucket.take(rate, now=0.5).allowed  # one token back after half a second
    assert not bucket.take(rate, now=0.5).allowed
    assert bucket.take(rate, now=1000.0).remaining == pytest.approx(2)  # capped at burst - 1


def test_an_expensive_action_waits_for_its_whole_cost() -> None:
    rate = Rate(per_second=1, burst=5)
    bucket = TokenBucket(rate, now=0.0)
    assert bucket.take(rate, cost=4, now=0.0).allowed
    refused = bucket.take(rate, cost=4, now=0.0)
    assert not refused.allowed and refused.retry_after == pytest.approx(3)


def test_a_refusal_always_asks_for_at_least_one_second() -> None:
    assert Decision(False, 0.99, 0.01).retry_after_header == "1"
    assert Decision(False, 0.0, 2.2).retry_after_header == "3"


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_nonsense_rates_are_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_second"):
        Rate(per_second, burst)


async def test_memory_limiter_keeps_one_bucket_per_key() -> None:
    limiter = MemoryRateLimiter()
    rate = Rate(per_second=0.001, burst=2)
    assert [(await limiter.hit("a", rate)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit("b", rate)).allowed


def test_memory_limiter_memory_is_bounded_under_a_flood_of_keys() -> None:
    limiter = MemoryRateLimiter(max_keys=1000)
    rate = Rate(per_second=0.001, burst=5)  # nothing refills during the test
    for i in range(10_000):
        limiter.take(f"ip:{i}", rate)
    assert len(limiter) <= 1000


def test_memory_limiter_evicts_refilled_buckets_first() -> None:
    limiter = MemoryRateLimiter(max_keys=3)
    fast, slow = Rate(per_second=1e9, burst=1), Rate(per_second=0.001, burst=2)
    limiter.take("slow", slow)  # half spent, stays that way: must survive eviction
    limiter.take("fast1", fast)
    limiter.take("fast2", fast)  # both refill instantly: forgettable
    limiter.take("new", fast)  # over the cap: evicts
    assert len(limiter) == 2
    assert limiter.take("slow", slow).allowed
    assert not limiter.take("slow", slow).allowed  # still the same, spent bucket


def test_the_factory_picks_redis_only_when_configured() -> None:
    assert isinstance(create_rate_limiter(""), MemoryRateLimiter)
    assert isinstance(create_rate_limiter("redis://127.0.0.1:1/0"), RedisRateLimiter)


async def test_redis_buckets_are_shared_by_limiters_and_atomic(redis_server: Redis) -> None:
    a, b = RedisRateLimiter(redis_server.url), RedisRateLimiter(redis_server.url)
    key, rate = f"test:{uuid.uuid4().hex}", Rate(per_second=0.001, burst=10)
    try:
        decisions = await asyncio.gather(*(lim.hit(key, rate) for lim in [a, b] * 25))
        assert sum(d.allowed for d in decisions) == 10
        refused = [d for d in decisions if not d.allowed]
        assert len(refused) == 40 and all(d.retry_after > 0 for d in refused)
    finally:
        await a.close()
        await b.close()


async def test_redis_leases_a_few_tokens_to_save_round_trips(redis_server: Redis) -> None:
    limiter = RedisRateLimiter(redis_server.url)
    client = aioredis.from_url(redis_server.url)
    key, rate = f"test:{uuid.uuid4().hex}", Rate(per_second=0.001, burst=100)  # leases of 5

    async def shared_tokens() -> float:
        return float(await client.hget(RedisRateLimiter.PREFIX + key, "tokens"))

    try:
        assert (await limiter.hit(key, rate)).allowed
        assert await shared_tokens() == pytest.approx(95)
        for _ in range(4):  # spent from the lease, Redis untouched
            assert (await limiter.hit(key, rate)).allowed
        assert await shared_tokens() == pytest.approx(95)
        assert (await limiter.hit(key, rate)).allowed
        assert await shared_tokens() == pytest.approx(90)
    finally:
        await limiter.close()
        await client.aclose()


async def test_leasing_processes_never_exceed_the_shared_budget(redis_server: Redis) -> None:
    limiters = [RedisRateLimiter(redis_server.url) for _ in range(3)]
    key, rate = f"test:{uuid.uuid4().hex}", Rate(per_second=0.001, burst=100)
    try:
        allowed = 0
        for _ in range(60):
            decisions = await asyncio.gather(*(lim.hit(key, rate) for lim in limiters))
            allowed += sum(d.allowed for d in decisions)
        # At most the burst; at least the burst minus what the other leases still hold.
        assert 100 - 2 * 5 <= allowed <= 100
    finally:
        for lim in limiters:
            await lim.close()


async def test_concurrent_requests_share_one_lease_instead_of_draining_the_bucket(
    redis_server: Redis,
) -> None:
    limiter = RedisRateLimiter(redis_server.url)
    client = aioredis.from_url(redis_server.url)
    key, rate = f"test:{uuid.uuid4().hex}", Rate(per_second=0.001, burst=100)  # leases of 5
    try:
        # 20 requests at once: four leases' worth, not twenty leases.
        decisions = await asyncio.gather(*(limiter.hit(key, rate) for _ in range(20)))
        assert all(d.allowed for d in decisions)
        tokens = float(await client.hget(RedisRateLimiter.PREFIX + key, "tokens"))
        assert tokens == pytest.approx(80)
    finally:
        await limiter.close()
        await client.aclose()


async def test_redis_buckets_expire_once_they_would_be_full(redis_server: Redis) -> None:
    limiter = RedisRateLimiter(redis_server.url)
    client = aioredis.from_url(redis_server.url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await limiter.hit(key, Rate(per_second=2, burst=10))  # full again after 5 s
        ttl_ms = await client.pttl(RedisRateLimiter.PREFIX + key)
        assert 0 < ttl_ms <= 6000
    finally:
        await limiter.close()
        await client.aclose()


async def test_redis_refills_by_its_own_clock(redis_server: Redis) -> None:
    limiter = RedisRateLimiter(redis_server.url)
    key, rate = f"test:{uuid.uuid4().hex}", Rate(per_second=20, burst=1)
    try:
        assert (await limiter.hit(key, rate)).allowed
        refused = await limiter.hit(key, rate)
        assert not refused.allowed
        await asyncio.sleep(refused.retry_after + 0.05)
        assert (await limiter.hit(key, rate)).allowed
    finally:
        await limiter.close()


async def test_without_redis_the_limiter_falls_back_to_local_buckets() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    rate = Rate(per_second=0.001, burst=2)
    try:
        assert [(await limiter.hit("k", rate)).allowed for _ in range(3)] == [True, True, False]
    finally:
        await limiter.close()
