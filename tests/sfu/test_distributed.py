"""One meeting's media across nodes: sockets on any node, the media on one node's SFU.

Real `confer serve` processes share PostgreSQL and Redis (a database number of their own, so
no other test's nodes are candidates for placement); Chromium tabs run static/client.js, each
connected to the node the test picks.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.sfu.conftest import Client, spec_client, wait_until
from tests.sfu.test_browser import decoding, hearing
from tests.signaling.support import meeting, ws_url
from tests.support.api import Api, User
from tests.support.servers import ConferServer, Postgres, Redis, cluster_env


def owner_of(env: dict[str, str], meeting_id: int) -> str | None:
    raw = redis.Redis.from_url(env["CONFER_REDIS_URL"]).get(f"confer:media:meeting:{meeting_id}")
    return raw.decode() if raw else None


@pytest.fixture(scope="module")
def nodes(
    postgres: Postgres, redis_server: Redis, server_factory: Callable[..., ConferServer]
) -> tuple[dict[str, str], list[ConferServer]]:
    env = cluster_env(postgres, redis_server, 5, "two_nodes")
    first = server_factory(env)
    return env, [first, server_factory(env, ["--no-migrate"])]


@pytest.fixture
def join(browser: Any) -> Iterator[Callable[..., Client]]:
    contexts: list[Any] = []

    def join_(server: ConferServer, user: User, meeting_id: int, peer: str) -> Client:
        ctx = browser.new_context()
        contexts.append(ctx)
        return spec_client(ctx, server.url, ws_url(server, user, meeting_id, peer), meeting_id)

    yield join_
    for ctx in contexts:
        ctx.close()


def test_participants_on_two_nodes_see_and_hear_each_other_through_one_sfu(
    nodes: tuple[dict[str, str], list[ConferServer]], join: Callable[..., Client]
) -> None:
    env, (a, b) = nodes
    m = meeting(Api(a.url), n_members=2)
    users = [m.host, *m.members]
    on = [a, b, a]
    clients = {u.user_id: join(on[i], u, m.id, f"peer{i}") for i, u in enumerate(users)}
    ids = set(clients)
    for uid, c in clients.items():
        wait_until(lambda c=c, uid=uid: decoding(c, ids - {uid}), timeout=40)
        wait_until(lambda c=c, uid=uid: hearing(c, ids - {uid}))
    assert owner_of(env, m.id) is not None  # placed once, in Redis
    for c in clients.values():
        assert c.state("errors") == []


def test_the_host_on_one_node_mutes_a_participant_whose_media_is_on_the_other(
    nodes: tuple[dict[str, str], list[ConferServer]], join: Callable[..., Client]
) -> None:
    _, (a, b) = nodes
    m = meeting(Api(a.url), n_members=2)
    host, talker, listener = m.host, *m.members
    h = join(a, host, m.id, "host")
    t = join(b, talker, m.id, "talker")
    li = join(b, listener, m.id, "listener")
    wait_until(lambda: hearing(li, {talker.user_id, host.user_id}), timeout=40)
    h.page.evaluate(
        "p => sfu.send(10, p)", {"action": "mute", "media_type": "audio", "user_id": talker.user_id}
    )
    wait_until(lambda: not hearing(li, {talker.user_id}))
    assert hearing(li, {host.user_id})
    t.page.evaluate("p => sfu.send(10, p)", {"action": "unmute", "media_type": "audio"})
    wait_until(lambda: hearing(li, {talker.user_id}))


def test_when_the_node_holding_the_media_is_killed_media_moves_to_another(
    postgres: Postgres,
    redis_server: Redis,
    server_factory: Callable[..., ConferServer],
    join: Callable[..., Client],
) -> None:
    """Sockets on a signaling node, media on one of two media-only nodes; SIGKILL the one
    that holds the meeting and everyone's media comes back on the other."""
    env = cluster_env(postgres, redis_server, 6, "media_nodes")
    edge = server_factory(env, ["--only", "user,meeting,signaling"])
    media = [server_factory(env, ["--only", "media", "--no-migrate"]) for _ in range(2)]
    m = meeting(Api(edge.url), n_members=1)
    users = [m.host, *m.members]
    clients = {u.user_id: join(edge, u, m.id, f"peer{i}") for i, u in enumerate(users)}
    ids = set(clients)
    for uid, c in clients.items():
        wait_until(lambda c=c, uid=uid: decoding(c, ids - {uid}), timeout=40)
    first = owner_of(env, m.id)
    assert first is not None
    victim = next(s for s in media if s.proc is not None and f":{s.proc.pid}:" in first)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    for uid, c in clients.items():
        wait_until(lambda c=c, uid=uid: c.state("resets") > 0, timeout=15)
        wait_until(lambda c=c, uid=uid: decoding(c, ids - {uid}), timeout=30)
    back = time.monotonic() - killed
    print(f"media back on every client {back:.1f} s after the SIGKILL")
    assert owner_of(env, m.id) not in (None, first)


def test_two_workers_of_one_server_are_two_nodes_of_one_meeting(
    postgres: Postgres,
    redis_server: Redis,
    server_factory: Callable[..., ConferServer],
    browser: Any,
) -> None:
    """`--workers 2`: the kernel spreads sockets over the workers, media meets on one SFU."""
    env = cluster_env(postgres, redis_server, 8, "two_workers_media")
    server = server_factory(env, ["--workers", "2"])
    m = meeting(Api(server.url), n_members=1)
    host, guest = m.host, m.members[0]
    presence = redis.Redis.from_url(env["CONFER_REDIS_URL"])

    def node_of(peer: str) -> str | None:
        entries = [json.loads(e) for e in presence.hgetall(f"confer:sig:room:{m.id}").values()]
        return next((e["node"] for e in entries if e["peer_id"] == peer), None)

    def open_tab(user: User, peer: str) -> tuple[Any, Client]:
        ctx = browser.new_context()
        return ctx, spec_client(ctx, server.url, ws_url(server, user, m.id, peer), m.id)

    contexts = []
    try:
        ctx, h = open_tab(host, "host")
        contexts.append(ctx)
        here = wait_until(lambda: node_of("host"))
        for attempt in range(12):  # each new connection lands on a worker by its port's hash
            ctx, g = open_tab(guest, f"guest{attempt}")
            contexts.append(ctx)
            if wait_until(lambda attempt=attempt: node_of(f"guest{attempt}")) != here:
                break
            ctx.close()  # (a left participant would have to join over REST again)
            contexts.pop()
        else:
            pytest.fail("twelve connections in a row landed on the host's worker")
        wait_until(lambda: decoding(g, {host.user_id}), timeout=40)
        wait_until(lambda: decoding(h, {guest.user_id}), timeout=40)
        wait_until(lambda: hearing(h, {guest.user_id}))
    finally:
        for ctx in contexts:
            ctx.close()
