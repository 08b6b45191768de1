"""Fixtures: real PostgreSQL, Redis and confer servers, started once per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.api import Api
from tests.support.servers import ConferServer, Postgres, Redis


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres().start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    r = Redis().start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def server_factory() -> Iterator[Callable[..., ConferServer]]:
    """Start extra confer servers with their own settings; all stopped at the end."""
    started: list[ConferServer] = []

    def make(env: dict[str, str] | None = None, args: list[str] | None = None) -> ConferServer:
        srv = ConferServer(env, args).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def sqlite_server(server_factory: Callable[..., ConferServer]) -> ConferServer:
    return server_factory()


@pytest.fixture(scope="session")
def postgres_server(
    server_factory: Callable[..., ConferServer], postgres: Postgres
) -> ConferServer:
    return server_factory({"CONFER_DATABASE_URL": postgres.create_database("confer_api")})


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> ConferServer:
    """The same API tests run against SQLite and against a real PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def api(server: ConferServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()
