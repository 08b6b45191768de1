"""Two people in a meeting through the browser client: media through the real SFU, chat,
screen share, host controls, reloads, dropped connections, a phone-sized screen."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect
from tests.support.servers import ConferServer
from tests.web.client import Client
from tests.web.conftest import DESKTOP, PHONE
from tests.web.png import lit_fraction
from tests.web.proxy import CuttableProxy

pytestmark = pytest.mark.timeout(180)
Clients = Callable[..., Client]
PASSWORD = "open-sesame"


@dataclass
class Pair:
    host: Client
    guest: Client
    link: str
    host_id: int
    guest_id: int


def user_id(c: Client) -> int:
    return int(c.stored_session()["user_id"])


def meet(
    clients: Clients,
    server: ConferServer,
    *,
    guest_name: str = "Gus Guest",
    guest_viewport: dict[str, int] | None = None,
    guest_via: CuttableProxy | None = None,
    register_ui: bool = False,
    **options: bool,
) -> Pair:
    """The host creates a password-protected meeting and joins; the guest follows the link."""
    host = clients("host", server=server)
    # A guest "via" a proxy reaches the same server through it (its page origin is the proxy).
    guest = clients("guest", viewport=guest_viewport or DESKTOP, server=guest_via or server)
    if register_ui:
        host.register_ui("Hanna Host")
        guest.register_ui(guest_name)
    else:
        host.sign_up("Hanna Host")
        guest.sign_up(guest_name)
    link = host.create_meeting("Design review", password=PASSWORD, **options)
    host.page.click("#created-meeting button.primary")
    host.join_from_prejoin()
    if guest_via:
        link = link.replace(server.url, guest_via.url)
    guest.page.goto(link)
    guest.join_from_prejoin(PASSWORD)
    pair = Pair(host, guest, link, user_id(host), user_id(guest))
    host.wait_for_people(2)
    guest.wait_for_people(2)
    return pair


def send_chat(c: Client, text: str) -> None:
    if c.page.locator("#chat-panel").count() == 0:
        c.page.click("#ctl-chat")
    c.page.fill("#chat-input", text)
    c.page.press("#chat-input", "Enter")


def act_on(c: Client, target_id: int, action: str) -> None:
    if c.page.locator("#people-panel").count() == 0:
        c.page.click("#ctl-people")
    c.page.select_option(f'.person-actions[data-user-id="{target_id}"]', action)


def test_two_people_see_and_hear_each_other_and_chat_both_ways(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server, register_ui=True)
    host, guest = pair.host, pair.guest
    host.wait_for_remote_video(pair.guest_id)
    guest.wait_for_remote_video(pair.host_id)

    for c in (host, guest):
        c.page.wait_for_function(
            """async () => {
              const pc = window.__pcs.filter((p) => p.connectionState === 'connected').pop();
              if (!pc) return false;
              let video = 0, audio = 0;
              (await pc.getStats()).forEach((s) => {
                if (s.type === 'inbound-rtp' && s.kind === 'video') video += s.framesDecoded || 0;
                if (s.type === 'inbound-rtp' && s.kind === 'audio') audio += s.packetsReceived || 0;
              });
              return video > 10 && audio > 10;
            }""",
            polling=500,
            timeout=30_000,
        )
    # What a person sees: the other's tile is a picture, not a black rectangle.
    assert lit_fraction(host.tile_screenshot(pair.guest_id)) > 0.5
    assert lit_fraction(guest.tile_screenshot(pair.host_id)) > 0.5

    send_chat(guest, "Hello from the guest")
    expect(host.page.locator("#chat-unread")).to_have_text("1")
    host.page.click("#ctl-chat")
    expect(host.page.locator("#chat-list .chat-text").last).to_have_text("Hello from the guest")
    expect(host.page.locator("#chat-unread")).to_be_hidden()
    send_chat(host, "Welcome, guest")
    expect(guest.page.locator("#chat-list .chat-text").last).to_have_text("Welcome, guest")
    expect(guest.page.locator("#chat-list .chat-msg.mine .chat-text")).to_have_text(
        ["Hello from the guest"]
    )
    # The network-quality indicator reads getStats(): a measured level and round-trip time.
    quality = host.page.locator("#quality")
    expect(quality).to_have_attribute("data-level", re.compile(r"^(good|fair|poor)$"))
    expect(quality).to_have_attribute("title", re.compile(r"connection · \d+ ms · [\d.]+% loss"))


def test_html_in_a_chat_message_or_a_name_is_shown_as_text(
    clients: Clients, media_server: ConferServer
) -> None:
    evil_name = '<img src=x onerror="window.__owned=1">Mallory'
    evil_chat = "<script>window.__owned=2</script><b>bold?</b>"
    pair = meet(clients, media_server, guest_name=evil_name)
    host = pair.host
    send_chat(pair.guest, evil_chat)
    host.page.click("#ctl-chat")
    message = host.page.locator("#chat-list .chat-msg").last
    expect(message.locator(".chat-text")).to_have_text(evil_chat)
    expect(message.locator(".chat-author")).to_have_text(evil_name)
    assert message.locator("script, b, img").count() == 0
    tile = host.page.locator(f'.tile[data-user-id="{pair.guest_id}"] .tile-name')
    expect(tile).to_have_text(evil_name)
    host.page.click("#ctl-people")
    expect(host.page.locator(f'.person[data-user-id="{pair.guest_id}"] .person-name')).to_have_text(
        evil_name
    )
    assert host.page.locator("#room img").count() == 0
    assert host.page.evaluate("window.__owned") is None
    assert pair.guest.page.evaluate("window.__owned") is None


def test_a_screen_share_appears_for_the_other(clients: Clients, media_server: ConferServer) -> None:
    pair = meet(clients, media_server)
    host, guest = pair.host, pair.guest
    host.page.click("#ctl-screen")
    expect(host.page.locator("#ctl-screen")).to_have_attribute("aria-pressed", "true")
    expect(
        guest.page.locator(".toast-text").filter(has_text="Hanna Host is sharing their screen.")
    ).to_have_count(1)
    guest.wait_for_remote_video(pair.host_id, "screen")
    expect(guest.page.locator(".stage")).to_have_class("stage has-stage")
    assert lit_fraction(guest.tile_screenshot(pair.host_id, "screen")) > 0.05

    host.page.click("#ctl-screen")
    expect(
        guest.page.locator(f'.tile[data-user-id="{pair.host_id}"][data-source="screen"]')
    ).to_have_count(0)


def test_a_participant_needs_the_hosts_permission_to_share(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server)
    host, guest = pair.host, pair.guest
    guest.page.click("#ctl-screen")
    expect(
        guest.page.locator(".toast-text").filter(has_text="needs the host's permission")
    ).to_have_count(1)
    expect(guest.page.locator("#ctl-screen")).to_have_attribute("aria-pressed", "false")

    act_on(host, pair.guest_id, "grant-share")
    expect(guest.page.locator(".toast-text").filter(has_text="allowed you to share")).to_have_count(
        1
    )
    guest.page.click("#ctl-screen")
    host.wait_for_remote_video(pair.guest_id, "screen")


def test_the_host_mutes_then_removes_the_guest_who_is_told_why(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server)
    host, guest = pair.host, pair.guest
    expect(guest.page.locator("#ctl-mic")).to_have_attribute("aria-label", "Mute")

    act_on(host, pair.guest_id, "mute")
    expect(
        guest.page.locator(".toast-text").filter(has_text="Hanna Host muted you.")
    ).to_have_count(1)
    expect(guest.page.locator("#ctl-mic")).to_have_attribute("aria-pressed", "true")
    assert (
        guest.page.evaluate(
            "window.__pcs.at(-1).getSenders().find((s) => s.track?.kind === 'audio').track.enabled"
        )
        is False
    )
    expect(host.page.locator(f'.tile[data-user-id="{pair.guest_id}"]')).to_have_class(
        re.compile(r"\baudio-muted\b")
    )

    act_on(host, pair.guest_id, "kick")
    host.page.fill("#dialog-input", "Testing the remove button")
    host.page.click("#dialog-ok")
    expect(guest.page.locator("#room-over-title")).to_have_text(
        "You were removed from the meeting by the host."
    )
    expect(guest.page.locator("#room-over-detail")).to_have_text(
        "Reason: Testing the remove button"
    )
    expect(host.page.locator(f'.tile[data-user-id="{pair.guest_id}"]')).to_have_count(0)
    # They cannot come back.
    guest.page.goto(pair.link)
    guest.page.fill("#join-password", PASSWORD)
    guest.page.click("#join-button")
    expect(guest.page.locator("#prejoin-form .form-error")).to_contain_text("removed")


def test_a_reload_rejoins_the_meeting(clients: Clients, media_server: ConferServer) -> None:
    pair = meet(clients, media_server)
    host, guest = pair.host, pair.guest
    guest.wait_for_remote_video(pair.host_id)
    guest.page.reload()
    guest.page.wait_for_selector("#room")
    assert guest.page.locator("#prejoin-form").count() == 0
    guest.wait_for_remote_video(pair.host_id)
    host.wait_for_remote_video(pair.guest_id)
    guest.wait_for_people(2)
    # The session was resumed: the host never saw the guest leave.
    assert not [t for t in host.toast_texts() if "left" in t]


def test_a_dropped_connection_is_announced_and_resumed(
    clients: Clients, media_server: ConferServer
) -> None:
    proxy = CuttableProxy(media_server.port)
    try:
        pair = meet(clients, media_server, guest_via=proxy)
        host, guest = pair.host, pair.guest
        guest.wait_for_remote_video(pair.host_id)
        proxy.cut(stay_down=True)
        expect(guest.page.locator("#connection-banner")).to_have_text(
            "Connection lost. Reconnecting…"
        )
        proxy.restore()
        expect(guest.page.locator(".toast-text").filter(has_text="Reconnected.")).to_have_count(1)
        expect(guest.page.locator("#connection-banner")).to_be_hidden()
        send_chat(guest, "still here")
        host.page.click("#ctl-chat")
        expect(host.page.locator("#chat-list .chat-text").last).to_have_text("still here")
        assert not [t for t in host.toast_texts() if "left" in t]
    finally:
        proxy.close()


def test_the_heartbeat_keeps_a_quiet_connection_open(
    clients: Clients, media_server: ConferServer
) -> None:
    """The server closes sockets silent for 6 s here; the client pings as the server asks."""
    host = clients("host", server=media_server)
    pings: list[str] = []
    host.page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda f: pings.append(f) if '"type":11' in f else None),
    )
    host.sign_up("Quiet Host")
    host.create_meeting("Quiet room")
    host.page.click("#created-meeting button.primary")
    host.join_from_prejoin()
    host.page.wait_for_timeout(9_000)
    assert len(pings) >= 3
    assert host.page.locator("#connection-banner").is_hidden()


def test_joining_and_the_controls_work_on_a_phone(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server, guest_viewport=PHONE)
    guest = pair.guest
    guest.wait_for_remote_video(pair.host_id)
    for control in (
        "#ctl-mic",
        "#ctl-cam",
        "#ctl-screen",
        "#ctl-chat",
        "#ctl-people",
        "#ctl-leave",
    ):
        box = guest.page.locator(control).bounding_box()
        assert box is not None, control
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], control
        assert box["width"] >= 40 and box["height"] >= 40, control
    assert guest.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    guest.page.tap("#ctl-chat")
    panel = guest.page.locator("#side-panel").bounding_box()
    assert panel["width"] == PHONE["width"]
    guest.page.fill("#chat-input", "typed on a phone")
    guest.page.tap("#chat-send")
    pair.host.page.click("#ctl-chat")
    expect(pair.host.page.locator("#chat-list .chat-text").last).to_have_text("typed on a phone")
    guest.page.tap(".panel-close")
    guest.page.tap("#ctl-cam")
    expect(guest.page.locator("#ctl-cam")).to_have_attribute("aria-label", "Turn camera on")
    guest.page.tap("#ctl-leave")
    guest.page.wait_for_selector("#create-form")
    expect(pair.host.page.locator(".toast-text").filter(has_text="Gus Guest left")).to_have_count(1)


def test_an_audience_member_watches_without_publish_controls(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server, meeting_webinar=True)
    guest, host = pair.guest, pair.host
    expect(guest.page.locator("#ctl-mic")).to_be_hidden()
    expect(guest.page.locator("#ctl-cam")).to_be_hidden()
    expect(guest.page.locator("#ctl-screen")).to_be_hidden()
    guest.wait_for_remote_video(pair.host_id)
    stats = guest.media_stats()
    assert all(o["packets"] == 0 for o in stats["outbound"]), stats
    expect(host.page.locator(f'.tile[data-user-id="{pair.guest_id}"]')).to_have_count(0)

    act_on(host, pair.guest_id, "participant")
    expect(guest.page.locator("#ctl-mic")).to_be_visible()
    host.wait_for_remote_video(pair.guest_id)


def test_the_host_mutes_everyone_and_ends_the_meeting(
    clients: Clients, media_server: ConferServer
) -> None:
    pair = meet(clients, media_server)
    host, guest = pair.host, pair.guest
    host.page.click("#ctl-people")
    host.page.click("#mute-all")
    expect(guest.page.locator(".toast-text").filter(has_text="muted everyone")).to_have_count(1)
    expect(guest.page.locator("#ctl-mic")).to_have_attribute("aria-pressed", "true")
    expect(host.page.locator("#ctl-mic")).to_have_attribute("aria-pressed", "false")

    host.page.click("#ctl-end")
    host.page.click("#dialog-ok")
    expect(guest.page.locator("#room-over-title")).to_have_text("The meeting has ended.")
    expect(host.page.locator("#room-over-title")).to_have_text("The meeting has ended.")
