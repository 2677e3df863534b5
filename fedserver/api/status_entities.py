"""Status, Notification, Context, Tag and Mention entities. Pure: repository rows in, JSON-ready dicts out.

Fields follow docs.joinmastodon.org/entities (reference/mastodon-client-api.md §2.6). A boost is
a Status of its own (id = the boost's id) whose `reblog` is the boosted post, as on Mastodon.
The viewer's own flags (`favourited`, `reblogged`, …) are present only for a signed-in viewer.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from activities.sanitize import html_to_text

from ..repo.notifications import NotificationRow
from ..repo.status_views import BoostRow, MentionRow, StatusRow
from .wire import api_datetime


def mention(row: MentionRow) -> dict:
    """A Status.mentions item."""
    return {"id": str(row.actor_id), "username": row.username, "url": row.url or row.uri,
            "acct": row.username if row.is_local else f"{row.username}@{row.domain}"}


def tag(name: str, base_url: str, *, history: bool = False) -> dict:
    """A Tag (with an empty `history` for the Tag entity itself; Status.tags carry only name and url)."""
    body = {"name": name, "url": f"{base_url}/tags/{quote(name)}"}
    if history:
        body.update(history=[], following=False)
    return body


def _content(row: StatusRow) -> str:
    # Mastodon shows an Article by its title; ours keeps the body too, under the title.
    if row.object_type == "Article" and row.name:
        return f"<p><strong>{escape(row.name)}</strong></p>{row.content}"
    return row.content


def spoiler_text(row: StatusRow) -> str:
    """The content warning as plain text."""
    if row.source_spoiler is not None:
        return row.source_spoiler
    if row.object_type == "Article" or not row.summary:
        return ""
    return html_to_text(row.summary) if not row.is_local else row.summary


def _language(data: dict) -> str | None:
    content_map = data.get("contentMap")
    if isinstance(content_map, dict) and content_map:
        first = next(iter(content_map))
        return first if isinstance(first, str) and 0 < len(first) <= 10 else None
    return None


def _application(row: StatusRow) -> dict | None:
    return {"name": row.app_name, "website": row.app_website} if row.app_name else None


def _viewer_flags(row: StatusRow) -> dict:
    return {"favourited": row.favourited, "reblogged": row.reblogged, "muted": False,
            "bookmarked": row.bookmarked, "pinned": row.pinned}


def status(row: StatusRow, *, account: dict, mentions: list[dict], tags: list[dict], media: list[dict],
           signed_in: bool) -> dict:
    """A post as a Status."""
    spoiler = spoiler_text(row)
    body = {
        "id": str(row.id),
        "uri": row.uri,
        "url": row.url or row.uri,
        "created_at": api_datetime(row.published_at),
        "account": account,
        "content": _content(row),
        "visibility": row.visibility,
        "sensitive": row.data.get("sensitive") is True or bool(spoiler),
        "spoiler_text": spoiler,
        "media_attachments": media,
        "application": _application(row),
        "mentions": mentions,
        "tags": tags,
        "emojis": [],
        "reblogs_count": row.reblogs_count,
        "favourites_count": row.favourites_count,
        "replies_count": row.replies_count,
        "reblog": None,
        "in_reply_to_id": str(row.in_reply_to_id) if row.in_reply_to_id else None,
        "in_reply_to_account_id": str(row.in_reply_to_account_id) if row.in_reply_to_account_id else None,
        "language": _language(row.data),
        "text": None,
        "edited_at": api_datetime(row.updated_at) if row.updated_at else None,
        "card": None,
        "poll": None,
        "filtered": [],
    }
    if signed_in:
        body.update(_viewer_flags(row))
    return body


def reblog(boost: BoostRow, *, account: dict, original: dict, signed_in: bool) -> dict:
    """A boost as a Status wrapping the boosted one."""
    body = {
        "id": str(boost.id), "uri": boost.uri, "url": None, "created_at": api_datetime(boost.created_at),
        "account": account, "content": "", "visibility": original["visibility"], "sensitive": False,
        "spoiler_text": "", "media_attachments": [], "application": None, "mentions": [], "tags": [], "emojis": [],
        "reblogs_count": 0, "favourites_count": 0, "replies_count": 0, "reblog": original,
        "in_reply_to_id": None, "in_reply_to_account_id": None, "language": None, "text": None,
        "edited_at": None, "card": None, "poll": None, "filtered": [],
    }
    if signed_in:
        body.update({k: original[k] for k in ("favourited", "reblogged", "muted", "bookmarked")}, pinned=False)
    return body


def source_text(row: StatusRow) -> str:
    """What the author typed, or the post's plain text when it was not kept (command-line and remote posts)."""
    return row.source_text if row.source_text is not None else html_to_text(row.content)


def with_source(status_body: dict, row: StatusRow) -> dict:
    """A Status with `text`, the source it was written from (DELETE answers it for delete-and-redraft)."""
    return {**status_body, "text": source_text(row)}


def source(object_id: int, text: str, spoiler: str) -> dict:
    """A StatusSource (GET /api/v1/statuses/:id/source)."""
    return {"id": str(object_id), "text": text, "spoiler_text": spoiler}


def context(ancestors: list[dict], descendants: list[dict]) -> dict:
    """A Context: the thread around a post."""
    return {"ancestors": ancestors, "descendants": descendants}


def notification(row: NotificationRow, *, account: dict, status_body: dict | None) -> dict:
    """A Notification; `status` only for the types about a post."""
    body = {"id": str(row.id), "type": row.type, "created_at": api_datetime(row.created_at), "account": account,
            "group_key": f"ungrouped-{row.id}"}
    if status_body is not None:
        body["status"] = status_body
    return body
