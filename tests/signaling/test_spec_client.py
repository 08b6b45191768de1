"""The spec's own example web client (`MeetingClient`, its last section) against confer, in
headless Chromium: it logs in, joins over REST, receives room-info on the socket it opens,
and exchanges chat with a second client. Only its placeholders are filled (assets/)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from tests.signaling.support import meeting, register
from tests.support.api import PASSWORD, Api, User
from tests.support.chromium import MEDIA_FLAGS
from tests.support.servers import ConferServer

ASSET = Path(__file__).parent / "assets" / "meeting_client.js"
CHROMIUM_ARGS = [
    *MEDIA_FLAGS,
    # The page is injected by Playwright (no address space of its own), which Chromium's
    # local-network checks would treat as a public page reaching into loopback.
    "--disable-features=LocalNetworkAccessChecks",
]
# Test harness, not part of the class: the handlers the spec's class calls but leaves to the
# application, recording what arrives.
HARNESS = """
window.received = [];
for (const name of ['handleOffer', 'handleAnswer', 'handleIceCandidate', 'handleUserJoined',
                    'handleUserLeft', 'handleChat', 'handleRoomInfo']) {
  MeetingClient.prototype[name] = function (message) { window.received.push(message); };
}
MeetingClient.prototype.reconnect = function () {
  window.reconnects = (window.reconnects || 0) + 1;
};
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # Playwright gives every launch a fresh temporary profile (the user data dir).
        b = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield b
        await b.close()


async def open_client(browser: Browser, server: ConferServer, user: User, meeting_id: int) -> Page:
    page = await browser.new_page()
    page.on("console", lambda msg: print("console:", msg.text))
    page.on("pageerror", lambda exc: print("pageerror:", exc))
    config = {
        "apiUrl": server.url,
        "wsUrl": server.ws_url,
        "userId": user.user_id,
        "username": user.username,
        "password": PASSWORD,
        "meetingId": meeting_id,
        "meetingPassword": None,
    }
    html = (
        "<!doctype html><meta charset=utf-8><video id=local-video autoplay muted></video>"
        f"<script>window.CONFER = {json.dumps(config)};</script>"
        "<script src=/__spec__/meeting_client.js></script>"
        f"<script>{HARNESS}</script>"
    )

    async def serve(route: Route) -> None:
        if route.request.url.endswith(".js"):
            await route.fulfill(body=ASSET.read_text(), content_type="text/javascript")
        else:
            await route.fulfill(body=html, content_type="text/html")

    # Same origin as the API, so the example's fetch calls need no CORS.
    await page.route(f"{server.url}/__spec__/**", serve)
    await page.goto(f"{server.url}/__spec__/index.html")
    return page


async def received(page: Page, msg_type: int) -> list[dict]:
    await page.wait_for_function(
        f"window.received.some(m => m.type === {msg_type})", timeout=20_000
    )
    return await page.evaluate(f"window.received.filter(m => m.type === {msg_type})")


async def test_the_specs_meeting_client_joins_and_chats(
    browser: Browser, sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 0)
    alice, bob = (register(sapi, n) for n in ("Alice A", "Bob B"))
    a = await open_client(browser, sig, alice, m.id)
    info = (await received(a, 14))[0]
    assert info["payload"]["meeting_id"] == m.id
    assert any(
        p["is_self"] and p["user_id"] == alice.user_id for p in info["payload"]["participants"]
    )
    b = await open_client(browser, sig, bob, m.id)
    await received(b, 14)
    joined = await received(a, 6)
    assert joined[0]["payload"]["user_id"] == bob.user_id
    # The class's own sendSignalingMessage, which claims from_user_id 1.
    await a.evaluate("client.sendSignalingMessage({type: 8, payload: {content: '你好, Bob'}})")
    got = (await received(b, 8))[0]
    assert got["payload"]["content"] == "你好, Bob"
    assert got["from_user_id"] == alice.user_id and got["payload"]["username"] == "Alice A"
    await b.evaluate("client.sendSignalingMessage({type: 8, payload: {content: 'hi Alice'}})")
    replies = await a.wait_for_function(
        "window.received.filter(m => m.type === 8).length >= 2", timeout=20_000
    )
    assert replies
    chats = await a.evaluate(
        "window.received.filter(m => m.type === 8).map(m => m.payload.content)"
    )
    assert chats == ["你好, Bob", "hi Alice"]
    assert await a.evaluate("window.reconnects || 0") == 0
