"""The local-disk backend: two-phase writes, ranges, deletion, and keys that cannot escape."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from confer.storage import BlobNotFound, LocalStorage, StorageError
from confer.storage.local import FLUSH_AT


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "uploads")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def read_all(
    storage: LocalStorage, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def test_a_committed_blob_reads_back_with_its_size_and_sha256(storage: LocalStorage) -> None:
    data = os.urandom(3 * FLUSH_AT + 123)
    writer = await storage.create()
    for i in range(0, len(data), 65536):
        await writer.write(data[i : i + 65536])
    info = await writer.commit()
    assert info.key == writer.key and info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert await storage.size(info.key) == len(data)
    assert await read_all(storage, info.key) == data


async def test_ranges_read_exactly_the_requested_bytes(storage: LocalStorage) -> None:
    data = os.urandom(700_000)
    writer = await storage.create()
    await writer.write(data)
    key = (await writer.commit()).key
    for start, end in [(0, 0), (0, 99), (5, 5), (262_143, 262_145), (699_000, 699_999)]:
        assert await read_all(storage, key, start, end) == data[start : end + 1]
    assert await read_all(storage, key, 699_990) == data[699_990:]


async def test_nothing_is_visible_before_commit_and_nothing_remains_after_abort(
    storage: LocalStorage,
) -> None:
    writer = await storage.create()
    await writer.write(b"x" * (FLUSH_AT + 1))
    with pytest.raises(BlobNotFound):
        await storage.size(writer.key)
    await writer.abort()
    await writer.abort()  # idempotent
    assert files_under(storage.root) == []
    with pytest.raises(StorageError):
        await writer.write(b"more")


async def test_keys_are_random_and_never_reach_outside_the_store(
    storage: LocalStorage, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    keys = set()
    for _ in range(20):
        writer = await storage.create()
        keys.add(writer.key)
        await writer.abort()
    assert len(keys) == 20 and all(len(k) == 32 for k in keys)
    for evil in ["../secret.txt", "../../etc/passwd", "/etc/passwd", "ab/../../x", "", "A" * 32]:
        with pytest.raises(BlobNotFound):
            await storage.size(evil)
        with pytest.raises(BlobNotFound):
            await read_all(storage, evil)
        with pytest.raises(BlobNotFound):
            await storage.delete(evil)
    assert secret.read_text() == "do not read"


async def test_delete_removes_the_blob_once(storage: LocalStorage) -> None:
    writer = await storage.create()
    await writer.write(b"bye")
    key = (await writer.commit()).key
    assert await storage.delete(key) is True
    assert await storage.delete(key) is False
    with pytest.raises(BlobNotFound):
        await storage.size(key)
    assert files_under(storage.root) == []


async def test_files_are_private_to_the_server_user(storage: LocalStorage) -> None:
    writer = await storage.create()
    await writer.write(b"private")
    key = (await writer.commit()).key
    assert storage.path_of(key).stat().st_mode & 0o077 == 0


async def test_stale_partials_from_a_crash_are_swept_on_first_use(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    (root / "partial").mkdir(parents=True)
    stale, fresh = root / "partial" / "a.part", root / "partial" / "b.part"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"new")
    old = time.time() - 3 * 86400
    os.utime(stale, (old, old))
    storage = LocalStorage(root)
    writer = await storage.create()
    await writer.abort()
    assert not stale.exists() and fresh.exists()


async def test_a_store_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "uploads").write_text("a file where the directory should be")
    with pytest.raises(StorageError):
        await LocalStorage(tmp_path / "uploads").create()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real full disk (needs root, as `make test` runs here)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        shutil.rmtree(mount, ignore_errors=True)


async def test_a_full_disk_fails_the_write_and_leaves_nothing(tiny_disk: Path) -> None:
    storage = LocalStorage(tiny_disk / "uploads")
    writer = await storage.create()
    with pytest.raises(StorageError):
        for _ in range(8):
            await writer.write(b"\0" * FLUSH_AT)
        await writer.commit()
    await writer.abort()
    assert files_under(tiny_disk) == []
    # The disk is usable again afterwards.
    writer = await storage.create()
    await writer.write(b"small")
    assert (await writer.commit()).size == 5
