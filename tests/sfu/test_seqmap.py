"""Outgoing sequence numbers and timestamps stay continuous across source switches."""

from __future__ import annotations

from confer.sfu.seqmap import SeqMap


def test_a_single_source_keeps_its_spacing_including_gaps_and_reordering() -> None:
    m = SeqMap(90000, first_seq=100, first_ts=5000)
    assert m.map(1, 65534, 1000, 0.0) == (100, 5000)
    assert m.map(1, 0, 4000, 0.1) == (102, 8000)  # 65535 lost: the gap is kept (NACKable)
    assert m.map(1, 65535, 1000, 0.1) == (101, 5000)  # late packet fills it
    assert m.source_of(101) == (1, 65535)


def test_switching_source_continues_right_after_the_last_packet() -> None:
    m = SeqMap(90000, first_seq=10, first_ts=0)
    m.map(1, 500, 90000, 1.0)
    m.map(1, 501, 93000, 1.033)
    seq, ts = m.map(2, 7000, 123, 1.066)  # a new layer with unrelated numbering
    assert seq == 12
    assert ts == (3000 + int(0.033 * 90000)) & 0xFFFFFFFF
    assert m.map(2, 7001, 3123, 1.1) == (13, ts + 3000)
    assert m.source_of(11) == (1, 501) and m.source_of(13) == (2, 7001)
    assert m.map(1, 502, 96000, 1.1) is not None  # switching back opens another segment


def test_packets_from_before_a_segment_are_refused() -> None:
    m = SeqMap(48000)
    m.map(1, 100, 0, 0.0)
    m.map(2, 900, 0, 0.02)
    assert m.map(2, 899, 0, 0.02) is None


def test_restart_closes_a_gap_left_by_a_pause() -> None:
    m = SeqMap(48000, first_seq=0)
    m.map(7, 10, 960, 0.0)
    m.restart()  # e.g. muted for 50 packets
    assert m.map(7, 60, 48960, 1.0)[0] == 1
