"""What the inbound handlers share: the remote actor behind an activity, local actors, embedded objects."""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.parse import InboundActivity, ParseError, ref
from activities.urls import same_origin

from ...dispatch import InboundContext
from ...net.http import FetchError
from ...repo import actors as actors_repo
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


def about_object(body: dict) -> str | None:
    """What a Like, Announce, Follow or Block is ordered by besides its sender: its object (a post, an account).

    A sender's reactions to different posts, and its follows of different accounts, run side by
    side (and beside its Creates, which do not depend on them: a reaction to a post not stored
    yet is fetched or ignored as ever); a Like and the Undo of that Like are about one post, a
    Follow and its Undo about one account, so they still run in order.
    """
    return ref(body.get("object"))


def about_undone_object(body: dict) -> str | None:
    """What an Undo of a Like, Announce, Follow or Block is ordered by: the undone activity's object (None when it
    does not say: then the Undo waits behind everything its sender sent before it)."""
    inner = body.get("object")
    return ref(inner.get("object")) if isinstance(inner, dict) else None


def as_list(value) -> list:
    """A JSON-LD value that may be one item or a list, as a list."""
    return value if isinstance(value, list) else ([] if value is None else [value])
