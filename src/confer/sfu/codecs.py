"""Codec knowledge the forwarder needs without decoding: keyframes and VP8/VP9 picture IDs.

A subscriber may only start (or switch simulcast layer) on a keyframe; the payload descriptors
say where one starts. VP8/VP9 picture IDs are rewritten across switches so that the
receiver's reference finder sees one continuous stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from confer.sfu import _fanout

OPUS, VP8, VP9, H264 = "opus", "vp8", "vp9", "h264"
SUPPORTED = (OPUS, VP8, VP9, H264)


def codec_name(mime: str) -> str:
    """'video/VP8' -> 'vp8'."""
    return mime.rsplit("/", 1)[-1].lower()


@dataclass(slots=True)
class Vp8Descriptor:
    """Offsets inside a VP8 payload (RFC 7741 section 4.2)."""

    start_of_partition: bool
    partition_id: int
    picture_id: int | None
    picture_id_offset: int  # 0 when absent
    picture_id_long: bool
    tl0picidx_offset: int  # 0 when absent
    header_size: int


def vp8_descriptor(payload: bytes | bytearray | memoryview) -> Vp8Descriptor:
    n = len(payload)
    if n < 1:
        raise ValueError("empty VP8 payload")
    b0 = payload[0]
    pos = 1
    pic = None
    pic_off = tl0_off = 0
    long_id = False
    if b0 & 0x80:  # X
        if n < 2:
            raise ValueError("VP8 extension byte missing")
        x = payload[1]
        pos = 2
        if x & 0x80:  # I
            if pos >= n:
                raise ValueError("VP8 picture id missing")
            pic_off = pos
            if payload[pos] & 0x80:
                if pos + 1 >= n:
                    raise ValueError("VP8 long picture id truncated")
                pic = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                long_id = True
                pos += 2
            else:
                pic = payload[pos] & 0x7F
                pos += 1
        if x & 0x40:  # L
            tl0_off = pos
            pos += 1
        if x & 0x30:  # T or K
            pos += 1
        if pos > n:
            raise ValueError("VP8 descriptor overruns the payload")
    return Vp8Descriptor(bool(b0 & 0x10), b0 & 0x07, pic, pic_off, long_id, tl0_off, pos)


def vp8_is_keyframe(payload: bytes | bytearray | memoryview) -> bool:
    try:
        d = vp8_descriptor(payload)
    except ValueError:
        return False
    if not d.start_of_partition or d.partition_id != 0 or d.header_size >= len(payload):
        return False
    return payload[d.header_size] & 0x01 == 0  # P bit clear: key frame


def vp8_frame_size(payload: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's header, or None."""
    if not vp8_is_keyframe(payload):
        return None
    h = vp8_descriptor(payload).header_size
    if len(payload) < h + 10 or payload[h + 3 : h + 6] != b"\x9d\x01\x2a":
        return None
    width = (payload[h + 6] | (payload[h + 7] << 8)) & 0x3FFF
    height = (payload[h + 8] | (payload[h + 9] << 8)) & 0x3FFF
    return width, height


def vp9_is_keyframe(payload: bytes | bytearray | memoryview) -> bool:
    """Start of a non-inter-predicted frame on the base spatial layer (RFC 9628)."""
    n = len(payload)
    if n < 1:
        return False
    b0 = payload[0]
    if b0 & 0x40 or not b0 & 0x08:  # P set, or not B (beginning of frame)
        return False
    if not b0 & 0x20:  # no layer indices: single layer stream
        return True
    pos = 1
    if b0 & 0x80:  # I: picture id
        if pos >= n:
            return False
        pos += 2 if payload[pos] & 0x80 else 1
    if pos >= n:
        return False
    return (payload[pos] >> 1) & 0x07 == 0  # spatial id 0


def vp9_picture_id(payload: bytes | bytearray | memoryview) -> tuple[int, int, bool] | None:
    """(picture id, offset, long) of a VP9 payload, or None."""
    if len(payload) < 2 or not payload[0] & 0x80:
        return None
    if payload[1] & 0x80:
        if len(payload) < 3:
            return None
        return ((payload[1] & 0x7F) << 8) | payload[2], 1, True
    return payload[1] & 0x7F, 1, False


def h264_is_keyframe(payload: bytes | bytearray | memoryview) -> bool:
    """An IDR slice or SPS starts here (single NAL, STAP-A or the first FU-A fragment)."""
    n = len(payload)
    if n < 1:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: 16-bit sizes then NAL units
        pos = 1
        while pos + 2 < n:
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0 or pos + 2 + size > n:
                return False
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal == 28 and n >= 2:  # FU-A
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def is_keyframe(codec: str, payload: bytes | bytearray | memoryview) -> bool:
    if codec == VP8:
        return vp8_is_keyframe(payload)
    if codec == VP9:
        return vp9_is_keyframe(payload)
    if codec == H264:
        return h264_is_keyframe(payload)
    return codec == OPUS  # every audio packet is a valid starting point


def write_picture_id(buf: bytearray, offset: int, long_id: bool, value: int) -> None:
    if long_id:
        buf[offset] = 0x80 | ((value >> 8) & 0x7F)
        buf[offset + 1] = value & 0xFF
    else:
        buf[offset] = value & 0x7F


# Keeps VP8/VP9 picture IDs (and VP8 TL0PICIDX) continuous across source switches, in C
# because the forwarding loop runs it per packet per subscriber (`_fanout.c`). `switch()` marks
# the next packet as a new source: its IDs are re-based to follow the last ones sent, and every
# later packet is shifted by the same offsets (`rewrite_vp8` / `rewrite_vp9(buf, start)`);
# `apply(buf, start, vp9)` shifts a retransmission without moving any state.
PictureIdMunger = _fanout.Munger
