"""Meetings over real HTTP (SQLite and PostgreSQL): create, list, details, update, delete,
start, end and look-up by code."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from confer.api.routes.meetings import MeetingList
from tests.api.meetings_support import (
    MEETING_PASSWORD,
    ServerDb,
    cast,
    create_meeting,
    join,
    register,
)
from tests.support.api import Api, err, ok
from tests.support.servers import ConferServer

SPEC_CREATE = {
    "title": "项目讨论会",
    "description": "讨论Q1项目进度",
    "start_time": "2025-10-01T14:00:00Z",
    "duration": 60,
    "max_participants": 10,
    "is_public": False,
    "settings": {
        "enable_recording": True,
        "enable_ai_analysis": True,
        "require_password": True,
        "password": MEETING_PASSWORD,
    },
}
CODE = re.compile(r"^[A-Z]{3}-[A-Z]{3}-[A-Z]{3}$")


def test_creating_the_spec_example_returns_201_with_the_contract_fields(
    api: Api, server: ConferServer
) -> None:
    host = register(api, "张三")
    r = api.post("/api/v1/meetings", host, json=SPEC_CREATE)
    data = ok(r, 201)
    assert {
        "meeting_id",
        "title",
        "meeting_code",
        "join_url",
        "host_id",
        "status",
        "created_at",
    } <= set(data)
    assert data["title"] == "项目讨论会" and data["description"] == "讨论Q1项目进度"
    assert CODE.match(data["meeting_code"])
    assert data["join_url"] == f"{server.url}/join/{data['meeting_code']}"
    assert data["host_id"] == host.user_id and data["host_name"] == "张三"
    assert data["status"] == "scheduled" and data["role"] == "host"
    assert data["start_time"] == "2025-10-01T14:00:00Z"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", data["created_at"])
    assert data["duration"] == 60 and data["max_participants"] == 10
    assert data["is_public"] is False and data["participant_count"] == 0
    settings = data["settings"]
    assert settings["enable_recording"] is True and settings["enable_ai_analysis"] is True
    assert settings["require_password"] is True
    assert "password" not in settings


def test_the_meeting_password_is_stored_as_an_argon2_hash(api: Api, server: ConferServer) -> None:
    host = register(api)
    data = create_meeting(api, host, settings={"password": "s3cret-pass"})
    rows = ServerDb(server).run(
        "SELECT password_hash, settings FROM meetings WHERE id = :i", i=data["meeting_id"]
    )
    stored = rows[0]
    assert stored["password_hash"].startswith("$argon2id$")
    assert "s3cret-pass" not in stored["password_hash"] and "s3cret-pass" not in str(
        stored["settings"]
    )
    assert data["settings"]["require_password"] is True  # a password implies require_password


def test_a_minimal_meeting_gets_sensible_defaults(api: Api) -> None:
    host = register(api)
    data = create_meeting(api, host)
    assert data["duration"] == 60 and data["max_participants"] == 100
    assert data["is_public"] is False and data["start_time"].endswith("Z")
    assert data["settings"] == {
        "enable_recording": False,
        "enable_ai_analysis": False,
        "require_password": False,
        "screen_share_requires_permission": True,
        "max_screen_shares": 1,
        "mute_on_join": False,
        "allow_self_unmute": True,
        "enable_chat": True,
        "default_role": "participant",
    }


def test_meeting_codes_are_unique_and_random(api: Api) -> None:
    host = register(api)
    codes = {create_meeting(api, host)["meeting_code"] for _ in range(12)}
    assert len(codes) == 12
    assert all(CODE.match(c) and not set(c) & set("ILO") for c in codes)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "a\nb"}, "title"),
        ({"title": "ok", "description": "d" * 5001}, "description"),
        ({"title": "ok", "description": "nul\x00byte"}, "description"),
        ({"title": "ok", "duration": 0}, "duration"),
        ({"title": "ok", "duration": 1441}, "duration"),
        ({"title": "ok", "max_participants": 1}, "max_participants"),
        ({"title": "ok", "max_participants": "many"}, "max_participants"),
        ({"title": "ok", "start_time": "tomorrow"}, "start_time"),
        ({"title": "ok", "start_time": 0}, "start_time"),
        ({"title": "ok", "start_time": "0001-01-01T00:00:00+05:00"}, "start_time"),
        ({"title": "ok", "is_public": "maybe"}, "is_public"),
        ({"title": "ok", "is_public": 1}, "is_public"),
        ({"title": "ok", "duration": "60"}, "duration"),
        ({"title": "ok", "settings": {"enable_chat": 0}}, "settings.enable_chat"),
        ({"title": "ok", "settings": {"password": "abc"}}, "settings.password"),
        ({"title": "ok", "settings": {"password": "p" * 65}}, "settings.password"),
        ({"title": "ok", "settings": {"max_screen_shares": 0}}, "settings.max_screen_shares"),
        ({"title": "ok", "settings": {"default_role": "host"}}, "settings.default_role"),
        ({"title": "ok", "settings": {"unknown_option": True}}, "settings.unknown_option"),
    ],
)
def test_invalid_meetings_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    host = register(api)
    b = err(api.post("/api/v1/meetings", host, json=body), 400, err_type="ValidationError")
    assert any(d["field"] == field for d in b["error"]["details"]), b


@pytest.mark.parametrize(
    "settings",
    [
        {"require_password": True},
        {"require_password": False, "password": MEETING_PASSWORD},
    ],
)
def test_password_settings_must_agree(api: Api, settings: dict[str, Any]) -> None:
    host = register(api)
    b = err(
        api.post("/api/v1/meetings", host, json={"title": "t", "settings": settings}),
        400,
        err_type="ValidationError",
    )
    assert "password" in b["error"]["details"]


def test_max_participants_is_bounded_by_the_server_setting(api: Api) -> None:
    host = register(api)
    b = err(api.post("/api/v1/meetings", host, json={"title": "t", "max_participants": 1001}), 400)
    assert "1000" in b["error"]["details"]
    assert create_meeting(api, host, max_participants=1000)["max_participants"] == 1000


def test_a_start_time_without_offset_is_utc(api: Api) -> None:
    host = register(api)
    data = create_meeting(api, host, start_time="2030-05-06T07:08:09")
    assert data["start_time"] == "2030-05-06T07:08:09Z"
    data = create_meeting(api, host, start_time="2030-05-06T09:08:09+02:00")
    assert data["start_time"] == "2030-05-06T07:08:09Z"


MEETING_ROUTES = [
    ("POST", "/api/v1/meetings"),
    ("GET", "/api/v1/meetings"),
    ("GET", "/api/v1/meetings/1"),
    ("PUT", "/api/v1/meetings/1"),
    ("DELETE", "/api/v1/meetings/1"),
    ("POST", "/api/v1/meetings/1/start"),
    ("POST", "/api/v1/meetings/1/end"),
    ("GET", "/api/v1/meetings/code/ABC-DEF-GHI"),
    ("POST", "/api/v1/meetings/1/join"),
    ("POST", "/api/v1/meetings/1/leave"),
    ("GET", "/api/v1/meetings/1/participants"),
    ("POST", "/api/v1/meetings/1/participants/1/kick"),
    ("PUT", "/api/v1/meetings/1/participants/1/role"),
    ("POST", "/api/v1/meetings/1/participants/1/mute"),
    ("PUT", "/api/v1/meetings/1/participants/1/screen-share"),
    ("POST", "/api/v1/meetings/1/mute-all"),
    ("GET", "/api/v1/meetings/1/messages"),
]


@pytest.mark.parametrize(("method", "path"), MEETING_ROUTES)
def test_every_meeting_route_needs_a_token(api: Api, method: str, path: str) -> None:
    err(api.request(method, path, json={}), 401, 10004)
    bad = {"Authorization": "Bearer not-a-token"}
    err(api.request(method, path, json={}, headers=bad), 401, 10004)


def _listed(api: Api, user: Any, **params: Any) -> dict[int, dict[str, Any]]:
    data = ok(api.get("/api/v1/meetings", user, params={"page_size": 100, **params}))
    return {m["meeting_id"]: m for m in data["meetings"]}


def test_the_list_shows_hosted_joined_and_public_meetings_only(api: Api) -> None:
    alice, bob, carol = register(api, "Alice"), register(api), register(api)
    hosted = create_meeting(api, alice, title="hosted")["meeting_id"]
    bobs = create_meeting(api, bob, title="bob's private")["meeting_id"]
    public = create_meeting(api, carol, title="public", is_public=True)["meeting_id"]
    joined = create_meeting(api, carol, title="joined")["meeting_id"]
    ok(join(api, alice, joined))

    seen = _listed(api, alice)
    assert {hosted, public, joined} <= set(seen) and bobs not in seen
    assert seen[hosted]["role"] == "host" and seen[joined]["role"] == "participant"
    assert seen[public]["role"] is None
    item = seen[joined]
    assert {"meeting_id", "title", "host_name", "start_time", "status", "participant_count"} <= set(
        item
    )
    assert item["participant_count"] == 1 and item["host_name"] == "Test User"
    assert seen[hosted]["host_name"] == "Alice"


def test_the_list_has_the_spec_shape_latest_first_and_paginates(api: Api) -> None:
    host = register(api)
    ids = [
        create_meeting(api, host, start_time=f"2031-01-{day:02d}T10:00:00Z")["meeting_id"]
        for day in range(1, 6)
    ]
    everything = ok(api.get("/api/v1/meetings", host, params={"page_size": 100}))
    assert [m["meeting_id"] for m in everything["meetings"] if m["meeting_id"] in ids] == ids[::-1]
    pages = [
        ok(api.get("/api/v1/meetings", host, params={"page": n, "page_size": 2})) for n in (1, 2)
    ]
    for n, page in enumerate(pages, 1):
        assert set(page) == {"meetings", "total", "page", "page_size", "total_pages"}
        assert page["page"] == n and page["page_size"] == 2 and len(page["meetings"]) == 2
        assert page["total"] == everything["total"] >= 5
        assert page["total_pages"] == (page["total"] + 1) // 2
    first, second = ({m["meeting_id"] for m in p["meetings"]} for p in pages)
    assert not first & second


def test_meeting_ids_do_not_reveal_other_meetings(api: Api) -> None:
    """Ids are random: a private meeting cannot be found by counting from one's own."""
    host = register(api)
    ids = sorted(create_meeting(api, host)["meeting_id"] for _ in range(4))
    assert all(1 <= i <= 2**31 - 1 for i in ids)
    assert any(b - a > 1000 for a, b in itertools.pairwise(ids))


