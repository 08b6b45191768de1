"""Every response, errors included, is in the contract's envelope."""

from __future__ import annotations

from tests.support.api import Api, err


def test_unknown_path_is_a_404_envelope(api: Api) -> None:
    err(api.get("/api/v1/no/such/thing"), 404, err_type="NotFound")


def test_wrong_method_is_a_405_envelope(api: Api) -> None:
    err(api.delete("/api/v1/auth/login"), 405, err_type="MethodNotAllowed")


def test_invalid_json_is_a_400_envelope(api: Api) -> None:
    r = api.post(
        "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    err(r, 400, err_type="ValidationError")


def test_security_headers_are_set(api: Api) -> None:
    r = api.get("/health")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"]


def test_405_names_every_method_of_the_path(api: Api) -> None:
    r = api.request("PATCH", "/api/v1/meetings")
    err(r, 405, err_type="MethodNotAllowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    r = api.request("PATCH", "/api/v1/users/profile")
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PUT"}
