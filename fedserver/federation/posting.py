"""What the client API adds to publishing a post: content warning, language, hashtags, media, the typed
source and the Idempotency-Key. Runs inside `outbox.create_post`'s transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote

import asyncpg

from activities.build import NoteExtras

from ..config import Settings
from ..repo import media as media_repo
from ..repo import status_meta
from ..repo import statuses as statuses_repo
from . import feeds


@dataclass(frozen=True)
class PostOptions:
    """Client API options of a new post (all optional; the command line uses none)."""

    spoiler_text: str = ""
    sensitive: bool = False
    language: str | None = None
    media_ids: tuple[int, ...] = ()
    idempotency_key: str | None = None
    app_id: int | None = None
    context: str | None = None  # what the post belongs to (an order's messages name its Agreement)


class DuplicatePost(Exception):
    """The Idempotency-Key already made a post within the hour; nothing new was written."""


class MediaRefused(Exception):
    """The media ids cannot be attached; the message says why."""


def tags_base(settings: Settings) -> str:
    """Where hashtag links point: `{base}/tags/`."""
    return f"{settings.base_url}/tags/"


def note_extras(settings: Settings, options: PostOptions, hashtags: Sequence[str]) -> NoteExtras:
    """The Note fields a post's options and hashtags produce (attachments come after insertion)."""
    base = tags_base(settings)
    return NoteExtras(summary=options.spoiler_text or None, sensitive=options.sensitive,
                      language=options.language, hashtags=tuple((tag, base + quote(tag)) for tag in hashtags),
                      context=options.context)


async def claim_key(conn: asyncpg.Connection, actor_id: int, options: PostOptions) -> None:
    """Take the Idempotency-Key first, so a concurrent duplicate waits here and then finds it taken."""
    if options.idempotency_key and not await status_meta.claim_idempotency_key(conn, actor_id,
                                                                               options.idempotency_key):
        raise DuplicatePost(options.idempotency_key)


async def _attach(conn: asyncpg.Connection, actor_id: int, object_id: int, obj: dict,
                  media_ids: Sequence[int]) -> dict:
    if not media_ids:
        return obj
    try:
        media = await media_repo.attach_media(conn, actor_id, list(media_ids), object_id)
    except media_repo.MediaError as exc:
        raise MediaRefused(str(exc)) from None
    obj = {**obj, "attachment": media_repo.attachment_documents(media)}
    await statuses_repo.update_object_data(conn, object_id, obj)
    return obj


async def after_insert(conn: asyncpg.Connection, actor_id: int, object_id: int, obj: dict, options: PostOptions, *,
                       text: str, mention_uris: Sequence[str], hashtags: Sequence[str]) -> dict:
    """Attach media, keep the source, bind the key, fan out; returns the document as finally stored."""
    obj = await _attach(conn, actor_id, object_id, obj, options.media_ids)
    await status_meta.insert_source(conn, object_id, text, options.spoiler_text, options.app_id)
    if options.idempotency_key:
        await status_meta.bind_idempotency_key(conn, actor_id, options.idempotency_key, object_id)
    await feeds.post_stored(conn, object_id, mention_uris=mention_uris, hashtags=hashtags)
    return obj


async def record_edit(conn: asyncpg.Connection, object_id: int, text: str, options: PostOptions) -> None:
    """Keep the edited text and content warning as the post's source."""
    await status_meta.insert_source(conn, object_id, text, options.spoiler_text, None)
