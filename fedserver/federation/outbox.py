"""What local actors publish: posts, follows, likes, announces, deletes, profile updates, follow answers.

Each service takes the caller's connection (inside the caller's transaction), the publisher
and the acting local actor, stores what it creates and publishes the activity (recorded,
queued for every target inbox, publish hooks run) in that same transaction, so a caller can
compose several moves into one commit. Whatever needs the network (an actor or post not known
yet) is looked up before the transaction, by `targets`. Each returns the id of the activity it
published (`create_post`: the post's id). `acting_as` opens a transaction for one account;
`commands` runs one service at a time for the command line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import asyncpg

from activities.actor import Actor
from activities.build import (
    VISIBILITIES,
    Mention,
    activity_uri,
    address,
    build_accept,
    build_announce,
    build_article,
    build_create,
    build_delete,
    build_follow,
    build_like,
    build_note,
    build_reject,
    build_undo,
    build_update_actor,
    new_object_id,
    status_uri,
)
from activities.context import PUBLIC
from activities.parse import RemoteActor
from activities.text import compose_html, find_hashtags, find_mentions

from ..publish import Publisher
from ..repo import actors as actors_repo
from ..repo import interactions as interactions_repo
from ..repo import outgoing as outgoing_repo
from ..repo import profiles as profiles_repo
from ..repo import published as published_repo
from ..repo import remote_actors as handles_repo
from ..repo import safety as safety_repo
from ..repo import statuses as statuses_repo
from ..repo.deliveries import actor_inboxes, follower_inboxes
from ..repo.remote_actors import upsert_remote_actor
from ..repo.search import index_post_text
from . import feeds, posting

MAX_TEXT = 100_000
MAX_TITLE = 200
MAX_SUMMARY = 5_000


class OutboxError(Exception):
    """A request to publish was refused; the message says why."""


class AlreadyDone(OutboxError):
    """What was asked is already the case (a repeated click): nothing was published."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def author(conn: asyncpg.Connection, username: str) -> Actor:
    """The live local account that acts, or OutboxError."""
    account = await actors_repo.get_local_account_by_username(conn, username)
    if account is None:
        raise OutboxError(f"no account named '{username}'")
    if account.actor.deleted_at is not None:
        raise OutboxError(f"the account '{username}' is deleted")
    return account.actor


