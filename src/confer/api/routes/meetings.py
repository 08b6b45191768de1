"""/api/v1/meetings: create, list, details, update, delete, start, end, look-up by code.

Rules (visibility, lifecycle, deletion) are in `services.meetings`; participants, moderation and
chat history are in `routes.participants`, under the same prefix.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field

from confer.api.deps import CallerWithListVersion, Ctx, CurrentUser, Session
from confer.api.envelope import (
    Envelope,
    Timestamp,
    prerender,
    respond_prerendered,
    total_pages,
)
from confer.api.routes import API_PREFIX, api_router
from confer.api.routes.media import get_files
from confer.api.routes.meeting_params import (
    MeetingId,
    PageNo,
    PageSize,
    base_url,
    check_page_size,
)
from confer.config import Settings
from confer.services import meetings as svc
from confer.services.files import Files
from confer.services.meeting_input import MeetingDraft, MeetingPatch
from confer.services.meetings import MeetingStatus, MeetingView

router = api_router(f"{API_PREFIX}/meetings", tags=["meetings"])


class MeetingSettingsOut(BaseModel):
    enable_recording: bool
    enable_ai_analysis: bool
    require_password: bool
    screen_share_requires_permission: bool
    max_screen_shares: int
    mute_on_join: bool
    allow_self_unmute: bool
    enable_chat: bool
    default_role: str


class MeetingOut(BaseModel):
    meeting_id: int
    title: str
    meeting_code: str = Field(examples=["ABC-DEF-GHI"])
    join_url: str
    host_id: int
    host_name: str
    status: MeetingStatus
    created_at: Timestamp
    description: str
    start_time: Timestamp | None
    duration: int
    max_participants: int
    is_public: bool
    settings: MeetingSettingsOut
    participant_count: int = Field(description="People in the meeting right now")
    role: str | None = Field(description="The caller's role; null for an outsider")
    updated_at: Timestamp
    started_at: Timestamp | None
    ended_at: Timestamp | None


class MeetingItem(BaseModel):
    meeting_id: int
    title: str
    host_name: str
    start_time: Timestamp | None
    status: MeetingStatus
    participant_count: int
    meeting_code: str
    host_id: int
    role: str | None
    is_public: bool
    requires_password: bool
    duration: int
    max_participants: int


class MeetingList(BaseModel):
    meetings: list[MeetingItem]
    total: int
    page: int
    page_size: int
    total_pages: int


class Deleted(BaseModel):
    meeting_id: int
    deleted: bool


def meeting_out(v: MeetingView, request: Request, settings: Settings) -> MeetingOut:
    m = v.meeting
    return MeetingOut(
        meeting_id=m.id,
        title=m.title,
        meeting_code=m.meeting_code,
        join_url=f"{base_url(request, settings)}/join/{m.meeting_code}",
        host_id=m.host_id,
        host_name=v.host_name,
        status=m.status,  # type: ignore[arg-type]
        created_at=m.created_at,
        description=m.description,
        start_time=m.start_time,
        duration=m.duration,
        max_participants=m.max_participants,
        is_public=m.is_public,
        settings=MeetingSettingsOut(**{**svc.default_settings(settings), **svc.public_settings(m)}),
        participant_count=v.participant_count,
        role=v.role,
        updated_at=m.updated_at,
        started_at=m.started_at,
        ended_at=m.ended_at,
    )


def meeting_item(v: MeetingView) -> dict[str, object]:
    """A `MeetingItem` as plain JSON values: lists are hot, and a model per item was most of
    their cost (tests validate the result against `MeetingItem`)."""
    m = v.meeting
    return {
        "meeting_id": m.id,
        "title": m.title,
        "host_name": v.host_name,
        "start_time": m.start_time,  # rendered by prerender
        "status": m.status,
        "participant_count": v.participant_count,
        "meeting_code": m.meeting_code,
        "host_id": m.host_id,
        "role": v.role,
        "is_public": m.is_public,
        "requires_password": m.password_hash is not None,
        "duration": m.duration,
        "max_participants": m.max_participants,
    }


@router.post("", status_code=201, response_model=Envelope[MeetingOut])
async def create_meeting(
    body: MeetingDraft, request: Request, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[MeetingOut]:
    """Create a scheduled meeting hosted by the caller; a password is stored as an argon2 hash."""
    meeting = await svc.create(s, ctx.settings, user.id, body)
    view = await svc.view(s, meeting.id, user.id)
    return Envelope(code=201, data=meeting_out(view, request, ctx.settings))


@router.get("", response_model=Envelope[MeetingList])
async def list_meetings(
    user: CallerWithListVersion,
    ctx: Ctx,
    status: MeetingStatus | None = None,
    page: PageNo = 1,
    page_size: PageSize = 20,
) -> Response:
    """Meetings the caller hosts or joined (and was not kicked from), and public ones not ended;
    latest start first."""
    check_page_size(ctx.settings, page_size)
    key = (user.id, status, page, page_size)
    body = ctx.meeting_lists.get(user.list_version, key)
    if body is None:
        views, total = await svc.listing(ctx.db.reads, user.id, status, page, page_size)
        body = prerender(
            {
                "meetings": [meeting_item(v) for v in views],
                "total": total,
                "page": page,
                "page_size": page_size,
                "total_pages": total_pages(total, page_size),
            }
        )
        if views or page == 1:  # pages past the end are cheap, and unbounded in number
            ctx.meeting_lists.put(user.list_version, key, body)
    return respond_prerendered(body)


@router.get("/code/{meeting_code}", response_model=Envelope[MeetingOut])
async def find_by_code(
    meeting_code: Annotated[
        str, Path(min_length=9, max_length=32, pattern=r"^[A-Za-z -]+$", examples=["ABC-DEF-GHI"])
    ],
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
) -> Envelope[MeetingOut]:
    """Look a meeting up by its code (case-insensitive, dashes optional): the invitation."""
    view = await svc.by_code(s, meeting_code, user.id)
    return Envelope(data=meeting_out(view, request, ctx.settings))


@router.get("/{meeting_id}", response_model=Envelope[MeetingOut])
async def get_meeting(
    meeting_id: MeetingId, request: Request, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[MeetingOut]:
    """Details for the host, members, and anyone when the meeting is public."""
    view = await svc.details(s, meeting_id, user.id)
    return Envelope(data=meeting_out(view, request, ctx.settings))


@router.put("/{meeting_id}", response_model=Envelope[MeetingOut])
async def update_meeting(
    meeting_id: MeetingId,
    body: MeetingPatch,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
) -> Envelope[MeetingOut]:
    """Host only; fields left out keep their value. `settings.require_password: false` removes
    the password. Publishes `meeting_updated` to the meeting's sockets."""
    view = await svc.update_meeting(s, ctx.bus, ctx.settings, meeting_id, user.id, body)
    return Envelope(data=meeting_out(view, request, ctx.settings))


