"""RTP packets as bytes: parse just enough to route, rewrite headers in place.

The forwarder never builds packet objects on its hot path: it reads a few header fields by
offset and patches a copy. `RtpView` is the parsed, validated layout of one packet; the helpers
beside it rewrite payload type / sequence number / timestamp / SSRC, header-extension IDs
(RFC 8285), abs-send-time, and wrap / unwrap RTX (RFC 4588).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_SIZE = 12
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000

_SEQ_TS_SSRC = struct.Struct("!HII")
_U16 = struct.Struct("!H")


@dataclass(slots=True)
class RtpView:
    """Offsets and header fields of one RTP packet (no copy of the payload)."""

    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    ext_profile: int  # 0 when the packet has no extension block
    ext_start: int  # first byte of the extension elements
    ext_end: int
    payload_start: int
    payload_end: int  # excludes padding


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 sit where RTP has M+PT."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse(data: bytes | bytearray | memoryview) -> RtpView:
    """Validate and locate the parts of an RTP packet; ValueError when it is malformed."""
    n = len(data)
    if n < HEADER_SIZE:
        raise ValueError("RTP packet shorter than its fixed header")
    b0 = data[0]
    if b0 >> 6 != 2:
        raise ValueError("RTP version is not 2")
    cc = b0 & 0x0F
    offset = HEADER_SIZE + 4 * cc
    if offset > n:
        raise ValueError("RTP CSRC list overruns the packet")
    ext_profile = ext_start = ext_end = 0
    if b0 & 0x10:
        if offset + 4 > n:
            raise ValueError("RTP extension header overruns the packet")
        ext_profile, words = struct.unpack_from("!HH", data, offset)
        ext_start = offset + 4
        ext_end = ext_start + 4 * words
        if ext_end > n:
            raise ValueError("RTP extension block overruns the packet")
        offset = ext_end
    end = n
    if b0 & 0x20:
        pad = data[n - 1]
        if pad == 0 or offset + pad > n:
            raise ValueError("RTP padding length is invalid")
        end = n - pad
    seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    b1 = data[1]
    return RtpView(
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        ext_profile=ext_profile,
        ext_start=ext_start,
        ext_end=ext_end,
        payload_start=offset,
        payload_end=end,
    )


def extensions(data: bytes | bytearray, view: RtpView) -> list[tuple[int, int, int]]:
    """The (id, value offset, value length) of each header extension element."""
    out: list[tuple[int, int, int]] = []
    pos, end = view.ext_start, view.ext_end
    if view.ext_profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            ext_id, length = b >> 4, (b & 0x0F) + 1
            if ext_id == 15:  # reserved: stop parsing (RFC 8285 section 4.2)
                break
            if pos + 1 + length > end:
                raise ValueError("RTP one-byte extension overruns its block")
            out.append((ext_id, pos + 1, length))
            pos += 1 + length
    elif view.ext_profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos < end:
            ext_id = data[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise ValueError("RTP two-byte extension header overruns its block")
            length = data[pos + 1]
            if pos + 2 + length > end:
                raise ValueError("RTP two-byte extension overruns its block")
            out.append((ext_id, pos + 2, length))
            pos += 2 + length
    return out


def find_extension(data: bytes | bytearray, view: RtpView, ext_id: int) -> tuple[int, int] | None:
    """(offset, length) of the value of extension `ext_id`, or None."""
    if not ext_id or not view.ext_profile:
        return None
    for found, offset, length in extensions(data, view):
        if found == ext_id:
            return offset, length
    return None


def remap_extensions(
    buf: bytearray, view: RtpView, id_map: dict[int, int], abs_id: int = 0, now: float = 0.0
) -> None:
    """Rewrite extension IDs in place; an ID mapped to 0 (or absent) becomes padding.

    Padding keeps the block's size, so nothing after it moves and no copy is needed. The
    element that ends up as `abs_id` (abs-send-time) gets `now` as its value.
    """
    two_byte = view.ext_profile != ONE_BYTE_PROFILE
    for ext_id, offset, length in extensions(buf, view):
        new_id = id_map.get(ext_id, 0)
        if two_byte:
            if new_id:
                buf[offset - 2] = new_id
            else:
                buf[offset - 2 : offset + length] = bytes(length + 2)
        elif new_id:
            buf[offset - 1] = (new_id << 4) | (length - 1)
        else:
            buf[offset - 1 : offset + length] = bytes(length + 1)
        if new_id and new_id == abs_id and length == 3:
            buf[offset : offset + 3] = abs_send_time(now).to_bytes(3, "big")


def abs_send_time(now: float) -> int:
    """The 24-bit 6.18 fixed-point seconds of abs-send-time."""
    return int(now * (1 << 18)) & 0xFFFFFF


def set_header(buf: bytearray, marker: bool, pt: int, seq: int, ts: int, ssrc: int) -> None:
    buf[1] = (0x80 if marker else 0) | pt
    _SEQ_TS_SSRC.pack_into(buf, 2, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def unwrap_rtx(data: bytes | bytearray, view: RtpView, media_pt: int, media_ssrc: int) -> bytes:
    """Rebuild the original packet carried by an RTX packet (OSN first in its payload)."""
    start = view.payload_start
    if view.payload_end - start < 2:
        raise ValueError("RTX packet without an original sequence number")
    (osn,) = _U16.unpack_from(data, start)
    buf = bytearray(data[:start])
    buf[0] &= 0xDF  # the padding of the RTX packet is dropped with it
    buf += data[start + 2 : view.payload_end]
    set_header(buf, view.marker, media_pt, osn, view.timestamp, media_ssrc)
    return bytes(buf)


def wrap_rtx(
    data: bytes | bytearray, view: RtpView, rtx_pt: int, rtx_ssrc: int, rtx_seq: int
) -> bytearray:
    """An RTX packet retransmitting `data` (already rewritten for the receiver)."""
    start = view.payload_start
    buf = bytearray(data[:start])
    buf[0] &= 0xDF
    buf += _U16.pack(view.sequence_number)
    buf += data[start : view.payload_end]
    set_header(buf, view.marker, rtx_pt, rtx_seq, view.timestamp, rtx_ssrc)
    return buf


def build(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
    extensions_one_byte: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """Serialize a packet (used by bots, tests and padding probes, not by forwarding)."""
    ext = b""
    if extensions_one_byte:
        body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in extensions_one_byte)
        body += bytes(-len(body) % 4)
        ext = struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + body
    b0 = 0x80 | (0x10 if ext else 0)
    head = bytearray(HEADER_SIZE)
    head[0] = b0
    set_header(head, marker, pt, seq, ts, ssrc)
    return bytes(head) + ext + payload


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number `a` comes after `b` (RFC 1982 arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def seq_delta(a: int, b: int) -> int:
    """Signed distance from `b` to `a` in 16-bit sequence space."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d
