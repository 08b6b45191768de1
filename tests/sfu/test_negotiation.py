"""Negotiation with the SFU, in-process: a Room and load-test bots over real loopback ICE.

Covers what browsers rarely do on cue: offers that cross (glare), stale answers, candidates
before the offer, bad SDP, and the audience rule.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from confer.sfu import adapter, messages, rtp, sdp
from confer.sfu.bots import Bot, encoded_video
from confer.sfu.config import SfuConfig
from confer.sfu.peer import BadRequest
from confer.sfu.room import Room


class Wire:
    """The Room's outbox, collected per peer id."""

    def __init__(self) -> None:
        self.inbox: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def send(self, ref: dict[str, Any], msg_type: int, payload: dict[str, Any]) -> None:
        self.inbox.setdefault(ref["peer_id"], []).append((msg_type, payload))

    def take(self, peer: str, msg_type: int) -> list[dict[str, Any]]:
        got = [p for t, p in self.inbox.get(peer, []) if t == msg_type]
        self.inbox[peer] = [(t, p) for t, p in self.inbox.get(peer, []) if t != msg_type]
        return got


def ref(user: int, peer: str) -> dict[str, Any]:
    return {"meeting_id": 1, "user_id": user, "session_id": peer, "peer_id": peer}


async def eventually(cond: Any, tries: int = 300) -> Any:
    for _ in range(tries):
        value = cond()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition never met")


@pytest.fixture
async def room() -> Any:
    adapter.use_host_addresses(["127.0.0.1"])
    wire = Wire()
    r = Room(1, wire.send, lambda *a: None, SfuConfig(ice_addresses=["127.0.0.1"]))
    yield r, wire
    await r.close()
    adapter.use_host_addresses([])


async def join(r: Room, wire: Wire, bot: Bot, user: int, publish: bool = True) -> None:
    await r.handle(ref(user, bot.name), 1, {"type": "offer", "sdp": await bot.offer()}, publish)
    (answer,) = wire.take(bot.name, messages.ANSWER)
    bot.accept_answer(answer["sdp"])


async def test_crossing_offers_the_client_wins_and_the_sfu_offers_again(room: Any) -> None:
    r, wire = room
    pub, sub = Bot("pub", True, encoded_video()), Bot("sub", False)
    await join(r, wire, pub, 1)
    await join(r, wire, sub, 2)
    first = await eventually(lambda: wire.take("sub", messages.OFFER))
    assert {t["source"] for t in first[0]["tracks"]} == {"camera", "microphone"}
    # The client offers again before answering ours: glare. Its offer is answered...
    await r.handle(ref(2, "sub"), 1, {"type": "offer", "sdp": await sub_reoffer(sub)}, True)
    assert len(wire.take("sub", messages.ANSWER)) == 1
    # ...and the SFU, whose offer was dropped unapplied, makes it again.
    again = await eventually(lambda: wire.take("sub", messages.OFFER))
    answer = await sub.answer(again[-1]["sdp"], first=False)
    await r.handle(ref(2, "sub"), 2, {"type": "answer", "sdp": answer}, True)
    await eventually(lambda: sub.stats.first_frame is not None)
    await pub.close()
    await sub.close()


async def sub_reoffer(bot: Bot) -> str:
    """The same transport and m-lines again (what a client sends when it renegotiates)."""
    assert bot.transport is not None
    media = [bot._media("audio", "0", "recvonly"), bot._media("video", "1", "recvonly")]
    for m in media:
        m.setup = "actpass"
    return sdp.write(sdp.SessionDescription(media=media, bundle=["0", "1"]), 7, 2)


async def test_an_answer_without_a_pending_offer_is_ignored(room: Any) -> None:
    r, wire = room
    bot = Bot("lonely", True, encoded_video())
    await join(r, wire, bot, 1)
    await r.handle(ref(1, "lonely"), 2, {"type": "answer", "sdp": await sub_reoffer(bot)}, True)
    assert wire.inbox.get("lonely") == []
    await bot.close()


