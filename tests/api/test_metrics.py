"""/metrics: Prometheus text, counts and latency by route template, and who may scrape it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount

from confer.api.middleware.metrics import UNROUTED, route_template
from tests.support.api import Api, err
from tests.support.servers import ConferServer, Redis

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api, **kw: object) -> Samples:
    r = api.get("/metrics", **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    user = api.register()
    before = scrape(api)
    for _ in range(3):
        api.get("/api/v1/users/profile", user)
    api.get("/api/v1/users/profile")  # 401
    after = scrape(api)
    route = {"method": "GET", "route": "/api/v1/users/profile"}
    name = "confer_http_requests_total"
    assert (
        value(after, name, **route, status="200") - value(before, name, **route, status="200") == 3
    )
    assert (
        value(after, name, **route, status="401") - value(before, name, **route, status="401") == 1
    )


def test_latency_is_a_histogram_per_route(api: Api) -> None:
    user = api.register()
    before = scrape(api)
    api.get("/api/v1/users/profile", user)
    after = scrape(api)
    route = {"method": "GET", "route": "/api/v1/users/profile"}
    count = "confer_http_request_duration_seconds_count"
    assert value(after, count, **route) - value(before, count, **route) == 1
    inf = value(after, "confer_http_request_duration_seconds_bucket", **route, le="+Inf")
    assert inf == value(after, count, **route)
    assert value(after, "confer_http_request_duration_seconds_sum", **route) > 0


def test_raw_paths_never_become_labels(api: Api) -> None:
    secret = uuid.uuid4().hex
    for i in range(5):
        api.get(f"/api/v1/nothing/{secret}/{i}")
    r = api.get("/metrics")
    assert secret not in r.text
    after = scrape(api)
    unrouted = {"method": "GET", "route": "<unrouted>", "status": "404"}
    assert value(after, "confer_http_requests_total", **unrouted) >= 5


def test_in_flight_requests_are_gauged(api: Api) -> None:
    # The scrape itself is in flight while it is rendered.
    assert value(scrape(api), "confer_http_requests_in_flight") >= 1


def test_process_metrics_are_exported(api: Api) -> None:
    samples = scrape(api)
    assert value(samples, "process_resident_memory_bytes") > 0


def test_without_a_token_only_loopback_clients_may_scrape(api: Api) -> None:
    body = err(api.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}), 403)
    assert "CONFER_METRICS_TOKEN" in body["error"]["details"]


def test_with_a_token_it_is_required_from_everywhere(
    server_factory: Callable[..., ConferServer],
) -> None:
    token = uuid.uuid4().hex
    api = Api(server_factory({"CONFER_METRICS_TOKEN": token}).url)
    try:
        r = api.get("/metrics")
        err(r, 401)
        assert r.headers["WWW-Authenticate"] == "Bearer"
        err(api.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        remote = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {token}"}
        assert value(scrape(api, headers=remote), "process_resident_memory_bytes") > 0
    finally:
        api.close()


def test_rate_limited_requests_are_counted(server_factory: Callable[..., ConferServer]) -> None:
    api = Api(server_factory({"CONFER_RATE_LIMIT_RPS": "0.01", "CONFER_RATE_LIMIT_BURST": "1"}).url)
    try:
        ip = {"X-Forwarded-For": "198.51.100.77"}
        api.get("/api/v1/users/profile", headers=ip)
        assert api.get("/api/v1/users/profile", headers=ip).status_code == 429
        samples = scrape(api)
        limited = {"method": "GET", "route": "<unrouted>", "status": "429"}
        assert value(samples, "confer_http_requests_total", **limited) == 1
    finally:
        api.close()


async def _endpoint() -> None:
    """A route needs an endpoint; these tests only read its template."""


@pytest.mark.parametrize(
    ("route", "path", "template"),
    [
        (APIRoute("/users/profile", _endpoint), "/api/v1/users/profile", "/api/v1/users/profile"),
        (
            APIRoute("/meetings/{meeting_id}/participants/{user_id}/kick", _endpoint),
            "/api/v1/meetings/100/participants/7/kick",
            "/api/v1/meetings/{meeting_id}/participants/{user_id}/kick",
        ),
        (APIRoute("/health", _endpoint), "/health", "/health"),
        (APIRoute("/join/{code}", _endpoint), "/join/ABC-DEF", "/join/{code}"),
        (
            Mount("/api/v1/docs/static", app=Starlette()),
            "/api/v1/docs/static/swagger-ui.css",
            "/api/v1/docs/static/{path}",
        ),
        (None, "/api/v1/anything/42", UNROUTED),
    ],
)
def test_the_route_label_is_the_full_template(route: object, path: str, template: str) -> None:
    assert route_template({"type": "http", "route": route, "path": path}) == template


def test_worker_processes_are_counted_together(
    server_factory: Callable[..., ConferServer], redis_server: Redis
) -> None:
    api = Api(server_factory({"CONFER_REDIS_URL": redis_server.url}, ["--workers", "2"]).url)
    requests = 64

    def fetch(_: int) -> int:
        with httpx.Client(base_url=api.base_url) as fresh:  # a new connection, any worker
            return fresh.get("/api/v1/users/profile", headers=user.auth).status_code

    try:
        user = api.register()
        with ThreadPoolExecutor(16) as pool:  # concurrent, so both workers take some
            assert set(pool.map(fetch, range(requests))) == {200}
        route = {"method": "GET", "route": "/api/v1/users/profile", "status": "200"}
        for _ in range(5):  # whichever worker answers the scrape sums them all
            with httpx.Client(base_url=api.base_url) as fresh:
                r = fresh.get("/metrics")
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(r.text)
                for s in family.samples
            }
            assert value(samples, "confer_http_requests_total", **route) == requests
    finally:
        api.close()
