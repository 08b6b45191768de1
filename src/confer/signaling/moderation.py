"""Host actions and meeting changes reaching the sockets, and media state kept in the room.

REST routes (and the signaling handlers, through the same services) publish events from
`confer.bus.events` on `meeting:{id}`. Every process that holds sockets in the meeting gets
each event once, applies it to its own sessions and tells its own sockets, so every socket
hears about it exactly once whichever process the request went through.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from confer.bus import events as ev
from confer.services.roles import Permission, can
from confer.signaling import protocol as p
from confer.signaling.codec import Outbound
from confer.signaling.protocol import CloseCode, MsgType, message

if TYPE_CHECKING:
    from confer.signaling.hub import Hub
    from confer.signaling.protocol import MediaControl
    from confer.signaling.rooms import Room, Session

log = logging.getLogger(__name__)


class Moderation:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        from confer.signaling.handlers import STOP_SHARE

        self.table = {
            ev.KICKED: self.kicked,
            ev.ENDED: self.ended,
            ev.ROLE_CHANGED: self.role_changed,
            ev.MUTED: self.muted,
            ev.MUTE_ALL: self.mute_all,
            ev.SCREEN_SHARE_PERMISSION: self.share_permission,
            ev.MEETING_UPDATED: self.meeting_updated,
            ev.LEFT: self.left,
            STOP_SHARE: self.share_stopped,
        }

    async def on_event(self, meeting_id: int, event: dict[str, Any]) -> None:
        room = self.hub.rooms.get(meeting_id)
        handler = self.table.get(str(event.get("event")))
        if room is None or handler is None:
            return
        await handler(room, event)

    def _tell_room(self, room: Room, msg: dict[str, Any]) -> None:
        """Local sockets only: the other processes get the same event and tell theirs."""
        room.broadcast(Outbound(msg))

    async def _allow(self, meeting_id: int, user_id: int, media: str, allowed: bool) -> None:
        plane = self.hub.media
        if plane is not None:
            try:
                await plane.set_publish_allowed(meeting_id, user_id, media, allowed)
            except Exception:
                log.exception("media plane refused set_publish_allowed")

    async def _patch(self, s: Session, **fields: Any) -> None:
        with contextlib.suppress(Exception):
            await self.hub.presence.patch(s.meeting_id, s.session_id, fields)

    # --- membership -----------------------------------------------------------------------------

    async def kicked(self, room: Room, event: dict[str, Any]) -> None:
        reason = str(event.get("reason") or "Removed by the host")[:200]
        for s in room.of_user(int(event["user_id"])):
            self.hub.unicast(
                s,
                message(
                    MsgType.KICKED,
                    room.meeting_id,
                    {"user_id": s.user_id, "reason": reason, "by": event.get("by")},
                    session_id=s.session_id,
                    peer_id=s.peer_id,
                ),
            )
            await self.hub.leave(
                s,
                "kicked",
                close=(CloseCode.KICKED, f"Removed from the meeting: {reason}"),
                record_state="kicked",
            )

    async def left(self, room: Room, event: dict[str, Any]) -> None:
        for s in room.of_user(int(event["user_id"])):
            await self.hub.leave(s, "left", close=(CloseCode.NORMAL, "Left the meeting"))

    async def ended(self, room: Room, event: dict[str, Any]) -> None:
        payload = {
            "meeting_id": room.meeting_id,
            "by": event.get("by"),
            "reason": event.get("reason", "ended"),
        }
        self._tell_room(room, message(MsgType.MEETING_ENDED, room.meeting_id, payload))
        for s in list(room.sessions.values()):
            s.gone = True
            if s.grace is not None:
                s.grace.cancel()
            room.discard(s)
            if s.conn is not None:
                s.conn.close_soon(CloseCode.MEETING_ENDED, "The meeting has ended")
            with contextlib.suppress(Exception):
                await self.hub.presence.remove(room.meeting_id, s.session_id)
        plane = self.hub.media
        if plane is not None:
            with contextlib.suppress(Exception):
                await plane.meeting_ended(room.meeting_id)
        await self.hub._release_room(room)

    # --- roles and settings ---------------------------------------------------------------------

    async def role_changed(self, room: Room, event: dict[str, Any]) -> None:
        user_id, role = int(event["user_id"]), str(event["role"])
        mine = room.of_user(user_id)
        before = mine[0].role if mine else None
        for s in mine:
            s.role = role
            if not can(role, Permission.PUBLISH):
                s.audio_muted = s.video_muted = True
                if s.sharing:
                    await self.stop_share(s, "role_changed")
            await self._patch(s, role=role, audio_muted=s.audio_muted, video_muted=s.video_muted)
        if mine:
            publish = can(role, Permission.PUBLISH)
            if before is None or can(before, Permission.PUBLISH) != publish:
                for media in ("audio", "video", "screen"):
                    blocked = media in mine[0].host_muted
                    await self._allow(room.meeting_id, user_id, media, publish and not blocked)
        self._tell_room(
            room,
            message(
                MsgType.ROLE_CHANGED,
                room.meeting_id,
                {"user_id": user_id, "role": role, "by": event.get("by")},
            ),
        )

    async def meeting_updated(self, room: Room, event: dict[str, Any]) -> None:
        fields = event.get("fields") or {}
        settings = fields.get("settings")
        if isinstance(settings, dict):
            room.settings.update(settings)
            if settings.get("allow_self_unmute"):
                for s in room.sessions.values():
                    s.locked.clear()
            plane = self.hub.media
            if plane is not None:
                try:
                    await plane.settings_changed(room.meeting_id)
                except Exception:
                    log.exception("media plane refused settings_changed")
        self._tell_room(
            room,
            message(
                MsgType.MEETING_UPDATED,
                room.meeting_id,
                {"fields": fields, "by": event.get("by")},
            ),
        )

    # --- media state ----------------------------------------------------------------------------

    async def _force_mute(self, room: Room, s: Session, media: str) -> None:
        setattr(s, f"{media}_muted", True)
        s.host_muted.add(media)
        if room.settings.get("allow_self_unmute", True) is False:
            s.locked.add(media)
        await self._patch(s, **{f"{media}_muted": True})
        self.hub.records.media_state(s.meeting_id, s.user_id, s.audio_muted, s.video_muted)

    async def muted(self, room: Room, event: dict[str, Any]) -> None:
        user_id, media = int(event["user_id"]), str(event.get("media_type", "audio"))
        mine = room.of_user(user_id)
        for s in mine:
            await self._force_mute(room, s, media)
        if mine:
            await self._allow(room.meeting_id, user_id, media, False)
        self._tell_room(
            room,
            message(
                MsgType.MEDIA_CONTROL,
                room.meeting_id,
                {
                    "action": "mute",
                    "media_type": media,
                    "user_id": user_id,
                    "by": event.get("by"),
                    "forced": True,
                },
                from_user_id=int(event.get("by") or 0),
            ),
        )

    async def mute_all(self, room: Room, event: dict[str, Any]) -> None:
        media = str(event.get("media_type", "audio"))
        spared = {int(u) for u in event.get("except_user_ids") or ()}
        users: set[int] = set()
        for s in list(room.sessions.values()):
            if s.user_id not in spared:
                await self._force_mute(room, s, media)
                users.add(s.user_id)
        for user_id in users:
            await self._allow(room.meeting_id, user_id, media, False)
        self._tell_room(
            room,
            message(
                MsgType.MEDIA_CONTROL,
                room.meeting_id,
                {
                    "action": "mute",
                    "media_type": media,
                    "scope": "all",
                    "by": event.get("by"),
                    "except_user_ids": sorted(spared),
                    "forced": True,
                },
                from_user_id=int(event.get("by") or 0),
            ),
        )

    async def self_media(self, s: Session, mc: MediaControl, raw_action: str) -> None:
        media = mc.media_type
        if mc.action == "unmute":
            if not s.may(Permission.PUBLISH):
                raise p.forbidden("Audience members cannot publish audio or video")
            if media in s.locked:
                raise p.forbidden(f"The host muted your {media}; ask them to allow unmuting")
            if media in s.host_muted:
                s.host_muted.discard(media)
                await self._allow(s.meeting_id, s.user_id, media, True)
        setattr(s, f"{media}_muted", mc.action == "mute")
        await self._patch(s, **{f"{media}_muted": mc.action == "mute"})
        self.hub.records.media_state(s.meeting_id, s.user_id, s.audio_muted, s.video_muted)
        await self.hub.to_room(
            s.meeting_id,
            message(
                MsgType.MEDIA_CONTROL,
                s.meeting_id,
                {
                    "action": raw_action,
                    "media_type": media,
                    "user_id": s.user_id,
                    "peer_id": s.peer_id,
                    "session_id": s.session_id,
                },
                from_user_id=s.user_id,
                session_id=s.session_id,
                peer_id=s.peer_id,
            ),
        )

    # --- screen sharing -------------------------------------------------------------------------

    async def stop_share(self, s: Session, reason: str) -> None:
        s.sharing = False
        await self._patch(s, sharing=False)
        await self.hub.to_room(
            s.meeting_id,
            message(
                MsgType.SCREEN_SHARE,
                s.meeting_id,
                {"action": "stop", "user_id": s.user_id, "reason": reason},
                from_user_id=s.user_id,
                session_id=s.session_id,
                peer_id=s.peer_id,
            ),
        )

    async def share_permission(self, room: Room, event: dict[str, Any]) -> None:
        user_id, allowed = int(event["user_id"]), bool(event.get("allowed"))
        mine = room.of_user(user_id)
        for s in mine:
            s.can_share_screen = allowed
            if not allowed and s.sharing and not s.may(Permission.MANAGE_SCREEN_SHARE):
                await self.stop_share(s, "permission_revoked")
        if mine and not allowed:
            await self._allow(room.meeting_id, user_id, "screen", False)
        self._tell_room(
            room,
            message(
                MsgType.SCREEN_SHARE,
                room.meeting_id,
                {
                    "action": "grant" if allowed else "revoke",
                    "user_id": user_id,
                    "by": event.get("by"),
                },
                from_user_id=int(event.get("by") or 0),
            ),
        )

    async def share_stopped(self, room: Room, event: dict[str, Any]) -> None:
        user_id = int(event["user_id"])
        mine = [s for s in room.of_user(user_id) if s.sharing]
        for s in mine:
            await self.stop_share(s, "stopped_by_host")
        if mine:
            await self._allow(room.meeting_id, user_id, "screen", False)
