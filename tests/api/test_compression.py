"""The gzip middleware, driven as plain ASGI: what it compresses, and what it leaves alone."""

from __future__ import annotations

import gzip

from starlette.types import Message, Receive, Scope, Send

from confer.api.middleware.compression import GzipMiddleware

TEXT = ("confer " * 400).encode()


def app_sending(chunks: list[bytes], content_type: bytes, status: int = 200):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type), (b"vary", b"Authorization")]
        if len(chunks) == 1:
            headers.append((b"content-length", str(len(chunks[0])).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


async def run(app, accept: bytes = b"gzip, br") -> tuple[dict[bytes, bytes], bytes]:  # type: ignore[no-untyped-def]
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", accept)],
    }
    await GzipMiddleware(app, exclude_content_types=("image/*", "application/pdf"))(
        scope, receive, send
    )
    assert sent[0]["type"] == "http.response.start"
    headers = dict(sent[0]["headers"])
    return headers, b"".join(m.get("body", b"") for m in sent[1:])


async def test_a_large_json_body_is_gzipped_with_its_new_length() -> None:
    headers, body = await run(app_sending([TEXT], b"application/json"))
    assert headers[b"content-encoding"] == b"gzip"
    assert int(headers[b"content-length"]) == len(body) < len(TEXT)
    assert gzip.decompress(body) == TEXT
    assert headers[b"vary"] == b"Authorization, Accept-Encoding"


async def test_a_streamed_body_is_gzipped_as_one_stream_without_a_length() -> None:
    headers, body = await run(app_sending([TEXT[:1500], TEXT[1500:], b""], b"text/csv"))
    assert headers[b"content-encoding"] == b"gzip"
    assert b"content-length" not in headers
    assert gzip.decompress(body) == TEXT


async def test_small_bodies_and_clients_without_gzip_get_the_body_as_it_is() -> None:
    headers, body = await run(app_sending([b'{"ok":true}'], b"application/json"))
    assert body == b'{"ok":true}' and b"content-encoding" not in headers
    headers, body = await run(app_sending([TEXT], b"application/json"), accept=b"identity")
    assert body == TEXT and b"content-encoding" not in headers
    assert headers[b"vary"] == b"Authorization, Accept-Encoding"  # a cache must still tell


async def test_compressed_formats_and_partial_content_are_never_recompressed() -> None:
    for content_type in (b"image/png", b"application/pdf; x=1"):
        headers, body = await run(app_sending([TEXT], content_type))
        assert body == TEXT and b"content-encoding" not in headers
    headers, body = await run(app_sending([TEXT], b"text/plain", status=206))
    assert body == TEXT and b"content-encoding" not in headers
