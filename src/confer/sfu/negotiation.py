"""Building the SFU's side of each m-line: answers to a client's m-lines, offers of our own.

Pure functions from parsed client SDP and track descriptions to `sdp.Media`; the Peer decides
when to call them. Codec choice is the meeting's (VP8, VP9, H.264 by default) so every
subscriber can take every publisher's stream as it is, without transcoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from confer.sfu import sdp
from confer.sfu.tracks import ACCEPTED_EXTENSIONS, FORWARDED_EXTENSIONS

PROTO = "UDP/TLS/RTP/SAVPF"
VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir", "goog-remb")
AUDIO_FEEDBACK: tuple[str, ...] = ()


@dataclass
class Transport:
    """What every m-line repeats about our single (bundled) transport."""

    ufrag: str
    pwd: str
    fingerprints: list[tuple[str, str]]
    setup: str
    candidates: list[str]


def _transport_lines(m: sdp.Media, t: Transport) -> None:
    m.ice_ufrag, m.ice_pwd = t.ufrag, t.pwd
    m.fingerprints = list(t.fingerprints)
    m.setup = t.setup
    m.candidates = list(t.candidates)
    m.end_of_candidates = bool(t.candidates)
    m.rtcp_mux = True


def choose_codec(
    remote: sdp.Media, preferences: list[str]
) -> tuple[sdp.Codec, sdp.Codec | None] | None:
    """The media codec (and its RTX) to receive on a published m-line, or None."""
    wanted = ["opus"] if remote.kind == "audio" else preferences
    for name in wanted:
        candidates = [c for c in remote.codecs if c.key == name]
        if name == "h264":  # packetization-mode 1 decodes everywhere
            candidates.sort(key=lambda c: c.fmtp_params().get("packetization-mode") != "1")
        if candidates:
            codec = candidates[0]
            rtx = next((c for c in remote.codecs if c.key == "rtx" and c.apt == codec.pt), None)
            return codec, rtx
    return None


def rejected(remote: sdp.Media) -> sdp.Media:
    m = sdp.Media(remote.kind, 0, remote.proto, remote.fmts[:1] or ["0"], mid=remote.mid)
    m.direction = "inactive"
    return m


def answer_published(
    remote: sdp.Media, t: Transport, preferences: list[str], accept: bool
) -> tuple[sdp.Media, sdp.Codec | None, sdp.Codec | None]:
    """Our answer to a client m-line: recvonly when it publishes and may, else inactive."""
    chosen = choose_codec(remote, preferences)
    if chosen is None:
        return rejected(remote), None, None
    codec, rtx = chosen
    feedback = VIDEO_FEEDBACK if remote.kind == "video" else AUDIO_FEEDBACK
    codecs = [
        sdp.Codec(
            codec.pt,
            codec.name,
            codec.clock_rate,
            codec.channels,
            codec.fmtp,
            [fb for fb in codec.rtcp_fb if fb in feedback],
        )
    ]
    if rtx is not None:
        codecs.append(sdp.Codec(rtx.pt, rtx.name, rtx.clock_rate, 0, f"apt={codec.pt}"))
    m = sdp.Media(remote.kind, 9, PROTO, [str(c.pt) for c in codecs], mid=remote.mid)
    m.codecs = codecs
    allowed = ACCEPTED_EXTENSIONS[remote.kind]
    m.extmap = {i: uri for i, uri in remote.extmap.items() if uri in allowed}
    publishing = accept and remote.sends
    m.direction = "recvonly" if publishing else "inactive"
    rids = remote.send_rids()[:3]  # up to three layers, as the publisher listed them
    if publishing and rids and remote.simulcast and remote.simulcast.startswith("send"):
        m.rids = [(rid, "recv") for rid in rids]
        m.simulcast = "recv " + ";".join(rids)
    _transport_lines(m, t)
    return m, codec, rtx


@dataclass
class Outgoing:
    """How one forwarded track is described to one subscriber."""

    mid: str
    kind: str
    codec: sdp.Codec  # with the subscriber's payload type
    rtx_pt: int | None
    extmap: dict[int, str]
    ssrc: int
    rtx_ssrc: int | None
    stream_id: str
    track_id: str


def sending(o: Outgoing, t: Transport, active: bool) -> sdp.Media:
    """Our sendonly m-line carrying a forwarded track (inactive once it is gone)."""
    feedback = VIDEO_FEEDBACK if o.kind == "video" else AUDIO_FEEDBACK
    c = o.codec
    codecs = [sdp.Codec(c.pt, c.name, c.clock_rate, c.channels, c.fmtp, list(feedback))]
    if o.rtx_pt is not None:
        codecs.append(sdp.Codec(o.rtx_pt, "rtx", 90000, 0, f"apt={c.pt}"))
    m = sdp.Media(o.kind, 9, PROTO, [str(x.pt) for x in codecs], mid=o.mid)
    m.codecs = codecs
    m.extmap = dict(o.extmap)
    if active:
        m.direction = "sendonly"
        m.msid = f"{o.stream_id} {o.track_id}"
        m.ssrcs[o.ssrc] = {"cname": o.stream_id, "msid": m.msid}
        if o.rtx_ssrc is not None:
            m.ssrcs[o.rtx_ssrc] = {"cname": o.stream_id, "msid": m.msid}
            m.ssrc_groups.append(("FID", [o.ssrc, o.rtx_ssrc]))
    else:
        m.direction = "inactive"
    _transport_lines(m, t)
    return m


class PayloadTypes:
    """A subscriber's payload-type and extension-ID numbering, learned from its own offers.

    Within one BUNDLE a payload type must mean one codec, so forwarded tracks reuse the
    numbers the subscriber chose and only pick free ones for what it never offered."""

    def __init__(self) -> None:
        self.codec_pt: dict[str, int] = {}
        self.rtx_pt: dict[int, int] = {}  # media pt -> rtx pt
        self.used: set[int] = set()
        self.ext_ids: dict[str, int] = {}

    def learn(self, desc: sdp.SessionDescription) -> None:
        for m in desc.media:
            for c in m.codecs:
                self.used.add(c.pt)
                if c.key == "rtx":
                    if c.apt is not None:
                        self.rtx_pt.setdefault(c.apt, c.pt)
                else:
                    self.codec_pt.setdefault(self._key(c), c.pt)
            for i, uri in m.extmap.items():
                self.ext_ids.setdefault(uri, i)

    @staticmethod
    def _key(c: sdp.Codec) -> str:
        if c.key == "h264":
            p = c.fmtp_params()
            return f"h264/{p.get('packetization-mode', '0')}/{p.get('profile-level-id', '')[:2]}"
        return c.key

    def _free(self, prefer: int) -> int:
        if prefer not in self.used:
            self.used.add(prefer)
            return prefer
        for pt in list(range(96, 128)) + list(range(35, 64)):
            if pt not in self.used:
                self.used.add(pt)
                return pt
        raise ValueError("no payload type left")

    def for_codec(self, codec: sdp.Codec, with_rtx: bool) -> tuple[int, int | None]:
        key = self._key(codec)
        pt = self.codec_pt.get(key)
        if pt is None:
            pt = self.codec_pt[key] = self._free(codec.pt)
        rtx = None
        if with_rtx:
            rtx = self.rtx_pt.get(pt)
            if rtx is None:
                rtx = self.rtx_pt[pt] = self._free(pt + 1)
        return pt, rtx

    def extmap_for(self, kind: str, publisher_extmap: dict[int, str]) -> dict[int, str]:
        out: dict[int, str] = {}
        taken = set(self.ext_ids.values())
        for pub_id, uri in sorted(publisher_extmap.items()):
            if uri not in FORWARDED_EXTENSIONS[kind]:
                continue
            ext_id = self.ext_ids.get(uri)
            if ext_id is None:
                ext_id = (
                    pub_id
                    if pub_id not in taken
                    else next(i for i in range(1, 15) if i not in taken)
                )
                self.ext_ids[uri] = ext_id
                taken.add(ext_id)
            out[ext_id] = uri
        return out