@asynccontextmanager
async def acting_as(pool: asyncpg.Pool, username: str) -> AsyncIterator[tuple[asyncpg.Connection, Actor]]:
    """A transaction in which the local account `username` acts: (connection, its actor)."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn, await author(conn, username)


def _check_post_input(text: str, visibility: str, article: bool, title: str | None, summary: str | None,
                      has_media: bool = False) -> None:
    if visibility not in VISIBILITIES:
        raise OutboxError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if not text.strip() and not has_media:
        raise OutboxError("the post is empty")
    if len(text) > MAX_TEXT:
        raise OutboxError(f"the post is longer than {MAX_TEXT} characters")
    if article and not (title or "").strip():
        raise OutboxError("an article needs a title (--title)")
    if (title and len(title) > MAX_TITLE) or (summary and len(summary) > MAX_SUMMARY):
        raise OutboxError(f"the title is limited to {MAX_TITLE} and the summary to {MAX_SUMMARY} characters")


async def mentions_in(conn: asyncpg.Connection, text: str, local_domain: str) -> dict[str, tuple[Mention, Actor]]:
    """Known actors mentioned as @name@domain, or @name for a local account (unknown handles stay plain text)."""
    typed = find_mentions(text, local_domain)
    known = await handles_repo.get_actors_by_handles(conn, [(name, domain) for _, name, domain in typed])
    found = {token: (name, domain, known.get(f"{name}@{domain}".lower())) for token, name, domain in typed}
    return {token: (Mention(actor.uri, f"@{name}@{domain}"), actor)
            for token, (name, domain, actor) in found.items() if actor is not None}


async def _recipients(conn: asyncpg.Connection, actor: Actor, mentions: dict[str, tuple[Mention, Actor]],
                      in_reply_to: str | None) -> list[str]:
    """Actor ids a post is addressed to besides the followers: the mentioned, and the replied-to author."""
    recipients = [a.uri for _, a in mentions.values()]
    parent = await statuses_repo.get_object_by_uri(conn, in_reply_to) if in_reply_to else None
    if parent is not None and parent.author_uri and parent.author_uri not in (actor.uri, *recipients):
        recipients.append(parent.author_uri)
    return recipients


async def create_post(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, text_or_html: str, *,
                      article: bool = False, title: str | None = None, summary: str | None = None,
                      in_reply_to: str | None = None, visibility: str = "public",
                      options: posting.PostOptions | None = None) -> str:
    """Publish a Note (or an Article) to the followers, the mentioned actors and the replied-to author."""
    options = options or posting.PostOptions()
    _check_post_input(text_or_html, visibility, article, title, summary, has_media=bool(options.media_ids))
    settings = publisher.settings
    await posting.claim_key(conn, actor.id, options)
    mentions = await mentions_in(conn, text_or_html, settings.instance.domain)
    recipients = await _recipients(conn, actor, mentions, in_reply_to)
    to, cc = address(visibility, actor.followers_uri or "", recipients)
    hashtags = find_hashtags(text_or_html)
    html = compose_html(text_or_html, {key: (m, a.url or a.uri) for key, (m, a) in mentions.items()},
                        tags_base=posting.tags_base(settings))
    snowflake, published = new_object_id(), _now()
    uri = status_uri(actor.uri, snowflake)
    common = dict(id=uri, content_html=html, published=published, to=to, cc=cc, in_reply_to=in_reply_to,
                  mentions=[m for m, _ in mentions.values()],
                  extras=posting.note_extras(settings, options, hashtags))
    obj = (build_article(actor, title=title or "", summary=summary, url=uri, **common) if article
           else build_note(actor, **common))
    object_id = await statuses_repo.insert_object(
        conn, uri=uri, object_type=obj["type"], actor_id=actor.id, is_local=True, content=html,
        name=obj.get("name"), summary=obj.get("summary"), url=uri, in_reply_to_uri=in_reply_to,
        visibility=visibility, data=obj, published_at=published)
    obj = await posting.after_insert(conn, actor.id, object_id, obj, options, text=text_or_html,
                                     mention_uris=[a.uri for _, a in mentions.values()], hashtags=hashtags)
    await index_post_text(conn, object_id, html)
    inboxes = [] if visibility == "direct" else await follower_inboxes(conn, actor.id)
    inboxes += await actor_inboxes(conn, recipients)
    create = build_create(actor.uri, activity_uri(actor.uri, "create", snowflake), obj)
    await publisher.publish(conn, actor, create, inboxes, object_uri=uri, visibility=visibility)
    return uri


async def follow(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, target: Actor | RemoteActor) -> str:
    """Send a Follow to a known actor, or to a fetched one (stored here first); returns the Follow id."""
    followee = target if isinstance(target, Actor) else await upsert_remote_actor(conn, target)
    if followee.id == actor.id:
        raise OutboxError("an account cannot follow itself")
    blocks, blocked_by = await safety_repo.blocks_between(conn, actor.id, followee.id)
    if blocked_by:
        raise OutboxError(f"{followee.uri} blocks @{actor.username}")
    if blocks:
        raise OutboxError(f"@{actor.username} blocks {followee.uri}: unblock it first")
    follow_id = activity_uri(actor.uri, "follow", new_object_id())
    state = "pending" if not followee.is_local or followee.manually_approves_followers else "accepted"
    if await outgoing_repo.request_follow(conn, actor.id, followee.id, follow_id, state) is None:
        raise AlreadyDone(f"@{actor.username} already follows {followee.uri}")
    await feeds.follow_stored(conn, actor.id, followee.id)
    activity = build_follow(actor.uri, follow_id, followee.uri)
    # A Follow goes to the personal inbox, as Mastodon sends it.
    inboxes = [] if followee.is_local else [followee.inbox_uri]
    return await publisher.publish(conn, actor, activity, inboxes, object_uri=followee.uri)


async def unfollow(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, followee: Actor) -> str:
    """Withdraw a follow (or follow request) with Undo{Follow}; returns the Undo id."""
    removed = await outgoing_repo.delete_follow(conn, actor.id, followee.id)
    if removed is None:
        raise AlreadyDone(f"@{actor.username} does not follow {followee.uri}")
    await feeds.follow_removed(conn, actor.id, followee.id)
    stored = await published_repo.get_activity_by_uri(conn, removed.activity_uri) if removed.activity_uri else None
    undone = stored.data if stored else build_follow(
        actor.uri, removed.activity_uri or f"{actor.uri}#follows/{removed.id}", followee.uri)
    undo = build_undo(actor.uri, activity_uri(actor.uri, "undo", new_object_id()), undone)
    inboxes = [] if followee.is_local else [followee.inbox_uri]
    return await publisher.publish(conn, actor, undo, inboxes, object_uri=undone["id"])


async def like(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, post: statuses_repo.StoredObject) -> str:
    """Like a post and tell its author; returns the Like id."""
    like_id = activity_uri(actor.uri, "like", new_object_id())
    if not await interactions_repo.insert_like(conn, actor.id, post.uri, like_id):
        raise AlreadyDone(f"@{actor.username} already likes {post.uri}")
    await feeds.like_stored(conn, like_id)
    activity = build_like(actor.uri, like_id, post.uri, post.author_uri)
    inboxes = await actor_inboxes(conn, [post.author_uri] if post.author_uri else [])
    return await publisher.publish(conn, actor, activity, inboxes, object_uri=post.uri)


async def announce(conn: asyncpg.Connection, publisher: Publisher, actor: Actor,
                   post: statuses_repo.StoredObject) -> str:
    """Boost a public or unlisted post to the followers and its author; returns the Announce id."""
    if post.visibility not in ("public", "unlisted"):
        raise OutboxError("only public and unlisted posts can be shared")
    announce_id = activity_uri(actor.uri, "announce", new_object_id())
    if not await interactions_repo.insert_announce(conn, actor.id, post.uri, announce_id):
        raise AlreadyDone(f"@{actor.username} already shared {post.uri}")
    await feeds.announce_stored(conn, announce_id)
    activity = build_announce(actor.uri, announce_id, post.uri, followers_uri=actor.followers_uri or "",
                              published=_now(), object_author=post.author_uri)
    inboxes = await follower_inboxes(conn, actor.id)
    inboxes += await actor_inboxes(conn, [post.author_uri] if post.author_uri else [])
    return await publisher.publish(conn, actor, activity, inboxes, object_uri=post.uri, visibility="public")


async def unlike(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, url: str) -> str:
    """Undo a like; returns the Undo id."""
    return await _undo_reaction(conn, publisher, actor, url, "likes")


async def unannounce(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, url: str) -> str:
    """Undo a boost; returns the Undo id."""
    return await _undo_reaction(conn, publisher, actor, url, "announces")


async def _undo_reaction(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, url: str, table: str) -> str:
    """Remove a like or announce, send Undo{it} to whoever received it, and forget the activity."""
    removed = await outgoing_repo.delete_reaction(conn, table, actor.id, url)  # type: ignore[arg-type]
    if removed is None:
        verb = "does not like" if table == "likes" else "has not shared"
        raise AlreadyDone(f"@{actor.username} {verb} {url}")
    stored = await published_repo.get_activity_by_uri(conn, removed)
    post = await statuses_repo.get_object_by_uri(conn, url)
    post_author = post.author_uri if post else None
    if stored is not None:
        undone = stored.data
    elif table == "likes":
        undone = build_like(actor.uri, removed, url, post_author)
    else:
        undone = build_announce(actor.uri, removed, url, followers_uri=actor.followers_uri or "",
                                published=_now(), object_author=post_author)
    inboxes = await actor_inboxes(conn, [post_author] if post_author else [])
    if table == "announces":
        inboxes += await follower_inboxes(conn, actor.id)
    await published_repo.delete_activity(conn, removed)
    undo = build_undo(actor.uri, activity_uri(actor.uri, "undo", new_object_id()), undone)
    return await publisher.publish(conn, actor, undo, inboxes, object_uri=removed)


async def delete_object(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, url: str) -> str:
    """Delete one's own post: Delete{Tombstone} to the followers and everyone the post concerns."""
    post = await statuses_repo.get_object_by_uri(conn, url)
    if post is None or not post.is_local or post.actor_id != actor.id:
        raise OutboxError(f"@{actor.username} has no post at {url}")
    if not await statuses_repo.mark_object_deleted(conn, post.id):
        raise OutboxError(f"{url} is already deleted")
    await interactions_repo.insert_tombstone(conn, post.uri, actor.uri, owner=True)
    inboxes = await published_repo.audience_inboxes(conn, post.uri)
    if post.visibility != "direct":
        inboxes += await follower_inboxes(conn, actor.id)
    to = list(post.data.get("to") or [PUBLIC])
    activity = build_delete(actor.uri, activity_uri(actor.uri, "delete", new_object_id()), post.uri,
                            post.object_type, to=to, cc=list(post.data.get("cc") or []))
    return await publisher.publish(conn, actor, activity, inboxes, object_uri=post.uri, visibility=post.visibility)


