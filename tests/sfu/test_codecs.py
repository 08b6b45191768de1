"""Keyframe detection and picture-ID continuity for VP8, VP9 and H.264 payloads."""

from __future__ import annotations

from confer.sfu import codecs

# VP8 descriptor X=1 S=1 PID=0, then I=1 L=1: 15-bit picture id 0x1234, tl0picidx 7; then a keyframe
# header (P=0), its start code and a 640x360 size.
VP8_KEY = bytes.fromhex("90c092340710 02 00 9d012a 8002 6801".replace(" ", ""))
VP8_DELTA = bytes.fromhex("90c092350711 02 00".replace(" ", ""))
VP8_CONTINUATION = bytes.fromhex("80c092340710".replace(" ", ""))


def test_vp8_keyframe_and_size() -> None:
    assert codecs.vp8_is_keyframe(VP8_KEY)
    assert codecs.vp8_frame_size(VP8_KEY) == (640, 360)
    assert not codecs.vp8_is_keyframe(VP8_DELTA)
    assert not codecs.vp8_is_keyframe(VP8_CONTINUATION)  # not the start of partition 0
    d = codecs.vp8_descriptor(VP8_KEY)
    assert (d.picture_id, d.picture_id_long, d.tl0picidx_offset, d.header_size) == (
        0x1234,
        True,
        4,
        5,
    )


def test_vp9_keyframe_needs_start_of_frame_without_inter_prediction() -> None:
    # I=1 (15-bit pid) P=0 L=1 B=1: layer byte with spatial id 0
    assert codecs.vp9_is_keyframe(bytes.fromhex("a880010000"))
    assert not codecs.vp9_is_keyframe(bytes.fromhex("e8800100"))  # P=1
    assert not codecs.vp9_is_keyframe(bytes.fromhex("a0800100"))  # B=0
    assert not codecs.vp9_is_keyframe(bytes.fromhex("a8800102"))  # spatial id 1
    assert codecs.vp9_is_keyframe(bytes.fromhex("08aa"))  # no I, no L: single layer


def test_h264_keyframes_in_single_stap_a_and_fu_a() -> None:
    assert codecs.h264_is_keyframe(bytes([0x65, 0x88]))  # IDR
    assert codecs.h264_is_keyframe(bytes([0x67, 0x42]))  # SPS
    assert not codecs.h264_is_keyframe(bytes([0x41, 0x9A]))  # non-IDR slice
    stap = bytes([0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE])
    assert codecs.h264_is_keyframe(stap)
    assert codecs.h264_is_keyframe(bytes([0x7C, 0x85, 0x88]))  # FU-A start of IDR
    assert not codecs.h264_is_keyframe(bytes([0x7C, 0x05, 0x88]))  # FU-A middle
    assert not codecs.h264_is_keyframe(bytes([0x78, 0, 9, 0x67]))  # STAP-A size overrun


def test_opus_packets_are_always_a_starting_point() -> None:
    assert codecs.is_keyframe(codecs.OPUS, b"\xfc")
    assert codecs.codec_name("video/VP8") == "vp8"


def test_picture_ids_continue_after_a_switch() -> None:
    munger = codecs.PictureIdMunger()
    a = bytearray(b"\x00" + VP8_KEY)
    munger.rewrite_vp8(a, 1)
    assert codecs.vp8_descriptor(a[1:]).picture_id == 0x1234  # first source: unchanged
    munger.switch()
    other = bytearray(b"\x00" + VP8_KEY.replace(b"\x92\x34", b"\x80\x05"))
    munger.rewrite_vp8(other, 1)
    d = codecs.vp8_descriptor(other[1:])
    assert d.picture_id == 0x1235
    assert other[1 + d.tl0picidx_offset] == 8  # TL0PICIDX continues too
    nxt = bytearray(b"\x00" + VP8_KEY.replace(b"\x92\x34", b"\x80\x06"))
    munger.rewrite_vp8(nxt, 1)
    assert codecs.vp8_descriptor(nxt[1:]).picture_id == 0x1236


def test_vp9_picture_ids_continue_after_a_switch() -> None:
    munger = codecs.PictureIdMunger()
    munger.rewrite_vp9(bytearray(bytes.fromhex("a8801000")), 0)
    munger.switch()
    b = bytearray(bytes.fromhex("a8850000"))
    munger.rewrite_vp9(b, 0)
    assert codecs.vp9_picture_id(b)[0] == 0x11


def test_retransmissions_get_the_same_picture_id_shift_as_the_original() -> None:
    munger = codecs.PictureIdMunger()
    munger.rewrite_vp8(bytearray(b"\x00" + VP8_KEY), 1)
    munger.switch()
    sent = bytearray(b"\x00" + VP8_KEY.replace(b"\x92\x34", b"\x80\x05"))
    original = bytes(sent)
    munger.rewrite_vp8(sent, 1)
    resent = bytearray(original)
    munger.apply(resent, 1, vp9=False)
    assert resent == sent
    later = bytearray(b"\x00" + VP8_KEY.replace(b"\x92\x34", b"\x80\x06"))
    munger.rewrite_vp8(later, 1)
    assert codecs.vp8_descriptor(later[1:]).picture_id == 0x1236  # apply() moved no state
