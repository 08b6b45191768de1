"""Security headers on every kind of response, and the CORS allow-list with its preflight."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.api import Api, err, ok
from tests.support.servers import ConferServer

SPEC_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
ALLOWED = "https://app.meeting.com"


def assert_security_headers(h: httpx.Headers) -> None:
    assert h["Content-Security-Policy"].startswith(SPEC_CSP)
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert h["X-Frame-Options"] == "DENY"


def test_success_error_and_health_responses_carry_the_security_headers(api: Api) -> None:
    user = api.register()
    for r in (
        api.get("/api/v1/users/profile", user),
        api.get("/api/v1/users/profile"),
        api.get("/api/v1/no/such/route"),
        api.get("/health"),
        api.get("/api/v1/openapi.json"),
    ):
        assert_security_headers(r.headers)
        assert r.headers["Content-Security-Policy"] == SPEC_CSP


def test_plain_http_gets_no_hsts(api: Api) -> None:
    assert "strict-transport-security" not in api.get("/health").headers


def test_the_docs_page_alone_allows_data_images(api: Api) -> None:
    r = api.get("/api/v1/docs")
    assert r.status_code == 200
    assert_security_headers(r.headers)
    assert r.headers["Content-Security-Policy"] == SPEC_CSP + "; img-src 'self' data:"


@pytest.fixture(scope="module")
def cors(server_factory: Callable[..., ConferServer]) -> Iterator[Api]:
    api = Api(server_factory({"CONFER_CORS_ORIGINS": f"https://meeting.com,{ALLOWED}"}).url)
    yield api
    api.close()


def test_a_preflight_from_an_allowed_origin_is_granted(cors: Api) -> None:
    r = cors.request(
        "OPTIONS",
        "/api/v1/users/profile",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert {"GET", "POST", "PUT", "DELETE"} <= {
        m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")
    }
    allowed_headers = r.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers


def test_a_preflight_from_another_origin_is_refused(cors: Api) -> None:
    r = cors.request(
        "OPTIONS",
        "/api/v1/users/profile",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


def test_actual_requests_expose_cors_headers_only_to_allowed_origins(cors: Api) -> None:
    user = cors.register()
    r = cors.get("/api/v1/users/profile", user, headers={"Origin": ALLOWED})
    ok(r)
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "etag" in r.headers["Access-Control-Expose-Headers"].lower()
    assert "origin" in r.headers["Vary"].lower()
    r = cors.get("/api/v1/users/profile", user, headers={"Origin": "https://evil.example"})
    ok(r)  # the browser, not the server, withholds the body from the other origin
    assert "access-control-allow-origin" not in r.headers


def test_cors_headers_are_on_errors_too_so_the_client_can_read_them(cors: Api) -> None:
    r = cors.get("/api/v1/users/profile", headers={"Origin": ALLOWED})
    err(r, 401, 10004)
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_without_configured_origins_no_cors_headers_are_sent(api: Api) -> None:
    r = api.get("/health", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in r.headers
