"""Who is in which room, shared by every process serving the meeting.

One entry per session (a tab, a device), keyed by `session_id`, holding what room-info shows
plus `node` (the process holding the socket), `connected` (false during the resume grace) and
`epoch` (bumped on every resume, so a stale grace timer cannot remove a resumed session).
In one process the entries live in a dict; with Redis, in a hash per meeting, changed by
small Lua scripts so concurrent processes never lose an update.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

Entry = dict[str, Any]


class MemoryPresence:
    def __init__(self) -> None:
        self.rooms: dict[int, dict[str, Entry]] = {}

    async def snapshot(self, meeting_id: int) -> list[Entry]:
        return [dict(e) for e in self.rooms.get(meeting_id, {}).values()]

    async def get(self, meeting_id: int, session_id: str) -> Entry | None:
        e = self.rooms.get(meeting_id, {}).get(session_id)
        return dict(e) if e else None

    async def put(self, meeting_id: int, entry: Entry) -> None:
        self.rooms.setdefault(meeting_id, {})[entry["session_id"]] = dict(entry)

    async def patch(self, meeting_id: int, session_id: str, fields: Entry) -> None:
        e = self.rooms.get(meeting_id, {}).get(session_id)
        if e is not None:
            e.update(fields)

    async def claim(
        self, meeting_id: int, session_id: str, user_id: int, node: str, peer_id: str
    ) -> Entry | None:
        e = self.rooms.get(meeting_id, {}).get(session_id)
        if e is None or e["user_id"] != user_id:
            return None
        before = dict(e)
        e.update(node=node, connected=True, epoch=e.get("epoch", 0) + 1, peer_id=peer_id)
        return before

    async def remove(
        self, meeting_id: int, session_id: str, *, node: str = "", epoch: int | None = None
    ) -> bool:
        room = self.rooms.get(meeting_id, {})
        e = room.get(session_id)
        if e is None or (node and e.get("node") != node):
            return False
        if epoch is not None and e.get("epoch") != epoch:
            return False
        del room[session_id]
        if not room:
            self.rooms.pop(meeting_id, None)
        return True

    async def start_share(self, meeting_id: int, session_id: str, limit: int) -> bool:
        room = self.rooms.get(meeting_id, {})
        e = room.get(session_id)
        if e is None:
            return False
        if e.get("sharing"):
            return True
        if sum(1 for x in room.values() if x.get("sharing")) >= limit:
            return False
        e["sharing"] = True
        return True

    async def heartbeat(self, node: str, ttl: float) -> None:
        """Single process: nothing to announce."""

    async def dead_entries(self, meeting_id: int) -> list[Entry]:
        return []


_CLAIM = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local e = cjson.decode(raw)
if tostring(e.user_id) ~= ARGV[2] then return false end
e.node = ARGV[3]; e.connected = true; e.epoch = (tonumber(e.epoch) or 0) + 1; e.peer_id = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return raw
"""

_REMOVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if ARGV[2] ~= '' and e.node ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and tostring(e.epoch) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

_PATCH = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local e = cjson.decode(raw)
for k, v in pairs(cjson.decode(ARGV[2])) do e[k] = v end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return 1
"""

_SHARE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.sharing == true then return 1 end
local n = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  if cjson.decode(v).sharing == true then n = n + 1 end
end
if n >= tonumber(ARGV[2]) then return 0 end
e.sharing = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return 1
"""

ROOM_PREFIX = "confer:sig:room:"
NODE_PREFIX = "confer:sig:node:"


class RedisPresence:
    """Entries as JSON in the hash `confer:sig:room:{meeting_id}`; live processes announce
    themselves under `confer:sig:node:{node}` with a TTL, so a crashed process's sessions
    stop counting and are cleaned up by the survivors."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url)
        self._claim = self.redis.register_script(_CLAIM)
        self._remove = self.redis.register_script(_REMOVE)
        self._patch = self.redis.register_script(_PATCH)
        self._share = self.redis.register_script(_SHARE)
        self._alive: dict[str, tuple[float, bool]] = {}

    async def close(self) -> None:
        await self.redis.aclose()

    async def _entries(self, meeting_id: int) -> list[Entry]:
        raw = await self.redis.hvals(ROOM_PREFIX + str(meeting_id))
        return [orjson.loads(v) for v in raw]

    async def _live_nodes(self, nodes: Iterable[str]) -> set[str]:
        now = time.monotonic()
        nodes = set(nodes)
        wanted = [n for n in nodes if self._alive.get(n, (0.0, False))[0] < now]
        if wanted:
            found = await self.redis.mget([NODE_PREFIX + n for n in wanted])
            for n, v in zip(wanted, found, strict=True):
                self._alive[n] = (now + 1.0, v is not None)
        return {n for n in nodes if self._alive[n][1]}

    async def snapshot(self, meeting_id: int) -> list[Entry]:
        entries = await self._entries(meeting_id)
        live = await self._live_nodes(e.get("node", "") for e in entries)
        return [e for e in entries if e.get("node") in live]

    async def dead_entries(self, meeting_id: int) -> list[Entry]:
        entries = await self._entries(meeting_id)
        live = await self._live_nodes(e.get("node", "") for e in entries)
        return [e for e in entries if e.get("node") not in live]

    async def get(self, meeting_id: int, session_id: str) -> Entry | None:
        raw = await self.redis.hget(ROOM_PREFIX + str(meeting_id), session_id)
        return orjson.loads(raw) if raw else None

    async def put(self, meeting_id: int, entry: Entry) -> None:
        await self.redis.hset(
            ROOM_PREFIX + str(meeting_id), entry["session_id"], orjson.dumps(entry)
        )

    async def patch(self, meeting_id: int, session_id: str, fields: Entry) -> None:
        await self._patch(
            keys=[ROOM_PREFIX + str(meeting_id)], args=[session_id, orjson.dumps(fields)]
        )

    async def claim(
        self, meeting_id: int, session_id: str, user_id: int, node: str, peer_id: str
    ) -> Entry | None:
        raw = await self._claim(
            keys=[ROOM_PREFIX + str(meeting_id)], args=[session_id, str(user_id), node, peer_id]
        )
        return orjson.loads(raw) if raw else None

    async def remove(
        self, meeting_id: int, session_id: str, *, node: str = "", epoch: int | None = None
    ) -> bool:
        done = await self._remove(
            keys=[ROOM_PREFIX + str(meeting_id)],
            args=[session_id, node, "" if epoch is None else str(epoch)],
        )
        return bool(done)

    async def start_share(self, meeting_id: int, session_id: str, limit: int) -> bool:
        ok = await self._share(keys=[ROOM_PREFIX + str(meeting_id)], args=[session_id, limit])
        return bool(ok)

    async def heartbeat(self, node: str, ttl: float) -> None:
        await self.redis.set(NODE_PREFIX + node, b"1", px=int(ttl * 1000))


Presence = MemoryPresence | RedisPresence
