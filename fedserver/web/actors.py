"""Actor documents and their collections; a browser asking for an actor gets its profile page (`profiles`)."""

from __future__ import annotations

from aiohttp import web

from activities.actor import Actor, build_actor, build_tombstone
from activities.collections import (
    build_ordered_collection,
    build_ordered_collection_page,
)
from rewards import web as rewards_web

from ..app_keys import POOL
from ..documents import activity_response, wants_activitypub
from ..errors import HTTPError
from ..repo import actors as actors_repo
from ..repo import follows as follows_repo
from ..repo import status_meta
from . import profiles

PAGE_SIZE = 20
MAX_PAGE = 10_000


async def _load_actor(request: web.Request) -> Actor:
    name = request.match_info["name"]
    async with request.config_dict[POOL].acquire() as conn:
        actor = await actors_repo.get_shown_local_actor(conn, name)
    if actor is None:
        raise HTTPError(404, f"no account named {name} here")
    return actor


def _gone(request: web.Request, actor: Actor) -> web.Response:
    return activity_response(request, build_tombstone(actor.uri, actor.actor_type, actor.deleted_at), status=410)


async def actor_get(request: web.Request) -> web.StreamResponse:
    """`/users/{name}`: the actor for ActivityPub clients, the profile page for browsers."""
    if not wants_activitypub(request):
        return await profiles.profile_page(request)
    actor = await _load_actor(request)
    if actor.deleted_at is not None:
        return _gone(request, actor)
    return activity_response(request, build_actor(actor), cache_seconds=180)


async def instance_actor_get(request: web.Request) -> web.Response:
    """`/actor`: the instance actor (type Application) that signs server-to-server fetches."""
    async with request.config_dict[POOL].acquire() as conn:
        account = await actors_repo.get_instance_account(conn)
    if account is None:
        raise HTTPError(503, "the instance actor is not created yet")
    document = build_actor(account.actor) | await rewards_web.actor_fields(request)  # reward keys (rewards issue)
    return activity_response(request, document, cache_seconds=3600)


def _page_number(request: web.Request) -> int | None:
    raw = request.query.get("page")
    if raw is None:
        return None
    if raw == "true":
        return 1
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_PAGE:
        raise HTTPError(400, f"page must be a number from 1 to {MAX_PAGE}")
    return int(raw)


async def _collection(request: web.Request, kind: str) -> web.Response:
    actor = await _load_actor(request)
    if actor.deleted_at is not None:
        return _gone(request, actor)
    uri = f"{actor.uri}/{kind}"
    count, fetch = {
        "followers": (follows_repo.count_followers, follows_repo.list_follower_uris),
        "following": (follows_repo.count_following, follows_repo.list_following_uris),
        "outbox": (follows_repo.count_outbox, follows_repo.list_outbox_objects),
    }[kind]
    page = _page_number(request)
    async with request.config_dict[POOL].acquire() as conn:
        total = await count(conn, actor.id)
        if page is None:
            return activity_response(request, build_ordered_collection(uri, total, first=f"{uri}?page=1"))
        items = await fetch(conn, actor.id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    more = page * PAGE_SIZE < total
    document = build_ordered_collection_page(
        f"{uri}?page={page}", uri, items, total,
        next_page=f"{uri}?page={page + 1}" if more else None,
        prev_page=f"{uri}?page={page - 1}" if page > 1 else None,
    )
    return activity_response(request, document)


async def followers_get(request: web.Request) -> web.Response:
    return await _collection(request, "followers")


async def following_get(request: web.Request) -> web.Response:
    return await _collection(request, "following")


async def outbox_get(request: web.Request) -> web.Response:
    return await _collection(request, "outbox")


async def featured_get(request: web.Request) -> web.Response:
    """Pinned public and unlisted posts (pinned through the client API), latest pin first."""
    actor = await _load_actor(request)
    if actor.deleted_at is not None:
        return _gone(request, actor)
    async with request.config_dict[POOL].acquire() as conn:
        items = await status_meta.list_pinned_documents(conn, actor.id)
    return activity_response(request, build_ordered_collection(f"{actor.uri}/collections/featured", len(items),
                                                               items=items))


async def featured_tags_get(request: web.Request) -> web.Response:
    """Featured hashtags (none yet)."""
    actor = await _load_actor(request)
    if actor.deleted_at is not None:
        return _gone(request, actor)
    document = build_ordered_collection(f"{actor.uri}/collections/tags", 0, items=[])
    document["type"] = "Collection"
    document["items"] = document.pop("orderedItems")
    return activity_response(request, document)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/actor", instance_actor_get)
    app.router.add_get("/users/{name}", actor_get)
    app.router.add_get("/users/{name}/followers", followers_get)
    app.router.add_get("/users/{name}/following", following_get)
    app.router.add_get("/users/{name}/outbox", outbox_get)
    app.router.add_get("/users/{name}/collections/featured", featured_get)
    app.router.add_get("/users/{name}/collections/tags", featured_tags_get)
