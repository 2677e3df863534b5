"""What the status endpoints decide: who may act on which post, and which federation service does it.

Every write goes through `federation.outbox` (and `edits`) in one transaction of the caller's
account, so it is stored, fanned out and queued for delivery together. A post the caller may not see is "Record not found", exactly like
a missing one (checklist #42); a visible post the caller may not boost is 403, as on Mastodon.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from activities.actor import Actor

from ..errors import HTTPError
from ..federation import edits, outbox
from ..federation.posting import DuplicatePost, MediaRefused, PostOptions
from ..federation.targets import TargetError, resolve_object
from ..publish import Publisher
from ..repo import api_settings, status_meta, status_views
from ..repo.status_views import Entry
from .auth import Auth
from .limits import MAX_PINNED

NOT_FOUND = "Record not found"
NOT_ALLOWED = "This action is not allowed"


@dataclass(frozen=True)
class StatusDraft:
    """A new post or an edit, as parsed from the request."""

    text: str
    visibility: str | None
    in_reply_to_id: int | None
    options: PostOptions


async def visible_entry(conn: asyncpg.Connection, status_id: int, viewer_id: int | None) -> Entry:
    """The post or boost behind a status id, or 404 when it is missing or not the viewer's to see."""
    entry = await status_views.find_entry(conn, status_id, viewer_id)
    if entry is None:
        raise HTTPError(404, NOT_FOUND)
    return entry


async def own_post(conn: asyncpg.Connection, status_id: int, caller: Auth) -> status_views.StatusRow:
    """The caller's own post (not a boost), or 404."""
    entry = await visible_entry(conn, status_id, caller.account_id)
    rows = await status_views.get_status_rows(conn, [entry.object_id], caller.account_id)
    row = rows.get(entry.object_id)
    if entry.reblog_id is not None or row is None or row.actor_id != caller.account_id:
        raise HTTPError(404, NOT_FOUND)
    return row


async def _reply_target(conn: asyncpg.Connection, draft: StatusDraft, caller: Auth) -> str | None:
    if draft.in_reply_to_id is None:
        return None
    entry = await visible_entry(conn, draft.in_reply_to_id, caller.account_id)
    return await status_views.get_object_uri(conn, entry.object_id)


async def post_status(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, draft: StatusDraft) -> int:
    """Publish a post (or find the one this Idempotency-Key already made); returns its status id."""
    key = draft.options.idempotency_key
    async with pool.acquire() as conn:
        if key and (earlier := await status_meta.get_idempotent_post(conn, caller.account_id, key)):
            return earlier
        parent = await _reply_target(conn, draft, caller)
        preferences = await api_settings.get_preferences(conn, caller.account_id)  # type: ignore[arg-type]
        visibility = draft.visibility or preferences.posting_visibility
    try:
        async with outbox.acting_as(pool, caller.username or "") as (conn, actor):
            uri = await outbox.create_post(conn, publisher, actor, draft.text, in_reply_to=parent,
                                           visibility=visibility, options=draft.options)
    except DuplicatePost:
        async with pool.acquire() as conn:
            earlier = await status_meta.get_idempotent_post(conn, caller.account_id, key or "")
        if earlier is None:
            raise HTTPError(409, "a post with this Idempotency-Key is still being made; try again") from None
        return earlier
    except (MediaRefused, outbox.OutboxError) as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    async with pool.acquire() as conn:
        return await status_views.get_object_id(conn, uri)  # type: ignore[return-value]


async def post_status_in(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, draft: StatusDraft) -> str:
    """`post_status` inside the caller's transaction, as `actor` (the scheduled-status worker); returns the uri.
    Raises HTTPError 404 for a reply target gone from sight, MediaRefused or OutboxError for a refused post."""
    parent = None
    if draft.in_reply_to_id is not None:
        entry = await visible_entry(conn, draft.in_reply_to_id, actor.id)
        parent = await status_views.get_object_uri(conn, entry.object_id)
    visibility = draft.visibility or (await api_settings.get_preferences(conn, actor.id)).posting_visibility
    return await outbox.create_post(conn, publisher, actor, draft.text, in_reply_to=parent,
                                    visibility=visibility, options=draft.options)


async def edit_status(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, status_id: int,
                      draft: StatusDraft) -> None:
    """Edit one's own post and federate the Update."""
    async with pool.acquire() as conn:
        row = await own_post(conn, status_id, caller)
    try:
        async with outbox.acting_as(pool, caller.username or "") as (conn, actor):
            await edits.edit_post(conn, publisher, actor, row.uri, draft.text, draft.options)
    except outbox.OutboxError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None


