"""HTTP caching and compression: ETag + 304, Cache-Control by kind of response, Vary, gzip."""

from __future__ import annotations

import time

import httpx

from tests.support.api import Api, err, ok


def test_an_authenticated_get_is_private_and_revalidated(api: Api) -> None:
    user = api.register()
    r = api.get("/api/v1/users/profile", user)
    ok(r)
    assert r.headers["Cache-Control"] == "private, no-cache"
    assert r.headers["ETag"].startswith('W/"')
    assert "authorization" in r.headers["Vary"].lower()


def test_a_matching_if_none_match_gets_an_empty_304(api: Api) -> None:
    user = api.register()
    etag = api.get("/api/v1/users/profile", user).headers["ETag"]
    r = api.get("/api/v1/users/profile", user, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == etag
    assert r.headers["Cache-Control"] == "private, no-cache"
    assert "content-type" not in r.headers
    # Any tag in a list matches, with or without the weak prefix.
    strong = etag.removeprefix("W/")
    r = api.get("/api/v1/users/profile", user, headers={"If-None-Match": f'"nope", {strong}'})
    assert r.status_code == 304


def test_the_etag_ignores_the_envelope_timestamp(api: Api) -> None:
    user = api.register()
    first = api.get("/api/v1/users/profile", user)
    time.sleep(1.1)  # the envelope's timestamp has whole seconds
    second = api.get("/api/v1/users/profile", user)
    assert first.json()["timestamp"] != second.json()["timestamp"]
    assert first.headers["ETag"] == second.headers["ETag"]


def test_a_change_makes_the_old_etag_stale(api: Api) -> None:
    user = api.register(full_name="Before")
    etag = api.get("/api/v1/users/profile", user).headers["ETag"]
    ok(api.put("/api/v1/users/profile", user, json={"full_name": "After"}))
    r = api.get("/api/v1/users/profile", user, headers={"If-None-Match": etag})
    assert ok(r)["full_name"] == "After"
    assert r.headers["ETag"] != etag


def test_different_users_get_different_etags(api: Api) -> None:
    a, b = api.register(), api.register()
    tag_a = api.get("/api/v1/users/profile", a).headers["ETag"]
    r = api.get("/api/v1/users/profile", b, headers={"If-None-Match": tag_a})
    assert ok(r)["user_id"] == b.user_id
    assert r.headers["ETag"] != tag_a


def test_writes_errors_and_tokens_are_never_stored(api: Api) -> None:
    user = api.register()
    r = api.post("/api/v1/auth/login", json={"username": user.username, "password": user.password})
    ok(r)
    assert r.headers["Cache-Control"] == "no-store" and "etag" not in r.headers
    r = api.get("/api/v1/users/profile")
    err(r, 401, 10004)
    assert r.headers["Cache-Control"] == "no-store" and "etag" not in r.headers
    r = api.put("/api/v1/users/profile", user, json={"full_name": "X"})
    ok(r)
    assert r.headers["Cache-Control"] == "no-store"


def test_an_anonymous_get_may_be_cached_by_anyone_after_revalidation(api: Api) -> None:
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-cache"
    r2 = api.get("/api/v1/openapi.json", headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304


def test_large_responses_are_gzipped_small_ones_are_not(api: Api) -> None:
    user = api.register()
    with httpx.Client(base_url=api.base_url, timeout=30) as raw:
        big = raw.get("/api/v1/openapi.json", headers={"Accept-Encoding": "gzip"})
        small = raw.get("/api/v1/users/profile", headers={"Accept-Encoding": "gzip", **user.auth})
        plain = raw.get("/api/v1/openapi.json", headers={"Accept-Encoding": "identity"})
    assert big.headers["Content-Encoding"] == "gzip"
    assert "accept-encoding" in big.headers["Vary"].lower()
    assert int(big.headers["Content-Length"]) < len(big.content) / 3  # compressed on the wire
    assert big.json()["openapi"].startswith("3.")
    assert "content-encoding" not in small.headers and len(small.content) < 1000
    assert "content-encoding" not in plain.headers
    assert plain.json() == big.json()


def test_a_304_is_also_answered_to_a_gzip_client(api: Api) -> None:
    with httpx.Client(base_url=api.base_url, timeout=30) as raw:
        first = raw.get("/api/v1/openapi.json", headers={"Accept-Encoding": "gzip"})
        again = raw.get(
            "/api/v1/openapi.json",
            headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
        )
    assert again.status_code == 304 and again.content == b""
