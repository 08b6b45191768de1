"""The one module that reaches into uvicorn / websockets internals (versions pinned below).

A room broadcast reaches a hundred sockets. Through ASGI each recipient costs a `send`
coroutine through the middleware wrappers, a websockets `Frame` object, its serialisation
and, with permessage-deflate, a compression of its own. Here the frame bytes are built once
per broadcast and written straight to each socket's transport:

1. `ConferWebSocketProtocol` (uvicorn's `ws=` class, set by `confer serve`) is uvicorn's
   websockets-sansio protocol that negotiates permessage-deflate with
   `server_no_context_takeover`, so one compressed frame is valid for every deflate peer with
   the same window size, and that puts a `Wire` for itself in the scope's extensions;
2. `Wire` reads the protocol's transport, its `writable` event (uvicorn's pause/resume
   writing), its close state and the negotiated extension (`conn.extensions`).

Everything else (handshake, reading, pings, close frames) stays uvicorn's. Served any other
way (plain `uvicorn --factory`, another ASGI server) there is no `Wire` and the signaling
falls back to ASGI sends. `check_internals()` raises when an upgrade moved something; the
tests call it, and the protocol is only used when it passes.
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.server import ServerProtocol

from confer.signaling.codec import ws_frame

log = logging.getLogger(__name__)

PINNED = {"uvicorn": "0.54.0", "websockets": "17.4"}
EXTENSION = "confer.wire"
# uvicorn's own permessage-deflate parameters, plus no context takeover on the server side.
_DEFLATE = {
    "server_max_window_bits": 12,
    "client_max_window_bits": 12,
    "server_no_context_takeover": True,
    "compress_settings": {"memLevel": 5},
}


class InternalsMoved(RuntimeError):
    """A uvicorn / websockets upgrade moved something the fast send path relies on."""


def check_internals() -> None:
    """Raise InternalsMoved naming every internal that is not where this module expects it."""
    problems = [
        f"{name} is {version(name)}, confer.signaling.wire is pinned to {pinned}"
        for name, pinned in PINNED.items()
        if version(name) != pinned
    ]
    proto_attrs = ("transport", "writable", "conn", "scope")
    probe = WebSocketsSansIOProtocol.__init__.__code__.co_names
    for attr in proto_attrs:
        if attr != "scope" and attr not in probe:
            problems.append(f"WebSocketsSansIOProtocol no longer sets `{attr}` in __init__")
    for method in ("handle_connect", "send", "receive"):
        if not hasattr(WebSocketsSansIOProtocol, method):
            problems.append(f"WebSocketsSansIOProtocol.{method} is gone")
    if "scope" not in WebSocketsSansIOProtocol.handle_connect.__code__.co_names:
        problems.append("WebSocketsSansIOProtocol.handle_connect no longer builds `self.scope`")
    for attr in ("local_no_context_takeover", "local_max_window_bits"):
        if attr not in PerMessageDeflate.__init__.__code__.co_names:
            problems.append(f"PerMessageDeflate no longer has `{attr}`")
    if "extensions" not in ServerProtocol.process_request.__code__.co_names:
        problems.append("websockets ServerProtocol no longer records `extensions`")
    if problems:
        raise InternalsMoved("; ".join(problems))


def usable() -> bool:
    try:
        check_internals()
    except InternalsMoved as exc:
        log.warning("signaling fast send path disabled: %s", exc)
        return False
    return True


def ws_protocol_class() -> str:
    """What `confer serve` passes as uvicorn's `ws`: ours when the internals are in place."""
    return f"{__name__}:ConferWebSocketProtocol" if usable() else "auto"


class Wire:
    """Direct writes to one accepted socket, in order with uvicorn's own writes."""

    __slots__ = ("conn", "key", "proto", "transport", "writable")

    def __init__(self, proto: ConferWebSocketProtocol) -> None:
        self.proto = proto
        self.transport: asyncio.Transport = proto.transport
        self.writable: asyncio.Event = proto.writable
        self.conn: ServerProtocol = proto.conn
        deflate = [e for e in self.conn.extensions if isinstance(e, PerMessageDeflate)]
        # (binary?, window bits) names the frame every such socket can take; None when the
        # peer's deflate context carries over from message to message (frames of its own).
        self.key: int | None = 0
        if deflate:
            ext = deflate[0]
            self.key = ext.local_max_window_bits if ext.local_no_context_takeover else None

    def open(self) -> bool:
        """False once a close frame went out or the socket is gone. uvicorn closes the
        transport as it writes its own close frames (the peer's close echoed, keepalive
        timeout, protocol error, shutdown); the app's close is the `Connection`'s and it
        stops writing first."""
        return not self.transport.is_closing()

    def own_frame(self, data: str | bytes) -> bytes:
        """A frame for this socket alone (compressed with its running context, if any)."""
        if isinstance(data, str):
            self.conn.send_text(data.encode())
        else:
            self.conn.send_binary(data)
        return b"".join(self.conn.data_to_send())

    def single(self, data: str | bytes) -> bytes:
        if self.key is None:
            return self.own_frame(data)
        binary = isinstance(data, bytes)
        return ws_frame(data if binary else data.encode(), binary, self.key)


class ConferWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with shared-frame deflate and a `Wire`."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[ServerPerMessageDeflateFactory(**_DEFLATE)],  # type: ignore[arg-type]
                max_size=self.config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self.response.status_code == 101:
            # The ASGI task starts on the next loop turn, with this very scope dict.
            scope.setdefault("extensions", {})[EXTENSION] = Wire(self)
