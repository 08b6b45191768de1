"""The AI service: offline speech recognition, live captions and meeting transcripts.

Heavy parts (faster-whisper, PyAV, ONNX) are imported only inside the worker process, so the
API process starts fast and runs even when the `ai` extra is not installed (it then answers
40001).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

log = logging.getLogger("confer.ai")


def install(app: FastAPI) -> None:
    """Register the AI service as `ctx.extras["ai"]`, keep final captions as transcript, and
    stop the worker process at shutdown. Call before `signaling.install` so the hub finds it."""
    from confer.ai.service import AIService
    from confer.ai.transcripts import TranscriptStore
    from confer.context import AppContext

    ctx: AppContext = app.state.ctx
    service = AIService(ctx.settings)
    ctx.extras["ai"] = service
    service.subscribe(TranscriptStore(ctx.db).on_caption)
    service.subscribe(lambda event: _to_room(ctx, event))
    preload: list[asyncio.Task[object]] = []

    async def start(_: AppContext) -> None:
        if ctx.settings.ai_enabled and ctx.settings.ai_preload:
            preload.append(asyncio.create_task(_preload(service)))

    async def stop(_: AppContext) -> None:
        for task in preload:
            task.cancel()
        await service.close()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


async def _preload(service: object) -> None:
    from confer.errors import AppError

    with contextlib.suppress(AppError):
        await service.ensure_started()  # type: ignore[attr-defined]


async def _to_room(ctx: object, event: dict[str, object]) -> None:
    """Send a caption to every socket of its meeting as type 40 from the server; the hub
    carries it to sockets on other processes as it does its own broadcasts."""
    from confer.ai.messages import CAPTION, caption_payload
    from confer.signaling.cluster import BusSink

    hub = ctx.extras.get("signaling")  # type: ignore[attr-defined]
    # Without a hub (a media + AI process) the signaling processes hold the sockets.
    sink = hub.sink if hub is not None else BusSink(ctx.bus)  # type: ignore[attr-defined]
    await sink.broadcast(int(event["meeting_id"]), CAPTION, caption_payload(event))  # type: ignore[call-overload]
