"""The one module that reaches into aiortc / aioice internals (versions pinned in pyproject).

The SFU uses aiortc for ICE (aioice), DTLS and SRTP keying, and nothing above them: no
RTCPeerConnection, no RTCRtpReceiver (which would decode every frame). It needs four things
aiortc does not expose, all done here and checked by `check_internals()`, which the tests call
so that an upgrade that moves an internal fails loudly:

1. host candidates on chosen addresses, loopback included (aioice skips 127.0.0.1);
2. the DTLS role decided by SDP `a=setup` (`RTCDtlsTransport._set_role`);
3. decrypted RTP/RTCP handed over synchronously from the UDP socket: the datagram handler of
   each aioice `StunProtocol` is wrapped, so media skips the STUN parse, the asyncio queue and
   four awaits per packet (DTLS and STUN still take aiortc's path);
4. a synchronous send from C: the forwarding loop (`_fanout.c`) calls libsrtp's
   `srtp_protect` through the function pointer and `srtp_t` session that pylibsrtp's cffi
   binding holds (`lib.srtp_protect`, `Session._srtp`), then `sendto` on the file descriptor
   of the nominated pair's socket (`Connection._nominated`, the asyncio transport's socket);
5. SRTP decryption through pylibsrtp's cffi binding without its per-call wrapper (`_cdata`,
   `_buffer`, `_srtp`): the wrapper costs more than the decryption of each received packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from importlib.metadata import version

import aioice.ice
import pylibsrtp
from aioice.ice import CandidatePair
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc.rtcdtlstransport import RTCDtlsFingerprint, RTCDtlsParameters
from aiortc.rtcicetransport import RTCIceParameters
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from confer.sfu import _fanout

log = logging.getLogger("confer.sfu")

PINNED = {"aiortc": "1.16.0", "aioice": "0.13.0", "pylibsrtp": "1.0.0"}

_ORIGINAL_HOST_ADDRESSES = aioice.ice.get_host_addresses
_CERTIFICATE: RTCCertificate | None = None


class InternalsMoved(RuntimeError):
    """An aiortc / aioice upgrade moved something the SFU relies on."""


def check_internals() -> None:
    """Raise InternalsMoved naming every internal that is not where the SFU expects it."""
    missing = []
    for name, pinned in PINNED.items():
        if version(name) != pinned:
            missing.append(f"{name} is {version(name)}, the SFU is pinned to {pinned}")
    checks = {
        "aioice.ice.get_host_addresses": hasattr(aioice.ice, "get_host_addresses"),
        "aioice.ice.StunProtocol.datagram_received": hasattr(
            aioice.ice.StunProtocol, "datagram_received"
        ),
        "aioice.ice.Connection.local_candidates": hasattr(
            aioice.ice.Connection, "local_candidates"
        ),
        "RTCDtlsTransport._set_role": hasattr(RTCDtlsTransport, "_set_role"),
        "RTCDtlsTransport._handle_rtp_data": hasattr(RTCDtlsTransport, "_handle_rtp_data"),
        "RTCDtlsTransport._handle_rtcp_data": hasattr(RTCDtlsTransport, "_handle_rtcp_data"),
        "RTCIceTransport._connection": "_connection" in RTCIceTransport.__init__.__code__.co_names,
        "Connection._nominated": "_nominated" in aioice.ice.Connection.__init__.__code__.co_names,
        "Connection._protocols": "_protocols" in aioice.ice.Connection.__init__.__code__.co_names,
        "RTCDtlsTransport._rx_srtp": "_rx_srtp" in RTCDtlsTransport.__init__.__code__.co_names,
        "RTCDtlsTransport._tx_srtp": "_tx_srtp" in RTCDtlsTransport.__init__.__code__.co_names,
        "pylibsrtp.Session._cdata/_buffer/_srtp": all(
            n in pylibsrtp.Session.__init__.__code__.co_names
            for n in ("_cdata", "_buffer", "_srtp")
        ),
        "pylibsrtp._binding.lib.srtp_protect": hasattr(_srtp_lib, "srtp_protect"),
        "pylibsrtp.SRTP_MAX_TRAILER_LEN": hasattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN")
        and pylibsrtp.SRTP_MAX_TRAILER_LEN <= _fanout.SRTP_TRAILER,
        "pylibsrtp lib.srtp_protect(srtp_t, void *, int *)": _srtp_signature_ok(),
        "aioice.ice.CandidatePair.protocol/remote_addr": all(
            n in CandidatePair.__init__.__code__.co_names for n in ("protocol", "remote_candidate")
        )
        and isinstance(getattr(CandidatePair, "remote_addr", None), property),
    }
    missing += [name for name, ok in checks.items() if not ok]
    if missing:
        raise InternalsMoved("; ".join(missing))


def _srtp_signature_ok() -> bool:
    """The C loop calls srtp_protect(ctx, buffer, &length) in place (libsrtp 2)."""
    try:
        kind = _srtp_ffi.typeof(_srtp_lib.srtp_protect)
    except (AttributeError, TypeError):
        return False
    return [a.cname for a in kind.args] == ["struct srtp_ctx_t_ *", "void *", "int *"]


def srtp_protect_pointers(session: pylibsrtp.Session) -> tuple[int, int]:
    """Addresses of libsrtp's `srtp_protect` and of the session's `srtp_t`, for `_fanout`."""
    func = int(_srtp_ffi.cast("uintptr_t", _srtp_ffi.addressof(_srtp_lib, "srtp_protect")))
    return func, int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))


def use_host_addresses(addresses: list[str]) -> None:
    """Gather host candidates on exactly `addresses` (all interfaces but loopback when empty)."""
    if addresses:
        chosen = list(addresses)
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: chosen
    else:
        aioice.ice.get_host_addresses = _ORIGINAL_HOST_ADDRESSES


def _certificate() -> RTCCertificate:
    """One DTLS certificate per worker process: generating one per peer costs milliseconds."""
    global _CERTIFICATE
    if _CERTIFICATE is None:
        _CERTIFICATE = RTCCertificate.generateCertificate()
    return _CERTIFICATE


def srtp_function(
    session: pylibsrtp.Session, func: Callable[..., int], trailer: int
) -> Callable[[bytes | bytearray], bytes]:
    """`session.protect` (or another of its four) minus the wrapper's per-call overhead."""
    cdata, buffer, srtp = session._cdata, session._buffer, session._srtp[0]
    length = _srtp_ffi.new("int *")
    limit = len(buffer) - trailer

    def run(data: bytes | bytearray) -> bytes:
        n = len(data)
        if n > limit:
            raise pylibsrtp.Error("packet is too long")
        buffer[0:n] = data
        length[0] = n
        if func(srtp, cdata, length):
            raise pylibsrtp.Error("SRTP processing failed")
        return buffer[0 : length[0]]

    run.session = session  # type: ignore[attr-defined]  # keeps the C session alive
    return run


