"""The SFU: forwards participants' RTP without decoding it, in worker processes of its own.

`install(app)` starts the workers with the app and puts the `SfuPlane` in
`ctx.extras["media"]`, where the signaling hub finds it.
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
        if importlib.util.find_spec("aiortc") is None:
            log.warning("SFU disabled: install confer[media] for aiortc")
            return
        if importlib.util.find_spec("confer.sfu._fanout") is None:
            log.error("SFU disabled: its C extension is not built (run `pip install -e .`)")
            return
        from confer.sfu.config import SfuConfig
        from confer.sfu.messages import VIDEO_CONSTRAINTS
        from confer.sfu.plane import SfuPlane

        with_hub_types(VIDEO_CONSTRAINTS)
        # Workers start with the first media message: servers that never carry media
        # (and most test servers) do not pay for them.
        plane = SfuPlane(SfuConfig.from_settings(ctx.settings))
        state["plane"] = ctx.extras["media"] = plane

    async def stop(ctx: Any) -> None:
        plane = state.pop("plane", None)
        if plane is not None:
            ctx.extras.pop("media", None)
            await plane.close()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


def with_hub_types(*types: int) -> None:
    """Tell the signaling hub which extension types clients send to the SFU."""
    try:
        from confer.signaling import protocol
    except ImportError:  # pragma: no cover - the hub is optional for the SFU
        return
    extra = getattr(protocol, "MEDIA_CLIENT_TYPES", None)
    if isinstance(extra, set):
        extra.update(types)
