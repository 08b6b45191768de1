"""A thin HTTP client for the tests that knows the envelope and makes throwaway users."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "SecurePass123!"
_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 10000}x{next(_seq)}"


@dataclass
class User:
    user_id: int
    username: str
    email: str
    token: str
    refresh_token: str
    password: str = PASSWORD

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30, verify=False)

    def request(
        self, method: str, path: str, user: User | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if user is not None:
            headers.update(user.auth)
        return self.http.request(method, path, headers=headers, **kw)

    def get(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, user, **kw)

    def post(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, user, **kw)

    def put(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, user, **kw)

    def delete(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, user, **kw)

    def register(self, name: str | None = None, full_name: str = "Test User") -> User:
        username = name or unique("user")
        r = self.post(
            "/api/v1/auth/register",
            json={
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "full_name": full_name,
            },
        )
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        return User(d["user_id"], d["username"], d["email"], d["token"], d["refresh_token"])

    def close(self) -> None:
        self.http.close()


def ok(r: httpx.Response, status: int = 200) -> Any:
    """Assert a success envelope and return its data."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["message"] == "success", body
    assert body["timestamp"].endswith("Z")
    return body["data"]


def err(
    r: httpx.Response, status: int, code: int | None = None, err_type: str | None = None
) -> dict[str, Any]:
    """Assert an error envelope with the given HTTP status and envelope code."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "error", "timestamp"}, body
    assert body["code"] == (code if code is not None else status), body
    assert body["message"]
    if err_type is not None:
        assert body["error"]["type"] == err_type, body
    return body
