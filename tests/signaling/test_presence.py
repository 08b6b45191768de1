"""Rooms and presence: joins and leaves, several sessions per user, resume after a drop."""

from __future__ import annotations

import asyncio
import time

from tests.signaling.support import Client, meeting
from tests.support.api import Api, ok
from tests.support.servers import ConferServer


def participants(api: Api, m_path: str, user: object) -> dict[int, dict]:
    data = ok(api.get(m_path + "/participants?page_size=100", user))
    items = data.get("items") or data.get("participants") or []
    return {p["user_id"]: p for p in items}


async def test_join_announces_once_and_leave_room_closes_the_record(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 1)
    host = await Client.connect(sig, m.host, m.id)
    member = await Client.connect(sig, m.members[0], m.id)
    joined = await host.next(6)
    assert joined["payload"]["user_id"] == m.members[0].user_id
    assert joined["payload"]["participant_count"] == 2
    await member.send({"type": 5, "payload": {}})
    left = await host.next(7)
    assert left["payload"]["user_id"] == m.members[0].user_id
    assert left["payload"]["reason"] == "left"
    assert (await member.closed())[0] == 1000
    row = participants(sapi, m.path(), m.host)[m.members[0].user_id]
    assert row.get("state", "left") == "left"
    await host.close()


async def test_two_sessions_of_one_user_are_both_shown(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    user = m.members[0]
    tab1 = await Client.connect(sig, user, m.id, "tab1")
    tab2 = await Client.connect(sig, user, m.id, "tab2")
    host = await Client.connect(sig, m.host, m.id)
    info = (await host.request({"type": 4}, 14))["payload"]
    mine = sorted(p["peer_id"] for p in info["participants"] if p["user_id"] == user.user_id)
    assert mine == ["tab1", "tab2"]
    assert info["participant_count"] == 2  # people, not sockets
    # A message to the user reaches both of their sessions.
    await host.send({"type": 8, "to_user_id": user.user_id, "payload": {"content": "psst"}})
    assert (await tab1.next(8))["payload"]["content"] == "psst"
    assert (await tab2.next(8))["payload"]["content"] == "psst"
    # One tab leaving is one user-left for that session; the user is still in the room.
    await tab1.send({"type": 5})
    left = await host.next(7)
    assert left["payload"]["peer_id"] == "tab1"
    info = (await host.request({"type": 4}, 14))["payload"]
    assert [p["peer_id"] for p in info["participants"] if p["user_id"] == user.user_id] == ["tab2"]
    for c in (tab2, host):
        await c.close()


async def test_a_drop_and_reconnect_within_the_grace_resumes_without_flapping(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 1)
    host = await Client.connect(sig, m.host, m.id)
    first = await Client.connect(sig, m.members[0], m.id, "peer_resume")
    session_id = (await host.next(6))["payload"]["session_id"]
    first.ws.transport.abort()  # a network drop: no close frame
    again = await Client.connect(
        sig, m.members[0], m.id, "peer_resume", first=None, query={"session_id": session_id}
    )
    info = await again.next(14)
    assert info["payload"]["resumed"] is True
    assert info["payload"]["session_id"] == session_id
    await host.sync()
    assert await host.quiet(7) and await host.quiet(6)
    await again.close()
    await host.close()


async def test_after_the_grace_period_the_others_see_the_user_leave(
    tight_server: ConferServer, tapi: Api
) -> None:
    m = meeting(tapi, 1)
    host = await Client.connect(tight_server, m.host, m.id)
    member = await Client.connect(tight_server, m.members[0], m.id)
    await host.next(6)
    member.ws.transport.abort()
    left = await host.next(7)
    assert left["payload"]["user_id"] == m.members[0].user_id
    assert left["payload"]["reason"] == "timeout"
    await host.close()


async def test_media_state_and_activity_reach_the_rest_participants_list(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 1)
    member = m.members[0]
    before = participants(sapi, m.path(), m.host)[member.user_id]["last_active_at"]
    c = await Client.connect(sig, member, m.id)
    await c.send({"type": 10, "payload": {"action": "mute", "media_type": "audio"}})
    await c.sync()
    deadline = time.monotonic() + 20  # written in batches every few seconds
    while True:
        row = participants(sapi, m.path(), m.host)[member.user_id]
        if row["audio_muted"] and row["last_active_at"] >= before:
            break
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.5)
    await c.close()
