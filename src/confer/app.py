"""The ASGI application factory: routers, envelope error handlers, middleware, lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from confer import __version__, sfu, signaling, web
from confer import ai as ai_service
from confer.api.envelope import ERROR_RESPONSES, JSONResponse, error_response
from confer.api.middleware import install_middleware
from confer.api.routes import API_PREFIX, ai, auth, health, media, meetings, participants, users
from confer.api.routes import docs as api_docs
from confer.api.routes import metrics as metrics_route
from confer.api.routes import transcripts as transcripts_route
from confer.config import Settings, load_settings
from confer.context import AppContext
from confer.errors import AppError

log = logging.getLogger("confer")

# Which of the contract's services (`Settings.services`) serves each group of routes; the
# rest (health, metrics) every process serves. deploy/nginx routes paths the same way.
ROUTE_SERVICE = {
    users: "user",
    auth: "user",
    meetings: "meeting",
    participants: "meeting",
    media: "media",
    ai: "ai",
    transcripts_route: "ai",
}

_HTTP_TYPES = {
    400: "BadRequest",
    401: "AuthenticationError",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "RateLimited",
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return out


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves on this path: Starlette's 405 names only the first's."""
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(
            exc.status, exc.message, exc.type, exc.details, exc.envelope_code, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error_response(
            400,
            f"Invalid request: {first['field']}: {first['message']}",
            "ValidationError",
            details,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return error_response(
            exc.status_code,
            message,
            _HTTP_TYPES.get(exc.status_code, "HTTPError"),
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500,
            "Internal server error",
            "InternalError",
            "An unexpected error occurred; it has been logged",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    ctx = AppContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        for hook in app.state.startup_hooks:
            await hook(ctx)
        # What startup built lives as long as the process: keep it out of the collector's
        # generations, so that full collections stay short (they were p99 outliers).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown_hooks):
                await hook(ctx)
            await ctx.close()

    app = FastAPI(
        title="confer",
        version=__version__,
        description="REST half of the confer meeting platform (see docs/protocol.md for the "
        "WebSocket signaling).",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served offline by api.routes.docs
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        responses=ERROR_RESPONSES,
        # confer exports its own Prometheus metrics (/metrics); FastAPI's OpenTelemetry
        # hooks would only re-check for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    services = set(settings.services)
    # The routes themselves, not included routers (see `api_router`); the hottest come first.
    hottest_first = (users, meetings, participants, auth, media, ai, transcripts_route)
    for module in (*hottest_first, health, metrics_route):
        service = ROUTE_SERVICE.get(module)
        if service is not None and service not in services:
            continue
        for route in module.router.routes:
            route.dependency_overrides_provider = app  # type: ignore[attr-defined]
            app.router.routes.append(route)
    api_docs.install(app, API_PREFIX)
    if "ai" in services:
        ai_service.install(app)  # before signaling: the hub looks the AI service up
    sfu.install(app)  # the media plane the hub finds in ctx.extras["media"]
    if "signaling" in services:
        signaling.install(app)
    if "meeting" in services:
        web.install(app)
    install_middleware(app, settings)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory` and worker processes."""
    return create_app(load_settings())
