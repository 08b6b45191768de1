"""Raw ASGI header lists, as the pure-ASGI middlewares read and amend them."""

from __future__ import annotations

from collections.abc import Iterable


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of `name` (lower case), or None."""
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def add_vary(headers: list[tuple[bytes, bytes]], value: bytes) -> None:
    """Add `value` to the response's Vary header unless it is there already."""
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"vary":
            if value.lower() not in [p.strip().lower() for p in v.split(b",")]:
                headers[i] = (k, v + b", " + value)
            return
    headers.append((b"vary", value))
