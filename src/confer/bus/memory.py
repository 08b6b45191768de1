"""Single-process bus: publish calls the local subscribers directly."""

from __future__ import annotations

from typing import Any

from confer.bus.base import EventBus


class MemoryBus(EventBus):
    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        await self._dispatch(topic, message)
