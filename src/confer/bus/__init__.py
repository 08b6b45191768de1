"""The event bus joining processes: in-process by default, Redis pub/sub when configured.

REST handlers publish host actions (kick, end, role change) on `meeting:{id}`; the signaling
hub of every process subscribes to the meetings it serves and reaches its own sockets.
"""

from confer.bus.base import EventBus, Handler
from confer.bus.memory import MemoryBus


def create_bus(redis_url: str = "") -> EventBus:
    if redis_url:
        from confer.bus.redis import RedisBus

        return RedisBus(redis_url)
    return MemoryBus()


__all__ = ["EventBus", "Handler", "MemoryBus", "create_bus"]
