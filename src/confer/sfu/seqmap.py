"""Per-subscriber sequence number and timestamp rewriting across source switches.

A subscriber sees one outgoing stream per track while its source changes under it (simulcast
layer, screen share restarted, publisher reconnected, forwarding paused by a mute). Each source
run is a *segment* with fixed offsets; a new segment continues right after the last packet sent,
so the receiver never sees a jump back or a gap it would NACK forever. The last `MAX_SEGMENTS`
segments are kept so a NACK for an old outgoing number maps back to the source packet.

`SeqMap` is implemented in C (`_fanout.c`) because the forwarding loop maps every packet for
every subscriber there:

- ``map(source, seq, ts, now)`` -> ``(out_seq, out_ts)``, or None for a packet from before the
  current segment began. A new segment opens when the source changes or after ``restart()``;
  it starts one after the newest outgoing number, and its timestamps continue from the last
  one sent plus the wall-clock time since (at least 1 tick).
- ``source_of(out_seq)`` -> ``(source, source seq)``; ``ts_offset_of(out_seq)``;
  ``last_seq``, ``last_timestamp``, ``ts_offset`` (of the current segment) and ``sent``.
"""

from __future__ import annotations

from confer.sfu._fanout import MAX_SEGMENTS, SeqMap

__all__ = ["MAX_SEGMENTS", "SeqMap"]
