"""Accounts over real HTTP: register, log in, refresh with rotation, log out, profile, password."""

from __future__ import annotations

import base64
import time

import jwt
import orjson
import pytest

from tests.support.api import PASSWORD, Api, err, ok, unique


def test_register_returns_the_contract_fields(api: Api) -> None:
    name = unique("reg")
    r = api.post(
        "/api/v1/auth/register",
        json={
            "username": name,
            "email": f"{name}@example.com",
            "password": "SecurePass123!",
            "full_name": "张三",
        },
    )
    data = ok(r)
    assert {"user_id", "username", "email", "token"} <= set(data)
    assert data["username"] == name and data["email"] == f"{name}@example.com"
    assert isinstance(data["user_id"], int)


def test_access_token_carries_the_spec_claims(api: Api) -> None:
    user = api.register()
    claims = orjson.loads(base64.urlsafe_b64decode(user.token.split(".")[1] + "=="))
    header = orjson.loads(base64.urlsafe_b64decode(user.token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    assert claims["user_id"] == user.user_id and claims["sub"] == str(user.user_id)
    assert claims["username"] == user.username and claims["email"] == user.email
    assert claims["iss"] == "meeting-system"
    assert claims["exp"] - claims["iat"] == 86400 and claims["nbf"] == claims["iat"]


def test_duplicate_username_or_email_is_10003(api: Api) -> None:
    user = api.register()
    r = api.post(
        "/api/v1/auth/register",
        json={"username": user.username, "email": "other@example.com", "password": PASSWORD},
    )
    err(r, 409, 10003)
    r = api.post(
        "/api/v1/auth/register",
        json={"username": unique("other"), "email": user.email.upper(), "password": PASSWORD},
    )
    err(r, 409, 10003)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 8"),
        ("alllowercaseletters", "three of"),
    ],
)
def test_weak_password_is_a_validation_error_in_plain_words(
    api: Api, password: str, reason: str
) -> None:
    name = unique("weak")
    r = api.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    )
    body = err(r, 400, err_type="ValidationError")
    assert any(reason in d for d in body["error"]["details"])


def test_password_containing_the_username_is_refused(api: Api) -> None:
    name = unique("pwname")
    r = api.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"x{name}@example.com", "password": f"{name}A1!"},
    )
    err(r, 400, err_type="ValidationError")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "ab", "email": "a@example.com", "password": PASSWORD},
        {"username": "<script>", "email": "a@example.com", "password": PASSWORD},
        {"username": "gooduser", "email": "not-an-email", "password": PASSWORD},
        {"username": "gooduser", "email": "a@example.com", "password": "x" * 200},
    ],
)
def test_malformed_registration_is_400_with_field_details(api: Api, body: dict) -> None:
    r = api.post("/api/v1/auth/register", json=body)
    b = err(r, 400, err_type="ValidationError")
    assert b["error"]["details"]


def test_login_by_username_and_by_email(api: Api) -> None:
    user = api.register()
    for login in (user.username, user.email):
        data = ok(api.post("/api/v1/auth/login", json={"username": login, "password": PASSWORD}))
        assert data["user_id"] == user.user_id
        assert data["expires_in"] == 86400 and data["refresh_token"] and data["token"]
    # The contract's client examples log in under /users/login.
    ok(api.post("/api/v1/users/login", json={"username": user.username, "password": PASSWORD}))


def test_wrong_password_and_unknown_user_are_both_10001(api: Api) -> None:
    user = api.register()
    a = err(
        api.post("/api/v1/auth/login", json={"username": user.username, "password": "Nope123!x"}),
        401,
        10001,
    )
    b = err(
        api.post("/api/v1/auth/login", json={"username": unique("ghost"), "password": PASSWORD}),
        401,
        10001,
    )
    assert a["message"] == b["message"]  # no user enumeration


def test_profile_needs_a_valid_token(api: Api) -> None:
    err(api.get("/api/v1/users/profile"), 401, 10004)
    err(api.get("/api/v1/users/profile", headers={"Authorization": "Bearer garbage"}), 401, 10004)
    forged = jwt.encode(
        {
            "user_id": 1,
            "sub": "1",
            "iss": "meeting-system",
            "iat": 0,
            "nbf": 0,
            "exp": int(time.time()) + 60,
        },
        "x" * 40,
        algorithm="HS256",
    )
    err(api.get("/api/v1/users/profile", headers={"Authorization": f"Bearer {forged}"}), 401, 10004)
    none_alg = jwt.encode({"user_id": 1, "sub": "1"}, None, algorithm="none")
    err(
        api.get("/api/v1/users/profile", headers={"Authorization": f"Bearer {none_alg}"}),
        401,
        10004,
    )


def test_expired_token_is_10005(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory({"CONFER_ACCESS_TOKEN_TTL": "1"})
    api = Api(srv.url)
    user = api.register()
    time.sleep(7)  # past the 1 s lifetime plus the 5 s clock-skew leeway
    err(api.get("/api/v1/users/profile", user), 401, 10005)
    api.close()


def test_profile_read_and_update(api: Api) -> None:
    user = api.register(full_name="张三")
    data = ok(api.get("/api/v1/users/profile", user))
    assert data["full_name"] == "张三" and data["avatar_url"] is None
    assert data["created_at"].endswith("Z")
    data = ok(
        api.put(
            "/api/v1/users/profile",
            user,
            json={"full_name": "Zhang San", "avatar_url": "https://cdn.example.com/a.jpg"},
        )
    )
    assert data["full_name"] == "Zhang San"
    assert (
        ok(api.get("/api/v1/users/profile", user))["avatar_url"] == "https://cdn.example.com/a.jpg"
    )
    err(api.put("/api/v1/users/profile", user, json={"avatar_url": "javascript:alert(1)"}), 400)


def test_profile_email_change_cannot_take_anothers_address(api: Api) -> None:
    a, b = api.register(), api.register()
    err(api.put("/api/v1/users/profile", a, json={"email": b.email}), 409, 10003)


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    user = api.register()
    first = ok(api.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}))
    assert first["refresh_token"] != user.refresh_token and first["expires_in"] == 86400
    ok(api.get("/api/v1/users/profile", headers={"Authorization": f"Bearer {first['token']}"}))
    # Replaying the spent token is theft: it fails, and so does the newest one of its family.
    err(api.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, 10004)
    err(
        api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401, 10004
    )


def test_logout_revokes_the_refresh_token(api: Api) -> None:
    user = api.register()
    ok(api.post("/api/v1/auth/logout", user, json={"refresh_token": user.refresh_token}))
    err(api.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, 10004)
    err(api.post("/api/v1/auth/logout"), 401, 10004)


def test_password_change_requires_the_current_one_and_ends_other_sessions(api: Api) -> None:
    user = api.register()
    err(
        api.put(
            "/api/v1/users/password",
            user,
            json={"current_password": "Wrong123!x", "new_password": "NewSecure456?"},
        ),
        401,
        10001,
    )
    err(
        api.put(
            "/api/v1/users/password",
            user,
            json={"current_password": PASSWORD, "new_password": "weak"},
        ),
        400,
    )
    ok(
        api.put(
            "/api/v1/users/password",
            user,
            json={"current_password": PASSWORD, "new_password": "NewSecure456?"},
        )
    )
    err(
        api.post("/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}),
        401,
        10001,
    )
    ok(
        api.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "NewSecure456?"}
        )
    )
    err(api.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, 10004)