def test_list_items_are_exactly_the_declared_model(api: Api) -> None:
    """The list is built without a model per item: it must still be what the schema says."""
    host = register(api)
    create_meeting(api, host, start_time="2031-02-03T04:05:06Z", is_public=True)
    listed = ok(api.get("/api/v1/meetings", host, params={"page_size": 100}))
    assert MeetingList.model_validate(listed).model_dump(mode="json") == listed
    mine = [m for m in listed["meetings"] if m["host_id"] == host.user_id]
    assert mine[0]["start_time"] == "2031-02-03T04:05:06Z" and mine[0]["role"] == "host"


def test_a_page_past_the_end_is_empty_but_keeps_the_total(api: Api) -> None:
    host = register(api)
    for _ in range(3):
        create_meeting(api, host)
    total = ok(api.get("/api/v1/meetings", host, params={"page_size": 100}))["total"]
    beyond = ok(api.get("/api/v1/meetings", host, params={"page": 50, "page_size": 100}))
    assert beyond["meetings"] == [] and beyond["total"] == total >= 3


def test_a_kicked_user_no_longer_lists_the_meeting(api: Api) -> None:
    host, guest = register(api), register(api)
    meeting = create_meeting(api, host)["meeting_id"]
    pid = ok(join(api, guest, meeting))["participant_id"]
    assert meeting in _listed(api, guest)
    ok(api.post(f"/api/v1/meetings/{meeting}/participants/{pid}/kick", host, json={}))
    assert meeting not in _listed(api, guest)


