"""The OpenAPI document, the offline docs page, and schemathesis against the running server.

Schemathesis generates requests for every operation in `/api/v1/openapi.json` (a bounded
number per operation) and checks that none gets a 5xx, and that every response matches the
status codes, content types and schemas the document declares. It authenticates with a real
token so it reaches past 401.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from playwright.sync_api import sync_playwright
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import Api, User
from tests.support.chromium import HEADLESS_FLAGS
from tests.support.servers import ConferServer

# Examples per operation and mode: bounded so `make test` stays quick; raise it to dig deeper.
MAX_EXAMPLES = int(os.environ.get("CONFER_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CHROMIUM_ARGS = HEADLESS_FLAGS


def test_the_document_is_openapi_3_with_the_contract_paths(sqlite_server: ConferServer) -> None:
    doc = httpx.get(sqlite_server.url + "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/users/profile",
        "/api/v1/users/login",
    ]:
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_docs_page_works_offline_in_a_browser(sqlite_server: ConferServer) -> None:
    """Swagger UI renders every operation from files on this server alone, within the CSP."""
    origin = sqlite_server.url
    doc = httpx.get(origin + "/api/v1/openapi.json").json()
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            problems: list[str] = []
            foreign: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url)
            )
            page.goto(origin + "/api/v1/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            shown = set(page.locator(".opblock-summary-path").all_inner_texts())
            assert page.locator("button.authorize").count() == 1
        finally:
            browser.close()
    assert shown == set(doc["paths"])
    assert problems == [] and foreign == []


@pytest.fixture(scope="module")
def fuzz_user(sqlite_server: ConferServer) -> Iterator[User]:
    api = Api(sqlite_server.url)
    yield api.register()
    api.close()


@pytest.fixture(scope="module")
def api_schema(sqlite_server: ConferServer) -> BaseSchema:
    schema = schemathesis.openapi.from_url(sqlite_server.url + "/api/v1/openapi.json")
    schema.config.update(base_url=sqlite_server.url)
    return schema


def fuzz(operation: APIOperation, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


def test_no_operation_errors_or_breaks_its_declared_schema(
    api_schema: BaseSchema, fuzz_user: User
) -> None:
    """Valid and invalid inputs for every operation; the failures name their routes."""
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, fuzz_user.auth)
            except Unsatisfiable:  # nothing to get wrong: an operation without inputs
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
    assert operations >= 8
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())
