"""Interactive API docs at `/api/v1/docs` that work without internet access.

FastAPI's default page loads Swagger UI from a CDN, which a self-hosted or air-gapped install
cannot reach (and the CSP would block). The Swagger UI 5 files shipped in the
`fastapi-offline` package are served from `/api/v1/docs/static/` instead. Swagger UI draws
some icons from `data:` URLs, so this page alone widens `img-src` to allow them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from confer.api.middleware.security import CSP

STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
DOCS_CSP = CSP + "; img-src 'self' data:"


def declare_bearer_auth(app: FastAPI) -> None:
    """Declare the bearer token in the document, so the page offers "Authorize" and clients
    and fuzzers know how to authenticate. It is declared optional for every operation: the
    public ones (login, register) ignore it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
            }
            doc.setdefault("security", [{"bearerAuth": []}, {}])
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI, prefix: str) -> None:
    docs_url, static_url = f"{prefix}/docs", f"{prefix}/docs/static"
    openapi_url = app.openapi_url or f"{prefix}/openapi.json"
    declare_bearer_auth(app)
    app.mount(static_url, StaticFiles(directory=STATIC_DIR), name="docs-static")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{static_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{static_url}/swagger-ui.css",
            swagger_favicon_url=f"{static_url}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
