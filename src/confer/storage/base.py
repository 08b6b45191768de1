"""The storage interface the files service writes uploads through.

A backend stores opaque blobs under keys it generates itself: callers never choose a key, so
nothing a client sends (a file name, an id) can steer where bytes land. Writes are two-phase:
bytes go to a writer that is invisible to readers until `commit()`, and `abort()` leaves
nothing behind, so a failed or refused upload is never half-written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """The backend failed (disk full, permissions, I/O error, missing blob)."""


class BlobNotFound(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


class BlobWriter(Protocol):
    key: str

    @property
    def size(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> BlobInfo:
        """Make the blob durable and readable under `key`."""
        ...

    async def abort(self) -> None:
        """Drop everything written so far; safe to call more than once or after a failure."""
        ...


class Storage(Protocol):
    async def create(self) -> BlobWriter: ...

    async def size(self, key: str) -> int:
        """Raise BlobNotFound when there is no committed blob under `key`."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start` .. `end` (inclusive; None: to the end) of a committed blob."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove a blob; False when it was not there."""
        ...