async def update_profile(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, *,
                         display_name: str | None = None, summary: str | None = None) -> str:
    """Change the display name and/or bio and send Update{Person} to the followers; returns the Update id."""
    if display_name is not None and (len(display_name) > 100 or any(ord(ch) < 32 for ch in display_name)):
        raise OutboxError("the display name is limited to 100 characters without control characters")
    summary_html = compose_html(summary, {}) if summary else ("" if summary == "" else None)
    await profiles_repo.update_profile(conn, actor.id, display_name=display_name, summary_html=summary_html)
    actor = await actors_repo.get_actor_by_uri(conn, actor.uri)
    assert actor is not None
    activity = build_update_actor(actor, activity_uri(actor.uri, "update", new_object_id()), _now())
    inboxes = await follower_inboxes(conn, actor.id)
    return await publisher.publish(conn, actor, activity, inboxes, object_uri=actor.uri, visibility="public")


async def follow_requests(conn: asyncpg.Connection, actor: Actor) -> list[str]:
    """Actor ids waiting for approval to follow a locked account, oldest first."""
    return await outgoing_repo.list_pending_followers(conn, actor.id)


async def answer_follow_request(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, requester: Actor, *,
                                accept: bool) -> str:
    """Approve (Accept) or refuse (Reject) a pending follow request; returns the Accept or Reject id."""
    if accept:
        request = await outgoing_repo.accept_pending_follow(conn, requester.id, actor.id)
    else:
        request = await outgoing_repo.get_follow(conn, requester.id, actor.id)
        request = request if request and request.state == "pending" else None
        if request:
            await outgoing_repo.delete_follow(conn, requester.id, actor.id)
    if request is None:
        raise OutboxError(f"{requester.uri} has no pending follow request to @{actor.username}")
    if accept:
        await feeds.follow_accepted(conn, requester.id, actor.id)
    received = await outgoing_repo.get_received_follow(conn, request.activity_uri or "")
    # Mastodon matches the Follow by the URI it stored, so embed it as received.
    follow_doc = received or build_follow(requester.uri, request.activity_uri or "", actor.uri)
    kind = "accept" if accept else "reject"
    answer = (build_accept if accept else build_reject)(follow_doc, actor.uri,
                                                        activity_uri(actor.uri, kind, new_object_id()))
    inboxes = [] if requester.is_local else [requester.inbox_uri]
    return await publisher.publish(conn, actor, answer, inboxes, object_uri=request.activity_uri)
