"""Rendered meeting lists, kept per process while the data behind them is unchanged.

A list is the dearest read there is: index look-ups per visible meeting, a sort and a count on
the database, then decoding and rendering the rows (on PostgreSQL ~0.3 ms of database CPU and
~0.3 ms here per page of 20). Lists are read far more often than what they show changes (a
client reloads its list; now and then a meeting is created or starts, or someone joins), so each
process keeps the pages it rendered, keyed by who asked for what.

A page is valid while `data_versions.meeting_lists` holds the number it was rendered under.
Database triggers raise that number in the very transaction of every write a list depends on
(migration 0004), whichever process or server made it, and the caller's row is read together
with it in the statement every authenticated request makes anyway; so a client that has been
told its write succeeded never gets a page from before it.
"""

from __future__ import annotations

from collections.abc import Hashable

ENTRY_OVERHEAD = 200  # bytes a cached body costs beyond its length (key, dict slot, object)


class VersionedCache:
    """Rendered bodies under one data version at a time, up to `max_bytes` in all. A version
    of None (the counter's row is missing) caches nothing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.version: int | None = None
        self.size = 0
        self._bodies: dict[Hashable, bytes] = {}

    def get(self, version: int | None, key: Hashable) -> bytes | None:
        return self._bodies.get(key) if version == self.version else None

    def put(self, version: int | None, key: Hashable, body: bytes) -> None:
        cost = len(body) + ENTRY_OVERHEAD
        if version is None or cost > self.max_bytes:
            return
        if version != self.version:
            # Newer data; or a reader that read the version just before a write finished last
            # (its page then waits for the next miss); or a counter that went back (a database
            # restored under running servers), whose old numbers must not find old pages.
            self._bodies.clear()
            self.size = 0
            self.version = version
        old = self._bodies.pop(key, None)
        if old is not None:
            self.size -= len(old) + ENTRY_OVERHEAD
        while self.size + cost > self.max_bytes:
            oldest = self._bodies.pop(next(iter(self._bodies)))
            self.size -= len(oldest) + ENTRY_OVERHEAD
        # A copy of exactly its length: orjson's output keeps a larger buffer (4 KB or more).
        self._bodies[key] = bytes(memoryview(body))
        self.size += cost

    def __len__(self) -> int:
        return len(self._bodies)
