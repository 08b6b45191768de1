"""Joining, leaving and moderating participants over real HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from tests.api.meetings_support import (
    MEETING_PASSWORD,
    TURN_SECRET,
    Cast,
    cast,
    configured_server,
    create_meeting,
    join,
    register,
)
from tests.support.api import Api, User, err, ok
from tests.support.servers import ConferServer, Redis


@pytest.fixture(scope="module")
def configured(server_factory: Callable[..., ConferServer], redis_server: Redis) -> ConferServer:
    return configured_server(server_factory, redis_server)


@pytest.fixture
def capi(configured: ConferServer) -> Any:
    client = Api(configured.url)
    yield client
    client.close()


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def participants(api: Api, c: Cast, user: User | None = None, **params: Any) -> dict[int, Any]:
    data = ok(api.get(c.path("/participants"), user or c.host, params=params))
    return {p["user_id"]: p for p in data["items"]}


# --- joining ---------------------------------------------------------------------------


def test_joining_returns_what_the_client_needs_to_connect(api: Api, server: ConferServer) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    data = ok(join(api, guest, mid))
    assert {"meeting_id", "participant_id", "websocket_url", "ice_servers", "session_token"} <= set(
        data
    )
    assert data["meeting_id"] == mid and data["user_id"] == guest.user_id
    assert data["role"] == "participant" and isinstance(data["participant_id"], int)
    assert data["websocket_url"] == server.ws_url
    assert data["ice_servers"] == []  # none configured on this server
    c = claims(data["session_token"])
    assert c["typ"] == "session" and c["meeting_id"] == mid and c["user_id"] == guest.user_id
    assert c["participant_id"] == data["participant_id"]
    assert c["exp"] - c["iat"] == data["expires_in"] == 86400


def test_ice_servers_carry_time_limited_turn_credentials(capi: Api) -> None:
    host, guest = register(capi), register(capi)
    created = create_meeting(capi, host)
    assert created["join_url"] == f"https://meet.example.org/join/{created['meeting_code']}"
    before = int(time.time())
    data = ok(join(capi, guest, created["meeting_id"]))
    after = int(time.time())
    assert data["websocket_url"] == "wss://meet.example.org/ws/signaling"
    assert data["expires_in"] == 1200
    stun, turn = data["ice_servers"][:2], data["ice_servers"][2:]
    assert stun == [{"urls": "stun:stun.example.org:3478"}, {"urls": "stun:127.0.0.1:3478"}]
    assert [t["urls"] for t in turn] == [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:5349",
    ]
    for t in turn:
        expiry, user_id = t["username"].split(":")
        assert user_id == str(guest.user_id)
        assert before + 600 <= int(expiry) <= after + 600
        mac = hmac.new(TURN_SECRET.encode(), t["username"].encode(), hashlib.sha1).digest()
        assert t["credential"] == base64.b64encode(mac).decode()


def test_an_unknown_meeting_is_20001(api: Api) -> None:
    err(join(api, register(api), 999_999_999), 404, 20001)


def test_an_ended_meeting_is_20002(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    ok(api.post(f"/api/v1/meetings/{mid}/end", host))
    err(join(api, guest, mid), 400, 20002)
    err(join(api, host, mid), 400, 20002)


def test_the_password_is_checked_for_everyone_but_the_host(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host, settings={"require_password": True, "password": "pass1234"})[
        "meeting_id"
    ]
    err(join(api, guest, mid), 403, 20004)
    err(join(api, guest, mid, "wrong-pass"), 403, 20004)
    err(join(api, guest, mid, ""), 403, 20004)
    assert ok(join(api, host, mid))["role"] == "host"
    assert ok(join(api, guest, mid, "pass1234"))["role"] == "participant"
    # Every join presents it, also a repeated one.
    err(join(api, guest, mid), 403, 20004)


def test_too_many_wrong_passwords_are_429_for_that_user_only(capi: Api) -> None:
    host, guesser, honest = register(capi), register(capi), register(capi)
    mid = create_meeting(capi, host, settings={"password": MEETING_PASSWORD})["meeting_id"]
    for attempt in range(3):
        err(join(capi, guesser, mid, f"guess-{attempt}"), 403, 20004)
    r = join(capi, guesser, mid, MEETING_PASSWORD)
    err(r, 429, err_type="RateLimited")
    assert int(r.headers["Retry-After"]) >= 1
    ok(join(capi, honest, mid, MEETING_PASSWORD))


def test_joining_meeting_ids_that_do_not_exist_is_throttled_so_ids_cannot_be_enumerated(
    capi: Api,
) -> None:
    prober, neighbour = register(capi), register(capi)
    host = register(capi)
    mid = create_meeting(capi, host)["meeting_id"]  # private, no password: joined by its id
    for guess in range(3):
        err(join(capi, prober, 2_000_000_000 + guess), 404, 20001)
    r = join(capi, prober, mid)  # even a real id, until the window has passed
    err(r, 429, err_type="RateLimited")
    assert "do not exist" in r.json()["message"]
    assert int(r.headers["Retry-After"]) >= 1
    ok(join(capi, neighbour, mid))  # counted per user
    own = create_meeting(capi, prober)["meeting_id"]
    ok(join(capi, prober, own))  # a meeting of one's own is no guess: never locked out of it


def test_a_full_meeting_is_20003_but_the_host_always_gets_in(api: Api) -> None:
    host = register(api)
    mid = create_meeting(api, host, max_participants=2)["meeting_id"]
    early, late, later = register(api), register(api), register(api)
    ok(join(api, early, mid))
    ok(join(api, late, mid))
    err(join(api, later, mid), 409, 20003)
    ok(join(api, host, mid))
    assert ok(api.get(f"/api/v1/meetings/{mid}", host))["participant_count"] == 3
    # A seat freed by leaving can be taken.
    ok(api.post(f"/api/v1/meetings/{mid}/leave", late))
    err(join(api, later, mid), 409, 20003)  # host + early still fill both seats
    ok(api.post(f"/api/v1/meetings/{mid}/leave", early))
    ok(join(api, later, mid))


def test_concurrent_joins_never_overfill_a_meeting(api: Api, server: ConferServer) -> None:
    host = register(api)
    mid = create_meeting(api, host, max_participants=4)["meeting_id"]
    ok(join(api, host, mid))
    users = [register(api) for _ in range(10)]

    def attempt(user: User) -> int:
        client = Api(server.url)
        try:
            return join(client, user, mid).status_code
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(attempt, users))
    assert sorted(codes) == [200] * 3 + [409] * 7, codes
    assert ok(api.get(f"/api/v1/meetings/{mid}", host))["participant_count"] == 4


def test_joining_twice_is_idempotent_and_rejoining_reuses_the_row(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    first = ok(join(api, guest, mid))
    assert ok(join(api, guest, mid))["participant_id"] == first["participant_id"]
    assert ok(api.get(f"/api/v1/meetings/{mid}", guest))["participant_count"] == 1
    ok(api.post(f"/api/v1/meetings/{mid}/leave", guest))
    assert ok(join(api, guest, mid))["participant_id"] == first["participant_id"]
    rows = ok(api.get(f"/api/v1/meetings/{mid}/participants", guest))["items"]
    assert [(p["user_id"], p["state"]) for p in rows] == [(guest.user_id, "joined")]


def test_others_may_join_early_and_the_host_joining_starts_the_meeting(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    ok(join(api, guest, mid))
    assert ok(api.get(f"/api/v1/meetings/{mid}", guest))["status"] == "scheduled"
    ok(join(api, host, mid))
    data = ok(api.get(f"/api/v1/meetings/{mid}", guest))
    assert data["status"] == "active" and data["started_at"]


def test_meeting_settings_shape_how_people_join(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host, settings={"default_role": "audience", "mute_on_join": True})[
        "meeting_id"
    ]
    assert ok(join(api, host, mid))["role"] == "host"
    assert ok(join(api, guest, mid))["role"] == "audience"
    rows = ok(api.get(f"/api/v1/meetings/{mid}/participants", host))["items"]
    muted = {p["user_id"]: p["audio_muted"] for p in rows}
    assert muted == {host.user_id: False, guest.user_id: True}


def test_a_kicked_user_cannot_rejoin(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path(f"/participants/{c.pid(c.participant)}/kick"), c.host))
    err(join(api, c.participant, c.id), 403)
    err(api.get(c.path(), c.participant), 403)
    err(api.get(c.path("/participants"), c.participant), 403)


@pytest.mark.parametrize("body", [{"password": 5}, {"password": "p" * 129}, [1, 2]])
def test_malformed_join_bodies_are_400(api: Api, body: Any) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    err(api.post(f"/api/v1/meetings/{mid}/join", guest, json=body), 400)


def test_a_join_without_a_body_works(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    ok(api.post(f"/api/v1/meetings/{mid}/join", guest))


# --- leaving and listing -------------------------------------------------------------------


def test_leaving_marks_the_participant_left_and_is_idempotent(api: Api) -> None:
    c = cast(api)
    data = ok(api.post(c.path("/leave"), c.participant))
    assert data["state"] == "left" and data["left_at"] and data["user_id"] == c.participant.user_id
    assert ok(api.post(c.path("/leave"), c.participant))["left_at"] == data["left_at"]
    assert ok(api.get(c.path(), c.host))["participant_count"] == 3
    err(api.post(c.path("/leave"), c.outsider), 403)


def test_the_host_leaving_does_not_end_the_meeting(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path("/leave"), c.host))
    assert ok(api.get(c.path(), c.participant))["status"] == "active"
    assert ok(join(api, c.host, c.id))["role"] == "host"


def test_the_participant_list_has_every_contract_field(api: Api) -> None:
    c = cast(api)
    rows = participants(api, c, c.audience)
    assert set(rows) == {u.user_id for u in (c.host, c.co_host, c.participant, c.audience)}
    p = rows[c.participant.user_id]
    assert {
        "participant_id",
        "user_id",
        "username",
        "full_name",
        "role",
        "state",
        "joined_at",
        "left_at",
        "last_active_at",
        "audio_muted",
        "video_muted",
    } <= set(p)
    assert p["username"] == c.participant.username and p["full_name"] == "Part"
    assert p["state"] == "joined" and p["left_at"] is None and p["joined_at"].endswith("Z")
    assert p["participant_id"] == c.pid(c.participant)
    roles = {uid: row["role"] for uid, row in rows.items()}
    assert roles == {
        c.host.user_id: "host",
        c.co_host.user_id: "co_host",
        c.participant.user_id: "participant",
        c.audience.user_id: "audience",
    }


def test_the_participant_list_filters_and_paginates(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path("/leave"), c.audience))
    assert set(participants(api, c, state="left")) == {c.audience.user_id}
    assert c.audience.user_id not in participants(api, c, state="joined")
    page = ok(api.get(c.path("/participants"), c.host, params={"page": 2, "page_size": 3}))
    assert page["total"] == 4 and page["total_pages"] == 2 and len(page["items"]) == 1
    err(api.get(c.path("/participants"), c.host, params={"state": "dancing"}), 400)
    err(api.get(c.path("/participants"), c.host, params={"page_size": 1000}), 400)


def test_outsiders_cannot_list_participants(api: Api) -> None:
    c = cast(api)
    err(api.get(c.path("/participants"), c.outsider), 403, err_type="PermissionDenied")
    public = create_meeting(api, c.host, is_public=True)["meeting_id"]
    err(api.get(f"/api/v1/meetings/{public}/participants", c.outsider), 403)


# --- moderation ----------------------------------------------------------------------------


def test_the_host_kicks_with_a_reason_and_the_host_cannot_be_kicked(api: Api) -> None:
    c = cast(api)
    kicked = ok(
        api.post(
            c.path(f"/participants/{c.pid(c.participant)}/kick"),
            c.host,
            json={"reason": "spam"},
        )
    )
    assert kicked["state"] == "kicked" and kicked["left_at"]
    assert ok(api.get(c.path(), c.host))["participant_count"] == 3
    err(api.post(c.path(f"/participants/{c.pid(c.host)}/kick"), c.host), 403)


def test_a_co_host_can_mute_a_participant_but_cannot_kick(api: Api) -> None:
    c = cast(api)
    target = c.path(f"/participants/{c.pid(c.participant)}")
    err(api.post(f"{target}/kick", c.co_host), 403, err_type="PermissionDenied")
    data = ok(api.post(f"{target}/mute", c.co_host))
    assert data["audio_muted"] is True and data["video_muted"] is False
    assert data["muted_by_host"] is False  # the meeting lets people unmute themselves
    data = ok(api.post(f"{target}/mute", c.co_host, json={"media_type": "video"}))
    assert data["video_muted"] is True
    assert participants(api, c)[c.participant.user_id]["state"] == "joined"


@pytest.mark.parametrize("who", ["participant", "audience", "outsider"])
def test_participants_audience_and_outsiders_moderate_nobody(api: Api, who: str) -> None:
    c = cast(api)
    actor = getattr(c, who)
    victim = c.co_host if who != "participant" else c.audience
    target = c.path(f"/participants/{c.pid(victim)}")
    err(api.post(f"{target}/kick", actor), 403)
    err(api.post(f"{target}/mute", actor), 403)
    err(api.put(f"{target}/role", actor, json={"role": "audience"}), 403)
    err(api.put(f"{target}/screen-share", actor, json={"allowed": True}), 403)
    err(api.post(c.path("/mute-all"), actor), 403)
    rows = participants(api, c)
    assert rows[victim.user_id]["state"] == "joined" and not rows[victim.user_id]["audio_muted"]


def test_a_co_host_cannot_moderate_the_host_or_another_co_host(api: Api) -> None:
    c = cast(api)
    second = register(api)
    pid = ok(join(api, second, c.id))["participant_id"]
    ok(api.put(c.path(f"/participants/{pid}/role"), c.host, json={"role": "co_host"}))
    err(api.post(c.path(f"/participants/{pid}/mute"), c.co_host), 403)
    err(api.post(c.path(f"/participants/{c.pid(c.host)}/mute"), c.co_host), 403)
    err(
        api.put(c.path(f"/participants/{pid}/screen-share"), c.co_host, json={"allowed": False}),
        403,
    )
    assert ok(api.post(c.path(f"/participants/{pid}/mute"), c.host))["audio_muted"] is True


def test_only_the_host_changes_roles_and_never_to_or_from_host(api: Api) -> None:
    c = cast(api)
    target = c.path(f"/participants/{c.pid(c.participant)}/role")
    err(api.put(target, c.co_host, json={"role": "co_host"}), 403)
    err(api.put(target, c.host, json={"role": "host"}), 400, err_type="ValidationError")
    err(api.put(target, c.host, json={"role": "moderator"}), 400)
    err(api.put(target, c.host, json={}), 400)
    host_row = c.path(f"/participants/{c.pid(c.host)}/role")
    err(api.put(host_row, c.host, json={"role": "participant"}), 403)
    assert ok(api.put(target, c.host, json={"role": "audience"}))["role"] == "audience"
    assert participants(api, c)[c.participant.user_id]["role"] == "audience"
    assert ok(join(api, c.participant, c.id))["role"] == "audience"  # kept on rejoin


def test_a_promoted_co_host_gains_co_host_powers(api: Api) -> None:
    c = cast(api)
    target = c.path(f"/participants/{c.pid(c.audience)}/mute")
    err(api.post(target, c.participant), 403)
    ok(
        api.put(
            c.path(f"/participants/{c.pid(c.participant)}/role"), c.host, json={"role": "co_host"}
        )
    )
    ok(api.post(target, c.participant))


def test_mute_all_is_host_only_and_spares_hosts_and_co_hosts(api: Api) -> None:
    c = cast(api)
    err(api.post(c.path("/mute-all"), c.co_host), 403)
    data = ok(api.post(c.path("/mute-all"), c.host))
    assert data["media_type"] == "audio"
    assert data["muted_user_ids"] == sorted([c.participant.user_id, c.audience.user_id])
    assert data["except_user_ids"] == sorted([c.host.user_id, c.co_host.user_id])
    muted = {uid: p["audio_muted"] for uid, p in participants(api, c).items()}
    assert muted == {
        c.host.user_id: False,
        c.co_host.user_id: False,
        c.participant.user_id: True,
        c.audience.user_id: True,
    }
    data = ok(api.post(c.path("/mute-all"), c.host, json={"media_type": "video"}))
    assert data["media_type"] == "video"
    err(api.post(c.path("/mute-all"), c.host, json={"media_type": "smell"}), 400)


def test_when_self_unmute_is_off_host_mutes_stick_until_the_host_allows_it(api: Api) -> None:
    c = cast(api, settings={"allow_self_unmute": False})
    ok(api.post(c.path("/mute-all"), c.host))
    assert participants(api, c)[c.participant.user_id]["muted_by_host"] is True
    ok(api.put(c.path(), c.host, json={"settings": {"allow_self_unmute": True}}))
    assert participants(api, c)[c.participant.user_id]["muted_by_host"] is False


def test_moderating_someone_who_left_or_is_elsewhere(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path("/leave"), c.participant))
    err(api.post(c.path(f"/participants/{c.pid(c.participant)}/mute"), c.host), 409)
    other = cast(api)
    err(api.post(c.path(f"/participants/{other.pid(other.participant)}/kick"), c.host), 404)
    err(api.post(c.path("/participants/2147483647/mute"), c.host), 404)
    err(api.post(c.path("/participants/0/mute"), c.host), 400)


def test_screen_share_permission_is_granted_and_revoked_by_host_and_co_host(api: Api) -> None:
    c = cast(api)
    target = c.path(f"/participants/{c.pid(c.participant)}/screen-share")
    assert ok(api.put(target, c.co_host, json={"allowed": True}))["can_share_screen"] is True
    assert participants(api, c)[c.participant.user_id]["can_share_screen"] is True
    assert ok(api.put(target, c.host, json={"allowed": False}))["can_share_screen"] is False
    audience = c.path(f"/participants/{c.pid(c.audience)}/screen-share")
    err(api.put(audience, c.host, json={"allowed": True}), 400)
    err(api.put(target, c.host, json={"allowed": "sure"}), 400)
    err(api.put(target, c.host, json={"allowed": 1}), 400)


def test_nothing_can_be_moderated_once_the_meeting_ended(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path("/end"), c.host))
    target = c.path(f"/participants/{c.pid(c.participant)}")
    err(api.post(f"{target}/kick", c.host), 400, 20002)
    err(api.post(f"{target}/mute", c.host), 400, 20002)
    err(api.put(f"{target}/role", c.host, json={"role": "audience"}), 400, 20002)
    err(api.post(c.path("/mute-all"), c.host), 400, 20002)


def test_kick_reason_is_validated(api: Api) -> None:
    c = cast(api)
    target = c.path(f"/participants/{c.pid(c.participant)}/kick")
    err(api.post(target, c.host, json={"reason": "x" * 201}), 400)
    err(api.post(target, c.host, json={"reason": "line\nbreak"}), 400)
    assert participants(api, c)[c.participant.user_id]["state"] == "joined"
