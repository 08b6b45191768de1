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


# KEYS[1]: the bucket; ARGV: rate per second, burst, cost. Redis's own clock (TIME) keeps
# nodes with skewed clocks consistent. Returns {allowed, tokens, retry_after} (as strings:
# Lua numbers would be truncated to integers on the way out).
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
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
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(retry)}
"""


class RedisRateLimiter:
    """Buckets shared by every process using the same Redis (they expire once refilled)."""

    PREFIX = "confer:rl:"

    def __init__(self, url: str, *, fallback_max_keys: int = 100_000) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self.redis.register_script(_LUA)
        self._fallback = MemoryRateLimiter(fallback_max_keys)
        self._last_warning = 0.0

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        try:
            allowed, tokens, retry = await self._script(
                keys=[self.PREFIX + key], args=[rate.per_second, rate.burst, cost]
            )
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning("redis rate limiter unavailable (%s); using local buckets", exc)
            return self._fallback.take(key, rate, cost)
        return Decision(int(allowed) == 1, float(tokens), float(retry))

    async def close(self) -> None:
        await self.redis.aclose()


def create_rate_limiter(redis_url: str, max_keys: int = 100_000) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, fallback_max_keys=max_keys)
    return MemoryRateLimiter(max_keys)
