"""DistributedPlane: calls routed to the meeting's owner over a real Redis bus.

Three planes in one process stand for three nodes: two with an SFU (a recording stand-in for
`SfuPlane`, since what is under test is the routing, not the forwarding) and one without (a
signaling-only node). The browser tests (test_distributed.py) cover the real SFU end to end.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from confer.bus.redis import RedisBus
from confer.errors import AppError, ValidationFailed
from confer.sfu import messages
from confer.sfu.distributed import ANNOUNCE_TTL, DistributedPlane, request_topic
from confer.sfu.placement import Placement
from confer.signaling.media import PeerRef
from tests.support.servers import Redis

MEETINGS = itertools.count(9100)


class RecordingSfu:
    """What a node's SfuPlane was asked to do; `refuse` makes `handle` fail like a bad SDP."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.peers: dict[int, dict[tuple[int, str], PeerRef]] = {}
        self.refuse: str | None = None
        self.crash = False
        self.captions = None

    def attach(self, sink: Any) -> None:
        self.sink = sink

    async def handle(self, peer: PeerRef, msg_type: int, payload: dict, *, can_publish: bool):
        if self.refuse:
            raise ValidationFailed(self.refuse)
        if self.crash:
            raise RuntimeError("a bug in the SFU")
        self.peers.setdefault(peer.meeting_id, {})[(peer.user_id, peer.peer_id)] = peer
        self.calls.append(("handle", peer.meeting_id, peer.user_id, msg_type, can_publish))

    async def peer_left(self, peer: PeerRef) -> None:
        self.peers.get(peer.meeting_id, {}).pop((peer.user_id, peer.peer_id), None)
        if not self.peers.get(peer.meeting_id):
            self.peers.pop(peer.meeting_id, None)
        self.calls.append(("peer_left", peer.meeting_id, peer.user_id))

    async def set_publish_allowed(self, meeting_id: int, user_id: int, media: str, allowed: bool):
        self.calls.append(("allowed", meeting_id, user_id, media, allowed))

    async def settings_changed(self, meeting_id: int) -> None:
        self.calls.append(("settings", meeting_id))

    async def meeting_ended(self, meeting_id: int) -> None:
        self.peers.pop(meeting_id, None)
        self.calls.append(("ended", meeting_id))

    async def close(self) -> None:
        pass


class Inbox:
    """A MediaSink that keeps what the plane sends to peers."""

    def __init__(self) -> None:
        self.sent: list[tuple[PeerRef, int, dict]] = []

    async def send(self, peer: PeerRef, msg_type: int, payload: dict) -> None:
        self.sent.append((peer, msg_type, payload))

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict) -> None:
        pass


class Node:
    def __init__(self, url: str, sfu: RecordingSfu | None) -> None:
        self.bus = RedisBus(url)
        self.sfu = sfu
        self.inbox = Inbox()
        self.plane = DistributedPlane(
            self.bus,
            Placement(url, ANNOUNCE_TTL),
            sfu,
            capacity=100,
            wants_captions=lambda _m: False,
        )
        self.plane.attach(self.inbox)

    async def start(self) -> Node:
        await self.bus.start()
        await self.plane.start()
        return self

    async def stop(self) -> None:
        await self.plane.close()
        await self.bus.close()


@pytest.fixture
async def cluster(redis_server: Redis) -> AsyncIterator[list[Node]]:
    url = redis_server.url.rsplit("/", 1)[0] + "/10"
    nodes = [await Node(url, RecordingSfu()).start(), await Node(url, None).start()]
    await nodes[0].plane.placement.redis.flushdb()
    await nodes[0].plane._announce()
    yield nodes
    for n in nodes:
        await n.stop()


def peer(meeting_id: int, user_id: int) -> PeerRef:
    return PeerRef(meeting_id, user_id, f"s{user_id}", f"p{user_id}")


async def test_a_node_without_an_sfu_runs_its_peers_calls_on_the_owner(
    cluster: list[Node],
) -> None:
    media, edge = cluster
    assert media.sfu is not None
    m = next(MEETINGS)
    await edge.plane.handle(peer(m, 1), messages.OFFER, {"sdp": "v=0"}, can_publish=True)
    await edge.plane.set_publish_allowed(m, 1, "audio", False)
    await edge.plane.settings_changed(m)
    await edge.plane.peer_left(peer(m, 1))
    assert media.sfu.calls == [
        ("handle", m, 1, messages.OFFER, True),
        ("allowed", m, 1, "audio", False),
        ("settings", m),
        ("peer_left", m, 1),
    ]
    assert await media.plane.placement.owner(m) is None  # released with its last peer


async def test_the_owners_refusal_reaches_the_caller_as_the_same_error(
    cluster: list[Node],
) -> None:
    media, edge = cluster
    assert media.sfu is not None
    media.sfu.refuse = "offer has no media sections"
    with pytest.raises(ValidationFailed, match="offer has no media sections"):
        await edge.plane.handle(peer(next(MEETINGS), 2), messages.OFFER, {}, can_publish=True)


