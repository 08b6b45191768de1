"""The C forwarding loop (confer.sfu._fanout) driven by real packet bytes.

Captured Chromium packets go through `UpTrack.forward` and come out with the subscriber's
header fields; what the C code produces is compared byte for byte with the Python code it
replaced (tests/sfu/reference.py); SRTP output is decrypted by a pylibsrtp receiver; malformed
input is refused with ValueError/TypeError and never crashes.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import weakref
from pathlib import Path

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confer.sfu import _fanout, adapter, rtp
from confer.sfu.codecs import PictureIdMunger
from confer.sfu.seqmap import SeqMap
from confer.sfu.tracks import ABS_SEND_TIME, AUDIO_LEVEL, MID, DownTrack, UpTrack
from tests.sfu.reference import ReferenceMunger, ReferenceSeqMap, reference_write

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "chromium.json").read_text())
PACKETS = [bytes.fromhex(h) for h in FIXTURE["rtp"]]
AUDIO_SSRC = next(rtp.parse(p).ssrc for p in PACKETS if rtp.parse(p).payload_type == 111)
AUDIO = [p for p in PACKETS if rtp.parse(p).ssrc == AUDIO_SSRC]
VIDEO_SSRC = 39783313  # one VP8 simulcast layer in the capture
VIDEO = [p for p in PACKETS if rtp.parse(p).ssrc == VIDEO_SSRC]
PUB_AUDIO_EXT = {1: AUDIO_LEVEL, 2: ABS_SEND_TIME, 4: MID}
PUB_VIDEO_EXT = {2: ABS_SEND_TIME, 4: MID}


def uptrack(kind: str, codec: str, ssrc: int) -> UpTrack:
    up = UpTrack(
        "u/1",
        object(),
        "0",
        kind,
        "camera" if kind == "video" else "microphone",
        codec,
        90000 if kind == "video" else 48000,
        96 if kind == "video" else 111,
        None,
        PUB_VIDEO_EXT if kind == "video" else PUB_AUDIO_EXT,
        [],
        lambda s: True,
    )
    up.layers[0].ssrc = ssrc
    return up


def subscribe(up: UpTrack, send: object, extmap: dict[int, str]) -> DownTrack:
    dt = DownTrack(object(), up, "s", 100, None, extmap, send)  # type: ignore[arg-type]
    up.downtracks.append(dt)
    dt.activate()
    if up.kind == "video":
        dt.switch_to(up.layers[0])
    return dt


def test_captured_audio_gets_the_subscriber_header_and_extension_ids() -> None:
    up = uptrack("audio", "opus", rtp.parse(AUDIO[0]).ssrc)
    sent: list[bytes] = []
    dt = subscribe(up, lambda b: sent.append(bytes(b)) or True, {7: AUDIO_LEVEL, 9: ABS_SEND_TIME})
    for i, data in enumerate(AUDIO):
        assert up.forward(up.layers[0], data, rtp.parse(data), 10.0 + i * 0.02) == 1
    assert len(sent) == len(AUDIO) == dt.packets
    first_in, first_out = rtp.parse(AUDIO[0]), rtp.parse(sent[0])
    for i, (data, out) in enumerate(zip(AUDIO, sent, strict=True)):
        v_in, v_out = rtp.parse(data), rtp.parse(out)
        assert (v_out.payload_type, v_out.ssrc, v_out.marker) == (100, dt.ssrc, v_in.marker)
        assert rtp.seq_delta(v_out.sequence_number, first_out.sequence_number) == rtp.seq_delta(
            v_in.sequence_number, first_in.sequence_number
        )
        assert (v_out.timestamp - first_out.timestamp) & 0xFFFFFFFF == (
            v_in.timestamp - first_in.timestamp
        ) & 0xFFFFFFFF
        ids = {e[0]: out[e[1] : e[1] + e[2]] for e in rtp.extensions(out, v_out)}
        level_in = rtp.find_extension(data, v_in, 1)
        assert level_in is not None and ids[7] == data[level_in[0] : level_in[0] + 1]
        assert int.from_bytes(ids[9], "big") == rtp.abs_send_time(10.0 + i * 0.02)
        assert 4 not in ids  # mid is not forwarded
        assert out[v_out.payload_start :] == data[v_in.payload_start :]
    assert dt.octets == sum(rtp.parse(p).payload_end - rtp.parse(p).payload_start for p in AUDIO)


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_c_output_matches_the_python_forwarder_byte_for_byte(kind: str) -> None:
    packets = AUDIO if kind == "audio" else VIDEO
    ssrc = rtp.parse(packets[0]).ssrc
    up = uptrack(kind, "opus" if kind == "audio" else "vp8", ssrc)
    sent: list[bytes] = []
    sub_ext = {3: ABS_SEND_TIME, 5: AUDIO_LEVEL}
    dt = subscribe(up, lambda b: sent.append(bytes(b)) or True, sub_ext)
    dt.seqmap = SeqMap(up.clock_rate, 4000, 77)
    ref_map = ReferenceSeqMap(up.clock_rate, 4000, 77)
    ref_munger = ReferenceMunger() if kind == "video" else None
    expected = []
    for i, data in enumerate(packets):
        now = 5.0 + i / 50
        if i == len(packets) // 2:  # a source switch half way: a new segment, re-based ids
            dt.seqmap.restart()
            dt.munger.switch()
            ref_map.restart()
            if ref_munger is not None:
                ref_munger.switch()
        up.forward(up.layers[0], data, rtp.parse(data), now)
        expected.append(
            reference_write(data, ref_map, ref_munger, False, ssrc, 100, dt.ssrc, dt.id_map, 3, now)
        )
    assert sent == [e for e in expected if e is not None]
    assert len(sent) == len(packets)


def srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = os.urandom(30)
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


def route_between(
    sock: socket.socket, peer: socket.socket
) -> tuple[_fanout.Route, pylibsrtp.Session]:
    """A ready route from `sock` to `peer`, and the session that decrypts what it sends."""
    tx, rx = srtp_pair()
    route = _fanout.Route()
    route.set_srtp(tx, *adapter.srtp_protect_pointers(tx))
    route.set_socket(sock.fileno(), "127.0.0.1", peer.getsockname()[1])
    return route, rx


def test_srtp_from_the_c_loop_decrypts_to_what_the_python_path_would_send() -> None:
    out_sock, in_sock = udp(), udp()
    route, rx = route_between(out_sock, in_sock)
    assert route.ready
    ssrc = rtp.parse(VIDEO[0]).ssrc
    up = uptrack("video", "vp8", ssrc)
    fast = subscribe(up, route, {3: ABS_SEND_TIME})
    clear: list[bytes] = []
    twin = subscribe(up, lambda b: clear.append(bytes(b)) or True, {3: ABS_SEND_TIME})
    twin.ssrc = fast.ssrc
    fast.seqmap, twin.seqmap = SeqMap(90000, 10, 20), SeqMap(90000, 10, 20)
    try:
        for i, data in enumerate(VIDEO):
            assert up.forward(up.layers[0], data, rtp.parse(data), 3.0 + i / 90) == 2
        received = [rx.unprotect(in_sock.recv(2048)) for _ in VIDEO]
    finally:
        out_sock.close()
        in_sock.close()
    assert received == clear
    assert route.packets_sent == len(VIDEO) == fast.packets
    assert route.bytes_sent == sum(len(p) for p in clear) + 10 * len(VIDEO)  # 80-bit tags


def test_a_route_without_session_or_socket_sends_nothing() -> None:
    tx, _ = srtp_pair()
    route = _fanout.Route()
    assert not route.ready and route.send(AUDIO[0]) is False
    route.set_srtp(tx, *adapter.srtp_protect_pointers(tx))
    assert route.send(AUDIO[0]) is False  # no socket yet
    sock = udp()
    try:
        route.set_socket(sock.fileno(), "127.0.0.1", 9)
        assert route.ready
        route.clear()
        assert not route.ready and route.send(AUDIO[0]) is False
    finally:
        sock.close()
    with pytest.raises(ValueError, match="not an IP address"):
        route.set_socket(3, "example.org", 9)
    with pytest.raises(ValueError):
        route.set_srtp(tx, 0, 0)


def test_a_route_owns_a_duplicate_fd_so_a_reused_fd_number_gets_nothing() -> None:
    sock, peer = udp(), udp()
    route, rx = route_between(sock, peer)
    number, address = sock.fileno(), sock.getsockname()
    sock.close()  # as aioice closes a pair's socket
    reused = udp()  # the lowest free number: the one just closed
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert reused.fileno() == number
        assert route.send(AUDIO[0]) is True
        data, source = peer.recvfrom(2048)
        assert source == address, "sent from the reused number's socket"
        assert rx.unprotect(data) == AUDIO[0]
        with pytest.raises(OSError):
            again.bind(address)  # the route's duplicate still holds the port
        route.clear()
        assert not route.ready and route.send(AUDIO[0]) is False
        again.bind(address)  # released with the duplicate
    finally:
        again.close()
        reused.close()
        peer.close()


@pytest.mark.parametrize("now", [float("nan"), float("inf"), -float("inf")])
def test_a_time_that_is_not_finite_is_refused(now: float) -> None:
    up = uptrack("audio", "opus", 5)
    dt = subscribe(up, lambda b: True, {1: AUDIO_LEVEL})
    for call in (
        lambda: _fanout.forward(up.downtracks, up.layers[0], 5, AUDIO[0], now),
        lambda: dt.send_packet(5, AUDIO[0], now),
        lambda: SeqMap(48000).map(5, 1, 1, now),
    ):
        with pytest.raises(ValueError, match="finite"):
            call()


def test_packets_too_short_or_too_long_for_srtp_are_refused() -> None:
    sock, peer = udp(), udp()
    route, _ = route_between(sock, peer)
    try:
        assert route.send(b"\x80\x60\x00") is False
        assert route.send(AUDIO[0][:12] + bytes(_fanout.MAX_PACKET)) is False
        assert route.send(AUDIO[0]) is True
        assert route.packets_sent == 1
    finally:
        sock.close()
        peer.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00\x01", "shorter than its fixed header"),
        (bytes([0x40]) + bytes(11), "version"),
        (bytes([0x8F]) + bytes(11), "CSRC"),
        (bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x05", "extension block overruns"),
        (bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x01\x25\x00\x00\x00", "one-byte extension"),
        (bytes([0x90]) + bytes(11) + b"\x10\x00\x00\x01\x05\x09\x00\x00", "two-byte extension"),
        (bytes([0xA0]) + bytes(11) + b"\x00", "padding"),
        (bytes([0x80]) + bytes(0x10000), "longer than a UDP datagram"),
    ],
)
def test_malformed_packets_raise_value_error_and_send_nothing(data: bytes, message: str) -> None:
    up = uptrack("audio", "opus", 5)
    sent: list[bytes] = []
    dt = subscribe(up, lambda b: sent.append(bytes(b)) or True, {1: AUDIO_LEVEL})
    with pytest.raises(ValueError, match=message):
        _fanout.forward(up.downtracks, up.layers[0], 5, data, 1.0)
    with pytest.raises(ValueError, match=message):
        dt.send_packet(5, data, 1.0)
    assert sent == [] and dt.packets == 0


def test_wrong_argument_types_are_type_errors() -> None:
    up = uptrack("audio", "opus", 5)
    with pytest.raises(TypeError):
        _fanout.forward([object()], up.layers[0], 5, AUDIO[0], 1.0)
    with pytest.raises(TypeError):
        _fanout.forward((), up.layers[0], 5, AUDIO[0], 1.0)
    sink = _fanout.Sink()
    sink.current, sink.active = up.layers[0], True
    with pytest.raises(TypeError, match="seqmap"):
        _fanout.forward([sink], up.layers[0], 5, AUDIO[0], 1.0)
    with pytest.raises(ValueError):
        sink.set_ids({0: 3}, 0)
    with pytest.raises(TypeError):
        sink.active = 1  # a bool, as the Python code always sets


def test_subscribers_waiting_for_a_layer_are_handed_back_not_sent() -> None:
    up = uptrack("video", "vp8", VIDEO_SSRC)
    sent: list[bytes] = []
    dt = DownTrack(object(), up, "s", 100, None, {}, lambda b: sent.append(bytes(b)) or True)
    up.downtracks.append(dt)
    assert _fanout.forward(up.downtracks, up.layers[0], VIDEO_SSRC, VIDEO[0], 1.0) == (0, None)
    dt.activate()  # active, target = the only layer, current = None
    assert _fanout.forward(up.downtracks, up.layers[0], VIDEO_SSRC, VIDEO[0], 1.0) == (0, [dt])
    dt.paused = True
    dt.switch_to(up.layers[0])
    assert _fanout.forward(up.downtracks, up.layers[0], VIDEO_SSRC, VIDEO[0], 1.0) == (0, None)
    assert sent == []


def test_a_downtrack_cycle_through_its_sender_is_collected() -> None:
    up = uptrack("audio", "opus", 5)

    class Holder:
        dt: DownTrack | None = None

        def send(self, data: bytes) -> bool:
            return True

    holder = Holder()
    holder.dt = subscribe(up, holder.send, {})
    ref = weakref.ref(holder)
    up.downtracks.clear()
    del holder
    gc.collect()
    assert ref() is None


# -- differential: the C SeqMap and Munger against the Python they replaced

events = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 3]),  # source
        st.integers(-40, 40),  # sequence step (gaps, reordering, duplicates)
        st.integers(0, 6000),  # timestamp step
        st.floats(0, 0.5),  # wall clock step
        st.booleans(),  # restart before this packet
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(events, st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_seqmap_matches_the_python_model(
    steps: list[tuple[int, int, int, float, bool]], first_seq: int, first_ts: int
) -> None:
    c, ref = SeqMap(90000, first_seq, first_ts), ReferenceSeqMap(90000, first_seq, first_ts)
    seqs = {1: 100, 2: 65500, 3: 7}
    ts = {1: 0, 2: 0xFFFFF000, 3: 5}
    now = 0.0
    for source, dseq, dts, dnow, restart in steps:
        seqs[source] = (seqs[source] + dseq) & 0xFFFF
        ts[source] = (ts[source] + dts) & 0xFFFFFFFF
        now += dnow
        if restart:
            c.restart()
            ref.restart()
        assert c.map(source, seqs[source], ts[source], now) == ref.map(
            source, seqs[source], ts[source], now
        )
        assert (c.last_seq, c.last_timestamp, c.ts_offset, c.sent) == (
            ref.last_seq,
            ref.last_timestamp,
            ref.ts_offset,
            ref.sent,
        )
    for out in range(c.last_seq - 300, c.last_seq + 2):
        assert c.source_of(out & 0xFFFF) == ref.source_of(out & 0xFFFF)
        assert c.ts_offset_of(out & 0xFFFF) == ref.ts_offset_of(out & 0xFFFF)


descriptors = st.one_of(
    st.binary(min_size=0, max_size=8),
    st.builds(  # well-formed VP8 descriptors with picture id and TL0PICIDX
        lambda long_id, pic, tl0, rest: (
            bytes([0x90, 0xE0])
            + ((0x8000 | pic).to_bytes(2, "big") if long_id else bytes([pic & 0x7F]))
            + bytes([tl0, 0x20])
            + rest
        ),
        st.booleans(),
        st.integers(0, 0x7FFF),
        st.integers(0, 255),
        st.binary(max_size=4),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(st.tuples(descriptors, st.booleans(), st.booleans()), max_size=40))
def test_munger_matches_the_python_model(
    vp9: bool, packets: list[tuple[bytes, bool, bool]]
) -> None:
    c, ref = PictureIdMunger(), ReferenceMunger()
    for payload, switch, retransmit in packets:
        if switch:
            c.switch()
            ref.switch()
        a, b = bytearray(b"\x00" + payload), bytearray(b"\x00" + payload)
        if retransmit:
            c.apply(a, 1, vp9)
            ref.apply(b, 1, vp9)
        elif vp9:
            c.rewrite_vp9(a, 1)
            ref.rewrite_vp9(b, 1)
        else:
            c.rewrite_vp8(a, 1)
            ref.rewrite_vp8(b, 1)
        assert a == b


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(AUDIO[:3] + VIDEO[:3]), st.integers(0, 60))
def test_fuzzed_packets_never_crash_the_loop(junk: bytes, real: bytes, cut: int) -> None:
    up = uptrack("video", "vp8", 7)
    sent: list[bytes] = []
    subscribe(up, lambda b: sent.append(bytes(b)) or True, {3: ABS_SEND_TIME, 1: AUDIO_LEVEL})
    for data in (junk, real[:cut], real[: len(real) - cut], real[:12] + junk):
        try:
            view = rtp.parse(data)
        except ValueError:
            view = None
        try:
            _fanout.forward(up.downtracks, up.layers[0], 7, data, 1.0)
        except ValueError:
            assert view is None or view.ext_profile  # refused: malformed header or extensions
        else:
            assert view is not None
    for out in sent:
        rtp.parse(out)  # whatever went out is still a well-formed RTP packet


def structured_packet() -> st.SearchStrategy[bytes]:
    """Headers with every optional part (CSRCs, one- and two-byte or unknown extension
    profiles, padding) and VP8/VP9-like payload descriptors, lengths often slightly wrong."""
    return st.builds(
        lambda cc, ext, profile, words, ext_body, payload, pad, pad_len, seq: (
            bytes([0x80 | (0x20 if pad else 0) | (0x10 if ext else 0) | cc, 96])
            + seq.to_bytes(2, "big")
            + bytes(8)
            + bytes(4 * cc)
            + ((profile.to_bytes(2, "big") + words.to_bytes(2, "big") + ext_body) if ext else b"")
            + payload
            + (bytes([pad_len]) if pad else b"")
        ),
        st.integers(0, 3),
        st.booleans(),
        st.sampled_from([0xBEDE, 0x1000, 0x100F, 0x1234]),
        st.integers(0, 6),
        st.binary(max_size=28),
        st.one_of(
            st.binary(max_size=12),
            st.tuples(st.sampled_from([0x80, 0x90, 0x10]), st.binary(max_size=8)).map(
                lambda t: bytes([t[0]]) + t[1]
            ),
        ),
        st.booleans(),
        st.integers(0, 40),
        st.integers(0, 0xFFFF),
    )


@settings(max_examples=600, deadline=None)
@given(st.lists(structured_packet(), min_size=1, max_size=6), st.booleans())
def test_structured_packets_match_the_python_forwarder_or_are_refused_by_both(
    packets: list[bytes], vp9: bool
) -> None:
    up = uptrack("video", "vp9" if vp9 else "vp8", 7)
    sent: list[bytes] = []
    dt = subscribe(up, lambda b: sent.append(bytes(b)) or True, {3: ABS_SEND_TIME, 5: MID})
    dt.seqmap = SeqMap(up.clock_rate, 100, 5)
    ref_map, ref_munger = ReferenceSeqMap(up.clock_rate, 100, 5), ReferenceMunger()
    ref_munger.switch()  # as subscribe()'s switch_to did to dt.munger
    expected: list[bytes] = []
    for i, data in enumerate(packets):
        if i == 2:
            dt.munger.switch()
            ref_munger.switch()
        now = 1.0 + i / 100
        try:
            ref = reference_write(
                data, ref_map, ref_munger, vp9, 7, 100, dt.ssrc, dt.id_map, 3, now
            )
        except ValueError:
            with pytest.raises(ValueError):
                _fanout.forward(up.downtracks, up.layers[0], 7, data, now)
            continue
        _fanout.forward(up.downtracks, up.layers[0], 7, data, now)
        if ref is not None:
            expected.append(ref)
    assert sent == expected
