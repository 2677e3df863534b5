"""SQL for uploaded media, and the contract statuses use: attach, list per post, ActivityPub attachments.

`attach_media` runs in the caller's transaction (the status insert): it locks the rows,
checks that every id is the caller's own unattached upload, and only then attaches all of
them, so a refused list changes nothing.
"""

from __future__ import annotations

import asyncpg

from ..media.entity import MAX_MEDIA, StoredMedia, attachment_documents, media_attachment

__all__ = ["MediaError", "attach_media", "attachment_documents", "insert_media",
           "get_own_unattached_media", "update_media", "StoredMedia"]

_COLUMNS = ", ".join(StoredMedia.__dataclass_fields__)


class MediaError(Exception):
    """Media ids a status cannot take; the message names them."""


def _media(row: asyncpg.Record | None) -> StoredMedia | None:
    return StoredMedia(**dict(row)) if row else None


async def insert_media(conn: asyncpg.Connection, *, account_id: int, media_type: str, file_name: str,
                       preview_file_name: str, url: str, preview_url: str, file_size: int, width: int,
                       height: int, preview_width: int, preview_height: int, description: str | None,
                       focus: tuple[float, float], blurhash: str) -> StoredMedia:
    """Store a processed, unattached upload."""
    row = await conn.fetchrow(
        f"""INSERT INTO media_attachments (account_id, media_type, file_name, preview_file_name, url, preview_url,
                   file_size, width, height, preview_width, preview_height, description, focus_x, focus_y, blurhash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            RETURNING {_COLUMNS}""",
        account_id, media_type, file_name, preview_file_name, url, preview_url, file_size, width, height,
        preview_width, preview_height, description, focus[0], focus[1], blurhash,
    )
    return _media(row)  # type: ignore[return-value]


async def get_own_unattached_media(conn: asyncpg.Connection, account_id: int, media_id: int) -> StoredMedia | None:
    """An upload of this account not yet attached to a status (what GET/PUT /api/v1/media/:id may see)."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM media_attachments
            WHERE id = $1 AND account_id = $2 AND object_id IS NULL""",
        media_id, account_id,
    )
    return _media(row)


async def update_media(conn: asyncpg.Connection, account_id: int, media_id: int, *, description: str | None,
                       set_description: bool, focus: tuple[float, float] | None) -> StoredMedia | None:
    """Change the description and/or focus of one's own unattached upload; None if there is no such upload."""
    row = await conn.fetchrow(
        f"""UPDATE media_attachments SET
                   description = CASE WHEN $3 THEN $4 ELSE description END,
                   focus_x = coalesce($5, focus_x), focus_y = coalesce($6, focus_y), updated_at = now()
            WHERE id = $1 AND account_id = $2 AND object_id IS NULL
            RETURNING {_COLUMNS}""",
        media_id, account_id, set_description, description,
        focus[0] if focus else None, focus[1] if focus else None,
    )
    return _media(row)


async def attach_media(conn: asyncpg.Connection, account_id: int, media_ids: list[int], object_id: int) -> list[dict]:
    """Attach the caller's own unattached uploads to a status, in the given order; MediaError otherwise."""
    if not media_ids:
        return []
    if len(media_ids) > MAX_MEDIA:
        raise MediaError(f"a status can have at most {MAX_MEDIA} media attachments")
    if len(set(media_ids)) != len(media_ids):
        raise MediaError("the same media id is given twice")
    rows = await conn.fetch(
        "SELECT id, account_id, object_id FROM media_attachments WHERE id = ANY($1::bigint[]) FOR UPDATE",
        media_ids,
    )
    _check_attachable({row["id"]: row for row in rows}, account_id, media_ids)
    updated = await conn.fetch(
        f"""UPDATE media_attachments m SET object_id = $2, position = w.position, updated_at = now()
            FROM unnest($1::bigint[]) WITH ORDINALITY AS w(id, position)
            WHERE m.id = w.id
            RETURNING {', '.join(f'm.{c}' for c in StoredMedia.__dataclass_fields__)}""",
        media_ids, object_id,
    )
    by_id = {row["id"]: StoredMedia(**dict(row)) for row in updated}
    return [media_attachment(by_id[i]) for i in media_ids]


def _check_attachable(rows: dict[int, asyncpg.Record], account_id: int, media_ids: list[int]) -> None:
    # Another account's upload is "not found", as Mastodon says: its existence is not ours to reveal.
    missing = [i for i in media_ids if i not in rows or rows[i]["account_id"] != account_id]
    if missing:
        raise MediaError(f"media {', '.join(map(str, missing))} not found")
    attached = [i for i in media_ids if rows[i]["object_id"] is not None]
    if attached:
        raise MediaError(f"media {', '.join(map(str, attached))} is already attached to a status")
