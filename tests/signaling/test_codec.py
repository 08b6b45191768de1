"""Encodings: JSON by default, Protobuf by subprotocol, each broadcast encoded once."""

from __future__ import annotations

import orjson
import pytest
import websockets

from confer.signaling.codec import (
    JSON,
    PROTOBUF,
    PROTOBUF_SUBPROTOCOL,
    Outbound,
    negotiate,
)
from confer.signaling.proto.signaling_pb2 import Envelope
from confer.signaling.protocol import SignalError, message
from tests.signaling.support import meeting, ws_url
from tests.support.api import Api
from tests.support.servers import ConferServer


def test_negotiation_prefers_what_the_client_offers_first_and_defaults_to_json() -> None:
    assert negotiate([]) == (JSON, None)
    assert negotiate(["chat", PROTOBUF_SUBPROTOCOL]) == (PROTOBUF, PROTOBUF_SUBPROTOCOL)
    assert negotiate(["unknown"]) == (JSON, None)


def test_protobuf_round_trip_keeps_every_field_and_the_payload() -> None:
    msg = message(
        8,
        100,
        {"content": "大家好！", "n": [1, 2.5, None]},
        from_user_id=7,
        to_user_id=9,
        session_id="s1",
        peer_id="p1",
    )
    back = PROTOBUF.decode(PROTOBUF.encode(msg))
    assert back == msg


def test_a_broadcast_is_encoded_once_per_encoding() -> None:
    out = Outbound(message(8, 1, {"content": "x"}))
    assert out.wire(JSON) is out.wire(JSON)
    assert out.wire(PROTOBUF) is out.wire(PROTOBUF)


@pytest.mark.parametrize("data", [b"\xff\xff\xff", "text frame"])
def test_bad_protobuf_frames_are_400(data: bytes | str) -> None:
    with pytest.raises(SignalError) as info:
        PROTOBUF.decode(data)
    assert info.value.code == 400


def test_a_payload_that_is_not_json_is_400() -> None:
    with pytest.raises(SignalError):
        PROTOBUF.decode(Envelope(type=8, payload=b"{nope").SerializeToString())


async def test_protobuf_and_deflate_over_a_real_socket(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    url = ws_url(sig, m.host, m.id, "pb")
    async with websockets.connect(url, subprotocols=[PROTOBUF_SUBPROTOCOL]) as pb:
        assert pb.subprotocol == PROTOBUF_SUBPROTOCOL
        first = await pb.recv()
        assert isinstance(first, bytes)
        env = Envelope()
        env.ParseFromString(first)
        assert env.type == 14 and orjson.loads(env.payload)["meeting_id"] == m.id
        # A JSON client (offering permessage-deflate, as browsers do) in the same room.
        async with websockets.connect(ws_url(sig, m.members[0], m.id, "js")) as js:
            extensions = js.response.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in extensions
            assert orjson.loads(await js.recv())["type"] == 14
            await pb.send(
                Envelope(type=8, payload=orjson.dumps({"content": "hi"})).SerializeToString()
            )
            got = orjson.loads(await js.recv())
            assert got["type"] == 8 and got["payload"]["content"] == "hi"
            while True:
                env.ParseFromString(await pb.recv())
                if env.type == 8:
                    break
            assert orjson.loads(env.payload)["content"] == "hi"
            await pb.send("a text frame")
            env.ParseFromString(await pb.recv())
            assert env.type == 13 and orjson.loads(env.payload)["code"] == 400
