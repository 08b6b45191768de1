"""Blob storage for uploads: an interface (`base`) and the local-disk default (`local`)."""

from __future__ import annotations

from confer.config import Settings
from confer.storage.base import BlobInfo, BlobNotFound, BlobWriter, Storage, StorageError
from confer.storage.local import LocalStorage

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobWriter",
    "LocalStorage",
    "Storage",
    "StorageError",
    "create_storage",
]


def create_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.upload_dir)
