"""Search's `resolve=true`: find an account by `@name@host` or an account or post by URL, fetching it when unknown.

Fetches go through the one SSRF-safe HttpClient, signed by the instance actor, within a
small budget (checklist 36: search-by-URL aimed at internal hosts is refused at connect
time). Whatever cannot be fetched or parsed resolves to nothing, as on Mastodon.
"""

from __future__ import annotations

import logging

import asyncpg

from activities.actor import Actor
from activities.parse import (
    ACTOR_TYPES,
    POST_TYPES,
    ParseError,
    parse_actor,
    parse_post,
    ref,
)
from activities.text import tag_hashtags
from activities.urls import BadId, same_origin

from ..config import Settings
from ..net.http import FetchBudget, FetchError, HttpClient, Signer
from ..repo import interactions as interactions_repo
from ..repo import search as search_repo
from ..repo import status_meta, status_views
from ..repo.remote_actors import upsert_remote_actor
from .remote import ensure_remote_actor
from .targets import TargetError, is_local_url, resolve_actor

log = logging.getLogger("fedserver.federation.resolve")

FETCH_BUDGET = 5


async def resolve_handle(pool: asyncpg.Pool, settings: Settings, http: HttpClient, handle: str) -> Actor | None:
    """The account `name@host`: known, or found by WebFinger, fetched and stored."""
    try:
        known, fetched = await resolve_actor(pool, settings, http, handle)
    except TargetError as exc:
        log.info("search could not resolve %s: %s", handle[:200], exc)
        return None
    if known is not None or fetched is None:
        return known
    async with pool.acquire() as conn, conn.transaction():
        try:
            return await upsert_remote_actor(conn, fetched)
        except ParseError:
            return None


async def resolve_url(pool: asyncpg.Pool, settings: Settings, http: HttpClient, signer: Signer,
                      url: str) -> Actor | int | None:
    """A remote account (Actor) or post (its id) fetched from `url` and stored; None if it is neither."""
    try:
        if is_local_url(settings, url):
            return None
    except TargetError:
        return None
    budget = FetchBudget(FETCH_BUDGET)
    try:
        document = await http.fetch_activitypub(url, signer=signer, budget=budget)
        kind = document.get("type")
        if kind in ACTOR_TYPES:
            return await _store_actor(pool, document)
        if kind in POST_TYPES:
            return await _store_post(pool, http, signer, document, budget)
    except (FetchError, ParseError, BadId) as exc:
        log.info("search could not resolve %s: %s", url[:200], exc)
    return None


async def _store_actor(pool: asyncpg.Pool, document: dict) -> Actor:
    remote = parse_actor(document)
    async with pool.acquire() as conn, conn.transaction():
        return await upsert_remote_actor(conn, remote)


async def _store_post(pool: asyncpg.Pool, http: HttpClient, signer: Signer, document: dict,
                      budget: FetchBudget) -> int | None:
    """Store a fetched post and its author (fetched from the author's own server); its id."""
    author_uri = ref(document.get("attributedTo"))
    if not author_uri or not same_origin(author_uri, str(document.get("id"))):
        raise ParseError("the post's author is not on the post's own server")
    author = await ensure_remote_actor(pool, http, signer, author_uri, budget)
    post = parse_post(document, followers_uri=author.followers_uri)
    async with pool.acquire() as conn, conn.transaction():
        if await interactions_repo.is_tombstoned(conn, post.id, author.uri):
            return None
        if await interactions_repo.insert_remote_post(conn, post, author.id):
            object_id = await status_views.get_object_id(conn, post.id)
            # Mentions and hashtags as an inbound Create records them; no timeline fan-out for a lookup.
            await status_meta.set_mentions(conn, object_id, list(post.mentions))
            await status_meta.set_tags(conn, object_id, tag_hashtags(post.raw.get("tag")))
        return await search_repo.get_public_post_id_by_url(conn, post.id, None)


class RemoteResolver:
    """What search may ask of federation: one account by handle, an account or post by URL."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, http: HttpClient, signer: Signer):
        self.pool, self.settings, self.http, self.signer = pool, settings, http, signer

    async def handle(self, handle: str) -> Actor | None:
        """The account `name@host`, fetched and stored when unknown."""
        return await resolve_handle(self.pool, self.settings, self.http, handle)

    async def url(self, url: str) -> Actor | int | None:
        """The account (Actor) or post (its id) at `url`, fetched and stored when unknown."""
        return await resolve_url(self.pool, self.settings, self.http, self.signer, url)
