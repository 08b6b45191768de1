"""Host actions reach the signaling hub: each is published on the meeting's bus topic (seen here
from Redis, as a hub on another node would see it) and written to the audit log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.meetings_support import (
    BusListener,
    Cast,
    ServerDb,
    cast,
    configured_server,
    create_meeting,
    join,
    register,
)
from tests.support.api import Api, ok
from tests.support.servers import ConferServer, Redis


@pytest.fixture(scope="module")
def configured(server_factory: Callable[..., ConferServer], redis_server: Redis) -> ConferServer:
    return configured_server(server_factory, redis_server)


@pytest.fixture
def capi(configured: ConferServer) -> Iterator[Api]:
    client = Api(configured.url)
    yield client
    client.close()


@pytest.fixture
def db(configured: ConferServer) -> ServerDb:
    return ServerDb(configured)


@pytest.fixture
def scene(capi: Api, redis_server: Redis) -> Iterator[tuple[Cast, BusListener]]:
    c = cast(capi)
    listener = BusListener(redis_server, c.id)
    yield c, listener
    listener.close()


def kind(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda ev: ev["event"] == name


def test_kicking_publishes_kicked_with_the_reason_and_audits_it(
    capi: Api, db: ServerDb, scene: tuple[Cast, BusListener]
) -> None:
    c, bus = scene
    ok(
        capi.post(
            c.path(f"/participants/{c.pid(c.participant)}/kick"), c.host, json={"reason": "spam"}
        )
    )
    ev = bus.wait_for(kind("kicked"))
    assert ev == {
        "event": "kicked",
        "meeting_id": c.id,
        "user_id": c.participant.user_id,
        "participant_id": c.pid(c.participant),
        "reason": "spam",
        "by": c.host.user_id,
    }
    entry = db.audit(c.id)[-1]
    assert entry["action"] == "kick" and entry["actor_id"] == c.host.user_id
    assert entry["target_user_id"] == c.participant.user_id
    assert "spam" in str(entry["details"])


def test_a_repeated_kick_publishes_nothing_new(capi: Api, scene: tuple[Cast, BusListener]) -> None:
    c, bus = scene
    kick = c.path(f"/participants/{c.pid(c.participant)}/kick")
    ok(capi.post(kick, c.host))
    ok(capi.post(kick, c.host))
    ok(capi.post(c.path(f"/participants/{c.pid(c.audience)}/mute"), c.host))
    bus.wait_for(kind("muted"))  # published after both kicks, in order
    assert [ev["event"] for ev in bus.seen] == ["kicked", "muted"]


def test_role_changes_mutes_and_screen_share_grants_are_published(
    capi: Api, db: ServerDb, scene: tuple[Cast, BusListener]
) -> None:
    c, bus = scene
    part = c.path(f"/participants/{c.pid(c.participant)}")
    ok(capi.put(f"{part}/role", c.host, json={"role": "co_host"}))
    ok(capi.post(c.path(f"/participants/{c.pid(c.audience)}/mute"), c.co_host))
    ok(capi.put(f"{part}/screen-share", c.host, json={"allowed": True}))
    ok(capi.post(c.path("/mute-all"), c.host, json={"media_type": "video"}))

    role = bus.wait_for(kind("role_changed"))
    assert (role["user_id"], role["role"], role["by"]) == (
        c.participant.user_id,
        "co_host",
        c.host.user_id,
    )
    muted = bus.wait_for(kind("muted"))
    assert (muted["user_id"], muted["media_type"], muted["by"]) == (
        c.audience.user_id,
        "audio",
        c.co_host.user_id,
    )
    share = bus.wait_for(kind("screen_share_permission"))
    assert (share["user_id"], share["allowed"]) == (c.participant.user_id, True)
    everyone = bus.wait_for(kind("mute_all"))
    assert everyone["media_type"] == "video" and everyone["by"] == c.host.user_id
    # The participant is a co-host by now, so spared too.
    assert everyone["except_user_ids"] == sorted(
        [c.host.user_id, c.co_host.user_id, c.participant.user_id]
    )
    actions = [e["action"] for e in db.audit(c.id)]
    assert actions[-4:] == ["role_change", "mute", "screen_share", "mute_all"]


def test_ending_publishes_ended(capi: Api, db: ServerDb, scene: tuple[Cast, BusListener]) -> None:
    c, bus = scene
    ok(capi.post(c.path("/end"), c.host))
    ev = bus.wait_for(kind("ended"))
    assert ev == {"event": "ended", "meeting_id": c.id, "by": c.host.user_id, "reason": "ended"}
    assert db.audit(c.id)[-1]["action"] == "end"


def test_deleting_a_live_meeting_ends_it_first(capi: Api, scene: tuple[Cast, BusListener]) -> None:
    c, bus = scene
    ok(capi.delete(c.path(), c.host))
    assert bus.wait_for(kind("ended"))["reason"] == "deleted"


def test_leaving_through_rest_publishes_left(capi: Api, scene: tuple[Cast, BusListener]) -> None:
    c, bus = scene
    ok(capi.post(c.path("/leave"), c.audience))
    ev = bus.wait_for(kind("left"))
    assert (ev["user_id"], ev["participant_id"]) == (c.audience.user_id, c.pid(c.audience))


def test_updates_and_starts_publish_meeting_updated_without_secrets(
    capi: Api, redis_server: Redis, db: ServerDb
) -> None:
    host = register(capi)
    mid = create_meeting(capi, host)["meeting_id"]
    bus = BusListener(redis_server, mid)
    try:
        ok(capi.post(f"/api/v1/meetings/{mid}/start", host))
        started = bus.wait_for(kind("meeting_updated"))
        assert started["fields"]["status"] == "active" and started["by"] == host.user_id
        ok(
            capi.put(
                f"/api/v1/meetings/{mid}",
                host,
                json={"title": "New title", "settings": {"password": "top-secret-pw"}},
            )
        )
        updated = bus.wait_for(lambda ev: "title" in ev.get("fields", {}))
        assert updated["fields"]["title"] == "New title"
        assert updated["fields"]["settings"]["require_password"] is True
        assert "top-secret-pw" not in str(updated)
    finally:
        bus.close()
    assert [e["action"] for e in db.audit(mid)] == ["start", "update"]


def test_the_host_joining_a_scheduled_meeting_publishes_its_start(
    capi: Api, redis_server: Redis
) -> None:
    host = register(capi)
    mid = create_meeting(capi, host)["meeting_id"]
    bus = BusListener(redis_server, mid)
    try:
        ok(join(capi, host, mid))
        assert bus.wait_for(kind("meeting_updated"))["fields"]["status"] == "active"
    finally:
        bus.close()