async def test_types_that_are_not_for_the_sfu_are_refused_before_any_placement(
    cluster: list[Node],
) -> None:
    _, edge = cluster
    m = next(MEETINGS)
    with pytest.raises(ValidationFailed):
        await edge.plane.handle(peer(m, 3), messages.MEDIA_RESET, {}, can_publish=True)
    with pytest.raises(ValidationFailed):
        await edge.plane.handle(peer(m, 3), messages.OFFER, [], can_publish=True)  # type: ignore[arg-type]
    assert await edge.plane.placement.owner(m) is None


async def test_a_malformed_request_on_the_bus_is_answered_and_the_node_keeps_serving(
    cluster: list[Node],
) -> None:
    media, edge = cluster
    replies: list[dict] = []

    async def keep(body: dict) -> None:
        replies.append(body)

    unsubscribe = await edge.bus.subscribe("media-reply:prober", keep)
    try:
        topic = request_topic(media.plane.node)
        for junk in ({"op": "handle", "peer": {"meeting_id": "x"}}, {"op": "nonsense"}, {}):
            await edge.bus.publish(topic, {**junk, "rid": len(replies), "from": "prober"})
        for _ in range(50):
            if len(replies) == 3:
                break
            await asyncio.sleep(0.05)
        assert [r["error"]["status"] for r in replies] == [400, 400, 400]
    finally:
        await unsubscribe()
    await edge.plane.handle(peer(next(MEETINGS), 4), messages.OFFER, {}, can_publish=True)


async def test_when_the_owner_is_gone_its_meetings_move_and_their_peers_reset(
    cluster: list[Node], redis_server: Redis
) -> None:
    media, edge = cluster
    url = redis_server.url.rsplit("/", 1)[0] + "/10"
    m = next(MEETINGS)
    await edge.plane.handle(peer(m, 5), messages.OFFER, {}, can_publish=True)
    await edge.plane.set_publish_allowed(m, 5, "video", False)  # the host's decision
    spare = await Node(url, RecordingSfu()).start()
    try:
        await media.stop()  # its subscription ends, as a killed process's does
        await edge.plane.watch()
        assert edge.inbox.sent == []  # one reading without a subscriber is not yet death
        await edge.plane.watch()
        assert spare.sfu is not None
        assert ("allowed", m, 5, "video", False) in spare.sfu.calls  # it holds on the new owner
        assert [(p.user_id, t) for p, t, _ in edge.inbox.sent] == [(5, messages.MEDIA_RESET)]
        await edge.plane.watch()  # the new owner listens: nothing more happens
        assert len(edge.inbox.sent) == 1
        await edge.plane.handle(peer(m, 5), messages.OFFER, {}, can_publish=True)
        assert spare.sfu.calls[-1] == ("handle", m, 5, messages.OFFER, True)
    finally:
        await spare.stop()
        cluster.remove(media)


async def test_a_full_cluster_refuses_a_new_meeting_with_503(cluster: list[Node]) -> None:
    media, edge = cluster
    media.plane.capacity = 0  # what its heartbeats announce from now on
    await media.plane._announce()
    with pytest.raises(AppError) as refused:
        await edge.plane.handle(peer(next(MEETINGS), 6), messages.OFFER, {}, can_publish=True)
    assert refused.value.status == 503


async def test_an_unexpected_failure_on_the_owner_is_answered_at_once_with_503(
    cluster: list[Node],
) -> None:
    media, edge = cluster
    assert media.sfu is not None
    media.sfu.crash = True
    with pytest.raises(AppError) as failed:
        await asyncio.wait_for(
            edge.plane.handle(peer(next(MEETINGS), 7), messages.OFFER, {}, can_publish=True), 5
        )
    assert failed.value.status == 503  # not the caller's 15 s time-out


async def test_a_peer_that_moves_to_a_node_new_to_its_meeting_is_dropped_on_the_owner(
    cluster: list[Node], redis_server: Redis
) -> None:
    media, edge = cluster
    assert media.sfu is not None
    m = next(MEETINGS)
    await edge.plane.handle(peer(m, 8), messages.OFFER, {}, can_publish=True)
    other = await Node(redis_server.url.rsplit("/", 1)[0] + "/10", None).start()
    try:
        await other.plane.peer_moved(peer(m, 8))  # it never forwarded for this meeting
        assert media.sfu.calls[-1] == ("peer_left", m, 8)
        assert [t for _, t, _ in other.inbox.sent] == [messages.MEDIA_RESET]
    finally:
        await other.stop()


async def test_an_owner_whose_meeting_was_placed_elsewhere_gives_it_up(
    cluster: list[Node],
) -> None:
    """A stall or a Redis blip can make others re-place a live node's meeting: its next
    heartbeat sees it and resets its peers, so the meeting is never served twice."""
    media, edge = cluster
    assert media.sfu is not None
    m = next(MEETINGS)
    await edge.plane.handle(peer(m, 9), messages.OFFER, {}, can_publish=True)
    await media.plane.placement.redis.set(f"confer:media:meeting:{m}", "another-node")
    await media.plane._announce()
    assert m not in media.plane.owned
    assert media.sfu.calls[-1] == ("ended", m)
    assert [(p.user_id, t) for p, t, _ in media.inbox.sent] == [(9, messages.MEDIA_RESET)]
    # A call for it now names the new owner instead of being served here.
    assert (await media.plane._serve({"op": "settings", "meeting_id": m})) == {
        "moved": "another-node"
    }
