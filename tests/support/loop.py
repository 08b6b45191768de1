"""Proof that a wait did not block the event loop: a task that counts while the loop runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class Ticks:
    count: int = 0


@asynccontextmanager
async def loop_ticks(every: float = 0.005) -> AsyncIterator[Ticks]:
    """Counts one tick every `every` seconds for as long as the loop gets to run it."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            ticks.count += 1
            await asyncio.sleep(every)

    task = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()
