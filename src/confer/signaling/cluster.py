"""Several processes as one signaling service: fan-out over the bus, resume across processes,
and the media plane's way back to sockets.

Messages for sockets of a meeting travel on `signal:{meeting_id}`, which a process follows
while it holds a socket there; each process delivers to its own sockets and ignores what it
published itself. Every process announces itself in presence (a key with a TTL); the sessions
of a process that stopped announcing are removed by the survivors and announced as left.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from confer.bus import EventBus
from confer.db.models import utcnow
from confer.signaling.codec import Outbound
from confer.signaling.connection import Connection
from confer.signaling.media import PeerRef
from confer.signaling.protocol import CloseCode, message
from confer.signaling.records import Admission
from confer.signaling.rooms import Room, Session

if TYPE_CHECKING:
    from confer.signaling.hub import Hub

log = logging.getLogger(__name__)
NODE_TTL = 15.0


def signal_topic(meeting_id: int) -> str:
    return f"signal:{meeting_id}"


class Cluster:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.enabled = hub.clustered

    async def follow(self, meeting_id: int) -> Callable[[], Awaitable[None]]:
        return await self.hub.ctx.bus.subscribe(
            signal_topic(meeting_id), lambda body: self.on_signal(meeting_id, body)
        )

    async def publish(self, meeting_id: int, body: dict[str, Any]) -> None:
        body["n"] = self.hub.node
        try:
            await self.hub.ctx.bus.publish(signal_topic(meeting_id), body)
        except Exception:
            log.exception("could not publish to the other signaling processes")

    async def on_signal(self, meeting_id: int, body: dict[str, Any]) -> None:
        """A message from another process for sockets of ours."""
        if body.get("n") == self.hub.node:
            return
        room = self.hub.rooms.get(meeting_id)
        if room is None:
            return
        kind = body.get("k")
        if kind == "room":
            room.broadcast(Outbound(body["m"]), body.get("x"))
        elif kind == "user":
            room.to_user(Outbound(body["m"]), body["u"], body.get("p"), body.get("x"))
        elif kind == "evict":
            s = room.sessions.get(body["s"])
            if s is not None and s.user_id == body["u"]:
                self.hub.forget(room, s, CloseCode.REPLACED, "Resumed on another server")

    async def claim(
        self, room: Room, conn: Connection, a: Admission, peer_id: str, hint: str | None
    ) -> Session | None:
        """Resume a session held (or waiting out its grace) on another process."""
        if not self.enabled:
            return None
        presence = self.hub.presence
        key = hint
        if key is None:
            mine = [
                e
                for e in await presence.snapshot(a.meeting_id)
                if e["user_id"] == a.user_id and e["peer_id"] == peer_id
            ]
            key = mine[0]["session_id"] if mine else None
        if key is None:
            return None
        before = await presence.claim(a.meeting_id, key, a.user_id, self.hub.node, peer_id)
        if before is None:
            return None
        s = Session(
            admission=a,
            session_id=key,
            peer_id=peer_id,
            joined_at=utcnow(),
            conn=conn,
            role=a.role,
            epoch=int(before.get("epoch", 0)) + 1,
            audio_muted=bool(before.get("audio_muted")),
            video_muted=bool(before.get("video_muted")),
            sharing=bool(before.get("sharing")),
            can_share_screen=a.can_share_screen,
        )
        with contextlib.suppress(KeyError, ValueError):
            s.joined_at = datetime.fromisoformat(before["joined_at"].replace("Z", "+00:00"))
        room.add(s)
        await self.publish(a.meeting_id, {"k": "evict", "s": key, "u": a.user_id})
        return s

    async def heartbeat(self) -> None:
        if self.enabled:
            await self.hub.presence.heartbeat(self.hub.node, NODE_TTL)

    async def reap(self) -> None:
        """Remove the sessions of processes that stopped announcing themselves."""
        if not self.enabled:
            return
        presence = self.hub.presence
        for meeting_id in list(self.hub.rooms.by_meeting):
            for e in await presence.dead_entries(meeting_id):
                if await presence.remove(meeting_id, e["session_id"], node=e["node"]):
                    await self.hub.announce_left(meeting_id, e, "disconnected")
                    plane = self.hub.media  # its transport, if any, goes with it
                    if plane is not None:
                        ref = PeerRef(meeting_id, e["user_id"], e["session_id"], e["peer_id"])
                        with contextlib.suppress(Exception):
                            await plane.peer_left(ref)


def _from_server(peer: PeerRef, msg_type: int, payload: dict[str, Any]) -> dict[str, Any]:
    return message(
        msg_type,
        peer.meeting_id,
        payload,
        to_user_id=peer.user_id,
        session_id=peer.session_id,
        peer_id=peer.peer_id,
    )


class HubSink:
    """How the media plane reaches sockets: messages from the server, `from_user_id` 0."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def send(self, peer: PeerRef, msg_type: int, payload: dict[str, Any]) -> None:
        msg = _from_server(peer, msg_type, payload)
        room = self.hub.rooms.get(peer.meeting_id)
        s = room.sessions.get(peer.session_id) if room else None
        if s is not None:
            self.hub.unicast(s, msg)
        else:
            await self.hub.to_user(peer.meeting_id, peer.user_id, msg, peer_id=peer.peer_id)

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        await self.hub.to_room(meeting_id, message(msg_type, meeting_id, payload))


class BusSink:
    """How the media plane of a process without a hub (`--only media`) reaches sockets: every
    message goes on the bus to the processes that hold them."""

    def __init__(self, bus: EventBus, ctx: Any = None) -> None:
        self.bus = bus
        self.ctx = ctx  # what the captions relay beside the SFU needs (the AI service)

    async def send(self, peer: PeerRef, msg_type: int, payload: dict[str, Any]) -> None:
        body = {"k": "user", "u": peer.user_id, "p": peer.peer_id, "x": None, "n": ""}
        body["m"] = _from_server(peer, msg_type, payload)
        await self.bus.publish(signal_topic(peer.meeting_id), body)

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        body = {"k": "room", "x": None, "n": "", "m": message(msg_type, meeting_id, payload)}
        await self.bus.publish(signal_topic(meeting_id), body)
