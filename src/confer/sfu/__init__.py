"""The SFU: forwards participants' RTP without decoding it, in worker processes of its own.

`install(app)` puts the media plane in `ctx.extras["media"]`, where the signaling hub finds
it: this process's `SfuPlane` alone, or with Redis configured a `DistributedPlane` that places
each meeting on one node's SFU (this one's, when it runs the media service, or another's).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

log = logging.getLogger("confer.sfu")


def install(app: Any) -> None:
    state: dict[str, Any] = {}

    async def start(ctx: Any) -> None:
        if not ctx.settings.sfu_enabled:
            return
        local = _local_plane(ctx.settings)
        plane: Any = local
        if ctx.settings.redis_url:
            from confer.sfu.captions import room_wants_captions
            from confer.sfu.distributed import ANNOUNCE_TTL, DistributedPlane
            from confer.sfu.placement import Placement

            plane = DistributedPlane(
                ctx.bus,
                Placement(ctx.settings.redis_url, ANNOUNCE_TTL),
                local,
                capacity=ctx.settings.sfu_node_capacity,
                wants_captions=lambda m: bool(room_wants_captions(ctx, m)),
            )
            await plane.start()
            if "signaling" not in ctx.settings.services:
                from confer.signaling.cluster import BusSink

                plane.attach(BusSink(ctx.bus, ctx))  # no hub here to attach its own
        if plane is not None:
            from confer.sfu.messages import VIDEO_CONSTRAINTS

            with_hub_types(VIDEO_CONSTRAINTS)
            state["plane"] = ctx.extras["media"] = plane

    async def stop(ctx: Any) -> None:
        plane = state.pop("plane", None)
        if plane is not None:
            ctx.extras.pop("media", None)
            await plane.close()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


def _local_plane(settings: Any) -> Any | None:
    """This process's SFU, when it runs the media service and can."""
    if "media" not in settings.services:
        return None
    if importlib.util.find_spec("aiortc") is None:
        log.warning("SFU disabled: install confer[media] for aiortc")
        return None
    if importlib.util.find_spec("confer.sfu._fanout") is None:
        log.error("SFU disabled: its C extension is not built (run `pip install -e .`)")
        return None
    from confer.sfu.config import SfuConfig
    from confer.sfu.plane import SfuPlane

    # Workers start with the first media message: servers that never carry media
    # (and most test servers) do not pay for them.
    return SfuPlane(SfuConfig.from_settings(settings))


def with_hub_types(*types: int) -> None:
    """Tell the signaling hub which extension types clients send to the SFU."""
    try:
        from confer.signaling import protocol
    except ImportError:  # pragma: no cover - the hub is optional for the SFU
        return
    extra = getattr(protocol, "MEDIA_CLIENT_TYPES", None)
    if isinstance(extra, set):
        extra.update(types)
