"""The browser client: static ES modules served at `/` and `/join/{meeting_code}`.

The HTML is revalidated on every load (`no-cache`) and names the assets by a content-hashed
version, so assets are immutable and a deploy is picked up on the next page load.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from confer.errors import NotFound
from confer.web.assets import Bundle, load_bundle

# Paths the client routes itself; each serves the same page.
PAGE_PATHS = ("/", "/profile", "/join", "/join/{meeting_code}", "/meetings/{meeting_id}/transcript")

IMMUTABLE = "public, max-age=31536000, immutable"


def _not_modified(request: Request, etag: str, cache_control: str) -> Response | None:
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    return None


def build_router(bundle: Bundle) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page_etag = f'"{bundle.version}"'

    async def page(request: Request) -> Response:
        cached = _not_modified(request, page_etag, "no-cache")
        if cached is not None:
            return cached
        return Response(
            bundle.index_html,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache", "ETag": page_etag},
        )

    for path in PAGE_PATHS:
        router.add_api_route(path, page, methods=["GET", "HEAD"])

    @router.api_route("/assets/{version}/{path:path}", methods=["GET", "HEAD"])
    async def asset(version: str, path: str, request: Request) -> Response:
        found = bundle.get(version, path)
        if found is None:
            # An old page asking for an old version must not get today's file cached forever.
            raise NotFound("No such asset", details=f"/assets/{version}/{path}")
        cached = _not_modified(request, found.etag, IMMUTABLE)
        if cached is not None:
            return cached
        return Response(
            found.body,
            media_type=found.content_type,
            headers={"Cache-Control": IMMUTABLE, "ETag": found.etag},
        )

    @router.api_route("/assets/{rest:path}", methods=["GET", "HEAD"])
    async def no_asset(rest: str) -> Response:
        # Without this, a path with no version segment would be redirected to one with a slash.
        raise NotFound("No such asset", details=f"/assets/{rest}")

    return router


def install(app: FastAPI) -> None:
    """Mount the client's pages and versioned assets."""
    bundle = load_bundle()
    app.state.web_bundle = bundle
    app.include_router(build_router(bundle))
