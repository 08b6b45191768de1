"""One participant connection to the SFU: its transport, its m-lines, its negotiation.

The client makes the first offer; when what it should receive changes the SFU offers (the
client answers). The SFU is the *polite* side of perfect negotiation: a client offer that
crosses ours wins, ours is dropped (nothing of it was applied) and made again afterwards.
State changes only when an answer is applied, so a lost or late answer leaves nothing
half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from confer.sfu import _fanout, messages, negotiation, rtcp, rtp, sdp
from confer.sfu.adapter import MediaTransport
from confer.sfu.estimator import BandwidthEstimate
from confer.sfu.negotiation import PayloadTypes
from confer.sfu.offering import Offering, Proposal, Slot
from confer.sfu.routing import MediaRouting
from confer.sfu.tracks import DownTrack, UpTrack

log = logging.getLogger("confer.sfu")

MAX_EARLY_CANDIDATES = 64
MAX_LAYERS = 3  # simulcast encodings taken per track; more are not forwarded


class BadRequest(ValueError):
    """A client message the SFU refuses; its text goes back in an `error` message."""


class Peer(MediaRouting, Offering):
    def __init__(
        self,
        room: Any,
        ref: dict[str, Any],
        outbox: Callable[[dict[str, Any], int, dict[str, Any]], None],
        config: Any,
    ) -> None:
        super().__init__()
        self.room = room
        self.ref = ref
        self.key = f"{ref['user_id']}/{ref['peer_id']}"
        self.user_id: int = ref["user_id"]
        self._outbox = outbox
        self.config = config
        self.transport: MediaTransport | None = None
        self.remote_ufrag: str | None = None
        self.slots: list[Slot] = []
        self.pts = PayloadTypes()
        self.pending: list[Proposal] | None = None
        self.needs_offer = False
        self.sdp_session = random.randint(1, 2**62)
        self.sdp_version = 0
        self.early_candidates: list[str | None] = []
        self.lock = asyncio.Lock()
        self.bwe = BandwidthEstimate(start=config.start_bitrate, ceiling=config.max_bitrate)
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.connected = False
        self.closed = False
        self.can_publish = True
        self.next_mid = 0

    # -- messages from the client

    async def handle(self, msg_type: int, payload: dict[str, Any], can_publish: bool) -> None:
        async with self.lock:
            if self.closed:
                return
            self.can_publish = can_publish
            if msg_type == messages.OFFER:
                await self._on_offer(payload)
            elif msg_type == messages.ANSWER:
                self._on_answer(payload)
            elif msg_type == messages.ICE_CANDIDATE:
                await self._on_candidate(payload)
            elif msg_type == messages.VIDEO_CONSTRAINTS:
                self._on_constraints(payload)
            else:
                raise BadRequest(f"message type {msg_type} is not for the SFU")
            if self.needs_offer and self.pending is None and self.transport is not None:
                self._offer()

    @staticmethod
    def _sdp_of(payload: dict[str, Any], kind: str) -> sdp.SessionDescription:
        text = payload.get("sdp")
        if payload.get("type", kind) != kind or not isinstance(text, str):
            raise BadRequest(f"payload must carry an SDP {kind}")
        try:
            return sdp.parse(text)
        except ValueError as exc:
            raise BadRequest(f"invalid SDP {kind}: {exc}") from None

    async def _on_offer(self, payload: dict[str, Any]) -> None:
        desc = self._sdp_of(payload, "offer")
        try:
            ufrag, pwd = desc.ice_credentials()
            fingerprints = desc.dtls_fingerprints()
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        sources = payload.get("sources") or {}
        if not isinstance(sources, dict) or len(sources) > sdp.MAX_MEDIA:
            raise BadRequest("payload.sources must map mids to sources")
        bad = [v for v in sources.values() if v not in messages.SOURCES]
        if bad:  # refused before anything changes: nothing is left half-applied
            raise BadRequest(f"unknown source {str(bad[0])[:20]!r}; use {list(messages.SOURCES)}")
        if self.pending is not None:  # glare: the client's offer wins
            self.pending = None
            self.needs_offer = True
        if self.remote_ufrag is not None and ufrag != self.remote_ufrag:
            await self._reset()  # a new RTCPeerConnection (or an ICE restart): start afresh
        first = self.transport is None
        if first:
            self.transport = MediaTransport(
                self.on_rtp, self.on_rtcp, self._on_transport_state, self.config.announced_ip
            )
            await self.transport.gather()
            # A worker the OS leaves unscheduled for a moment must not drop what arrives.
            self.transport.set_receive_buffer(self.config.receive_buffer)
            self.remote_ufrag = ufrag
        self.pts.learn(desc)
        answer = self._answer(desc, sources)
        self._send(messages.ANSWER, {"type": "answer", "sdp": answer})
        if first:
            assert self.transport is not None
            setup = desc.dtls_setup()
            self.transport.start(
                ufrag, pwd, fingerprints, "server" if setup == "active" else "client"
            )
            for m in desc.media:
                for c in m.candidates:
                    await self._add_candidate(c)
            for c in self.early_candidates:
                await self._add_candidate(c)
            self.early_candidates.clear()
        self.needs_offer = self.needs_offer or self._subscriptions_changed()

    def _transport_desc(self, offer: bool) -> negotiation.Transport:
        assert self.transport is not None
        ufrag, pwd = self.transport.ice_credentials
        setup = "passive" if self.transport_role == "server" else "active"
        return negotiation.Transport(
            ufrag, pwd, self.transport.fingerprints, setup, self.transport.local_candidates()
        )

    @property
    def transport_role(self) -> str:
        return getattr(self, "_role", "client")

    def _answer(self, desc: sdp.SessionDescription, sources: dict[str, Any]) -> str:
        self._role = "server" if desc.dtls_setup() == "active" else "client"
        t = self._transport_desc(offer=False)
        by_mid = {s.mid: s for s in self.slots}
        ordered: list[Slot] = []
        media: list[sdp.Media] = []
        video_seen = 0
        for m in desc.media:
            slot = by_mid.get(m.mid or "")
            if m.kind not in ("audio", "video") or m.port == 0 or m.mid is None:
                local = (
                    negotiation.rejected(m)
                    if m.kind in ("audio", "video")
                    else sdp.Media(m.kind, 0, m.proto, m.fmts, mid=m.mid)
                )
                if slot is not None:
                    self._drop_slot(slot)
                media.append(local)
                continue
            if slot is not None and slot.origin == "sfu":
                active = slot.downtrack is not None and m.receives
                assert slot.outgoing is not None
                slot.local = negotiation.sending(slot.outgoing, t, active)
                if slot.downtrack is not None:
                    slot.downtrack.paused = not m.receives
                ordered.append(slot)
                media.append(slot.local)
                continue
            local, codec, rtx = negotiation.answer_published(
                m, t, self.config.video_codecs, self.can_publish
            )
            if slot is None:
                slot = Slot(m.mid, m.kind, "client", local)
            slot.local = local
            ordered.append(slot)
            media.append(local)
            if m.kind == "video":
                video_seen += 1
            source = sources.get(m.mid) or _default_source(m.kind, video_seen)
            if local.direction == "recvonly" and codec is not None:
                self._publish(slot, m, codec, rtx, str(source))
            elif slot.uptrack is not None:
                self._unpublish(slot)
        self.slots = ordered + [s for s in self.slots if s not in ordered and s.origin == "sfu"]
        out = sdp.SessionDescription(media=media)
        out.bundle = [m.mid for m in media if m.port != 0 and m.mid is not None]
        self.sdp_version += 1
        return sdp.write(out, self.sdp_session, self.sdp_version)

    def _publish(
        self, slot: Slot, m: sdp.Media, codec: sdp.Codec, rtx: sdp.Codec | None, source: str
    ) -> None:
        up = slot.uptrack
        if up is not None and up.pt == codec.pt and up.source == source:
            return  # unchanged by this renegotiation
        if up is not None:
            self._unpublish(slot)
        rids = m.send_rids()[:MAX_LAYERS] if m.simulcast else []
        up = UpTrack(
            f"{self.key}/{m.mid}",
            self,
            slot.mid,
            m.kind,
            source,
            codec.key,
            codec.clock_rate,
            codec.pt,
            rtx.pt if rtx else None,
            dict(m.extmap),
            rids,
            self._send_pli,
        )
        self.add_uptrack(up, m)
        slot.uptrack = up
        self.room.track_added(up)

    def _unpublish(self, slot: Slot) -> None:
        up = slot.uptrack
        if up is None:
            return
        slot.uptrack = None
        self.remove_uptrack(up)
        self.room.track_removed(up)

    def _drop_slot(self, slot: Slot) -> None:
        self._unpublish(slot)
        if slot.downtrack is not None:
            self.detach(slot.downtrack)
            slot.downtrack = None

    def _on_answer(self, payload: dict[str, Any]) -> None:
        desc = self._sdp_of(payload, "answer")
        if self.pending is None:
            log.info("peer %s: answer without a pending offer ignored", self.key)
            return
        proposals, self.pending = self.pending, None
        answered = {m.mid: m for m in desc.media}
        t = self._transport_desc(offer=False)
        for p in proposals:
            slot = p.slot
            if p.new:
                self.slots.append(slot)
            if slot.downtrack is not None:
                self.detach(slot.downtrack)
                slot.downtrack = None
            m = answered.get(slot.mid)
            accepted = m is not None and m.port != 0 and m.receives
            if (
                p.uptrack is not None
                and p.outgoing is not None
                and accepted
                and not p.uptrack.closed
            ):
                assert m is not None
                slot.outgoing = p.outgoing
                dt = DownTrack(
                    self,
                    p.uptrack,
                    slot.mid,
                    p.outgoing.codec.pt,
                    p.outgoing.rtx_pt,
                    {i: u for i, u in m.extmap.items() if i in p.outgoing.extmap},
                    self._media_sender(),
                )
                dt.ssrc, dt.rtx_ssrc = p.outgoing.ssrc, p.outgoing.rtx_ssrc
                slot.downtrack = dt
                self.attach(dt)
                if self.connected:
                    dt.activate()
                slot.local = negotiation.sending(p.outgoing, t, True)
            elif slot.outgoing is not None:
                slot.local = negotiation.sending(slot.outgoing, t, False)
        self.needs_offer = self.needs_offer or self._subscriptions_changed()

    async def _on_candidate(self, payload: dict[str, Any]) -> None:
        cand = payload.get("candidate")
        if cand is not None and not isinstance(cand, str):
            raise BadRequest("payload.candidate must be a string")
        value = cand or None  # "" or null: end of candidates
        if self.transport is None:
            if len(self.early_candidates) >= MAX_EARLY_CANDIDATES:
                raise BadRequest("too many ICE candidates before an offer")
            self.early_candidates.append(value)
            return
        await self._add_candidate(value)

    async def _add_candidate(self, value: str | None) -> None:
        assert self.transport is not None
        try:
            await self.transport.add_remote_candidate(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def _on_constraints(self, payload: dict[str, Any]) -> None:
        tracks = payload.get("tracks")
        if not isinstance(tracks, list) or len(tracks) > 256:
            raise BadRequest("payload.tracks must be a list of {mid, width, height}")
        by_mid = {s.mid: s for s in self.slots}
        for item in tracks:
            if not isinstance(item, dict):
                raise BadRequest("payload.tracks must be a list of {mid, width, height}")
            height, width = item.get("height"), item.get("width", 0)
            if not isinstance(height, int) or not isinstance(width, int) or height < 0:
                raise BadRequest("width and height must be non-negative integers")
            slot = by_mid.get(str(item.get("mid")))
            if slot is None or slot.downtrack is None or slot.kind != "video":
                continue
            dt = slot.downtrack
            dt.tile_height = min(height, 4320)
            dt.paused = height == 0 or width == 0
        self.select_layers(time.monotonic())

    # -- transport

    def _on_transport_state(self, state: str) -> None:
        if state == "connected":
            self.connected = True
            for dt in self.downtracks():
                dt.activate()
            for up in self.uptracks.values():
                for layer in up.layers:
                    up.request_keyframe(layer)
        elif state == "failed" and not self.closed:
            log.info("peer %s: media transport failed", self.key)
            self.connected = False
            self.room.transport_failed(self)

    def _media_sender(self) -> _fanout.Route | Callable[[bytes | bytearray], bool]:
        """The transport's route, which the C forwarding loop sends through, when no test loss
        is configured (downtracks are dropped whenever the transport is replaced)."""
        if self.transport is not None and not self.config.test_send_loss:
            return self.transport.route
        return self.send_media

    def send_media(self, data: bytes | bytearray) -> bool:
        t = self.transport
        if t is None:
            return False
        loss = self.config.test_send_loss
        if loss and random.random() < loss:
            return True  # test switch: lost on the way to the subscriber
        return t.send_rtp(data)

    def send_rtcp(self, data: bytes) -> bool:
        t = self.transport
        return t.send_rtcp(data) if t is not None else False

    def _send_pli(self, media_ssrc: int) -> bool:
        return self.send_rtcp(rtcp.pack_pli(self.rtcp_ssrc, media_ssrc))

    def _send(self, msg_type: int, payload: dict[str, Any]) -> None:
        self._outbox(self.ref, msg_type, payload)

    async def _reset(self) -> None:
        for slot in list(self.slots):
            self._drop_slot(slot)
        self.slots = []
        self.pending = None
        self.pts = PayloadTypes()
        self.connected = False
        transport, self.transport = self.transport, None
        self.remote_ufrag = None
        if transport is not None:
            await transport.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for slot in list(self.slots):
            self._drop_slot(slot)
        transport, self.transport = self.transport, None
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.send_rtcp(rtcp.pack_bye([self.rtcp_ssrc]))
            await transport.close()


def _default_source(kind: str, video_index: int) -> str:
    if kind == "audio":
        return "microphone"
    return "camera" if video_index <= 1 else "screen"


__all__ = ["BadRequest", "Peer", "rtp"]
