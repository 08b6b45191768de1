"""HTTP middleware, all pure ASGI: security headers, metrics, CORS, rate limits, gzip, caching."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from confer.api.middleware.caching import CachingMiddleware
from confer.api.middleware.compression import GzipMiddleware
from confer.api.middleware.metrics import MetricsMiddleware
from confer.api.middleware.ratelimit import RateLimitMiddleware
from confer.api.middleware.security import SecurityHeadersMiddleware
from confer.config import Settings
from confer.ratelimit import Rate, create_rate_limiter

# Uploaded documents and media are compressed already (or opaque): gzipping a 50 MiB download
# costs seconds of CPU and drops its Content-Length for nothing.
ALREADY_COMPRESSED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "image/*",
    "application/pdf",
    "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Install the stack; the last added runs first (outermost).

    From the outside in: security headers (on every answer, 429s included), metrics (counts
    429s and preflights too), CORS (so a browser can read a 429), rate limits, gzip, then
    caching next to the app, where it sees the uncompressed body it hashes for the ETag.
    """
    ctx = app.state.ctx
    limiter = create_rate_limiter(settings.redis_url, settings.rate_limit_max_keys)
    # The signaling edge takes its per-connection and per-user limits from the same limiter.
    ctx.extras["rate_limiter"] = limiter

    async def close_limiter(_: Any) -> None:
        await limiter.close()

    app.state.shutdown_hooks.append(close_limiter)

    app.add_middleware(CachingMiddleware)
    app.add_middleware(GzipMiddleware, exclude_content_types=ALREADY_COMPRESSED)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=limiter,
        codec=ctx.codec,
        general=Rate(settings.rate_limit_rps, settings.rate_limit_burst),
        auth=Rate(settings.auth_rate_limit_rps, settings.auth_rate_limit_burst),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "If-None-Match"],
            expose_headers=["ETag", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
