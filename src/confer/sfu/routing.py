"""A peer's media in and out: RTP from its publications, RTCP both ways, periodic feedback.

Mixed into `Peer`; kept apart so the negotiation code and the per-packet code each read in
one sitting. Everything here runs synchronously from the socket callback.
"""

from __future__ import annotations

import time
from typing import Any

from confer.sfu import rtcp, rtp, sdp, simulcast
from confer.sfu.estimator import BandwidthEstimate
from confer.sfu.speaker import parse_audio_level
from confer.sfu.tracks import MID, NACK_TRIES, REPAIRED_RID, RID, DownTrack, Layer, UpTrack

AUDIO_BUDGET = 64_000  # bits per second set aside per forwarded audio track
MIN_REMB = 150_000


class MediaRouting:
    room: Any
    bwe: BandwidthEstimate
    rtcp_ssrc: int
    config: Any
    transport: Any  # MediaTransport | None, provided by Peer

    def __init__(self) -> None:
        self.uptracks: dict[str, UpTrack] = {}
        self.up_codecs: dict[str, sdp.Codec] = {}
        self.ssrc_table: dict[int, tuple[UpTrack, Layer, bool]] = {}
        self.down_by_ssrc: dict[int, DownTrack] = {}
        self._downtracks: list[DownTrack] = []
        self.mid_id = self.rid_id = self.rrid_id = 0
        self.packets_in = 0
        self.packets_out = 0

    def send_rtcp(self, data: bytes) -> bool:  # provided by Peer
        raise NotImplementedError

    # -- bookkeeping

    def add_uptrack(self, up: UpTrack, m: sdp.Media) -> None:
        self.uptracks[up.mid] = up
        codec = m.codec(up.pt)
        assert codec is not None
        self.up_codecs[up.mid] = codec
        ids = {uri: i for i, uri in m.extmap.items()}
        self.mid_id = ids.get(MID, self.mid_id)
        self.rid_id = ids.get(RID, self.rid_id)
        self.rrid_id = ids.get(REPAIRED_RID, self.rrid_id)
        if not up.simulcast:
            layer = up.layers[0]
            rtx_ssrcs = {g[1][1] for g in m.ssrc_groups if g[0] == "FID" and len(g[1]) > 1}
            for ssrc in m.ssrcs:
                if ssrc in rtx_ssrcs:
                    layer.rtx_ssrc = ssrc
                    self.ssrc_table[ssrc] = (up, layer, True)
                elif layer.ssrc is None:
                    layer.ssrc = ssrc
                    self.ssrc_table[ssrc] = (up, layer, False)

    def remove_uptrack(self, up: UpTrack) -> None:
        up.closed = True
        self.uptracks.pop(up.mid, None)
        for ssrc in [s for s, e in self.ssrc_table.items() if e[0] is up]:
            del self.ssrc_table[ssrc]
        for dt in list(up.downtracks):
            dt.active = False
        up.downtracks.clear()

    def codec_of(self, up: UpTrack) -> sdp.Codec:
        return self.up_codecs[up.mid]

    def attach(self, dt: DownTrack) -> None:
        dt.uptrack.downtracks.append(dt)
        self._downtracks.append(dt)
        self.down_by_ssrc[dt.ssrc] = dt

    def detach(self, dt: DownTrack) -> None:
        dt.active = False
        if dt in dt.uptrack.downtracks:
            dt.uptrack.downtracks.remove(dt)
        if dt in self._downtracks:
            self._downtracks.remove(dt)
        self.down_by_ssrc.pop(dt.ssrc, None)

    def downtracks(self) -> list[DownTrack]:
        return list(self._downtracks)

    # -- RTP from this peer's publications

    def _learn(self, data: bytes, view: rtp.RtpView) -> tuple[UpTrack, Layer, bool] | None:
        """Bind an unknown SSRC to a track and layer by its mid / rid header extensions."""
        mid = rid = rrid = None
        if view.ext_profile:
            try:
                for ext_id, off, n in rtp.extensions(data, view):
                    value = data[off : off + n].decode("ascii", "replace")
                    if ext_id == self.mid_id:
                        mid = value
                    elif ext_id == self.rid_id:
                        rid = value
                    elif ext_id == self.rrid_id:
                        rrid = value
            except ValueError:
                return None
        up = self.uptracks.get(mid) if mid else None
        if up is None:
            matches = [u for u in self.uptracks.values() if view.payload_type in (u.pt, u.rtx_pt)]
            if len(matches) != 1:
                return None
            up = matches[0]
        is_rtx = view.payload_type == up.rtx_pt and up.rtx_pt is not None
        if up.simulcast:
            layer = up.layer_by_rid(rrid if is_rtx and rrid else rid or "")
            if layer is None:
                return None
        else:
            layer = up.layers[0]
        if is_rtx:
            layer.rtx_ssrc = view.ssrc
        elif layer.ssrc != view.ssrc:
            if layer.ssrc is not None:  # the publisher restarted this encoding
                self.ssrc_table.pop(layer.ssrc, None)
            layer.ssrc = view.ssrc
        entry = (up, layer, is_rtx)
        self.ssrc_table[view.ssrc] = entry
        return entry

    def on_rtp(self, data: bytes) -> None:
        try:
            view = rtp.parse(data)
        except ValueError:
            return
        entry = self.ssrc_table.get(view.ssrc) or self._learn(data, view)
        if entry is None:
            return
        up, layer, is_rtx = entry
        if is_rtx:
            if layer.ssrc is None:
                return
            try:
                data = rtp.unwrap_rtx(data, view, up.pt, layer.ssrc)
                view = rtp.parse(data)
            except ValueError:
                return
        elif view.payload_type != up.pt:
            return
        now = time.monotonic()
        if not layer.stats.update(view.sequence_number, view.timestamp, now):
            return
        self.packets_in += 1
        layer.cache.store(view.sequence_number, data)
        layer.rate.add(len(data), now)
        layer.last_packet = now
        if up.audio_level_id and view.ext_profile:
            try:
                found = rtp.find_extension(data, view, up.audio_level_id)
            except ValueError:  # an element overruns the block: the packet is malformed
                return
            if found is not None:
                level, voice = parse_audio_level(data[found[0] : found[0] + 1])
                self.room.observe_level(up, level, voice, now)
        elif up.simulcast and up.codec == "vp8" and view.payload_start < view.payload_end:
            from confer.sfu.codecs import vp8_frame_size

            size = vp8_frame_size(memoryview(data)[view.payload_start : view.payload_end])
            if size is not None:
                layer.height = size[1]
        try:
            self.room.packets_out += up.forward(layer, data, view, now)
        except ValueError:  # header extensions the C loop's full parse refuses: dropped, quietly
            return
        tap = self.room.tap  # live captions (sfu/captions.py); None unless the meeting wants them
        if tap is not None and up.kind == "audio":
            tap.push(up, view.timestamp, data[view.payload_start : view.payload_end])

    # -- RTCP from this peer, as publisher (SR) and as subscriber (RR, NACK, PLI, REMB)

    def on_rtcp(self, data: bytes) -> None:
        try:
            packets = rtcp.parse(data)
        except ValueError:
            return
        now = time.monotonic()
        for p in packets:
            if isinstance(p, rtcp.SenderReport):
                self._on_sender_report(p, now)
                self._on_reports(p.reports, now)
            elif isinstance(p, rtcp.ReceiverReport):
                self._on_reports(p.reports, now)
            elif isinstance(p, rtcp.Nack):
                self._on_nack(p, now)
            elif isinstance(p, rtcp.Pli):
                self._on_keyframe_request(p.media_ssrc, now)
            elif isinstance(p, rtcp.Fir):
                for ssrc, _ in p.entries:
                    self._on_keyframe_request(ssrc, now)
            elif isinstance(p, rtcp.Remb):
                self.bwe.on_remb(p.bitrate)

    def _on_sender_report(self, sr: rtcp.SenderReport, now: float) -> None:
        entry = self.ssrc_table.get(sr.ssrc)
        if entry is None or entry[2]:
            return
        up, layer, _ = entry
        layer.sr_ntp, layer.sr_rtp = sr.ntp, sr.rtp_ts
        layer.stats.last_sr_ntp = rtcp.ntp_middle(sr.ntp)
        layer.stats.last_sr_arrival = now
        for dt in up.downtracks:
            if dt.current is layer and dt.active:
                report = dt.sender_report(sr.ntp, sr.rtp_ts)
                if report is not None:
                    dt.subscriber.send_rtcp(report)  # type: ignore[attr-defined]

    def _on_reports(self, reports: list[rtcp.ReportBlock], now: float) -> None:
        worst = -1.0
        for block in reports:
            if block.ssrc in self.down_by_ssrc:
                worst = max(worst, block.fraction_lost / 256)
        if worst >= 0:
            self.bwe.on_loss(worst, now)

    def _on_nack(self, nack: rtcp.Nack, now: float) -> None:
        dt = self.down_by_ssrc.get(nack.media_ssrc)
        if dt is None:
            return
        upstream: dict[Layer, list[int]] = {}
        for seq in nack.lost[:256]:
            if dt.retransmit(seq, now) is None:
                found = dt.seqmap.source_of(seq)
                layer = next(
                    (la for la in dt.uptrack.layers if found and la.ssrc == found[0]), None
                )
                if layer is not None and found is not None:
                    upstream.setdefault(layer, []).append(found[1])
        for layer, lost in upstream.items():
            owner = dt.uptrack.owner
            if layer.ssrc is not None:
                owner.send_rtcp(rtcp.pack_nack(owner.rtcp_ssrc, layer.ssrc, lost))  # type: ignore[attr-defined]

    def _on_keyframe_request(self, media_ssrc: int, now: float) -> None:
        dt = self.down_by_ssrc.get(media_ssrc)
        if dt is not None:
            dt.uptrack.request_keyframe(dt.current or dt.target, now)

    # -- periodic work

    def tick_fast(self, now: float) -> None:
        """NACK what this peer's publications lost on the way to us; follow a new ICE pair."""
        if self.transport is not None:
            self.transport.refresh_route()
        for up in self.uptracks.values():
            for layer in up.layers:
                missing = layer.stats.missing
                if not missing or layer.ssrc is None:
                    continue
                tries = layer.nack_tries
                lost = []
                for seq in list(missing):
                    n = tries.get(seq, 0) + 1
                    if n > NACK_TRIES:
                        missing.discard(seq)
                        tries.pop(seq, None)
                        continue
                    tries[seq] = n
                    lost.append(seq)
                if len(tries) > 1024:
                    tries.clear()
                if lost:
                    self.send_rtcp(rtcp.pack_nack(self.rtcp_ssrc, layer.ssrc, lost))

    def tick_slow(self, now: float) -> None:
        """Receiver reports and a bandwidth estimate to this peer as publisher; layer choice."""
        blocks = []
        video_ssrcs: list[int] = []
        remb = 0
        for up in self.uptracks.values():
            for layer in up.layers:
                if now - layer.last_packet > 1.0:
                    layer.rate.roll(now)  # a stopped layer's rate must fall to zero
                if layer.ssrc is None or not layer.stats.received:
                    continue
                blocks.append(layer.stats.report(layer.ssrc, now))
                if up.kind == "video":
                    video_ssrcs.append(layer.ssrc)
            if up.kind == "video":
                remb += self._remb_for(up)
        if blocks:
            data = rtcp.pack_rr(self.rtcp_ssrc, blocks)
            if video_ssrcs:
                data += rtcp.pack_remb(self.rtcp_ssrc, remb, video_ssrcs)
            self.send_rtcp(data)
        self.select_layers(now)

    def _remb_for(self, up: UpTrack) -> int:
        """A simulcast publisher sends all its layers at full rate (subscribers pick); a
        single-layer publisher is held to what its slowest subscriber can take."""
        ceiling = self.config.max_bitrate
        if up.simulcast or not up.downtracks:
            return ceiling
        slowest = min(dt.subscriber.bwe.bitrate for dt in up.downtracks)  # type: ignore[attr-defined]
        return max(MIN_REMB, min(ceiling, slowest))

    def select_layers(self, now: float) -> None:
        videos = [dt for dt in self._downtracks if dt.kind == "video" and not dt.paused]
        audios = sum(1 for dt in self._downtracks if dt.kind == "audio")
        if not videos:
            return
        budget = max(0, self.bwe.bitrate - AUDIO_BUDGET * audios) // len(videos)
        for dt in videos:
            if dt.waiting_for_keyframe:  # the last request may have been lost
                dt.uptrack.request_keyframe(dt.target, now)
            up = dt.uptrack
            if not up.simulcast:
                dt.set_target(up.layers[0])
                continue
            index = simulcast.choose([la.info() for la in up.layers], dt.tile_height, budget, now)
            if index >= 0:
                dt.set_target(up.layers[index])
