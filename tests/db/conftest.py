"""A migrated database of each kind the platform supports, fresh for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from confer.db.migrate import upgrade_async
from confer.db.session import Database
from tests.support.servers import Postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'confer.db'}"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"db_{uuid4().hex[:12]}")
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.dispose()
