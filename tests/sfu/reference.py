"""The Python forwarding code that _fanout.c replaced, kept as the model the C is checked against.

`ReferenceSeqMap` and `ReferenceMunger` are the former `seqmap.SeqMap` and
`codecs.PictureIdMunger`; `reference_write` is the former `DownTrack.write` (with the template
step of `UpTrack.forward`). The differential tests in test_fanout.py feed the same packets to
these and to the C code and require identical results.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from confer.sfu import rtp
from confer.sfu.codecs import vp8_descriptor, vp9_picture_id, write_picture_id

MAX_SEGMENTS = 8


@dataclass(slots=True)
class Segment:
    source: int  # an opaque id of the upstream stream (its SSRC)
    out_start: int  # extended outgoing sequence number of the first packet
    seq_offset: int  # out = in + offset (mod 2^16)
    ts_offset: int  # out = in + offset (mod 2^32)


class ReferenceSeqMap:
    """Maps (source, seq, ts) to outgoing (seq, ts) for one outgoing stream."""

    __slots__ = (
        "_clock_rate",
        "_high_ext",
        "_last_in_seq",
        "_last_out_ts",
        "_last_wall",
        "_restart",
        "_segments",
        "sent",
    )

    def __init__(self, clock_rate: int, first_seq: int = 0, first_ts: int = 0) -> None:
        self._clock_rate = clock_rate
        self._segments: deque[Segment] = deque(maxlen=MAX_SEGMENTS)
        self._high_ext = first_seq - 1  # extended outgoing seq of the newest packet sent
        self._last_out_ts = first_ts
        self._last_wall = 0.0
        self._last_in_seq = 0
        self._restart = True
        self.sent = 0

    @property
    def last_seq(self) -> int:
        return self._high_ext & 0xFFFF

    @property
    def last_timestamp(self) -> int:
        return self._last_out_ts

    @property
    def ts_offset(self) -> int | None:
        return self._segments[-1].ts_offset if self._segments else None

    def restart(self) -> None:
        """The next packet opens a new segment even if it comes from the same source."""
        self._restart = True

    def map(self, source: int, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """Outgoing (seq, ts) of a packet; None for a packet too old to place."""
        seg = self._segments[-1] if self._segments else None
        if self._restart or seg is None or seg.source != source:
            self._restart = False
            out_start = self._high_ext + 1
            ts_step = 1
            if self.sent:
                ts_step = max(1, int((now - self._last_wall) * self._clock_rate))
            seg = Segment(
                source,
                out_start,
                (out_start - seq) & 0xFFFF,
                (self._last_out_ts + (ts_step if self.sent else 0) - ts) & 0xFFFFFFFF,
            )
            self._segments.append(seg)
            self._last_in_seq = (seq - 1) & 0xFFFF
        delta = ((seq - self._last_in_seq + 0x8000) & 0xFFFF) - 0x8000
        out_ext = self._high_ext + delta
        if out_ext < seg.out_start:  # from before this segment began: cannot be placed
            return None
        out_ts = (ts + seg.ts_offset) & 0xFFFFFFFF
        if out_ext > self._high_ext:
            self._high_ext = out_ext
            self._last_in_seq = seq
            self._last_out_ts = out_ts
            self._last_wall = now
        self.sent += 1
        return out_ext & 0xFFFF, out_ts

    def _segment_of(self, out_seq: int) -> tuple[Segment, int] | None:
        back = (self._high_ext - out_seq) & 0xFFFF
        if back >= 0x8000:
            return None
        out_ext = self._high_ext - back
        for seg in reversed(self._segments):
            if out_ext >= seg.out_start:
                return seg, out_ext
        return None

    def ts_offset_of(self, out_seq: int) -> int | None:
        found = self._segment_of(out_seq)
        return found[0].ts_offset if found else None

    def source_of(self, out_seq: int) -> tuple[int, int] | None:
        """(source, source seq) of an outgoing sequence number, for NACKs."""
        found = self._segment_of(out_seq)
        if found is None:
            return None
        seg, out_ext = found
        return seg.source, (out_ext - seg.seq_offset) & 0xFFFF


class ReferenceMunger:
    """Keeps VP8/VP9 picture IDs (and VP8 TL0PICIDX) continuous across source switches.

    While no switch has shifted the numbering (the common case: one source), a packet costs
    one reference kept; the last packet sent is parsed only when a switch comes."""

    __slots__ = ("_last", "_pic_offset", "_switch", "_tl0_offset")

    def __init__(self) -> None:
        self._pic_offset = 0
        self._tl0_offset = 0
        self._last: tuple[bytearray, int, bool] | None = None  # (packet, payload start, vp9)
        self._switch = False

    def switch(self) -> None:
        """The next packet starts a new source: re-base its IDs after the last ones sent."""
        self._switch = True

    def _previous(self) -> tuple[int | None, int | None]:
        """Picture id and TL0PICIDX of the last packet sent, as sent."""
        if self._last is None:
            return None, None
        buf, start, vp9 = self._last
        view = memoryview(buf)[start : start + 6]
        if vp9:
            found = vp9_picture_id(view)
            return (found[0] if found else None), None
        try:
            d = vp8_descriptor(view)
        except ValueError:
            return None, None
        tl0 = buf[start + d.tl0picidx_offset] if d.tl0picidx_offset else None
        return d.picture_id, tl0

    def rewrite_vp8(self, buf: bytearray, payload_start: int) -> None:
        if not (self._switch or self._pic_offset or self._tl0_offset):
            self._last = (buf, payload_start, False)
            return
        try:
            d = vp8_descriptor(memoryview(buf)[payload_start : payload_start + 6])
        except ValueError:
            return
        if d.picture_id is None:
            return
        mod = 0x8000 if d.picture_id_long else 0x80
        at_tl0 = payload_start + d.tl0picidx_offset if d.tl0picidx_offset else 0
        if self._switch:
            self._switch = False
            prev_pic, prev_tl0 = self._previous()
            self._pic_offset = 0 if prev_pic is None else (prev_pic + 1 - d.picture_id) % mod
            self._tl0_offset = 0
            if at_tl0 and prev_tl0 is not None:
                self._tl0_offset = (prev_tl0 + 1 - buf[at_tl0]) & 0xFF
        if self._pic_offset:
            value = (d.picture_id + self._pic_offset) % mod
            write_picture_id(buf, payload_start + d.picture_id_offset, d.picture_id_long, value)
        if at_tl0 and self._tl0_offset:
            buf[at_tl0] = (buf[at_tl0] + self._tl0_offset) & 0xFF
        self._last = (buf, payload_start, False)

    def apply(self, buf: bytearray, payload_start: int, vp9: bool) -> None:
        """Shift IDs by the current offsets without moving any state (retransmissions)."""
        view = memoryview(buf)[payload_start : payload_start + 6]
        if vp9:
            found = vp9_picture_id(view)
            if found and self._pic_offset:
                pic, offset, long_id = found
                mod = 0x8000 if long_id else 0x80
                write_picture_id(
                    buf, payload_start + offset, long_id, (pic + self._pic_offset) % mod
                )
            return
        try:
            d = vp8_descriptor(view)
        except ValueError:
            return
        if d.picture_id is not None and self._pic_offset:
            mod = 0x8000 if d.picture_id_long else 0x80
            value = (d.picture_id + self._pic_offset) % mod
            write_picture_id(buf, payload_start + d.picture_id_offset, d.picture_id_long, value)
        if d.tl0picidx_offset and self._tl0_offset:
            at = payload_start + d.tl0picidx_offset
            buf[at] = (buf[at] + self._tl0_offset) & 0xFF

    def rewrite_vp9(self, buf: bytearray, payload_start: int) -> None:
        if not (self._switch or self._pic_offset):
            self._last = (buf, payload_start, True)
            return
        found = vp9_picture_id(memoryview(buf)[payload_start : payload_start + 3])
        if found is None:
            return
        pic, offset, long_id = found
        mod = 0x8000 if long_id else 0x80
        if self._switch:
            self._switch = False
            prev_pic, _ = self._previous()
            self._pic_offset = 0 if prev_pic is None else (prev_pic + 1 - pic) % mod
        if self._pic_offset:
            write_picture_id(buf, payload_start + offset, long_id, (pic + self._pic_offset) % mod)
        self._last = (buf, payload_start, True)


def reference_write(
    data: bytes,
    seqmap: ReferenceSeqMap,
    munger: ReferenceMunger | None,
    vp9: bool,
    source: int,
    pt: int,
    ssrc: int,
    id_map: dict[int, int],
    abs_id: int,
    now: float,
) -> bytes | None:
    """What the Python DownTrack sent for one packet (None: not sent)."""
    view = rtp.parse(data)
    buf = bytearray(data)
    if view.ext_profile:
        rtp.remap_extensions(buf, view, id_map, abs_id, now)
    out = seqmap.map(source, view.sequence_number, view.timestamp, now)
    if out is None:
        return None
    rtp.set_header(buf, view.marker, pt, out[0], out[1], ssrc)
    if munger is not None and view.payload_start < view.payload_end:
        if vp9:
            munger.rewrite_vp9(buf, view.payload_start)
        else:
            munger.rewrite_vp8(buf, view.payload_start)
    return bytes(buf)
