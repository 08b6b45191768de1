"""Per-client rate limits on `/api/`, answered with the envelope's 429 before any handler runs.

Which bucket a request takes from:

- the credential endpoints (login, register, refresh) take from a strict bucket per client IP
  (`auth_rate_limit_*`), so password guessing and account farming stay slow;
- a request with a valid bearer token takes from its user's bucket (`rate_limit_*`), so many
  people behind one NAT address do not starve each other;
- anything else takes from its client IP's bucket (`rate_limit_*`).

The middleware verifies the bearer token itself (the handler has not run yet; the codec keeps
verified tokens, so the handler's own check is free). A forged token fails verification and
lands in the IP bucket. The client IP is uvicorn's, which honours `X-Forwarded-For` only from
`CONFER_FORWARDED_ALLOW_IPS` (the gateway).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from confer.api.envelope import error_response
from confer.api.middleware.headers import header
from confer.auth.tokens import TokenCodec
from confer.errors import AppError
from confer.ratelimit import Rate, RateLimiter

AUTH_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/auth/refresh",
        "/api/v1/users/login",
    }
)


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        codec: TokenCodec,
        general: Rate,
        auth: Rate,
        prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.codec = codec
        self.general = general
        self.auth = auth
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if scope["path"] in AUTH_PATHS:
            key, rate, kind = "auth:" + ip, self.auth, "auth"
        else:
            user_id = self._user_of(scope)
            rate = self.general
            key, kind = (f"user:{user_id}", "user") if user_id else ("ip:" + ip, "ip")
        decision = await self.limiter.hit(key, rate)
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        retry = decision.retry_after_header
        response = error_response(
            429,
            "Too many requests, retry later",
            "RateLimited",
            {"retry_after": int(retry), "limit": kind},
            headers={"Retry-After": retry, "Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    def _user_of(self, scope: Scope) -> int | None:
        """The user id of a valid bearer token, or None."""
        authorization = header(scope["headers"], b"authorization")
        if not authorization:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        try:
            return self.codec.decode_access(token.strip().decode("latin-1")).user_id
        except AppError:
            return None
