"""Find what a local actor acts on: an actor by URL or `@name@domain`, a post by URL.

The database answers first; anything unknown is fetched with a signed GET by the
instance actor, before the caller opens its transaction.
"""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.parse import ParseError, RemoteActor, parse_post
from activities.urls import BadId, id_host, same_origin

from ..config import Settings
from ..net.http import FetchError, HttpClient, parse_handle
from ..repo import actors as actors_repo
from ..repo import interactions as interactions_repo
from ..repo import remote_actors as handles_repo
from ..repo import statuses as statuses_repo
from .keys import instance_signer
from .remote import ensure_remote_actor, fetch_remote_actor


class TargetError(Exception):
    """The actor or post named cannot be found or used; the message says why."""


def is_url(target: str) -> bool:
    """True for an http(s) URL, False for a handle."""
    return target.startswith(("https://", "http://"))


def _handle(target: str) -> tuple[str, str]:
    try:
        return parse_handle(target)
    except FetchError as exc:
        raise TargetError(f"{exc.reason}; give an actor URL or @name@domain") from None


def is_local_url(settings: Settings, url: str) -> bool:
    """True when the URL is on this instance's domain."""
    try:
        return id_host(url) == id_host(settings.base_url)
    except BadId:
        raise TargetError(f"not a valid URL: {url[:200]}") from None


async def find_actor(pool: asyncpg.Pool, target: str) -> Actor | None:
    """A known actor by URL or handle, without any network request."""
    async with pool.acquire() as conn:
        if is_url(target):
            return await actors_repo.get_actor_by_uri(conn, target)
        return await handles_repo.get_actor_by_handle(conn, *_handle(target))


async def resolve_actor(pool: asyncpg.Pool, settings: Settings, http: HttpClient,
                        target: str) -> tuple[Actor | None, RemoteActor | None]:
    """`(known actor, None)`, or `(None, fetched actor)` for the caller to store in its transaction."""
    known = await find_actor(pool, target)
    if known is not None:
        if known.deleted_at is not None:
            raise TargetError(f"{known.uri} is deleted")
        return known, None
    if (is_url(target) and is_local_url(settings, target)) or (
            not is_url(target) and _handle(target)[1] == settings.instance.domain):
        raise TargetError(f"no account {target} on this instance")
    url = target if is_url(target) else await _webfinger(settings, http, target)
    try:
        remote = await fetch_remote_actor(http, await instance_signer(pool, settings), url)
    except FetchError as exc:
        raise TargetError(f"cannot fetch the actor {url}: {exc.reason}") from None
    if remote.id != url:
        raise TargetError(f"the actor at {url} says its id is {remote.id}")
    return None, remote


async def _webfinger(settings: Settings, http: HttpClient, handle: str) -> str:
    try:
        return await http.resolve_handle(handle, scheme=settings.instance.scheme)
    except FetchError as exc:
        raise TargetError(f"cannot resolve {handle}: {exc.reason}") from None


async def resolve_object(pool: asyncpg.Pool, settings: Settings, http: HttpClient | None,
                         url: str) -> statuses_repo.StoredObject:
    """A post by its id: known, or (remote and `http` given) fetched with its author and stored."""
    async with pool.acquire() as conn:
        found = await statuses_repo.get_object_by_uri(conn, url)
    if found is not None:
        if found.deleted_at is not None:
            raise TargetError(f"{url} was deleted")
        return found
    if is_local_url(settings, url) or http is None:
        raise TargetError(f"no known post at {url}")
    return await _fetch_object(pool, settings, http, url)


async def _fetch_object(pool: asyncpg.Pool, settings: Settings, http: HttpClient,
                        url: str) -> statuses_repo.StoredObject:
    signer = await instance_signer(pool, settings)
    try:
        document = await http.fetch_activitypub(url, signer=signer)
        author_uri = document.get("attributedTo")
        if not isinstance(author_uri, str) or not same_origin(author_uri, url):
            raise TargetError(f"{url} has no author on its own server")
        author = await ensure_remote_actor(pool, http, signer, author_uri)
        post = parse_post(document, followers_uri=author.followers_uri)
    except FetchError as exc:
        raise TargetError(f"cannot fetch {url}: {exc.reason}") from None
    except ParseError as exc:
        raise TargetError(f"{url} is not a post we can use: {exc}") from None
    async with pool.acquire() as conn:
        if await interactions_repo.is_tombstoned(conn, post.id, author.uri):
            raise TargetError(f"{url} was deleted")
        await interactions_repo.insert_remote_post(conn, post, author.id)
        stored = await statuses_repo.get_object_by_uri(conn, post.id)
    assert stored is not None
    return stored
