"""The direct-write adapter (`confer.signaling.wire`): uvicorn / websockets internals still in
place, frames websockets itself parses, one compressed frame valid for every deflate peer,
and the plain ASGI path when the app is served by uvicorn without the adapter."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from collections.abc import Iterator

import pytest
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from confer.signaling.codec import ws_frame
from confer.signaling.wire import check_internals
from tests.signaling.support import Client, meeting
from tests.support.api import Api
from tests.support.servers import ROOT, ConferServer, stop, wait_for_port


def test_the_uvicorn_and_websockets_internals_are_where_the_adapter_expects() -> None:
    """Fails loudly after an upgrade of uvicorn or websockets: re-check wire.py, then re-pin."""
    check_internals()


def _parse(data: bytes, window_bits: int) -> Frame:
    """A frame as a websockets client reads it (with permessage-deflate when negotiated)."""
    reader = StreamReader()
    reader.feed_data(data)
    exts = []
    if window_bits:
        exts = [PerMessageDeflate(True, False, window_bits, 15)]
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None, extensions=exts)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        frame: Frame = done.value
    assert not reader.buffer, "bytes left after the frame"
    return frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("window_bits", [0, 9, 12, 15])
@pytest.mark.parametrize("binary", [False, True])
def test_frames_are_what_websockets_parses(size: int, window_bits: int, binary: bool) -> None:
    rng = random.Random(size * 31 + window_bits)
    payload = bytes(rng.choice(b"ab{}\"'x0123") for _ in range(size))
    frame = _parse(ws_frame(payload, binary, window_bits), window_bits)
    assert frame.opcode == (Opcode.BINARY if binary else Opcode.TEXT)
    assert frame.fin and bytes(frame.data) == payload


def _text(n: int) -> str:
    return "".join(random.choices(string.ascii_letters, k=n))


async def _chat_to_all(host: Client, others: list[Client], rounds: int) -> None:
    """Rounds of long text that repeats itself 1,800 characters back (compressed frames with
    back-references beyond the narrowest window), each read by every member."""
    for i in range(rounds):
        part = _text(1800)
        content = f"{i}:{part}{part}"
        await host.send({"type": 8, "payload": {"content": content}})
        for c in (host, *others):
            got = await c.next(8)
            assert got["payload"]["content"] == content


async def test_one_compressed_frame_serves_every_deflate_peer(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 2)
    host = await Client.connect(sig, m.host, m.id)  # websockets' default offer, as browsers
    narrow = await Client.connect(
        sig,
        m.members[0],
        m.id,
        compression=None,
        extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=10)],
    )
    plain = await Client.connect(sig, m.members[1], m.id, compression=None)
    try:
        offered = host.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in offered and "server_no_context_takeover" in offered
        narrow_ext = narrow.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "server_max_window_bits=10" in narrow_ext
        assert "Sec-WebSocket-Extensions" not in plain.ws.response.headers
        await _chat_to_all(host, [narrow, plain], rounds=3)
    finally:
        for c in (host, narrow, plain):
            await c.close()


class PlainUvicorn(ConferServer):
    """The app under uvicorn's own WebSocket protocol (`uvicorn --factory`): no adapter."""

    def start(self, timeout: float = 90.0) -> PlainUvicorn:
        subprocess.run(
            [sys.executable, "-m", "confer", "migrate"], env=self.env, cwd=ROOT, check=True
        )
        log = open(self.log_path, "w")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "confer.app:create_app_from_env"),
                *("--port", str(self.port), "--log-level", "warning"),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, timeout, self.proc)
        except Exception:
            stop(self.proc)
            raise AssertionError(f"uvicorn did not start:\n{self.log()}") from None
        return self


@pytest.fixture(scope="module")
def plain_server() -> Iterator[ConferServer]:
    srv = PlainUvicorn({"CONFER_SFU_ENABLED": "false"})
    srv.start()
    yield srv
    srv.stop()


async def test_without_the_adapter_messages_go_through_asgi(plain_server: ConferServer) -> None:
    api = Api(plain_server.url)
    try:
        m = meeting(api, 1)
        host = await Client.connect(plain_server, m.host, m.id)
        plain = await Client.connect(plain_server, m.members[0], m.id, compression=None)
        try:
            offered = host.ws.response.headers.get("Sec-WebSocket-Extensions", "")
            # uvicorn's own negotiation: the deflate context carries over between messages.
            assert "permessage-deflate" in offered
            assert "server_no_context_takeover" not in offered
            await _chat_to_all(host, [plain], rounds=3)
        finally:
            await host.close()
            await plain.close()
    finally:
        api.close()
