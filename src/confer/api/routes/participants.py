"""/api/v1/meetings/{id}/...: join, leave, participants, moderation and chat history.

Admission and moderation rules are in `services.participants`; who may do what is the role
table in `services.roles` (403 for whoever lacks the right).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Body, Query, Request
from pydantic import BaseModel, Field, StrictBool, field_validator

from confer.api.deps import Ctx, CurrentUser, Session
from confer.api.envelope import Envelope, Page, Timestamp, total_pages
from confer.api.routes import API_PREFIX, api_router
from confer.api.routes.meeting_params import (
    MAX_ID,
    MeetingId,
    PageNo,
    PageSize,
    ParticipantId,
    check_page_size,
    websocket_url,
)
from confer.db.models import ChatMessage, Participant, User
from confer.services import participants as svc
from confer.services.chat_history import history
from confer.services.ice import ice_servers_for
from confer.services.participants import AssignableRole, MediaType, Member, PasswordAttempts

router = api_router(f"{API_PREFIX}/meetings", tags=["meetings"])


class JoinIn(BaseModel):
    password: str | None = Field(default=None, max_length=128)


class IceServerOut(BaseModel):
    urls: str = Field(examples=["stun:stun.l.google.com:19302"])
    username: str | None = None
    credential: str | None = None


class JoinOut(BaseModel):
    meeting_id: int
    participant_id: int
    user_id: int
    role: str
    websocket_url: str = Field(examples=["wss://api.meeting.com/ws/signaling"])
    ice_servers: list[IceServerOut]
    session_token: str
    expires_in: int = Field(description="Seconds until session_token expires")


class ParticipantOut(BaseModel):
    participant_id: int
    user_id: int
    username: str
    full_name: str
    role: str
    state: Literal["joined", "left", "kicked"]
    joined_at: Timestamp
    left_at: Timestamp | None
    last_active_at: Timestamp
    audio_muted: bool
    video_muted: bool
    muted_by_host: bool
    can_share_screen: bool


class KickIn(BaseModel):
    reason: str = Field(default="", max_length=200)

    @field_validator("reason")
    @classmethod
    def _one_line(cls, v: str) -> str:
        v = v.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError("must not contain control characters")
        return v


class RoleIn(BaseModel):
    role: AssignableRole


class MuteIn(BaseModel):
    media_type: MediaType = "audio"


class MuteAllOut(BaseModel):
    media_type: MediaType
    muted_user_ids: list[int]
    except_user_ids: list[int]


class ScreenShareIn(BaseModel):
    allowed: StrictBool


class ChatMessageOut(BaseModel):
    message_id: int
    meeting_id: int
    user_id: int
    username: str
    to_user_id: int | None
    is_private: bool
    content: str
    created_at: Timestamp


def participant_out(m: Member) -> ParticipantOut:
    p = m.participant
    return ParticipantOut(
        participant_id=p.id,
        user_id=p.user_id,
        username=m.username,
        full_name=m.full_name,
        role=p.role,
        state=p.state,  # type: ignore[arg-type]
        joined_at=p.joined_at,
        left_at=p.left_at,
        last_active_at=p.last_active_at,
        audio_muted=p.audio_muted,
        video_muted=p.video_muted,
        muted_by_host=p.muted_by_host,
        can_share_screen=p.can_share_screen,
    )


async def _member(s: Session, p: Participant) -> ParticipantOut:
    user = await s.get(User, p.user_id)
    assert user is not None  # participants cascade with their user
    return participant_out(Member(p, user.username, user.full_name))


def _attempts(ctx: Ctx) -> PasswordAttempts:
    attempts = ctx.extras.get("meeting_password_attempts")
    if attempts is None:
        # With Redis configured the shared rate limiter holds a connection: count there.
        redis = getattr(ctx.extras.get("rate_limiter"), "redis", None)
        attempts = ctx.extras["meeting_password_attempts"] = PasswordAttempts(
            ctx.settings.meeting_password_attempts,
            ctx.settings.meeting_password_window,
            redis=redis,
        )
    return attempts  # type: ignore[no-any-return]


@router.post(
    "/{meeting_id}/join", response_model=Envelope[JoinOut], response_model_exclude_none=True
)
async def join_meeting(
    meeting_id: MeetingId,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    body: Annotated[JoinIn | None, Body()] = None,
) -> Envelope[JoinOut]:
    """Enter a meeting: 20001 unknown, 20002 ended, 20003 full (HTTP 409), 20004 wrong or
    missing password (the host needs none), 403 kicked, 429 after too many wrong passwords.
    Returns the signaling URL, ICE servers (TURN credentials expire after `turn_ttl`) and a
    session token for the socket."""
    acc = await svc.join(
        s, ctx.bus, _attempts(ctx), meeting_id, user.id, body.password if body else None
    )
    p = acc.participant
    assert p is not None
    ttl = ctx.settings.meeting_session_ttl
    servers = ice_servers_for(ctx.settings, user.id)
    return Envelope(
        data=JoinOut(
            meeting_id=meeting_id,
            participant_id=p.id,
            user_id=user.id,
            role=p.role,
            websocket_url=websocket_url(request, ctx.settings),
            ice_servers=[
                IceServerOut(urls=i.urls, username=i.username, credential=i.credential)
                for i in servers
            ],
            session_token=ctx.codec.issue_session(user.id, meeting_id, p.id, ttl),
            expires_in=ttl,
        )
    )


@router.post("/{meeting_id}/leave", response_model=Envelope[ParticipantOut])
async def leave_meeting(
    meeting_id: MeetingId, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[ParticipantOut]:
    """Leave (idempotent). The meeting goes on, also when the host leaves. Publishes `left`."""
    p = await svc.leave(s, ctx.bus, meeting_id, user.id)
    return Envelope(data=participant_out(Member(p, user.username, user.full_name)))


@router.get("/{meeting_id}/participants", response_model=Envelope[Page[ParticipantOut]])
async def list_participants(
    meeting_id: MeetingId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    state: Literal["joined", "left", "kicked"] | None = None,
    page: PageNo = 1,
    page_size: PageSize = 100,
) -> Envelope[Page[ParticipantOut]]:
    """Everyone who ever joined this meeting (or those in `state`), for its members only."""
    check_page_size(ctx.settings, page_size)
    rows, total = await svc.members(s, meeting_id, user.id, state, page, page_size)
    return Envelope(
        data=Page(
            items=[participant_out(m) for m in rows],
            total=total,
            page=page,
            page_size=page_size,
            total_pages=total_pages(total, page_size),
        )
    )


@router.post(
    "/{meeting_id}/participants/{participant_id}/kick", response_model=Envelope[ParticipantOut]
)
async def kick_participant(
    meeting_id: MeetingId,
    participant_id: ParticipantId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    body: Annotated[KickIn | None, Body()] = None,
) -> Envelope[ParticipantOut]:
    """Host only. The user is disconnected (`kicked` with the reason) and cannot rejoin."""
    reason = body.reason if body else ""
    p = await svc.kick(s, ctx.bus, meeting_id, user.id, participant_id, reason)
    return Envelope(data=await _member(s, p))


@router.put(
    "/{meeting_id}/participants/{participant_id}/role", response_model=Envelope[ParticipantOut]
)
async def change_role(
    meeting_id: MeetingId,
    participant_id: ParticipantId,
    body: RoleIn,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
) -> Envelope[ParticipantOut]:
    """Host only: make someone co-host, participant or audience (not host). `role_changed`."""
    p = await svc.set_role(s, ctx.bus, meeting_id, user.id, participant_id, body.role)
    return Envelope(data=await _member(s, p))


@router.post(
    "/{meeting_id}/participants/{participant_id}/mute", response_model=Envelope[ParticipantOut]
)
async def mute_participant(
    meeting_id: MeetingId,
    participant_id: ParticipantId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    body: Annotated[MuteIn | None, Body()] = None,
) -> Envelope[ParticipantOut]:
    """Host and co-hosts: mute someone's audio (default) or video. Publishes `muted`."""
    media = body.media_type if body else "audio"
    p = await svc.mute(s, ctx.bus, meeting_id, user.id, participant_id, media)
    return Envelope(data=await _member(s, p))


