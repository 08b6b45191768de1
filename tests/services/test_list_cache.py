"""Rendered bodies under one data version at a time, within a byte budget."""

from __future__ import annotations

from confer.services.list_cache import VersionedCache

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
    assert (len(cache), cache.size) == (1, 3)
    assert cache.get(3, "ana p1") is None


def test_a_page_rendered_under_an_older_version_is_not_kept() -> None:
    cache = VersionedCache(MB)
    cache.put(5, "ana p1", b"current")
    cache.put(4, "ana p1", b"late reader's page")
    cache.put(4, "bo p1", b"late reader's page")
    assert cache.get(5, "ana p1") == b"current"
    assert cache.get(4, "bo p1") is None and len(cache) == 1


def test_the_oldest_pages_make_room_within_the_byte_budget() -> None:
    cache = VersionedCache(10)
    for key in ("a", "b", "c"):
        cache.put(1, key, key.encode() * 4)
    assert [cache.get(1, k) for k in ("a", "b", "c")] == [None, b"bbbb", b"cccc"]
    cache.put(1, "b", b"BB")  # replacing a page frees what the old one took
    assert cache.size == 6 and cache.get(1, "c") == b"cccc"
    cache.put(1, "huge", b"x" * 11)  # larger than the whole budget: not kept, nothing evicted
    assert cache.get(1, "huge") is None and len(cache) == 2


def test_a_missing_version_or_a_budget_of_zero_caches_nothing() -> None:
    cache = VersionedCache(MB)
    cache.put(None, "ana p1", b"page")
    assert cache.get(None, "ana p1") is None
    off = VersionedCache(0)
    off.put(1, "ana p1", b"page")
    assert off.get(1, "ana p1") is None
