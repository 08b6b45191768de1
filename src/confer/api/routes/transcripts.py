"""/api/v1/meetings/{id}/transcript: the meeting's captions as JSON, WebVTT or SRT.

Only the meeting's host and participants (present or past, not kicked) may read it.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query, Response
from sqlalchemy import select

from confer.ai.transcripts import TranscriptStore, as_json, as_srt, as_vtt
from confer.api.deps import Ctx, CurrentUser, Session
from confer.api.envelope import Envelope
from confer.api.routes import API_PREFIX, api_router
from confer.api.routes.meeting_params import MeetingId
from confer.db.models import Meeting, Participant
from confer.errors import Forbidden, meeting_not_found

router = api_router(API_PREFIX, tags=["ai"])

Format = Literal["json", "vtt", "srt"]
_MEDIA = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8"}


async def _readable_meeting(s: Any, meeting_id: int, user_id: int) -> Meeting:
    meeting = await s.get(Meeting, meeting_id)
    if meeting is None:
        raise meeting_not_found()
    if meeting.host_id == user_id:
        return meeting
    state = await s.scalar(
        select(Participant.state).where(
            Participant.meeting_id == meeting_id, Participant.user_id == user_id
        )
    )
    if state is None or state == "kicked":
        raise Forbidden(
            "Not a participant", details="only the meeting's participants may read its transcript"
        )
    return meeting


async def _render(
    meeting_id: int, fmt: Format, user: Any, ctx: Ctx, s: Any
) -> Envelope[dict[str, Any]] | Response:
    meeting = await _readable_meeting(s, meeting_id, user.id)
    segments = await TranscriptStore(ctx.db).segments(s, meeting_id)
    if fmt == "json":
        return Envelope(data=as_json(meeting, segments))
    body = (as_vtt if fmt == "vtt" else as_srt)(meeting, segments)
    return Response(
        body,
        media_type=_MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="meeting-{meeting_id}-transcript.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/meetings/{meeting_id}/transcript",
    response_model=Envelope[dict[str, Any]],
    summary="The meeting's transcript (extension); ?format=vtt or srt downloads a caption file",
    responses={200: {"content": {_MEDIA["vtt"]: {}, _MEDIA["srt"]: {}}}},
)
async def transcript(
    meeting_id: MeetingId,
    user: CurrentUser,
    ctx: Ctx,
    s: Session,
    format: Format = Query("json", description="json (envelope), vtt or srt"),
) -> Any:
    return await _render(meeting_id, format, user, ctx, s)


@router.get(
    "/meetings/{meeting_id}/transcript.vtt",
    summary="The transcript as WebVTT",
    responses={200: {"content": {_MEDIA["vtt"]: {"schema": {"type": "string"}}}}},
)
async def transcript_vtt(meeting_id: MeetingId, user: CurrentUser, ctx: Ctx, s: Session) -> Any:
    return await _render(meeting_id, "vtt", user, ctx, s)


@router.get(
    "/meetings/{meeting_id}/transcript.srt",
    summary="The transcript as SRT",
    responses={200: {"content": {_MEDIA["srt"]: {"schema": {"type": "string"}}}}},
)
async def transcript_srt(meeting_id: MeetingId, user: CurrentUser, ctx: Ctx, s: Session) -> Any:
    return await _render(meeting_id, "srt", user, ctx, s)