@router.post("/{meeting_id}/mute-all", response_model=Envelope[MuteAllOut])
async def mute_everyone(
    meeting_id: MeetingId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    body: Annotated[MuteIn | None, Body()] = None,
) -> Envelope[MuteAllOut]:
    """Host only: mute every participant and audience member (hosts and co-hosts are spared).
    Publishes `mute_all`."""
    media = body.media_type if body else "audio"
    muted, spared = await svc.mute_all(s, ctx.bus, meeting_id, user.id, media)
    return Envelope(data=MuteAllOut(media_type=media, muted_user_ids=muted, except_user_ids=spared))


@router.put(
    "/{meeting_id}/participants/{participant_id}/screen-share",
    response_model=Envelope[ParticipantOut],
)
async def set_screen_share(
    meeting_id: MeetingId,
    participant_id: ParticipantId,
    body: ScreenShareIn,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
) -> Envelope[ParticipantOut]:
    """Host and co-hosts: grant or revoke a participant's screen sharing
    (`screen_share_permission`). Audience members cannot be granted it."""
    p = await svc.screen_share(s, ctx.bus, meeting_id, user.id, participant_id, body.allowed)
    return Envelope(data=await _member(s, p))


def message_out(m: ChatMessage) -> ChatMessageOut:
    return ChatMessageOut(
        message_id=m.id,
        meeting_id=m.meeting_id,
        user_id=m.sender_id,
        username=m.sender_name,
        to_user_id=m.to_user_id,
        is_private=m.to_user_id is not None,
        content=m.content,
        created_at=m.created_at,
    )


@router.get("/{meeting_id}/messages", response_model=Envelope[Page[ChatMessageOut]])
async def chat_messages(
    meeting_id: MeetingId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    page: PageNo = 1,
    page_size: PageSize = 50,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Envelope[Page[ChatMessageOut]]:
    """Chat history, newest first, for the meeting's members; private messages only for their
    sender and recipient. `before_id` pages back from a message already shown."""
    check_page_size(ctx.settings, page_size)
    rows, total = await history(s, meeting_id, user.id, page, page_size, before_id)
    return Envelope(
        data=Page(
            items=[message_out(m) for m in rows],
            total=total,
            page=page,
            page_size=page_size,
            total_pages=total_pages(total, page_size),
        )
    )
