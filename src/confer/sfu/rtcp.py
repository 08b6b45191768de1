"""RTCP (RFC 3550, 4585, 5104, REMB draft): parse compound packets, build the ones we send.

Packets the SFU does not act on (SDES, XR, transport-cc, APP) are skipped by length, so a
compound packet with unknown parts still yields the parts we understand.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SR, RR, SDES, BYE, APP, RTPFB, PSFB = 200, 201, 202, 203, 204, 205, 206
FMT_NACK = 1
FMT_TWCC = 15
FMT_PLI = 1
FMT_FIR = 4
FMT_AFB = 15  # application layer feedback: REMB

_REPORT = struct.Struct("!IB3sIIII")


@dataclass(slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0-255
    packets_lost: int  # cumulative, signed 24 bits
    highest_seq: int  # extended
    jitter: int
    lsr: int
    dlsr: int

    def pack(self) -> bytes:
        lost = self.packets_lost & 0xFFFFFF
        return _REPORT.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            lost.to_bytes(3, "big"),
            self.highest_seq & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp
    rtp_ts: int
    packets: int
    octets: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: list[int]


@dataclass(slots=True)
class Pli:
    sender_ssrc: int
    media_ssrc: int


@dataclass(slots=True)
class Fir:
    sender_ssrc: int
    entries: list[tuple[int, int]]  # (ssrc, command sequence number)


@dataclass(slots=True)
class Remb:
    sender_ssrc: int
    bitrate: int
    ssrcs: list[int]


@dataclass(slots=True)
class Bye:
    ssrcs: list[int]


RtcpPacket = SenderReport | ReceiverReport | Nack | Pli | Fir | Remb | Bye


def _reports(data: bytes, pos: int, count: int, end: int) -> list[ReportBlock]:
    if pos + 24 * count > end:
        raise ValueError("RTCP report blocks overrun the packet")
    out = []
    for i in range(count):
        ssrc, frac, lost, high, jitter, lsr, dlsr = _REPORT.unpack_from(data, pos + 24 * i)
        cumulative = int.from_bytes(lost, "big", signed=True)
        out.append(ReportBlock(ssrc, frac, cumulative, high, jitter, lsr, dlsr))
    return out


def _parse_nack(data: bytes, start: int, end: int) -> list[int]:
    lost: list[int] = []
    for pos in range(start, end - 3, 4):
        pid, blp = struct.unpack_from("!HH", data, pos)
        lost.append(pid)
        for bit in range(16):
            if blp & (1 << bit):
                lost.append((pid + bit + 1) & 0xFFFF)
    return lost


def _parse_remb(data: bytes, start: int, end: int, sender: int) -> Remb | None:
    if end - start < 8 or data[start : start + 4] != b"REMB":
        return None
    count = data[start + 4]
    exp = data[start + 5] >> 2
    mantissa = ((data[start + 5] & 0x03) << 16) | (data[start + 6] << 8) | data[start + 7]
    if start + 8 + 4 * count > end:
        raise ValueError("REMB SSRC list overruns the packet")
    ssrcs = list(struct.unpack_from(f"!{count}I", data, start + 8))
    return Remb(sender, mantissa << exp, ssrcs)


def parse(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP packet; ValueError when its framing is broken."""
    out: list[RtcpPacket] = []
    pos, n = 0, len(data)
    if n < 4:
        raise ValueError("RTCP packet shorter than its header")
    while pos < n:
        if pos + 4 > n:
            raise ValueError("RTCP header overruns the packet")
        b0, ptype, words = data[pos], data[pos + 1], struct.unpack_from("!H", data, pos + 2)[0]
        if b0 >> 6 != 2:
            raise ValueError("RTCP version is not 2")
        end = pos + 4 + 4 * words
        if end > n:
            raise ValueError("RTCP length overruns the packet")
        count = b0 & 0x1F
        body = pos + 4
        if b0 & 0x20:  # padding: only meaningful in the last packet
            pad = data[end - 1]
            if pad == 0 or body + pad > end:
                raise ValueError("RTCP padding length is invalid")
            end_body = end - pad
        else:
            end_body = end
        if ptype == SR:
            if body + 24 > end_body:
                raise ValueError("RTCP SR too short")
            ssrc, ntp, ts, packets, octets = struct.unpack_from("!IQIII", data, body)
            reports = _reports(data, body + 24, count, end_body)
            out.append(SenderReport(ssrc, ntp, ts, packets, octets, reports))
        elif ptype == RR:
            if body + 4 > end_body:
                raise ValueError("RTCP RR too short")
            (ssrc,) = struct.unpack_from("!I", data, body)
            out.append(ReceiverReport(ssrc, _reports(data, body + 4, count, end_body)))
        elif ptype == BYE:
            if body + 4 * count > end_body:
                raise ValueError("RTCP BYE too short")
            out.append(Bye(list(struct.unpack_from(f"!{count}I", data, body))))
        elif ptype in (RTPFB, PSFB):
            if body + 8 > end_body:
                raise ValueError("RTCP feedback too short")
            sender, media = struct.unpack_from("!II", data, body)
            fci = body + 8
            if ptype == RTPFB and count == FMT_NACK:
                out.append(Nack(sender, media, _parse_nack(data, fci, end_body)))
            elif ptype == PSFB and count == FMT_PLI:
                out.append(Pli(sender, media))
            elif ptype == PSFB and count == FMT_FIR:
                entries = [
                    (struct.unpack_from("!I", data, p)[0], data[p + 4])
                    for p in range(fci, end_body - 7, 8)
                ]
                out.append(Fir(sender, entries))
            elif ptype == PSFB and count == FMT_AFB:
                remb = _parse_remb(data, fci, end_body, sender)
                if remb is not None:
                    out.append(remb)
        pos = end
    return out


