"""The contract's services: all in one process by default, any subset with `--only`, each
alone on its contract port, and never a split that would cut a meeting in two."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from confer.config import SERVICES, Settings, port_for
from tests.support.api import Api, ok
from tests.support.servers import ConferServer, Postgres, Redis, cluster_env
from tests.test_cli import confer


def test_each_service_alone_takes_its_contract_port_and_several_share_8000() -> None:
    assert {s: port_for([s]) for s in SERVICES} == {
        "user": 8080,
        "signaling": 8081,
        "meeting": 8082,
        "media": 8083,
        "ai": 8084,
    }
    assert port_for(list(SERVICES)) == port_for(["user", "meeting"]) == 8000


def test_all_means_every_service_and_names_are_checked() -> None:
    assert Settings(services=["all"]).services == list(SERVICES)
    assert Settings(services=["ai", "user"]).services == ["user", "ai"]  # the contract's order
    with pytest.raises(ValueError, match="unknown services"):
        Settings(services=["user", "mail"])
    with pytest.raises(ValueError, match="not built yet"):
        Settings(services=["notification"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "2"], "--workers 2 needs CONFER_REDIS_URL"),
        (["--only", "signaling"], "--only signaling needs CONFER_REDIS_URL"),
        (["--only", "notification"], "not built yet"),
        (["--only", "user,bogus"], "unknown services"),
    ],
)
def test_what_cannot_work_refuses_to_start_and_says_why(
    args: list[str], says: str, tmp_path: object
) -> None:
    r = confer("serve", "--data-dir", str(tmp_path), "--port", "0", *args)
    assert r.returncode == 2
    assert says in r.stderr, r.stderr


@pytest.fixture(scope="module")
def split(
    postgres: Postgres, redis_server: Redis, server_factory: Callable[..., ConferServer]
) -> dict[str, ConferServer]:
    env = cluster_env(postgres, redis_server, 13, "split_services")
    first = server_factory(env, ["--only", "user"])
    return {
        "user": first,
        "meeting": server_factory(env, ["--only", "meeting", "--no-migrate"]),
        "signaling": server_factory(env, ["--only", "signaling", "--no-migrate"]),
    }


def test_a_process_serves_only_the_routes_of_its_services(split: dict[str, ConferServer]) -> None:
    user_api, meeting_api = Api(split["user"].url), Api(split["meeting"].url)
    try:
        person = user_api.register()  # the user service registers and logs in
        assert ok(user_api.get("/api/v1/users/profile", person))["user_id"] == person.user_id
        assert user_api.get("/api/v1/meetings", person).status_code == 404
        # The meeting service reads the same database, and serves the web client.
        created = meeting_api.post("/api/v1/meetings", person, json={"title": "split"})
        assert created.status_code == 201, created.text
        assert meeting_api.post("/api/v1/auth/login", json={}).status_code == 404
        assert httpx.get(split["meeting"].url + "/").status_code == 200
        assert httpx.get(split["user"].url + "/").status_code == 404
        for srv in split.values():
            assert httpx.get(srv.url + "/health").status_code == 200
        # Only the signaling service holds sockets.
        mid = created.json()["data"]["meeting_id"]
        ok(meeting_api.post(f"/api/v1/meetings/{mid}/join", person, json={}))
        q = f"?token={person.token}&meeting_id={mid}&user_id={person.user_id}&peer_id=split"
        with ws_client.connect(split["signaling"].ws_url + q, open_timeout=10) as sock:
            assert '"type":14' in str(sock.recv(10)).replace(" ", "")
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(split["meeting"].ws_url + q, open_timeout=10)
        assert refused.value.response.status_code in (403, 404)
    finally:
        user_api.close()
        meeting_api.close()