def test_the_list_filters_by_status(api: Api) -> None:
    host = register(api)
    scheduled = create_meeting(api, host)["meeting_id"]
    active = create_meeting(api, host)["meeting_id"]
    ok(api.post(f"/api/v1/meetings/{active}/start", host))
    assert set(_listed(api, host, status="active")) == {active}
    assert set(_listed(api, host, status="scheduled")) >= {scheduled}
    assert active not in _listed(api, host, status="scheduled")


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"status": "paused"}, {"page": "x"}],
)
def test_bad_list_parameters_are_400(api: Api, params: dict[str, Any]) -> None:
    user = register(api)
    err(api.get("/api/v1/meetings", user, params=params), 400, err_type="ValidationError")


def test_ended_public_meetings_of_others_leave_the_list(api: Api) -> None:
    host, other = register(api), register(api)
    mid = create_meeting(api, host, is_public=True)["meeting_id"]
    assert mid in _listed(api, other)
    ok(api.post(f"/api/v1/meetings/{mid}/end", host))
    assert mid not in _listed(api, other)
    assert _listed(api, host)[mid]["status"] == "ended"


def test_details_are_for_members_and_for_anyone_when_public(api: Api) -> None:
    c = cast(api)
    for user in (c.host, c.co_host, c.participant, c.audience):
        data = ok(api.get(c.path(), user))
        assert data["meeting_id"] == c.id and data["participant_count"] == 4
    assert ok(api.get(c.path(), c.audience))["role"] == "audience"
    err(api.get(c.path(), c.outsider), 403)
    public = create_meeting(api, c.host, is_public=True)["meeting_id"]
    assert ok(api.get(f"/api/v1/meetings/{public}", c.outsider))["role"] is None


