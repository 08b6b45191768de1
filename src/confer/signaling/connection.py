"""One WebSocket as the hub sees it: a bounded send queue, a rate limit, an activity clock.

Sends never block the caller. With a `Wire` (uvicorn under `confer serve`, see `wire.py`) a
message is written straight to the socket's transport while the transport accepts writes,
as frame bytes shared by the whole broadcast; otherwise, and while the transport is paused
(its buffer above the high-water mark), messages are queued and written by a short-lived
flusher task. So one client that cannot keep up only ever fills its own queue. When the
queue is full the connection is given up (`SLOW_CONSUMER`) instead of holding the room back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from confer.signaling.codec import Codec, Outbound
from confer.signaling.protocol import CloseCode

if TYPE_CHECKING:
    from confer.signaling.wire import Wire

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
CLOSE_TIMEOUT = 5.0
# How long a dropped slow consumer may take to read what it has and see its close frame.
ABORT_TIMEOUT = 30.0


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class Connection:
    __slots__ = (
        "_close_task",
        "_flusher",
        "_send",
        "abuse",
        "close_code",
        "close_reason",
        "closed",
        "codec",
        "finished",
        "last_activity",
        "on_overflow",
        "queue",
        "queue_limit",
        "rate",
        "window",
        "wire",
    )

    def __init__(
        self,
        send: Send,
        codec: Codec,
        *,
        queue_limit: int,
        rate: float,
        burst: float,
        on_overflow: Callable[[Connection], None] | None = None,
        wire: Wire | None = None,
    ) -> None:
        self._send = send
        self.codec = codec
        self.wire = wire
        # The deflate window of the broadcast frame this socket takes (0: uncompressed);
        # None: frames of its own (no wire, or a deflate context that carries over).
        self.window: int | None = wire.key if wire is not None else None
        self.queue: deque[str | bytes] = deque()
        self.queue_limit = queue_limit
        self._flusher: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_activity = time.monotonic()
        self.rate = TokenBucket(rate, burst)
        # Refused messages (malformed, not allowed, over the rate): sustained abuse closes.
        self.abuse = TokenBucket(max(1.0, rate / 2), max(20.0, burst))
        self.on_overflow = on_overflow
        # Set when the server gave up on the socket: the endpoint then stops reading it.
        self.finished = asyncio.Event()

    # --- sending ----------------------------------------------------------------------------

    def push(self, out: Outbound) -> None:
        window = self.window
        if window is None:
            self.push_wire(out.wire(self.codec))
        elif not self.closed:
            data = out.frame(self.codec, window)
            wire = self.wire
            assert wire is not None  # a window is only set with a wire
            # The common case inline (50,000 times a second in a busy server).
            transport = wire.transport
            if not self.queue and wire.writable.is_set() and not transport.is_closing():
                transport.write(data)
            else:
                self._put_frame(data)

    def push_wire(self, data: str | bytes) -> None:
        if self.closed:
            return
        wire = self.wire
        if wire is not None:
            try:
                self._put_frame(wire.single(data))
            except Exception:  # the socket is closing: the receive loop will notice
                self._gone()
            return
        self._enqueue(data, self._flush)

    def _enqueue(self, data: str | bytes, flush: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Queue behind what waits (closing a socket whose queue is full); start `flush`."""
        if self._full():
            return
        self.queue.append(data)
        if self._flusher is None:
            self._flusher = asyncio.create_task(flush())

    def _full(self) -> bool:
        if len(self.queue) < self.queue_limit:
            return False
        self.queue.clear()
        self.abort(CloseCode.SLOW_CONSUMER, "Send queue overflow: the client is too slow")
        if self.on_overflow is not None:
            self.on_overflow(self)
        return True

    def _gone(self) -> None:
        self.closed = True
        self.queue.clear()

    def _put_frame(self, data: bytes) -> None:
        """Write now if nothing waits and the transport takes it; queue it otherwise."""
        wire = self.wire
        assert wire is not None
        if not self.queue and wire.writable.is_set():
            if wire.open():
                wire.transport.write(data)
            else:
                self._gone()
            return
        self._enqueue(data, lambda: self._flush_frames(wire))

    async def _flush_frames(self, wire: Wire) -> None:
        queue = self.queue
        try:
            while queue:
                await wire.writable.wait()
                if not wire.open():
                    self._gone()
                    return
                while queue and wire.writable.is_set():
                    wire.transport.write(queue.popleft())  # type: ignore[arg-type]
        finally:
            self._flusher = None

    async def _flush(self) -> None:
        try:
            while self.queue:
                data = self.queue.popleft()
                if isinstance(data, str):
                    await self._send({"type": "websocket.send", "text": data})
                else:
                    await self._send({"type": "websocket.send", "bytes": data})
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer is gone; the receive loop will notice and clean up
            self._gone()
        finally:
            self._flusher = None

    # --- closing ----------------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        """Send what is queued, then a close frame; give up on a peer that does not read."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            if self._flusher is not None:
                # The flusher stops on its own when the queue is empty.
                await asyncio.wait_for(asyncio.shield(self._flusher), CLOSE_TIMEOUT)
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(self._send_close(code, reason), CLOSE_TIMEOUT)

    async def _send_close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    def abort(self, code: int, reason: str) -> None:
        """Close without waiting for the queue (it is dropped): for slow consumers."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self._close_task = asyncio.create_task(self._abort_close(code, reason))

    async def _abort_close(self, code: int, reason: str) -> None:
        try:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(self._send_close(code, reason), ABORT_TIMEOUT)
        finally:
            self.finished.set()

    def close_soon(self, code: int, reason: str) -> None:
        """Close from synchronous code (bus handlers, sweeps), after what is queued."""
        if self.closed or self._close_task is not None:
            return
        self._close_task = asyncio.create_task(self.close(code, reason))