async def delete_status(pool: asyncpg.Pool, publisher: Publisher, caller: Auth,
                        row: status_views.StatusRow) -> None:
    """Delete one's own post and federate the Delete."""
    try:
        async with outbox.acting_as(pool, caller.username or "") as (conn, actor):
            await outbox.delete_object(conn, publisher, actor, row.uri)
    except outbox.OutboxError:
        raise HTTPError(404, NOT_FOUND) from None


async def _target(pool: asyncpg.Pool, caller: Auth, status_id: int) -> tuple[Entry, str, str]:
    """(entry, post uri, visibility) of a visible status; a boost id acts on the boosted post."""
    async with pool.acquire() as conn:
        entry = await visible_entry(conn, status_id, caller.account_id)
        row = (await status_views.get_status_rows(conn, [entry.object_id], None))[entry.object_id]
    return Entry(entry.object_id, entry.object_id, entry.object_id), row.uri, row.visibility


async def _act(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, service, uri: str) -> None:
    """Run one outbox service on a post as the caller; a repeated click (already done) changes nothing.

    Any other refusal (the caller's account was deleted meanwhile, the post cannot take it) is an
    error the client sees, never a silent success.
    """
    try:
        target = uri if service in (outbox.unlike, outbox.unannounce) else await resolve_object(
            pool, publisher.settings, None, uri)
        async with outbox.acting_as(pool, caller.username or "") as (conn, actor):
            await service(conn, publisher, actor, target)
    except outbox.AlreadyDone:
        pass
    except outbox.OutboxError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    except TargetError:  # deleted meanwhile
        raise HTTPError(404, NOT_FOUND) from None


async def favourite(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, status_id: int,
                    undo: bool = False) -> Entry:
    """Like (or stop liking) a post; the Like or Undo reaches its author."""
    entry, uri, _ = await _target(pool, caller, status_id)
    await _act(pool, publisher, caller, outbox.unlike if undo else outbox.like, uri)
    return entry


async def reblog(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, status_id: int) -> Entry:
    """Boost a public or unlisted post (403 for others); returns the boost."""
    entry, uri, visibility = await _target(pool, caller, status_id)
    if visibility not in ("public", "unlisted"):
        raise HTTPError(403, NOT_ALLOWED)
    await _act(pool, publisher, caller, outbox.announce, uri)
    async with pool.acquire() as conn:
        boost_id = await status_views.get_own_announce(conn, caller.account_id,  # type: ignore[arg-type]
                                                       entry.object_id)
    if boost_id is None:
        raise HTTPError(422, "Validation failed: the post cannot be shared")
    return Entry(boost_id, boost_id, entry.object_id, boost_id)


async def unreblog(pool: asyncpg.Pool, publisher: Publisher, caller: Auth, status_id: int) -> Entry:
    """Withdraw one's boost of a post; returns the post."""
    entry, uri, _ = await _target(pool, caller, status_id)
    await _act(pool, publisher, caller, outbox.unannounce, uri)
    return entry


async def bookmark(pool: asyncpg.Pool, caller: Auth, status_id: int, undo: bool = False) -> Entry:
    """Bookmark (or un-bookmark) a visible post."""
    entry, _, _ = await _target(pool, caller, status_id)
    async with pool.acquire() as conn:
        call = status_meta.delete_bookmark if undo else status_meta.insert_bookmark
        await call(conn, caller.account_id, entry.object_id)  # type: ignore[arg-type]
    return entry


async def pin(pool: asyncpg.Pool, caller: Auth, status_id: int, undo: bool = False) -> Entry:
    """Pin (or unpin) one's own public, unlisted or private post; 422 otherwise, as Mastodon's validator."""
    async with pool.acquire() as conn, conn.transaction():
        entry = await visible_entry(conn, status_id, caller.account_id)
        row = (await status_views.get_status_rows(conn, [entry.object_id], None))[entry.object_id]
        if entry.reblog_id is not None or row.actor_id != caller.account_id:
            raise HTTPError(422, "Validation failed: You can only pin your own posts")
        if undo:
            await status_meta.delete_pin(conn, caller.account_id, row.id)  # type: ignore[arg-type]
        elif row.visibility == "direct":
            raise HTTPError(422, "Validation failed: Direct posts cannot be pinned")
        elif not await status_meta.insert_pin(conn, caller.account_id, row.id, MAX_PINNED):  # type: ignore[arg-type]
            raise HTTPError(422, f"Validation failed: You have already pinned the maximum of {MAX_PINNED} posts")
    return Entry(row.id, row.id, row.id)
