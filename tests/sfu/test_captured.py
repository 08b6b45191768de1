"""Parsers and rewriters against bytes captured from Chromium 156 through the SFU.

tests/sfu/fixtures/chromium.json comes from `python -m tests.sfu.capture`: the SDP offers of
a simulcast publisher and a plain one, the first decrypted RTP packets of each kind, and the
RTCP both tabs sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confer.sfu import codecs, negotiation, rtcp, rtp, sdp
from confer.sfu.speaker import parse_audio_level
from confer.sfu.tracks import ABS_SEND_TIME, AUDIO_LEVEL, RID

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "chromium.json").read_text())
SIMULCAST_OFFER = sdp.parse(FIXTURE["offers"][0])
PACKETS = [bytes.fromhex(h) for h in FIXTURE["rtp"]]


def ext_id(kind: str, uri: str) -> int:
    m = next(m for m in SIMULCAST_OFFER.media if m.kind == kind)
    return next(i for i, u in m.extmap.items() if u == uri)


def test_chromium_offer_parses_with_simulcast_rids_and_rtx() -> None:
    audio, video = SIMULCAST_OFFER.media
    assert (audio.kind, video.kind) == ("audio", "video")
    assert video.send_rids() == ["q", "h", "f"] and video.simulcast == "send q;h;f"
    vp8 = next(c for c in video.codecs if c.key == "vp8")
    assert any(c.key == "rtx" and c.apt == vp8.pt for c in video.codecs)
    assert "nack" in vp8.rtcp_fb and "nack pli" in vp8.rtcp_fb
    assert SIMULCAST_OFFER.ice_credentials() and SIMULCAST_OFFER.dtls_fingerprints()


def test_answer_to_chromium_receives_the_three_layers_in_vp8_without_transport_cc() -> None:
    video = SIMULCAST_OFFER.media[1]
    t = negotiation.Transport("u", "p" * 22, [("sha-256", "AA")], "active", [])
    m, codec, rtx = negotiation.answer_published(video, t, ["vp8", "h264"], accept=True)
    assert codec is not None and codec.key == "vp8" and rtx is not None and rtx.apt == codec.pt
    assert m.direction == "recvonly" and m.simulcast == "recv q;h;f"
    assert m.rids == [("q", "recv"), ("h", "recv"), ("f", "recv")]
    assert not any("transport-wide-cc" in uri for uri in m.extmap.values())
    again = sdp.parse(sdp.write(sdp.SessionDescription(media=[m], bundle=["1"]), 1, 1))
    assert again.media[0].simulcast == "recv q;h;f"


def test_every_captured_rtp_packet_parses_and_keyframes_carry_their_size() -> None:
    sizes = set()
    for data in PACKETS:
        v = rtp.parse(data)
        assert v.payload_start <= v.payload_end <= len(data)
        payload = data[v.payload_start : v.payload_end]
        if v.payload_type == 96 and codecs.vp8_is_keyframe(payload):
            size = codecs.vp8_frame_size(payload)
            if size:
                sizes.add(size)
    assert {(320, 180), (640, 360)} <= sizes  # two simulcast layers of a 720p camera


def test_simulcast_packets_name_their_layer_in_the_rid_extension() -> None:
    rid_id = ext_id("video", RID)
    rids = set()
    for data in PACKETS:
        v = rtp.parse(data)
        found = rtp.find_extension(data, v, rid_id) if v.payload_type == 96 else None
        if found:
            rids.add(data[found[0] : found[0] + found[1]].decode())
    assert rids and rids <= {"q", "h", "f"}


def test_opus_packets_carry_an_audio_level() -> None:
    level_id = ext_id("audio", AUDIO_LEVEL)
    levels = []
    for data in PACKETS:
        v = rtp.parse(data)
        if v.payload_type == 111:
            found = rtp.find_extension(data, v, level_id)
            assert found is not None
            levels.append(parse_audio_level(data[found[0] : found[0] + 1])[0])
    assert levels and all(0 <= lv <= 127 for lv in levels)


def test_rtx_packets_unwrap_to_their_media_stream() -> None:
    rtx = [
        d
        for d in PACKETS
        if rtp.parse(d).payload_type == 97
        and rtp.parse(d).payload_end - rtp.parse(d).payload_start > 2
    ]
    if not rtx:
        pytest.fail("the capture holds no RTX packet with a payload")
    for data in rtx:
        v = rtp.parse(data)
        original = rtp.unwrap_rtx(data, v, 96, 0x1234)
        o = rtp.parse(original)
        assert (o.payload_type, o.ssrc) == (96, 0x1234)
        assert o.sequence_number == int.from_bytes(data[v.payload_start : v.payload_start + 2])


def test_renumbering_chromium_extensions_keeps_the_payload_intact() -> None:
    abs_id = ext_id("video", ABS_SEND_TIME)
    for data in PACKETS:
        v = rtp.parse(data)
        if not v.ext_profile:
            continue
        buf = bytearray(data)
        rtp.remap_extensions(buf, v, {abs_id: 9}, 9, 12.5)
        w = rtp.parse(buf)
        assert buf[w.payload_start :] == data[v.payload_start :]
        kept = [i for i, _, _ in rtp.extensions(buf, w)]
        assert set(kept) <= {9}
        if abs_id in [i for i, _, _ in rtp.extensions(data, v)]:
            off, n = rtp.find_extension(buf, w, 9) or (0, 0)
            assert buf[off : off + n] == rtp.abs_send_time(12.5).to_bytes(3, "big")


def test_captured_rtcp_parses_into_reports_and_estimates() -> None:
    kinds: dict[str, int] = {}
    for h in FIXTURE["rtcp"]:
        for p in rtcp.parse(bytes.fromhex(h)):
            kinds[type(p).__name__] = kinds.get(type(p).__name__, 0) + 1
            if isinstance(p, rtcp.SenderReport):
                assert p.ntp >> 32 > 3_900_000_000  # a 21st-century NTP time
            if isinstance(p, rtcp.Remb):
                assert p.bitrate > 0 and p.ssrcs
    assert kinds.get("SenderReport") and kinds.get("ReceiverReport") and kinds.get("Remb")


def test_a_fourth_simulcast_layer_is_not_accepted() -> None:
    text = FIXTURE["offers"][0].replace(
        "a=simulcast:send q;h;f", "a=rid:x send\r\na=simulcast:send q;h;f;x"
    )
    video = sdp.parse(text).media[1]
    assert video.send_rids() == ["q", "h", "f", "x"]
    t = negotiation.Transport("u", "p" * 22, [("sha-256", "AA")], "active", [])
    m, _, _ = negotiation.answer_published(video, t, ["vp8"], accept=True)
    assert m.simulcast == "recv q;h;f" and [r for r, _ in m.rids] == ["q", "h", "f"]
