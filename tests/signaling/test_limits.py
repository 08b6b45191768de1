"""Limits: message rate, message size, idle sockets, slow consumers, sustained abuse."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.signaling.support import Client, meeting, ws_url
from tests.support.api import Api
from tests.support.servers import ROOT, TEST_ENV, ConferServer, free_port, stop, wait_for_port


async def test_too_many_messages_are_refused_with_429_without_closing(
    tight_server: ConferServer, tapi: Api
) -> None:
    m = meeting(tapi, 0)
    c = await Client.connect(tight_server, m.host, m.id)
    for _ in range(15):  # burst 10
        await c.send({"type": 11})
    codes = []
    for _ in range(15):
        msg = await c.next()
        if msg["type"] == 13:
            codes.append(msg["payload"]["code"])
    assert codes and set(codes) == {429}
    assert len(codes) <= 5
    await c.close()


async def test_sustained_abuse_closes_with_4010(tight_server: ConferServer, tapi: Api) -> None:
    m = meeting(tapi, 0)
    c = await Client.connect(tight_server, m.host, m.id)
    for _ in range(60):
        try:
            await c.send("not json")
        except websockets.ConnectionClosed:
            break
    code, reason = await c.closed()
    assert code == 4010 and reason


async def test_a_silent_socket_is_closed_after_the_idle_timeout(
    tight_server: ConferServer, tapi: Api
) -> None:
    m = meeting(tapi, 0)
    c = await Client.connect(tight_server, m.host, m.id)
    code, reason = await c.closed()
    assert code == 4008 and "3" in reason


def stalled_socket(server: ConferServer, url: str) -> socket.socket:
    """A WebSocket handshake on a plain socket that will not be read from for a while, with a
    small receive buffer so the kernel cannot absorb megabytes on the client's behalf."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", server.port))
    path = url.split(str(server.port), 1)[1]
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def close_frame(sock: socket.socket, wait: float) -> tuple[int, str]:
    """Read everything the server sent; return the code and reason of its close frame."""
    sock.settimeout(wait)
    data = bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
        # Scan complete frames for a close (opcode 8); server frames are not masked.
        at = 0
        while at + 2 <= len(data):
            opcode, n, head = data[at] & 0x0F, data[at + 1] & 0x7F, 2
            if n == 126:
                n, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
            elif n == 127:
                n, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
            if at + head + n > len(data):
                break
            if opcode == 8:
                body = data[at + head : at + head + n]
                return int.from_bytes(body[:2], "big"), body[2:].decode()
            at += head + n
    raise AssertionError("no close frame before the connection ended")


async def test_a_slow_consumer_is_dropped_and_the_room_goes_on(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 2)
    slow_user, watcher_user = m.members
    host = await Client.connect(sig, m.host, m.id)
    watcher = await Client.connect(sig, watcher_user, m.id)
    slow = await asyncio.to_thread(stalled_socket, sig, ws_url(sig, slow_user, m.id, "slow"))
    await watcher.next(6)
    big = {"sdp": "v=0\r\n" + "a=x\r\n" * 7_000, "type": "offer"}  # ~50 KB
    for _ in range(600):  # ~30 MB for a client that reads nothing
        await host.send({"type": 1, "to_user_id": slow_user.user_id, "payload": big})
    await host.sync()
    # The stalled client wakes up and reads what it was sent: it ends with a close frame.
    closing = asyncio.create_task(asyncio.to_thread(close_frame, slow, 60))
    # The room is not held back: others still get their messages.
    await host.send({"type": 8, "payload": {"content": "still here"}})
    assert (await watcher.next(8, wait=60))["payload"]["content"] == "still here"
    code, reason = await closing
    assert code == 4009 and "slow" in reason
    slow.close()
    for c in (host, watcher):
        await c.close()


@pytest.fixture(scope="module")
def roomy_server() -> Iterator[ConferServer]:
    """Served by uvicorn directly with a transport limit above signaling's own 64 KiB, the
    way `confer serve` should be configured, so oversized messages reach the app."""
    data = Path(tempfile.mkdtemp(prefix="confer-sig-"))
    env = {**os.environ, **TEST_ENV, "CONFER_DATA_DIR": str(data)}
    subprocess.run(
        [sys.executable, "-m", "confer", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "confer.app:create_app_from_env",
            "--factory",
            "--port",
            str(port),
            "--ws-max-size",
            str(1 << 20),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)
    srv = ConferServer.__new__(ConferServer)
    srv.port, srv.args, srv.data_dir = port, [], data
    while httpx.get(srv.url + "/health").status_code != 200:
        pass
    yield srv
    stop(proc)


async def test_an_oversized_message_gets_413_and_the_socket_stays(
    roomy_server: ConferServer,
) -> None:
    api = Api(roomy_server.url)
    m = meeting(api, 0)
    c = await Client.connect(roomy_server, m.host, m.id)
    err = await c.request({"type": 8, "payload": {"content": "x" * (64 * 1024)}}, 13)
    assert err["payload"]["code"] == 413 and "65536" in err["payload"]["message"]
    await c.sync()
    await c.close()
