"""Who may open `/ws/signaling`: refusals say why in an error (13) and a 4xxx close code."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import orjson
import websockets

from tests.signaling.support import Client, meeting, register, ws_url
from tests.support.api import Api, User, ok
from tests.support.servers import ConferServer


async def refused(url: str) -> tuple[dict, int, str]:
    async with websockets.connect(url) as ws:
        error = orjson.loads(await ws.recv())
        try:
            await ws.recv()
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return error, exc.rcvd.code, exc.rcvd.reason
    raise AssertionError("not closed")


def forged(user: User, **claims: object) -> str:
    body = jwt.decode(user.token, options={"verify_signature": False})
    return jwt.encode({**body, **claims}, "not-the-server-secret-at-all-0123456789", "HS256")


async def test_a_bad_token_is_10004_and_close_4001(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 0)
    url = ws_url(sig, m.host, m.id, "p1").replace(m.host.token, forged(m.host))
    error, code, _ = await refused(url)
    assert error["type"] == 13 and error["payload"]["code"] == 10004
    assert error["payload"]["message"]
    assert code == 4001


async def test_an_expired_token_is_10005_and_close_4002(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 0)
    secret = (sig.data_dir / "secret.key").read_text().strip()
    body = jwt.decode(m.host.token, options={"verify_signature": False})
    old = int(time.time()) - 3600
    token = jwt.encode({**body, "iat": old - 60, "nbf": old - 60, "exp": old}, secret, "HS256")
    error, code, _ = await refused(ws_url(sig, m.host, m.id, "p1").replace(m.host.token, token))
    assert error["payload"]["code"] == 10005 and code == 4002


async def test_user_id_must_be_the_tokens_user(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    other = m.members[0]
    url = ws_url(sig, m.host, m.id, "p1").replace(
        f"user_id={m.host.user_id}", f"user_id={other.user_id}"
    )
    error, code, _ = await refused(url)
    assert error["payload"]["code"] == 403 and code == 4003


async def test_unknown_meeting_is_20001_and_close_4004(sig: ConferServer, sapi: Api) -> None:
    user = register(sapi)
    error, code, _ = await refused(ws_url(sig, user, 987654321, "p1"))
    assert error["payload"]["code"] == 20001 and code == 4004


async def test_ended_meeting_is_20002_and_close_4005(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 1)
    ok(sapi.post(m.path("/end"), m.host))
    error, code, _ = await refused(ws_url(sig, m.members[0], m.id, "p1"))
    assert error["payload"]["code"] == 20002 and code == 4005


async def test_users_who_did_not_join_over_rest_are_refused(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 0)
    stranger = register(sapi)
    error, code, _ = await refused(ws_url(sig, stranger, m.id, "p1"))
    assert error["payload"]["code"] == 403 and "join" in error["payload"]["message"].lower()
    assert code == 4003


async def test_missing_query_parameters_are_400_and_close_4000(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 0)
    url = ws_url(sig, m.host, m.id, "p1").replace("&peer_id=p1", "")
    error, code, _ = await refused(url)
    assert error["payload"]["code"] == 400 and "peer_id" in error["payload"]["message"]
    assert code == 4000


async def test_the_host_may_open_the_room_without_a_rest_join(sig: ConferServer, sapi: Api) -> None:
    host = register(sapi)
    data = ok(sapi.post("/api/v1/meetings", host, json={"title": "no join"}), 201)
    c = await Client.connect(sig, host, int(data["meeting_id"]), first=None)
    info = await c.next(14)
    assert info["payload"]["role"] == "host"
    assert [p["user_id"] for p in info["payload"]["participants"]] == [host.user_id]
    await c.close()


async def test_the_session_token_from_join_is_accepted(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 0)
    user = register(sapi)
    joined = ok(sapi.post(m.path("/join"), user, json={}))
    url = ws_url(sig, user, m.id, "p1").replace(user.token, joined["session_token"])
    async with websockets.connect(url) as ws:
        assert orjson.loads(await ws.recv())["type"] == 14


async def test_connection_attempts_are_rate_limited_per_client_address(
    server_factory: Callable[..., ConferServer],
) -> None:
    srv = server_factory({"CONFER_WS_CONNECT_RATE": "0.2", "CONFER_WS_CONNECT_BURST": "3"})
    m = meeting(Api(srv.url), 0)
    for i in range(3):
        c = await Client.connect(srv, m.host, m.id, f"p{i}")
        await c.close()
    error, code, _ = await refused(ws_url(srv, m.host, m.id, "p4"))
    assert error["payload"]["code"] == 429 and code == 4029


async def test_tokens_in_the_query_string_stay_out_of_the_server_log(
    sig: ConferServer, sapi: Api
) -> None:
    m = meeting(sapi, 0)
    c = await Client.connect(sig, m.host, m.id)
    await c.close()
    log = sig.log()
    assert "/ws/signaling?token=[redacted]" in log
    assert m.host.token not in log
