"""`confer serve --workers N`: every worker listens on its own socket of the shared port."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from confer.workers import bind_sockets
from tests.support.servers import ConferServer, Redis

LISTEN, ESTABLISHED = "0A", "01"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's /proc")


def worker_pids(parent: int) -> list[int]:
    """The parent's multiprocessing workers (not its resource tracker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def sockets_of(pid: int, port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on `port` in `state` that process `pid` holds."""
    held = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process has ended
        return set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[8:-1]))
    on_port = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                on_port.add(int(fields[9]))
    return held & on_port


def serving(srv: ConferServer) -> bool:
    """Both workers started and each listening (a worker gets its socket after it starts)."""
    assert srv.proc is not None
    workers = worker_pids(srv.proc.pid)
    return len(workers) == 2 and all(sockets_of(pid, srv.port, LISTEN) for pid in workers)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def two_workers(server_factory: Callable[..., ConferServer], redis_server: Redis) -> ConferServer:
    srv = server_factory({"CONFER_REDIS_URL": redis_server.url}, ["--workers", "2"])
    wait_for(lambda: serving(srv))
    return srv


def test_each_worker_listens_on_a_socket_of_its_own(two_workers: ConferServer) -> None:
    assert two_workers.proc is not None
    workers = worker_pids(two_workers.proc.pid)
    listening = [sockets_of(pid, two_workers.port, LISTEN) for pid in workers]
    assert [len(s) for s in listening] == [1, 1]
    assert listening[0] != listening[1]


def test_connections_opened_at_once_are_spread_over_both_workers(
    two_workers: ConferServer,
) -> None:
    assert two_workers.proc is not None
    clients = [httpx.Client(base_url=two_workers.url) for _ in range(64)]
    try:
        with ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(lambda c: c.get("/health").status_code, clients))
        assert set(statuses) == {200}
        per_worker = [
            len(sockets_of(pid, two_workers.port, ESTABLISHED))
            for pid in worker_pids(two_workers.proc.pid)
        ]
        # (A connection idle past the keep-alive timeout on a slow machine may be gone.)
        assert sum(per_worker) >= 56, per_worker
        # By address hash: 32 ± 4 each; below 10 is a 5-sigma event, not chance.
        assert min(per_worker) >= 10, per_worker
    finally:
        for client in clients:
            client.close()


def test_a_worker_that_dies_is_replaced_and_no_request_is_refused(
    two_workers: ConferServer,
) -> None:
    assert two_workers.proc is not None
    parent = two_workers.proc.pid
    victim, survivor = worker_pids(parent)
    os.kill(victim, signal.SIGKILL)
    # New connections hashed to the dead worker's socket wait in its backlog for the
    # replacement; none is refused.
    for _ in range(20):
        with httpx.Client(base_url=two_workers.url, timeout=30) as fresh:
            assert fresh.get("/health").status_code == 200
    wait_for(lambda: victim not in worker_pids(parent) and serving(two_workers))
    assert survivor in worker_pids(parent)


def test_stopping_the_server_stops_every_worker(two_workers: ConferServer) -> None:
    assert two_workers.proc is not None
    workers = worker_pids(two_workers.proc.pid)
    two_workers.proc.send_signal(signal.SIGTERM)
    assert two_workers.proc.wait(20) == 0
    assert not [pid for pid in workers if alive(pid)]


def test_sockets_bound_to_port_zero_share_the_port_they_got() -> None:
    sockets = bind_sockets("127.0.0.1", 0, 3)
    try:
        assert len(sockets) == 3
        assert len({s.getsockname()[1] for s in sockets}) == 1
    finally:
        for s in sockets:
            s.close()


def test_a_port_taken_by_another_program_is_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", taken.getsockname()[1], 2)


def test_a_port_another_server_shares_with_so_reuseport_is_an_error() -> None:
    """A second confer on the port of a running one must not join its group silently."""
    running = bind_sockets("127.0.0.1", 0, 2)
    try:
        for s in running:
            s.listen()
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", running[0].getsockname()[1], 2)
    finally:
        for s in running:
            s.close()


def test_sighup_replaces_every_worker_while_the_port_keeps_answering(
    two_workers: ConferServer,
) -> None:
    assert two_workers.proc is not None
    parent = two_workers.proc.pid
    before = set(worker_pids(parent))
    two_workers.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while not (serving(two_workers) and before.isdisjoint(worker_pids(parent))):
        assert time.monotonic() < deadline, "workers were not replaced"
        with httpx.Client(base_url=two_workers.url, timeout=30) as fresh:
            assert fresh.get("/health").status_code == 200
        time.sleep(0.2)
    assert two_workers.proc.poll() is None


def test_workers_end_when_their_parent_is_killed(two_workers: ConferServer) -> None:
    assert two_workers.proc is not None
    workers = worker_pids(two_workers.proc.pid)
    two_workers.proc.kill()
    two_workers.proc.wait(10)
    wait_for(lambda: not [pid for pid in workers if alive(pid)])


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
