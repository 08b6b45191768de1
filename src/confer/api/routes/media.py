"""/api/v1/media: file upload (the contract's 3.1), metadata, download, deletion, and the
per-meeting listing at /api/v1/meetings/{id}/files.

Downloads are built so that no upload can run in the browser: the Content-Type comes from the
server's allowlist (never the client's claim), `Content-Disposition: attachment`,
`X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from confer.api.deps import Ctx, current_user
from confer.api.envelope import Envelope, Page, Timestamp, total_pages
from confer.api.routes import API_PREFIX, api_router
from confer.api.routes.meeting_params import (
    MeetingId,
    PageNo,
    PageSize,
    base_url,
    check_page_size,
)
from confer.db.models import StoredFile, User
from confer.errors import AppError, UnsupportedMedia, ValidationFailed
from confer.ratelimit import MemoryRateLimiter
from confer.services.files import Files, too_large
from confer.storage import create_storage
from confer.storage.formdata import FormError, FormReader, FormTooLarge, boundary_of

router = api_router(API_PREFIX, tags=["media"])

# Room for the form's other parts and headers on top of the file itself.
FORM_OVERHEAD = 64 * 1024


async def get_files(ctx: Ctx) -> Files:
    files = ctx.extras.get("files")
    if files is None:
        limiter = ctx.extras.get("rate_limiter") or MemoryRateLimiter()
        files = Files(ctx.db, create_storage(ctx.settings), ctx.settings, limiter)
        ctx.extras["files"] = files
    return files  # type: ignore[no-any-return]


async def authenticated(request: Request, ctx: Ctx) -> User:
    """`current_user` on a session of its own, closed before a transfer starts."""
    async with ctx.db.session() as s:
        return await current_user(request, ctx, s)


FilesDep = Annotated[Files, Depends(get_files)]
AuthUser = Annotated[User, Depends(authenticated)]


class FileOut(BaseModel):
    file_id: str
    file_name: str
    file_url: str
    file_size: int
    uploaded_at: Timestamp
    content_type: str
    file_type: str
    meeting_id: int
    uploader_id: int
    sha256: str


class FileDeleted(BaseModel):
    file_id: str
    deleted: bool


def file_out(row: StoredFile, base: str) -> FileOut:
    return FileOut(
        file_id=row.id,
        file_name=row.file_name,
        file_url=f"{base}/api/v1/media/files/{row.id}/download",
        file_size=row.file_size,
        uploaded_at=row.created_at,
        content_type=row.content_type,
        file_type=row.file_type,
        meeting_id=row.meeting_id,
        uploader_id=row.uploader_id,
        sha256=row.sha256,
    )


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "meeting_id"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "meeting_id": {"type": "integer", "minimum": 1},
                        "file_type": {
                            "type": "string",
                            "enum": ["document", "image", "audio", "video", "other"],
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/media/upload",
    response_model=Envelope[FileOut],
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a file to a meeting (multipart/form-data: file, meeting_id, file_type)",
)
async def upload(request: Request, user: AuthUser, files: FilesDep, ctx: Ctx) -> Envelope[FileOut]:
    """Errors: 30003 (413) over the size limit, 30002 (415) for a type not accepted or an
    extension that does not match the content, 30001 (500) when storage fails, 20001 unknown
    meeting, 20002 ended meeting, 403 when not a participant, 429 too many uploads."""
    limit = ctx.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit + FORM_OVERHEAD:
        # Refused before reading a byte (a client sending Expect: 100-continue sends none).
        raise _closing(too_large(limit))
    try:
        boundary = boundary_of(request.headers.get("content-type", ""))
    except FormError as exc:
        raise UnsupportedMedia("Unsupported request body", details=str(exc)) from None
    reader = FormReader(request.stream(), boundary, limit + FORM_OVERHEAD)
    try:
        async with files.admitted(user.id):
            row = await files.upload(user.id, reader.events())
    except FormTooLarge:
        raise _closing(too_large(limit)) from None
    except FormError as exc:
        raise _closing(ValidationFailed("Invalid request", details=str(exc))) from None
    except ClientDisconnect:
        raise ValidationFailed("Invalid request", details="The client went away") from None
    except AppError as exc:
        if not reader.complete:
            _closing(exc)
        raise
    return Envelope(data=file_out(row, base_url(request, ctx.settings)))


def _closing(exc: AppError) -> AppError:
    """Answer and close: the rest of the body is left unread rather than drained."""
    exc.headers["Connection"] = "close"
    return exc


@router.get("/media/files/{file_id}", response_model=Envelope[FileOut])
async def file_metadata(
    file_id: str, request: Request, user: AuthUser, files: FilesDep, ctx: Ctx
) -> Envelope[FileOut]:
    row = await files.get(user.id, file_id)
    return Envelope(data=file_out(row, base_url(request, ctx.settings)))


@router.get("/meetings/{meeting_id}/files", response_model=Envelope[Page[FileOut]])
async def meeting_files(
    meeting_id: MeetingId,
    request: Request,
    user: AuthUser,
    files: FilesDep,
    ctx: Ctx,
    page: PageNo = 1,
    page_size: PageSize = 20,
) -> Envelope[Page[FileOut]]:
    """The meeting's files, newest first, in the contract's pagination shape."""
    check_page_size(ctx.settings, page_size)
    rows, total = await files.listing(user.id, meeting_id, page, page_size)
    base = base_url(request, ctx.settings)
    return Envelope(
        data=Page(
            items=[file_out(r, base) for r in rows],
            total=total,
            page=page,
            page_size=page_size,
            total_pages=total_pages(total, page_size),
        )
    )


@router.delete("/media/files/{file_id}", response_model=Envelope[FileDeleted])
async def delete_file(file_id: str, user: AuthUser, files: FilesDep) -> Envelope[FileDeleted]:
    """Only the uploader or the meeting's host."""
    await files.delete(user.id, file_id)
    return Envelope(data=FileDeleted(file_id=file_id, deleted=True))


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback for old clients, the exact name in `filename*`."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as (first, last); None to serve it all (absent, multiple, malformed).

    Raises ValueError when the range is well-formed but outside the file (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = (part.strip() for part in spec.partition("-"))
    if not dash or not (first_s or last_s):
        return None
    if (first_s and not first_s.isdecimal()) or (last_s and not last_s.isdecimal()):
        return None
    if not first_s:  # the last N bytes
        n = int(last_s)
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and first > last:  # invalid: ignore the header
        return None
    if first >= size:
        raise ValueError("range starts past the end")
    return first, min(last, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/media/files/{file_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}, 416: {}},
)
async def download(file_id: str, request: Request, user: AuthUser, files: FilesDep) -> Response:
    """The file's bytes as an attachment; supports `Range` (one range), `If-Range` and
    `If-None-Match` against a strong ETag (the sha256)."""
    row = await files.get(user.id, file_id)
    size = await files.blob_size(row)
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": content_disposition(row.file_name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Accept-Ranges": "bytes",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    first, last, status = 0, size - 1, 200
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header and (if_range is None or if_range.strip() == etag):
        try:
            wanted = parse_range(range_header, size)
        except ValueError:
            raise AppError(
                "Range not satisfiable",
                status=416,
                details=f"The file has {size} bytes",
                headers={"Content-Range": f"bytes */{size}"},
            ) from None
        if wanted is not None:
            (first, last), status = wanted, 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        files.read(row, first, last),
        status_code=status,
        headers=headers,
        media_type=row.content_type,
    )
