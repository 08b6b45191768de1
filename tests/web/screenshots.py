"""Regenerate docs/screenshots/ from a real server and two fake-camera browsers.

    .venv/bin/python -m tests.web.screenshots [out_dir]

Not a test: it asserts nothing beyond each screen appearing. The media server settings are the
tests' (loopback ICE candidates, one SFU worker).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright
from tests.support.servers import ConferServer
from tests.web.client import Client
from tests.web.conftest import CHROMIUM, DESKTOP, FLAGS, PHONE, TRACK_PEER_CONNECTIONS
from tests.web.test_room import PASSWORD, act_on, meet, send_chat

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    server = ConferServer({"CONFER_SFU_ICE_ADDRESSES": "127.0.0.1", "CONFER_SFU_WORKERS": "1"})
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:

                def clients(
                    name: str = "user", viewport: dict[str, int] | None = None, **_: object
                ) -> Client:
                    return new_client(browser, name, viewport or DESKTOP, server)

                shoot(clients, server, out)
            finally:
                browser.close()
    finally:
        server.stop()


def new_client(
    browser: Browser, name: str, viewport: dict[str, int], server: ConferServer
) -> Client:
    phone = viewport["width"] <= 480
    context = browser.new_context(
        viewport=viewport,
        base_url=server.url,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
    )
    context.set_default_timeout(30_000)
    context.add_init_script(TRACK_PEER_CONNECTIONS)
    return Client(name, context, server)


def shoot(clients, server: ConferServer, out: Path) -> None:  # type: ignore[no-untyped-def]
    visitor = clients("visitor")
    visitor.page.goto("/")
    visitor.page.wait_for_selector("#login-form")
    visitor.page.screenshot(path=out / "login.png")

    pair = meet(clients, server, guest_name="Gus Guest")
    host, guest = pair.host, pair.guest
    host.wait_for_remote_video(pair.guest_id)
    guest.wait_for_remote_video(pair.host_id)

    phone = clients("phone", PHONE)
    phone.sign_up("Pia Phone")
    phone.page.screenshot(path=out / "phone-home.png")
    phone.page.goto(pair.link)
    phone.page.wait_for_selector("#prejoin-form")
    phone.page.wait_for_timeout(1500)
    phone.page.screenshot(path=out / "phone-prejoin.png")
    phone.join_from_prejoin(PASSWORD)
    phone.wait_for_remote_video(pair.host_id)
    phone.wait_for_remote_video(pair.guest_id)
    phone.page.wait_for_timeout(2000)
    phone.page.screenshot(path=out / "phone-room.png")

    send_chat(guest, "Morning! Can everyone see my camera?")
    send_chat(host, "Loud and clear. Let's start with the roadmap.")
    guest.page.wait_for_timeout(1500)
    guest.page.screenshot(path=out / "room-chat.png")
    host.page.click("#ctl-people")
    host.page.wait_for_timeout(500)
    host.page.screenshot(path=out / "room-people-host.png")
    host.page.click(".panel-close")
    host.page.click("#ctl-screen")
    guest.wait_for_remote_video(pair.host_id, "screen")
    guest.page.click(".panel-close")
    guest.page.wait_for_timeout(1500)
    guest.page.screenshot(path=out / "room-screen-share.png")
    host.page.click("#ctl-screen")

    home = clients("planner")
    home.sign_up("Paula Planner")
    for title in ("Weekly sync", "Design review", "Hiring panel"):
        home.create_meeting(title)
    home.create_meeting("Quarterly planning", password="open-sesame")
    home.page.evaluate("window.scrollTo(0, 0)")
    home.page.wait_for_timeout(800)
    home.page.screenshot(path=out / "home.png")
    home.page.click("#created-meeting button.primary")
    home.page.wait_for_selector("#prejoin-form")
    home.page.wait_for_timeout(1500)
    home.page.screenshot(path=out / "prejoin.png")

    act_on(host, pair.guest_id, "kick")
    host.page.fill("#dialog-input", "Wrong meeting, sorry!")
    host.page.click("#dialog-ok")
    guest.page.wait_for_selector("#room-over-title")
    guest.page.screenshot(path=out / "removed.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
