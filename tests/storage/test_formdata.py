"""The streaming multipart reader: events in order, however the body is cut, within bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from confer.storage.formdata import (
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    MAX_PART_HEADERS,
    MAX_PARTS,
    FileData,
    FileEnd,
    FileStart,
    FormError,
    FormEvent,
    FormReader,
    FormTooLarge,
    TextField,
    boundary_of,
)

B = b"----confer7MA4YWxkTrZu0gW"


def part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disp = f'form-data; name="{name}"'.encode()
    if filename is not None:
        disp += b'; filename="' + filename.encode() + b'"'
    head = b"Content-Disposition: " + disp + b"\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n".encode()
    return b"--" + B + b"\r\n" + head + b"\r\n" + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + B + b"--\r\n"


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def events(data: bytes, size: int = 65536, max_bytes: int = 1 << 30) -> list[FormEvent]:
    reader = FormReader(chunks(data, size), B, max_bytes)
    out = [e async for e in reader.events()]
    assert reader.complete
    return out


def merged(evs: list[FormEvent]) -> list[object]:
    """Coalesce consecutive FileData so results compare across chunkings."""
    out: list[object] = []
    for e in evs:
        if isinstance(e, FileData) and out and isinstance(out[-1], bytes):
            out[-1] += e.data
        else:
            out.append(e.data if isinstance(e, FileData) else e)
    return out


@pytest.mark.parametrize("size", [1, 2, 5, 64, 1000, 65536])
async def test_file_and_fields_come_out_in_body_order(size: int) -> None:
    payload = bytes(range(256)) * 10 + b"\r\n--not-the-boundary\r\n"
    data = body(
        part("file", payload, "doc.pdf", "application/pdf"),
        part("meeting_id", b"100"),
        part("file_type", b"document"),
    )
    assert merged(await events(data, size)) == [
        FileStart("file", "doc.pdf", "application/pdf"),
        payload,
        FileEnd(),
        TextField("meeting_id", "100"),
        TextField("file_type", "document"),
    ]


async def test_utf8_file_names_as_browsers_send_them_are_decoded() -> None:
    evs = await events(body(part("file", b"x", "会议纪要.txt")))
    assert evs[0] == FileStart("file", "会议纪要.txt", "application/octet-stream")


async def test_traversal_in_the_file_name_is_passed_on_verbatim_for_the_caller_to_clean() -> None:
    evs = await events(body(part("file", b"x", "../../etc/passwd")))
    assert isinstance(evs[0], FileStart) and evs[0].filename == "../../etc/passwd"


async def test_the_body_limit_stops_reading() -> None:
    data = body(part("file", b"a" * 10_000, "a.txt"))
    with pytest.raises(FormTooLarge):
        await events(data, size=1000, max_bytes=5000)


async def test_too_many_parts_are_refused() -> None:
    data = body(*[part(f"f{i}", b"v") for i in range(MAX_PARTS + 1)])
    with pytest.raises(FormError, match="parts"):
        await events(data)


async def test_an_oversized_text_field_is_refused() -> None:
    with pytest.raises(FormError, match="exceeds"):
        await events(body(part("meeting_id", b"1" * (MAX_FIELD_BYTES + 1))))


async def test_part_headers_are_bounded_in_size_and_number() -> None:
    long_name = "n" * MAX_HEADER_BYTES
    with pytest.raises(FormError, match="header exceeds"):
        await events(body(part(long_name, b"v")), size=512)
    many = "".join(f"X-Extra-{i}: {i}\r\n" for i in range(MAX_PART_HEADERS))
    data = (
        b"--"
        + B
        + b'\r\nContent-Disposition: form-data; name="a"\r\n'
        + many.encode()
        + b"\r\nv\r\n--"
        + B
        + b"--\r\n"
    )
    with pytest.raises(FormError, match=r"(?i)header"):
        await events(data)


async def test_a_truncated_body_is_an_error() -> None:
    data = body(part("file", b"x" * 100, "a.txt"))
    with pytest.raises(FormError, match="ended before"):
        await events(data[:-20])


async def test_a_part_without_a_name_is_an_error() -> None:
    data = b"--" + B + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + B + b"--\r\n"
    with pytest.raises(FormError):
        await events(data)


async def test_garbage_is_an_error() -> None:
    with pytest.raises(FormError):
        await events(b"this is not multipart at all" * 10)


def test_boundary_comes_from_the_content_type() -> None:
    assert boundary_of("multipart/form-data; boundary=abc") == b"abc"
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    for bad in ["application/json", "multipart/form-data", "multipart/mixed; boundary=x", ""]:
        with pytest.raises(FormError):
            boundary_of(bad)
