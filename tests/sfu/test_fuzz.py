"""Malformed RTP, RTCP and codec payloads: parsers raise ValueError or succeed, never crash."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from confer.sfu import codecs, rtcp, rtp
from confer.sfu.seqmap import SeqMap

FUZZ = settings(max_examples=400, deadline=None)


def rtp_like() -> st.SearchStrategy[bytes]:
    """Mostly well-formed headers with random extension blocks, lengths and padding bits."""
    return st.builds(
        lambda b0, b1, rest, ext_words, body: (
            bytes([0x80 | (b0 & 0x3F), b1])
            + rest
            + (struct.pack("!HH", 0xBEDE, ext_words) if b0 & 0x10 else b"")
            + body
        ),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(min_size=10, max_size=10),
        st.integers(0, 8),
        st.binary(max_size=64),
    )


@FUZZ
@given(st.one_of(st.binary(max_size=80), rtp_like()))
def test_rtp_parse_and_rewrite_never_crash(data: bytes) -> None:
    try:
        view = rtp.parse(data)
    except ValueError:
        return
    assert view.payload_start <= view.payload_end <= len(data)
    buf = bytearray(data)
    try:
        rtp.remap_extensions(buf, view, {1: 2, 2: 1})
        found = rtp.extensions(buf, view)
    except ValueError:
        return
    assert len(buf) == len(data)
    assert all(view.ext_start <= off and off + n <= view.ext_end for _, off, n in found)
    with contextlib.suppress(ValueError):
        rtp.unwrap_rtx(data, view, 96, 1)


def rtcp_like() -> st.SearchStrategy[bytes]:
    part = st.builds(
        lambda count, ptype, body: (
            struct.pack("!BBH", 0x80 | count, ptype, (len(body) + 3) // 4)
            + body
            + bytes(-len(body) % 4)
        ),
        st.integers(0, 31),
        st.sampled_from([200, 201, 202, 203, 204, 205, 206, 207]),
        st.binary(max_size=60),
    )
    return st.lists(part, min_size=1, max_size=4).map(b"".join)


@FUZZ
@given(st.one_of(st.binary(max_size=80), rtcp_like()))
def test_rtcp_parse_never_crashes(data: bytes) -> None:
    try:
        packets = rtcp.parse(data)
    except ValueError:
        return
    for p in packets:
        if isinstance(p, rtcp.Nack):
            assert all(0 <= s <= 0xFFFF for s in p.lost)


@FUZZ
@given(st.sampled_from(["vp8", "vp9", "h264", "opus"]), st.binary(max_size=40))
def test_keyframe_detection_and_munging_never_crash(codec: str, payload: bytes) -> None:
    codecs.is_keyframe(codec, payload)
    codecs.vp8_frame_size(payload)
    munger = codecs.PictureIdMunger()
    munger.switch()
    buf = bytearray(payload)
    munger.rewrite_vp8(buf, 0)
    munger.rewrite_vp9(buf, 0)
    assert len(buf) == len(payload)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 0xFFFF)), max_size=200))
def test_seqmap_outputs_stay_in_range_and_map_back(events: list[tuple[int, int]]) -> None:
    m = SeqMap(90000, first_seq=65500)
    for i, (source, seq) in enumerate(events):
        out = m.map(source, seq, seq * 3000, i / 30)
        if out is None:
            continue
        assert 0 <= out[0] <= 0xFFFF and 0 <= out[1] <= 0xFFFFFFFF
        assert m.source_of(out[0]) == (source, seq)
