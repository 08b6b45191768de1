"""Participants: joining, leaving, and what hosts and co-hosts may do to others.

Admission rules for `join`:

- The host is always admitted, never needs the password, and makes a scheduled meeting active.
- Everyone else presents the password on every join when the meeting has one (20004 when it is
  missing or wrong; too many wrong ones per user and meeting get 429), may join a scheduled
  meeting early, and is refused with 20003 (HTTP 409: the request conflicts with the meeting's
  current occupancy) when `max_participants` people are already in it. The host counts
  towards that number. Seats are counted under a per-meeting lock, so the last one goes once.
- Joining again while joined changes nothing (idempotent); after leaving, it reuses the same
  participant row. A kicked user cannot come back (403); an ended meeting is 20002.

Moderation: the host may do everything; a co-host may mute and manage screen sharing, but only
for participants and audience members (the host and co-hosts are moderated by the host alone).
Nobody can kick, mute, re-role or restrict the host.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from confer.auth.passwords import verify_password
from confer.bus import EventBus, events
from confer.db.models import Participant, User, utcnow
from confer.errors import (
    AppError,
    Conflict,
    ErrorCode,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from confer.services.meeting_access import (
    JOINED,
    KICKED,
    LEFT,
    SCHEDULED,
    Access,
    access,
    audit,
    notify,
)
from confer.services.meetings import activate
from confer.services.roles import Permission, Role

MediaType = Literal["audio", "video"]
AssignableRole = Literal["co_host", "participant", "audience"]


def meeting_full() -> AppError:
    return Conflict("Meeting is full", code=ErrorCode.MEETING_FULL)


def wrong_password() -> AppError:
    return Forbidden("Wrong meeting password", code=ErrorCode.MEETING_PASSWORD)


class PasswordAttempts:
    """Wrong meeting passwords per (user, meeting): at most `limit` within `window` seconds.

    argon2 already makes each guess cost tens of milliseconds; this caps guesses per meeting.
    Joins of meetings that do not exist count too, under `NO_MEETING`: a private meeting
    without a password is joined by its id, and this keeps ids from being enumerated.
    With Redis (the shared rate limiter's connection) the count is shared by every process, so
    more workers do not mean more guesses: a counter that expires `window` seconds after the
    first failure. Without Redis, or while it fails, this process's own sliding window counts.
    """

    PREFIX = "confer:pw:"
    NO_MEETING = 0  # the meeting id under which joins of unknown meetings are counted

    def __init__(
        self, limit: int, window: float, max_keys: int = 50_000, redis: Any | None = None
    ) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.redis = redis
        self._failures: dict[tuple[int, int], deque[float]] = {}

    def _key(self, user_id: int, meeting_id: int) -> str:
        return f"{self.PREFIX}{user_id}:{meeting_id}"

    def _recent(self, key: tuple[int, int], now: float) -> deque[float]:
        stamps = self._failures.get(key)
        if stamps is None:
            if len(self._failures) >= self.max_keys:
                self._failures.clear()  # a flood of keys: forget rather than grow without bound
            stamps = self._failures[key] = deque()
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()
        return stamps

    def _refuse(self, meeting_id: int, retry: float) -> RateLimited:
        return RateLimited(
            "Too many joins of meetings that do not exist; try again later"
            if meeting_id == self.NO_MEETING
            else "Too many wrong meeting passwords; try again later",
            headers={"Retry-After": str(max(1, int(retry) + 1))},
        )

    async def check(self, user_id: int, meeting_id: int) -> None:
        if self.redis is not None:
            key = self._key(user_id, meeting_id)
            try:
                count, ttl = await self.redis.pipeline().get(key).pttl(key).execute()
            except RedisError:
                pass  # counted locally below until Redis is back
            else:
                if count is not None and int(count) >= self.limit:
                    raise self._refuse(meeting_id, max(ttl, 0) / 1000)
                return
        now = time.monotonic()
        stamps = self._recent((user_id, meeting_id), now)
        if len(stamps) >= self.limit:
            raise self._refuse(meeting_id, self.window - (now - stamps[0]))

    async def failed(self, user_id: int, meeting_id: int) -> None:
        if self.redis is not None:
            key = self._key(user_id, meeting_id)
            try:
                pipe = self.redis.pipeline().incr(key).expire(key, int(self.window) + 1, nx=True)
                await pipe.execute()
                return
            except RedisError:
                pass
        now = time.monotonic()
        self._recent((user_id, meeting_id), now).append(now)

    async def succeeded(self, user_id: int, meeting_id: int) -> None:
        self._failures.pop((user_id, meeting_id), None)
        if self.redis is not None:
            with contextlib.suppress(RedisError):
                await self.redis.delete(self._key(user_id, meeting_id))


@dataclass(slots=True)
class Member:
    participant: Participant
    username: str
    full_name: str


async def _joined_count(s: AsyncSession, meeting_id: int) -> int:
    return int(
        await s.scalar(
            select(func.count()).where(
                Participant.meeting_id == meeting_id, Participant.state == JOINED
            )
        )
        or 0
    )


async def join(
    s: AsyncSession,
    bus: EventBus,
    attempts: PasswordAttempts,
    meeting_id: int,
    user_id: int,
    password: str | None,
) -> Access:
    try:
        acc = await access(s, meeting_id, user_id, lock=True)
    except NotFound:
        await attempts.check(user_id, attempts.NO_MEETING)
        await attempts.failed(user_id, attempts.NO_MEETING)
        raise
    if acc.role is None:  # a new joiner: over the limit, no meeting is found by trying ids
        await attempts.check(user_id, attempts.NO_MEETING)
    meeting, p = acc.meeting, acc.participant
    acc.require_open()
    if acc.kicked:
        raise Forbidden("You were removed from this meeting and cannot rejoin")
    if not acc.is_host and meeting.password_hash is not None:
        await attempts.check(user_id, meeting_id)
        if not password or not await verify_password(meeting.password_hash, password):
            await attempts.failed(user_id, meeting_id)
            raise wrong_password()
        await attempts.succeeded(user_id, meeting_id)
    already = p is not None and p.state == JOINED
    if (
        not acc.is_host
        and not already
        and await _joined_count(s, meeting_id) >= (meeting.max_participants)
    ):
        raise meeting_full()
    now = utcnow()
    role = Role.HOST if acc.is_host else meeting.settings.get("default_role", Role.PARTICIPANT)
    muted = bool(meeting.settings.get("mute_on_join")) and not acc.is_host
    if p is None:
        p = Participant(meeting_id=meeting_id, user_id=user_id, role=role, audio_muted=muted)
        s.add(p)
    if not already:
        p.state, p.joined_at, p.left_at, p.last_active_at = JOINED, now, None, now
        p.audio_muted = muted
    if acc.is_host:
        p.role = Role.HOST
    await s.flush()
    if acc.is_host and meeting.status == SCHEDULED:
        await activate(s, bus, meeting, user_id)  # commits
    else:
        await s.commit()
    return Access(meeting, p, p.role)


async def leave(s: AsyncSession, bus: EventBus, meeting_id: int, user_id: int) -> Participant:
    """Leaving twice is harmless; the host leaving does not end the meeting."""
    acc = await access(s, meeting_id, user_id, lock=True)
    acc.require_member()
    p = acc.participant
    if p is None:
        raise Forbidden("You have not joined this meeting")
    if p.state == JOINED:
        p.state, p.left_at = LEFT, utcnow()
        await s.commit()
        await notify(bus, meeting_id, events.LEFT, user_id=user_id, participant_id=p.id)
    return p


async def members(
    s: AsyncSession,
    meeting_id: int,
    user_id: int,
    state: str | None,
    page: int,
    page_size: int,
) -> tuple[list[Member], int]:
    (await access(s, meeting_id, user_id)).require_member()
    where = [Participant.meeting_id == meeting_id]
    if state is not None:
        where.append(Participant.state == state)
    total = await s.scalar(select(func.count()).select_from(Participant).where(*where))
    rows = await s.execute(
        select(Participant, User.username, User.full_name)
        .join(User, User.id == Participant.user_id)
        .where(*where)
        .order_by(Participant.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return [Member(p, username, full_name) for p, username, full_name in rows], int(total or 0)


async def _target(
    s: AsyncSession, meeting_id: int, actor_id: int, participant_id: int, permission: Permission
) -> tuple[Access, Participant]:
    """Authorise `actor` for `permission` on a participant of this meeting, and load both."""
    acc = await access(s, meeting_id, actor_id, lock=True)
    acc.require(permission)
    acc.require_open()
    target = await s.get(Participant, participant_id, populate_existing=True)
    if target is None or target.meeting_id != meeting_id:
        raise NotFound("Participant not found", details="No such participant in this meeting")
    if target.user_id == acc.meeting.host_id:
        raise Forbidden("The host cannot be moderated")
    if target.role == Role.CO_HOST and not acc.is_host:
        raise Forbidden("Only the host can moderate a co-host")
    return acc, target


async def kick(
    s: AsyncSession,
    bus: EventBus,
    meeting_id: int,
    actor_id: int,
    participant_id: int,
    reason: str,
) -> Participant:
    _, target = await _target(s, meeting_id, actor_id, participant_id, Permission.KICK)
    if target.state != KICKED:
        if target.state == JOINED:
            target.left_at = utcnow()
        target.state = KICKED
        audit(s, meeting_id, actor_id, "kick", target.user_id, reason=reason)
        await s.commit()
        await notify(
            bus,
            meeting_id,
            events.KICKED,
            user_id=target.user_id,
            participant_id=target.id,
            reason=reason,
            by=actor_id,
        )
    return target


def _not_kicked(target: Participant) -> None:
    if target.state == KICKED:
        raise Conflict("That participant was removed from the meeting")


async def set_role(
    s: AsyncSession,
    bus: EventBus,
    meeting_id: int,
    actor_id: int,
    participant_id: int,
    role: AssignableRole,
) -> Participant:
    _, target = await _target(s, meeting_id, actor_id, participant_id, Permission.CHANGE_ROLE)
    _not_kicked(target)
    if target.role != role:
        audit(s, meeting_id, actor_id, "role_change", target.user_id, old=target.role, new=role)
        target.role = role
        await s.commit()
        await notify(
            bus,
            meeting_id,
            events.ROLE_CHANGED,
            user_id=target.user_id,
            participant_id=target.id,
            role=role,
            by=actor_id,
        )
    return target


async def mute(
    s: AsyncSession,
    bus: EventBus,
    meeting_id: int,
    actor_id: int,
    participant_id: int,
    media_type: MediaType,
) -> Participant:
    """Mute someone now; they may unmute themselves unless the meeting disallows it."""
    acc, target = await _target(s, meeting_id, actor_id, participant_id, Permission.MUTE_OTHERS)
    if target.state != JOINED:
        raise Conflict("That participant is not in the meeting")
    if media_type == "audio":
        target.audio_muted = True
    else:
        target.video_muted = True
    if not acc.meeting.settings.get("allow_self_unmute", True):
        target.muted_by_host = True
    audit(s, meeting_id, actor_id, "mute", target.user_id, media_type=media_type)
    await s.commit()
    await notify(
        bus,
        meeting_id,
        events.MUTED,
        user_id=target.user_id,
        participant_id=target.id,
        media_type=media_type,
        by=actor_id,
    )
    return target


async def mute_all(
    s: AsyncSession, bus: EventBus, meeting_id: int, actor_id: int, media_type: MediaType
) -> tuple[list[int], list[int]]:
    """Mute every present participant and audience member; return (muted, spared) user ids."""
    acc = await access(s, meeting_id, actor_id, lock=True)
    acc.require(Permission.MUTE_ALL)
    acc.require_open()
    present = (
        await s.scalars(
            select(Participant).where(
                Participant.meeting_id == meeting_id, Participant.state == JOINED
            )
        )
    ).all()
    spared_roles = {Role.HOST, Role.CO_HOST}
    spared = sorted({acc.meeting.host_id} | {p.user_id for p in present if p.role in spared_roles})
    muted = [p for p in present if p.user_id not in spared]
    values: dict[str, bool] = {f"{media_type}_muted": True}
    if not acc.meeting.settings.get("allow_self_unmute", True):
        values["muted_by_host"] = True
    if muted:
        await s.execute(
            update(Participant).where(Participant.id.in_([p.id for p in muted])).values(**values)
        )
    audit(s, meeting_id, actor_id, "mute_all", media_type=media_type, count=len(muted))
    await s.commit()
    await notify(
        bus, meeting_id, events.MUTE_ALL, media_type=media_type, by=actor_id, except_user_ids=spared
    )
    return sorted(p.user_id for p in muted), spared


async def screen_share(
    s: AsyncSession,
    bus: EventBus,
    meeting_id: int,
    actor_id: int,
    participant_id: int,
    allowed: bool,
) -> Participant:
    _, target = await _target(
        s, meeting_id, actor_id, participant_id, Permission.MANAGE_SCREEN_SHARE
    )
    _not_kicked(target)
    if allowed and target.role == Role.AUDIENCE:
        raise ValidationFailed(
            "Audience members cannot share the screen",
            details="Make them a participant first (PUT .../role)",
        )
    if target.can_share_screen != allowed:
        target.can_share_screen = allowed
        audit(s, meeting_id, actor_id, "screen_share", target.user_id, allowed=allowed)
        await s.commit()
        await notify(
            bus,
            meeting_id,
            events.SCREEN_SHARE_PERMISSION,
            user_id=target.user_id,
            participant_id=target.id,
            allowed=allowed,
            by=actor_id,
        )
    return target