@pytest.mark.parametrize("path", ["/api/v1/meetings/999999999", "/api/v1/meetings/2147483647"])
def test_an_unknown_meeting_is_20001(api: Api, path: str) -> None:
    user = register(api)
    err(api.get(path, user), 404, 20001)


@pytest.mark.parametrize(
    "path", ["/api/v1/meetings/0", "/api/v1/meetings/2147483648", "/api/v1/meetings/x"]
)
def test_a_meeting_id_out_of_range_is_400(api: Api, path: str) -> None:
    user = register(api)
    err(api.get(path, user), 400, err_type="ValidationError")


def test_anyone_with_the_code_can_look_the_meeting_up(api: Api) -> None:
    host, guest = register(api), register(api)
    data = create_meeting(api, host, settings={"password": MEETING_PASSWORD})
    code = data["meeting_code"]
    for variant in (code, code.lower(), code.replace("-", ""), f" {code.lower()} "):
        found = ok(api.get(f"/api/v1/meetings/code/{variant}", guest))
        assert found["meeting_id"] == data["meeting_id"] and found["meeting_code"] == code
        assert found["settings"]["require_password"] is True and found["role"] is None


def test_code_lookup_errors(api: Api) -> None:
    user = register(api)
    err(api.get("/api/v1/meetings/code/ZZZ-ZZZ-ZZZ", user), 404, 20001)
    for bad in ("ABC-DEF", "ABC-DEF-GH1", "ÄBC-DEF-GHI", "x" * 33):
        err(api.get(f"/api/v1/meetings/code/{bad}", user), 400, err_type="ValidationError")


def test_the_host_updates_any_field_and_only_those_given(api: Api) -> None:
    host = register(api)
    mid = create_meeting(api, host, description="keep me", settings={"enable_recording": True})[
        "meeting_id"
    ]
    data = ok(
        api.put(
            f"/api/v1/meetings/{mid}",
            host,
            json={
                "title": "Renamed",
                "duration": 90,
                "max_participants": 3,
                "is_public": True,
                "start_time": "2032-02-02T02:02:02Z",
                "settings": {"mute_on_join": True, "default_role": "audience"},
            },
        )
    )
    assert data["title"] == "Renamed" and data["description"] == "keep me"
    assert data["duration"] == 90 and data["max_participants"] == 3 and data["is_public"]
    assert data["start_time"] == "2032-02-02T02:02:02Z"
    s = data["settings"]
    assert s["mute_on_join"] and s["default_role"] == "audience" and s["enable_recording"]
    assert ok(api.get(f"/api/v1/meetings/{mid}", host)) == data


