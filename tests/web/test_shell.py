"""The client outside a meeting: accounts, session, profile, meetings, invitations, pre-join."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect
from tests.support.api import PASSWORD, Api, ok, unique
from tests.support.servers import ConferServer
from tests.web.client import Client

pytestmark = pytest.mark.timeout(120)
Clients = Callable[..., Client]


def test_registering_explains_the_password_policy_and_keeps_what_was_typed(
    clients: Clients,
) -> None:
    c = clients("ada")
    p = c.page
    p.goto("/")
    p.click("#tab-register")
    name = unique("ada")
    p.fill("#reg-username", name)
    p.fill("#reg-full-name", "Ada Lovelace")
    p.fill("#reg-email", f"{name}@example.com")
    p.fill("#reg-password", "short")
    p.click("#register-form button[type=submit]")
    expect(p.locator("#register-form .form-error")).to_contain_text("at least 8 characters")
    assert p.input_value("#reg-username") == name
    assert p.input_value("#reg-email") == f"{name}@example.com"

    p.fill("#reg-password", PASSWORD)
    p.click("#register-form button[type=submit]")
    p.wait_for_selector("#create-form")
    assert p.text_content("#profile-link") == name


def test_a_taken_username_is_refused_in_plain_words(clients: Clients) -> None:
    first = clients("first")
    taken = first.register_ui("First Person")
    c = clients("second")
    p = c.page
    p.goto("/")
    p.click("#tab-register")
    p.fill("#reg-username", taken)
    p.fill("#reg-email", f"other-{taken}@example.com")
    p.fill("#reg-password", PASSWORD)
    p.click("#register-form button[type=submit]")
    expect(p.locator("#register-form .form-error")).to_have_text(
        "That username or e-mail address is already registered."
    )


def test_a_wrong_password_says_so_and_keeps_the_username(clients: Clients) -> None:
    owner = clients("owner")
    name = owner.register_ui("Owner")
    c = clients("visitor")
    c.login_ui(name, "not-the-password")
    expect(c.page.locator("#login-form .form-error")).to_have_text(
        "The username or password is wrong."
    )
    assert c.page.input_value("#f-username") == name


def test_the_session_survives_a_reload_and_logging_out_ends_it(clients: Clients) -> None:
    c = clients("stay")
    name = c.register_ui("Stay Logged")
    c.page.reload()
    c.page.wait_for_selector("#create-form")
    assert c.page.text_content("#profile-link") == name
    refresh = c.stored_session()["refresh_token"]

    c.page.click("#logout")
    c.page.wait_for_selector("#login-form")
    assert c.stored_session() is None
    c.page.reload()
    c.page.wait_for_selector("#login-form")
    # The server revoked the refresh token too: it cannot be used again.
    api = Api(c.server.url)
    try:
        r = api.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert r.status_code == 401
    finally:
        api.close()


def test_the_access_token_is_refreshed_before_it_expires(
    clients: Clients, server_factory: Callable[..., ConferServer]
) -> None:
    server = server_factory({"CONFER_ACCESS_TOKEN_TTL": "8"})
    c = clients("refresher", server=server)
    c.register_ui("Short Tokens")
    first = c.stored_session()
    c.page.wait_for_function(
        "old => JSON.parse(localStorage.getItem('confer.session')).token !== old",
        arg=first["token"],
        timeout=15_000,
    )
    # The new token arrived while the old one was still valid: no request ever saw a 401.
    refreshed_at = c.page.evaluate("Date.now()")
    assert refreshed_at < first["expires_at"]
    c.page.click("#profile-link")
    c.page.wait_for_selector("#profile-form")
    assert [s for _, s in c.api_statuses if s == 401] == []


def test_the_profile_can_be_edited_and_errors_keep_the_input(clients: Clients) -> None:
    other = clients("other")
    taken = other.register_ui("Other")
    c = clients("editor")
    c.register_ui("Before Name")
    p = c.page
    p.click("#profile-link")
    p.fill("#profile-full-name", "After Name")
    p.click("#profile-form button[type=submit]")
    expect(p.locator("#profile-name")).to_have_text("After Name")

    p.fill("#profile-email", f"{taken}@example.com")
    p.click("#profile-form button[type=submit]")
    expect(p.locator("#profile-form .form-error")).to_have_text(
        "That username or e-mail address is already registered."
    )
    assert p.input_value("#profile-email") == f"{taken}@example.com"
    p.reload()
    p.wait_for_selector("#profile-form")
    assert p.input_value("#profile-full-name") == "After Name"


def test_a_meeting_is_created_with_every_option_and_the_invite_copied(clients: Clients) -> None:
    c = clients("host")
    user = c.sign_up("Hanna Host")
    link = c.create_meeting(
        "Quarterly planning",
        password="open-sesame",
        meeting_mute_on_join=True,
        meeting_self_unmute=False,
        meeting_chat=False,
        meeting_webinar=True,
        meeting_public=True,
        meeting_recording=True,
        meeting_ai=True,
    )
    code = c.page.text_content("#created-meeting .meeting-code")
    assert re.fullmatch(r"[A-Z]{3}-[A-Z]{3}-[A-Z]{3}", code)
    assert link == f"{c.server.url}/join/{code}"

    c.page.click("#created-meeting .copy-invite")
    c.page.wait_for_selector("#created-meeting .copy-status:has-text('Link copied.')")
    assert c.page.evaluate("navigator.clipboard.readText()") == link

    api = Api(c.server.url)
    try:
        m = ok(api.get(f"/api/v1/meetings/code/{code}", user))
    finally:
        api.close()
    assert m["title"] == "Quarterly planning" and m["is_public"] is True
    assert m["settings"] == {
        **m["settings"],
        "require_password": True,
        "mute_on_join": True,
        "allow_self_unmute": False,
        "enable_chat": False,
        "default_role": "audience",
        "enable_recording": True,
        "enable_ai_analysis": True,
    }


def test_the_meetings_list_has_status_tabs_and_pages(clients: Clients) -> None:
    c = clients("busy")
    user = c.sign_up("Busy Host")
    api = Api(c.server.url)
    try:
        for i in range(12):
            ok(api.post("/api/v1/meetings", user, json={"title": f"Meeting {i:02d}"}), 201)
        # Public meetings of other tests are listed too: the server says how many to expect.
        total = ok(api.get("/api/v1/meetings?status=scheduled&page_size=10", user))["total"]
    finally:
        api.close()
    pages = -(-total // 10)
    p = c.page
    p.reload()
    rows = p.locator("#meeting-list .meeting-row")
    expect(rows).to_have_count(10)
    expect(p.locator(".pager")).to_contain_text(f"Page 1 of {pages} · {total} in all")
    titles = rows.all_text_contents()
    for page in range(2, pages + 1):
        p.click(".pager button:has-text('Older')")
        expect(p.locator(".pager")).to_contain_text(f"Page {page} of {pages}")
        titles += rows.all_text_contents()
    assert sum(f"Meeting {i:02d}" in " ".join(titles) for i in range(12)) == 12
    p.click(".tabs [data-status='ended']")
    expect(p.locator("#meeting-list .empty")).to_have_text("No ended meetings yet.")


def test_joining_by_code_asks_for_the_meeting_password(clients: Clients) -> None:
    host = clients("host")
    owner = host.sign_up("Host")
    api = Api(host.server.url)
    try:
        m = ok(
            api.post(
                "/api/v1/meetings",
                owner,
                json={
                    "title": "Locked",
                    "settings": {"require_password": True, "password": "pa55word"},
                },
            ),
            201,
        )
    finally:
        api.close()
    guest = clients("guest")
    guest.sign_up("Guest")
    p = guest.page
    p.fill("#join-code", m["meeting_code"].replace("-", "").lower())
    p.click("#join-code-form button[type=submit]")
    p.wait_for_url(f"**/join/{m['meeting_code']}")
    p.wait_for_selector("#prejoin-form")
    assert p.text_content("#prejoin-title") == "Locked"

    p.click("#join-button")
    error = p.locator("#prejoin-form .form-error")
    expect(error).to_have_text("Enter the meeting password.")
    p.fill("#join-password", "wrong-one")
    p.click("#join-button")
    expect(error).to_have_text("The meeting password is wrong.")
    assert p.input_value("#join-password") == "wrong-one"
    guest.join_from_prejoin("pa55word")
    expect(p.locator("#room-title")).to_have_text("Locked")


def test_an_invite_link_survives_logging_in_first(clients: Clients) -> None:
    host = clients("host")
    host.sign_up("Host")
    link = host.create_meeting("After login")
    c = clients("late")
    name = clients("signup").register_ui("Late Comer")
    c.page.goto(link)
    c.page.wait_for_selector("#login-form")
    assert "join the meeting" in c.page.text_content(".tagline")
    c.page.fill("#f-username", name)
    c.page.fill("#f-password", PASSWORD)
    c.page.click("#login-form button[type=submit]")
    c.page.wait_for_selector("#prejoin-form")
    assert c.page.text_content("#prejoin-title") == "After login"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/join/not-a-code!", "This invite link is not valid"),
        ("/join/ZZZ-ZZZ-ZZZ", "There is no meeting with that code"),
    ],
)
def test_a_bad_invite_is_explained(clients: Clients, path: str, words: str) -> None:
    c = clients("lost")
    c.sign_up("Lost")
    c.page.goto(path)
    expect(c.page.locator(".form-error")).to_contain_text(words)


def test_the_pre_join_screen_previews_the_camera_and_lists_devices(clients: Clients) -> None:
    c = clients("preview")
    c.sign_up("Preview")
    c.create_meeting("Preview check")
    p = c.page
    p.click("#created-meeting button.primary")
    p.wait_for_selector("#prejoin-form")
    p.wait_for_function(
        "() => { const v = document.querySelector('.preview-video');"
        " return v && v.srcObject && v.videoWidth > 0 }"
    )
    cams = p.locator("#camera-select option").all_text_contents()
    mics = p.locator("#mic-select option").all_text_contents()
    assert cams and mics, (cams, mics)
    p.select_option("#mic-select", index=len(mics) - 1)
    p.wait_for_function(
        "label => document.querySelector('.preview-video').srcObject.getAudioTracks()[0].label"
        " === label",
        arg=mics[-1],
    )
    p.click("#prejoin-cam")
    expect(p.locator("#prejoin-cam")).to_have_attribute("aria-label", "Turn camera on")
    assert (
        p.evaluate("document.querySelector('.preview-video').srcObject.getVideoTracks()[0].enabled")
        is False
    )


def test_an_expired_session_asks_to_log_in_again_and_keeps_the_form(
    clients: Clients, server_factory: Callable[..., ConferServer]
) -> None:
    server = server_factory({"CONFER_ACCESS_TOKEN_TTL": "8"})
    c = clients("expiring", server=server)
    user = c.sign_up("Soon Expired")
    p = c.page
    p.fill("#meeting-title", "Typed before expiry")
    # Another device logs this session out: its refresh token is revoked on the server.
    api = Api(server.url)
    try:
        stored = c.stored_session()
        ok(api.post("/api/v1/auth/logout", user, json={"refresh_token": stored["refresh_token"]}))
    finally:
        api.close()
    dialog = p.locator("#relogin-dialog")
    expect(dialog).to_be_visible(timeout=20_000)
    expect(p.locator("#meeting-title")).to_have_value("Typed before expiry")
    p.fill("#relogin-password", PASSWORD)
    p.click("#relogin-dialog button[type=submit]")
    expect(dialog).to_have_count(0)
    p.click("#create-form button[type=submit]")
    expect(p.locator("#created-meeting")).to_contain_text("Typed before expiry")


def test_an_unreachable_server_is_explained_and_the_form_kept(
    clients: Clients, server_factory: Callable[..., ConferServer]
) -> None:
    server = server_factory()
    c = clients("offline", server=server)
    c.sign_up("Cut Off")
    p = c.page
    p.fill("#meeting-title", "Planned while offline")
    server.stop()
    p.click("#create-form button[type=submit]")
    expect(p.locator("#create-form .form-error")).to_have_text(
        "Cannot reach the server. Check your connection and try again."
    )
    expect(p.locator("#meeting-title")).to_have_value("Planned while offline")
