"""Files in a meeting over real HTTP (the contract's 3.1 上传文件 and its companions):
upload, metadata, download, listing, deletion; who may do each; what is refused and how.

Every test runs against a SQLite and a PostgreSQL server. Limits (size, rate, storage
failures) are exercised on extra servers with tight settings (`tight`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.storage.samples import sample
from tests.support.api import Api, User, err, ok
from tests.support.servers import ConferServer, Postgres

TIGHT_LIMIT = 256 * 1024
TIGHT_BURST = 10
FILE_ID = re.compile(r"file_[a-z2-7]{26}")


# -- helpers ------------------------------------------------------------------------------


def form(parts: list[tuple[str, str | tuple[str, bytes, str]]]) -> tuple[bytes, dict[str, str]]:
    """A multipart body with parts in exactly the given order (the spec sends the file first)."""
    boundary = "confer" + secrets.token_hex(8)
    out = bytearray()
    for name, value in parts:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data, ctype = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            out += data
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(
    api: Api,
    user: User,
    meeting_id: int | str,
    name: str,
    data: bytes,
    file_type: str = "document",
    ctype: str = "application/octet-stream",
) -> httpx.Response:
    body, headers = form(
        [("file", (name, data, ctype)), ("meeting_id", str(meeting_id)), ("file_type", file_type)]
    )
    return api.post("/api/v1/media/upload", user, content=body, headers=headers)


def meeting(api: Api, host: User, **extra: object) -> int:
    r = api.post("/api/v1/meetings", host, json={"title": "Files test", **extra})
    return int(ok(r, 201)["meeting_id"])


def join(api: Api, user: User, meeting_id: int) -> int:
    return int(ok(api.post(f"/api/v1/meetings/{meeting_id}/join", user))["participant_id"])


def room(api: Api, guests: int = 1) -> tuple[int, User, list[User]]:
    host = api.register()
    mid = meeting(api, host)
    join(api, host, mid)
    people = [api.register() for _ in range(guests)]
    for p in people:
        join(api, p, mid)
    return mid, host, people


def listing(api: Api, user: User, meeting_id: int, **params: object) -> dict:
    return ok(api.get(f"/api/v1/meetings/{meeting_id}/files", user, params=params))


def blobs(server: ConferServer) -> list[Path]:
    root = server.data_dir / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- upload and read back -----------------------------------------------------------------


def test_upload_returns_the_contract_fields(api: Api, server: ConferServer) -> None:
    mid, host, _ = room(api, 0)
    pdf = sample("pdf")
    data = ok(upload(api, host, mid, "document.pdf", pdf))
    assert FILE_ID.fullmatch(data["file_id"])
    assert data["file_name"] == "document.pdf" and data["file_size"] == len(pdf)
    assert data["file_url"] == f"{server.url}/api/v1/media/files/{data['file_id']}/download"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["uploaded_at"])
    assert data["content_type"] == "application/pdf" and data["file_type"] == "document"
    assert data["meeting_id"] == mid and data["uploader_id"] == host.user_id
    assert data["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert ok(api.get(f"/api/v1/media/files/{data['file_id']}", host)) == data


@pytest.mark.parametrize("order", ["file_first", "fields_first"])
def test_a_participant_uploads_and_everyone_in_the_meeting_downloads(api: Api, order: str) -> None:
    mid, host, (alice, bob) = room(api, 2)
    png = sample("png")
    parts: list[tuple[str, str | tuple[str, bytes, str]]] = [
        ("file", ("shot.png", png, "image/png")),
        ("meeting_id", str(mid)),
        ("file_type", "image"),
    ]
    body, headers = form(parts if order == "file_first" else parts[::-1])
    data = ok(api.post("/api/v1/media/upload", alice, content=body, headers=headers))
    assert data["file_type"] == "image" and data["content_type"] == "image/png"
    for reader in (host, alice, bob):
        r = api.get(data["file_url"], reader)
        assert r.status_code == 200 and r.content == png
    assert [f["file_id"] for f in listing(api, bob, mid)["items"]] == [data["file_id"]]


def test_downloads_are_attachments_that_cannot_run_in_a_browser(api: Api) -> None:
    mid, host, _ = room(api, 0)
    text = sample("text")
    data = ok(upload(api, host, mid, "会议纪要 final.md", text))
    r = api.get(data["file_url"], host)
    assert r.status_code == 200 and r.content == text
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote(data['file_name'], safe='')}" in disposition
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("sandbox")
    assert r.headers["etag"] == f'"{data["sha256"]}"'
    assert r.headers["accept-ranges"] == "bytes"


def test_compressed_downloads_are_not_gzipped_again(api: Api) -> None:
    mid, host, _ = room(api, 0)
    pdf = sample("pdf") + b"\n%" + b"x" * 4096  # large enough for the gzip threshold
    url = ok(upload(api, host, mid, "slides.pdf", pdf))["file_url"]
    r = api.get(url, host, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.content == pdf
    assert "content-encoding" not in r.headers
    assert r.headers["content-length"] == str(len(pdf))


def test_ranges_and_revalidation(api: Api) -> None:
    mid, host, _ = room(api, 0)
    wav = sample("wav")
    url = ok(upload(api, host, mid, "voice.wav", wav))["file_url"]
    r = api.get(url, host, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == wav[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{len(wav)}"
    r = api.get(url, host, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == wav[-5:]
    r = api.get(url, host, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == wav[100:]
    r = api.get(url, host, headers={"Range": f"bytes={len(wav)}-"})
    err(r, 416)
    assert r.headers["content-range"] == f"bytes */{len(wav)}"
    etag = api.get(url, host).headers["etag"]
    r = api.get(url, host, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = api.get(url, host, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == wav  # the file changed: send it whole


def test_an_upload_streams_to_disk_without_being_held_in_memory(
    api: Api, server: ConferServer
) -> None:
    """Peak RSS of the server grows by a small fraction of a 48 MiB upload."""
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field))
        return int(line.split()[1])

    mid, host, _ = room(api, 0)
    data = b"%PDF-1.4\n" + os.urandom(48 * 1024 * 1024)
    Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
    before = kib("VmRSS:")
    assert ok(upload(api, host, mid, "big.pdf", data))["file_size"] == len(data)
    growth_mib = (kib("VmHWM:") - before) / 1024
    assert growth_mib < 16, f"peak RSS grew by {growth_mib:.1f} MiB during a 48 MiB upload"


# -- who may do what ----------------------------------------------------------------------


def test_outsiders_get_403_and_unknown_meetings_20001(api: Api) -> None:
    mid, host, _ = room(api, 0)
    file = ok(upload(api, host, mid, "a.pdf", sample("pdf")))
    outsider = api.register()
    err(upload(api, outsider, mid, "b.pdf", sample("pdf")), 403)
    err(api.get(f"/api/v1/media/files/{file['file_id']}", outsider), 403)
    err(api.get(file["file_url"], outsider), 403)
    err(api.get(f"/api/v1/meetings/{mid}/files", outsider), 403)
    err(api.delete(f"/api/v1/media/files/{file['file_id']}", outsider), 403)
    err(upload(api, host, 2_000_000_000, "a.pdf", sample("pdf")), 404, 20001)
    err(api.get("/api/v1/meetings/2000000000/files", host), 404, 20001)
    assert listing(api, host, mid)["total"] == 1


def test_every_route_needs_a_token(api: Api) -> None:
    body, headers = form([("file", ("a.txt", b"hi", "text/plain")), ("meeting_id", "1")])
    err(api.post("/api/v1/media/upload", content=body, headers=headers), 401, 10004)
    err(api.get(f"/api/v1/media/files/file_{'a' * 26}"), 401, 10004)
    err(api.get(f"/api/v1/media/files/file_{'a' * 26}/download"), 401, 10004)
    err(api.get("/api/v1/meetings/1/files"), 401, 10004)
    err(api.delete(f"/api/v1/media/files/file_{'a' * 26}"), 401, 10004)


def test_kicked_participants_lose_access_but_those_who_left_keep_it(api: Api) -> None:
    mid, host, (alice, bob) = room(api, 2)
    file = ok(upload(api, host, mid, "plan.docx", sample("docx")))
    ok(api.post(f"/api/v1/meetings/{mid}/leave", alice))
    assert api.get(file["file_url"], alice).content == sample("docx")
    pid = join(api, bob, mid)
    ok(api.post(f"/api/v1/meetings/{mid}/participants/{pid}/kick", host))
    err(api.get(file["file_url"], bob), 403)
    err(upload(api, bob, mid, "x.txt", b"still here?\n"), 403)


def test_uploads_into_an_ended_meeting_are_20002_but_files_stay_readable(api: Api) -> None:
    mid, host, (alice,) = room(api, 1)
    file = ok(upload(api, alice, mid, "a.csv", sample("csv")))
    ok(api.post(f"/api/v1/meetings/{mid}/end", host))
    err(upload(api, alice, mid, "b.csv", sample("csv")), 400, 20002)
    assert api.get(file["file_url"], alice).content == sample("csv")


def test_the_uploader_or_the_host_may_delete(api: Api, server: ConferServer) -> None:
    mid, host, (alice, bob) = room(api, 2)
    mine = ok(upload(api, alice, mid, "mine.txt", b"alice's\n"))
    other = ok(upload(api, alice, mid, "other.txt", b"alice's too\n"))
    before = len(blobs(server))
    err(api.delete(f"/api/v1/media/files/{mine['file_id']}", bob), 403)
    d = ok(api.delete(f"/api/v1/media/files/{mine['file_id']}", alice))
    assert d == {"file_id": mine["file_id"], "deleted": True}
    ok(api.delete(f"/api/v1/media/files/{other['file_id']}", host))
    for f in (mine, other):
        err(api.get(f"/api/v1/media/files/{f['file_id']}", alice), 404)
        err(api.get(f["file_url"], alice), 404)
        err(api.delete(f"/api/v1/media/files/{f['file_id']}", host), 404)
    assert len(blobs(server)) == before - 2
    assert listing(api, host, mid)["total"] == 0


def test_deleting_a_meeting_removes_its_stored_files(api: Api, server: ConferServer) -> None:
    mid, host, (alice,) = room(api, 1)
    keep_mid, keep_host, _ = room(api, 0)
    kept = ok(upload(api, keep_host, keep_mid, "kept.txt", b"stays\n"))
    before = len(blobs(server))
    files = [ok(upload(api, alice, mid, f"n{i}.txt", b"notes\n")) for i in range(2)]
    assert len(blobs(server)) == before + 2
    ok(api.delete(f"/api/v1/meetings/{mid}", host))
    assert len(blobs(server)) == before
    err(api.get(f"/api/v1/media/files/{files[0]['file_id']}", alice), 404)
    assert api.get(kept["file_url"], keep_host).content == b"stays\n"


def test_the_listing_is_paginated_newest_first(api: Api) -> None:
    mid, host, (alice, bob) = room(api, 2)
    ids = []
    for i, user in enumerate([alice, bob, alice, bob, host]):
        ids.append(ok(upload(api, user, mid, f"n{i}.txt", f"note {i}\n".encode()))["file_id"])
    seen = []
    for page in (1, 2, 3):
        data = listing(api, alice, mid, page=page, page_size=2)
        assert (data["total"], data["page"], data["page_size"], data["total_pages"]) == (
            5,
            page,
            2,
            3,
        )
        seen += [f["file_id"] for f in data["items"]]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    assert listing(api, alice, mid, page=4, page_size=2)["items"] == []
    first = listing(api, alice, mid, page=1, page_size=5)["items"]
    stamps = [f["uploaded_at"] for f in first]
    assert stamps == sorted(stamps, reverse=True)
    err(api.get(f"/api/v1/meetings/{mid}/files", alice, params={"page_size": 1000}), 400)
    err(api.get(f"/api/v1/meetings/{mid}/files", alice, params={"page": 0}), 400)


# -- what is refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tool.exe", "elf"),
        ("blob.bin", "binary"),
        ("page.html", "html"),
        ("drawing.svg", "svg"),
        ("notes.txt", "html"),  # HTML content under a harmless name
        ("report.pdf", "png"),  # a lying extension
        ("photo.png", "text"),
        ("plan.docx", "zip"),
        ("macro.docx", "docm"),
    ],
)
def test_types_not_accepted_are_30002_and_leave_nothing(
    api: Api, server: ConferServer, name: str, kind: str
) -> None:
    mid, host, _ = room(api, 0)
    before = blobs(server)
    body = err(upload(api, host, mid, name, sample(kind), ctype="application/pdf"), 415, 30002)
    assert body["error"]["type"] == "UnsupportedMediaType" and body["error"]["details"]
    assert blobs(server) == before
    assert listing(api, host, mid)["total"] == 0


def test_path_traversal_in_the_name_only_changes_the_display_name(
    api: Api, server: ConferServer
) -> None:
    mid, host, _ = room(api, 0)
    for raw, shown in [
        ("../../etc/passwd", "passwd.txt"),
        ("..\\..\\..\\notes.md", "notes.md"),
        ("/etc/cron.d/evil.txt", "evil.txt"),
        ("....//....//x.txt", "x.txt"),
    ]:
        data = ok(upload(api, host, mid, raw, b"root:x:0:0\n"))
        assert data["file_name"] == shown
    assert not (server.data_dir / "etc").exists()
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in blobs(server))
    for bad in ["..%2F..%2Fetc%2Fpasswd", "file_..", "file_" + "A" * 26]:
        err(api.get(f"/api/v1/media/files/{bad}/download", host), 404)


@pytest.mark.parametrize(
    ("parts", "status"),
    [
        ([("meeting_id", "{mid}")], 400),  # no file
        ([("file", ("a.txt", b"hi\n", "text/plain"))], 400),  # no meeting_id
        ([("file", ("a.txt", b"hi\n", "text/plain")), ("meeting_id", "abc")], 400),
        ([("file", ("a.txt", b"hi\n", "text/plain")), ("meeting_id", "-1")], 400),
        ([("file", ("a.txt", b"", "text/plain")), ("meeting_id", "{mid}")], 400),  # empty
        (
            [
                ("file", ("a.txt", b"hi\n", "text/plain")),
                ("meeting_id", "{mid}"),
                ("file_type", "executable"),
            ],
            400,
        ),
        (
            [
                ("file", ("a.txt", b"a\n", "text/plain")),
                ("file", ("b.txt", b"b\n", "text/plain")),
                ("meeting_id", "{mid}"),
            ],
            400,
        ),
    ],
)
def test_incomplete_or_invalid_forms_are_400(
    api: Api, server: ConferServer, parts: list, status: int
) -> None:
    mid, host, _ = room(api, 0)
    parts = [(n, v.format(mid=mid) if isinstance(v, str) else v) for n, v in parts]
    body, headers = form(parts)
    before = blobs(server)
    err(
        api.post("/api/v1/media/upload", host, content=body, headers=headers),
        status,
        err_type="ValidationError",
    )
    assert blobs(server) == before and listing(api, host, mid)["total"] == 0


def test_a_body_that_is_not_multipart_is_415(api: Api) -> None:
    mid, host, _ = room(api, 0)
    r = api.post("/api/v1/media/upload", host, json={"meeting_id": mid, "file": "aGVsbG8="})
    err(r, 415, 415)


# -- limits: size, rate, storage failures (servers with tight settings) -------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tight(
    request: pytest.FixtureRequest, server_factory: Callable[..., ConferServer]
) -> ConferServer:
    env = {
        "CONFER_MAX_UPLOAD_BYTES": str(TIGHT_LIMIT),
        "CONFER_UPLOAD_BURST": str(TIGHT_BURST),
        "CONFER_UPLOAD_RATE_PER_MINUTE": "0.01",
    }
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        env["CONFER_DATABASE_URL"] = pg.create_database("confer_media_tight")
    return server_factory(env)


@pytest.fixture
def tight_api(tight: ConferServer) -> Iterator[Api]:
    client = Api(tight.url)
    yield client
    client.close()


def test_a_file_at_the_limit_passes_and_one_byte_more_is_30003(
    tight_api: Api, tight: ConferServer
) -> None:
    api = tight_api
    mid, host, _ = room(api, 0)
    at_limit = b"a" * (TIGHT_LIMIT - 1) + b"\n"
    assert ok(upload(api, host, mid, "big.txt", at_limit))["file_size"] == TIGHT_LIMIT
    before = blobs(tight)
    r = upload(api, host, mid, "bigger.txt", at_limit + b"b")
    err(r, 413, 30003)
    assert blobs(tight) == before and listing(api, host, mid)["total"] == 1


def test_a_declared_length_over_the_limit_is_refused_before_reading(tight_api: Api) -> None:
    mid, host, _ = room(tight_api, 0)
    r = upload(tight_api, host, mid, "huge.txt", b"x" * (4 * TIGHT_LIMIT))
    err(r, 413, 30003)


def test_an_endless_upload_is_cut_off_at_the_limit(tight_api: Api, tight: ConferServer) -> None:
    """A chunked body with no end: the server answers 413 and stops reading, long before the
    client (which would go on for 64 MiB) is done."""
    mid, host, _ = room(tight_api, 0)
    before = blobs(tight)
    boundary = "endless"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="meeting_id"\r\n\r\n{mid}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    request = (
        "POST /api/v1/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {host.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"y" * 16384
    sent, cap, answer = 0, 64 * 1024 * 1024, b""
    with socket.create_connection(("127.0.0.1", tight.port), timeout=30) as sock:
        sock.sendall(request + b"%x\r\n%s\r\n" % (len(head), head))
        deadline = time.monotonic() + 60
        while sent < cap and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:  # the server closed its end
                    break
                sent += len(chunk)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":30003' in answer
    assert sent < cap
    assert blobs(tight) == before


def test_too_many_uploads_in_a_row_are_429(tight_api: Api) -> None:
    mid, host, _ = room(tight_api, 0)
    for i in range(TIGHT_BURST):
        ok(upload(tight_api, host, mid, f"{i}.txt", b"ok\n"))
    r = upload(tight_api, host, mid, "one-more.txt", b"no\n")
    err(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    other = tight_api.register()
    join(tight_api, other, mid)
    ok(upload(tight_api, other, mid, "mine.txt", b"a budget of my own\n"))


def held_upload(port: int, user: User, meeting_id: int) -> socket.socket:
    """An upload that has started and then waits: headers and part of the file sent."""
    boundary = "held"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="meeting_id"\r\n\r\n'
        f'{meeting_id}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="slow.txt"\r\nContent-Type: text/plain\r\n\r\nthe first few words'
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            "POST /api/v1/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {user.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Content-Length: 100000\r\n\r\n"
        ).encode()
        + head
    )
    return sock


def test_more_uploads_at_once_than_allowed_are_429(tight_api: Api, tight: ConferServer) -> None:
    mid, host, _ = room(tight_api, 0)
    partial = tight.data_dir / "uploads" / "partial"
    held = [held_upload(tight.port, host, mid) for _ in range(2)]
    try:
        deadline = time.monotonic() + 20
        while len(list(partial.glob("*.part"))) < 2:  # both held uploads are being written
            assert time.monotonic() < deadline, "the held uploads never started"
            time.sleep(0.05)
        body = err(upload(tight_api, host, mid, "third.txt", b"third\n"), 429)
        assert "at once" in body["message"]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 20
    while list(partial.glob("*.part")):  # the server notices the abandoned uploads
        assert time.monotonic() < deadline, "abandoned uploads were not cleaned up"
        time.sleep(0.05)
    ok(upload(tight_api, host, mid, "after.txt", b"after\n"))


@pytest.fixture
def broken_storage(tight: ConferServer) -> Iterator[Path]:
    """Put a plain file where the upload directory should be; restore it afterwards."""
    root = tight.data_dir / "uploads"
    aside = tight.data_dir / "uploads.aside"
    if root.exists():
        root.rename(aside)
    root.write_text("not a directory")
    try:
        yield root
    finally:
        root.unlink()
        if aside.exists():
            aside.rename(root)


def test_a_storage_failure_is_30001_and_records_nothing(
    tight_api: Api, broken_storage: Path
) -> None:
    mid, host, _ = room(tight_api, 0)
    body = err(upload(tight_api, host, mid, "a.pdf", sample("pdf")), 500, 30001)
    assert body["error"]["type"] == "UploadFailed"
    assert listing(tight_api, host, mid)["total"] == 0


@pytest.fixture
def full_disk(tight: ConferServer) -> Iterator[Path]:
    """Mount a 128 KiB tmpfs over the upload directory: a real full disk (needs root)."""
    root = tight.data_dir / "uploads"
    root.mkdir(exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(root)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_a_full_disk_mid_upload_is_30001_and_leaves_no_partial_file(
    tight_api: Api, full_disk: Path
) -> None:
    mid, host, _ = room(tight_api, 0)
    data = b"z" * (TIGHT_LIMIT - 1) + b"\n"  # within the size limit, beyond the disk
    err(upload(tight_api, host, mid, "big.txt", data), 500, 30001)
    assert [p for p in full_disk.rglob("*") if p.is_file()] == []
    assert listing(tight_api, host, mid)["total"] == 0
    ok(upload(tight_api, host, mid, "small.txt", b"fits\n"))
    shutil.disk_usage(full_disk)  # still mounted and usable
