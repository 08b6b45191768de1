"""Path, query and URL helpers shared by the meeting and participant routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request

from confer.config import Settings
from confer.errors import ValidationFailed

MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL
MeetingId = Annotated[int, Path(ge=1, le=MAX_ID)]
ParticipantId = Annotated[int, Path(ge=1, le=MAX_ID)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, description="At most CONFER_MAX_PAGE_SIZE (default 100)")]


def check_page_size(settings: Settings, page_size: int) -> int:
    if page_size > settings.max_page_size:
        raise ValidationFailed(
            "Invalid request", details=f"page_size must be at most {settings.max_page_size}"
        )
    return page_size


def base_url(request: Request, settings: Settings) -> str:
    """The public origin: `CONFER_PUBLIC_URL`, else what the client (or the gateway) used."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def websocket_url(request: Request, settings: Settings) -> str:
    base = base_url(request, settings)
    scheme, sep, rest = base.partition("://")
    ws = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
    return f"{ws}{sep}{rest}/ws/signaling"
