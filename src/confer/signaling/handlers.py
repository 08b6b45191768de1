"""What the server does with each client message type, with the role checks of `roles.py`.

Moderation asked for over signaling (mute someone, mute everyone, grant or revoke screen
sharing) goes through the same domain services as the REST routes, which check the actor,
write the database and the audit log, and publish the bus event; `moderation.py` then turns
that event into messages and enforcement on every process, exactly as for a REST request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from confer.db.models import Participant
from confer.services.roles import Permission
from confer.signaling import protocol as p
from confer.signaling.protocol import Inbound, MsgType, SignalCode, SignalError, message
from confer.signaling.roominfo import room_info

if TYPE_CHECKING:
    from confer.signaling.hub import Hub
    from confer.signaling.rooms import Session

# An SDP that offers to send media: `sendrecv` / `sendonly` (or no direction: sendrecv).
_SENDING = re.compile(r"^a=(sendrecv|sendonly)\s*$", re.MULTILINE)


class Handlers:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.table = {
            MsgType.OFFER: self.relay,
            MsgType.ANSWER: self.relay,
            MsgType.ICE_CANDIDATE: self.relay,
            MsgType.JOIN_ROOM: self.join_room,
            MsgType.LEAVE_ROOM: self.leave_room,
            MsgType.CHAT: self.chat,
            MsgType.SCREEN_SHARE: self.screen_share,
            MsgType.MEDIA_CONTROL: self.media_control,
            MsgType.PING: self.ping,
        }

    async def handle(self, s: Session, msg: Inbound) -> None:
        self.hub.touch(s)
        handler = self.table.get(msg.type)  # type: ignore[call-overload]
        if handler is None:  # an extension type registered by the media plane
            await self.to_media(s, msg, msg.payload)
            return
        await handler(s, msg)

    async def ping(self, s: Session, msg: Inbound) -> None:
        self.hub.unicast(
            s, message(MsgType.PONG, s.meeting_id, {}, session_id=s.session_id, peer_id=s.peer_id)
        )

    async def join_room(self, s: Session, msg: Inbound) -> None:
        """The socket joined on connect; join-room again just returns a fresh room-info."""
        p.join_room(msg, s.meeting_id, s.user_id)
        entries = await self.hub.presence.snapshot(s.meeting_id)
        self.hub.unicast(s, room_info(self.hub, s, entries, resumed=False))

    async def leave_room(self, s: Session, msg: Inbound) -> None:
        await self.hub.leave(s, "left", close=(p.CloseCode.NORMAL, "Left the meeting"))

    # --- WebRTC signaling -----------------------------------------------------------------------

    async def relay(self, s: Session, msg: Inbound) -> None:
        payload = p.media_payload(msg)
        audience = msg.type != MsgType.ICE_CANDIDATE and not s.may(Permission.PUBLISH)
        if audience and _SENDING.search(payload["sdp"]):
            raise p.forbidden("Audience members cannot publish: offer receive-only media")
        if not msg.to_user_id:
            await self.to_media(s, msg, payload)
            return
        out = message(
            msg.type,
            s.meeting_id,
            payload,
            from_user_id=s.user_id,
            to_user_id=msg.to_user_id,
            session_id=s.session_id,
            peer_id=s.peer_id,
        )
        delivered = await self.hub.to_user(s.meeting_id, msg.to_user_id, out, msg.to_peer_id)
        if not delivered and not await self._present(s.meeting_id, msg.to_user_id, msg.to_peer_id):
            raise SignalError(
                SignalCode.NOT_FOUND, f"User {msg.to_user_id} is not connected to this meeting"
            )

    async def to_media(self, s: Session, msg: Inbound, payload: dict[str, Any]) -> None:
        plane = self.hub.media
        if plane is None:
            raise SignalError(
                SignalCode.UNAVAILABLE,
                "No media server runs here: address offers to a user (to_user_id) for "
                "peer-to-peer media",
            )
        await plane.handle(s.peer, msg.type, payload, can_publish=s.may(Permission.PUBLISH))

    async def _present(self, meeting_id: int, user_id: int, peer_id: str | None) -> bool:
        if not self.hub.clustered:
            return False  # local delivery already looked at every session
        return any(
            e["user_id"] == user_id and (peer_id is None or e["peer_id"] == peer_id)
            for e in await self.hub.presence.snapshot(meeting_id)
        )

    # --- chat -----------------------------------------------------------------------------------

    async def chat(self, s: Session, msg: Inbound) -> None:
        room = self.hub.rooms.get(s.meeting_id)
        if room is not None and room.settings.get("enable_chat", True) is False:
            raise p.forbidden("Chat is disabled in this meeting")
        content = p.chat_content(msg, self.hub.settings.chat_max_length)
        to = msg.to_user_id or None
        if to is not None and to != s.user_id:
            room_has = room is not None and bool(room.users.get(to))
            if not room_has and not await self._present(s.meeting_id, to, None):
                raise SignalError(SignalCode.NOT_FOUND, f"User {to} is not in this meeting")
        name = s.admission.display_name
        message_id, created = await self.hub.records.store_chat(
            s.meeting_id, s.user_id, name, to, content
        )
        payload: dict[str, Any] = {
            "content": content,
            "user_id": s.user_id,
            "username": name,
            "meeting_id": s.meeting_id,
            "message_id": message_id,
            "created_at": p.iso(created),
        }
        if to is not None:
            payload["to_user_id"] = to
            payload["private"] = True
        out = message(
            MsgType.CHAT,
            s.meeting_id,
            payload,
            from_user_id=s.user_id,
            to_user_id=to,
            session_id=s.session_id,
            peer_id=s.peer_id,
        )
        if to is None:
            await self.hub.to_room(s.meeting_id, out)
        else:
            await self.hub.to_user(s.meeting_id, to, out)
            if to != s.user_id:
                await self.hub.to_user(s.meeting_id, s.user_id, out)

    # --- screen sharing -------------------------------------------------------------------------

    async def screen_share(self, s: Session, msg: Inbound) -> None:
        action, target = p.screen_share(msg, s.user_id)
        if target is not None:
            await self._moderate_share(s, action, target)
            return
        if action in ("grant", "revoke"):
            raise p.bad(f"`{action}` needs another participant's `payload.user_id`")
        if action == "stop":
            if s.sharing:
                await self.hub.moderation.stop_share(s, "stopped")
            return
        if not s.may(Permission.SHARE_SCREEN):
            raise p.forbidden("Audience members cannot share their screen")
        room = self.hub.rooms.get(s.meeting_id)
        settings = room.settings if room else {}
        needs_grant = bool(settings.get("screen_share_requires_permission", True))
        if needs_grant and not s.may(Permission.MANAGE_SCREEN_SHARE) and not s.can_share_screen:
            raise p.forbidden("Screen sharing needs the host's permission in this meeting")
        limit = self.hub.max_sharers(settings)
        if not await self.hub.presence.start_share(s.meeting_id, s.session_id, limit):
            raise SignalError(
                SignalCode.CONFLICT, f"At most {limit} screen share(s) at a time in this meeting"
            )
        s.sharing = True
        plane = self.hub.media
        if plane is not None:
            await plane.set_publish_allowed(s.meeting_id, s.user_id, "screen", True)
        await self.hub.to_room(
            s.meeting_id,
            message(
                MsgType.SCREEN_SHARE,
                s.meeting_id,
                {"action": "start", "user_id": s.user_id},
                from_user_id=s.user_id,
                session_id=s.session_id,
                peer_id=s.peer_id,
            ),
        )

    async def _moderate_share(self, s: Session, action: str, target: int) -> None:
        if not s.may(Permission.MANAGE_SCREEN_SHARE):
            raise p.forbidden("Only the host and co-hosts manage screen sharing")
        if target == s.admission.host_id:
            raise p.forbidden("The host cannot be moderated")
        if action == "stop":
            from confer.bus.events import event, meeting_topic

            await self.hub.ctx.bus.publish(
                meeting_topic(s.meeting_id),
                event(STOP_SHARE, meeting_id=s.meeting_id, user_id=target, by=s.user_id),
            )
            return
        from confer.services import participants as svc

        pid = await self._participant_id(s.meeting_id, target)
        async with self.hub.ctx.db.session() as db:
            await svc.screen_share(
                db, self.hub.ctx.bus, s.meeting_id, s.user_id, pid, action == "grant"
            )

    # --- media control --------------------------------------------------------------------------

    async def media_control(self, s: Session, msg: Inbound) -> None:
        mc = p.media_control(msg, s.user_id)
        if mc.everyone:
            from confer.services import participants as svc

            async with self.hub.ctx.db.session() as db:
                await svc.mute_all(db, self.hub.ctx.bus, s.meeting_id, s.user_id, mc.media_type)
            return
        if mc.target_user_id is not None:
            if mc.action != "mute":
                raise p.forbidden("Nobody can turn on someone else's microphone or camera")
            if not s.may(Permission.MUTE_OTHERS):
                raise p.forbidden("Only the host and co-hosts can mute others")
            from confer.services import participants as svc

            pid = await self._participant_id(s.meeting_id, mc.target_user_id)
            async with self.hub.ctx.db.session() as db:
                await svc.mute(db, self.hub.ctx.bus, s.meeting_id, s.user_id, pid, mc.media_type)
            return
        await self.hub.moderation.self_media(s, mc, str(msg.payload["action"]))

    async def _participant_id(self, meeting_id: int, user_id: int) -> int:
        async with self.hub.ctx.db.session() as db:
            pid = await db.scalar(
                select(Participant.id).where(
                    Participant.meeting_id == meeting_id, Participant.user_id == user_id
                )
            )
        if pid is None:
            raise SignalError(SignalCode.NOT_FOUND, f"User {user_id} is not in this meeting")
        return int(pid)


# A signaling-only event: a host or co-host stopped someone's screen share.
STOP_SHARE = "share_stopped"
