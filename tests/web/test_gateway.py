"""The contract's topology: nginx (Debian's) in front of two confer nodes sharing PostgreSQL and
Redis, over HTTPS with HTTP/2, rendered from deploy/nginx/confer.conf.

The story: three people join one meeting through the gateway; their sockets land on both
nodes (nginx spreads them) while the meeting's media lives on one node's SFU; each sees and
hears the two others. Then the node holding the media is killed with SIGKILL: the sockets it
held reconnect through nginx to the survivor, the meeting's media moves there, and everyone
sees and hears everyone again, with nobody gone from the people list.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import websockets.sync.client as ws_client
from deploy.local import nginx_conf, self_signed
from deploy.processes import Nginx
from playwright.sync_api import expect
from tests.api.test_media import upload
from tests.support.api import PASSWORD, Api, err, ok
from tests.support.servers import ConferServer, Postgres, Redis, cluster_env, free_port
from tests.web.client import Client
from tests.web.conftest import ClientFactory
from tests.web.png import lit_fraction
from tests.web.test_room import user_id

from confer.config import SERVICES
from confer.signaling.protocol import MsgType


@dataclass
class Gateway:
    url: str
    nodes: list[ConferServer]
    env: dict[str, str]
    run_dir: Path

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["CONFER_REDIS_URL"])


@pytest.fixture(scope="module")
def gateway(
    postgres: Postgres,
    redis_server: Redis,
    server_factory: Callable[..., ConferServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    env = {
        **cluster_env(postgres, redis_server, 7, "gateway"),
        "CONFER_FORWARDED_ALLOW_IPS": "127.0.0.1",  # nginx's address: trusted, nobody else
        "CONFER_WS_HEARTBEAT_INTERVAL": "2",
    }
    nodes = [server_factory(env), server_factory(env, ["--no-migrate"])]
    run_dir = tmp_path_factory.mktemp("nginx")
    cert, key = self_signed(run_dir)
    port = free_port()
    conf = nginx_conf(
        run_dir,
        https_port=port,
        http_port=free_port(),
        cert=cert,
        key=key,
        upstreams={s: [f"127.0.0.1:{n.port}" for n in nodes] for s in SERVICES},
    )
    nginx = Nginx(conf, run_dir, port).start()
    yield Gateway(f"https://127.0.0.1:{port}", nodes, env, run_dir)
    nginx.stop()


def test_http2_is_negotiated_through_the_gateway(gateway: Gateway) -> None:
    head = subprocess.run(
        ["curl", "-sk", "--http2", "-I", gateway.url + "/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert head.startswith("HTTP/2 200"), head


def test_every_contract_path_works_through_the_gateway(gateway: Gateway) -> None:
    """The contract's REST paths and its signaling socket, each routed to its service."""
    api = Api(gateway.url)
    try:
        user = api.register(full_name="Gao Wei")
        creds = {"username": user.username, "password": PASSWORD}
        login = ok(api.post("/api/v1/auth/login", json=creds))
        ok(api.post("/api/v1/users/login", json=creds))
        assert ok(api.get("/api/v1/users/profile", user))["user_id"] == user.user_id
        fresh = ok(api.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}))
        assert fresh["token"]
        m = ok(api.post("/api/v1/meetings", user, json={"title": "网关"}), 201)
        mid = m["meeting_id"]
        assert ok(api.get(f"/api/v1/meetings/{mid}", user))["meeting_id"] == mid
        assert ok(api.get("/api/v1/meetings", user))["total"] >= 1
        ok(api.get(f"/api/v1/meetings/code/{m['meeting_code']}", user))
        ok(api.post(f"/api/v1/meetings/{mid}/join", user, json={}))
        ok(api.get(f"/api/v1/meetings/{mid}/participants", user))
        ok(api.get(f"/api/v1/meetings/{mid}/messages", user))
        notes = b"minutes of the meeting\n"
        file_id = ok(upload(api, user, mid, "notes.txt", notes, ctype="text/plain"))["file_id"]
        assert api.get(f"/api/v1/media/files/{file_id}/download", user).content == notes
        ok(api.get(f"/api/v1/meetings/{mid}/files", user))
        ok(api.get("/api/v1/ai/status", user))
        ok(api.get(f"/api/v1/meetings/{mid}/transcript", user))

        url = gateway.url.replace("https", "wss") + "/ws/signaling"
        query = f"?token={user.token}&meeting_id={mid}&user_id={user.user_id}&peer_id=gw-peer"
        with ws_client.connect(url + query, ssl=_insecure(), open_timeout=10) as sock:
            info = json.loads(sock.recv(10))  # the hub admitted us through nginx
            assert info["type"] == MsgType.ROOM_INFO, info
        ok(api.post(f"/api/v1/meetings/{mid}/leave", user, json={}))
        err(api.get("/api/v1/no/such/path"), 404)
    finally:
        api.close()


