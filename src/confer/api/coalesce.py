"""uvicorn's HTTP/1.1 protocol, with a response's writes sent as one.

uvicorn writes the status line and headers when the app sends `http.response.start` and the
body when it sends `http.response.body`: two `send()` system calls and two TCP segments for
every response, though both come from the same step of the same task. On loopback the second
one, with its share of the receiver's TCP processing, was about a tenth of the CPU of an API
request. Here the transport holds what is written during one pass of the event loop and sends
it in one call at the end of that pass (`loop.call_soon`), or before the connection closes.

A WebSocket upgrade hands the plain transport to the WebSocket protocol
(`confer.signaling.wire`), which does its own batching. The protocol is used by `confer serve`
only while uvicorn is the pinned version the signaling wire already checks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from confer.signaling.wire import usable

# Bytes held before they are written at once: a response head and an API body fit; a large
# download goes straight to the transport, whose pause_writing keeps uvicorn's back-pressure.
HOLD_LIMIT = 64 * 1024


class CoalescingTransport:
    """A transport whose writes of one event-loop pass go out in one call."""

    __slots__ = ("_held", "_loop", "_pending", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._held = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._held += len(data)
        if self._held >= HOLD_LIMIT:  # a large body: the real transport's flow control rules
            self.flush()

    def get_write_buffer_size(self) -> int:
        return self._held + self.transport.get_write_buffer_size()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._held = self._pending, [], 0
        if not self.transport.is_closing():
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def handle_websocket_upgrade(self) -> None:
        wrapped = self.transport
        if isinstance(wrapped, CoalescingTransport):
            wrapped.flush()
            self.transport = wrapped.transport
        super().handle_websocket_upgrade()


def http_protocol_class() -> str:
    """What `confer serve` passes as uvicorn's `http`."""
    return f"{__name__}:CoalescingHttpToolsProtocol" if usable() else "auto"
