"""The bus interface shared by the in-memory and Redis implementations."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class EventBus:
    """Topic-based publish/subscribe of JSON-able dicts. Delivery is at-most-once."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        """Connect to the backend (no-op in memory)."""

    async def close(self) -> None:
        self._handlers.clear()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        raise NotImplementedError

    async def subscribe(self, topic: str, handler: Handler) -> Callable[[], Awaitable[None]]:
        """Register `handler`; returns an async function that removes it."""
        first = not self._handlers[topic]
        self._handlers[topic].append(handler)
        if first:
            await self._on_first_subscriber(topic)

        async def unsubscribe() -> None:
            handlers = self._handlers.get(topic)
            if handlers and handler in handlers:
                handlers.remove(handler)
                if not handlers:
                    del self._handlers[topic]
                    await self._on_last_unsubscribed(topic)

        return unsubscribe

    async def _on_first_subscriber(self, topic: str) -> None:
        """Hook for backends that subscribe per topic."""

    async def _on_last_unsubscribed(self, topic: str) -> None:
        """Hook for backends that unsubscribe per topic."""

    async def _dispatch(self, topic: str, message: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                await handler(message)
            except Exception:  # one faulty subscriber must not starve the others
                log.exception("bus handler for %s failed", topic)
