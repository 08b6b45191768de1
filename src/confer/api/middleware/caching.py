"""HTTP caching for `/api/`: ETags with `304 Not Modified`, `Cache-Control` and `Vary`.

Policy (a route may set its own `Cache-Control` or `ETag`; they are left alone):

- A successful GET gets a weak ETag over its body and `Cache-Control: private, no-cache`
  (`no-cache` without a token): the client may keep the response but revalidates each time.
  The contract shows `private, max-age=60`, but a meeting list or participant count that is a
  minute stale is wrong in a live UI; revalidation costs a round trip and, when nothing
  changed, a body-less 304 instead of the payload.
- Every other API response (writes, errors, tokens) gets `Cache-Control: no-store`.
- API responses vary by `Authorization` (GZip adds `Accept-Encoding`).

The envelope's `timestamp` changes every second, so the ETag is computed over the body
without it; a 304 means "the data is the same", which is what a client cares about.
"""

from __future__ import annotations

import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confer.api.middleware.headers import add_vary

_TRAILING_TIMESTAMP = re.compile(rb',"timestamp":"[0-9T:.+\-Z]{1,40}"}$')
_DROP_ON_304 = {b"content-length", b"content-type", b"content-encoding"}


def etag_of(body: bytes) -> bytes:
    m = _TRAILING_TIMESTAMP.search(body, max(0, len(body) - 64))
    payload = body[: m.start()] if m else body
    return b'W/"' + hashlib.blake2b(payload, digest_size=12).hexdigest().encode() + b'"'


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 13.1.2): `W/` prefixes are ignored, `*` matches anything."""
    if if_none_match.strip() == b"*":
        return True
    tag = etag.removeprefix(b"W/")
    return any(c.strip().removeprefix(b"W/") == tag for c in if_none_match.split(b","))


class CachingMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if_none_match = authorization = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"authorization":
                authorization = value
        cacheable = method == "GET"
        policy = b"private, no-cache" if authorization else b"no-cache"
        start: Message | None = None
        passthrough = False

        async def send_wrapper(message: Message) -> None:
            nonlocal start, passthrough
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                add_vary(headers, b"Authorization")
                ok = cacheable and message["status"] == 200
                if b"cache-control" not in names:
                    headers.append((b"cache-control", policy if ok else b"no-store"))
                message["headers"] = headers
                if not ok or b"etag" in names:
                    passthrough = True
                    await send(message)
                else:
                    start = message  # held until the body shows whether it fits in one chunk
                return
            if passthrough or message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            held, start = start, None
            if message.get("more_body", False):  # a stream: no ETag, pass it through
                passthrough = True
                await send(held)
                await send(message)
                return
            etag = etag_of(message.get("body", b""))
            if if_none_match is not None and etag_matches(if_none_match, etag):
                headers = [(k, v) for k, v in held["headers"] if k.lower() not in _DROP_ON_304]
                headers.append((b"etag", etag))
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
            held["headers"].append((b"etag", etag))
            await send(held)
            await send(message)

        await self.app(scope, receive, send_wrapper)
