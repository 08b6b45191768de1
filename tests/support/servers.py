"""Start real PostgreSQL, Redis and confer processes on free loopback ports, and stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from deploy.processes import PG_BIN, Postgres, Redis, free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
__all__ = [
    "PG_BIN",
    "ROOT",
    "ConferServer",
    "Postgres",
    "Redis",
    "cluster_env",
    "free_port",
    "stop",
    "wait_for_port",
]

# Settings that keep test servers quick and deterministic; tests override what they exercise.
TEST_ENV = {
    "CONFER_MODE": "dev",
    "CONFER_RATE_LIMIT_RPS": "10000",
    "CONFER_RATE_LIMIT_BURST": "10000",
    "CONFER_AUTH_RATE_LIMIT_RPS": "10000",
    "CONFER_AUTH_RATE_LIMIT_BURST": "10000",
    "CONFER_WS_RATE_LIMIT_RPS": "10000",
    "CONFER_WS_RATE_LIMIT_BURST": "10000",
}


def cluster_env(postgres: Postgres, redis: Redis, db: int, name: str) -> dict[str, str]:
    """Settings for nodes of one deployment: a database of their own in `postgres`, and a Redis
    database number of their own, so that no other test's nodes are candidates to hold their
    meetings' media (pub/sub is shared, but its topics are per meeting and per node)."""
    return {
        "CONFER_DATABASE_URL": postgres.create_database(name),
        "CONFER_REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{db}",
        "CONFER_SECRET_KEY": f"the secret {name}'s nodes share, long enough",
        "CONFER_SFU_ICE_ADDRESSES": "127.0.0.1",
        "CONFER_SFU_WORKERS": "1",
        "CONFER_UPLOADS_DIR": tempfile.mkdtemp(prefix=f"confer-{name}-uploads-"),
    }


class ConferServer:
    """`confer serve` as a real process on a free port, with its own data directory."""

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="confer-srv-"))
        self.env = {**os.environ, **TEST_ENV, "CONFER_DATA_DIR": str(self.data_dir), **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        scheme = "https" if "--tls" in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws/signaling"

    def start(self, timeout: float = 90.0) -> ConferServer:
        log = open(self.log_path, "w")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "confer", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"confer serve exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1, verify=False).status_code == 200:
                    return self
            time.sleep(0.1)
        output = self.log()
        stop(self.proc)  # never leave a half-started server behind
        raise TimeoutError(f"confer serve did not become healthy in {timeout}s:\n{output}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)
