"""Fixtures for the signaling tests: a REST client on the shared SQLite server, and servers
with settings of their own for limits that take time or load to reach."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.api import Api
from tests.support.servers import ConferServer


@pytest.fixture(scope="session")
def sig(sqlite_server: ConferServer) -> ConferServer:
    return sqlite_server


@pytest.fixture
def sapi(sig: ConferServer) -> Iterator[Api]:
    client = Api(sig.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tight_server(server_factory: Callable[..., ConferServer]) -> ConferServer:
    """Short idle timeout and resume grace, small queues and budgets, no media plane."""
    return server_factory(
        {
            "CONFER_SFU_ENABLED": "false",
            "CONFER_WS_IDLE_TIMEOUT": "3",
            "CONFER_WS_RESUME_GRACE": "1",
            "CONFER_WS_SEND_QUEUE": "64",
            "CONFER_WS_RATE_LIMIT_RPS": "5",
            "CONFER_WS_RATE_LIMIT_BURST": "10",
            "CONFER_CHAT_MAX_LENGTH": "100",
        }
    )


@pytest.fixture
def tapi(tight_server: ConferServer) -> Iterator[Api]:
    client = Api(tight_server.url)
    yield client
    client.close()
