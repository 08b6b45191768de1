"""Published tracks (up) and their per-subscriber copies (down): the forwarding hot path.

An `UpTrack` is one m-line a participant publishes on (camera, microphone, screen), with one
`Layer` per simulcast encoding. A `DownTrack` is one m-line of a subscriber that carries an
UpTrack: its own SSRCs, payload types and extension IDs, a `SeqMap` keeping numbering
continuous across layer switches, and the layer it forwards. Packets are rewritten in a copy of
the decrypted bytes and sent at once; nothing is decoded.

The per-subscriber work (copy, rewrite, SRTP, sendto) runs in C: a DownTrack *is* a
`_fanout.Sink`, whose fields (current / target layer, active, paused, seqmap, munger, route,
counters) the C loop `_fanout.forward` reads directly. Python keeps the decisions that are not
per packet: keyframe gating of layer switches, layer choice, NACK, SR translation.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confer.sfu import _fanout, codecs, rtcp, rtp
from confer.sfu.estimator import RateMeter, ReceiveStats
from confer.sfu.packetcache import PacketCache
from confer.sfu.seqmap import SeqMap
from confer.sfu.simulcast import LayerInfo

# Header extensions the SFU negotiates and forwards (others are dropped as padding).
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
FORWARDED_EXTENSIONS = {
    "audio": (AUDIO_LEVEL, ABS_SEND_TIME),
    "video": (ABS_SEND_TIME, VIDEO_ORIENTATION),
}
ACCEPTED_EXTENSIONS = {
    "audio": (AUDIO_LEVEL, ABS_SEND_TIME, MID),
    "video": (ABS_SEND_TIME, VIDEO_ORIENTATION, MID, RID, REPAIRED_RID),
}
KEYFRAME_INTERVAL = 0.5  # at most one PLI per layer per half second
NACK_TRIES = 3


def random_ssrc() -> int:
    return random.randint(1, 0xFFFFFFFF)


@dataclass(eq=False)
class Layer:
    """One encoding of an UpTrack: a simulcast layer, or the only one."""

    rid: str
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    stats: ReceiveStats = field(default_factory=lambda: ReceiveStats(90000))
    cache: PacketCache = field(default_factory=PacketCache)
    rate: RateMeter = field(default_factory=RateMeter)
    height: int = 0
    last_packet: float = 0.0
    last_pli: float = -10.0
    pli_deferred: bool = False
    nack_tries: dict[int, int] = field(default_factory=dict)
    sr_ntp: int = 0
    sr_rtp: int = 0
    received_packets: int = 0

    def info(self) -> LayerInfo:
        return LayerInfo(self.rid, self.height, self.rate.bitrate, self.last_packet)


class UpTrack:
    """What a publisher sends on one m-line, fanned out to DownTracks."""

    def __init__(
        self,
        key: str,
        owner: object,
        mid: str,
        kind: str,
        source: str,
        codec_name: str,
        clock_rate: int,
        pt: int,
        rtx_pt: int | None,
        extmap: dict[int, str],
        rids: list[str],
        request_keyframe: Callable[[int], bool],
    ) -> None:
        self.key = key
        self.owner = owner  # the publishing Peer
        self.mid = mid
        self.kind = kind
        self.source = source
        self.codec = codec_name
        self.clock_rate = clock_rate
        self.pt = pt
        self.rtx_pt = rtx_pt
        self.extmap = extmap
        self.ext_ids = {uri: i for i, uri in extmap.items()}
        self.audio_level_id = self.ext_ids.get(AUDIO_LEVEL, 0)
        self.layers = [Layer(rid) for rid in rids] or [Layer("")]
        for layer in self.layers:
            layer.stats = ReceiveStats(clock_rate)
        self.simulcast = len(self.layers) > 1
        self.downtracks: list[DownTrack] = []
        self.allowed = True
        self._request_keyframe = request_keyframe
        self.closed = False

    def layer_by_rid(self, rid: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.rid == rid), None)

    def request_keyframe(self, layer: Layer | None, now: float | None = None) -> None:
        if self.kind != "video" or layer is None or layer.ssrc is None:
            return
        now = time.monotonic() if now is None else now
        wait = layer.last_pli + KEYFRAME_INTERVAL - now
        if wait > 0:
            # Throttled: ask again once allowed, so a subscriber that arrives just after a
            # keyframe does not wait for the next periodic retry.
            if not layer.pli_deferred:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no event loop (unit tests): the periodic retry remains
                    return
                layer.pli_deferred = True
                loop.call_later(wait, self._deferred_request, layer)
            return
        if self._request_keyframe(layer.ssrc):  # not sent before the transport is up
            layer.last_pli = now

    def _deferred_request(self, layer: Layer) -> None:
        layer.pli_deferred = False
        if not self.closed and any(dt.waiting_for_keyframe for dt in self.downtracks):
            self.request_keyframe(layer)

    def set_allowed(self, allowed: bool) -> None:
        if allowed == self.allowed:
            return
        self.allowed = allowed
        for dt in self.downtracks:
            dt.seqmap.restart()
            dt.munger.switch()
            if allowed and self.kind == "video":
                dt.current = None  # resume on a keyframe
        if allowed:
            for layer in self.layers:
                self.request_keyframe(layer)

    def forward(self, layer: Layer, data: bytes, view: rtp.RtpView, now: float) -> int:
        """Send one packet to every subscriber that takes this layer; returns how many.

        The C loop serves the subscribers already on `layer`; those waiting to switch to it
        start here on a keyframe."""
        if not self.allowed:
            return 0
        source = layer.ssrc or 0
        sent, waiting = _fanout.forward(self.downtracks, layer, source, data, now)
        if waiting and codecs.is_keyframe(
            self.codec, memoryview(data)[view.payload_start : view.payload_end]
        ):
            for dt in waiting:
                dt.switch_to(layer)
                sent += dt.send_packet(source, data, now)
        return sent


class DownTrack(_fanout.Sink):
    """One UpTrack as one subscriber receives it.

    `send` is the subscriber transport's `_fanout.Route` (the fast path), or a callable taking
    the rewritten clear-text packet (tests, and the test switch that drops packets)."""

    def __init__(
        self,
        subscriber: object,
        uptrack: UpTrack,
        mid: str,
        pt: int,
        rtx_pt: int | None,
        extmap: dict[int, str],
        send: _fanout.Route | Callable[[bytes | bytearray], bool],
    ) -> None:
        self.subscriber = subscriber
        self.uptrack = uptrack
        self.mid = mid
        self.kind = uptrack.kind
        self.ssrc = random_ssrc()
        self.rtx_ssrc = random_ssrc() if rtx_pt is not None else None
        self.pt = pt
        self.rtx_pt = rtx_pt
        if isinstance(send, _fanout.Route):
            self.route, self.sender = send, None
        else:
            self.route, self.sender = None, send
        self.seqmap = SeqMap(uptrack.clock_rate, random.randint(0, 0x7FFF), random_ssrc())
        self.munger = codecs.PictureIdMunger()
        self.codec_id = {codecs.VP8: _fanout.VP8, codecs.VP9: _fanout.VP9}.get(uptrack.codec, 0)
        self.rtx_seq = random.randint(0, 0x7FFF)
        self.current: Layer | None = None if uptrack.kind == "video" else uptrack.layers[0]
        self.target: Layer | None = uptrack.layers[-1] if uptrack.kind == "video" else None
        self.tile_height: int | None = None
        self.paused = False
        self.active = False  # negotiated and connected
        self.packets = 0
        self.octets = 0
        self.set_extmap(extmap)

    def set_extmap(self, extmap: dict[int, str]) -> None:
        """Map the publisher's extension IDs to the IDs this subscriber negotiated."""
        sub_ids = {uri: i for i, uri in extmap.items()}
        keep = FORWARDED_EXTENSIONS[self.kind]
        self.id_map = {
            pub_id: sub_ids[uri]
            for pub_id, uri in self.uptrack.extmap.items()
            if uri in keep and uri in sub_ids
        }
        self.abs_send_time_id = sub_ids.get(ABS_SEND_TIME, 0)
        self.set_ids(self.id_map, self.abs_send_time_id)

    def activate(self) -> None:
        self.active = True
        self.uptrack.request_keyframe(self.target or self.current)

    @property
    def waiting_for_keyframe(self) -> bool:
        return self.active and self.target is not None and self.current is not self.target

    def switch_to(self, layer: Layer) -> None:
        self.current = layer
        self.munger.switch()

    def set_target(self, layer: Layer | None) -> None:
        if layer is self.target:
            return
        self.target = layer
        if layer is not None and layer is not self.current:
            self.uptrack.request_keyframe(layer)

    def _send(self, data: bytes | bytearray) -> bool:
        """Send an already rewritten packet (retransmissions)."""
        if self.route is not None:
            return bool(self.route.send(data))
        return bool(self.sender is not None and self.sender(data))

    def retransmit(self, out_seq: int, now: float) -> bool | None:
        """Resend an outgoing packet from the publisher's cache (as RTX when negotiated).

        None when the packet is no longer cached (the caller may NACK upstream)."""
        found = self.seqmap.source_of(out_seq)
        if found is None:
            return False
        source, in_seq = found
        layer = next((la for la in self.uptrack.layers if la.ssrc == source), None)
        if layer is None:
            return False
        data = layer.cache.get(in_seq)
        if data is None:
            return None
        view = rtp.parse(data)
        ts_offset = self.seqmap.ts_offset_of(out_seq)
        if ts_offset is None:
            return False
        buf = bytearray(data)
        rtp.set_header(buf, view.marker, self.pt, out_seq, view.timestamp + ts_offset, self.ssrc)
        if view.ext_profile:
            rtp.remap_extensions(buf, view, self.id_map, self.abs_send_time_id, now)
        if self.codec_id and view.payload_start < view.payload_end:
            self.munger.apply(buf, view.payload_start, self.codec_id == _fanout.VP9)
        if self.rtx_pt is not None and self.rtx_ssrc is not None:
            self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
            buf = rtp.wrap_rtx(buf, rtp.parse(buf), self.rtx_pt, self.rtx_ssrc, self.rtx_seq)
        return self._send(buf)

    def sender_report(self, ntp: int, rtp_ts: int) -> bytes | None:
        """The publisher's SR translated to this subscriber's numbering (keeps lip sync)."""
        offset = self.seqmap.ts_offset
        if offset is None or not self.packets:
            return None
        sr = rtcp.SenderReport(self.ssrc, ntp, rtp_ts + offset, self.packets, self.octets)
        return rtcp.pack_sr(sr)
