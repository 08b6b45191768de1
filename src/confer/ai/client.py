"""The parent's handle on one AI worker process: start, requests, audio streams, stop.

The event loop never blocks on the pipe: a sender thread writes (coalescing Opus packets into
batches when the pipe is busy) and a reader thread turns the child's messages into future
results and caption callbacks on the loop. If the child dies, every waiting request fails at
once with `WorkerGone` and the owner may start a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from typing import Any

from confer.ai.worker import WorkerConfig, child_main

log = logging.getLogger("confer.ai")

# Opus packets waiting for the pipe past which new ones are dropped: 40 s of one speaker at
# 20 ms frames (or 4 s of ten). Live captions feed every speaker continuously; a child that
# stops reading must not grow the parent's memory without end.
MAX_QUEUED_PACKETS = 2000
BATCH = 256  # packets per pipe message at most


class WorkerGone(RuntimeError):
    """The worker process could not start, or died."""


class RequestFailed(RuntimeError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "audio" (the input) or "failed" (the model)


class WorkerClient:
    def __init__(self, config: WorkerConfig, on_caption: Callable[[dict[str, Any]], None]) -> None:
        self.config = config
        self.on_caption = on_caption
        self.info: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self.alive = False
        self.dropped = 0  # packets refused because the outbox was full

    async def start(self, limit: float) -> dict[str, Any]:
        self._loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        self._conn = parent
        self._ready = self._loop.create_future()
        self._proc = ctx.Process(
            target=child_main, args=(child, self.config), name="confer-ai", daemon=True
        )
        await asyncio.to_thread(self._proc.start)
        child.close()
        threading.Thread(target=self._read, name="ai-reader", daemon=True).start()
        threading.Thread(target=self._write, name="ai-writer", daemon=True).start()
        try:
            self.info = await asyncio.wait_for(self._ready, limit)
        except TimeoutError as exc:
            await self.stop()
            raise WorkerGone(f"the AI worker did not load its model within {limit:g} s") from exc
        except WorkerGone:
            await self.stop()
            raise
        self.alive = True
        return self.info

    # -- requests -------------------------------------------------------------------------

    async def recognize(
        self, data: bytes, fmt: str, sample_rate: int, language: str | None, limit: float
    ) -> dict[str, Any]:
        if not self.alive or self._loop is None:
            raise WorkerGone("the AI worker is not running")
        job_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[job_id] = fut
        self._outbox.put(("recognize", job_id, data, fmt, sample_rate, language))
        try:
            return await asyncio.wait_for(fut, limit)
        except TimeoutError as exc:
            # A request this late means the worker is wedged: replace it rather than queue more.
            log.error("AI request %s timed out after %s s; stopping the worker", job_id, limit)
            await self.stop()
            raise WorkerGone(f"recognition did not finish within {limit:g} s") from exc
        finally:
            self._pending.pop(job_id, None)

    def open_stream(
        self, key: int, meeting_id: int, user_id: int, language: str | None, tag: str
    ) -> None:
        self._outbox.put(("open", key, meeting_id, user_id, language, tag))

    def feed(self, key: int, payload: bytes, rtp_timestamp: int | None) -> None:
        if self._outbox.qsize() >= MAX_QUEUED_PACKETS:  # open/close/stop are never dropped
            self.dropped += 1
            return
        self._outbox.put(("packet", key, payload, rtp_timestamp))

    def close_stream(self, key: int) -> None:
        self._outbox.put(("close", key))

    # -- threads --------------------------------------------------------------------------

    def _write(self) -> None:
        """Send the outbox in order, consecutive packets as one message; None (from `stop`)
        ends the thread, also when it comes right after packets."""
        while True:
            msg = self._outbox.get()
            batch: list[tuple[Any, ...]] = []
            while msg and msg[0] == "packet":
                batch.append(msg[1:])
                msg = ()  # () = nothing left to send after the batch
                if len(batch) >= BATCH:
                    break
                with contextlib.suppress(queue.Empty):
                    msg = self._outbox.get_nowait()
            try:
                if batch:
                    self._conn.send(("audio", batch))
                if msg:
                    self._conn.send(msg)
            except (OSError, ValueError):
                return
            if msg is None:
                return

    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError, ValueError):
                break
            self._call(self._dispatch, msg)
        self._call(self._gone, "the AI worker process exited")

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(fn, *args)

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "caption":
            self.on_caption(msg[1])
        elif kind in ("result", "error"):
            fut = self._pending.get(msg[1])
            if fut is not None and not fut.done():
                if kind == "result":
                    fut.set_result(msg[2])
                else:
                    fut.set_exception(RequestFailed(msg[2], msg[3]))
        elif kind == "ready" and self._ready and not self._ready.done():
            self._ready.set_result(msg[1])
        elif kind == "failed" and self._ready and not self._ready.done():
            self._ready.set_exception(WorkerGone(msg[1]))

    def _gone(self, reason: str) -> None:
        self.alive = False
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(WorkerGone(reason))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(WorkerGone(reason))

    # -- shutdown -------------------------------------------------------------------------

    async def stop(self, grace: float = 5.0) -> None:
        self.alive = False
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        self._outbox.put(("stop",))
        self._outbox.put(None)
        await asyncio.to_thread(proc.join, grace)
        if proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, 2.0)
        if proc.is_alive():
            proc.kill()
            await asyncio.to_thread(proc.join, 2.0)
        if self._conn is not None:
            self._conn.close()
        self._gone("the AI worker was stopped")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
