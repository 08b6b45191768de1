"""The parent's side of the AI worker pipe, on a real pipe without a child process."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from confer.ai import client
from confer.ai.client import WorkerClient
from confer.ai.worker import WorkerConfig


def make_client(tmp_path: Path) -> WorkerClient:
    return WorkerClient(WorkerConfig(tmp_path, ""), lambda _e: None)


def test_packets_past_the_bound_are_dropped_and_control_messages_are_not(tmp_path: Path) -> None:
    c = make_client(tmp_path)
    for i in range(client.MAX_QUEUED_PACKETS + 5):
        c.feed(1, b"opus", i)
    c.close_stream(1)
    assert c.dropped == 5
    assert c._outbox.qsize() == client.MAX_QUEUED_PACKETS + 1


def test_the_writer_batches_packets_and_stops_on_a_sentinel_right_after_them(
    tmp_path: Path,
) -> None:
    c = make_client(tmp_path)
    parent, child = multiprocessing.Pipe(duplex=True)
    c._conn = parent
    for i in range(client.BATCH + 3):
        c.feed(1, b"x", i)
    c.close_stream(1)
    c.feed(2, b"y", 0)
    c._outbox.put(None)  # what stop() puts
    writer = threading.Thread(target=c._write, daemon=True)
    writer.start()
    writer.join(5)
    try:
        assert not writer.is_alive(), "the writer missed the sentinel after a packet"
        got = [child.recv() for _ in range(4)]
        assert not child.poll(0.1)
    finally:
        parent.close()
        child.close()
    assert [m[0] for m in got] == ["audio", "audio", "close", "audio"]
    assert len(got[0][1]) == client.BATCH and [p[2] for p in got[1][1]] == [256, 257, 258]
    assert got[2] == ("close", 1) and got[3][1] == [(2, b"y", 0)]
