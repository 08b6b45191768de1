"""gzip for responses that are worth it, at no cost to those that are not.

Starlette's GZipMiddleware builds a responder object and re-normalizes its exclusion list on
every request, which showed up in profiles of the hottest API routes; this one decides from
the response headers alone and allocates a compressor only for a body it compresses.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confer.api.middleware.headers import add_vary, header

GZIP_WBITS = 16 + zlib.MAX_WBITS


class GzipMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 1000,
        level: int = 6,
        exclude_content_types: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level
        self.excluded = frozenset(t.lower() for t in exclude_content_types)

    def compressible(self, headers: list[tuple[bytes, bytes]], status: int) -> bool:
        if status in (204, 206, 304) or header(headers, b"content-encoding") is not None:
            return False
        media = (header(headers, b"content-type") or b"").split(b";")[0].strip().lower().decode()
        return bool(media) and not {media, media.partition("/")[0] + "/*"} & self.excluded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = header(scope["headers"], b"accept-encoding") or b""
        wants_gzip = b"gzip" in accept.lower()
        start: Message | None = None
        compressor: zlib._Compress | None = None
        passthrough = False

        async def send_wrapper(message: Message) -> None:
            nonlocal start, compressor, passthrough
            kind = message["type"]
            if kind == "http.response.start":
                headers = list(message.get("headers", []))
                if not self.compressible(headers, message["status"]):
                    passthrough = True
                    await send(message)
                    return
                add_vary(headers, b"Accept-Encoding")
                message["headers"] = headers
                if not wants_gzip:
                    passthrough = True
                    await send(message)
                    return
                start = message  # held until the first body chunk decides
                return
            if passthrough or kind != "http.response.body":
                if start is not None:  # e.g. pathsend: the file goes out as it is
                    held, start = start, None
                    await send(held)
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if start is not None:
                held, start = start, None
                if not more and len(body) < self.minimum_size:
                    passthrough = True
                    await send(held)
                    await send(message)
                    return
                compressor = zlib.compressobj(self.level, zlib.DEFLATED, GZIP_WBITS)
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-encoding", b"gzip"))
                if not more:
                    body = compressor.compress(body) + compressor.flush()
                    headers.append((b"content-length", str(len(body)).encode()))
                    held["headers"] = headers
                    await send(held)
                    await send({"type": kind, "body": body, "more_body": False})
                    return
                held["headers"] = headers
                await send(held)
            assert compressor is not None
            out = compressor.compress(body) + (b"" if more else compressor.flush())
            await send({"type": kind, "body": out, "more_body": more})

        await self.app(scope, receive, send_wrapper)
