"""Processes a confer deployment runs beside confer, started from Debian's packages on free
loopback ports and stopped by their PID: PostgreSQL, Redis, nginx. The tests start them too."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

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


class Nginx:
    """Debian's nginx with a rendered deploy/nginx/confer.conf, in the foreground."""

    def __init__(self, conf: str, run_dir: Path, port: int) -> None:
        self.run_dir = run_dir
        self.port = port
        self.conf_path = run_dir / "nginx.conf"
        self.conf_path.write_text(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Nginx:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(exe).exists():
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        check = subprocess.run(
            [exe, "-t", "-q", "-p", str(self.run_dir), "-c", str(self.conf_path)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx refuses the configuration:\n{check.stderr}")
        self.proc = subprocess.Popen(
            [exe, "-p", str(self.run_dir), "-c", str(self.conf_path), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.run_dir / "stderr.log", "w"),  # noqa: SIM115
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


class Coturn:
    """Debian's coturn with a rendered deploy/coturn/turnserver.conf, in the foreground."""

    def __init__(self, conf: str, run_dir: Path, port: int) -> None:
        self.port = port
        self.conf_path = run_dir / "turnserver.conf"
        self.conf_path.write_text(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Coturn:
        exe = shutil.which("turnserver")
        if exe is None:
            raise RuntimeError("coturn is not installed (apt-get install coturn)")
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)  # it listens on TCP too
        return self

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
