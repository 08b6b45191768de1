"""Receive statistics (RFC 3550 A.3/A.8) and bandwidth estimates.

`ReceiveStats` follows one upstream stream: loss and jitter for the receiver reports that let
the publisher's encoder back off under loss, and the gaps the SFU NACKs upstream.
`BandwidthEstimate` follows one subscriber: its REMB when it sends one, lowered by the loss it
reports, raised slowly while reports are clean; simulcast layer choice reads it.
`RateMeter` measures a stream's bitrate, which ranks simulcast layers.
"""

from __future__ import annotations

from confer.sfu.rtcp import ReportBlock

MAX_DROPOUT = 3000
MAX_NACK_GAP = 128


class ReceiveStats:
    __slots__ = (
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_max_seq",
        "_received_prior",
        "_transit",
        "clock_rate",
        "jitter",
        "last_sr_arrival",
        "last_sr_ntp",
        "missing",
        "received",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._base_seq = -1
        self._max_seq = 0
        self._cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit: float | None = None
        self.jitter = 0.0
        self.last_sr_ntp = 0
        self.last_sr_arrival = 0.0
        self.missing: set[int] = set()

    def update(self, seq: int, ts: int, arrival: float) -> bool:
        """Account for one packet; False when it is a duplicate or far out of order."""
        if self._base_seq < 0:
            self._base_seq = self._max_seq = seq
            self.received = 1
            return True
        delta = (seq - self._max_seq) & 0xFFFF
        if 0 < delta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 0x10000
            if 1 < delta <= MAX_NACK_GAP:
                for i in range(1, delta):
                    self.missing.add((self._max_seq + i) & 0xFFFF)
            elif delta > MAX_NACK_GAP:
                self.missing.clear()
            self._max_seq = seq
        elif delta == 0:
            return False
        elif seq in self.missing:
            self.missing.discard(seq)
        elif delta < 0x10000 - 100:  # a restart of the sender: resynchronise
            self._base_seq = self._max_seq = seq
            self._cycles = 0
            self._expected_prior = self._received_prior = 0
            self.received = 0
            self.missing.clear()
        else:
            return False  # duplicate or late retransmission
        self.received += 1
        transit = arrival * self.clock_rate - ts
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.clock_rate * 10:
                self.jitter += (d - self.jitter) / 16
        self._transit = transit
        return True

    @property
    def extended_max(self) -> int:
        return self._cycles + self._max_seq

    def report(self, ssrc: int, now: float) -> ReportBlock:
        expected = self.extended_max - self._base_seq + 1
        lost = expected - self.received
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = max(-0x800000, min(0x7FFFFF, lost))
        dlsr = 0
        if self.last_sr_arrival:
            dlsr = int((now - self.last_sr_arrival) * 65536)
        return ReportBlock(
            ssrc, fraction, lost, self.extended_max, int(self.jitter), self.last_sr_ntp, dlsr
        )


class BandwidthEstimate:
    __slots__ = ("_last_change", "_loss_based", "ceiling", "floor", "remb")

    def __init__(self, start: int = 1_000_000, floor: int = 100_000, ceiling: int = 8_000_000):
        self.floor, self.ceiling = floor, ceiling
        self._loss_based = float(start)
        self.remb: int | None = None
        self._last_change = 0.0

    @property
    def bitrate(self) -> int:
        value = self._loss_based if self.remb is None else min(self._loss_based, self.remb)
        return int(max(self.floor, min(self.ceiling, value)))

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate
        # a REMB is a delay-based ceiling; the loss-based part may rise to it quickly
        self._loss_based = max(self._loss_based, min(bitrate, self.ceiling) * 0.85)

    def on_loss(self, fraction: float, now: float) -> None:
        """`fraction` lost in [0, 1] from a receiver report (Chrome's loss controller rules)."""
        if now - self._last_change < 0.3:
            return
        self._last_change = now
        if fraction > 0.10:
            self._loss_based *= 1 - 0.5 * fraction
        elif fraction < 0.02:
            self._loss_based = min(self.ceiling, self._loss_based * 1.08)
        self._loss_based = max(self.floor, self._loss_based)


class RateMeter:
    """Bits per second over a sliding window of one-second buckets."""

    __slots__ = ("_bucket", "_bucket_start", "_history", "bitrate")

    def __init__(self) -> None:
        self._bucket = 0
        self._bucket_start = 0.0
        self._history: list[int] = []
        self.bitrate = 0

    def add(self, size: int, now: float) -> None:
        if now - self._bucket_start >= 1.0:
            self.roll(now)
        self._bucket += size

    def roll(self, now: float) -> None:
        if self._bucket_start:
            self._history.append(self._bucket * 8)
            self._history = self._history[-3:]
            self.bitrate = sum(self._history) // len(self._history)
        self._bucket = 0
        self._bucket_start = now
