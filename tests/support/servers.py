"""Start real PostgreSQL, Redis and confer processes on free loopback ports, and stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _as_postgres_user() -> list[str]:
    """initdb refuses to run as root; use Debian's `postgres` account when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Postgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="confer-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Postgres:
        if not (PG_BIN / "postgres").exists():
            raise RuntimeError("PostgreSQL 15 is not installed (make test installs it)")
        prefix = _as_postgres_user()
        if prefix:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "confer",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [
                *prefix,
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "log", "w"),  # noqa: SIM115
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def create_database(self, name: str) -> str:
        for _ in range(50):
            r = subprocess.run(
                [
                    *_as_postgres_user(),
                    str(PG_BIN.parent / "bin" / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "confer",
                    name,
                ],
                capture_output=True,
                text=True,
            )
            if r.returncode == 0:
                break
            if "starting up" not in r.stderr:
                raise RuntimeError(r.stderr)
            time.sleep(0.1)
        return f"postgresql+asyncpg://confer@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


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
