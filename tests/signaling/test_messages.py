"""Relay, chat, screen sharing and media control, with the role rules of the contract."""

from __future__ import annotations

from tests.signaling.support import Client, meeting
from tests.support.api import Api, ok
from tests.support.servers import ConferServer

SDP_SEND = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n"
SDP_RECV = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"


async def test_offers_to_the_sfu_without_a_media_plane_get_a_clear_error(
    tight_server: ConferServer, tapi: Api
) -> None:
    m = meeting(tapi, 0)  # this server runs with CONFER_SFU_ENABLED=false
    c = await Client.connect(tight_server, m.host, m.id)
    for to in (None, 0):
        msg = {"id": "o1", "type": 1, "payload": {"sdp": SDP_SEND, "type": "offer"}}
        if to is not None:
            msg["to_user_id"] = to
        err = await c.request(msg, 13)
        assert err["payload"]["code"] == 503 and "to_user_id" in err["payload"]["message"]
        assert err["payload"]["request_id"] == "o1"
    await c.close()


async def test_offers_without_to_user_id_go_to_the_media_plane(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 1)
    c = await Client.connect(sig, m.host, m.id)
    other = await Client.connect(sig, m.members[0], m.id)
    # Not a usable SDP: the SFU refuses it in the error format, and no user sees it.
    err = await c.request({"id": "o2", "type": 1, "payload": {"sdp": "v=0\r\n"}}, 13)
    assert err["payload"]["code"] == 400 and err["payload"]["request_id"] == "o2"
    await other.sync()
    assert await other.quiet(1)
    await c.close()
    await other.close()


