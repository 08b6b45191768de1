"""A streaming reader for multipart/form-data upload bodies.

Starlette's form parser spools every file to a temporary file of unbounded size before the
route sees it. This reader instead turns the body into events as bytes arrive, so the caller
can count, sniff and store the file as it streams, and stop reading the moment a limit is
crossed. Text fields, part headers and the number of parts are bounded here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 16
MAX_FIELD_BYTES = 1024
MAX_PART_HEADERS = 8
MAX_HEADER_BYTES = 2048


class FormError(Exception):
    """The body is not well-formed multipart/form-data, or exceeds the reader's bounds."""


class FormTooLarge(FormError):
    """The body as a whole is longer than the reader was allowed to read."""


@dataclass(frozen=True, slots=True)
class TextField:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FileStart:
    name: str
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class FileData:
    data: bytes


@dataclass(frozen=True, slots=True)
class FileEnd:
    pass


FormEvent = TextField | FileStart | FileData | FileEnd


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type; FormError for anything else."""
    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise FormError("Content-Type must be multipart/form-data")
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:
        raise FormError("multipart/form-data needs a boundary of 1 to 70 characters")
    return boundary


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class FormReader:
    """Iterate `events()`; `complete` tells whether the closing boundary was read.

    At most `max_bytes` of body are read, whatever the parts: this bounds what a client can
    make the server read (a preamble, many small parts) besides the file the caller limits.
    """

    def __init__(self, chunks: AsyncIterator[bytes], boundary: bytes, max_bytes: int) -> None:
        self._chunks = chunks
        self._max_bytes = max_bytes
        self.bytes_read = 0
        self._pending: list[FormEvent] = []
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parts = 0
        self.complete = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    async def events(self) -> AsyncIterator[FormEvent]:
        async for chunk in self._chunks:
            self.bytes_read += len(chunk)
            if self.bytes_read > self._max_bytes:
                raise FormTooLarge(f"The request body exceeds {self._max_bytes} bytes")
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise FormError(f"Malformed multipart body: {exc}") from None
            for event in self._pending:
                yield event
            self._pending.clear()
            if self.complete:
                break
        if not self.complete:
            raise FormError("The multipart body ended before its closing boundary")

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise FormError(f"At most {MAX_PARTS} form parts are accepted")
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._check_header_size()

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._header_field) + len(self._header_value) > MAX_HEADER_BYTES:
            raise FormError(f"A part header exceeds {MAX_HEADER_BYTES} bytes")

    def _on_header_end(self) -> None:
        if len(self._part.headers) >= MAX_PART_HEADERS:
            raise FormError(f"At most {MAX_PART_HEADERS} headers per part are accepted")
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = self._header_value.decode("latin-1").strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        disposition, options = parse_options_header(part.headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in options:
            raise FormError("Every part needs Content-Disposition: form-data with a name")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            # Browsers send the name's UTF-8 bytes as they are; the header arrives as latin-1.
            part.filename = options[b"filename"].decode("utf-8", "replace")
            content_type = part.headers.get("content-type", "application/octet-stream")
            self._pending.append(FileStart(part.name, part.filename, content_type))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.filename is not None:
            self._pending.append(FileData(data[start:end]))
            return
        part.value += data[start:end]
        if len(part.value) > MAX_FIELD_BYTES:
            raise FormError(f"Form field {part.name!r} exceeds {MAX_FIELD_BYTES} bytes")

    def _on_part_end(self) -> None:
        part = self._part
        if part.filename is not None:
            self._pending.append(FileEnd())
        else:
            try:
                value = part.value.decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(f"Form field {part.name!r} is not UTF-8") from None
            self._pending.append(TextField(part.name, value))

    def _on_end(self) -> None:
        self.complete = True
