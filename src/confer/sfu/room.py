"""A meeting on one worker: its peers, who receives what, moderation and the active speaker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confer.sfu import messages
from confer.sfu.background import spawn
from confer.sfu.captions import AudioTap
from confer.sfu.peer import Peer
from confer.sfu.speaker import SpeakerDetector
from confer.sfu.tracks import UpTrack

log = logging.getLogger("confer.sfu")

Outbox = Callable[[dict[str, Any], int, dict[str, Any]], None]
Broadcast = Callable[[int, int, dict[str, Any]], None]


class Room:
    def __init__(self, meeting_id: int, outbox: Outbox, broadcast: Broadcast, config: Any):
        self.meeting_id = meeting_id
        self.outbox = outbox
        self.broadcast = broadcast
        self.config = config
        self.peers: dict[str, Peer] = {}
        self.disallowed: set[tuple[int, str]] = set()  # (user_id, source)
        self.speaker = SpeakerDetector()
        self.packets_out = 0
        self.tap: AudioTap | None = None  # set for meetings with live captions

    def peer(self, ref: dict[str, Any]) -> Peer:
        key = f"{ref['user_id']}/{ref['peer_id']}"
        p = self.peers.get(key)
        if p is None:
            p = self.peers[key] = Peer(self, ref, self.outbox, self.config)
        return p

    async def handle(
        self, ref: dict[str, Any], msg_type: int, payload: dict[str, Any], can_publish: bool
    ) -> None:
        await self.peer(ref).handle(msg_type, payload, can_publish)

    # -- what each peer receives

    def subscriptions_for(self, peer: Peer) -> list[UpTrack]:
        return [
            up
            for p in self.peers.values()
            if p is not peer and not p.closed
            for up in p.uptracks.values()
            if not up.closed
        ]

    def track_added(self, up: UpTrack) -> None:
        if (up.owner.user_id, up.source) in self.disallowed:  # type: ignore[attr-defined]
            up.set_allowed(False)
        self._renegotiate_others(up.owner)

    def track_removed(self, up: UpTrack) -> None:
        self._renegotiate_others(up.owner)

    def _renegotiate_others(self, owner: object) -> None:
        for p in self.peers.values():
            if p is not owner and not p.closed:
                p.request_negotiation()

    # -- moderation

    def set_allowed(self, user_id: int, media_type: str, allowed: bool) -> None:
        for source in messages.MEDIA_TYPE_SOURCES.get(media_type, ()):
            if allowed:
                self.disallowed.discard((user_id, source))
            else:
                self.disallowed.add((user_id, source))
            for p in self.peers.values():
                if p.user_id != user_id:
                    continue
                for up in p.uptracks.values():
                    if up.source == source:
                        up.set_allowed(allowed)
                        if not allowed and up.kind == "audio":
                            self.speaker.forget(p.key)

    async def peer_left(self, ref: dict[str, Any]) -> None:
        p = self.peers.pop(f"{ref['user_id']}/{ref['peer_id']}", None)
        if p is not None:
            self.speaker.forget(p.key)
            await p.close()

    def transport_failed(self, peer: Peer) -> None:
        """ICE/DTLS gave up (consent lost): drop the peer's media, ask it to reconnect."""
        if self.peers.get(peer.key) is not peer:
            return
        del self.peers[peer.key]
        self.speaker.forget(peer.key)
        self.outbox(peer.ref, messages.MEDIA_RESET, {"reason": "transport_failed"})
        spawn(peer.close())

    async def close(self) -> None:
        if self.tap is not None:
            self.tap.close()
        peers, self.peers = list(self.peers.values()), {}
        for p in peers:
            await p.close()

    # -- active speaker

    def observe_level(self, up: UpTrack, level: int, voice: bool, now: float) -> None:
        if up.allowed:
            self.speaker.observe(up.owner.key, level, voice, now)  # type: ignore[attr-defined]

    def tick_speaker(self, now: float) -> None:
        key = self.speaker.tick(now)
        if key is None:
            return
        p = self.peers.get(str(key))
        if p is None:
            return
        self.broadcast(
            self.meeting_id,
            messages.ACTIVE_SPEAKER,
            {"user_id": p.user_id, "peer_id": p.ref["peer_id"], "source": "microphone"},
        )

    def tick_fast(self, now: float) -> None:
        for p in list(self.peers.values()):
            p.tick_fast(now)
        if self.tap is not None:
            self.tap.flush()

    def tick_slow(self, now: float) -> None:
        for p in list(self.peers.values()):
            p.tick_slow(now)