async def test_relay_to_someone_not_in_the_room_is_404(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    c = await Client.connect(sig, m.host, m.id)
    err = await c.request(
        {
            "type": 3,
            "to_user_id": m.members[0].user_id,
            "payload": {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0},
        },
        13,
    )
    assert err["payload"]["code"] == 404
    await c.close()


async def test_forged_sender_ids_are_replaced_by_the_real_one(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    a = await Client.connect(sig, m.host, m.id)
    b = await Client.connect(sig, m.members[0], m.id)
    await a.send(
        {
            "type": 8,
            "from_user_id": m.members[0].user_id,
            "session_id": "x",
            "payload": {"content": "who am I", "user_id": 999, "username": "admin"},
        }
    )
    got = await b.next(8)
    assert got["from_user_id"] == m.host.user_id
    assert got["payload"]["user_id"] == m.host.user_id
    assert got["payload"]["username"] == "Host Person"
    await a.close()
    await b.close()


async def test_chat_is_stored_private_chat_is_private_and_html_is_only_text(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 2)
    host = await Client.connect(sig, m.host, m.id)
    one = await Client.connect(sig, m.members[0], m.id)
    two = await Client.connect(sig, m.members[1], m.id)
    evil = "<img src=x onerror=alert(1)> & <script>x</script>"
    await host.send({"type": 8, "payload": {"content": evil}})
    for c in (host, one, two):
        assert (await c.next(8))["payload"]["content"] == evil
    await one.send(
        {"type": 8, "to_user_id": m.members[1].user_id, "payload": {"content": "just for two"}}
    )
    got = await two.next(8)
    assert got["payload"]["private"] is True and got["to_user_id"] == m.members[1].user_id
    assert (await one.next(8))["payload"]["content"] == "just for two"  # the sender's echo
    await host.sync()
    assert await host.quiet(8)
    history = ok(sapi.get(m.path("/messages"), m.host))
    items = history.get("items") or history.get("messages") or []
    assert evil in [i["content"] for i in items]
    for c in (host, one, two):
        await c.close()


async def test_chat_must_be_a_non_empty_bounded_string(
    tight_server: ConferServer, tapi: Api
) -> None:
    m = meeting(tapi, 0)
    c = await Client.connect(tight_server, m.host, m.id)
    assert (await c.request({"type": 8, "payload": {"content": "  "}}, 13))["payload"][
        "code"
    ] == 400
    assert (await c.request({"type": 8, "payload": {"content": 5}}, 13))["payload"]["code"] == 400
    too_long = await c.request({"type": 8, "payload": {"content": "x" * 101}}, 13)
    assert too_long["payload"]["code"] == 413 and "100" in too_long["payload"]["message"]
    await c.close()


async def test_screen_share_rules(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 2)
    participant, audience = m.members
    ok(
        sapi.put(
            m.path(f"/participants/{m.pids[audience.user_id]}/role"),
            m.host,
            json={"role": "audience"},
        )
    )
    host = await Client.connect(sig, m.host, m.id)
    p = await Client.connect(sig, participant, m.id)
    a = await Client.connect(sig, audience, m.id)
    # Audience: never. Participant: not without the grant (required by default).
    assert (await a.request({"type": 9, "payload": {"action": "start"}}, 13))["payload"][
        "code"
    ] == 403
    assert (await p.request({"type": 9, "payload": {"action": "start"}}, 13))["payload"][
        "code"
    ] == 403
    # A participant cannot grant; the host can, and everyone hears it.
    denied = await p.request(
        {"type": 9, "payload": {"action": "grant", "user_id": audience.user_id}}, 13
    )
    assert denied["payload"]["code"] == 403
    await host.send({"type": 9, "payload": {"action": "grant", "user_id": participant.user_id}})
    assert (await p.next(9, action="grant"))["payload"]["user_id"] == participant.user_id
    await p.send({"type": 9, "payload": {"action": "start"}})
    started = await host.next(9, action="start")
    assert started["from_user_id"] == participant.user_id
    assert (await a.next(9, action="start"))["payload"]["user_id"] == participant.user_id
    # At most one sharer (the default): the host is refused while the participant shares.
    busy = await host.request({"type": 9, "payload": {"action": "start"}}, 13)
    assert busy["payload"]["code"] == 409
    # Revoking stops the running share.
    await host.send({"type": 9, "payload": {"action": "revoke", "user_id": participant.user_id}})
    stopped = await a.next(9, action="stop")
    assert stopped["payload"]["user_id"] == participant.user_id
    await host.send({"type": 9, "payload": {"action": "start"}})
    assert (await a.next(9, action="start"))["from_user_id"] == m.host.user_id
    for c in (host, p, a):
        await c.close()


async def test_media_control_self_others_everyone_and_audience(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 2)
    participant, audience = m.members
    ok(
        sapi.put(
            m.path(f"/participants/{m.pids[audience.user_id]}/role"),
            m.host,
            json={"role": "audience"},
        )
    )
    host = await Client.connect(sig, m.host, m.id)
    p = await Client.connect(sig, participant, m.id)
    a = await Client.connect(sig, audience, m.id)
    # Self: broadcast to the room.
    await p.send({"type": 10, "payload": {"action": "video_off", "media_type": "video"}})
    got = await host.next(10, action="video_off")
    assert got["payload"]["user_id"] == participant.user_id
    # A participant cannot mute someone else; the host can, and the target is told.
    denied = await p.request(
        {
            "type": 10,
            "payload": {"action": "mute", "media_type": "audio", "user_id": m.host.user_id},
        },
        13,
    )
    assert denied["payload"]["code"] == 403
    await host.send(
        {
            "type": 10,
            "payload": {"action": "mute", "media_type": "audio", "user_id": participant.user_id},
        }
    )
    told = await p.next(10, forced=True)
    assert told["payload"]["user_id"] == participant.user_id
    assert told["payload"]["by"] == m.host.user_id
    info = (await p.request({"type": 4}, 14))["payload"]
    me = next(x for x in info["participants"] if x["is_self"])
    assert me["audio_muted"] is True
    # Nobody turns on someone else's microphone.
    assert (
        await host.request(
            {
                "type": 10,
                "payload": {
                    "action": "unmute",
                    "media_type": "audio",
                    "user_id": participant.user_id,
                },
            },
            13,
        )
    )["payload"]["code"] == 403
    # Mute everyone: host only.
    assert (
        await p.request(
            {"type": 10, "payload": {"action": "mute", "media_type": "audio", "scope": "all"}}, 13
        )
    )["payload"]["code"] == 403
    await host.send(
        {"type": 10, "payload": {"action": "mute", "media_type": "audio", "scope": "all"}}
    )
    assert (await a.next(10, scope="all"))["payload"]["by"] == m.host.user_id
    # The audience cannot publish: no unmute, no sending offers.
    assert (
        await a.request({"type": 10, "payload": {"action": "unmute", "media_type": "audio"}}, 13)
    )["payload"]["code"] == 403
    refused = await a.request(
        {"type": 1, "to_user_id": m.host.user_id, "payload": {"sdp": SDP_SEND, "type": "offer"}}, 13
    )
    assert refused["payload"]["code"] == 403
    await a.send(
        {"type": 1, "to_user_id": m.host.user_id, "payload": {"sdp": SDP_RECV, "type": "offer"}}
    )
    assert (await host.next(1))["from_user_id"] == audience.user_id
    for c in (host, p, a):
        await c.close()


async def test_rest_host_actions_reach_the_sockets(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 2)
    one, two = m.members
    host = await Client.connect(sig, m.host, m.id)
    c1 = await Client.connect(sig, one, m.id)
    c2 = await Client.connect(sig, two, m.id)
    ok(
        sapi.put(
            m.path(f"/participants/{m.pids[two.user_id]}/role"), m.host, json={"role": "co_host"}
        )
    )
    changed = await c1.next(15)
    assert changed["payload"] == {"user_id": two.user_id, "role": "co_host", "by": m.host.user_id}
    ok(
        sapi.post(
            m.path(f"/participants/{m.pids[one.user_id]}/kick"), m.host, json={"reason": "spam"}
        )
    )
    kicked = await c1.next(16)
    assert kicked["payload"]["reason"] == "spam"
    code, reason = await c1.closed()
    assert code == 4006 and "spam" in reason
    left = await host.next(7)
    assert left["payload"] | {"reason": "kicked"} == left["payload"]
    ok(sapi.post(m.path("/end"), m.host))
    for c in (host, c2):
        assert (await c.next(17))["payload"]["meeting_id"] == m.id
        assert (await c.closed())[0] == 4005
