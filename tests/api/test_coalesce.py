"""One write per response: the transport holds one event-loop pass's writes and sends them
together (confer.api.coalesce)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from confer.api.coalesce import HOLD_LIMIT, CoalescingTransport
from tests.support.servers import ConferServer


class Peer(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


Pair = tuple[CoalescingTransport, list[bytes], Peer]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """A real socket pair: a counting coalescing transport on one end, a reader on the other."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    _, peer = await loop.connect_accepted_socket(Peer, theirs)
    calls: list[bytes] = []
    real_write = transport.write

    def counting_write(data: bytes) -> None:
        calls.append(bytes(data))
        real_write(data)

    transport.write = counting_write  # type: ignore[method-assign]
    yield CoalescingTransport(transport, loop), calls, peer  # type: ignore[arg-type]
    transport.close()


async def test_writes_of_one_loop_pass_go_out_in_one_call(pair: Pair) -> None:
    wrapped, calls, peer = pair
    wrapped.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    wrapped.write(b"ok")
    assert calls == []  # nothing sent before the pass ends
    await asyncio.sleep(0)
    assert calls == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    wrapped.write(b"next")
    await asyncio.sleep(0.05)
    assert calls[1:] == [b"next"]
    assert bytes(peer.received) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\noknext"


async def test_a_large_body_is_written_at_once_for_the_transports_flow_control(
    pair: Pair,
) -> None:
    wrapped, calls, _ = pair
    wrapped.write(b"head")
    wrapped.write(b"x" * HOLD_LIMIT)
    assert calls == [b"head" + b"x" * HOLD_LIMIT]  # not held until the end of the pass
    assert wrapped.get_write_buffer_size() == wrapped.transport.get_write_buffer_size()


async def test_closing_sends_what_is_held_first(pair: Pair) -> None:
    wrapped, _, peer = pair
    wrapped.write(b"last words")
    wrapped.close()
    await asyncio.wait_for(peer.closed.wait(), 5)
    assert bytes(peer.received) == b"last words"
    assert wrapped.is_closing()  # the rest of the transport is the real one's


async def test_writes_held_when_the_peer_is_gone_are_dropped_quietly(pair: Pair) -> None:
    wrapped, calls, _ = pair
    wrapped.write(b"too late")
    wrapped.transport.abort()
    await asyncio.sleep(0)
    assert calls == []


def test_a_served_response_is_whole_and_keep_alive_still_works(sqlite_server: ConferServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as http:
        for _ in range(3):  # the same connection, request after request
            r = http.get("/health")
            assert r.status_code == 200 and r.json()["data"]["status"] == "ok"
        big = http.get("/api/v1/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert big.status_code == 200 and "paths" in big.json()
