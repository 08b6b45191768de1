"""The default storage backend: files on local disk under `settings.upload_dir`.

Layout: `partial/<key>.part` while an upload streams in, then an atomic rename to
`blobs/<key[:2]>/<key>` on commit. Keys are 128-bit random hex generated here and checked
against a strict pattern on every access, so no path ever comes from a client. Disk I/O runs in
worker threads, in chunks of about `FLUSH_AT` bytes, to keep the event loop free; the sha256 is
computed in the same pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from confer.storage.base import BlobInfo, BlobNotFound, StorageError

log = logging.getLogger("confer.storage")

T = TypeVar("T")

KEY_PATTERN = re.compile(r"[0-9a-f]{32}")
FLUSH_AT = 1024 * 1024
READ_CHUNK = 256 * 1024
# Partial files older than this are left over from a crashed process.
PARTIAL_MAX_AGE = 24 * 3600.0


async def _io(fn: Callable[..., T], *args: object) -> T:
    try:
        return await asyncio.to_thread(fn, *args)
    except FileNotFoundError as exc:
        raise BlobNotFound(str(exc)) from exc
    except OSError as exc:
        raise StorageError(f"{exc.strerror or exc}") from exc


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.partial = root / "partial"
        self._swept = False

    def path_of(self, key: str) -> Path:
        if not KEY_PATTERN.fullmatch(key):
            raise BlobNotFound(f"not a storage key: {key!r}")
        return self.blobs / key[:2] / key

    async def create(self) -> LocalWriter:
        if not self._swept:
            self._swept = True
            await _io(self.sweep_partials, PARTIAL_MAX_AGE)
        writer = LocalWriter(self, secrets.token_hex(16))
        await _io(writer.open_sync)
        return writer

    async def size(self, key: str) -> int:
        return (await _io(os.stat, self.path_of(key))).st_size

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        fh: BinaryIO = await _io(open, self.path_of(key), "rb")
        try:
            await _io(fh.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await _io(fh.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            fh.close()

    async def delete(self, key: str) -> bool:
        path = self.path_of(key)

        def unlink() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            with contextlib.suppress(OSError):  # leave the shard directory if others remain
                path.parent.rmdir()
            return True

        return await _io(unlink)

    def sweep_partials(self, max_age: float) -> int:
        """Remove uploads a crashed process left half-written; returns how many."""
        if not self.partial.is_dir():
            return 0
        cutoff, removed = time.time() - max_age, 0
        for entry in self.partial.iterdir():
            with contextlib.suppress(OSError):
                if entry.suffix == ".part" and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        if removed:
            log.info("removed %d stale partial uploads", removed)
        return removed


class LocalWriter:
    def __init__(self, storage: LocalStorage, key: str) -> None:
        self.key = key
        self._partial = storage.partial / f"{key}.part"
        self._final = storage.path_of(key)
        self._fh: BinaryIO | None = None
        self._buf = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def open_sync(self) -> None:
        self._partial.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, "wb")

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise StorageError("write after commit or abort")
        self._buf += data
        self._size += len(data)
        if len(self._buf) >= FLUSH_AT:
            await self._flush()

    async def _flush(self) -> None:
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            await _io(self._write_sync, data)

    def _write_sync(self, data: bytes) -> None:
        assert self._fh is not None
        self._hash.update(data)
        self._fh.write(data)

    async def commit(self) -> BlobInfo:
        if self._closed:
            raise StorageError("commit after commit or abort")
        await self._flush()
        await _io(self._commit_sync)
        self._closed = True
        return BlobInfo(self.key, self._size, self._hash.hexdigest())

    def _commit_sync(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.rename(self._partial, self._final)

    async def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buf.clear()

        def drop() -> None:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
            self._partial.unlink(missing_ok=True)

        try:
            await asyncio.to_thread(drop)
        except OSError:
            log.exception("could not remove partial upload %s", self._partial)
