"""Token-bucket rate limits, kept apart from HTTP so the signaling edge can reuse them.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; each action takes
`cost` tokens or is refused with the time until enough have refilled. Three shapes:

- `TokenBucket`: one bucket owned by one object (e.g. a signaling connection).
- `MemoryRateLimiter`: buckets by key in this process, with idle buckets evicted so a flood of
  distinct keys cannot grow memory without bound.
- `RedisRateLimiter`: buckets by key in Redis, updated by one atomic Lua script, so every
  confer process behind a load balancer shares the same budget. If Redis fails, it falls
  back to this process's own buckets rather than refusing or waving through all traffic.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` sustained, up to `burst` at once."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")

    @property
    def idle_seconds(self) -> float:
        """How long an untouched bucket takes to refill completely (it is then forgettable)."""
        return self.burst / self.per_second


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: float
    retry_after: float  # seconds until the refused cost would fit; 0 when allowed

    @property
    def retry_after_header(self) -> str:
        """Whole seconds for an HTTP `Retry-After` header, never 0 for a refusal."""
        return str(max(1, math.ceil(self.retry_after)))


class TokenBucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, rate: Rate, now: float | None = None) -> None:
        self.tokens = float(rate.burst)
        self.stamp = time.monotonic() if now is None else now

    def take(self, rate: Rate, cost: float = 1.0, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        tokens = min(float(rate.burst), self.tokens + max(0.0, now - self.stamp) * rate.per_second)
        self.stamp = now
        if tokens >= cost:
            self.tokens = tokens - cost
            return Decision(True, self.tokens, 0.0)
        self.tokens = tokens
        return Decision(False, tokens, (cost - tokens) / rate.per_second)


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Buckets by key in this process.

    When more than `max_keys` buckets exist, buckets that have refilled completely are dropped
    (they are indistinguishable from new ones). If that is not enough (a flood of distinct
    keys), the oldest half is dropped: those clients get a fresh budget, which errs towards
    serving rather than towards unbounded memory.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._idle: dict[str, float] = {}  # key -> seconds after which its bucket is full

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Synchronous form of `hit`, for callers already on the hot path."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = TokenBucket(rate, now)
            self._idle[key] = rate.idle_seconds
        return bucket.take(rate, cost, now)

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return self.take(key, rate, cost)

    async def close(self) -> None:
        self._buckets.clear()
        self._idle.clear()

    def _evict(self, now: float) -> None:
        idle = self._idle
        stale = [k for k, b in self._buckets.items() if now - b.stamp >= idle[k]]
        for k in stale:
            del self._buckets[k], idle[k]
        if len(self._buckets) >= self.max_keys:
            for k in list(self._buckets)[: len(self._buckets) // 2 + 1]:
                del self._buckets[k], idle[k]
        log.info("rate limiter evicted buckets; %d remain", len(self._buckets))


# KEYS[1]: the bucket; ARGV: rate per second, burst, cost, lease. Takes `cost` tokens plus, if
# there are that many, up to `lease` in all (prefetched by the caller). Redis's own clock
# (TIME) keeps nodes with skewed clocks consistent. Returns {granted, tokens, retry_after} as
# strings (Lua numbers would be truncated to integers on the way out); granted 0 = refused.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1])
local stamp = tonumber(b[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local granted = 0
local retry = 0
if tokens >= cost then
  granted = math.max(cost, math.min(lease, math.floor(tokens)))
  tokens = tokens - granted
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {tostring(granted), tostring(tokens), tostring(retry)}
"""


class RedisRateLimiter:
    """Buckets shared by every process using the same Redis (they expire once refilled).

    A Redis round trip costs far more CPU than the rest of the limiter, so a process takes a
    small lease of tokens (1/20 of the burst, at least 1) from the shared bucket and spends it
    locally for up to `LEASE_SECONDS`. Leased tokens have left the shared bucket, so all
    processes together never exceed the limit; an expired lease's leftovers are dropped, which
    errs on the strict side. Small bursts (the credential endpoints') lease one token: exact.

    One lease is fetched at a time per key: requests that find the lease spent while a fetch
    is under way wait for it and share it. Each fetching its own drained the shared bucket
    (32 concurrent requests took 32 leases, most then dropped), so a client far below its
    rate was refused: 44 % of requests at 3,800 req/s against a limit of 10,000.
    """

    PREFIX = "confer:rl:"
    LEASE_SECONDS = 1.0

    def __init__(self, url: str, *, fallback_max_keys: int = 100_000) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self.redis.register_script(_LUA)
        self._fallback = MemoryRateLimiter(fallback_max_keys)
        self._leases: dict[str, list[float]] = {}  # key -> [tokens, expiry]
        self._max_leases = fallback_max_keys
        self._fetching: dict[str, asyncio.Future[bool]] = {}  # True: it brought a lease
        self._last_warning = 0.0

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        while True:
            now = time.monotonic()
            lease = self._leases.get(key)
            if lease is not None and lease[1] > now and lease[0] >= cost:
                lease[0] -= cost
                return Decision(True, lease[0], 0.0)
            fetching = self._fetching.get(key)
            if fetching is None:
                break
            # Waiting pays only while fetches bring leases: after a refusal or a Redis failure
            # each request asks (or falls back) on its own, at once, rather than in a queue.
            if not await asyncio.shield(fetching):
                return await self._fetch(key, rate, cost, time.monotonic())
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._fetching[key] = done
        before = self._leases.get(key)
        try:
            return await self._fetch(key, rate, cost, now)
        finally:
            del self._fetching[key]
            after = self._leases.get(key)
            done.set_result(after is not None and after is not before)

    async def _fetch(self, key: str, rate: Rate, cost: float, now: float) -> Decision:
        """Take `cost` from the shared bucket, and a lease for the requests that follow."""
        want = max(cost, float(rate.burst // 20))
        try:
            granted, tokens, retry = await self._script(
                keys=[self.PREFIX + key], args=[rate.per_second, rate.burst, cost, want]
            )
        except Exception as exc:
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning("redis rate limiter unavailable (%s); using local buckets", exc)
            return self._fallback.take(key, rate, cost)
        granted = float(granted)
        if granted < cost:
            self._leases.pop(key, None)
            return Decision(False, float(tokens), float(retry))
        if granted > cost:
            if len(self._leases) >= self._max_leases:
                self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
                if len(self._leases) >= self._max_leases:
                    self._leases.clear()
            self._leases[key] = [granted - cost, now + self.LEASE_SECONDS]
        return Decision(True, granted - cost + float(tokens), 0.0)

    async def close(self) -> None:
        await self.redis.aclose()


def create_rate_limiter(redis_url: str, max_keys: int = 100_000) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, fallback_max_keys=max_keys)
    return MemoryRateLimiter(max_keys)
