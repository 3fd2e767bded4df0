"""The principal cache serves an entry only within the generation it was read in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.auth_cache import PrincipalCache
from domain.enums import ActorKind, Role
from domain.principal import Principal

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TOKEN = Principal(account_id=1, kind=ActorKind.API_TOKEN, role=Role.ADMIN, token_id=7)


class Feed:
    """A change feed whose generation the test sets (None: it cannot vouch)."""

    def __init__(self, generation: int | None = 0) -> None:
        self.value = generation

    def generation(self) -> int | None:
        return self.value

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def stored(cache: PrincipalCache, key: str = "hash", expires_at: datetime | None = None) -> None:
    cache.put(key, TOKEN, generation=cache.generation(), expires_at=expires_at, stamped=NOW)


def test_given_an_entry_when_nothing_changed_then_it_is_served():
    cache = PrincipalCache(Feed())
    stored(cache)

    entry = cache.get("hash", NOW)

    assert entry is not None
    assert entry.principal == TOKEN
    assert entry.stamped == NOW


def test_given_an_entry_when_the_feed_reports_a_change_then_it_is_not_served_again():
    feed = Feed()
    cache = PrincipalCache(feed)
    stored(cache)

    feed.value = 1

    assert cache.get("hash", NOW) is None
    feed.value = 0  # even if the feed's number came back, the entry is gone
    assert cache.get("hash", NOW) is None


def test_given_an_entry_when_this_process_commits_then_it_is_not_served_again():
    cache = PrincipalCache(Feed())
    stored(cache)

    cache.changed()

    assert cache.get("hash", NOW) is None


def test_given_a_feed_that_cannot_vouch_when_asked_then_nothing_is_stored_or_served():
    feed = Feed(None)
    cache = PrincipalCache(feed)
    stored(cache)
    feed.value = 0

    assert cache.get("hash", NOW) is None


def test_given_an_entry_when_the_feed_goes_silent_then_it_is_dropped():
    feed = Feed()
    cache = PrincipalCache(feed)
    stored(cache)

    feed.value = None
    assert cache.get("hash", NOW) is None
    feed.value = 0

    assert cache.get("hash", NOW) is None


def test_given_a_read_that_started_before_a_change_when_stored_after_it_then_it_is_not_kept():
    feed = Feed()
    cache = PrincipalCache(feed)
    before = cache.generation()

    feed.value = 1
    cache.put("hash", TOKEN, generation=before, expires_at=None, stamped=NOW)

    assert cache.get("hash", NOW) is None


def test_given_a_session_entry_when_the_session_expires_then_it_is_not_served():
    cache = PrincipalCache(Feed())
    stored(cache, expires_at=NOW + timedelta(days=14))

    assert cache.get("hash", NOW + timedelta(days=14) - timedelta(seconds=1)) is not None
    assert cache.get("hash", NOW + timedelta(days=14)) is None


def test_given_an_entry_older_than_its_bound_when_asked_then_it_is_not_served():
    cache = PrincipalCache(Feed(), ttl=-1.0)
    stored(cache)

    assert cache.get("hash", NOW) is None


def test_given_a_full_cache_when_another_is_stored_then_the_oldest_goes():
    cache = PrincipalCache(Feed(), max_entries=2)
    for key in ("a", "b", "c"):
        stored(cache, key)

    assert [cache.get(key, NOW) is not None for key in ("a", "b", "c")] == [False, True, True]
