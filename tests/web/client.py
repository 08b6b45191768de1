"""One person using the web client: a browser context and page, and the steps people take."""

from __future__ import annotations

import time
from typing import Any, Protocol

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request
from tests.support.api import PASSWORD, Api, User, unique


class Origin(Protocol):
    """Where the page is loaded from: a confer server, or a proxy in front of one."""

    @property
    def url(self) -> str: ...


class Client:
    def __init__(self, name: str, context: BrowserContext, server: Origin) -> None:
        self.name = name
        self.context = context
        self.server = server
        self.page: Page = context.new_page()
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.api_statuses: list[tuple[str, int]] = []
        self.user: User | None = None
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("console", self._console)
        self.page.on("requestfinished", self._finished)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    def _finished(self, request: Request) -> None:
        if "/api/v1/" in request.url:
            response = request.response()
            if response is not None:
                self.api_statuses.append((request.url, response.status))

    # --- accounts -------------------------------------------------------------------------------

    def register_ui(self, full_name: str, username: str | None = None) -> str:
        username = username or unique(self.name[:8])
        p = self.page
        p.goto("/")
        p.click("#tab-register")
        p.fill("#reg-username", username)
        p.fill("#reg-full-name", full_name)
        p.fill("#reg-email", f"{username}@example.com")
        p.fill("#reg-password", PASSWORD)
        p.click("#register-form button[type=submit]")
        p.wait_for_selector("#create-form")
        return username

    def login_ui(self, username: str, password: str = PASSWORD, path: str = "/") -> None:
        p = self.page
        p.goto(path)
        p.fill("#f-username", username)
        p.fill("#f-password", password)
        p.click("#login-form button[type=submit]")

    def sign_up(self, full_name: str) -> User:
        """A new account made through the API, then logged in through the page."""
        api = Api(self.server.url)
        try:
            self.user = api.register(full_name=full_name)
            deadline = time.monotonic() + 10
            while api.get("/api/v1/users/profile", self.user).status_code != 200:
                assert time.monotonic() < deadline, "the new account never became visible"
                time.sleep(0.05)
        finally:
            api.close()
        self.login_ui(self.user.username)
        self.page.wait_for_selector("#create-form")
        return self.user

    def stored_session(self) -> dict[str, Any] | None:
        return self.page.evaluate("JSON.parse(localStorage.getItem('confer.session') || 'null')")  # type: ignore[no-any-return]

    # --- meetings -------------------------------------------------------------------------------

    def create_meeting(self, title: str, password: str | None = None, **checks: bool) -> str:
        """Create from the home screen; returns the invite link shown."""
        p = self.page
        p.fill("#meeting-title", title)
        if password:
            p.check("#meeting-require-password")
            p.fill("#meeting-password", password)
        if checks:
            p.click("details.more-options summary")
            for element_id, on in checks.items():
                p.set_checked(f"#{element_id.replace('_', '-')}", on)
        before = p.locator("#created-meeting .meeting-code").all_text_contents()
        p.click("#create-form button[type=submit]")
        p.wait_for_function(
            """before => {
              const code = document.querySelector('#created-meeting .meeting-code');
              return code && code.textContent && !before.includes(code.textContent);
            }""",
            arg=before,
        )
        return p.input_value("#created-meeting .invite-link")

    def join_from_prejoin(self, password: str | None = None) -> None:
        p = self.page
        p.wait_for_selector("#prejoin-form")
        if password is not None:
            p.fill("#join-password", password)
        p.click("#join-button")
        p.wait_for_selector("#room")

    def wait_for_people(self, n: int) -> None:
        self.page.wait_for_function(
            "n => document.querySelectorAll('#people-list .person').length === n"
            " || Number(document.getElementById('people-badge')?.textContent) === n",
            arg=n,
        )

    def media_stats(self) -> dict[str, Any]:
        """getStats() of the page's live connection to the SFU, summed per kind and source."""
        return self.page.evaluate(  # type: ignore[no-any-return]
            """async () => {
              const pc = (window.__pcs || []).filter((p) => p.connectionState !== 'closed').pop();
              const out = { state: pc ? pc.connectionState : 'none', inbound: [], outbound: [] };
              if (!pc) return out;
              const report = await pc.getStats();
              report.forEach((s) => {
                if (s.type === 'inbound-rtp') {
                  out.inbound.push({ kind: s.kind, mid: s.mid, packets: s.packetsReceived || 0,
                    frames: s.framesDecoded || 0, width: s.frameWidth || 0 });
                } else if (s.type === 'outbound-rtp') {
                  out.outbound.push({ kind: s.kind, mid: s.mid, packets: s.packetsSent || 0,
                    frames: s.framesEncoded || 0 });
                }
              });
              return out;
            }"""
        )

    def wait_for_remote_video(self, user_id: int, source: str = "camera") -> None:
        """Until the tile of `user_id` plays decoded frames from the SFU."""
        self.page.wait_for_function(
            """([uid, source]) => {
              const v = document.querySelector(
                `.tile[data-user-id="${uid}"][data-source="${source}"]:not(.no-video) video`);
              return Boolean(v && v.videoWidth > 0 && v.currentTime > 0);
            }""",
            arg=[user_id, source],
            timeout=30_000,
        )

    def tile_screenshot(self, user_id: int, source: str = "camera") -> bytes:
        return self.page.locator(
            f'.tile[data-user-id="{user_id}"][data-source="{source}"] video'
        ).screenshot()

    def toast_texts(self) -> list[str]:
        return self.page.locator(".toast-text").all_text_contents()

    def close(self) -> None:
        self.context.close()
