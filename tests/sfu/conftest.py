"""Fixtures for SFU tests: the test harness server and headless Chromium pages."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.chromium import CHROMIUM, MEDIA_FLAGS, SHARED_PAGE_FLAGS
from tests.support.servers import ROOT, free_port, stop, wait_for_port

CHROMIUM_ARGS = [*MEDIA_FLAGS, *SHARED_PAGE_FLAGS]
SPEC_CLIENT_JS = (Path(__file__).parent / "static" / "client.js").read_text()


class Harness:
    """`tests.sfu.harness` running as its own process, SFU workers beneath it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="sfu-harness-", suffix=".log")[1])
        full_env = {
            **os.environ,
            "CONFER_SFU_ICE_ADDRESSES": "127.0.0.1",
            "CONFER_SFU_WORKERS": "1",
            "CONFER_DATA_DIR": tempfile.mkdtemp(prefix="sfu-data-"),
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sfu.harness", str(self.port)],
            cwd=ROOT,
            env=full_env,
            stdout=open(self.log_path, "w"),  # noqa: SIM115 - the child writes to it
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, meeting: int, user: int, peer: str, publish: bool = True) -> str:
        return (
            f"ws://127.0.0.1:{self.port}/ws?meeting={meeting}&user={user}&peer={peer}"
            f"&publish={int(publish)}"
        )

    def post(self, path: str, **params: Any) -> dict[str, Any]:
        return httpx.post(self.url + path, params=params, timeout=10).json()

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/control/stats", timeout=10).json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="module")
def harness_factory() -> Iterator[Callable[..., Harness]]:
    started: list[Harness] = []

    def make(**env: str) -> Harness:
        h = Harness(env)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


@pytest.fixture(scope="module")
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium")
    # Playwright gives the browser a fresh temporary profile (--user-data-dir) of its own.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Client:
    """One browser tab running static/client.js against the harness or confer."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def stats(self) -> dict[str, Any]:
        return self.page.evaluate("sfu.stats()")

    def state(self, key: str) -> Any:
        return self.page.evaluate(f"sfu.state.{key}")

    def videos(self) -> list[dict[str, Any]]:
        return [s for s in self.stats()["inbound"].values() if s["kind"] == "video"]

    def audios(self) -> list[dict[str, Any]]:
        return [s for s in self.stats()["inbound"].values() if s["kind"] == "audio"]


def spec_client(context: Any, origin: str, ws_url: str, meeting_id: int, **opts: Any) -> Client:
    """A tab of `context` running static/client.js against a confer server's signaling."""
    page = context.new_page()
    page.goto(origin + "/health")  # a secure (loopback) origin for getUserMedia
    page.add_script_tag(content=SPEC_CLIENT_JS)
    page.evaluate("o => sfu.start(o)", {"url": ws_url, "meetingId": meeting_id, **opts})
    return Client(page)


@pytest.fixture
def open_client(browser: Any, harness: Harness) -> Iterator[Callable[..., Client]]:
    contexts: list[Any] = []

    def open_(url: str, base: str | None = None, **opts: Any) -> Client:
        ctx = browser.new_context()
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(f"{base or harness.url}/static/page.html")
        page.evaluate("o => sfu.start(o)", {"url": url, **opts})
        return Client(page)

    yield open_
    for ctx in contexts:
        ctx.close()


def wait_until(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"condition not met within {timeout}s (last: {last!r})")
