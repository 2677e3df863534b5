"""Status entities for search results.

Interim: search shows its statuses through this small presenter until the statuses
module's own presenter exists; then `present_statuses` should delegate to it. Fields follow
docs.joinmastodon.org/entities/Status (reference §2.6).
"""

from __future__ import annotations

import asyncpg

from activities.sanitize import html_to_text

from ..config import Settings
from ..repo import api_accounts, status_views
from ..repo.media import media_for_objects
from . import entities
from .wire import api_datetime


def _mention(row: status_views.MentionRow) -> dict:
    acct = row.username if row.is_local else f"{row.username}@{row.domain}"
    return {"id": str(row.actor_id), "username": row.username, "acct": acct, "url": row.url or row.uri}


def _status(row: status_views.StatusRow, account: dict, media: list[dict], mentions: list[dict], tags: list[str],
            settings: Settings, viewer_id: int | None) -> dict:
    language = next(iter(row.data.get("contentMap") or {}), None) if isinstance(row.data, dict) else None
    body = {
        "id": str(row.id), "uri": row.uri, "url": row.url or row.uri,
        "created_at": api_datetime(row.published_at), "edited_at": api_datetime(row.updated_at) if row.updated_at
        else None, "account": account, "content": row.content, "visibility": row.visibility,
        "sensitive": bool(row.data.get("sensitive")) or bool(row.summary),
        "spoiler_text": html_to_text(row.summary, max_chars=None) if row.summary else "",
        "media_attachments": media, "mentions": mentions,
        "tags": [{"name": t, "url": f"{settings.base_url}/tags/{t}"} for t in tags], "emojis": [],
        "reblogs_count": row.reblogs_count, "favourites_count": row.favourites_count,
        "replies_count": row.replies_count,
        "in_reply_to_id": str(row.in_reply_to_id) if row.in_reply_to_id else None,
        "in_reply_to_account_id": str(row.in_reply_to_account_id) if row.in_reply_to_account_id else None,
        "reblog": None, "poll": None, "card": None, "language": language, "text": None,
        "application": {"name": row.app_name, "website": row.app_website} if row.app_name else None,
    }
    if viewer_id is not None:
        body.update(favourited=row.favourited, reblogged=row.reblogged, muted=False, bookmarked=row.bookmarked,
                    pinned=row.pinned, filtered=[])
    return body


async def present_statuses(conn: asyncpg.Connection, settings: Settings, viewer_id: int | None,
                           object_ids: list[int]) -> list[dict]:
    """Status entities for posts the caller may see (search checked visibility), in the given order."""
    if not object_ids:
        return []
    rows = await status_views.get_status_rows(conn, object_ids, viewer_id)
    actors = await status_views.get_actors(conn, list({r.actor_id for r in rows.values()}))
    stats = await api_accounts.get_account_stats(conn, list(actors))
    media = await media_for_objects(conn, list(rows))
    mentions = await status_views.get_mentions(conn, list(rows))
    tags = await status_views.get_tags(conn, list(rows))
    out = []
    for object_id in object_ids:
        row = rows.get(object_id)
        if row is None or row.actor_id not in actors:
            continue
        account = entities.account(actors[row.actor_id], stats[row.actor_id], settings)
        out.append(_status(row, account, media[object_id], [_mention(m) for m in mentions.get(object_id, [])],
                           tags.get(object_id, []), settings, viewer_id))
    return out
