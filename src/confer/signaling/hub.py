"""The signaling hub: sessions coming and going, presence, resume, and delivery.

Every process runs one hub for its own sockets. Presence (who is in a room) lives in the
shared `Presence` store; messages for sockets on other processes travel over the event bus
on `signal:{meeting_id}`, which a process follows while it holds a socket in that meeting,
together with the REST events on `meeting:{meeting_id}` (see `moderation.py`).

A socket that drops without leave-room keeps its session for `ws_resume_grace` seconds: a
reconnect with the same `session_id` (or `peer_id`) resumes it, on any process, and the
others see nothing; otherwise it leaves with reason `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from confer.bus.events import meeting_topic
from confer.db.models import utcnow
from confer.periodic import cancel, every
from confer.signaling.cluster import Cluster, HubSink
from confer.signaling.codec import Outbound
from confer.signaling.connection import Connection
from confer.signaling.media import MediaPlane
from confer.signaling.presence import Entry, MemoryPresence, Presence, RedisPresence
from confer.signaling.protocol import CloseCode, MsgType, error_payload, message
from confer.signaling.records import Admission, Records
from confer.signaling.roominfo import people, public, room_info
from confer.signaling.rooms import Room, Rooms, Session

if TYPE_CHECKING:
    from confer.context import AppContext

log = logging.getLogger(__name__)

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class Hub:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.node = os.urandom(6).hex()
        self.rooms = Rooms()
        self.records = Records(ctx.db)
        self.clustered = bool(ctx.settings.redis_url)
        self.presence: Presence = (
            RedisPresence(ctx.settings.redis_url) if self.clustered else MemoryPresence()
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._room_locks: dict[int, asyncio.Lock] = {}
        # Admissions in flight: a connect storm queues here instead of draining the database
        # pool that chat and presence writes need too.
        self.admission_slots = asyncio.Semaphore(8)
        self.sink = HubSink(self)
        self.cluster = Cluster(self)
        self._media_attached: MediaPlane | None = None
        from confer.signaling.moderation import Moderation

        self.moderation = Moderation(self)

    @property
    def media(self) -> MediaPlane | None:
        plane = self.ctx.extras.get("media")
        if plane is not None and plane is not self._media_attached:
            plane.attach(self.sink)
            self._media_attached = plane
        return plane

    # --- lifecycle of the hub -----------------------------------------------------------------

    async def start(self) -> None:
        await self.cluster.heartbeat()
        self._tasks = [
            asyncio.create_task(every(1.0, self._sweep_idle, log), name="signaling-idle"),
            asyncio.create_task(every(5.0, self._housekeeping, log), name="signaling-house"),
        ]
        _ = self.media

    async def stop(self) -> None:
        await cancel(self._tasks)
        closing = [
            c.close(CloseCode.GOING_AWAY, "Server shutting down")
            for _, c in self.rooms.connections()
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 3.0)
        await self.records.flush()
        if isinstance(self.presence, RedisPresence):
            for room in list(self.rooms.by_meeting.values()):
                for s in list(room.sessions.values()):
                    with contextlib.suppress(Exception):
                        await self.presence.remove(s.meeting_id, s.session_id, node=self.node)
            await self.presence.close()

    def spawn(self, coro: Any) -> None:
        """Run `coro` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sweep_idle(self) -> None:
        for _s, conn in self.rooms.idle(self.settings.ws_idle_timeout):
            conn.close_soon(
                CloseCode.IDLE_TIMEOUT,
                f"No message for {self.settings.ws_idle_timeout:g} s",
            )

    async def _housekeeping(self) -> None:
        await self.records.flush()
        await self.cluster.heartbeat()
        await self.cluster.reap()

    # --- delivery -----------------------------------------------------------------------------

    def unicast(self, s: Session, msg: dict[str, Any]) -> None:
        if s.conn is not None:
            s.conn.push(Outbound(msg))

    def error(self, s: Session | Connection, code: int, text: str, **extra: Any) -> None:
        conn = s.conn if isinstance(s, Session) else s
        if conn is None:
            return
        meeting_id = s.meeting_id if isinstance(s, Session) else 0
        payload = error_payload(code, text, **extra)
        conn.push(Outbound(message(MsgType.ERROR, meeting_id, payload)))

    async def to_room(
        self, meeting_id: int, msg: dict[str, Any], except_session: str | None = None
    ) -> None:
        room = self.rooms.get(meeting_id)
        if room is not None:
            room.broadcast(Outbound(msg), except_session)
        if self.clustered:
            await self.cluster.publish(meeting_id, {"k": "room", "x": except_session, "m": msg})

    async def to_user(
        self,
        meeting_id: int,
        user_id: int,
        msg: dict[str, Any],
        peer_id: str | None = None,
        except_session: str | None = None,
    ) -> int:
        room = self.rooms.get(meeting_id)
        n = room.to_user(Outbound(msg), user_id, peer_id, except_session) if room else 0
        if self.clustered:
            body = {"k": "user", "u": user_id, "p": peer_id, "x": except_session, "m": msg}
            await self.cluster.publish(meeting_id, body)
        return n

    # --- rooms --------------------------------------------------------------------------------

    async def room(self, meeting_id: int, admission: Admission | None = None) -> Room:
        room = self.rooms.get(meeting_id)
        if room is not None:
            return room
        lock = self._room_locks.setdefault(meeting_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(meeting_id)
            if room is None:
                room = Room(meeting_id)
                if admission is not None:
                    room.settings = dict(admission.settings)
                self.rooms.by_meeting[meeting_id] = room
                bus = self.ctx.bus
                room.subscriptions.append(
                    await bus.subscribe(
                        meeting_topic(meeting_id),
                        lambda ev, m=meeting_id: self.moderation.on_event(m, ev),
                    )
                )
                if self.clustered:
                    room.subscriptions.append(await self.cluster.follow(meeting_id))
        return room

    async def _release_room(self, room: Room) -> None:
        if room.sessions or self.rooms.get(room.meeting_id) is not room:
            return
        del self.rooms.by_meeting[room.meeting_id]
        self._room_locks.pop(room.meeting_id, None)
        for unsubscribe in room.subscriptions:
            with contextlib.suppress(Exception):
                await unsubscribe()

    # --- sessions -----------------------------------------------------------------------------

    async def open(
        self, conn: Connection, a: Admission, peer_id: str, session_hint: str | None
    ) -> Session:
        """Register a new socket: resume its session if it names one of its own, else join."""
        room = await self.room(a.meeting_id, a)
        s = await self._resume(room, conn, a, peer_id, session_hint)
        moved = False  # resumed from another process (see MediaPlane.peer_moved)
        if s is None:
            s = await self.cluster.claim(room, conn, a, peer_id, session_hint)
            moved = s is not None
        resumed = s is not None
        if s is None:
            s = Session(
                admission=a,
                session_id=await self._new_session_id(a.meeting_id, session_hint),
                peer_id=peer_id,
                joined_at=utcnow(),
                conn=conn,
                role=a.role,
                audio_muted=a.audio_muted,
                video_muted=a.video_muted,
                can_share_screen=a.can_share_screen,
            )
            if a.muted_by_host:
                s.host_muted.update(m for m in ("audio", "video") if getattr(a, f"{m}_muted"))
                s.locked.update(s.host_muted)
            room.add(s)
            await self.presence.put(a.meeting_id, s.entry(self.node))
        self.records.touch(a.meeting_id, a.user_id)
        entries = await self.presence.snapshot(a.meeting_id)
        self.unicast(s, room_info(self, s, entries, resumed))
        plane = self.media
        if moved and plane is not None:
            with contextlib.suppress(Exception):
                await plane.peer_moved(s.peer)
        if not resumed:
            await self.to_room(
                a.meeting_id,
                message(
                    MsgType.USER_JOINED,
                    a.meeting_id,
                    {**public(s.entry(self.node)), "participant_count": people(entries)},
                    session_id=s.session_id,
                    peer_id=s.peer_id,
                ),
                except_session=s.session_id,
            )
        return s

    async def _new_session_id(self, meeting_id: int, hint: str | None) -> str:
        if hint and SESSION_ID_RE.match(hint) and await self.presence.get(meeting_id, hint) is None:
            return hint
        return "session_" + os.urandom(9).hex()

    async def _resume(
        self, room: Room, conn: Connection, a: Admission, peer_id: str, hint: str | None
    ) -> Session | None:
        local = room.sessions.get(hint) if hint else None
        if local is None:
            local = next((x for x in room.of_user(a.user_id) if x.peer_id == peer_id), None)
        if local is not None and local.user_id == a.user_id and not local.gone:
            old, local.conn = local.conn, conn
            if old is not None:
                old.close_soon(CloseCode.REPLACED, "Replaced by a newer connection")
            if local.grace is not None:
                local.grace.cancel()
                local.grace = None
            local.peer_id = peer_id
            local.admission, local.role = a, a.role  # the database is fresher than memory
            local.epoch += 1
            await self.presence.put(a.meeting_id, local.entry(self.node))
            return local
        return None

    def forget(self, room: Room, s: Session, code: int, reason: str) -> None:
        """Drop a session here without telling anyone (it lives on elsewhere)."""
        s.gone = True
        if s.grace is not None:
            s.grace.cancel()
        room.discard(s)
        if s.conn is not None:
            s.conn.close_soon(code, reason)
        self.spawn(self._release_room(room))

    def dropped(self, s: Session, conn: Connection) -> None:
        """The socket closed without leave-room: keep the session for the resume grace."""
        if s.conn is not conn or s.gone:
            return
        s.conn = None
        epoch = s.epoch
        loop = asyncio.get_running_loop()
        s.grace = loop.call_later(
            self.settings.ws_resume_grace,
            lambda: self.spawn(self._expire(s, epoch)),
        )
        self.spawn(self._mark_away(s))

    async def _mark_away(self, s: Session) -> None:
        with contextlib.suppress(Exception):
            await self.presence.patch(s.meeting_id, s.session_id, {"connected": False})

    async def _expire(self, s: Session, epoch: int) -> None:
        if s.conn is None and not s.gone and s.epoch == epoch:
            await self.leave(s, "timeout")

    async def leave(
        self,
        s: Session,
        reason: str,
        *,
        close: tuple[int, str] | None = None,
        record_state: str = "left",
    ) -> None:
        """Take a session out of its room for good and tell the others (user-left)."""
        if s.gone:
            return
        s.gone = True
        if s.grace is not None:
            s.grace.cancel()
            s.grace = None
        room = self.rooms.get(s.meeting_id)
        if room is not None:
            room.discard(s)
        if s.conn is not None and close is not None:
            s.conn.close_soon(*close)
        entry = s.entry(self.node)
        removed = await self.presence.remove(s.meeting_id, s.session_id, node=self.node)
        if removed:
            if s.sharing:
                await self.to_room(
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
            await self.announce_left(s.meeting_id, entry, reason)
        plane = self.media
        if plane is not None:
            with contextlib.suppress(Exception):
                await plane.peer_left(s.peer)
        remaining = [
            e for e in await self.presence.snapshot(s.meeting_id) if e["user_id"] == s.user_id
        ]
        if not remaining:
            await self.records.mark_left(s.meeting_id, s.user_id, record_state)
        if room is not None:
            await self._release_room(room)

    async def announce_left(self, meeting_id: int, entry: Entry, reason: str) -> None:
        entries = await self.presence.snapshot(meeting_id)
        payload = {
            "user_id": entry["user_id"],
            "username": entry["username"],
            "session_id": entry["session_id"],
            "peer_id": entry["peer_id"],
            "reason": reason,
            "participant_count": people(entries),
        }
        await self.to_room(
            meeting_id,
            message(
                MsgType.USER_LEFT,
                meeting_id,
                payload,
                session_id=entry["session_id"],
                peer_id=entry["peer_id"],
            ),
        )

    # --- room-info ----------------------------------------------------------------------------

    def max_sharers(self, settings: dict[str, Any]) -> int:
        value = settings.get("max_screen_shares")
        return (
            int(value) if isinstance(value, int) and value > 0 else self.settings.max_screen_shares
        )

    def touch(self, s: Session) -> None:
        s.last_active_at = utcnow()
        self.records.touch(s.meeting_id, s.user_id)
