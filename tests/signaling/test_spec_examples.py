"""The spec's WebSocket examples (消息示例 1-7), sent verbatim, answered field by field.

Only the ids the spec could not know are replaced (meeting 100 and users 1 / 2 become the
real ones). The example sessions connect with the spec's own `peer_id` / `session_id`, and
the user "张三" is registered with that name, so the answers can be compared literally.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.signaling.support import Client, Meeting, meeting
from tests.support.api import Api, User
from tests.support.servers import ConferServer

STUN = "stun:stun.l.google.com:19302"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
ENVELOPE = {
    "id",
    "type",
    "from_user_id",
    "meeting_id",
    "session_id",
    "peer_id",
    "payload",
    "timestamp",
}


@pytest.fixture(scope="module")
def spec_server(server_factory: Callable[..., ConferServer]) -> ConferServer:
    return server_factory({"CONFER_STUN_SERVERS": STUN})


@pytest.fixture(scope="module")
def room(spec_server: ConferServer) -> tuple[Meeting, User, User]:
    api = Api(spec_server.url)
    m = meeting(api, 1)
    # The spec's user 1 is 张三 (its chat example shows that name).
    r = api.put("/api/v1/users/profile", m.host, json={"full_name": "张三"})
    assert r.status_code == 200, r.text
    return m, m.host, m.members[0]


def server_envelope(msg: dict[str, Any], msg_type: int, meeting_id: int) -> None:
    assert msg["type"] == msg_type
    assert isinstance(msg["id"], str) and msg["id"].startswith("msg_")
    assert ISO.match(msg["timestamp"]), msg["timestamp"]
    assert msg["meeting_id"] == meeting_id


async def test_join_room_is_answered_with_the_specs_room_info(
    spec_server: ConferServer, room: tuple[Meeting, User, User]
) -> None:
    m, one, two = room
    other = await Client.connect(
        spec_server, two, m.id, "peer_abc123", query={"session_id": "session_def456"}
    )
    me = await Client.connect(
        spec_server, one, m.id, "peer_xyz789", query={"session_id": "session_abc123"}
    )
    await other.next(6)
    sent = {
        "id": "msg_001",
        "type": 4,
        "from_user_id": 1,
        "meeting_id": m.id,
        "session_id": "session_abc123",
        "peer_id": "peer_xyz789",
        "payload": {"meeting_id": m.id, "user_id": one.user_id, "peer_id": "peer_xyz789"},
        "timestamp": "2025-10-01T10:00:00Z",
    }
    reply = await me.request(sent, 14)
    assert set(reply) == ENVELOPE
    server_envelope(reply, 14, m.id)
    assert reply["from_user_id"] == 0
    assert reply["session_id"] == "session_abc123" and reply["peer_id"] == "peer_xyz789"
    p = reply["payload"]
    assert p["meeting_id"] == m.id
    assert p["participant_count"] == 2
    assert p["session_id"] == "session_abc123" and p["peer_id"] == "peer_xyz789"
    assert p["ice_servers"] == [{"urls": STUN}]
    by_session = {x["session_id"]: x for x in p["participants"]}
    assert set(by_session) == {"session_abc123", "session_def456"}
    peer = by_session["session_def456"]
    assert peer["user_id"] == two.user_id and peer["username"] == two.username
    assert peer["peer_id"] == "peer_abc123" and peer["is_self"] is False
    assert ISO.match(peer["joined_at"]) and ISO.match(peer["last_active_at"])
    assert by_session["session_abc123"]["is_self"] is True
    # Joining twice duplicates nothing: the others heard of us once, the list is unchanged.
    again = await me.request(sent, 14)
    assert len(again["payload"]["participants"]) == 2
    await other.sync()
    assert await other.quiet(6)
    await me.close()
    await other.close()


async def test_offer_answer_and_ice_candidate_are_relayed_verbatim(
    spec_server: ConferServer, room: tuple[Meeting, User, User]
) -> None:
    m, one, two = room
    a = await Client.connect(
        spec_server, one, m.id, "peer_xyz789", query={"session_id": "session_abc123"}
    )
    b = await Client.connect(
        spec_server, two, m.id, "peer_abc123", query={"session_id": "session_def456"}
    )
    offer_payload = {"sdp": "v=0\r\no=- 123456789 2 IN IP4 127.0.0.1\r\n...", "type": "offer"}
    await a.send(
        {
            "id": "msg_003",
            "type": 1,
            "from_user_id": 1,
            "to_user_id": two.user_id,
            "meeting_id": m.id,
            "session_id": "session_abc123",
            "peer_id": "peer_xyz789",
            "payload": offer_payload,
            "timestamp": "2025-10-01T10:00:02Z",
        }
    )
    got = await b.next(1)
    assert set(got) == ENVELOPE | {"to_user_id"}
    server_envelope(got, 1, m.id)
    assert got["from_user_id"] == one.user_id and got["to_user_id"] == two.user_id
    assert got["session_id"] == "session_abc123" and got["peer_id"] == "peer_xyz789"
    assert got["payload"] == offer_payload

    answer_payload = {"sdp": "v=0\r\no=- 987654321 2 IN IP4 127.0.0.1\r\n...", "type": "answer"}
    await b.send(
        {
            "id": "msg_004",
            "type": 2,
            "from_user_id": 2,
            "to_user_id": one.user_id,
            "meeting_id": m.id,
            "session_id": "session_def456",
            "peer_id": "peer_abc123",
            "payload": answer_payload,
            "timestamp": "2025-10-01T10:00:03Z",
        }
    )
    got = await a.next(2)
    server_envelope(got, 2, m.id)
    assert got["from_user_id"] == two.user_id and got["to_user_id"] == one.user_id
    assert got["session_id"] == "session_def456" and got["peer_id"] == "peer_abc123"
    assert got["payload"] == answer_payload

    ice = {
        "candidate": "candidate:1 1 UDP 2130706431 192.168.1.100 54321 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await a.send(
        {
            "id": "msg_005",
            "type": 3,
            "from_user_id": 1,
            "to_user_id": two.user_id,
            "meeting_id": m.id,
            "session_id": "session_abc123",
            "peer_id": "peer_xyz789",
            "payload": ice,
            "timestamp": "2025-10-01T10:00:04Z",
        }
    )
    got = await b.next(3)
    server_envelope(got, 3, m.id)
    assert got["from_user_id"] == one.user_id and got["payload"] == ice
    await a.close()
    await b.close()


async def test_chat_example_reaches_everyone_with_the_server_set_sender(
    spec_server: ConferServer, room: tuple[Meeting, User, User]
) -> None:
    m, one, two = room
    a = await Client.connect(spec_server, one, m.id, "peer_xyz789")
    b = await Client.connect(spec_server, two, m.id, "peer_abc123")
    await a.send(
        {
            "id": "msg_006",
            "type": 8,
            "from_user_id": 1,
            "meeting_id": m.id,
            "session_id": "session_abc123",
            "payload": {"content": "大家好！", "user_id": 1, "username": "张三", "meeting_id": 100},
            "timestamp": "2025-10-01T10:00:05Z",
        }
    )
    for c in (a, b):
        got = await c.next(8)
        server_envelope(got, 8, m.id)
        assert got["from_user_id"] == one.user_id
        p = got["payload"]
        assert p["content"] == "大家好！"
        assert p["user_id"] == one.user_id
        assert p["username"] == "张三"
        assert p["meeting_id"] == m.id
    await a.close()
    await b.close()


async def test_media_control_example_is_broadcast_and_kept(
    spec_server: ConferServer, room: tuple[Meeting, User, User]
) -> None:
    m, one, two = room
    a = await Client.connect(spec_server, one, m.id, "peer_xyz789")
    b = await Client.connect(spec_server, two, m.id, "peer_abc123")
    await a.send(
        {
            "id": "msg_007",
            "type": 10,
            "from_user_id": 1,
            "meeting_id": m.id,
            "session_id": "session_abc123",
            "peer_id": "peer_xyz789",
            "payload": {
                "action": "mute",
                "media_type": "audio",
                "user_id": one.user_id,
                "peer_id": "peer_xyz789",
            },
            "timestamp": "2025-10-01T10:00:06Z",
        }
    )
    got = await b.next(10)
    server_envelope(got, 10, m.id)
    assert got["from_user_id"] == one.user_id
    p = got["payload"]
    assert (p["action"], p["media_type"], p["user_id"], p["peer_id"]) == (
        "mute",
        "audio",
        one.user_id,
        "peer_xyz789",
    )
    info = await b.request({"type": 4, "payload": {}}, 14)
    mine = [x for x in info["payload"]["participants"] if x["user_id"] == one.user_id]
    assert mine and all(x["audio_muted"] for x in mine)
    await a.close()
    await b.close()


async def test_ping_is_answered_with_the_specs_pong(
    spec_server: ConferServer, room: tuple[Meeting, User, User]
) -> None:
    m, one, _ = room
    a = await Client.connect(
        spec_server, one, m.id, "peer_xyz789", query={"session_id": "session_abc123"}
    )
    pong = await a.request(
        {
            "id": "msg_008",
            "type": 11,
            "from_user_id": 1,
            "meeting_id": m.id,
            "session_id": "session_abc123",
            "payload": {},
            "timestamp": "2025-10-01T10:00:07Z",
        },
        12,
    )
    server_envelope(pong, 12, m.id)
    assert pong["from_user_id"] == 0
    assert pong["session_id"] == "session_abc123"
    assert pong["payload"] == {}
    await a.close()
