"""The signaling service: `/ws/signaling`, rooms, presence, relay and heartbeats."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from confer.context import AppContext

PATH = "/ws/signaling"


def install(app: FastAPI) -> None:
    """Mount `/ws/signaling`; the hub is built at startup, also as `extras["signaling"]`."""
    from confer.signaling.endpoint import SignalingEndpoint
    from confer.signaling.handlers import Handlers
    from confer.signaling.hub import Hub

    async def start(ctx: AppContext) -> None:
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
