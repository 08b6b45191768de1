"""Rendered pages under one data version at a time."""

from __future__ import annotations

from confer.services.list_cache import VersionedCache


def test_a_page_is_served_while_the_version_is_the_one_it_was_rendered_under() -> None:
    cache = VersionedCache()
    cache.put(3, "ana p1", "page")
    assert cache.get(3, "ana p1") == "page"
    assert cache.get(3, "bo p1") is None


def test_a_newer_version_drops_every_page_rendered_before_it() -> None:
    cache = VersionedCache()
    cache.put(3, "ana p1", "old")
    assert cache.get(4, "ana p1") is None
    cache.put(4, "bo p1", "new")
    assert len(cache) == 1
    assert cache.get(3, "ana p1") is None


def test_a_page_rendered_under_an_older_version_is_not_kept() -> None:
    cache = VersionedCache()
    cache.put(5, "ana p1", "current")
    cache.put(4, "ana p1", "late reader's page")
    cache.put(4, "bo p1", "late reader's page")
    assert cache.get(5, "ana p1") == "current"
    assert cache.get(4, "bo p1") is None and len(cache) == 1


def test_the_oldest_pages_make_room_beyond_the_limit() -> None:
    cache = VersionedCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(1, key, key.upper())
    assert [cache.get(1, k) for k in ("a", "b", "c")] == [None, "B", "C"]
    cache.put(1, "b", "B2")  # replacing a page takes no room
    assert cache.get(1, "c") == "C"


def test_a_missing_version_or_a_size_of_zero_caches_nothing() -> None:
    cache = VersionedCache()
    cache.put(None, "ana p1", "page")
    assert cache.get(None, "ana p1") is None
    off = VersionedCache(max_entries=0)
    off.put(1, "ana p1", "page")
    assert off.get(1, "ana p1") is None