def test_passwords_can_be_added_changed_and_removed(api: Api) -> None:
    host, guest = register(api), register(api)
    mid = create_meeting(api, host)["meeting_id"]
    path = f"/api/v1/meetings/{mid}"
    data = ok(api.put(path, host, json={"settings": {"password": "first-pass"}}))
    assert data["settings"]["require_password"] is True
    err(join(api, guest, mid), 403, 20004)
    ok(
        api.put(
            path, host, json={"settings": {"require_password": True, "password": "second-pass"}}
        )
    )
    err(join(api, guest, mid, "first-pass"), 403, 20004)
    ok(join(api, guest, mid, "second-pass"))
    # Other settings changes keep the password.
    ok(api.put(path, host, json={"settings": {"enable_chat": False}}))
    err(join(api, register(api), mid), 403, 20004)
    data = ok(api.put(path, host, json={"settings": {"require_password": False}}))
    assert data["settings"]["require_password"] is False
    ok(join(api, register(api), mid))


def test_only_the_host_may_update(api: Api) -> None:
    c = cast(api)
    for user in (c.co_host, c.participant, c.audience, c.outsider):
        err(api.put(c.path(), user, json={"title": "Mine now"}), 403)
    assert ok(api.get(c.path(), c.host))["title"] == "项目讨论会"


def test_update_validation(api: Api) -> None:
    host = register(api)
    mid = create_meeting(api, host)["meeting_id"]
    path = f"/api/v1/meetings/{mid}"
    err(api.put(path, host, json={"title": ""}), 400)
    err(api.put(path, host, json={"max_participants": 5000}), 400)
    err(api.put(path, host, json={"settings": {"require_password": True}}), 400)
    err(api.put("/api/v1/meetings/999999999", host, json={"title": "x"}), 404, 20001)


def test_an_ended_meeting_cannot_be_updated_or_started(api: Api) -> None:
    host = register(api)
    mid = create_meeting(api, host)["meeting_id"]
    ended = ok(api.post(f"/api/v1/meetings/{mid}/end", host))
    assert ended["status"] == "ended" and ended["ended_at"]
    err(api.put(f"/api/v1/meetings/{mid}", host, json={"title": "again"}), 400, 20002)
    err(api.post(f"/api/v1/meetings/{mid}/start", host), 400, 20002)
    # Ending again changes nothing.
    assert ok(api.post(f"/api/v1/meetings/{mid}/end", host))["ended_at"] == ended["ended_at"]


def test_start_makes_a_scheduled_meeting_active_once(api: Api) -> None:
    host = register(api)
    mid = create_meeting(api, host)["meeting_id"]
    first = ok(api.post(f"/api/v1/meetings/{mid}/start", host))
    assert first["status"] == "active" and first["started_at"]
    assert ok(api.post(f"/api/v1/meetings/{mid}/start", host))["started_at"] == first["started_at"]


def test_only_the_host_starts_ends_or_deletes(api: Api) -> None:
    c = cast(api)
    for user in (c.co_host, c.participant, c.audience, c.outsider):
        err(api.post(c.path("/start"), user), 403, err_type="PermissionDenied")
        err(api.post(c.path("/end"), user), 403, err_type="PermissionDenied")
        err(api.delete(c.path(), user), 403, err_type="PermissionDenied")
    assert ok(api.get(c.path(), c.host))["status"] == "active"


def test_ending_marks_everyone_left(api: Api) -> None:
    c = cast(api)
    ok(api.post(c.path("/end"), c.host))
    data = ok(api.get(c.path("/participants"), c.participant))
    assert {p["state"] for p in data["items"]} == {"left"}
    assert all(p["left_at"] for p in data["items"])
    err(join(api, c.participant, c.id), 400, 20002)


def test_deleting_removes_the_meeting_and_everything_in_it(api: Api, server: ConferServer) -> None:
    c = cast(api)
    db = ServerDb(server)
    db.add_chat(c.id, c.participant, "hello")
    ok(api.delete(c.path(), c.host))
    err(api.get(c.path(), c.host), 404, 20001)
    err(join(api, c.participant, c.id), 404, 20001)
    for table in ("participants", "chat_messages", "audit_log"):
        assert db.run(f"SELECT id FROM {table} WHERE meeting_id = :m", m=c.id) == []
    err(api.delete(c.path(), c.host), 404, 20001)
