"""The contract's topology on one box, for trying it: `make deploy-local`.

Starts, from Debian's packages, PostgreSQL, Redis and coturn on loopback; each of confer's
services as its own process on its contract port (user 8080, signaling 8081, meeting 8082,
media and AI together on 8083); nginx in front on https://127.0.0.1:8443 (HTTP/2, a
self-signed certificate). Uploads, secrets and logs live under `data/deploy/`; the database
and Redis start empty each run (a trial, not a server). Ctrl+C stops everything. The same
files (deploy/nginx, deploy/coturn, deploy/systemd) run each part on machines of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from confer.config import SERVICES
from deploy.processes import Coturn, Nginx, Postgres, Redis, free_port, stop, wait_for_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# One process per service on its contract port, but media and AI share one: live captions
# tap the SFU's audio in the process that runs it (sfu/captions.py).
CONFER = [sys.executable, "-m", "confer"]
PROCESSES = {"user": 8080, "signaling": 8081, "meeting": 8082, "media,ai": 8083}


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def render(template: Path, values: dict[str, object]) -> str:
    """Fill `{{name}}` placeholders; a placeholder left unfilled is an error, not a blank."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", str(value))
    left = sorted(set(re.findall(r"\{\{(\w+)\}\}", text)))
    if left:
        raise ValueError(f"{template.name}: no value for {', '.join(left)}")
    return text


def nginx_conf(
    run_dir: Path,
    *,
    https_port: int,
    http_port: int,
    cert: Path,
    key: Path,
    upstreams: dict[str, list[str]],
    listen: str = "127.0.0.1",
) -> str:
    """deploy/nginx/confer.conf for `upstreams`: service -> the host:port of each node."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "run_dir": run_dir,
        "worker_processes": 1,
        "https_port": https_port,
        "http_port": http_port,
        "cert": cert,
        "key": key,
        "listen": listen,
    }
    for service in SERVICES:
        values[f"{service}_servers"] = " ".join(
            f"server {addr} max_fails=1 fail_timeout=5s;" for addr in upstreams[service]
        )
    return render(HERE / "nginx" / "confer.conf", values)


def coturn_conf(run_dir: Path, *, port: int, secret: str, extra: str = "") -> str:
    relay = free_port()
    return render(
        HERE / "coturn" / "turnserver.conf",
        {
            "listen_ip": "127.0.0.1",
            "relay_ip": "127.0.0.1",
            "port": port,
            "min_port": relay,
            "max_port": relay + 50,
            "secret": secret,
            "realm": "confer.local",
            "log_file": run_dir / "turnserver.log",
            "extra": extra,
        },
    )


def self_signed(run_dir: Path) -> tuple[Path, Path]:
    from confer.tls import ensure_self_signed

    return ensure_self_signed(run_dir, "127.0.0.1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(ROOT / "data" / "deploy"))
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="added to every service's contract port (for a box where 8080-8083 are taken)",
    )
    args = parser.parse_args(argv)
    ports = {only: port + args.port_offset for only, port in PROCESSES.items()}
    run_dir = Path(args.dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    secret_file = run_dir / "secrets"
    if not secret_file.exists():
        secret_file.write_text(f"{secrets.token_urlsafe(48)}\n{secrets.token_urlsafe(32)}\n")
        secret_file.chmod(0o600)
    jwt_secret, turn_secret = secret_file.read_text().split()
    started: list[object] = []
    services: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        pg = Postgres().start()
        started.append(pg)
        redis = Redis().start()
        started.append(redis)
        turn_port = free_port()
        turn = Coturn(coturn_conf(run_dir, port=turn_port, secret=turn_secret), run_dir, turn_port)
        started.append(turn.start())
        env = {
            **os.environ,
            "CONFER_MODE": "prod",
            "CONFER_SECRET_KEY": jwt_secret,
            "CONFER_DATA_DIR": str(run_dir / "confer"),
            "CONFER_DATABASE_URL": pg.create_database("confer"),
            "CONFER_REDIS_URL": redis.url,
            "CONFER_PUBLIC_URL": f"https://127.0.0.1:{args.https_port}",
            "CONFER_TURN_URLS": f"turn:127.0.0.1:{turn_port}?transport=udp",
            "CONFER_TURN_SECRET": turn_secret,
        }
        subprocess.run([*CONFER, "migrate"], env=env, check=True)
        for only, port in ports.items():
            log = open(run_dir / f"{only.replace(',', '+')}.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [*CONFER, "serve", "--only", only, "--port", str(port), "--no-migrate"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            services.append(proc)
            wait_for_port(port, timeout=60, proc=proc)
        cert, key = self_signed(run_dir)
        upstreams = {
            s: [f"127.0.0.1:{p}" for only, p in ports.items() if s in only.split(",")]
            for s in SERVICES
        }
        conf = nginx_conf(
            run_dir,
            https_port=args.https_port,
            http_port=free_port(),
            cert=cert,
            key=key,
            upstreams=upstreams,
        )
        started.append(Nginx(conf, run_dir, args.https_port).start())
        print(f"confer: the whole platform behind nginx at https://127.0.0.1:{args.https_port}")
        print(f"confer: logs and state in {run_dir}; Ctrl+C stops everything")
        while all(p.poll() is None for p in services):
            time.sleep(1)
        print("confer: a service stopped; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in services:
            stop(proc)
        for part in reversed(started):
            part.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
