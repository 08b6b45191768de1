"""Where a meeting's media lives when several nodes share Redis: one SFU node per meeting.

Every node that runs an SFU announces itself (`confer:media:alive:{node}`, its capacity in
peers, with a short TTL) and its load (`confer:media:load`, a sorted set of peers per node).
A meeting's owner is `confer:media:meeting:{id}`. Both decisions are Lua scripts, so two nodes
placing the same meeting at the same instant agree on one owner:

- `place`: keep a live owner; otherwise take the least-loaded live node that has room (and
  count the newcomer in its load at once, so a burst of new meetings spreads out).
- `claim`: the owner-to-be checks, when a peer's first message reaches it, that the meeting is
  still its own (or unowned), so a meeting released between a lookup and a message is never
  split over two nodes.
"""

from __future__ import annotations

import redis.asyncio as aioredis

ALIVE = "confer:media:alive:"
LOAD = "confer:media:load"
MEETING = "confer:media:meeting:"
MEETING_TTL_MS = 60 * 1000  # renewed by the owner's heartbeat; one nobody renews lapses

_PLACE = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. owner) == 1 then
  return owner
end
local nodes = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #nodes, 2 do
  local node = nodes[i]
  local capacity = redis.call('GET', ARGV[1] .. node)
  if not capacity then
    redis.call('ZREM', KEYS[2], node)
  elseif node ~= ARGV[2] and tonumber(nodes[i + 1]) < tonumber(capacity) then
    redis.call('SET', KEYS[1], node, 'PX', ARGV[3])
    redis.call('ZINCRBY', KEYS[2], 1, node)
    return node
  end
end
return false
"""

_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
"""

_KEEP = """
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Placement:
    """The Redis half of the distributed media plane (see the module docstring)."""

    def __init__(self, url: str, ttl: float) -> None:
        self.redis = aioredis.from_url(url)
        self.ttl_ms = int(ttl * 1000)
        self._place = self.redis.register_script(_PLACE)
        self._claim = self.redis.register_script(_CLAIM)
        self._release = self.redis.register_script(_RELEASE)
        self._keep = self.redis.register_script(_KEEP)

    async def close(self) -> None:
        await self.redis.aclose()

    async def announce(self, node: str, load: int, capacity: int) -> None:
        """A media node's heartbeat: alive with room for `capacity` peers, `load` in use."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(ALIVE + node, capacity, px=self.ttl_ms)
            pipe.zadd(LOAD, {node: load})
            await pipe.execute()

    async def withdraw(self, node: str) -> None:
        """A media node stopping, or found dead before its announcement expired: no new
        meetings for it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(ALIVE + node)
            pipe.zrem(LOAD, node)
            await pipe.execute()

    async def owner(self, meeting_id: int) -> str | None:
        raw = await self.redis.get(MEETING + str(meeting_id))
        return raw.decode() if raw else None

    async def place(self, meeting_id: int, *, instead_of: str = "") -> str | None:
        """The meeting's owner, placing it when it has none (or only `instead_of`, a node
        known to be dead, or one whose announcement expired); None when no node has room."""
        node = await self._place(
            keys=[MEETING + str(meeting_id), LOAD],
            args=[ALIVE, instead_of, MEETING_TTL_MS],
        )
        return node.decode() if node else None

    async def claim(self, meeting_id: int, node: str) -> str:
        """Take an unowned meeting for `node`; returns the owner (`node` unless another has it)."""
        owner = await self._claim(keys=[MEETING + str(meeting_id)], args=[node, MEETING_TTL_MS])
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def keep(self, node: str, meetings: list[int]) -> list[int]:
        """Renew `node`'s placements; returns those another node holds now."""
        if not meetings:
            return []
        lost = await self._keep(
            keys=[MEETING + str(m) for m in meetings], args=[node, MEETING_TTL_MS]
        )
        return [meetings[int(i) - 1] for i in lost]

    async def release(self, meeting_id: int, node: str) -> None:
        """The owner's last peer left: the next join places the meeting afresh."""
        await self._release(keys=[MEETING + str(meeting_id)], args=[node])

    async def listening(self, channels: list[str]) -> dict[str, int]:
        """Subscribers per bus channel: a killed node's subscription ends with its connection,
        seconds before its announcement expires."""
        if not channels:
            return {}
        pairs = await self.redis.pubsub_numsub(*channels)
        return {(c.decode() if isinstance(c, bytes) else c): int(n) for c, n in pairs}