async def test_candidates_before_the_offer_are_kept_then_used(room: Any) -> None:
    r, _ = room
    for _ in range(3):
        await r.handle(ref(1, "early"), 3, {"candidate": "", "sdpMid": "0"}, True)
    peer = r.peers["1/early"]
    assert peer.early_candidates == [None, None, None]
    with pytest.raises(BadRequest, match="too many"):
        for _ in range(100):
            await r.handle(ref(1, "early"), 3, {"candidate": "", "sdpMid": "0"}, True)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "offer", "sdp": "hello"}, "invalid SDP"),
        ({"type": "answer", "sdp": "v=0\r\n"}, "SDP offer"),
        ({"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}, "invalid SDP"),
        ({"type": "offer", "sdp": 42}, "SDP offer"),
        ({"type": "offer", "sdp": "v=0\r\n"}, "ICE credentials"),
    ],
)
async def test_bad_offers_are_refused_with_a_reason(
    room: Any, payload: dict[str, Any], reason: str
) -> None:
    r, _ = room
    with pytest.raises(BadRequest, match=reason):
        await r.handle(ref(1, "bad"), 1, payload, True)


async def test_audience_offers_are_answered_inactive_and_nothing_is_forwarded(room: Any) -> None:
    r, wire = room
    viewer = Bot("viewer", True, encoded_video())
    await r.handle(ref(1, "viewer"), 1, {"type": "offer", "sdp": await viewer.offer()}, False)
    (answer,) = wire.take("viewer", messages.ANSWER)
    assert [m.direction for m in sdp.parse(answer["sdp"]).media] == ["inactive", "inactive"]
    assert r.peers["1/viewer"].uptracks == {}
    await viewer.close()


async def test_an_unknown_source_label_is_refused_before_anything_changes(room: Any) -> None:
    r, wire = room
    bot = Bot("labels", True, encoded_video())
    offer = {"type": "offer", "sdp": await bot.offer(), "sources": {"0": "microphone", "1": "tv"}}
    with pytest.raises(BadRequest, match="unknown source"):
        await r.handle(ref(1, "labels"), 1, offer, True)
    assert "1/labels" not in r.peers or r.peers["1/labels"].uptracks == {}
    assert wire.inbox.get("labels") is None
    await bot.close()


async def test_publishers_get_receiver_reports_and_a_bandwidth_estimate(room: Any) -> None:
    r, wire = room
    pub = Bot("reported", True, encoded_video())
    await join(r, wire, pub, 1)
    await eventually(lambda: pub.stats.connected_at)
    for _ in range(40):  # the worker's slow tick sends RR + REMB once a second
        r.tick_slow(asyncio.get_running_loop().time())
        if {pub.audio_ssrc, pub.video_ssrc} <= pub.stats.reported_ssrcs and pub.stats.remb:
            break
        await asyncio.sleep(0.1)
    assert {pub.audio_ssrc, pub.video_ssrc} <= pub.stats.reported_ssrcs
    assert pub.stats.remb is not None and pub.stats.remb >= 150_000
    await pub.close()


@pytest.mark.parametrize("kind", ["audio", "video"])  # audio: the audio-level lookup first
async def test_a_packet_whose_extensions_the_c_loop_refuses_is_dropped_quietly(
    room: Any, kind: str
) -> None:
    """rtp.parse checks the extension block; the C loop also checks each element in it. A
    packet that passes the first and fails the second is dropped, not raised per packet (the
    socket handler would log a traceback for each one a publisher sends)."""
    r, wire = room
    pub, sub = Bot("pub", True, encoded_video()), Bot("sub", False)
    await join(r, wire, pub, 1)
    await join(r, wire, sub, 2)
    offer = await eventually(lambda: wire.take("sub", messages.OFFER))
    answer = await sub.answer(offer[-1]["sdp"], first=False)
    await r.handle(ref(2, "sub"), 2, {"type": "answer", "sdp": answer}, True)
    await eventually(lambda: sub.stats.first_frame is not None)
    peer = r.peers["1/pub"]
    up = next(u for u in peer.uptracks.values() if u.kind == kind)
    layer = await eventually(
        lambda: next((x for x in up.layers if x.ssrc is not None and x.stats.received), None)
    )
    seq = (layer.stats._max_seq + 1) & 0xFFFF
    header = struct.pack("!BBHII", 0x90, up.pt, seq, 123456, layer.ssrc)
    bad = header + b"\xbe\xde\x00\x01" + b"\x25\x00\x00\x00" + b"data"  # id 2, 6 bytes: overruns
    rtp.parse(bad)  # the block itself is fine
    before = r.packets_out
    peer.on_rtp(bad)
    assert r.packets_out == before
    await pub.close()
    await sub.close()