def test_the_gateway_limits_a_flood_of_logins_in_the_contracts_envelope(gateway: Gateway) -> None:
    """60 logins at once from one address: the first reach the user service (401), the rest
    beyond nginx's burst are refused by nginx itself (429, the contract's envelope)."""
    with httpx.Client(base_url=gateway.url, verify=False, timeout=30) as http:

        def login(_: int) -> httpx.Response:
            return http.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 8})

        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(login, range(60)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    refused = next(r for r in answers if r.status_code == 429).json()
    assert refused["code"] == 429 and refused["error"]["type"] == "RateLimited"


def _insecure() -> object:
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def decoding_everyone(c: Client, others: int) -> bool:
    """The page's live connection decodes `others` videos and receives as many audio streams,
    and both keep advancing."""

    def sample() -> tuple[dict[str, int], dict[str, int]]:
        s = c.media_stats()
        video = {i["mid"]: i["frames"] for i in s["inbound"] if i["kind"] == "video"}
        audio = {i["mid"]: i["packets"] for i in s["inbound"] if i["kind"] == "audio"}
        return video, audio

    v1, a1 = sample()
    c.page.wait_for_timeout(700)
    v2, a2 = sample()
    moving_video = [m for m in v2 if v2[m] > v1.get(m, 0) > 0]
    moving_audio = [m for m in a2 if a2[m] > a1.get(m, 0) > 0]
    return len(moving_video) >= others and len(moving_audio) >= others


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.2)
    return time.monotonic() - start


def socket_nodes(gateway: Gateway, meeting_id: int) -> set[str]:
    raw = gateway.redis().hgetall(f"confer:sig:room:{meeting_id}")
    return {json.loads(v)["node"] for v in raw.values()}


def test_three_people_on_two_nodes_meet_through_nginx_and_survive_a_killed_node(
    clients: ClientFactory, gateway: Gateway
) -> None:
    host = clients("host", server=gateway)
    host.sign_up("Hanna Host")
    link = host.create_meeting("Across nodes", password=PASSWORD)
    host.page.click("#created-meeting button.primary")
    host.join_from_prejoin()
    people = [host]
    for name in ("Gus Guest", "Ida Invitee"):
        guest = clients(name.split()[0].lower(), server=gateway)
        guest.sign_up(name)
        guest.page.goto(link)
        guest.join_from_prejoin(PASSWORD)
        people.append(guest)
    for c in people:
        c.wait_for_people(3)
    meeting_id = meeting_titled(gateway, host, "Across nodes")
    assert len(socket_nodes(gateway, meeting_id)) == 2  # nginx spread the sockets
    for c in people:
        wait_for(lambda c=c: decoding_everyone(c, 2), timeout=40)
    ids = [user_id(c) for c in people]
    for c, uid in zip(people, ids, strict=True):
        for other in set(ids) - {uid}:
            assert lit_fraction(c.tile_screenshot(other)) > 0.5  # a picture, not black

    owner = gateway.redis().get(f"confer:media:meeting:{meeting_id}").decode()
    victim = next(n for n in gateway.nodes if n.proc is not None and f":{n.proc.pid}:" in owner)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    killed = time.monotonic()
    for c in people:
        try:
            # Generous for a loaded machine; the time it took is printed (and benchmarked).
            wait_for(lambda c=c: decoding_everyone(c, 2), timeout=45)
        except AssertionError:
            survivor = next(n for n in gateway.nodes if n is not victim)
            raise AssertionError(
                f"{c.name} got no media back: {c.media_stats()}\n"
                f"survivor's log:\n{survivor.log()[-6000:]}"
            ) from None
    print(f"media back for all three {time.monotonic() - killed:.1f} s after SIGKILL")
    new_owner = gateway.redis().get(f"confer:media:meeting:{meeting_id}").decode()
    assert new_owner != owner
    for c in people:
        c.wait_for_people(3)  # nobody lost from the roster
        expect(c.page.locator("#connection-banner")).to_be_hidden()


def meeting_titled(gateway: Gateway, c: Client, title: str) -> int:
    api = Api(gateway.url)
    try:
        assert c.user is not None
        items = ok(api.get("/api/v1/meetings", c.user))["meetings"]
    finally:
        api.close()
    return int(next(m["meeting_id"] for m in items if m["title"] == title))
