"""The aiortc/aioice adapter: internals where we expect them, media through real sockets."""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confer.sfu import adapter, rtcp, rtp


def test_internals_the_sfu_relies_on_are_present() -> None:
    adapter.check_internals()


def test_a_moved_internal_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(adapter.RTCDtlsTransport, "_set_role")
    with pytest.raises(adapter.InternalsMoved, match=r"RTCDtlsTransport\._set_role"):
        adapter.check_internals()


def test_the_c_loop_internals_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C loop calls srtp_protect through a raw pointer and sends on the pair's socket."""
    monkeypatch.delattr(adapter.CandidatePair, "remote_addr")
    monkeypatch.setattr(adapter, "_srtp_lib", object())
    with pytest.raises(adapter.InternalsMoved) as moved:
        adapter.check_internals()
    assert "CandidatePair.protocol/remote_addr" in str(moved.value)
    assert "srtp_protect(srtp_t, void *, int *)" in str(moved.value)


class Pair:
    """Two transports connected to each other over loopback, as a client and the SFU."""

    def __init__(self) -> None:
        self.got_a: list[bytes] = []
        self.got_b: list[bytes] = []
        self.states: list[str] = []
        self.a = adapter.MediaTransport(
            self.got_a.append, self.got_a.append, self.states.append, controlling=True
        )
        self.b = adapter.MediaTransport(self.got_b.append, self.got_b.append, lambda s: None)

    async def connect(self) -> None:
        adapter.use_host_addresses(["127.0.0.1"])
        try:
            await self.a.gather()
            await self.b.gather()
        finally:
            adapter.use_host_addresses([])
        self.a.start(*self.b.ice_credentials, self.b.fingerprints, "server")
        self.b.start(*self.a.ice_credentials, self.a.fingerprints, "client")
        for c in self.b.local_candidates():
            await self.a.add_remote_candidate(c)
        for c in self.a.local_candidates():
            await self.b.add_remote_candidate(c)
        await self.a.add_remote_candidate(None)
        await self.b.add_remote_candidate(None)
        for _ in range(200):
            if self.a.state == "connected" and self.b.state == "connected":
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not connected: {self.a.state} {self.b.state}")

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


async def settle(cond, tries: int = 250) -> None:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0.02)


async def test_media_flows_both_ways_through_the_socket_hooks() -> None:
    pair = Pair()
    await pair.connect()
    try:
        packet = rtp.build(96, 1, 3000, 0x1234, b"\x90\x80\x00payload", marker=True)
        report = rtcp.pack_rr(9, [rtcp.ReportBlock(0x1234, 0, 0, 1, 0, 0, 0)])
        assert pair.a.send_rtp(packet) and pair.a.send_rtcp(report)
        assert pair.b.send_rtp(packet)
        await settle(lambda: len(pair.got_b) == 2 and len(pair.got_a) == 1)
        assert sorted(pair.got_b) == sorted([packet, report])
        assert pair.got_a == [packet]
        assert pair.states[-1] == "connected"
        assert pair.a.packets_sent == 1 and pair.a.bytes_sent > len(packet)  # + SRTP tag
    finally:
        await pair.close()
    assert not pair.a.route.ready  # its socket is gone: the C loop must not use the fd
    assert not pair.a.send_rtp(packet)  # closed: nothing goes out


async def test_media_follows_a_newly_nominated_pair() -> None:
    """The C loop sends on the route; a new nominated pair must move the route with it."""
    pair = Pair()
    await pair.connect()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(2)
    try:
        conn = pair.a._conn
        old = conn._nominated[1]
        moved = copy.copy(old.remote_candidate)
        moved.port = other.getsockname()[1]
        conn._nominated[1] = adapter.CandidatePair(old.protocol, moved)
        packet = rtp.build(96, 1, 3000, 0x1234, b"payload")
        assert pair.a.refresh_route()
        assert pair.a.send_rtp(packet)
        protected = await asyncio.get_running_loop().run_in_executor(None, other.recv, 2048)
        assert len(protected) > len(packet) and protected[8:12] == packet[8:12]  # same SSRC
    finally:
        other.close()
        await pair.close()


def junk() -> st.SearchStrategy[bytes]:
    stun_like = st.builds(
        lambda t, n, rest: struct.pack("!HHI", t, n, 0x2112A442) + rest,
        st.integers(0, 0x3FFF),
        st.integers(0, 600),
        st.binary(min_size=12, max_size=80),
    )
    srtp_like = st.builds(
        lambda b, rest: bytes([0x80 | (b & 0x3F)]) + rest,
        st.integers(0, 255),
        st.binary(min_size=1, max_size=200),
    )
    dtls_like = st.builds(
        lambda b, rest: bytes([20 + b % 44]) + rest, st.integers(0, 255), st.binary(max_size=100)
    )
    return st.one_of(stun_like, srtp_like, dtls_like, st.binary(max_size=300))


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(junk(), min_size=300, max_size=300))
def test_malformed_stun_rtp_and_dtls_datagrams_neither_crash_nor_leak(
    datagrams: list[bytes],
) -> None:
    async def run() -> None:
        pair = Pair()
        await pair.connect()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            target = ("127.0.0.1", pair.b.local_ports[0])
            for d in datagrams[:50]:  # warm up allocator caches
                sock.sendto(d, target)
            await asyncio.sleep(0.2)
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(5):
                for d in datagrams:
                    sock.sendto(d, target)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            grown = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            assert grown < 256 * 1024, f"memory grew by {grown} bytes"
            assert pair.b.state == "connected"
            packet = rtp.build(96, 7, 1, 2, os.urandom(20))
            assert pair.a.send_rtp(packet)
            await settle(lambda: packet in pair.got_b)
            assert packet in pair.got_b
        finally:
            sock.close()
            await pair.close()

    asyncio.run(run())


async def test_an_announced_address_replaces_the_host_one_in_candidates() -> None:
    t = adapter.MediaTransport(lambda d: None, lambda d: None, lambda s: None, "203.0.113.7")
    adapter.use_host_addresses(["127.0.0.1"])
    try:
        await t.gather()
    finally:
        adapter.use_host_addresses([])
    (line,) = t.local_candidates()
    assert " 203.0.113.7 " in line and " typ host" in line
    assert str(t.local_ports[0]) in line  # the port stays the one bound locally
    await t.close()
