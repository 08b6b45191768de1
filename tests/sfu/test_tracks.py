"""The forwarding hot path on its own: rewriting, layer switches, retransmission, SR translation."""

from __future__ import annotations

from itertools import pairwise

from confer.sfu import rtcp, rtp
from confer.sfu.tracks import ABS_SEND_TIME, AUDIO_LEVEL, MID, DownTrack, UpTrack

PUB_EXT = {1: AUDIO_LEVEL, 2: ABS_SEND_TIME, 4: MID}


def vp8(seq: int, ts: int, ssrc: int, key: bool, marker: bool = True) -> bytes:
    payload = bytes([0x90, 0x80, 0x80, seq & 0x7F, 0x00 if key else 0x01]) + b"\x00" * 20
    ext = [(2, b"\x01\x02\x03"), (4, b"1")]
    return rtp.build(96, seq, ts, ssrc, payload, marker=marker, extensions_one_byte=ext)


def make(simulcast: bool = False) -> tuple[UpTrack, DownTrack, list[bytes], list[int]]:
    plis: list[int] = []
    up = UpTrack(
        "u/1",
        object(),
        "1",
        "video",
        "camera",
        "vp8",
        90000,
        96,
        97,
        {2: ABS_SEND_TIME, 4: MID},
        ["q", "f"] if simulcast else [],
        lambda ssrc: plis.append(ssrc) or True,
    )
    for i, layer in enumerate(up.layers):
        layer.ssrc = 1000 + i
    sent: list[bytes] = []
    dt = DownTrack(
        object(), up, "s1", 100, 101, {5: ABS_SEND_TIME}, lambda b: sent.append(bytes(b)) or True
    )
    up.downtracks.append(dt)
    dt.activate()
    return up, dt, sent, plis


def test_packets_are_rewritten_for_the_subscriber_and_mid_is_stripped() -> None:
    up, dt, sent, plis = make()
    assert plis == [1000]  # a keyframe is asked for as the subscriber starts
    layer = up.layers[0]
    for seq, key in ((10, False), (11, True), (12, False)):
        data = vp8(seq, seq * 3000, 1000, key)
        up.forward(layer, data, rtp.parse(data), 1.0 + seq / 30)
    assert len(sent) == 2  # the delta frame before the keyframe is not forwarded
    v = rtp.parse(sent[0])
    assert (v.payload_type, v.ssrc) == (100, dt.ssrc)
    exts = rtp.extensions(sent[0], v)
    assert [i for i, _, _ in exts] == [5]  # abs-send-time renumbered, mid dropped
    assert rtp.seq_delta(rtp.parse(sent[1]).sequence_number, v.sequence_number) == 1


def test_a_nack_is_answered_from_the_cache_as_rtx() -> None:
    up, dt, sent, _ = make()
    layer = up.layers[0]
    for seq in (20, 21):
        data = vp8(seq, 9000, 1000, True)
        layer.cache.store(seq, data)
        up.forward(layer, data, rtp.parse(data), 2.0)
    lost = rtp.parse(sent[0]).sequence_number
    assert dt.retransmit(lost, 2.1) is True
    rtx = rtp.parse(sent[-1])
    assert (rtx.payload_type, rtx.ssrc) == (101, dt.rtx_ssrc)
    original = rtp.unwrap_rtx(sent[-1], rtx, 100, dt.ssrc)
    o, first = rtp.parse(original), rtp.parse(sent[0])
    assert (o.sequence_number, o.timestamp, o.ssrc) == (lost, first.timestamp, dt.ssrc)
    assert original[o.payload_start :] == sent[0][first.payload_start :]
    assert dt.retransmit((lost - 300) & 0xFFFF, 2.1) is not True


def test_a_layer_switch_waits_for_a_keyframe_and_keeps_numbering_continuous() -> None:
    up, dt, sent, plis = make(simulcast=True)
    low, high = up.layers
    dt.set_target(low)
    for seq in (1, 2):
        data = vp8(seq, seq * 3000, low.ssrc, key=seq == 1)
        up.forward(low, data, rtp.parse(data), seq / 30)
    dt.set_target(high)
    assert high.ssrc in plis
    delta = vp8(500, 777, high.ssrc, key=False)
    up.forward(high, delta, rtp.parse(delta), 0.1)
    assert dt.current is low  # still on the low layer: no keyframe yet on the high one
    key = vp8(501, 780, high.ssrc, key=True)
    up.forward(high, key, rtp.parse(key), 0.13)
    assert dt.current is high and len(sent) == 3
    seqs = [rtp.parse(p).sequence_number for p in sent]
    assert [rtp.seq_delta(b, a) for a, b in pairwise(seqs)] == [1, 1]


def test_sender_reports_are_translated_to_the_subscriber_timeline() -> None:
    up, dt, sent, _ = make()
    layer = up.layers[0]
    data = vp8(5, 90000, 1000, True)
    up.forward(layer, data, rtp.parse(data), 1.0)
    out_ts = rtp.parse(sent[0]).timestamp
    report = dt.sender_report(rtcp.ntp_time(1000.0), 90000 + 4500)
    (sr,) = rtcp.parse(report)
    assert sr.ssrc == dt.ssrc and sr.packets == 1
    assert sr.rtp_ts == (out_ts + 4500) & 0xFFFFFFFF and sr.ntp == rtcp.ntp_time(1000.0)


def test_a_muted_track_is_not_forwarded_and_resumes_on_a_keyframe() -> None:
    up, _, sent, _ = make()
    layer = up.layers[0]
    first = vp8(1, 0, 1000, True)
    up.forward(layer, first, rtp.parse(first), 0.0)
    up.set_allowed(False)
    held = vp8(2, 3000, 1000, True)
    up.forward(layer, held, rtp.parse(held), 0.03)
    assert len(sent) == 1
    up.set_allowed(True)
    delta = vp8(3, 6000, 1000, False)
    up.forward(layer, delta, rtp.parse(delta), 0.06)
    key = vp8(4, 9000, 1000, True)
    up.forward(layer, key, rtp.parse(key), 0.09)
    assert len(sent) == 2
    gap = rtp.seq_delta(rtp.parse(sent[1]).sequence_number, rtp.parse(sent[0]).sequence_number)
    assert gap == 1  # no hole the receiver would NACK forever
