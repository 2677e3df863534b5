"""The post behind an inbound Announce, fetched from its own server when it is unknown here.

Mastodon fetches a boosted status before showing the boost; we do so only when someone here
follows the booster (otherwise the boost shows in no timeline). A temporary failure retries the
whole activity; a post that cannot be used leaves the boost stored but out of timelines.
"""

from __future__ import annotations

from activities.actor import Actor
from activities.parse import ParseError, RemotePost, parse_post, ref
from activities.urls import same_origin

from ...net.http import FetchError
from ...repo import interactions as repo
from ..remote import ensure_remote_actor


async def _needed(ctx, object_id: str, booster: Actor) -> bool:
    async with ctx.pool.acquire() as conn:
        if await repo.get_object_owner(conn, object_id) is not None:
            return False
        return await repo.has_local_followers(conn, booster.id)


async def fetch_boosted_post(ctx, object_id: str | None, booster: Actor) -> tuple[RemotePost, Actor] | None:
    """(post, author) to store with the boost, or None when it is known, not needed or not usable."""
    if not object_id or not await _needed(ctx, object_id, booster):
        return None
    try:
        document = await ctx.http.fetch_activitypub(object_id, signer=ctx.signer, budget=ctx.budget)
        author_uri = ref(document.get("attributedTo"))
        if not author_uri or not same_origin(author_uri, object_id):
            return None
        author = await ensure_remote_actor(ctx.pool, ctx.http, ctx.signer, author_uri, ctx.budget)
        post = parse_post(document, followers_uri=author.followers_uri)
    except FetchError as exc:
        if exc.permanent:
            return None
        raise
    except ParseError:
        return None
    if author.is_local or post.id != object_id or post.attributed_to != author.uri \
            or post.visibility not in ("public", "unlisted"):
        return None
    async with ctx.pool.acquire() as conn:
        if await repo.is_tombstoned(conn, post.id, author.uri):  # its author deleted it meanwhile
            return None
    return post, author
