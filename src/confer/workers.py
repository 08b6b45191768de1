"""`confer serve --workers N`: worker processes with a listening socket each.

uvicorn's own supervisor hands one socket to every worker, and whichever worker wakes first
accepts a burst of new connections: with 64 connections opened at once one worker can hold 49
and the other 15, and the busier one sets the tail latency for everybody. On Linux each worker
here gets its own `SO_REUSEPORT` socket on the same port and the kernel spreads connections
over them by address hash. (The kernel only lets processes of the same user join such a group.)
Elsewhere the workers share one socket as before.

A worker that dies is replaced on its own socket, which the parent keeps open meanwhile, so
connections that arrive in between wait in its backlog instead of being refused.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

logger = logging.getLogger("uvicorn.error")


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets on one port (one shared socket where SO_REUSEPORT does not balance)."""
    per_worker = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count if per_worker else 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if per_worker:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            for bound in sockets:
                bound.close()
            raise
        port = sock.getsockname()[1]  # port 0: the others join the port the first one got
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def supervise(config: Config) -> int:
    """Run `config.workers` workers until SIGINT/SIGTERM; returns the exit status."""
    try:
        sockets = bind_sockets(config.host, config.port, config.workers)
    except OSError as exc:
        logger.error("cannot bind %s:%d: %s", config.host, config.port, exc)
        return STARTUP_FAILURE
    slots = [sockets[i % len(sockets)] for i in range(config.workers)]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = [_start(config, sock) for sock in slots]
    status = 0
    while not stop.wait(0.5):
        for i, worker in enumerate(workers):
            if worker.is_alive(timeout=config.timeout_worker_healthcheck):
                continue
            worker.kill()  # dead or hung
            worker.join()
            if worker.exitcode == STARTUP_FAILURE:
                # The app, its settings or TLS are broken: every restart would fail the same way.
                logger.error("worker [%s] failed to start; stopping", worker.pid)
                status = STARTUP_FAILURE
                stop.set()
                break
            logger.warning("worker [%s] died (exit %s); replacing it", worker.pid, worker.exitcode)
            workers[i] = _start(config, slots[i])
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join()
    for sock in sockets:
        sock.close()
    return status


def _start(config: Config, sock: socket.socket) -> Process:
    worker = Process(config, [sock])
    worker.start()
    return worker
