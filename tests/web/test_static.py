"""How confer serves the client: pages revalidated, assets versioned and immutable, one CSP."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from tests.support.servers import ConferServer

from confer.web.assets import STATIC_DIR

CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def http(sqlite_server: ConferServer) -> httpx.Client:
    with httpx.Client(base_url=sqlite_server.url, timeout=10) as c:
        yield c


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


@pytest.mark.parametrize("path", ["/", "/join/ABC-DEF-GHI", "/join/abcdefghi", "/profile"])
def test_pages_are_the_client_revalidated_on_every_load(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["content-security-policy"] == CSP
    assert '<script type="module"' in r.text
    assert "{{ASSETS}}" not in r.text


def test_page_revalidation_answers_304_until_a_deploy(http: httpx.Client) -> None:
    etag = http.get("/").headers["etag"]
    again = http.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_assets_are_versioned_and_immutable(http: httpx.Client) -> None:
    urls = asset_urls(http.get("/").text)
    assert any(u.endswith("/js/app.js") for u in urls)
    assert any(u.endswith("/css/app.css") for u in urls)
    for url in urls:
        r = http.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == IMMUTABLE
        assert r.headers["x-content-type-options"] == "nosniff"
    js = http.get(next(u for u in urls if u.endswith(".js")))
    assert js.headers["content-type"].startswith("text/javascript")


def test_every_module_import_resolves_to_a_served_asset(http: httpx.Client) -> None:
    """No build step: the relative imports the browser follows must all exist."""
    base = next(u for u in asset_urls(http.get("/").text) if u.endswith("/js/app.js"))
    prefix = base.rsplit("/js/", 1)[0]
    seen: set[str] = set()
    todo = [base]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        r = http.get(url)
        assert r.status_code == 200, f"{url} is imported but not served"
        for spec in re.findall(r"""(?:from|import)\s+['"](\.[^'"]+)['"]""", r.text):
            todo.append(str(Path(url).parent / spec).replace("\\", "/"))
    assert len(seen) > 10
    assert all(u.startswith(prefix) for u in seen)


def test_an_unknown_version_or_file_is_a_404_envelope_not_a_stale_file(
    http: httpx.Client,
) -> None:
    url = next(u for u in asset_urls(http.get("/").text) if u.endswith("/js/app.js"))
    version = url.split("/")[2]
    for bad in (
        url.replace(version, "0" * len(version)),
        f"/assets/{version}/js/missing.js",
        f"/assets/{version}/../__init__.py",
        f"/assets/{version}/%2e%2e/assets.py",
    ):
        r = http.get(bad)
        assert r.status_code == 404, bad
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["type"] == "NotFound"


def test_asset_revalidation_answers_304(http: httpx.Client) -> None:
    url = asset_urls(http.get("/").text)[0]
    etag = http.get(url).headers["etag"]
    r = http.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.headers["cache-control"] == IMMUTABLE


def test_the_client_never_builds_html_from_strings() -> None:
    """User data reaches the DOM only as text: no innerHTML-style sinks anywhere."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    )
    offenders = [
        f"{path.relative_to(STATIC_DIR)}:{n}"
        for path in STATIC_DIR.rglob("*.js")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if sinks.search(line)
    ]
    assert offenders == []


def test_the_client_loads_nothing_from_other_origins() -> None:
    external = re.compile(r"""(?:src|href|url\()\s*=?\s*['"(]?\s*(?:https?:)?//""")
    offenders = [
        str(path.relative_to(STATIC_DIR))
        for path in STATIC_DIR.rglob("*")
        if path.suffix in {".html", ".css", ".js"} and external.search(path.read_text())
    ]
    assert offenders == []
