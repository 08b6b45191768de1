"""The client's static files, held in memory under one content-hashed version.

Every asset URL is `/assets/<version>/<path>`, where the version is a hash of the whole tree.
ES modules import each other by relative path, so they inherit the prefix and no build step
rewrites them; a new deploy changes the version, which lets every asset be cached forever.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Bundle:
    version: str
    files: dict[str, Asset]
    index_html: bytes

    def get(self, version: str, path: str) -> Asset | None:
        """Only the current version's known files: no filesystem lookup, so no traversal."""
        if version != self.version:
            return None
        return self.files.get(path)


def load_bundle(root: Path = STATIC_DIR) -> Bundle:
    files: dict[str, Asset] = {}
    tree = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None:
            continue
        rel = path.relative_to(root).as_posix()
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        tree.update(rel.encode() + b"\0" + digest.encode())
        files[rel] = Asset(body, content_type, f'"{digest[:16]}"')
    version = tree.hexdigest()[:12]
    index = files.pop("index.html", None)
    if index is None:
        raise RuntimeError(f"the web client is missing: no index.html under {root}")
    html = index.body.replace(b"{{ASSETS}}", f"/assets/{version}".encode())
    return Bundle(version, files, html)
