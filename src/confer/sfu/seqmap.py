"""Per-subscriber sequence number and timestamp rewriting across source switches.

A subscriber sees one outgoing stream per track while its source changes under it (simulcast
layer, screen share restarted, publisher reconnected, forwarding paused by a mute). Each source
run is a *segment* with fixed offsets; a new segment continues right after the last packet sent,
so the receiver never sees a jump back or a gap it would NACK forever. Segments are kept for a
while so a NACK for an old outgoing number maps back to the source packet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_SEGMENTS = 8


@dataclass(slots=True)
class Segment:
    source: int  # an opaque id of the upstream stream (its SSRC)
    out_start: int  # extended outgoing sequence number of the first packet
    seq_offset: int  # out = in + offset (mod 2^16)
    ts_offset: int  # out = in + offset (mod 2^32)


class SeqMap:
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