class MediaTransport:
    """ICE + DTLS-SRTP for one participant, with synchronous media in and out."""

    def __init__(
        self,
        on_rtp: Callable[[bytes], None],
        on_rtcp: Callable[[bytes], None],
        on_state: Callable[[str], None],
        announced_ip: str = "",
        controlling: bool = False,
        peek_srtp: Callable[[bytes], bool] | None = None,
    ) -> None:
        """`controlling`: the ICE role of an offerer (load-test bots); the SFU answers.
        `peek_srtp` sees each SRTP packet before decryption and returns True when it needs
        nothing more (bots count packets from the clear-text header without decrypting)."""
        self._on_rtp = on_rtp
        self._peek = peek_srtp
        self._on_rtcp = on_rtcp
        self._on_state = on_state
        self._announced_ip = announced_ip
        self._gatherer = RTCIceGatherer(iceServers=[])
        self._ice = RTCIceTransport(self._gatherer)
        self._dtls = RTCDtlsTransport(self._ice, [_certificate()])
        self._conn: aioice.ice.Connection = self._ice._connection
        self._conn.ice_controlling = controlling
        self._task: asyncio.Task[None] | None = None
        self._tx: pylibsrtp.Session | None = None
        self._rx: pylibsrtp.Session | None = None
        self._pair: object | None = None
        self.route = _fanout.Route()  # SRTP + socket for the C forwarding loop
        self.state = "new"
        self._dtls._handle_rtp_data = self._late_rtp  # type: ignore[method-assign]
        self._dtls._handle_rtcp_data = self._late_rtcp  # type: ignore[method-assign]

    # -- description of our side

    async def gather(self) -> None:
        await self._gatherer.gather()

    @property
    def ice_credentials(self) -> tuple[str, str]:
        p = self._gatherer.getLocalParameters()
        return p.usernameFragment or "", p.password or ""

    @property
    def fingerprints(self) -> list[tuple[str, str]]:
        return [(f.algorithm, f.value) for f in self._dtls.getLocalParameters().fingerprints]

    @property
    def local_ports(self) -> list[int]:
        return [c.port for c in self._gatherer.getLocalCandidates()]

    def set_receive_buffer(self, size: int) -> None:
        """Enlarge the sockets' receive buffers (load-test bots that many sockets share)."""
        import socket

        for protocol in self._conn._protocols:
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                try:  # SO_RCVBUFFORCE (33 on Linux) passes rmem_max when we may
                    sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), size)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def local_candidates(self) -> list[str]:
        out = []
        for c in self._gatherer.getLocalCandidates():
            if self._announced_ip and c.type == "host":
                c.ip = self._announced_ip
            out.append(candidate_to_sdp(c))
        return out

    # -- connecting

    def start(
        self, ufrag: str, pwd: str, fingerprints: list[tuple[str, str]], dtls_role: str
    ) -> None:
        """Begin ICE checks then the DTLS handshake; progress is reported to `on_state`."""
        if self._task is not None:
            return
        params = RTCDtlsParameters([RTCDtlsFingerprint(a, v) for a, v in fingerprints])
        self._dtls._set_role(dtls_role)
        self._task = asyncio.ensure_future(self._connect(RTCIceParameters(ufrag, pwd), params))

    async def _connect(self, ice: RTCIceParameters, dtls: RTCDtlsParameters) -> None:
        self._set_state("connecting")
        try:
            await self._ice.start(ice)
            if self._ice.state != "completed":
                self._set_state("failed")
                return
            await self._dtls.start(dtls)
            if self._dtls.state != "connected":
                self._set_state("failed")
                return
        except (TimeoutError, ConnectionError, ValueError) as exc:
            log.info("media transport failed: %s", exc)
            self._set_state("failed")
            return
        self._tx, self._rx = self._dtls._tx_srtp, self._dtls._rx_srtp
        self.route.set_srtp(self._tx, *srtp_protect_pointers(self._tx))
        self._route()
        for protocol in list(self._conn._protocols):
            self._hook(protocol)
        self._ice.on("statechange", self._ice_state)
        self._set_state("connected")

    def _ice_state(self) -> None:
        if self._ice.state in ("failed", "closed"):
            self.route.clear()  # its socket is being closed: release our duplicate fd too
            self._pair = None
            if self.state == "connected":
                self._set_state("failed")

    def _hook(self, protocol: aioice.ice.StunProtocol) -> None:
        original = protocol.datagram_received
        assert self._rx is not None
        unprotect = srtp_function(self._rx, _srtp_lib.srtp_unprotect, 0)
        rx = self._rx
        on_rtp, on_rtcp, peek = self._on_rtp, self._on_rtcp, self._peek
        srtp_error = pylibsrtp.Error

        def datagram_received(data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
            if len(data) > 1 and 127 < data[0] < 192:
                try:
                    if 192 <= data[1] <= 223:
                        on_rtcp(rx.unprotect_rtcp(data))
                    elif peek is None or not peek(data):
                        on_rtp(unprotect(data))
                except srtp_error:
                    pass
                except Exception:  # a bug in the SFU must not kill the socket
                    log.exception("error handling media")
                return
            original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign]

    async def _late_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        """Media that came through aiortc's path (before the socket hook was in place)."""
        self._on_rtp(data)

    async def _late_rtcp(self, data: bytes) -> None:
        self._on_rtcp(data)

    async def add_remote_candidate(self, candidate: str | None) -> None:
        """A trickled candidate line (`candidate:...`), or None for end-of-candidates."""
        if candidate is None:
            await self._ice.addRemoteCandidate(None)
            return
        text = candidate.removeprefix("a=").removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError) as exc:
            raise ValueError("invalid ICE candidate") from exc
        if parsed.protocol.lower() != "udp":
            return  # the SFU listens on UDP only; TCP candidates cannot pair
        await self._ice.addRemoteCandidate(parsed)

    # -- media out

    @property
    def packets_sent(self) -> int:
        return int(self.route.packets_sent)

    @property
    def bytes_sent(self) -> int:
        return int(self.route.bytes_sent)

    def refresh_route(self) -> bool:
        """Follow a change of nominated pair (the C loop reads only the route): called on
        every RTCP send and by the peer's fast tick."""
        return self._route()

    def _route(self) -> bool:
        """Point the route at the nominated pair's socket (again if the pair changed)."""
        pair = self._conn._nominated.get(1)
        if pair is None or self._tx is None:
            return False
        if pair is not self._pair:
            sock = pair.protocol.transport.get_extra_info("socket")
            if sock is None or sock.fileno() < 0:
                return False
            host, port = pair.remote_addr[0], pair.remote_addr[1]
            self.route.set_socket(sock.fileno(), host, port)
            self._pair = pair
        return True

    def send_rtp(self, data: bytes | bytearray) -> bool:
        """SRTP-protect and send one RTP packet (in C); False when not connected."""
        return bool(self.route.send(data))

    def send_rtcp(self, data: bytes) -> bool:
        tx = self._tx
        if tx is None or not self._route():
            return False
        try:
            packet = tx.protect_rtcp(data)
        except pylibsrtp.Error:
            return False
        return bool(self.route.send_raw(packet))

    # -- closing

    def _set_state(self, state: str) -> None:
        if state != self.state and self.state != "closed":
            self.state = state
            self._on_state(state)

    async def close(self) -> None:
        self._set_state("closed")
        self._tx = None
        self.route.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._dtls.stop()
        with contextlib.suppress(Exception):
            await self._ice.stop()
