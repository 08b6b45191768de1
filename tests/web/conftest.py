"""Browser fixtures: Debian's Chromium driven by Playwright, with fake camera and microphone,
against real `confer serve` processes (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright
from tests.support.chromium import CHROMIUM, MEDIA_FLAGS, SHARED_PAGE_FLAGS
from tests.support.servers import ConferServer
from tests.web.client import Client, Origin

FLAGS = [*MEDIA_FLAGS, *SHARED_PAGE_FLAGS]
# Test instrumentation only: keep every RTCPeerConnection the page makes, to read getStats().
TRACK_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();
"""
DESKTOP = {"width": 1280, "height": 800}
# Media takes a few seconds to flow on a loaded 2-core machine; assertions wait that long.
expect.set_options(timeout=15_000)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is not installed (make test installs Debian's chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives the browser a fresh temporary profile (it refuses --user-data-dir) and
    # each context below is an isolated profile of its own.
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield b
    b.close()


ClientFactory = Callable[..., Client]


@pytest.fixture
def clients(browser: Browser, sqlite_server: ConferServer) -> Iterator[ClientFactory]:
    """`clients(name, viewport=DESKTOP, server=None)`: a fresh browser profile per person.

    Every page must finish without an uncaught script error.
    """
    made: list[Client] = []

    def make(
        name: str = "user",
        viewport: dict[str, int] | None = None,
        server: Origin | None = None,
    ) -> Client:
        srv = server or sqlite_server
        size = viewport or DESKTOP
        phone = size["width"] <= 480  # a phone: touch, mobile viewport meta honoured
        context = browser.new_context(
            viewport=size,
            base_url=srv.url,
            permissions=["clipboard-read", "clipboard-write", "camera", "microphone"],
            is_mobile=phone,
            has_touch=phone,
            ignore_https_errors=True,  # self-signed test certificates (confer --tls, nginx)
        )
        context.set_default_timeout(20_000)
        context.add_init_script(TRACK_PEER_CONNECTIONS)
        client = Client(name, context, srv)
        made.append(client)
        return client

    yield make
    errors = [f"{c.name}: {e}" for c in made for e in c.page_errors]
    for c in made:
        c.close()
    assert not errors, "uncaught errors in the page:\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def media_server(server_factory: Callable[..., ConferServer]) -> ConferServer:
    """A server whose SFU gathers loopback candidates (no other interface here), with one
    worker, and a heartbeat short enough for tests to watch (the client adopts the server's)."""
    return server_factory(
        {
            "CONFER_SFU_ICE_ADDRESSES": "127.0.0.1",
            "CONFER_SFU_WORKERS": "1",
            "CONFER_WS_HEARTBEAT_INTERVAL": "2",
            "CONFER_WS_IDLE_TIMEOUT": "6",
        }
    )
