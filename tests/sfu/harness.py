"""A test-only server: static client pages and a WebSocket wired straight to `SfuPlane`.

It lets the SFU be driven by real browsers before (and besides) the signaling hub: the
WebSocket speaks the spec's message envelope for types 1/2/3/31, and small control routes
play the host (mute, kick) and read worker statistics. Run as
`python -m tests.sfu.harness PORT` with CONFER_SFU_* settings in the environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse

from confer.config import Settings
from confer.errors import AppError
from confer.sfu.config import SfuConfig
from confer.sfu.plane import SfuPlane
from confer.signaling.media import PeerRef

STATIC = Path(__file__).parent / "static"


class Sink:
    def __init__(self) -> None:
        self.sockets: dict[tuple[int, str], WebSocket] = {}

    async def send(self, peer: PeerRef, msg_type: int, payload: dict[str, Any]) -> None:
        ws = self.sockets.get((peer.meeting_id, peer.peer_id))
        if ws is not None:
            await ws.send_json({"type": msg_type, "from_user_id": 0, "payload": payload})

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        for (mid, _), ws in list(self.sockets.items()):
            if mid == meeting_id:
                await ws.send_json({"type": msg_type, "from_user_id": 0, "payload": payload})


def build() -> FastAPI:
    plane = SfuPlane(SfuConfig.from_settings(Settings()))
    sink = Sink()
    plane.attach(sink)
    refs: dict[str, PeerRef] = {}

    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        await plane.start()
        yield
        await plane.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        return FileResponse(STATIC / Path(name).name)

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        q = ws.query_params
        ref = PeerRef(int(q["meeting"]), int(q["user"]), q["peer"], q["peer"])
        can_publish = q.get("publish", "1") == "1"
        await ws.accept()
        sink.sockets[(ref.meeting_id, ref.peer_id)] = ws
        refs[ref.peer_id] = ref
        try:
            while True:
                msg = await ws.receive_json()
                try:
                    await plane.handle(
                        ref, msg["type"], msg.get("payload", {}), can_publish=can_publish
                    )
                except AppError as exc:
                    await ws.send_json(
                        {
                            "type": 13,
                            "from_user_id": 0,
                            "payload": {"code": exc.envelope_code, "message": exc.message},
                        }
                    )
        except WebSocketDisconnect:
            pass
        finally:
            sink.sockets.pop((ref.meeting_id, ref.peer_id), None)
            await plane.peer_left(ref)

    @app.post("/control/allow")
    async def allow(meeting: int, user: int, media_type: str, allowed: bool) -> JSONResponse:
        await plane.set_publish_allowed(meeting, user, media_type, allowed)
        return JSONResponse({"ok": True})

    @app.post("/control/kick")
    async def kick(peer: str) -> JSONResponse:
        ref = refs[peer]
        await plane.peer_left(ref)
        ws = sink.sockets.pop((ref.meeting_id, ref.peer_id), None)
        if ws is not None:
            await ws.close()
        return JSONResponse({"ok": True})

    @app.get("/control/stats")
    async def stats() -> JSONResponse:
        return JSONResponse(
            {"workers": await plane.stats(), "pids": [w.pid for w in plane.workers]}
        )

    @app.post("/control/crash")
    async def crash(meeting: int) -> JSONResponse:
        w = plane.worker_of(meeting)
        assert w is not None
        pid = w.pid
        w.proc.kill()
        await asyncio.sleep(0)
        return JSONResponse({"killed": pid})

    return app


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(build(), host="127.0.0.1", port=port, log_level=os.environ.get("LOG", "warning"))
