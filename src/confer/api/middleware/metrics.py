"""Prometheus request metrics: counts and latency by route template and status, in-flight.

Labels use the matched route's template (`/api/v1/meetings/{meeting_id}`), never the raw path,
so ids in URLs cannot multiply the series; requests that match no route (404s, and 429s that
never reached routing) share the label `<unrouted>`. Methods outside the standard set are
`OTHER`. Labelled children are looked up once and kept, to stay cheap per request.

With several worker processes (`confer serve --workers N`) prometheus-client's multiprocess
mode aggregates them; `confer serve` points `PROMETHEUS_MULTIPROC_DIR` at the data directory.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "confer_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "confer_http_request_duration_seconds",
    "Time from request start to the last byte of the response, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "confer_http_requests_in_flight",
    "HTTP requests being handled right now.",
    multiprocess_mode="livesum",
)

UNROUTED = "<unrouted>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's full template, e.g. `/api/v1/meetings/{meeting_id}`.

    FastAPI leaves the route of an included router in `scope["route"]` with its path relative
    to the include prefix; the prefix is the request path minus as many trailing segments as
    the relative template has (a fixed string, since the route matched).
    """
    route = scope.get("route")
    local = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not local:
        return UNROUTED
    path: str = scope["path"]
    if path == local or "{path}" in local or ":path}" in local:
        return str(local)
    segments = local.count("/")
    prefix = "/".join(path.split("/")[:-segments]) if segments else ""
    return prefix + local


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering
        done = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done = True
                self._observe(scope, status, started)
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            IN_FLIGHT.dec()
            if not done:  # failed or disconnected before the last byte
                self._observe(scope, status, started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        template = route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (method, template, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = REQUESTS.labels(method, template, str(status))
        counter.inc()
        hkey = (method, template)
        histogram = self._histograms.get(hkey)
        if histogram is None:
            histogram = self._histograms[hkey] = LATENCY.labels(method, template)
        histogram.observe(time.perf_counter() - started)