@router.delete("/{meeting_id}", response_model=Envelope[Deleted])
async def delete_meeting(
    meeting_id: MeetingId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    files: Annotated[Files, Depends(get_files)],
) -> Envelope[Deleted]:
    """Host only. A meeting that has not ended is ended first (everyone in it is disconnected),
    then deleted with its participants, chat history, files (their stored blobs included) and
    audit log."""
    blobs = await svc.remove(s, ctx.bus, meeting_id, user.id)  # commits
    await files.discard_blobs(blobs)
    return Envelope(data=Deleted(meeting_id=meeting_id, deleted=True))


@router.post("/{meeting_id}/start", response_model=Envelope[MeetingOut])
async def start_meeting(
    meeting_id: MeetingId, request: Request, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[MeetingOut]:
    """Host only: scheduled -> active (the host joining does the same). 20002 once ended."""
    view = await svc.start(s, ctx.bus, meeting_id, user.id)
    return Envelope(data=meeting_out(view, request, ctx.settings))


@router.post("/{meeting_id}/end", response_model=Envelope[MeetingOut])
async def end_meeting(
    meeting_id: MeetingId, request: Request, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[MeetingOut]:
    """Host only: ends the meeting for everyone (idempotent). Publishes `ended`."""
    view = await svc.end(s, ctx.bus, meeting_id, user.id)
    return Envelope(data=meeting_out(view, request, ctx.settings))
