"""Background jobs that run every so often for the life of a process part (the signaling hub,
the distributed media plane): one failure is logged and the job runs again next time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def every(period: float, job: Callable[[], Awaitable[Any]], log: logging.Logger) -> None:
    while True:
        await asyncio.sleep(period)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job %s failed", getattr(job, "__name__", job))


async def cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has stopped."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
