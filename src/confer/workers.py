"""`confer serve --workers N`: worker processes with a listening socket each.

uvicorn's own supervisor hands one socket to every worker, and whichever worker wakes first
accepts a burst of new connections: with 64 connections opened at once one worker can hold 49
and the other 15, and the busier one sets the tail latency for everybody. On Linux each worker
here gets its own `SO_REUSEPORT` socket on the same port and the kernel spreads connections
over them by address hash. (The kernel only lets processes of the same user join such a group.)
Elsewhere the workers share one socket as before.

A worker that dies is replaced on its own socket, which the parent keeps open meanwhile, so
connections that arrive in between wait in its backlog instead of being refused (and wait
for the replacement's start-up, a few seconds). SIGHUP replaces the workers one at a time;
SIGINT, SIGTERM and SIGQUIT stop them. Workers end with the parent, however it ends.

The kernel does not know whether a worker is busy, and uvicorn's health pings are answered by a
thread: a worker whose event loop is stuck is not replaced and keeps its share of new connections.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from collections import deque

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

logger = logging.getLogger("uvicorn.error")

_STOP = {signal.SIGINT, signal.SIGTERM, signal.SIGQUIT}
_IGNORED = (signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2)
_PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT = 60.0  # for a replacement to serve before its predecessor is retired


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets on one port (one shared socket where SO_REUSEPORT does not balance)."""
    per_worker = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if per_worker:
        # Sockets with SO_REUSEPORT may join any group of the same user on the port: another
        # confer still running there would silently share its connections with this one. A
        # socket without it fails if anything holds the port, as a plain server's would.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]  # port 0: the group takes the port the probe got
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if per_worker else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if per_worker:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Worker(Process):
    """uvicorn's worker process (health pings, `Server.run`) that ends with its parent."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.parent = os.getpid()
        super().__init__(config, sockets)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        if sys.platform == "linux":
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != self.parent:  # the parent ended before the line above
            return
        super().target(sockets)


def supervise(config: Config) -> int:
    """Run `config.workers` workers until SIGINT/SIGTERM/SIGQUIT; returns the exit status."""
    try:
        sockets = bind_sockets(config.host, config.port, config.workers)
    except OSError as exc:
        logger.error("cannot bind %s:%d: %s", config.host, config.port, exc)
        return STARTUP_FAILURE
    slots = [sockets[i % len(sockets)] for i in range(config.workers)]
    received: deque[int] = deque()
    wake = threading.Event()

    def on_signal(sig: int, _: object) -> None:
        received.append(sig)
        wake.set()

    for sig in (*_STOP, signal.SIGHUP):
        signal.signal(sig, on_signal)
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    workers: list[Worker] = []
    status = 0
    try:
        workers.extend(_start(config, sock) for sock in slots)
        while status == 0:
            wake.wait(0.5)
            wake.clear()
            if _STOP.intersection(received):
                break
            if signal.SIGHUP in received:
                received.clear()
                _replace_one_by_one(config, workers, slots)
            status = _replace_dead(config, workers, slots)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()
        for sock in sockets:
            sock.close()
    return status


def _replace_dead(config: Config, workers: list[Worker], slots: list[socket.socket]) -> int:
    for i, worker in enumerate(workers):
        if worker.is_alive(timeout=config.timeout_worker_healthcheck):
            continue
        worker.kill()  # dead or hung
        worker.join()
        if worker.exitcode == STARTUP_FAILURE:
            # The app, its settings or TLS are broken: every restart would fail the same way.
            logger.error("worker [%s] failed to start; stopping", worker.pid)
            return STARTUP_FAILURE
        logger.warning("worker [%s] died (exit %s); replacing it", worker.pid, worker.exitcode)
        workers[i] = _start(config, slots[i])
    return 0


def _replace_one_by_one(config: Config, workers: list[Worker], slots: list[socket.socket]) -> None:
    """SIGHUP: a new worker on each socket, serving before the old one is retired."""
    logger.info("reloading: replacing %d workers one at a time", len(workers))
    for i, old in enumerate(workers):
        new = _start(config, slots[i])
        if not new.wait_until_ready(STARTUP_TIMEOUT):
            new.kill()
            new.join()
            logger.error("worker [%s] did not start; keeping [%s]", new.pid, old.pid)
            return
        old.terminate()
        old.join()
        workers[i] = new


def _start(config: Config, sock: socket.socket) -> Worker:
    worker = Worker(config, [sock])
    worker.start()
    return worker
