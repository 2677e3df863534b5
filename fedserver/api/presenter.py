"""Turn list entries (posts and boosts) and notifications into API entities, a page at a time.

Every page costs a fixed number of queries however long it is: the boosts (if any), the posts
with their counts, the viewer's flags, mentions, hashtags and media (one statement), then the
accounts with their counts (one statement).
"""

from __future__ import annotations

from typing import Iterable

import asyncpg

from ..config import Settings
from ..errors import HTTPError
from ..media.entity import post_media
from ..repo import api_accounts, status_views
from ..repo.notifications import NotificationRow
from ..repo.status_views import Entry, StatusRow
from . import entities
from . import status_entities as se


async def _accounts(conn: asyncpg.Connection, settings: Settings, actor_ids: Iterable[int]) -> dict[int, dict]:
    found = await api_accounts.get_actors_with_stats(conn, list(dict.fromkeys(actor_ids)))
    return {i: entities.account(actor, stats, settings) for i, (actor, stats) in found.items()}


async def _posts(conn: asyncpg.Connection, settings: Settings, object_ids: list[int], viewer_id: int | None,
                 accounts: dict[int, dict]) -> tuple[dict[int, dict], dict[int, StatusRow]]:
    """Status entities of posts, keyed by object id (with the rows, for callers that need the source)."""
    details = await status_views.get_status_details(conn, object_ids, viewer_id)
    missing = [d.row.actor_id for d in details.values() if d.row.actor_id not in accounts]
    if missing:
        accounts.update(await _accounts(conn, settings, missing))
    out = {}
    for object_id, post in details.items():
        row = post.row
        if row.actor_id not in accounts:
            continue
        out[object_id] = se.status(
            row, account=accounts[row.actor_id], mentions=[se.mention(m) for m in post.mentions],
            tags=[se.tag(t, settings.base_url) for t in post.tags],
            media=post_media(row.is_local, row.data, post.uploads), signed_in=viewer_id is not None)
    return out, {object_id: post.row for object_id, post in details.items()}


async def present_entries(conn: asyncpg.Connection, settings: Settings, entries: list[Entry],
                          viewer_id: int | None) -> list[dict]:
    """Statuses for list entries, in the entries' order (entries whose post vanished are left out)."""
    boost_ids = [e.reblog_id for e in entries if e.reblog_id is not None]
    boosts = await status_views.get_boosts(conn, boost_ids) if boost_ids else {}
    accounts = await _accounts(conn, settings, [b.actor_id for b in boosts.values()]) if boosts else {}
    posts, _ = await _posts(conn, settings, list(dict.fromkeys(e.object_id for e in entries)), viewer_id, accounts)
    out = []
    for entry in entries:
        original = posts.get(entry.object_id)
        if original is None:
            continue
        if entry.reblog_id is None:
            out.append(original)
        elif (boost := boosts.get(entry.reblog_id)) and boost.actor_id in accounts:
            out.append(se.reblog(boost, account=accounts[boost.actor_id], original=original,
                                 signed_in=viewer_id is not None))
    return out


async def present_entry(conn: asyncpg.Connection, settings: Settings, entry: Entry, viewer_id: int | None) -> dict:
    """One status (the caller checked that the viewer may see it; 404 if it vanished meanwhile)."""
    found = await present_entries(conn, settings, [entry], viewer_id)
    if not found:
        raise HTTPError(404, "Record not found")
    return found[0]


async def present_with_source(conn: asyncpg.Connection, settings: Settings, object_id: int,
                              viewer_id: int) -> dict:
    """A post's Status with `text` (before it is deleted, for delete-and-redraft)."""
    posts, rows = await _posts(conn, settings, [object_id], viewer_id, {})
    return se.with_source(posts[object_id], rows[object_id])


async def present_accounts_by_id(conn: asyncpg.Connection, settings: Settings, actor_ids: list[int]) -> list[dict]:
    """Account entities in the given order."""
    accounts = await _accounts(conn, settings, actor_ids)
    return [accounts[i] for i in actor_ids if i in accounts]


_WITH_STATUS = ("mention", "status", "reblog", "favourite", "update")


async def present_notifications(conn: asyncpg.Connection, settings: Settings, rows: list[NotificationRow],
                                viewer_id: int) -> list[dict]:
    """Notification entities; one whose post the viewer may no longer see is left out."""
    accounts = await _accounts(conn, settings, [r.from_id for r in rows])
    object_ids = [r.object_id for r in rows if r.type in _WITH_STATUS and r.object_id is not None]
    visible = await status_views.visible_object_ids(conn, list(set(object_ids)), viewer_id)
    posts, _ = await _posts(conn, settings, visible, viewer_id, accounts)
    out = []
    for row in rows:
        wants_status = row.type in _WITH_STATUS
        if row.from_id not in accounts or (wants_status and row.object_id not in posts):
            continue
        out.append(se.notification(row, account=accounts[row.from_id],
                                   status_body=posts[row.object_id] if wants_status else None))
    return out
