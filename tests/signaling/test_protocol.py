"""The envelope parser and payload validators (pure functions, no server)."""

from __future__ import annotations

import pytest

from confer.signaling import protocol as p
from confer.signaling.protocol import MsgType, SignalError


def parse(env: object, meeting_id: int = 100) -> p.Inbound:
    return p.parse(env, meeting_id)


def code_of(env: object) -> int:
    with pytest.raises(SignalError) as info:
        parse(env)
    return info.value.code


def test_the_specs_join_room_parses_and_identity_claims_are_ignored() -> None:
    msg = parse(
        {
            "id": "msg_001",
            "type": 4,
            "from_user_id": 1,
            "meeting_id": 100,
            "session_id": "session_abc123",
            "peer_id": "peer_xyz789",
            "payload": {"meeting_id": 100, "user_id": 1, "peer_id": "peer_xyz789"},
            "timestamp": "2025-10-01T10:00:00Z",
        }
    )
    assert (msg.type, msg.id, msg.to_user_id) == (4, "msg_001", 0)
    assert not hasattr(msg, "from_user_id")


@pytest.mark.parametrize(
    "env",
    [
        [],
        "x",
        {},
        {"type": "4"},
        {"type": True},
        {"type": 99},
        {"type": 14},  # server-only
        {"type": 13},
        {"type": 11, "payload": []},
        {"type": 11, "to_user_id": -1},
        {"type": 11, "to_user_id": "2"},
        {"type": 11, "meeting_id": 101},
        {"type": 11, "id": 5},
        {"type": 11, "id": "x" * 200},
        {"type": 11, "from_user_id": "1"},
    ],
)
def test_malformed_envelopes_are_400(env: object) -> None:
    assert code_of(env) == 400


def test_server_only_types_are_named_as_such() -> None:
    with pytest.raises(SignalError, match="server only"):
        parse({"type": MsgType.ROOM_INFO})


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ({"sdp": "v=0", "type": "offer"}, True),
        ({"sdp": "v=0"}, True),
        ({"sdp": "", "type": "offer"}, False),
        ({"sdp": "v=0", "type": "answer"}, False),
        ({"sdp": 5}, False),
        ({"sdp": "x" * (p.MAX_SDP_LENGTH + 1)}, False),
    ],
)
def test_offer_payloads(payload: dict, ok: bool) -> None:
    msg = parse({"type": 1, "payload": payload})
    if ok:
        assert p.sdp_payload(msg)["type"] == "offer"
    else:
        with pytest.raises(SignalError):
            p.sdp_payload(msg)


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        (
            {
                "candidate": "candidate:1 1 UDP 1 1.2.3.4 5 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
            True,
        ),
        ({"candidate": "", "sdpMid": None, "sdpMLineIndex": None}, True),
        ({"candidate": "c", "sdpMid": None, "sdpMLineIndex": None}, False),
        ({"candidate": "c", "sdpMLineIndex": True}, False),
        ({"candidate": "c", "sdpMLineIndex": 5000}, False),
        ({"sdpMid": "0"}, False),
    ],
)
def test_candidate_payloads(payload: dict, ok: bool) -> None:
    msg = parse({"type": 3, "payload": payload})
    if ok:
        p.candidate_payload(msg)
    else:
        with pytest.raises(SignalError):
            p.candidate_payload(msg)


def test_chat_content_is_cleaned_and_bounded() -> None:
    msg = parse({"type": 8, "payload": {"content": " hi\x00\x07 there\n "}})
    assert p.chat_content(msg, 100) == "hi there"
    with pytest.raises(SignalError) as info:
        p.chat_content(parse({"type": 8, "payload": {"content": "x" * 11}}), 10)
    assert info.value.code == 413
    for bad in ({"content": ""}, {"content": None}, {}):
        with pytest.raises(SignalError):
            p.chat_content(parse({"type": 8, "payload": bad}), 10)


def test_media_control_normalises_the_specs_actions() -> None:
    mc = p.media_control(parse({"type": 10, "payload": {"action": "video_off"}}), 1)
    assert (mc.action, mc.media_type, mc.target_user_id, mc.everyone) == (
        "mute",
        "video",
        None,
        False,
    )
    mc = p.media_control(
        parse({"type": 10, "payload": {"action": "mute", "media_type": "audio", "user_id": 1}}), 1
    )
    assert mc.target_user_id is None  # naming yourself is self
    mc = p.media_control(parse({"type": 10, "payload": {"action": "mute", "scope": "all"}}), 1)
    assert mc.everyone
    for bad in (
        {"action": "explode"},
        {"action": "video_on", "media_type": "audio"},
        {"action": "unmute", "scope": "all"},
        {"action": "mute", "user_id": "2"},
    ):
        with pytest.raises(SignalError):
            p.media_control(parse({"type": 10, "payload": bad}), 1)


def test_screen_share_actions() -> None:
    assert p.screen_share(parse({"type": 9, "payload": {"action": "start"}}), 1) == ("start", None)
    assert p.screen_share(parse({"type": 9, "payload": {"action": "grant", "user_id": 2}}), 1) == (
        "grant",
        2,
    )
    with pytest.raises(SignalError):
        p.screen_share(parse({"type": 9, "payload": {"action": "grant"}}), 1)
    with pytest.raises(SignalError) as info:
        p.screen_share(parse({"type": 9, "payload": {"action": "start", "user_id": 2}}), 1)
    assert info.value.code == 403


def test_server_messages_carry_fresh_ids_and_timestamps() -> None:
    a = p.message(MsgType.PONG, 100, {}, session_id="s")
    b = p.message(MsgType.PONG, 100, {}, session_id="s")
    assert a["id"] != b["id"] and a["id"].startswith("msg_")
    assert a["timestamp"].endswith("Z") and a["from_user_id"] == 0
    assert "to_user_id" not in a and p.message(1, 1, {}, to_user_id=2)["to_user_id"] == 2
