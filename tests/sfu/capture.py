"""Record real Chromium media through the SFU, for the packet-layer tests' fixtures.

Run once by hand (`python -m tests.sfu.capture`): a simulcast publisher and a subscriber tab
talk to a Room hosted in this process; the first packets of each kind the SFU decrypted are
written, as hex, to tests/sfu/fixtures/chromium.json with the SDP offers of both tabs.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import async_playwright

from confer.sfu import adapter, rtp
from confer.sfu.background import spawn
from confer.sfu.config import SfuConfig
from confer.sfu.room import Room
from confer.sfu.routing import MediaRouting
from tests.sfu import harness
from tests.sfu.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import free_port

OUT = Path(__file__).parent / "fixtures" / "chromium.json"
captured: dict[str, list[str]] = {"rtp": [], "rtcp": [], "offers": []}


class InProcessPlane:
    """A Room in this process behind the MediaPlane interface (no worker, to tap packets)."""

    def __init__(self) -> None:
        self.room = Room(1, self._out, lambda *a: None, SfuConfig(ice_addresses=["127.0.0.1"]))
        self.sink: Any = None

    def attach(self, sink: Any) -> None:
        self.sink = sink

    def _out(self, ref: dict[str, Any], t: int, p: dict[str, Any]) -> None:
        from confer.signaling.media import PeerRef

        spawn(self.sink.send(PeerRef(**ref), t, p))

    async def handle(self, peer: Any, t: int, payload: dict[str, Any], *, can_publish: bool):
        if t == 1:
            captured["offers"].append(payload["sdp"])
        await self.room.handle(asdict(peer), t, payload, can_publish)

    async def peer_left(self, peer: Any) -> None:
        await self.room.peer_left(asdict(peer))

    async def start(self) -> None: ...

    async def close(self) -> None:
        await self.room.close()


def tap() -> None:
    on_rtp, on_rtcp = MediaRouting.on_rtp, MediaRouting.on_rtcp
    kinds: dict[tuple[int, bool], int] = {}

    def rtp_tap(self: MediaRouting, data: bytes) -> None:
        view = rtp.parse(data)
        key = (view.payload_type, view.marker)
        if kinds.get(key, 0) < 40:
            kinds[key] = kinds.get(key, 0) + 1
            captured["rtp"].append(data.hex())
        on_rtp(self, data)

    def rtcp_tap(self: MediaRouting, data: bytes) -> None:
        if len(captured["rtcp"]) < 60:
            captured["rtcp"].append(data.hex())
        on_rtcp(self, data)

    MediaRouting.on_rtp = rtp_tap  # type: ignore[method-assign]
    MediaRouting.on_rtcp = rtcp_tap  # type: ignore[method-assign]


async def main() -> None:
    adapter.use_host_addresses(["127.0.0.1"])
    tap()
    plane = InProcessPlane()
    harness.SfuPlane = lambda config: plane  # type: ignore[assignment,misc]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(harness.build(), port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    await asyncio.sleep(1.0)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for user, opts in ((1, {"simulcast": True, "width": 1280, "height": 720}), (2, {})):
            page = await (await browser.new_context()).new_page()
            await page.goto(f"http://127.0.0.1:{port}/static/page.html")
            url = f"ws://127.0.0.1:{port}/ws?meeting=1&user={user}&peer=p{user}"
            await page.evaluate("o => sfu.start(o)", {"url": url, **opts})
        await asyncio.sleep(8)
        await browser.close()
    server.should_exit = True
    await serving
    OUT.write_text(json.dumps(captured, indent=1) + "\n")
    print(f"wrote {len(captured['rtp'])} RTP and {len(captured['rtcp'])} RTCP packets to {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
