"""RTCP: parse what Chromium sends, build what the SFU sends, round-trip both."""

from __future__ import annotations

import pytest

from confer.sfu import rtcp

# A compound packet as Chromium's receiver sends it: RR with one block + REMB + NACK + PLI.
CHROME_RR_REMB = bytes.fromhex(
    "81c90007"
    "0000aaaa"
    "11223344"
    "0a0000 05"
    "00011a2b"
    "00000010"
    "12345678"
    "00010000"
    "8fce0005"
    "0000aaaa"
    "00000000"
    "52454d42"
    "01 0b 5e 40"
    "11223344"
    "81cd0003"
    "0000aaaa"
    "11223344"
    "1a2c0005"
    "81ce0002"
    "0000aaaa"
    "11223344".replace(" ", "")
)


def test_parses_each_part_of_a_compound_packet() -> None:
    rr, remb, nack, pli = rtcp.parse(CHROME_RR_REMB)
    assert isinstance(rr, rtcp.ReceiverReport) and rr.ssrc == 0xAAAA
    block = rr.reports[0]
    assert (block.ssrc, block.fraction_lost, block.packets_lost) == (0x11223344, 10, 5)
    assert (block.highest_seq, block.jitter, block.dlsr) == (0x11A2B, 16, 65536)
    assert isinstance(remb, rtcp.Remb) and remb.ssrcs == [0x11223344]
    assert remb.bitrate == (0x35E40 << 2)
    assert isinstance(nack, rtcp.Nack) and nack.lost == [0x1A2C, 0x1A2D, 0x1A2F]
    assert isinstance(pli, rtcp.Pli) and pli.media_ssrc == 0x11223344


def test_sender_report_round_trips() -> None:
    block = rtcp.ReportBlock(5, 3, -2, 70000, 9, 1234, 99)
    sr = rtcp.SenderReport(7, rtcp.ntp_time(1_700_000_000.25), 90000, 10, 12000, [block])
    (back,) = rtcp.parse(rtcp.pack_sr(sr))
    assert back == sr


def test_nack_packing_groups_sequence_numbers_and_wraps() -> None:
    lost = [65534, 65535, 0, 3, 40]
    (nack,) = rtcp.parse(rtcp.pack_nack(1, 2, lost))
    assert sorted(nack.lost) == sorted(lost)
    assert len(rtcp.pack_nack(1, 2, lost)) == 12 + 4 * 2


def test_remb_keeps_bitrate_within_mantissa_precision() -> None:
    for bitrate in (0, 1, 250_000, 2_500_000, 30_000_000):
        (remb,) = rtcp.parse(rtcp.pack_remb(9, bitrate, [1, 2]))
        assert remb.ssrcs == [1, 2]
        assert bitrate * 0.999 <= remb.bitrate <= bitrate


def test_fir_pli_bye_and_rr_are_built_as_parsed() -> None:
    data = (
        rtcp.pack_rr(1, [rtcp.ReportBlock(2, 0, 0, 1, 0, 0, 0)])
        + rtcp.pack_fir(1, 3, 7)
        + rtcp.pack_pli(1, 4)
        + rtcp.pack_bye([3, 4])
        + rtcp.pack_sdes_cname(1, "confer")
    )
    rr, fir, pli, bye = rtcp.parse(data)
    assert isinstance(rr, rtcp.ReceiverReport) and rr.reports[0].ssrc == 2
    assert isinstance(fir, rtcp.Fir) and fir.entries == [(3, 7)]
    assert isinstance(pli, rtcp.Pli) and pli.media_ssrc == 4
    assert isinstance(bye, rtcp.Bye) and bye.ssrcs == [3, 4]


def test_rr_splits_beyond_31_blocks() -> None:
    blocks = [rtcp.ReportBlock(i, 0, 0, 0, 0, 0, 0) for i in range(40)]
    parts = rtcp.parse(rtcp.pack_rr(1, blocks))
    assert [len(p.reports) for p in parts] == [31, 9]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x81\xc9",
        b"\x41\xc9\x00\x01\x00\x00\x00\x01",  # version 1
        b"\x81\xc9\x00\x07\x00\x00\x00\x01",  # length beyond the data
        b"\x82\xc9\x00\x01\x00\x00\x00\x01",  # two report blocks announced, none present
        b"\x81\xcd\x00\x01\x00\x00\x00\x01",  # feedback without media ssrc
    ],
)
def test_broken_framing_raises_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        rtcp.parse(bad)


def test_unknown_parts_are_skipped() -> None:
    xr = bytes.fromhex("80cf00020000000105000000")
    data = xr + rtcp.pack_pli(1, 2)
    assert [type(p) for p in rtcp.parse(data)] == [rtcp.Pli]
