"""The inference queue's order: what people read first, partials only when nothing waits."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confer.ai.jobs import JobQueue


@dataclass
class _Stream:
    key: int


@dataclass
class _Job:
    stream: _Stream
    name: str
    final: bool = False


def drain(q: JobQueue) -> list[tuple[str, str]]:
    out = []
    while len(q):
        item = q.get()
        assert item is not None
        kind, job = item
        out.append((kind, job if isinstance(job, str) else job.name))
    return out


def test_finals_then_requests_then_partials() -> None:
    q = JobQueue()
    a, b = _Stream(1), _Stream(2)
    q.put_partial(_Job(a, "a-partial"))
    q.put_request("api-1")
    q.put_final(_Job(b, "b-final", True))
    q.put_partial(_Job(b, "b-partial"))
    q.put_request("api-2")
    assert drain(q) == [
        ("final", "b-final"),
        ("request", "api-1"),
        ("request", "api-2"),
        ("partial", "a-partial"),
        ("partial", "b-partial"),
    ]


def test_a_newer_partial_replaces_the_older_and_a_final_drops_it() -> None:
    q = JobQueue()
    s = _Stream(1)
    q.put_partial(_Job(s, "p1"))
    q.put_partial(_Job(s, "p2"))
    assert drain(q) == [("partial", "p2")]
    q.put_partial(_Job(s, "p3"))
    q.put_final(_Job(s, "f", True))
    assert drain(q) == [("final", "f")]


def test_finals_are_bounded_oldest_dropped() -> None:
    q = JobQueue(max_finals=2)
    for i in range(4):
        q.put_final(_Job(_Stream(i), f"f{i}", True))
    assert drain(q) == [("final", "f2"), ("final", "f3")] and q.dropped == 2


def test_get_blocks_until_work_or_close() -> None:
    q = JobQueue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.put_request("r")
    t.join(5)
    assert got == [("request", "r")]
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.close()
    t.join(5)
    assert got[-1] is None
