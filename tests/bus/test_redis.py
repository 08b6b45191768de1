"""The Redis bus against a real Redis: what one process publishes arrives in order."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from confer.bus.redis import RedisBus
from tests.support.servers import Redis, free_port


async def test_messages_published_at_once_arrive_in_the_order_of_the_calls(
    redis_server: Redis,
) -> None:
    sender, receiver = RedisBus(redis_server.url), RedisBus(redis_server.url)
    await sender.start()
    await receiver.start()
    got: list[int] = []
    done = asyncio.Event()

    async def keep(body: dict) -> None:
        got.append(body["n"])
        if len(got) == 2000:
            done.set()

    try:
        await receiver.subscribe("ordered", keep)
        await asyncio.sleep(0.1)  # the subscription is in place
        # As the SFU's messages for a peer are: each from a task of its own, started in order,
        # some while an earlier batch is still on the wire.
        first = asyncio.gather(*(sender.publish("ordered", {"n": n}) for n in range(1000)))
        await asyncio.sleep(0)
        second = asyncio.gather(*(sender.publish("ordered", {"n": n}) for n in range(1000, 2000)))
        await asyncio.gather(first, second)
        await asyncio.wait_for(done.wait(), 10)
        assert got == list(range(2000))
    finally:
        await sender.close()
        await receiver.close()


async def test_a_publish_without_a_server_raises_instead_of_hanging() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        with pytest.raises((RedisConnectionError, OSError)):
            await asyncio.wait_for(bus.publish("nowhere", {"x": 1}), 30)
    finally:
        await bus.close()
