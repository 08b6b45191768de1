"""Meeting transcripts: final captions stored per meeting, rendered as JSON, WebVTT or SRT.

The caption engine's final events arrive here (via `AIService.subscribe`); cue times in the
downloads count from the meeting's start (or from the first words if it has no start time),
as a recording of the meeting would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from confer.api.envelope import iso
from confer.db.models import Meeting, TranscriptSegment, User
from confer.db.session import Database

log = logging.getLogger("confer.ai.transcripts")


class TranscriptStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._names: dict[int, str] = {}

    async def _speaker_name(self, user_id: int) -> str:
        if user_id not in self._names:
            async with self.db.session() as s:
                user = await s.get(User, user_id)
                self._names[user_id] = (user.full_name or user.username) if user else ""
        return self._names[user_id]

    async def on_caption(self, event: dict[str, Any]) -> None:
        """Keep final captions with text; partials and empty finals are not transcript."""
        if not event.get("final") or not str(event.get("text", "")).strip():
            return
        row = TranscriptSegment(
            meeting_id=int(event["meeting_id"]),
            user_id=int(event["user_id"]),
            speaker_name=await self._speaker_name(int(event["user_id"])),
            utterance_id=str(event["utterance_id"])[:64],
            text=str(event["text"]).strip(),
            language=str(event["language"])[:8],
            confidence=float(event.get("confidence", 0.0)),
            start_at=datetime.fromtimestamp(float(event["start"]), UTC),
            end_at=datetime.fromtimestamp(float(event["end"]), UTC),
        )
        try:
            async with self.db.session() as s:
                s.add(row)
        except IntegrityError:
            log.info("transcript segment %s already stored", row.utterance_id)

    async def segments(self, s: Any, meeting_id: int) -> list[TranscriptSegment]:
        rows = await s.scalars(
            select(TranscriptSegment)
            .where(TranscriptSegment.meeting_id == meeting_id)
            .order_by(TranscriptSegment.start_at, TranscriptSegment.id)
        )
        return list(rows)


def origin_of(meeting: Meeting, segments: Sequence[TranscriptSegment]) -> datetime:
    first = segments[0].start_at if segments else None
    start = meeting.started_at
    if start is not None and (first is None or start <= first):
        return start
    return first or meeting.created_at


def _offset(at: datetime, origin: datetime) -> float:
    return max((at - origin).total_seconds(), 0.0)


def as_json(meeting: Meeting, segments: Sequence[TranscriptSegment]) -> dict[str, Any]:
    origin = origin_of(meeting, segments)
    return {
        "meeting_id": meeting.id,
        "title": meeting.title,
        "origin": iso(origin),
        "total": len(segments),
        "segments": [
            {
                "segment_id": seg.id,
                "user_id": seg.user_id,
                "speaker_name": seg.speaker_name,
                "text": seg.text,
                "language": seg.language,
                "confidence": round(seg.confidence, 3),
                "start_time": iso(seg.start_at),
                "end_time": iso(seg.end_at),
                "start": round(_offset(seg.start_at, origin), 3),
                "end": round(_offset(seg.end_at, origin), 3),
            }
            for seg in segments
        ],
    }


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cue_times(seg: TranscriptSegment, origin: datetime, sep: str) -> str:
    start = _offset(seg.start_at, origin)
    end = max(_offset(seg.end_at, origin), start + 0.001)
    return f"{_clock(start, sep)} --> {_clock(end, sep)}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str) -> str:
    # A blank line would end a cue early in both formats.
    return " ".join(text.split())


def as_vtt(meeting: Meeting, segments: Sequence[TranscriptSegment]) -> str:
    origin = origin_of(meeting, segments)
    lines = ["WEBVTT", f"NOTE {_one_line(_vtt_escape(meeting.title))}", ""]
    for n, seg in enumerate(segments, 1):
        lines.append(str(n))
        lines.append(_cue_times(seg, origin, "."))
        speaker = _vtt_escape(_one_line(seg.speaker_name)).replace(">", "")
        text = _vtt_escape(_one_line(seg.text))
        lines.append(f"<v {speaker}>{text}" if speaker else text)
        lines.append("")
    return "\n".join(lines)


def as_srt(meeting: Meeting, segments: Sequence[TranscriptSegment]) -> str:
    origin = origin_of(meeting, segments)
    lines: list[str] = []
    for n, seg in enumerate(segments, 1):
        lines.append(str(n))
        lines.append(_cue_times(seg, origin, ","))
        speaker = _one_line(seg.speaker_name)
        text = _one_line(seg.text)
        lines.append(f"{speaker}: {text}" if speaker else text)
        lines.append("")
    return "\n".join(lines)
