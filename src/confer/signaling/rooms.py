"""The sessions this process holds, grouped by meeting, and local delivery to them.

A `Session` outlives its socket for the resume grace period (`conn` is then None). The room
fan-out encodes each message once per wire encoding and queues the same object everywhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confer.services.roles import Permission, can
from confer.signaling.codec import Outbound
from confer.signaling.connection import Connection
from confer.signaling.media import PeerRef
from confer.signaling.protocol import iso
from confer.signaling.records import Admission


@dataclass(eq=False, slots=True)
class Session:
    admission: Admission
    session_id: str
    peer_id: str
    joined_at: datetime
    conn: Connection | None = None
    role: str = "participant"
    epoch: int = 0
    audio_muted: bool = False
    video_muted: bool = False
    sharing: bool = False
    can_share_screen: bool = False
    # Media types the host muted (the SFU stops forwarding them) and, of those, the ones the
    # meeting does not let the user unmute (`allow_self_unmute` false).
    host_muted: set[str] = field(default_factory=set)
    locked: set[str] = field(default_factory=set)
    last_active_at: datetime | None = None
    grace: asyncio.TimerHandle | None = None
    gone: bool = False  # removed from the room; late events must not resurrect it

    @property
    def meeting_id(self) -> int:
        return self.admission.meeting_id

    @property
    def user_id(self) -> int:
        return self.admission.user_id

    @property
    def peer(self) -> PeerRef:
        return PeerRef(self.meeting_id, self.user_id, self.session_id, self.peer_id)

    def may(self, permission: Permission) -> bool:
        return can(self.role, permission)

    def entry(self, node: str) -> dict[str, Any]:
        """The presence record other processes and room-info read."""
        a = self.admission
        return {
            "session_id": self.session_id,
            "peer_id": self.peer_id,
            "user_id": a.user_id,
            "username": a.username,
            "full_name": a.full_name,
            "role": self.role,
            "joined_at": iso(self.joined_at),
            "last_active_at": iso(self.last_active_at or self.joined_at),
            "audio_muted": self.audio_muted,
            "video_muted": self.video_muted,
            "sharing": self.sharing,
            "node": node,
            "connected": self.conn is not None,
            "epoch": self.epoch,
        }


class Room:
    """The local sessions of one meeting."""

    __slots__ = ("meeting_id", "sessions", "settings", "subscriptions", "users")

    def __init__(self, meeting_id: int) -> None:
        self.meeting_id = meeting_id
        self.settings: dict[str, Any] = {}
        self.sessions: dict[str, Session] = {}
        self.users: dict[int, dict[str, Session]] = {}
        self.subscriptions: list[Any] = []

    def add(self, s: Session) -> None:
        self.sessions[s.session_id] = s
        self.users.setdefault(s.user_id, {})[s.session_id] = s

    def discard(self, s: Session) -> None:
        if self.sessions.get(s.session_id) is s:
            del self.sessions[s.session_id]
            mine = self.users.get(s.user_id)
            if mine is not None:
                mine.pop(s.session_id, None)
                if not mine:
                    del self.users[s.user_id]

    def of_user(self, user_id: int) -> list[Session]:
        return list(self.users.get(user_id, {}).values())

    def broadcast(self, out: Outbound, except_session: str | None = None) -> int:
        n = 0
        for s in self.sessions.values():
            conn = s.conn
            if conn is not None and s.session_id != except_session:
                conn.push(out)
                n += 1
        return n

    def to_user(
        self,
        out: Outbound,
        user_id: int,
        peer_id: str | None = None,
        except_session: str | None = None,
    ) -> int:
        n = 0
        for s in self.users.get(user_id, {}).values():
            if s.conn is None or s.session_id == except_session:
                continue
            if peer_id is None or s.peer_id == peer_id:
                s.conn.push(out)
                n += 1
        return n


class Rooms:
    """meeting_id -> Room for this process, plus a monotonic clock for idle sweeps."""

    def __init__(self) -> None:
        self.by_meeting: dict[int, Room] = {}

    def get(self, meeting_id: int) -> Room | None:
        return self.by_meeting.get(meeting_id)

    def connections(self) -> list[tuple[Session, Connection]]:
        return [
            (s, s.conn)
            for room in self.by_meeting.values()
            for s in room.sessions.values()
            if s.conn is not None
        ]

    def idle(self, timeout: float) -> list[tuple[Session, Connection]]:
        limit = time.monotonic() - timeout
        return [
            (s, s.conn)
            for room in self.by_meeting.values()
            for s in room.sessions.values()
            if s.conn is not None and s.conn.last_activity < limit
        ]

    def count(self) -> int:
        return sum(len(r.sessions) for r in self.by_meeting.values())
