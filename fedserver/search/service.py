"""GET /api/v2/search decided: what kind of query it is, which results of each type, what to fetch.

A query is a URL, a handle (`@name@host`, `name@host`) or text. Accounts match by handle or
by name prefix; statuses by URL or by character n-grams of their text (newest first);
hashtags by prefix. `resolve` (a signed-in caller only; the handler checks) fetches unknown
handles and URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from activities.actor import Actor
from activities.text import normalize_hashtag

from ..config import Settings
from ..repo import api_accounts
from ..repo import search as search_repo
from .ngrams import query_terms

TYPES = ("accounts", "statuses", "hashtags")
_HANDLE = re.compile(r"^@?([\w.-]{1,64})@([a-z0-9.-]{1,253}(?::\d{1,5})?)$", re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search request."""

    q: str
    types: tuple[str, ...]
    resolve: bool
    limit: int
    offset: int
    following: bool = False
    account_id: int | None = None
    viewer_id: int | None = None


@dataclass
class SearchResults:
    """What was found, per type, in display order."""

    accounts: list[Actor] = field(default_factory=list)
    status_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


class Resolver(Protocol):
    """Fetches what is not known here (federation provides it; search does not fetch by itself)."""

    async def handle(self, handle: str) -> Actor | None:
        """The account `name@host`, fetched and stored when unknown."""

    async def url(self, url: str) -> Actor | int | None:
        """The account (Actor) or post (its id) at `url`, fetched and stored when unknown."""


def is_url(q: str) -> bool:
    """True for an http(s) URL without spaces."""
    return q.startswith(("https://", "http://")) and not any(ch.isspace() for ch in q)


def split_handle(q: str) -> tuple[str, str] | None:
    """(name, lower-case host) of `@name@host` or `name@host`, else None."""
    match = _HANDLE.match(q)
    return (match.group(1), match.group(2).lower()) if match else None


async def search(pool: asyncpg.Pool, settings: Settings, resolver: Resolver | None,
                 query: SearchQuery) -> SearchResults:
    """Run the search; `resolver` is used only when `query.resolve` is set."""
    results = SearchResults()
    q = query.q.strip()
    if not q:
        return results
    fetcher = resolver if query.resolve else None
    if is_url(q):
        return await _by_url(pool, settings, fetcher, query, q)
    if "accounts" in query.types:
        results.accounts = await _accounts(pool, settings, fetcher, query, q)
    async with pool.acquire() as conn:
        if "statuses" in query.types and split_handle(q) is None:
            results.status_ids = await _statuses(conn, query, q)
        if "hashtags" in query.types and (tag := normalize_hashtag(q)):
            results.tags = await search_repo.search_tags(conn, tag, limit=query.limit, offset=query.offset)
    return results


async def _statuses(conn: asyncpg.Connection, query: SearchQuery, q: str) -> list[int]:
    terms = query_terms(q)
    if not terms:
        return []
    return await search_repo.search_statuses(conn, terms, viewer_id=query.viewer_id, account_id=query.account_id,
                                             limit=query.limit, offset=query.offset)


async def _accounts(pool: asyncpg.Pool, settings: Settings, fetcher: Resolver | None, query: SearchQuery,
                    q: str) -> list[Actor]:
    """An exact handle first (fetched if unknown and resolving), then name-prefix matches."""
    handle = split_handle(q)
    exact: Actor | None = None
    if handle is not None:
        name, host = handle
        async with pool.acquire() as conn:
            exact = await api_accounts.get_visible_account_by_handle(conn, name, host)
        if exact is None and fetcher is not None and host != settings.instance.domain and query.offset == 0:
            exact = await fetcher.handle(f"{name}@{host}")
            exact = exact if exact is not None and exact.deleted_at is None else None
    prefix, domain = handle if handle else (q.removeprefix("@"), None)
    if not prefix.strip():
        return [exact] if exact else []
    async with pool.acquire() as conn:
        found = await search_repo.search_accounts(conn, prefix, domain=domain, viewer_id=query.viewer_id,
                                                  following=query.following, limit=query.limit,
                                                  offset=query.offset)
    if exact is not None and not query.following:
        found = [exact, *[a for a in found if a.id != exact.id]][:query.limit]
    return found


async def _by_url(pool: asyncpg.Pool, settings: Settings, fetcher: Resolver | None, query: SearchQuery,
                  url: str) -> SearchResults:
    """The known account or post at a URL, else (resolving) whatever the URL serves."""
    results = SearchResults()
    if query.offset:
        return results
    async with pool.acquire() as conn:
        actor = await search_repo.get_visible_account_by_url(conn, url)
        post_id = await search_repo.get_public_post_id_by_url(conn, url, query.viewer_id) if actor is None else None
    if actor is None and post_id is None and fetcher is not None:
        found = await fetcher.url(url)
        actor = found if isinstance(found, Actor) and found.deleted_at is None else None
        post_id = found if isinstance(found, int) else None
    if actor is not None and "accounts" in query.types:
        results.accounts = [actor]
    if post_id is not None and "statuses" in query.types:
        results.status_ids = [post_id]
    return results
