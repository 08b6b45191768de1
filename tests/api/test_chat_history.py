"""Chat history over real HTTP (SQLite and PostgreSQL). The messages are written straight into
the server's database, as the signaling hub writes them."""

from __future__ import annotations

import pytest

from tests.api.meetings_support import Cast, ServerDb, cast
from tests.support.api import Api, User, err, ok
from tests.support.servers import ConferServer


@pytest.fixture
def room(api: Api, server: ConferServer) -> tuple[Cast, ServerDb]:
    return cast(api), ServerDb(server)


def history(api: Api, c: Cast, user: User, **params: object) -> dict:
    return ok(api.get(c.path("/messages"), user, params=params))  # type: ignore[no-any-return]


def test_members_read_the_room_newest_first_in_the_pagination_shape(
    api: Api, room: tuple[Cast, ServerDb]
) -> None:
    c, db = room
    ids = [db.add_chat(c.id, c.participant, f"message {n}") for n in range(3)]
    for user in (c.host, c.co_host, c.participant, c.audience):
        data = history(api, c, user)
        assert set(data) == {"items", "total", "page", "page_size", "total_pages"}
        assert data["total"] == 3 and data["page"] == 1 and data["total_pages"] == 1
        assert [m["message_id"] for m in data["items"]] == ids[::-1]
    newest = history(api, c, c.host)["items"][0]
    assert newest == {
        "message_id": ids[-1],
        "meeting_id": c.id,
        "user_id": c.participant.user_id,
        "username": c.participant.username,
        "to_user_id": None,
        "is_private": False,
        "content": "message 2",
        "created_at": newest["created_at"],
    }
    assert newest["created_at"].endswith("Z")


def test_private_messages_are_for_sender_and_recipient_only(
    api: Api, room: tuple[Cast, ServerDb]
) -> None:
    c, db = room
    public = db.add_chat(c.id, c.host, "hello all")
    secret = db.add_chat(c.id, c.participant, "psst", to=c.audience)

    def seen(user: User) -> set[int]:
        return {m["message_id"] for m in history(api, c, user)["items"]}

    assert seen(c.participant) == seen(c.audience) == {public, secret}
    assert seen(c.host) == seen(c.co_host) == {public}
    private = next(m for m in history(api, c, c.audience)["items"] if m["message_id"] == secret)
    assert private["is_private"] is True and private["to_user_id"] == c.audience.user_id
    assert history(api, c, c.host)["total"] == 1


def test_history_pages_by_page_number_and_by_cursor(api: Api, room: tuple[Cast, ServerDb]) -> None:
    c, db = room
    ids = [db.add_chat(c.id, c.co_host, f"m{n}") for n in range(7)]
    pages = [history(api, c, c.participant, page=n, page_size=3) for n in (1, 2, 3)]
    assert [[m["message_id"] for m in p["items"]] for p in pages] == [
        ids[6:3:-1],
        ids[3:0:-1],
        ids[:1],
    ]
    assert all(p["total"] == 7 and p["total_pages"] == 3 for p in pages)
    # A cursor keeps paging stable while new messages arrive.
    oldest_seen = pages[0]["items"][-1]["message_id"]
    db.add_chat(c.id, c.co_host, "arrived meanwhile")
    older = history(api, c, c.participant, before_id=oldest_seen, page_size=3)
    assert [m["message_id"] for m in older["items"]] == ids[3:0:-1]
    assert older["total"] == 4


def test_outsiders_and_kicked_users_cannot_read_history(
    api: Api, room: tuple[Cast, ServerDb]
) -> None:
    c, db = room
    db.add_chat(c.id, c.participant, "members only")
    err(api.get(c.path("/messages"), c.outsider), 403, err_type="PermissionDenied")
    ok(api.post(c.path(f"/participants/{c.pid(c.audience)}/kick"), c.host))
    err(api.get(c.path("/messages"), c.audience), 403)
    err(api.get(c.path("/messages")), 401, 10004)
    err(api.get("/api/v1/meetings/999999999/messages", c.host), 404, 20001)


def test_history_survives_the_end_of_the_meeting_and_leaving(
    api: Api, room: tuple[Cast, ServerDb]
) -> None:
    c, db = room
    db.add_chat(c.id, c.participant, "before the end")
    ok(api.post(c.path("/leave"), c.participant))
    ok(api.post(c.path("/end"), c.host))
    assert history(api, c, c.participant)["items"][0]["content"] == "before the end"


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"before_id": 0}, {"before_id": "x"}],
)
def test_bad_history_parameters_are_400(
    api: Api, room: tuple[Cast, ServerDb], params: dict[str, object]
) -> None:
    c, _ = room
    err(api.get(c.path("/messages"), c.host, params=params), 400, err_type="ValidationError")
