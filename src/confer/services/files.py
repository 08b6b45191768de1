"""Files shared in a meeting: upload, metadata, listing, access to the bytes, deletion.

Who may do what: the meeting's host and its participants (anyone with a participants row not
`kicked`, so people who left keep access to what was shared) may upload, list and download;
the uploader and the host may delete. An upload is accepted only when its content is of an
allowed type whose extension matches (`filetypes`), within `max_upload_bytes`; it is written
through a storage writer and recorded in `files` only once complete, so a refused, failed or
abandoned upload leaves nothing on disk or in the database.

Sessions are short and opened here, never held across a transfer: an upload or download can
last minutes and must not pin a database connection (or an SQLite read snapshot) meanwhile.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from confer.config import Settings
from confer.db.models import Meeting, Participant, StoredFile
from confer.db.session import Database
from confer.errors import (
    AppError,
    ErrorCode,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMedia,
    ValidationFailed,
    meeting_ended,
    meeting_not_found,
)
from confer.ratelimit import Rate, RateLimiter
from confer.services.filetypes import (
    CATEGORIES,
    ContentSniffer,
    UnsupportedContent,
    clean_file_name,
    extension_of,
)
from confer.services.roles import Role
from confer.storage import BlobInfo, BlobWriter, Storage, StorageError
from confer.storage.formdata import FileData, FileStart, FormEvent, TextField

log = logging.getLogger("confer.files")

FILE_ID_PATTERN = re.compile(r"file_[a-z2-7]{26}")
MAX_MEETING_ID = 2**31 - 1


class UploadFailed(AppError):
    status, type, code = 500, "UploadFailed", ErrorCode.UPLOAD_FAILED


def unsupported_type(details: str) -> UnsupportedMedia:
    return UnsupportedMedia("Unsupported file type", details=details, code=ErrorCode.FILE_TYPE)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "File too large",
        details=f"Files may be at most {limit} bytes",
        code=ErrorCode.FILE_TOO_LARGE,
    )


def file_not_found() -> NotFound:
    return NotFound("File not found")


def new_file_id() -> str:
    """`file_` and 128 random bits in lowercase base32: unguessable, URL- and path-safe."""
    return "file_" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


@dataclass
class _Form:
    meeting_id: int | None = None
    file_type: str | None = None  # validated; the stored type is what the content is
    raw_name: str = ""


class Files:
    def __init__(
        self, db: Database, storage: Storage, settings: Settings, limiter: RateLimiter
    ) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.limiter = limiter
        self.rate = Rate(settings.upload_rate_per_minute / 60.0, settings.upload_burst)
        self._active: dict[int, int] = {}

    # -- access ---------------------------------------------------------------------------

    @staticmethod
    async def _membership(s: AsyncSession, user_id: int, meeting_id: int) -> tuple[Meeting, bool]:
        """The meeting and whether the user hosts it; 20001 if unknown, 403 if not a member."""
        meeting = await s.get(Meeting, meeting_id)
        if meeting is None:
            raise meeting_not_found()
        member = await s.scalar(
            select(Participant).where(
                Participant.meeting_id == meeting_id, Participant.user_id == user_id
            )
        )
        is_host = meeting.host_id == user_id or (
            member is not None and member.role == Role.HOST and member.state != "kicked"
        )
        if not is_host and (member is None or member.state == "kicked"):
            raise Forbidden(
                "Not a participant of this meeting",
                details="Only the host and participants of a meeting can use its files",
            )
        return meeting, is_host

    async def _check_upload_allowed(self, s: AsyncSession, user_id: int, meeting_id: int) -> None:
        meeting, _ = await self._membership(s, user_id, meeting_id)
        if meeting.status == "ended":
            raise meeting_ended()

    @staticmethod
    async def _row(s: AsyncSession, file_id: str) -> StoredFile:
        """The file's row; 404 alike for an id that is malformed and one that is unknown."""
        row = await s.get(StoredFile, file_id) if FILE_ID_PATTERN.fullmatch(file_id) else None
        if row is None:
            raise file_not_found()
        return row

    async def get(self, user_id: int, file_id: str) -> StoredFile:
        async with self.db.session() as s:
            row = await self._row(s, file_id)
            await self._membership(s, user_id, row.meeting_id)
            return row

    async def listing(
        self, user_id: int, meeting_id: int, page: int, page_size: int
    ) -> tuple[list[StoredFile], int]:
        async with self.db.session() as s:
            await self._membership(s, user_id, meeting_id)
            total = await s.scalar(
                select(func.count())
                .select_from(StoredFile)
                .where(StoredFile.meeting_id == meeting_id)
            )
            rows = await s.scalars(
                select(StoredFile)
                .where(StoredFile.meeting_id == meeting_id)
                .order_by(StoredFile.created_at.desc(), StoredFile.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            return list(rows), int(total or 0)

    async def delete(self, user_id: int, file_id: str) -> None:
        """The uploader (even after leaving or being removed) or the host may delete."""
        async with self.db.session() as s:
            row = await self._row(s, file_id)
            if row.uploader_id != user_id:
                _, is_host = await self._membership(s, user_id, row.meeting_id)
                if not is_host:
                    raise Forbidden(
                        "Not allowed to delete this file",
                        details="Only the uploader or the meeting's host can delete a file",
                    )
            key = row.storage_key
            await s.delete(row)
        # The row is gone, so the file is gone for everyone; a blob we fail to remove is an
        # orphan to log, not an error to show.
        try:
            await self.storage.delete(key)
        except StorageError:
            log.exception("file %s deleted but its blob %s could not be removed", file_id, key)

    async def discard_blobs(self, keys: list[str]) -> None:
        """Remove the blobs of rows already deleted (a meeting's files when it is deleted)."""
        for key in keys:
            try:
                await self.storage.delete(key)
            except StorageError:
                log.exception("blob %s of a deleted meeting could not be removed", key)

    async def blob_size(self, row: StoredFile) -> int:
        try:
            return await self.storage.size(row.storage_key)
        except StorageError as exc:
            log.error("blob %s of file %s is unreadable: %s", row.storage_key, row.id, exc)
            raise AppError(
                "File content unavailable", status=500, details="The stored content is missing"
            ) from None

    def read(self, row: StoredFile, start: int, end: int) -> AsyncIterator[bytes]:
        return self.storage.read(row.storage_key, start, end)

    # -- upload ---------------------------------------------------------------------------

    @asynccontextmanager
    async def admitted(self, user_id: int) -> AsyncIterator[None]:
        """Per-user limits: uploads in flight at once, and uploads started per minute."""
        if self._active.get(user_id, 0) >= self.settings.upload_concurrency_per_user:
            raise RateLimited(
                "Too many uploads at once",
                details=f"At most {self.settings.upload_concurrency_per_user} uploads per user "
                "can be in progress",
                headers={"Retry-After": "1"},
            )
        decision = await self.limiter.hit(f"upload:{user_id}", self.rate)
        if not decision.allowed:
            raise RateLimited(
                "Too many uploads",
                details="Upload rate limit reached; retry later",
                headers={"Retry-After": decision.retry_after_header},
            )
        self._active[user_id] = self._active.get(user_id, 0) + 1
        try:
            yield
        finally:
            left = self._active[user_id] - 1
            if left:
                self._active[user_id] = left
            else:
                del self._active[user_id]

    async def upload(self, user_id: int, events: AsyncIterator[FormEvent]) -> StoredFile:
        """Store the form's file for its meeting; on any failure nothing stays behind.

        The form's `file_type` is checked but not trusted: the stored type is what the
        content turned out to be.
        """
        form, sniffer = _Form(), ContentSniffer()
        writer: BlobWriter | None = None
        try:
            async for event in events:
                if isinstance(event, FileStart):
                    if event.name != "file" or writer is not None:
                        raise ValidationFailed(
                            "Invalid request", details="Send exactly one file, in the field 'file'"
                        )
                    form.raw_name = event.filename
                    writer = await self._create()
                elif isinstance(event, FileData):
                    assert writer is not None  # the reader starts a file before its data
                    await self._receive(writer, sniffer, form, event.data)
                elif isinstance(event, TextField):
                    await self._field(form, event, user_id)
            if writer is None:
                raise ValidationFailed(
                    "Invalid request", details="The form field 'file' is required"
                )
            if form.meeting_id is None:
                raise ValidationFailed("Invalid request", details="meeting_id is required")
            if writer.size == 0:
                raise ValidationFailed("Invalid request", details="The file is empty")
            name = clean_file_name(form.raw_name)
            try:
                detected = sniffer.verdict(name)
            except UnsupportedContent as exc:
                raise unsupported_type(str(exc)) from None
            if not extension_of(name):
                name = f"{name}.{detected.extension}"
            info = await self._commit(writer)
        except BaseException:
            if writer is not None:
                await writer.abort()
            raise
        row = StoredFile(
            id=new_file_id(),
            meeting_id=form.meeting_id,
            uploader_id=user_id,
            file_name=name,
            file_type=detected.category,
            content_type=detected.content_type,
            file_size=info.size,
            sha256=info.sha256,
            storage_key=info.key,
        )
        return await self._record(row, info)

    async def _receive(
        self, writer: BlobWriter, sniffer: ContentSniffer, form: _Form, data: bytes
    ) -> None:
        limit = self.settings.max_upload_bytes
        if writer.size + len(data) > limit:
            raise too_large(limit)
        head_was_known = sniffer.head_complete
        sniffer.feed(data)
        if sniffer.head_complete and not head_was_known:
            try:  # refuse early what can never pass, rather than read it all first
                sniffer.precheck(clean_file_name(form.raw_name))
            except UnsupportedContent as exc:
                raise unsupported_type(str(exc)) from None
        try:
            await writer.write(data)
        except StorageError as exc:
            log.error("upload write failed: %s", exc)
            raise UploadFailed("File upload failed", details="Storage write failed") from None

    async def _field(self, form: _Form, field: TextField, user_id: int) -> None:
        if field.name == "meeting_id":
            value = field.value.strip()
            if form.meeting_id is not None:
                raise ValidationFailed("Invalid request", details="meeting_id is given twice")
            if not value.isdecimal() or not 1 <= int(value) <= MAX_MEETING_ID:
                raise ValidationFailed("Invalid request", details="meeting_id must be a meeting id")
            form.meeting_id = int(value)
            # Fail fast, before the file is read, when the fields come first.
            async with self.db.session() as s:
                await self._check_upload_allowed(s, user_id, form.meeting_id)
        elif field.name == "file_type":
            value = field.value.strip().lower()
            if value and value not in CATEGORIES:
                raise ValidationFailed(
                    "Invalid request", details=f"file_type must be one of {', '.join(CATEGORIES)}"
                )
            form.file_type = value or None
        # Other text fields are ignored, as a form may carry extras a client adds.

    async def _create(self) -> BlobWriter:
        try:
            return await self.storage.create()
        except StorageError as exc:
            log.error("cannot start an upload: %s", exc)
            raise UploadFailed("File upload failed", details="Storage is unavailable") from None

    async def _commit(self, writer: BlobWriter) -> BlobInfo:
        try:
            return await writer.commit()
        except StorageError as exc:
            log.error("upload commit failed: %s", exc)
            raise UploadFailed("File upload failed", details="Storage write failed") from None

    async def _record(self, row: StoredFile, info: BlobInfo) -> StoredFile:
        """Insert the row, re-checking membership in the same transaction; else drop the blob."""
        try:
            async with self.db.session() as s:
                await self._check_upload_allowed(s, row.uploader_id, row.meeting_id)
                s.add(row)
                await s.flush()
        except BaseException as exc:
            try:
                await self.storage.delete(info.key)
            except StorageError:
                log.exception("could not remove blob %s of a failed upload", info.key)
            if isinstance(exc, IntegrityError):  # the meeting was deleted meanwhile
                raise meeting_not_found() from None
            if isinstance(exc, AppError) or not isinstance(exc, Exception):
                raise
            log.exception("recording an upload failed")
            raise UploadFailed("File upload failed", details="Could not record the file") from None
        return row
