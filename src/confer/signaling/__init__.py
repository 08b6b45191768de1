"""The signaling service: `/ws/signaling`, rooms, presence, relay and heartbeats."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from confer.context import AppContext

PATH = "/ws/signaling"
_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Browsers can only put the JWT in the query string: keep it out of the server's logs
    (uvicorn logs every WebSocket request line with its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "token=" in a for a in record.args
        ):
            record.args = tuple(
                _TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN.sub(r"\1[redacted]", record.msg)
        return True


def install(app: FastAPI) -> None:
    """Mount `/ws/signaling`; the hub is built at startup, also as `extras["signaling"]`."""
    from confer.signaling.endpoint import SignalingEndpoint
    from confer.signaling.handlers import Handlers
    from confer.signaling.hub import Hub

    async def start(ctx: AppContext) -> None:
        for name in ("uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in logger.filters):
                logger.addFilter(RedactTokens())
        hub = Hub(ctx)
        app.state.signaling = hub
        app.state.signaling_handlers = Handlers(hub)
        ctx.extras["signaling"] = hub
        await hub.start()

    async def stop(ctx: AppContext) -> None:
        hub = getattr(app.state, "signaling", None)
        if hub is not None:
            await hub.stop()

    app.router.routes.append(WebSocketRoute(PATH, SignalingEndpoint(), name="signaling"))
    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
