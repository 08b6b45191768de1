"""What signaling reads from and writes to the database.

Admission is one short transaction per connection. Writes that follow activity are batched:
chat rows are group-committed (each message is delivered once its batch is durable), and
`last_active_at` / media state are coalesced per participant and flushed every few seconds,
so a ping never costs a database write.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from confer.db.models import ChatMessage, Meeting, Participant, User, utcnow
from confer.db.session import Database
from confer.errors import Forbidden, meeting_ended, meeting_not_found, token_invalid
from confer.services.roles import Role

log = logging.getLogger(__name__)

CHAT_BATCH = 500
FLUSH_CHUNK = 100  # participant updates per transaction
ACTIVE_RESOLUTION = 15.0  # seconds: last_active_at is written at most this often
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHAT = ChatMessage.__table__
_INSERT_CHAT = insert(_CHAT).returning(_CHAT.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class Admission:
    meeting_id: int
    host_id: int
    user_id: int
    username: str
    full_name: str
    role: str
    settings: dict[str, Any]
    can_share_screen: bool
    muted_by_host: bool
    audio_muted: bool
    video_muted: bool

    @property
    def display_name(self) -> str:
        return self.full_name or self.username


class Records:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chat: list[tuple[dict[str, Any], asyncio.Future[tuple[int, datetime]]]] = []
        self._chat_task: asyncio.Task[None] | None = None
        self._active: dict[tuple[int, int], datetime] = {}
        self._media: dict[tuple[int, int], tuple[bool, bool]] = {}
        self._written: dict[tuple[int, int], datetime] = {}

    async def admit(self, meeting_id: int, user_id: int) -> Admission:
        """Refuse unknown or ended meetings and users who have not joined (hosts always may)."""
        async with self.db.session() as s:
            # One round trip: the meeting, the user and their participant row (if any).
            row = (
                await s.execute(
                    select(Meeting, User, Participant)
                    .select_from(Meeting)
                    .join(User, User.id == user_id)
                    .outerjoin(
                        Participant,
                        and_(Participant.meeting_id == Meeting.id, Participant.user_id == user_id),
                    )
                    .where(Meeting.id == meeting_id)
                )
            ).first()
            if row is None:
                if await s.get(Meeting, meeting_id) is None:
                    raise meeting_not_found()
                raise token_invalid("The token's user no longer exists")
            meeting, user, part = row
            if meeting.status == "ended":
                raise meeting_ended()
            if not user.is_active:
                raise token_invalid("The token's user no longer exists")
            is_host = meeting.host_id == user_id
            if part is None or part.state != "joined":
                if not is_host:
                    if part is not None and part.state == "kicked":
                        raise Forbidden("You were removed from this meeting")
                    raise Forbidden(
                        f"Join the meeting first: POST /api/v1/meetings/{meeting_id}/join"
                    )
                part = await self._host_row(s, meeting_id, user_id, part)
            return Admission(
                meeting_id=meeting_id,
                host_id=meeting.host_id,
                user_id=user_id,
                username=user.username,
                full_name=user.full_name or "",
                role=Role.HOST.value if is_host else part.role,
                settings=dict(meeting.settings or {}),
                can_share_screen=bool(part.can_share_screen),
                muted_by_host=bool(part.muted_by_host),
                audio_muted=bool(part.audio_muted),
                video_muted=bool(part.video_muted),
            )

    async def _host_row(
        self, s: Any, meeting_id: int, user_id: int, part: Participant | None
    ) -> Participant:
        """The host may open the room without a REST join; give them a participants row."""
        now = utcnow()
        if part is None:
            part = Participant(
                meeting_id=meeting_id,
                user_id=user_id,
                role=Role.HOST.value,
                state="joined",
                joined_at=now,
                last_active_at=now,
            )
            try:
                async with s.begin_nested():
                    s.add(part)
            except IntegrityError:  # another tab of the host created it first
                part = await s.scalar(
                    select(Participant).where(
                        Participant.meeting_id == meeting_id, Participant.user_id == user_id
                    )
                )
                assert part is not None
        part.state, part.left_at, part.role = "joined", None, Role.HOST.value
        return part

    async def mark_left(self, meeting_id: int, user_id: int, state: str = "left") -> None:
        """Close the participant record once the user's last session has gone."""
        self._active.pop((meeting_id, user_id), None)
        media = self._media.pop((meeting_id, user_id), None)
        values: dict[str, Any] = {"left_at": utcnow()}
        if state == "left":
            values["state"] = "left"
        if media is not None:
            values["audio_muted"], values["video_muted"] = media
        try:
            async with self.db.session() as s:
                await s.execute(
                    update(Participant)
                    .where(
                        Participant.meeting_id == meeting_id,
                        Participant.user_id == user_id,
                        Participant.state == "joined",
                    )
                    .values(**values)
                )
        except Exception:
            log.exception("could not record that user %s left meeting %s", user_id, meeting_id)

    def touch(self, meeting_id: int, user_id: int) -> None:
        self._active[(meeting_id, user_id)] = utcnow()

    def media_state(
        self, meeting_id: int, user_id: int, audio_muted: bool, video_muted: bool
    ) -> None:
        self._media[(meeting_id, user_id)] = (audio_muted, video_muted)
        self._active[(meeting_id, user_id)] = utcnow()

    async def set_host_muted(self, meeting_id: int, user_id: int, muted: bool) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(Participant)
                .where(Participant.meeting_id == meeting_id, Participant.user_id == user_id)
                .values(muted_by_host=muted)
            )

    async def set_share_permission(self, meeting_id: int, user_id: int, allowed: bool) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(Participant)
                .where(Participant.meeting_id == meeting_id, Participant.user_id == user_id)
                .values(can_share_screen=allowed)
            )

    async def flush(self) -> None:
        """Write the coalesced activity and media state, in small transactions so a chat
        insert never waits long behind them. `last_active_at` is kept to ACTIVE_RESOLUTION."""
        now = utcnow()
        active = {
            k: t
            for k, t in self._active.items()
            if (now - self._written.get(k, EPOCH)).total_seconds() >= ACTIVE_RESOLUTION
            or k in self._media
        }
        for k in active:
            del self._active[k]
            self._written[k] = now
        media, self._media = self._media, {}
        if len(self._written) > 100_000:  # forget the oldest marks; they only throttle
            self._written = dict(list(self._written.items())[-50_000:])
        # Core statements on the table: executemany, not the ORM's bulk-by-primary-key.
        table = Participant.__table__
        where = and_(table.c.meeting_id == bindparam("m"), table.c.user_id == bindparam("u"))
        touch = update(table).where(where).values(last_active_at=bindparam("t"))
        state = (
            update(table)
            .where(where)
            .values(audio_muted=bindparam("a"), video_muted=bindparam("v"))
        )
        rows = [(touch, {"m": m, "u": u, "t": t}) for (m, u), t in active.items()]
        rows += [(state, {"m": m, "u": u, "a": a, "v": v}) for (m, u), (a, v) in media.items()]
        for start in range(0, len(rows), FLUSH_CHUNK):
            chunk = rows[start : start + FLUSH_CHUNK]
            try:
                async with self.db.session() as s:
                    for stmt in (touch, state):
                        params = [p for st, p in chunk if st is stmt]
                        if params:
                            await s.execute(stmt, params)
            except Exception:
                log.exception("could not flush participant activity")

    # --- chat: group commit -----------------------------------------------------------------

    async def store_chat(
        self,
        meeting_id: int,
        sender_id: int,
        sender_name: str,
        to_user_id: int | None,
        content: str,
    ) -> tuple[int, datetime]:
        """Return (id, created_at) once the message is committed, batched with its peers."""
        fut: asyncio.Future[tuple[int, datetime]] = asyncio.get_running_loop().create_future()
        row = {
            "meeting_id": meeting_id,
            "sender_id": sender_id,
            "sender_name": sender_name[:100],
            "to_user_id": to_user_id,
            "content": content,
            "created_at": utcnow(),
        }
        self._chat.append((row, fut))
        if self._chat_task is None:
            self._chat_task = asyncio.create_task(self._write_chats())
        return await fut

    async def _write_chats(self) -> None:
        try:
            while self._chat:
                batch, self._chat = self._chat[:CHAT_BATCH], self._chat[CHAT_BATCH:]
                try:
                    async with self.db.session() as s:
                        # One Core INSERT .. RETURNING for the batch: the ORM's unit of work
                        # cost more than the rest of a chat message's path.
                        result = await s.execute(_INSERT_CHAT, [row for row, _ in batch])
                        ids = [
                            (r[0], row["created_at"])
                            for r, (row, _) in zip(result, batch, strict=True)
                        ]
                except Exception as exc:
                    log.exception("could not store %d chat messages", len(batch))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, ids, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._chat_task = None
