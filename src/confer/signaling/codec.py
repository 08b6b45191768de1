"""Wire encodings, chosen per connection by WebSocket subprotocol; JSON when none is offered.

A broadcast is built once as an `Outbound` and encoded at most once per encoding in use, so
every recipient of one encoding is handed the very same `str` / `bytes` object, and framed
at most once per (encoding, deflate window) for the sockets written to directly (`wire.py`).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

from confer.signaling.proto.signaling_pb2 import Envelope as PbEnvelope
from confer.signaling.protocol import bad

JSON_SUBPROTOCOL = "confer.json.v1"
PROTOBUF_SUBPROTOCOL = "confer.protobuf.v1"


class JsonCodec:
    """The contract's encoding: one JSON object per text frame."""

    name = "json"
    binary = False

    def decode(self, data: str | bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise bad("The message is not valid JSON", str(exc)) from None

    def encode(self, msg: dict[str, Any]) -> str:
        # Text frames take `str`; orjson's bytes are valid UTF-8 by construction.
        return orjson.dumps(msg).decode()


_INT_FIELDS = ("type", "from_user_id", "to_user_id", "meeting_id")
_STR_FIELDS = ("id", "session_id", "peer_id", "timestamp", "to_peer_id")


class ProtobufCodec:
    """`proto/signaling.proto`: typed envelope fields, the payload as embedded JSON bytes."""

    name = "protobuf"
    binary = True

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, str):
            raise bad("This connection speaks Protobuf: send binary frames")
        env = PbEnvelope()
        try:
            env.ParseFromString(data)
        except Exception as exc:  # protobuf raises DecodeError and, for bad UTF-8, others
            raise bad("The message is not a valid Protobuf Envelope", str(exc)) from None
        out: dict[str, Any] = {}
        for key in _INT_FIELDS:
            value = getattr(env, key)
            if value:
                out[key] = value
        for key in _STR_FIELDS:
            value = getattr(env, key)
            if value:
                out[key] = value
        if env.payload:
            try:
                out["payload"] = orjson.loads(env.payload)
            except orjson.JSONDecodeError as exc:
                raise bad("`payload` must hold a UTF-8 JSON object", str(exc)) from None
        return out

    def encode(self, msg: dict[str, Any]) -> bytes:
        env = PbEnvelope()
        for key in _INT_FIELDS:
            value = msg.get(key)
            if value:
                setattr(env, key, value)
        for key in _STR_FIELDS:
            value = msg.get(key)
            if value:
                setattr(env, key, value)
        env.payload = orjson.dumps(msg.get("payload") or {})
        return env.SerializeToString()


JSON = JsonCodec()
PROTOBUF = ProtobufCodec()
Codec = JsonCodec | ProtobufCodec

BY_SUBPROTOCOL: dict[str, Codec] = {JSON_SUBPROTOCOL: JSON, PROTOBUF_SUBPROTOCOL: PROTOBUF}


def negotiate(offered: list[str]) -> tuple[Codec, str | None]:
    """Pick the first offered subprotocol we speak; JSON (and no subprotocol) otherwise."""
    for name in offered:
        codec = BY_SUBPROTOCOL.get(name)
        if codec is not None:
            return codec, name
    return JSON, None


def ws_frame(payload: bytes, binary: bool, window_bits: int) -> bytes:
    """One unmasked, unfragmented RFC 6455 data frame; compressed (RFC 7692, no context
    takeover) when `window_bits` is not 0."""
    first = 0x82 if binary else 0x81
    if window_bits:
        comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits, 5)
        payload = (comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first |= 0x40
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


class Outbound:
    """One server message, encoded lazily and at most once per encoding."""

    __slots__ = ("_frames", "_json", "_pb", "msg")

    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg
        self._json: str | None = None
        self._pb: bytes | None = None
        self._frames: dict[int, bytes] | None = None

    def frame(self, codec: Codec, window_bits: int) -> bytes:
        """The whole WebSocket frame, shared by every socket of this encoding and window."""
        key = window_bits << 1 | codec.binary
        frames = self._frames
        if frames is None:
            frames = self._frames = {}
        else:
            found = frames.get(key)
            if found is not None:
                return found
        data = self.wire(codec)
        built = frames[key] = ws_frame(
            data if isinstance(data, bytes) else data.encode(), codec.binary, window_bits
        )
        return built

    def wire(self, codec: Codec) -> str | bytes:
        if codec is JSON:
            if self._json is None:
                self._json = JSON.encode(self.msg)
            return self._json
        if self._pb is None:
            self._pb = PROTOBUF.encode(self.msg)
        return self._pb
