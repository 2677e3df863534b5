"""What a stored post, like, boost or follow means for local people: home timelines and notifications.

Called by the outbox services (local actions) and the inbox handlers (remote ones) inside the
transaction that stores the cause, so a timeline entry or notification exists exactly when its
cause does. Undone likes, boosts and follows take their notifications with them (foreign keys).
"""

from __future__ import annotations

from typing import Sequence

import asyncpg

from ..repo import home_feed, status_meta, stream_events
from ..repo import notifications as notifications_repo
from ..repo import outgoing as outgoing_repo


async def post_stored(conn: asyncpg.Connection, object_id: int, *, mention_uris: Sequence[str],
                      hashtags: Sequence[str]) -> None:
    """A new post: record its mentions and hashtags, fan it out to home timelines, notify the mentioned."""
    await posts_stored(conn, [(object_id, mention_uris, hashtags)])


async def posts_stored(conn: asyncpg.Connection, posts: Sequence[tuple[int, Sequence[str], Sequence[str]]]) -> None:
    """`post_stored` for many new posts, given as (object id, mentioned actor URIs, hashtags), in a few statements."""
    await status_meta.set_mentions_many(conn, [(object_id, list(mentions)) for object_id, mentions, _ in posts])
    await status_meta.set_tags_many(conn, [(object_id, list(tags)) for object_id, _, tags in posts])
    await home_feed.fan_out_posts(conn, [object_id for object_id, _, _ in posts])  # and streams them
    await notifications_repo.notify_mentions(conn, *(object_id for object_id, _, _ in posts))


async def post_fetched(conn: asyncpg.Connection, object_id: int, *, mention_uris: Sequence[str],
                       hashtags: Sequence[str]) -> None:
    """A post fetched because of a boost: recorded, but not fanned out as new (as Mastodon)."""
    await status_meta.set_mentions(conn, object_id, list(mention_uris))
    await status_meta.set_tags(conn, object_id, list(hashtags))


async def post_edited(conn: asyncpg.Connection, object_id: int, *, mention_uris: Sequence[str],
                      hashtags: Sequence[str]) -> None:
    """An edited post: its mentions and hashtags are those of the new version; newly mentioned people hear."""
    await status_meta.set_mentions(conn, object_id, list(mention_uris))
    await status_meta.set_tags(conn, object_id, list(hashtags))
    await notifications_repo.notify_mentions(conn, object_id)
    await stream_events.publish_post_changed(conn, "edit", object_id)


async def like_stored(conn: asyncpg.Connection, like_uri: str) -> None:
    """A new like: the local author of the post is notified."""
    await likes_stored(conn, [like_uri])


async def likes_stored(conn: asyncpg.Connection, like_uris: list[str]) -> None:
    """New likes: the local authors of the posts are notified."""
    await notifications_repo.notify_favourites(conn, like_uris)


async def announce_stored(conn: asyncpg.Connection, announce_uri: str) -> None:
    """A new boost: into the booster's followers' timelines; the local author of the post is notified."""
    await home_feed.fan_out_boost(conn, announce_uri)  # and streams it
    await notifications_repo.notify_reblog(conn, announce_uri)


async def follow_stored(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> None:
    """A new follow or follow request: the local followee is notified; an accepted follow backfills."""
    await notifications_repo.notify_follow(conn, follower_id, followee_id)
    follow = await outgoing_repo.get_follow(conn, follower_id, followee_id)
    if follow is not None and follow.state == "accepted":
        await home_feed.backfill(conn, follower_id, followee_id)


async def follow_accepted(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> None:
    """A follow request was approved: the request notification goes, the follower's timeline is backfilled."""
    await notifications_repo.drop_follow_request(conn, follower_id, followee_id)
    await home_feed.backfill(conn, follower_id, followee_id)


async def follow_removed(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> None:
    """An unfollow: the unfollowed account's posts and boosts leave the follower's timeline."""
    await home_feed.remove_author(conn, follower_id, followee_id)
