"""Lightweight participants for load tests: publish pre-encoded media, receive without decoding.

A `Bot` holds one ICE/DTLS-SRTP transport (the SFU's own adapter) and speaks plain SDP, so it
can meet confer's SFU or any other (Janus VideoRoom in the bench). Publishing replays VP8
frames encoded once at start (a keyframe opens the loop; a PLI jumps back to it) and Opus
silence with an audio level; receiving only counts packets, gaps and the first complete
keyframe, so one process can hold dozens of bots.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from confer.sfu import adapter, codecs, rtcp, rtp, sdp
from confer.sfu.background import spawn

VP8_PT, RTX_PT, OPUS_PT = 96, 97, 111
MAX_PAYLOAD = 1100
RECEIVE_BUFFER = 4 * 1024 * 1024  # a starved bot process must not drop what the SFU sent
OPUS_SILENCE = b"\xf8\xff\xfe"
EXT_AUDIO_LEVEL, EXT_ABS_SEND_TIME, EXT_MID = 1, 2, 4
EXTMAP = {
    EXT_AUDIO_LEVEL: "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    EXT_ABS_SEND_TIME: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    EXT_MID: "urn:ietf:params:rtp-hdrext:sdes:mid",
}


def encoded_video(width: int = 1280, height: int = 720, frames: int = 60) -> list[bytes]:
    """VP8 frames of a moving gradient at ~1.5 Mbit/s, keyframe first (cached on disk)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "confer"
    path = cache / f"vp8-{width}x{height}-{frames}.bin"
    if path.exists():
        data, out, pos = path.read_bytes(), [], 0
        while pos < len(data):
            (n,) = struct.unpack_from("!I", data, pos)
            out.append(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return out
    import av
    import numpy as np

    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.bit_rate, ctx.framerate, ctx.time_base = 1_500_000, 30, Fraction(1, 30)
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": "100000"}
    out = []
    for i in range(frames):
        y = (np.add.outer(np.arange(height), np.arange(width)) + i * 8).astype(np.uint8)
        img = np.full((height * 3 // 2, width), 128, np.uint8)
        img[:height] = y
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(struct.pack("!I", len(f)) + f for f in out))
    return out


def packetize_vp8(frame: bytes, picture_id: int) -> list[bytes]:
    """VP8 payloads (RFC 7741) with a 15-bit picture id, S set on the first."""
    chunks = [frame[i : i + MAX_PAYLOAD] for i in range(0, len(frame), MAX_PAYLOAD)] or [b""]
    pid = struct.pack("!H", 0x8000 | (picture_id & 0x7FFF))
    return [bytes([0x90 if i == 0 else 0x80, 0x80]) + pid + c for i, c in enumerate(chunks)]


@dataclass
class Received:
    """What a receiving bot saw on one SSRC."""

    packets: int = 0
    bytes: int = 0
    highest: int = -1
    lost: int = 0
    first_key_ts: int | None = None
    first_frame_at: float | None = None
    decrypt: bool = True


@dataclass
class BotStats:
    joined_at: float = 0.0
    connected_at: float | None = None
    streams: dict[int, Received] = field(default_factory=dict)
    plis: int = 0
    nacks: int = 0
    reported_ssrcs: set[int] = field(default_factory=set)  # in receiver reports sent to us
    remb: int | None = None  # the last bandwidth estimate sent to us

    @property
    def first_frame(self) -> float | None:
        times = [s.first_frame_at for s in self.streams.values() if s.first_frame_at]
        return min(times) - self.joined_at if times else None

    @property
    def packets(self) -> int:
        return sum(s.packets for s in self.streams.values())

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.streams.values())


class Bot:
    def __init__(self, name: str, publish: bool, video: list[bytes] | None = None) -> None:
        self.name = name
        self.publish = publish
        self.video = video or []
        self.stats = BotStats()
        self.audio_ssrc = random.randint(1, 0xFFFFFFFF)
        self.video_ssrc = random.randint(1, 0xFFFFFFFF)
        self.rtx_ssrc = random.randint(1, 0xFFFFFFFF)
        self.transport: adapter.MediaTransport | None = None
        self._frame = 0
        self._send_task: asyncio.Task[None] | None = None
        self._sent: dict[int, bytes] = {}
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.role = "server"
        self.audio_pts = {OPUS_PT}

    # -- SDP

    def _media(self, kind: str, mid: str, direction: str) -> sdp.Media:
        assert self.transport is not None
        if kind == "audio":
            codecs_ = [sdp.Codec(OPUS_PT, "opus", 48000, 2, "minptime=10;useinbandfec=1")]
            ext = {EXT_AUDIO_LEVEL: EXTMAP[EXT_AUDIO_LEVEL], EXT_MID: EXTMAP[EXT_MID]}
        else:
            fb = ["nack", "nack pli", "ccm fir", "goog-remb"]
            codecs_ = [
                sdp.Codec(VP8_PT, "VP8", 90000, 0, "", fb),
                sdp.Codec(RTX_PT, "rtx", 90000, 0, f"apt={VP8_PT}"),
            ]
            ext = {EXT_ABS_SEND_TIME: EXTMAP[EXT_ABS_SEND_TIME], EXT_MID: EXTMAP[EXT_MID]}
        m = sdp.Media(kind, 9, "UDP/TLS/RTP/SAVPF", [str(c.pt) for c in codecs_], mid=mid)
        m.codecs, m.extmap, m.direction, m.rtcp_mux = codecs_, ext, direction, True
        m.ice_ufrag, m.ice_pwd = self.transport.ice_credentials
        m.fingerprints = self.transport.fingerprints
        m.candidates = self.transport.local_candidates()
        m.end_of_candidates = True
        if direction == "sendonly":
            ssrc = self.audio_ssrc if kind == "audio" else self.video_ssrc
            m.msid = f"{self.name} {self.name}-{kind}"
            m.ssrcs[ssrc] = {"cname": self.name, "msid": m.msid}
            if kind == "video":
                m.ssrcs[self.rtx_ssrc] = {"cname": self.name, "msid": m.msid}
                m.ssrc_groups.append(("FID", [self.video_ssrc, self.rtx_ssrc]))
        return m

    async def offer(self) -> str:
        """Our first offer: send audio+video when publishing, else receive both."""
        self.transport = adapter.MediaTransport(
            self._on_rtp, self._on_rtcp, self._on_state, controlling=True, peek_srtp=self._peek
        )
        await self.transport.gather()
        self.transport.set_receive_buffer(RECEIVE_BUFFER)
        direction = "sendonly" if self.publish else "recvonly"
        media = [self._media("audio", "0", direction), self._media("video", "1", direction)]
        for m in media:
            m.setup = "actpass"
        desc = sdp.SessionDescription(media=media, bundle=["0", "1"])
        self.stats.joined_at = time.monotonic()
        return sdp.write(desc, random.randint(1, 2**40), 1)

    def accept_answer(self, text: str) -> None:
        assert self.transport is not None
        desc = sdp.parse(text)
        ufrag, pwd = desc.ice_credentials()
        self.role = "server" if desc.dtls_setup() == "active" else "client"
        self.transport.start(ufrag, pwd, desc.dtls_fingerprints(), self.role)
        for m in desc.media:
            for c in m.candidates:
                spawn(self.transport.add_remote_candidate(c))

    async def answer(self, text: str, first: bool) -> str:
        """Answer a remote offer (the SFU's renegotiations, or Janus's subscriber offer)."""
        desc = sdp.parse(text)
        if first:
            self.stats.joined_at = time.monotonic()
            self.transport = adapter.MediaTransport(
                self._on_rtp, self._on_rtcp, self._on_state, peek_srtp=self._peek
            )
            await self.transport.gather()
            self.transport.set_receive_buffer(RECEIVE_BUFFER)
            self.role = "client" if desc.dtls_setup() in ("actpass", "passive") else "server"
        assert self.transport is not None
        media = []
        for m in desc.media:
            if m.port == 0 or m.kind not in ("audio", "video"):
                media.append(sdp.Media(m.kind, 0, m.proto, m.fmts, mid=m.mid))
                continue
            mine = self._media(m.kind, m.mid or "", "recvonly" if m.sends else "inactive")
            if m.kind == "video":
                vp8 = next((c for c in m.codecs if c.key == "vp8"), None)
                if vp8 is not None:
                    rtx = next((c for c in m.codecs if c.key == "rtx" and c.apt == vp8.pt), None)
                    mine.codecs = [sdp.Codec(vp8.pt, "VP8", 90000, 0, "", vp8.rtcp_fb)]
                    if rtx is not None:
                        mine.codecs.append(sdp.Codec(rtx.pt, "rtx", 90000, 0, f"apt={vp8.pt}"))
            else:
                opus = next((c for c in m.codecs if c.key == "opus"), m.codecs[0])
                self.audio_pts.add(opus.pt)
                mine.codecs = [sdp.Codec(opus.pt, opus.name, 48000, 2, opus.fmtp)]
            mine.fmts = [str(c.pt) for c in mine.codecs]
            mine.extmap = {i: u for i, u in m.extmap.items() if u in EXTMAP.values()}
            mine.setup = "passive" if self.role == "server" else "active"
            media.append(mine)
        out = sdp.SessionDescription(media=media, bundle=[m.mid for m in media if m.port and m.mid])
        if first:
            ufrag, pwd = desc.ice_credentials()
            self.transport.start(ufrag, pwd, desc.dtls_fingerprints(), self.role)
            for m in desc.media:
                for c in m.candidates:
                    await self.transport.add_remote_candidate(c)
        return sdp.write(out, random.randint(1, 2**40), 1)

    # -- media

    def _on_state(self, state: str) -> None:
        if state == "connected":
            self.stats.connected_at = time.monotonic()
            if self.publish and self._send_task is None:
                self._send_task = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self) -> None:
        """Opus every 20 ms and a VP8 frame every 1/30 s, paced on the monotonic clock."""
        assert self.transport is not None
        seq_v, seq_a = random.randint(0, 0x7FFF), random.randint(0, 0x7FFF)
        ts_v, ts_a = random.randint(0, 2**31), random.randint(0, 2**31)
        picture_id = 0
        next_audio = next_video = time.monotonic()
        level = [(EXT_AUDIO_LEVEL, bytes([0x80 | 40]))]
        while True:
            now = time.monotonic()
            if now >= next_audio:
                pkt = rtp.build(
                    OPUS_PT, seq_a, ts_a, self.audio_ssrc, OPUS_SILENCE, extensions_one_byte=level
                )
                self.transport.send_rtp(pkt)
                seq_a, ts_a = (seq_a + 1) & 0xFFFF, ts_a + 960
                next_audio = max(next_audio + 0.02, now - 0.1)
            if now >= next_video and self.video:
                frame = self.video[self._frame]
                self._frame = (self._frame + 1) % len(self.video)
                payloads = packetize_vp8(frame, picture_id)
                picture_id += 1
                for i, payload in enumerate(payloads):
                    abs_time = rtp.abs_send_time(time.time()).to_bytes(3, "big")
                    pkt = rtp.build(
                        VP8_PT,
                        seq_v,
                        ts_v,
                        self.video_ssrc,
                        payload,
                        marker=i == len(payloads) - 1,
                        extensions_one_byte=[(EXT_ABS_SEND_TIME, abs_time)],
                    )
                    self._sent[seq_v] = pkt
                    self._sent.pop((seq_v - 512) & 0xFFFF, None)
                    self.transport.send_rtp(pkt)
                    seq_v = (seq_v + 1) & 0xFFFF
                ts_v += 3000
                next_video = max(next_video + 1 / 30, now - 0.1)
            await asyncio.sleep(max(0.0, min(next_audio, next_video) - time.monotonic()))

    def _peek(self, data: bytes) -> bool:
        """Count a packet from its clear-text SRTP header; decrypt only to find a keyframe."""
        ssrc = int.from_bytes(data[8:12], "big")
        st = self.stats.streams.get(ssrc)
        if st is None:
            st = self.stats.streams[ssrc] = Received()
        if st.decrypt:
            return False  # decrypt: the first keyframe is looked for in the payload
        self._count(st, (data[2] << 8) | data[3], len(data))
        return True

    @staticmethod
    def _count(st: Received, seq: int, size: int) -> None:
        st.packets += 1
        st.bytes += size
        if st.highest >= 0:
            delta = rtp.seq_delta(seq, st.highest)
            if delta > 1:
                st.lost += delta - 1
            elif delta < 0:
                st.lost = max(0, st.lost - 1)  # a late packet fills a gap
            if delta > 0:
                st.highest = seq
        else:
            st.highest = seq

    def _on_rtp(self, data: bytes) -> None:
        try:
            view = rtp.parse(data)
        except ValueError:
            return
        now = time.monotonic()
        st = self.stats.streams.get(view.ssrc)
        if st is None:
            st = self.stats.streams[view.ssrc] = Received()
        self._count(st, view.sequence_number, len(data))
        if view.payload_type in self.audio_pts:
            st.decrypt = False  # nothing to look for in audio
            return
        if st.first_frame_at is None and view.payload_start < view.payload_end:
            payload = memoryview(data)[view.payload_start : view.payload_end]
            if st.first_key_ts is None and codecs.vp8_is_keyframe(payload):
                st.first_key_ts = view.timestamp
            if st.first_key_ts == view.timestamp and view.marker:
                st.first_frame_at = now
                st.decrypt = False

    def _on_rtcp(self, data: bytes) -> None:
        try:
            packets = rtcp.parse(data)
        except ValueError:
            return
        for p in packets:
            if isinstance(p, (rtcp.ReceiverReport, rtcp.SenderReport)):
                self.stats.reported_ssrcs.update(b.ssrc for b in p.reports)
            elif isinstance(p, rtcp.Remb):
                self.stats.remb = p.bitrate
            elif isinstance(p, (rtcp.Pli, rtcp.Fir)):
                self.stats.plis += 1
                self._frame = 0  # the loop starts with a keyframe
            elif isinstance(p, rtcp.Nack) and self.transport is not None:
                self.stats.nacks += 1
                for seq in p.lost:
                    pkt = self._sent.get(seq)
                    if pkt is not None:
                        self.transport.send_rtp(pkt)

    def report(self) -> bytes:
        """An RR + REMB so a receiving bot looks like a healthy browser to the SFU."""
        blocks = [
            rtcp.ReportBlock(s, 0, 0, r.highest & 0xFFFF, 0, 0, 0)
            for s, r in self.stats.streams.items()
        ]
        return rtcp.pack_rr(self.rtcp_ssrc, blocks[:31]) + rtcp.pack_remb(
            self.rtcp_ssrc, 5_000_000, list(self.stats.streams)[:8]
        )

    async def close(self) -> None:
        if self._send_task is not None:
            self._send_task.cancel()
        if self.transport is not None:
            await self.transport.close()
