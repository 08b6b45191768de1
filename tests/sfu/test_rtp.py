"""RTP parsing and in-place rewriting, on packets shaped like Chromium's."""

from __future__ import annotations

import struct

import pytest

from confer.sfu import rtp

# VP8 packet as Chromium sends it: one-byte extensions (abs-send-time id 2, transport-cc id 3,
# mid id 4 = "1"), then a payload descriptor and two payload bytes.
CHROME_VP8 = bytes.fromhex(
    "90e01a2b"
    "0001e240"
    "11223344"  # V=2 X=1, M=1 PT=96, seq 6699, ts 123456, ssrc
    "bede0003"
    "22123456"
    "31002a40"
    "31000000"  # ext block: 3 words
    "9080"
    "8001"
    "1020"
)


def test_parse_reads_header_fields_and_offsets() -> None:
    v = rtp.parse(CHROME_VP8)
    assert (v.marker, v.payload_type, v.sequence_number) == (True, 96, 0x1A2B)
    assert (v.timestamp, v.ssrc) == (123456, 0x11223344)
    assert (v.ext_profile, v.ext_start, v.ext_end) == (0xBEDE, 16, 28)
    assert CHROME_VP8[v.payload_start : v.payload_end] == bytes.fromhex("908080011020")


def test_extensions_are_listed_with_value_offsets() -> None:
    v = rtp.parse(CHROME_VP8)
    found = [(i, CHROME_VP8[o : o + n]) for i, o, n in rtp.extensions(CHROME_VP8, v)]
    assert found == [(2, b"\x12\x34\x56"), (3, b"\x00\x2a"), (4, b"1")]
    assert rtp.find_extension(CHROME_VP8, v, 4) == (24, 1)
    assert rtp.find_extension(CHROME_VP8, v, 9) is None


def test_remap_turns_dropped_ids_into_padding_without_moving_bytes() -> None:
    buf = bytearray(CHROME_VP8)
    v = rtp.parse(buf)
    rtp.remap_extensions(buf, v, {2: 5, 3: 3})
    assert len(buf) == len(CHROME_VP8)
    v2 = rtp.parse(buf)
    found = [(i, bytes(buf[o : o + n])) for i, o, n in rtp.extensions(buf, v2)]
    assert found == [(5, b"\x12\x34\x56"), (3, b"\x00\x2a")]
    assert buf[v2.payload_start :] == CHROME_VP8[v.payload_start :]


def test_two_byte_extensions_are_parsed_and_remapped() -> None:
    ext = bytes([20, 2, 0xAA, 0xBB, 0, 7, 1, 0xCC]) + bytes(0)
    pkt = rtp.build(100, 1, 2, 3, b"\x01\x02")
    head = bytearray(pkt[:12])
    head[0] |= 0x10
    pkt2 = bytes(head) + struct.pack("!HH", 0x1000, 2) + ext + b"\x01\x02"
    v = rtp.parse(pkt2)
    assert [(i, n) for i, _, n in rtp.extensions(pkt2, v)] == [(20, 2), (7, 1)]
    buf = bytearray(pkt2)
    rtp.remap_extensions(buf, v, {7: 9})
    assert [(i, n) for i, _, n in rtp.extensions(buf, rtp.parse(buf))] == [(9, 1)]


def test_set_header_rewrites_pt_seq_ts_ssrc_and_keeps_marker() -> None:
    buf = bytearray(CHROME_VP8)
    rtp.set_header(buf, True, 102, 0x10005, 0x1_0000_0001, 0xDEADBEEF)
    v = rtp.parse(buf)
    assert (v.marker, v.payload_type, v.sequence_number) == (True, 102, 5)
    assert (v.timestamp, v.ssrc) == (1, 0xDEADBEEF)


def test_rtx_wrap_then_unwrap_restores_the_packet() -> None:
    v = rtp.parse(CHROME_VP8)
    wrapped = rtp.wrap_rtx(CHROME_VP8, v, 97, 0x55, 900)
    w = rtp.parse(wrapped)
    assert (w.payload_type, w.ssrc, w.sequence_number) == (97, 0x55, 900)
    assert wrapped[w.payload_start : w.payload_start + 2] == b"\x1a\x2b"
    assert rtp.unwrap_rtx(wrapped, w, 96, 0x11223344) == CHROME_VP8


def test_padding_is_excluded_from_the_payload() -> None:
    pkt = bytearray(rtp.build(111, 1, 2, 3, b"\xaa\xbb" + bytes(3) + b"\x04"))
    pkt[0] |= 0x20
    v = rtp.parse(pkt)
    assert pkt[v.payload_start : v.payload_end] == b"\xaa\xbb"


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x80\x60" + bytes(9),  # shorter than the fixed header
        b"\x40\x60" + bytes(10),  # version 1
        b"\x8f\x60" + bytes(10),  # 15 CSRCs announced, none present
        b"\x90\x60" + bytes(10) + b"\xbe\xde\x00\x09",  # extension longer than packet
        b"\xa0\x60" + bytes(10) + b"\x00",  # padding count 0
        b"\xa0\x60" + bytes(10) + b"\x20",  # padding larger than packet
    ],
)
def test_malformed_packets_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        rtp.parse(bad)


def test_sequence_arithmetic_wraps() -> None:
    assert rtp.seq_newer(1, 65535) and not rtp.seq_newer(65535, 1)
    assert rtp.seq_delta(2, 65534) == 4 and rtp.seq_delta(65534, 2) == -4


def test_abs_send_time_is_6_18_fixed_point() -> None:
    assert rtp.abs_send_time(1.5) == (1 << 18) + (1 << 17)
    assert rtp.abs_send_time(64.0) == 0  # wraps every 64 s


def test_rtcp_is_told_apart_from_rtp() -> None:
    assert rtp.is_rtcp(b"\x81\xc9\x00\x01") and not rtp.is_rtcp(CHROME_VP8)
