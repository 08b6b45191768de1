"""Two `confer serve` processes on one PostgreSQL and one Redis act as one signaling service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.signaling.support import Client, meeting
from tests.support.api import Api, ok
from tests.support.servers import ConferServer, Postgres, Redis

SECRET = "cluster-test-secret-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="module")
def pair(
    server_factory: Callable[..., ConferServer], postgres: Postgres, redis_server: Redis
) -> tuple[ConferServer, ConferServer]:
    env = {
        "CONFER_DATABASE_URL": postgres.create_database("confer_sig_cluster"),
        "CONFER_REDIS_URL": redis_server.url,
        "CONFER_SECRET_KEY": SECRET,
    }
    return server_factory(env), server_factory(env)


async def test_users_on_different_processes_see_each_other_chat_and_relay(
    pair: tuple[ConferServer, ConferServer],
) -> None:
    one, two = pair
    api = Api(one.url)
    m = meeting(api, 1)
    a = await Client.connect(one, m.host, m.id)
    b = await Client.connect(two, m.members[0], m.id)
    joined = await a.next(6)
    assert joined["payload"]["user_id"] == m.members[0].user_id
    info = (await b.request({"type": 4}, 14))["payload"]
    assert {p["user_id"] for p in info["participants"]} == {m.host.user_id, m.members[0].user_id}
    await b.send({"type": 8, "payload": {"content": "across processes"}})
    assert (await a.next(8))["payload"]["content"] == "across processes"
    offer = {"sdp": "v=0\r\na=sendrecv\r\n", "type": "offer"}
    await a.send({"type": 1, "to_user_id": m.members[0].user_id, "payload": offer})
    got = await b.next(1)
    assert got["from_user_id"] == m.host.user_id and got["payload"] == offer
    await b.send({"type": 5})
    assert (await a.next(7))["payload"]["reason"] == "left"
    await a.close()


async def test_a_kick_through_either_process_reaches_the_socket_on_the_other(
    pair: tuple[ConferServer, ConferServer],
) -> None:
    one, two = pair
    api_one, api_two = Api(one.url), Api(two.url)
    m = meeting(api_one, 2)
    host = await Client.connect(one, m.host, m.id)
    x = await Client.connect(two, m.members[0], m.id)
    y = await Client.connect(one, m.members[1], m.id)
    # Kick through process one: the socket is on process two.
    ok(
        api_one.post(
            m.path(f"/participants/{m.pids[m.members[0].user_id]}/kick"),
            m.host,
            json={"reason": "off topic"},
        )
    )
    assert (await x.next(16))["payload"]["reason"] == "off topic"
    assert (await x.closed())[0] == 4006
    assert (await host.next(7))["payload"]["reason"] == "kicked"
    # Kick through process two: the socket is on process one.
    ok(
        api_two.post(
            m.path(f"/participants/{m.pids[m.members[1].user_id]}/kick"),
            m.host,
            json={"reason": "bye"},
        )
    )
    assert (await y.closed())[0] == 4006
    await host.close()


async def test_a_session_resumes_on_the_other_process_without_flapping(
    pair: tuple[ConferServer, ConferServer],
) -> None:
    one, two = pair
    m = meeting(Api(one.url), 1)
    host = await Client.connect(one, m.host, m.id)
    first = await Client.connect(one, m.members[0], m.id, "roaming")
    session_id = (await host.next(6))["payload"]["session_id"]
    first.ws.transport.abort()
    again = await Client.connect(
        two, m.members[0], m.id, "roaming", first=None, query={"session_id": session_id}
    )
    info = await again.next(14)
    assert info["payload"]["resumed"] is True and info["payload"]["session_id"] == session_id
    await host.send({"type": 8, "to_user_id": m.members[0].user_id, "payload": {"content": "hi"}})
    assert (await again.next(8))["payload"]["content"] == "hi"
    await host.sync()
    assert await host.quiet(7) and await host.quiet(6)
    await again.close()
    await host.close()
