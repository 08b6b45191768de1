"""The `confer` command: help that explains, migrations on SQLite and PostgreSQL, user creation,
and production mode refusing weak secrets while dev mode keeps its generated one."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from confer.db.migrate import alembic_config
from tests.support.api import PASSWORD, Api, ok
from tests.support.servers import PG_BIN, ROOT, TEST_ENV, ConferServer, Postgres

CORE_TABLES = {"users", "refresh_tokens", "meetings", "participants", "chat_messages", "files"}
STRONG_SECRET = "k3N9vQ2xR7tY4wP8zL1mB6cF0hJ5sD2gA9eU3iO7"


def confer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **TEST_ENV, **(env or {})}
    for key in ("CONFER_SECRET_KEY", "CONFER_DATABASE_URL", "CONFER_REDIS_URL"):
        if env is None or key not in env:
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "confer", *args],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ["serve", "migrate", "user", "CONFER_"]),
        (("serve",), ["--host", "--port", "--tls", "--cert", "--key", "--workers", "--data-dir"]),
        (("migrate",), ["CONFER_DATABASE_URL", "latest schema"]),
        (("user", "create"), ["username", "email", "--password", "--full-name"]),
    ],
)
def test_every_command_explains_itself(args: tuple[str, ...], words: list[str]) -> None:
    r = confer(*args, "--help")
    assert r.returncode == 0, r.stderr
    for word in words:
        assert word in r.stdout, (word, r.stdout)


def test_a_missing_command_is_an_error_with_usage() -> None:
    r = confer()
    assert r.returncode == 2
    assert "usage: confer" in r.stderr


def test_migrate_creates_the_schema_in_a_fresh_sqlite_directory(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    r = confer("migrate", env={"CONFER_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stderr
    assert "latest schema" in r.stderr
    with sqlite3.connect(data / "confer.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert tables >= CORE_TABLES
    assert version == head_revision()
    # Running it again is a no-op, not an error.
    assert confer("migrate", env={"CONFER_DATA_DIR": str(data)}).returncode == 0


def test_migrate_creates_the_schema_on_postgresql(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.create_database("cli_migrate")
    r = confer("migrate", env={"CONFER_DATA_DIR": str(tmp_path), "CONFER_DATABASE_URL": url})
    assert r.returncode == 0, r.stderr
    psql = subprocess.run(
        [
            str(PG_BIN / "psql"),
            *("-h", "127.0.0.1", "-p", str(postgres.port), "-U", "confer", "-d", "cli_migrate"),
            *("-At", "-c", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(psql.stdout.split()) >= CORE_TABLES | {"alembic_version"}
    assert not (tmp_path / "confer.db").exists()


def test_user_create_makes_an_account_that_can_log_in(
    tmp_path: Path, server_factory: Callable[..., ConferServer]
) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path)}
    args = ["carol", "carol@example.com", "--full-name", "Carol", "--password", PASSWORD]
    r = confer("user", "create", *args, env=env)
    assert r.returncode == 0, r.stderr
    assert "created user carol" in r.stdout
    api = Api(server_factory(env).url)
    try:
        data = ok(api.post("/api/v1/auth/login", json={"username": "carol", "password": PASSWORD}))
        assert data["username"] == "carol"
        profile = ok(
            api.get("/api/v1/users/profile", headers={"Authorization": f"Bearer {data['token']}"})
        )
        assert profile["full_name"] == "Carol" and profile["email"] == "carol@example.com"
    finally:
        api.close()


def test_user_create_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path), "CONFER_NEW_USER_PASSWORD": PASSWORD}
    r = confer("user", "create", "dave", "dave@example.com", env=env)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "confer.db") as db:
        hashed = db.execute("SELECT password_hash FROM users WHERE username='dave'").fetchone()[0]
    assert PASSWORD not in hashed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("erin", "erin@example.com", "--password", "short"), "at least 8"),
        (("erin", "not-an-email", "--password", PASSWORD), "email"),
    ],
)
def test_user_create_refuses_bad_input_plainly(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    r = confer("user", "create", *args, env={"CONFER_DATA_DIR": str(tmp_path)})
    assert r.returncode == 1
    assert message in r.stderr.lower() and "Traceback" not in r.stderr


def test_user_create_refuses_a_taken_name(tmp_path: Path) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path)}
    first = confer("user", "create", "frank", "f@example.com", "--password", PASSWORD, env=env)
    assert first.returncode == 0, first.stderr
    r = confer("user", "create", "frank", "g@example.com", "--password", PASSWORD, env=env)
    assert r.returncode == 1
    assert "exists" in r.stderr.lower() and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "CONFER_SECRET_KEY is required"),
        ("short-secret", "at least 32 characters"),
        ("changeme", "well-known"),
        ("secret", "well-known"),
    ],
)
def test_production_mode_refuses_weak_secrets(
    tmp_path: Path, secret: str | None, message: str
) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path), "CONFER_MODE": "prod"}
    if secret is not None:
        env["CONFER_SECRET_KEY"] = secret
    r = confer("serve", "--port", "1", env=env)  # refused before it would bind
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "refusing to start" in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "secret.key").exists()


def test_production_mode_refuses_to_create_users_without_a_secret(tmp_path: Path) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path), "CONFER_MODE": "prod"}
    r = confer("user", "create", "gina", "g@example.com", "--password", PASSWORD, env=env)
    assert r.returncode == 2
    assert "CONFER_SECRET_KEY is required" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "confer.db").exists()  # nothing written


def test_production_mode_starts_with_a_strong_secret(
    server_factory: Callable[..., ConferServer],
) -> None:
    srv = server_factory({"CONFER_MODE": "prod", "CONFER_SECRET_KEY": STRONG_SECRET})
    api = Api(srv.url)
    try:
        user = api.register()
        ok(api.get("/api/v1/users/profile", user))
    finally:
        api.close()


def test_dev_mode_keeps_its_generated_secret_across_restarts(tmp_path: Path) -> None:
    env = {"CONFER_DATA_DIR": str(tmp_path)}
    first = ConferServer(env).start()
    try:
        api = Api(first.url)
        user = api.register()
        api.close()
    finally:
        first.stop()
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) >= 32
    second = ConferServer(env).start()
    try:
        api = Api(second.url)
        assert ok(api.get("/api/v1/users/profile", user))["user_id"] == user.user_id
        api.close()
    finally:
        second.stop()
