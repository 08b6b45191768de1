"""SDP as the SFU needs it (RFC 8866, JSEP): parse a browser's description, write our own.

aiortc's SDP parser drops simulcast (`a=rid`, `a=simulcast`) and SSRC groups, so the SFU keeps
its own: every attribute it does not model is kept verbatim in `Media.other`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SDP_BYTES = 64 * 1024
MAX_MEDIA = 64


@dataclass
class Codec:
    pt: int
    name: str  # as written: "VP8", "opus", "rtx"
    clock_rate: int
    channels: int = 0
    fmtp: str = ""
    rtcp_fb: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.name.lower()

    def fmtp_params(self) -> dict[str, str]:
        out = {}
        for part in self.fmtp.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip().lower()] = v.strip()
        return out

    @property
    def apt(self) -> int | None:
        """The payload type an RTX codec repairs."""
        value = self.fmtp_params().get("apt")
        return int(value) if value and value.isdigit() else None


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    fmts: list[str]
    mid: str | None = None
    direction: str = "sendrecv"
    codecs: list[Codec] = field(default_factory=list)
    extmap: dict[int, str] = field(default_factory=dict)
    ssrcs: dict[int, dict[str, str]] = field(default_factory=dict)
    ssrc_groups: list[tuple[str, list[int]]] = field(default_factory=list)
    rids: list[tuple[str, str]] = field(default_factory=list)  # (rid, send|recv)
    simulcast: str | None = None
    msid: str | None = None
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    fingerprints: list[tuple[str, str]] = field(default_factory=list)
    setup: str | None = None
    candidates: list[str] = field(default_factory=list)
    end_of_candidates: bool = False
    rtcp_mux: bool = False
    other: list[str] = field(default_factory=list)

    def codec(self, pt: int) -> Codec | None:
        return next((c for c in self.codecs if c.pt == pt), None)

    @property
    def sends(self) -> bool:
        """Whether the writer of this description sends on this m-line."""
        return self.port != 0 and self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.port != 0 and self.direction in ("sendrecv", "recvonly")

    def send_rids(self) -> list[str]:
        return [rid for rid, d in self.rids if d == "send"]


@dataclass
class SessionDescription:
    media: list[Media] = field(default_factory=list)
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    fingerprints: list[tuple[str, str]] = field(default_factory=list)
    setup: str | None = None
    bundle: list[str] = field(default_factory=list)
    ice_lite: bool = False

    def ice_credentials(self) -> tuple[str, str]:
        for m in self.media:
            if m.ice_ufrag and m.ice_pwd:
                return m.ice_ufrag, m.ice_pwd
        if self.ice_ufrag and self.ice_pwd:
            return self.ice_ufrag, self.ice_pwd
        raise ValueError("the description has no ICE credentials")

    def dtls_fingerprints(self) -> list[tuple[str, str]]:
        for m in self.media:
            if m.fingerprints:
                return m.fingerprints
        if self.fingerprints:
            return self.fingerprints
        raise ValueError("the description has no DTLS fingerprint")

    def dtls_setup(self) -> str:
        for m in self.media:
            if m.setup:
                return m.setup
        return self.setup or "actpass"


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"invalid {what}: {value[:20]!r}") from None


def _media_attr(m: Media, attr: str, value: str | None) -> None:
    if attr == "mid" and value:
        m.mid = value
    elif attr in ("sendrecv", "sendonly", "recvonly", "inactive"):
        m.direction = attr
    elif attr == "rtpmap" and value:
        pt_s, _, enc = value.partition(" ")
        parts = enc.split("/")
        if len(parts) < 2:
            raise ValueError("invalid rtpmap")
        m.codecs.append(
            Codec(
                _int(pt_s, "payload type"),
                parts[0],
                _int(parts[1], "clock rate"),
                _int(parts[2], "channels") if len(parts) > 2 else 0,
            )
        )
    elif attr == "fmtp" and value:
        pt_s, _, params = value.partition(" ")
        c = m.codec(_int(pt_s, "payload type"))
        if c is not None:
            c.fmtp = params
    elif attr == "rtcp-fb" and value:
        pt_s, _, fb = value.partition(" ")
        if pt_s == "*":
            for c in m.codecs:
                c.rtcp_fb.append(fb)
        else:
            c = m.codec(_int(pt_s, "payload type"))
            if c is not None:
                c.rtcp_fb.append(fb)
    elif attr == "extmap" and value:
        id_s, _, uri = value.partition(" ")
        ext_id = _int(id_s.split("/")[0], "extmap id")
        if not 1 <= ext_id <= 255:
            raise ValueError("extmap id out of range")
        m.extmap[ext_id] = uri.split(" ")[0]
    elif attr == "ssrc" and value:
        ssrc_s, _, rest = value.partition(" ")
        name, _, attr_value = rest.partition(":")
        ssrc = _int(ssrc_s, "ssrc") & 0xFFFFFFFF
        m.ssrcs.setdefault(ssrc, {})[name] = attr_value
    elif attr == "ssrc-group" and value:
        sem, *ssrcs = value.split()
        m.ssrc_groups.append((sem, [_int(s, "ssrc") & 0xFFFFFFFF for s in ssrcs]))
    elif attr == "rid" and value:
        rid, _, rest = value.partition(" ")
        m.rids.append((rid, rest.split(" ")[0]))
    elif attr == "simulcast" and value:
        m.simulcast = value
    elif attr == "msid" and value:
        m.msid = value
    elif attr == "ice-ufrag":
        m.ice_ufrag = value
    elif attr == "ice-pwd":
        m.ice_pwd = value
    elif attr == "fingerprint" and value:
        alg, _, fp = value.partition(" ")
        m.fingerprints.append((alg.lower(), fp))
    elif attr == "setup":
        m.setup = value
    elif attr == "candidate" and value:
        m.candidates.append(value)
    elif attr == "end-of-candidates":
        m.end_of_candidates = True
    elif attr == "rtcp-mux":
        m.rtcp_mux = True
    else:
        m.other.append(attr if value is None else f"{attr}:{value}")


def parse(text: str) -> SessionDescription:
    """Parse an SDP; ValueError with a short reason when it is not one we can use."""
    if not isinstance(text, str) or not text.startswith("v=0"):
        raise ValueError("not an SDP description")
    if len(text) > MAX_SDP_BYTES:
        raise ValueError("SDP too large")
    desc = SessionDescription()
    current: Media | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise ValueError("invalid m= line")
            if len(desc.media) >= MAX_MEDIA:
                raise ValueError("too many m= sections")
            current = Media(parts[0], _int(parts[1], "port"), parts[2], parts[3:])
            desc.media.append(current)
            continue
        if kind != "a":
            continue
        attr, sep, attr_value = value.partition(":")
        val = attr_value if sep else None
        if current is None:
            if attr == "group" and val and val.startswith("BUNDLE"):
                desc.bundle = val.split()[1:]
            elif attr == "ice-ufrag":
                desc.ice_ufrag = val
            elif attr == "ice-pwd":
                desc.ice_pwd = val
            elif attr == "fingerprint" and val:
                alg, _, fp = val.partition(" ")
                desc.fingerprints.append((alg.lower(), fp))
            elif attr == "setup":
                desc.setup = val
            elif attr == "ice-lite":
                desc.ice_lite = True
        else:
            _media_attr(current, attr, val)
    for m in desc.media:
        if m.port != 0 and m.kind in ("audio", "video") and m.mid is None:
            raise ValueError("an m= section has no a=mid (unified plan is required)")
    return desc


def write_media(m: Media) -> list[str]:
    lines = [f"m={m.kind} {m.port} {m.proto} {' '.join(m.fmts)}", "c=IN IP4 0.0.0.0"]
    if m.kind in ("audio", "video"):
        lines.append("a=rtcp:9 IN IP4 0.0.0.0")
    if m.ice_ufrag:
        lines += [f"a=ice-ufrag:{m.ice_ufrag}", f"a=ice-pwd:{m.ice_pwd}"]
    lines += [f"a=fingerprint:{alg} {fp}" for alg, fp in m.fingerprints]
    if m.setup:
        lines.append(f"a=setup:{m.setup}")
    if m.mid is not None:
        lines.append(f"a=mid:{m.mid}")
    lines += [f"a=extmap:{i} {uri}" for i, uri in sorted(m.extmap.items())]
    if m.kind in ("audio", "video"):
        lines.append(f"a={m.direction}")
    if m.msid:
        lines.append(f"a=msid:{m.msid}")
    if m.rtcp_mux:
        lines.append("a=rtcp-mux")
    for c in m.codecs:
        enc = f"{c.name}/{c.clock_rate}" + (f"/{c.channels}" if c.channels else "")
        lines.append(f"a=rtpmap:{c.pt} {enc}")
        lines += [f"a=rtcp-fb:{c.pt} {fb}" for fb in c.rtcp_fb]
        if c.fmtp:
            lines.append(f"a=fmtp:{c.pt} {c.fmtp}")
    lines += [f"a=rid:{rid} {d}" for rid, d in m.rids]
    if m.simulcast:
        lines.append(f"a=simulcast:{m.simulcast}")
    for sem, ssrcs in m.ssrc_groups:
        lines.append(f"a=ssrc-group:{sem} {' '.join(map(str, ssrcs))}")
    for ssrc, attrs in m.ssrcs.items():
        lines += [f"a=ssrc:{ssrc} {k}:{v}" for k, v in attrs.items()]
    lines += [f"a={o}" for o in m.other]
    lines += [f"a=candidate:{c}" for c in m.candidates]
    if m.end_of_candidates:
        lines.append("a=end-of-candidates")
    return lines


def write(desc: SessionDescription, session_id: int, version: int) -> str:
    lines = [
        "v=0",
        f"o=confer {session_id} {version} IN IP4 0.0.0.0",
        "s=confer",
        "t=0 0",
    ]
    if desc.bundle:
        lines.append(f"a=group:BUNDLE {' '.join(desc.bundle)}")
    lines.append("a=msid-semantic: WMS *")
    if desc.ice_lite:
        lines.append("a=ice-lite")
    for m in desc.media:
        lines += write_media(m)
    return "\r\n".join(lines) + "\r\n"
