"""Length-prefixed JSON frames between the API process and SFU workers (a Unix socketpair)."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson

MAX_FRAME = 4 * 1024 * 1024
_LEN = struct.Struct("!I")


def encode(msg: dict[str, Any]) -> bytes:
    body = orjson.dumps(msg)
    return _LEN.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next frame, or None at end of stream."""
    try:
        head = await reader.readexactly(4)
        (size,) = _LEN.unpack(head)
        if size > MAX_FRAME:
            raise ValueError("IPC frame too large")
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    msg = orjson.loads(body)
    if not isinstance(msg, dict):
        raise ValueError("IPC frame is not an object")
    return msg
