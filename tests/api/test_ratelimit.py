"""Rate limits over real HTTP: strict on credentials, per user with a token, per IP without.

Each test pretends to come from its own client address (`X-Forwarded-For`, honoured because
the test client connects from the trusted loopback proxy address), so buckets don't mix.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.api import PASSWORD, Api, User, err, ok, unique
from tests.support.servers import ConferServer, Redis

AUTH_BURST = 3
BURST = 5
STRICT = {
    "CONFER_RATE_LIMIT_RPS": "0.01",  # nothing refills during a test unless it waits for it
    "CONFER_RATE_LIMIT_BURST": str(BURST),
    "CONFER_AUTH_RATE_LIMIT_RPS": "0.01",
    "CONFER_AUTH_RATE_LIMIT_BURST": str(AUTH_BURST),
}
_ips = (f"198.51.100.{i}" for i in itertools.count(1))


def from_ip(ip: str | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": ip or next(_ips)}


def assert_rate_limited(r: httpx.Response, limit: str) -> None:
    body = err(r, 429, 429, "RateLimited")
    retry = r.headers["Retry-After"]
    assert retry.isdigit() and int(retry) >= 1
    assert body["error"]["details"] == {"retry_after": int(retry), "limit": limit}


@pytest.fixture(scope="module")
def strict(server_factory: Callable[..., ConferServer]) -> Iterator[Api]:
    api = Api(server_factory(STRICT).url)
    yield api
    api.close()


def register(api: Api) -> User:
    """A user made from an address of its own, so the strict auth bucket is not spent."""
    name = unique("rl")
    r = api.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        headers=from_ip(),
    )
    d = ok(r)
    return User(d["user_id"], d["username"], d["email"], d["token"], d["refresh_token"])


def test_login_is_refused_after_its_burst_with_retry_after(strict: Api) -> None:
    ip = from_ip()
    wrong = {"username": "nobody", "password": "WrongPass123!"}
    for _ in range(AUTH_BURST):
        err(strict.post("/api/v1/auth/login", json=wrong, headers=ip), 401, 10001)
    assert_rate_limited(strict.post("/api/v1/auth/login", json=wrong, headers=ip), "auth")


def test_the_credential_endpoints_share_one_strict_bucket(strict: Api) -> None:
    ip = from_ip()
    user = register(strict)
    creds = {"username": user.username, "password": PASSWORD}
    ok(strict.post("/api/v1/auth/login", json=creds, headers=ip))
    ok(strict.post("/api/v1/users/login", json=creds, headers=ip))
    ok(strict.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}, headers=ip))
    for path, body in [
        ("/api/v1/auth/login", creds),
        ("/api/v1/users/login", creds),
        ("/api/v1/auth/refresh", {"refresh_token": user.refresh_token}),
        ("/api/v1/auth/register", {"username": unique("x"), "email": "x@example.com"}),
    ]:
        assert_rate_limited(strict.post(path, json=body, headers=ip), "auth")
    # The ordinary API is still open to the same address.
    ok(strict.get("/api/v1/users/profile", user, headers=ip))


def test_a_refused_client_is_served_again_after_retry_after(
    server_factory: Callable[..., ConferServer],
) -> None:
    api = Api(server_factory({**STRICT, "CONFER_AUTH_RATE_LIMIT_RPS": "0.5"}).url)
    wrong = {"username": "nobody", "password": "WrongPass123!"}
    ip = from_ip()
    try:
        # Tokens trickle back while the server hashes passwords: spend until refused.
        for _ in range(4 * AUTH_BURST):
            r = api.post("/api/v1/auth/login", json=wrong, headers=ip)
            if r.status_code == 429:
                break
            err(r, 401, 10001)
        assert_rate_limited(r, "auth")
        time.sleep(int(r.headers["Retry-After"]))
        err(api.post("/api/v1/auth/login", json=wrong, headers=ip), 401, 10001)
    finally:
        api.close()


def test_anonymous_requests_are_limited_per_address(strict: Api) -> None:
    ip, other = from_ip(), from_ip()
    for _ in range(BURST):
        err(strict.get("/api/v1/users/profile", headers=ip), 401, 10004)
    assert_rate_limited(strict.get("/api/v1/users/profile", headers=ip), "ip")
    err(strict.get("/api/v1/users/profile", headers=other), 401, 10004)


def test_users_are_limited_per_user_not_per_address(strict: Api) -> None:
    alice, bob = register(strict), register(strict)
    office = from_ip()  # one NAT address for both
    for _ in range(BURST):
        ok(strict.get("/api/v1/users/profile", alice, headers=office))
    assert_rate_limited(strict.get("/api/v1/users/profile", alice, headers=office), "user")
    # Alice's budget follows her to another address; Bob's is his own.
    assert_rate_limited(strict.get("/api/v1/users/profile", alice, headers=from_ip()), "user")
    ok(strict.get("/api/v1/users/profile", bob, headers=office))


def test_forged_tokens_do_not_buy_fresh_budgets(strict: Api) -> None:
    ip = from_ip()
    for i in range(BURST):
        forged = {"Authorization": f"Bearer forged.token.{i}", **ip}
        err(strict.get("/api/v1/users/profile", headers=forged), 401, 10004)
    forged = {"Authorization": "Bearer forged.token.new", **ip}
    assert_rate_limited(strict.get("/api/v1/users/profile", headers=forged), "ip")


def test_health_and_preflight_are_not_limited(strict: Api) -> None:
    ip = from_ip()
    for _ in range(BURST):
        strict.get("/api/v1/users/profile", headers=ip)
    assert_rate_limited(strict.get("/api/v1/users/profile", headers=ip), "ip")
    for _ in range(3):
        ok(strict.get("/health", headers=ip))
        r = strict.request("OPTIONS", "/api/v1/users/profile", headers=ip)
        assert r.status_code != 429


def test_two_servers_sharing_redis_share_one_budget(
    server_factory: Callable[..., ConferServer], redis_server: Redis
) -> None:
    env = {**STRICT, "CONFER_REDIS_URL": redis_server.url}
    first, second = Api(server_factory(env).url), Api(server_factory(env).url)
    ip = from_ip()
    wrong = {"username": "nobody", "password": "WrongPass123!"}
    try:
        for i in range(AUTH_BURST):
            api = first if i % 2 == 0 else second
            err(api.post("/api/v1/auth/login", json=wrong, headers=ip), 401, 10001)
        assert_rate_limited(first.post("/api/v1/auth/login", json=wrong, headers=ip), "auth")
        assert_rate_limited(second.post("/api/v1/auth/login", json=wrong, headers=ip), "auth")
    finally:
        first.close()
        second.close()
