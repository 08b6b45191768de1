"""/metrics: Prometheus exposition for operators, not for users.

Who may scrape: with `CONFER_METRICS_TOKEN` set, anyone presenting `Authorization: Bearer
<token>`; without it, only loopback clients (a scraper on the same host, or a sidecar). Behind
the gateway the client address is the forwarded one, so remote scrapers need the token. The
metrics reveal traffic shapes, not user data, but nothing here needs to be public.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from fastapi import Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from confer.api.deps import Ctx
from confer.api.routes import api_router
from confer.errors import Forbidden, Unauthorized

router = api_router(tags=["operations"])


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorize_scrape(request: Request, token: str) -> None:
    if token:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthorized(
                "Metrics token required",
                details="Send Authorization: Bearer <CONFER_METRICS_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    if not _is_loopback(request.client.host if request.client else None):
        raise Forbidden(
            "Metrics are only served to loopback clients",
            details="Set CONFER_METRICS_TOKEN to let a remote scraper in",
        )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, ctx: Ctx) -> Response:
    authorize_scrape(request, ctx.settings.metrics_token)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
