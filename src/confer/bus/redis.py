"""Redis pub/sub bus: every process sees every message on the topics it subscribed to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis

from confer.bus.base import EventBus

log = logging.getLogger(__name__)
PREFIX = "confer:bus:"


class RedisBus(EventBus):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.redis = aioredis.from_url(url)
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None
        self._outbox: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.redis.ping()
        # A placeholder channel keeps the pub/sub connection alive before the first topic.
        await self._pubsub.subscribe(PREFIX + "_")
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._flusher, 2.0)
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        # Closing talks to Redis too: a server that went away must not hold up a shutdown.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._pubsub.aclose(), 5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), 5.0)
        await super().close()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Delivered in the order of the calls: a pool of connections would let a later
        message overtake an earlier one (an SFU's second offer its first, say). Messages
        published while a batch is on the wire go out together in the next one."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((PREFIX + topic, orjson.dumps(message), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await fut

    async def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, data, _ in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except BaseException as exc:  # cancelled on close too: no publisher waits forever
                pending, self._outbox = batch + self._outbox, []
                for *_, fut in pending:
                    if not fut.done():
                        fut.set_exception(
                            exc if isinstance(exc, Exception) else ConnectionError("bus closed")
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for *_, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def _on_first_subscriber(self, topic: str) -> None:
        await self._pubsub.subscribe(PREFIX + topic)

    async def _on_last_unsubscribed(self, topic: str) -> None:
        await self._pubsub.unsubscribe(PREFIX + topic)

    async def _read(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis bus read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if msg is None or msg.get("type") != "message":
                continue
            channel = msg["channel"].decode()
            try:
                payload = orjson.loads(msg["data"])
            except orjson.JSONDecodeError:
                continue
            await self._dispatch(channel.removeprefix(PREFIX), payload)
