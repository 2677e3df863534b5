"""What the inbound handlers share: the remote actor behind an activity, local actors, embedded objects."""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.parse import InboundActivity, ParseError
from activities.urls import same_origin

from ...dispatch import InboundContext
from ...repo import actors as actors_repo
from ...net.http import FetchError
from ..remote import ensure_remote_actor, ensure_remote_actors


async def remote_actor(ctx: InboundContext, uri: str) -> Actor:
    """The sender, fetched (within the activity's budget) when unknown."""
    return await ensure_remote_actor(ctx.pool, ctx.http, ctx.signer, uri, ctx.budget)


async def remote_actors(ctx: InboundContext, uris: list[str]) -> dict[str, Actor | FetchError]:
    """The senders of a batch (each fetched when unknown, or what stopped its fetch)."""
    return await ensure_remote_actors(ctx.pool, ctx.http, ctx.signer, uris, ctx.budget)


async def local_actor(conn: asyncpg.Connection, uri: str | None) -> Actor | None:
    """The live local actor with this id, if any."""
    actor = await actors_repo.get_actor_by_uri(conn, uri) if uri else None
    return actor if actor and actor.is_local and actor.deleted_at is None else None


async def object_document(ctx: InboundContext, activity: InboundActivity) -> dict:
    """The activity's object: embedded, or fetched from its own server (never trusted from a third party)."""
    if activity.object is not None:
        return activity.object
    if not activity.object_id or not same_origin(activity.object_id, activity.actor):
        raise ParseError("the object must be on the actor's server")
    return await ctx.http.fetch_activitypub(activity.object_id, signer=ctx.signer, budget=ctx.budget)


def as_list(value) -> list:
    """A JSON-LD value that may be one item or a list, as a list."""
    return value if isinstance(value, list) else ([] if value is None else [value])
