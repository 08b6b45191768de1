"""The SFU's own offers: which forwarded tracks a peer gets, on which m-lines, labelled how.

Mixed into `Peer`. An offer is a list of `Proposal`s applied only when the client's answer
comes (`Peer._on_answer`); a crossing client offer simply drops them.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from confer.sfu import messages, negotiation, sdp
from confer.sfu.background import spawn
from confer.sfu.negotiation import Outgoing, PayloadTypes
from confer.sfu.tracks import DownTrack, UpTrack


@dataclass
class Slot:
    mid: str
    kind: str
    origin: str  # "client" (the client's m-line) or "sfu" (one we added to send on)
    local: sdp.Media
    uptrack: UpTrack | None = None
    downtrack: DownTrack | None = None
    outgoing: Outgoing | None = None


@dataclass
class Proposal:
    slot: Slot
    uptrack: UpTrack | None  # None: free the slot
    outgoing: Outgoing | None
    new: bool


class Offering:
    room: Any
    ref: dict[str, Any]
    slots: list[Slot]
    pts: PayloadTypes
    pending: list[Proposal] | None
    needs_offer: bool
    transport: Any
    closed: bool
    lock: asyncio.Lock
    sdp_session: int
    sdp_version: int
    next_mid: int

    def _transport_desc(self, offer: bool) -> negotiation.Transport:  # provided by Peer
        raise NotImplementedError

    def _send(self, msg_type: int, payload: dict[str, Any]) -> None:  # provided by Peer
        raise NotImplementedError

    def request_negotiation(self) -> None:
        """The set of tracks this peer should receive changed."""
        self.needs_offer = True
        if self.pending is None and self.transport is not None and not self.closed:
            spawn(self._offer_soon())

    async def _offer_soon(self) -> None:
        await asyncio.sleep(0.02)  # coalesce several joins into one offer
        async with self.lock:
            if self.needs_offer and self.pending is None and not self.closed:
                self._offer()

    def _subscriptions_changed(self) -> bool:
        wanted = set(self.room.subscriptions_for(self))
        have = {s.downtrack.uptrack for s in self.slots if s.downtrack is not None}
        return wanted != have

    def _offer(self) -> None:
        self.needs_offer = False
        wanted = [u for u in self.room.subscriptions_for(self) if not u.closed]
        have = {s.downtrack.uptrack: s for s in self.slots if s.downtrack is not None}
        proposals: list[Proposal] = []
        for up, slot in have.items():
            if up not in wanted:
                proposals.append(Proposal(slot, None, None, False))
        free = [
            s
            for s in self.slots
            if s.origin == "sfu" and (s.downtrack is None or s.downtrack.uptrack not in wanted)
        ]
        for up in wanted:
            if up in have:
                continue
            slot = next((s for s in free if s.kind == up.kind), None)
            new = slot is None
            if slot is None:
                slot = Slot(self._new_mid(), up.kind, "sfu", sdp.Media(up.kind, 9, "", []))
            else:
                free.remove(slot)
                proposals = [p for p in proposals if p.slot is not slot]
            proposals.append(Proposal(slot, up, self._outgoing(slot.mid, up), new))
        if not proposals:
            return
        t = self._transport_desc(offer=True)
        planned = {p.slot.mid: p for p in proposals}
        media, tracks = [], []
        for slot in self.slots + [p.slot for p in proposals if p.new]:
            p = planned.get(slot.mid)
            if p is None:
                media.append(slot.local)
                if slot.downtrack is not None and slot.outgoing is not None:
                    tracks.append(self._track_info(slot.outgoing, slot.downtrack.uptrack))
                continue
            if p.outgoing is not None and p.uptrack is not None:
                media.append(negotiation.sending(p.outgoing, t, True))
                tracks.append(self._track_info(p.outgoing, p.uptrack))
            elif slot.outgoing is not None:
                media.append(negotiation.sending(slot.outgoing, t, False))
            else:
                media.append(slot.local)
        desc = sdp.SessionDescription(media=media)
        desc.bundle = [m.mid for m in media if m.port != 0 and m.mid is not None]
        self.sdp_version += 1
        self.pending = proposals
        text = sdp.write(desc, self.sdp_session, self.sdp_version)
        self._send(messages.OFFER, {"type": "offer", "sdp": text, "tracks": tracks})

    def _new_mid(self) -> str:
        taken = {s.mid for s in self.slots}
        while True:
            self.next_mid += 1
            mid = f"s{self.next_mid}"
            if mid not in taken:
                return mid

    def _outgoing(self, mid: str, up: UpTrack) -> Outgoing:
        publisher_codec = up.owner.codec_of(up)  # type: ignore[attr-defined]
        pt, rtx_pt = self.pts.for_codec(publisher_codec, up.kind == "video")
        codec = sdp.Codec(
            pt,
            publisher_codec.name,
            publisher_codec.clock_rate,
            publisher_codec.channels,
            publisher_codec.fmtp,
        )
        owner = up.owner
        stream = f"{owner.ref['user_id']}-{owner.ref['peer_id']}"  # type: ignore[attr-defined]
        if up.source.startswith("screen"):
            stream += "-screen"
        return Outgoing(
            mid,
            up.kind,
            codec,
            rtx_pt,
            self.pts.extmap_for(up.kind, up.extmap),
            random.randint(1, 0xFFFFFFFF),
            random.randint(1, 0xFFFFFFFF) if rtx_pt is not None else None,
            _token(stream),
            _token(up.key),
        )

    @staticmethod
    def _track_info(o: Outgoing, up: UpTrack) -> dict[str, Any]:
        owner = up.owner
        return {
            "mid": o.mid,
            "kind": up.kind,
            "source": up.source,
            "user_id": owner.ref["user_id"],  # type: ignore[attr-defined]
            "peer_id": owner.ref["peer_id"],  # type: ignore[attr-defined]
            "stream_id": o.stream_id,
            "track_id": o.track_id,
            "simulcast": up.simulcast,
        }


def _token(text: str) -> str:
    """msid / cname tokens: letters, digits and a few marks only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)[:64]
