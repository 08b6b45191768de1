"""Rendered bodies under one data version at a time, within a byte budget."""

from __future__ import annotations

from confer.services.list_cache import ENTRY_OVERHEAD, VersionedCache

MB = 1 << 20


def test_a_page_is_served_while_the_version_is_the_one_it_was_rendered_under() -> None:
    cache = VersionedCache(MB)
    cache.put(3, "ana p1", b"page")
    assert cache.get(3, "ana p1") == b"page"
    assert cache.get(3, "bo p1") is None


def test_a_newer_version_drops_every_page_rendered_before_it() -> None:
    cache = VersionedCache(MB)
    cache.put(3, "ana p1", b"old")
    assert cache.get(4, "ana p1") is None
    cache.put(4, "bo p1", b"new")
    assert (len(cache), cache.size) == (1, 3 + ENTRY_OVERHEAD)
    assert cache.get(3, "ana p1") is None


def test_a_counter_that_went_back_finds_none_of_the_pages_from_before() -> None:
    """A database restored under running servers counts from an older number again."""
    cache = VersionedCache(MB)
    cache.put(57, "ana p1", b"before the restore")
    cache.put(3, "bo p1", b"after")
    assert cache.get(3, "bo p1") == b"after"
    for version in range(4, 58):
        cache.put(version, "bo p1", b"later")
    assert cache.get(57, "ana p1") is None


def test_the_oldest_pages_make_room_within_the_byte_budget() -> None:
    cache = VersionedCache(2 * (4 + ENTRY_OVERHEAD))
    for key in ("a", "b", "c"):
        cache.put(1, key, key.encode() * 4)
    assert [cache.get(1, k) for k in ("a", "b", "c")] == [None, b"bbbb", b"cccc"]
    cache.put(1, "b", b"BB")  # replacing a page frees what the old one took
    assert cache.size == 6 + 2 * ENTRY_OVERHEAD and cache.get(1, "c") == b"cccc"
    cache.put(1, "huge", b"x" * cache.max_bytes)  # more than the whole budget: not kept
    assert cache.get(1, "huge") is None and len(cache) == 2


def test_a_missing_version_or_a_budget_of_zero_caches_nothing() -> None:
    cache = VersionedCache(MB)
    cache.put(None, "ana p1", b"page")
    assert cache.get(None, "ana p1") is None
    off = VersionedCache(0)
    off.put(1, "ana p1", b"page")
    assert off.get(1, "ana p1") is None