def _header(count: int, ptype: int, body_len: int) -> bytes:
    return struct.pack("!BBH", 0x80 | count, ptype, body_len // 4)


def pack_sr(sr: SenderReport) -> bytes:
    body = struct.pack("!IQIII", sr.ssrc, sr.ntp, sr.rtp_ts & 0xFFFFFFFF, sr.packets, sr.octets)
    body += b"".join(r.pack() for r in sr.reports)
    return _header(len(sr.reports), SR, len(body)) + body


def pack_rr(ssrc: int, reports: list[ReportBlock]) -> bytes:
    """One RR per 31 report blocks (the count field has five bits)."""
    out = b""
    for i in range(0, max(len(reports), 1), 31):
        chunk = reports[i : i + 31]
        body = struct.pack("!I", ssrc) + b"".join(r.pack() for r in chunk)
        out += _header(len(chunk), RR, len(body)) + body
    return out


def pack_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _header(FMT_PLI, PSFB, 8) + struct.pack("!II", sender_ssrc, media_ssrc)


def pack_fir(sender_ssrc: int, media_ssrc: int, seqnr: int) -> bytes:
    body = struct.pack("!IIIB3x", sender_ssrc, 0, media_ssrc, seqnr & 0xFF)
    return _header(FMT_FIR, PSFB, len(body)) + body


def pack_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """Generic NACK: each FCI covers a packet id and the 16 that follow it."""
    items: list[tuple[int, int]] = []
    for seq in sorted(set(lost), key=lambda s: (s - lost[0]) & 0xFFFF):
        if items and 0 < (seq - items[-1][0]) & 0xFFFF <= 16:
            pid, blp = items[-1]
            items[-1] = (pid, blp | 1 << (((seq - pid) & 0xFFFF) - 1))
        else:
            items.append((seq, 0))
    body = struct.pack("!II", sender_ssrc, media_ssrc)
    body += b"".join(struct.pack("!HH", pid, blp) for pid, blp in items)
    return _header(FMT_NACK, RTPFB, len(body)) + body


def pack_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    bitrate = max(0, int(bitrate))
    exp = 0
    while bitrate >= 1 << 18:
        bitrate >>= 1
        exp += 1
    fci = b"REMB" + bytes(
        [len(ssrcs), (exp << 2) | (bitrate >> 16), (bitrate >> 8) & 0xFF, bitrate & 0xFF]
    )
    fci += b"".join(struct.pack("!I", s) for s in ssrcs)
    body = struct.pack("!II", sender_ssrc, 0) + fci
    return _header(FMT_AFB, PSFB, len(body)) + body


def pack_bye(ssrcs: list[int]) -> bytes:
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    return _header(len(ssrcs), BYE, len(body)) + body


def pack_sdes_cname(ssrc: int, cname: str) -> bytes:
    """SDES with one CNAME chunk: RFC 3550 wants one in every compound packet."""
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    return _header(1, SDES, len(chunk)) + chunk


def ntp_time(unix_seconds: float) -> int:
    """64-bit NTP timestamp of a Unix time."""
    secs = unix_seconds + 2208988800
    return (int(secs) << 32) | int((secs % 1) * (1 << 32))


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits (LSR of a report block)."""
    return (ntp >> 16) & 0xFFFFFFFF
