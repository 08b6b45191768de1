"""Limits: message rate, message size, idle sockets, slow consumers, sustained abuse."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.signaling.support import Client, meeting
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
