"""End to end: Chromium tabs join a meeting over REST and `/ws/signaling`, media via the SFU.

A real `confer serve` (SQLite) with its SFU worker; the tabs run static/client.js, which
speaks the spec's envelope with `to_user_id` 0 for the SFU.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.sfu.conftest import Client, spec_client, wait_until
from tests.sfu.test_browser import audio_received, decoding, hearing
from tests.signaling.support import meeting, ws_url
from tests.support.api import Api, User
from tests.support.servers import ConferServer


@pytest.fixture(scope="module")
def confer(server_factory: Callable[..., ConferServer]) -> ConferServer:
    return server_factory({"CONFER_SFU_ICE_ADDRESSES": "127.0.0.1", "CONFER_SFU_WORKERS": "1"})


@pytest.fixture
def rest(confer: ConferServer) -> Iterator[Api]:
    api = Api(confer.url)
    yield api
    api.close()


@pytest.fixture
def join(browser: Any, confer: ConferServer) -> Iterator[Callable[..., Client]]:
    contexts: list[Any] = []

    def join_(user: User, meeting_id: int, peer: str, **opts: Any) -> Client:
        ctx = browser.new_context()
        contexts.append(ctx)
        return spec_client(
            ctx, confer.url, ws_url(confer, user, meeting_id, peer), meeting_id, **opts
        )

    yield join_
    for ctx in contexts:
        ctx.close()


def test_three_participants_exchange_media_through_the_spec_signaling(
    rest: Api, join: Callable[..., Client]
) -> None:
    m = meeting(rest, n_members=2)
    users = [m.host, *m.members]
    clients = {u.user_id: join(u, m.id, f"peer{i}") for i, u in enumerate(users)}
    ids = set(clients)
    for uid, c in clients.items():
        wait_until(lambda c=c, uid=uid: decoding(c, ids - {uid}), timeout=40)
        wait_until(lambda c=c, uid=uid: hearing(c, ids - {uid}))
    # The SFU's extension type 31 passes the hub (registered by sfu.install) and is accepted.
    first = next(iter(clients.values()))
    mids = [mid for mid, t in first.state("tracks").items() if t["kind"] == "video"]
    first.page.evaluate(
        "items => sfu.constrain(items)", [{"mid": m, "width": 320, "height": 180} for m in mids]
    )
    first.page.wait_for_timeout(1000)
    for c in clients.values():
        assert c.state("errors") == []


def test_host_mute_over_media_control_stops_that_audio_in_the_sfu(
    rest: Api, join: Callable[..., Client]
) -> None:
    m = meeting(rest, n_members=2)
    host, talker, listener = m.host, *m.members
    h = join(host, m.id, "host")
    t = join(talker, m.id, "talker")
    li = join(listener, m.id, "listener")
    wait_until(lambda: hearing(li, {talker.user_id, host.user_id}), timeout=40)
    mute = {"action": "mute", "media_type": "audio", "user_id": talker.user_id}
    h.page.evaluate("p => sfu.send(10, p)", mute)
    wait_until(lambda: not hearing(li, {talker.user_id}))  # the mute travels hub -> SFU
    held = audio_received(li)[talker.user_id]
    li.page.wait_for_timeout(1500)
    assert audio_received(li)[talker.user_id] == held
    assert hearing(li, {host.user_id})
    # Hosts may mute others; only the participant unmutes itself (the hub's rule).
    t.page.evaluate("p => sfu.send(10, p)", {"action": "unmute", "media_type": "audio"})
    wait_until(lambda: hearing(li, {talker.user_id}))
    assert json.dumps(li.state("errors")) == "[]"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """coturn on loopback with deploy/coturn/turnserver.conf (TURN REST API credentials)."""
    from deploy.local import coturn_conf
    from deploy.processes import Coturn

    from tests.support.servers import free_port

    run_dir = tmp_path_factory.mktemp("coturn")
    port, secret = free_port(), "confer-turn-test-secret"
    # The shipped file refuses private peers; the test's peers are on loopback.
    conf = coturn_conf(run_dir, port=port, secret=secret, extra="allow-loopback-peers")
    turn = Coturn(conf, run_dir, port).start()
    try:
        yield port, secret
    finally:
        turn.stop()


def test_relay_only_clients_reach_the_sfu_through_coturn_with_the_join_apis_servers(
    server_factory: Callable[..., ConferServer], browser: Any, coturn: tuple[int, str]
) -> None:
    port, secret = coturn
    server = server_factory({
        "CONFER_SFU_ICE_ADDRESSES": "127.0.0.1", "CONFER_SFU_WORKERS": "1",
        "CONFER_TURN_URLS": f"turn:127.0.0.1:{port}?transport=udp",
        "CONFER_TURN_SECRET": secret,
    })  # fmt: skip
    api = Api(server.url)
    m = meeting(api, n_members=1)
    clients = []
    for i, user in enumerate((m.host, *m.members)):
        joined = api.post(m.path("/join"), user, json={}).json()["data"]
        servers = [s for s in joined["ice_servers"] if s["urls"].startswith("turn:")]
        assert servers and servers[0]["username"] and servers[0]["credential"]
        ctx = browser.new_context()
        url = ws_url(server, user, m.id, f"relay{i}")
        c = spec_client(ctx, server.url, url, m.id, iceServers=servers, relayOnly=True)
        clients.append((user, c, ctx))
    try:
        (host, a, _), (member, b, _) = clients
        wait_until(lambda: decoding(a, {member.user_id}) and decoding(b, {host.user_id}), 40)
        for _, c, _ in clients:
            pair = wait_until(lambda c=c: c.stats().get("pair"))
            assert pair["local"] == "relay"
    finally:
        for _, _, ctx in clients:
            ctx.close()
        api.close()
