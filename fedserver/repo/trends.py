"""SQL for trends: which ranked posts (by uri) this server knows and a reader may see, and their hashtags."""

from __future__ import annotations

import asyncpg

from .moderation import hidden_actor_sql
from .status_views import unwanted_sql, visible_sql

_SILENCED = hidden_actor_sql("o.actor_id", silenced_too=True)


async def visible_public_posts(conn: asyncpg.Connection, uris: list[str], viewer_id: int | None) -> dict[str, int]:
    """uri → object id of the public posts among `uris` the viewer may see (not muted, not silenced)."""
    if not uris:
        return {}
    rows = await conn.fetch(
        f"""SELECT o.uri, o.id FROM objects o
            WHERE o.uri = ANY($1::text[]) AND o.visibility = 'public' AND o.actor_id IS NOT NULL
              AND {visible_sql('$2')} AND NOT {unwanted_sql('$2', 'o.actor_id')} AND NOT {_SILENCED}""",
        uris, viewer_id)
    return {r["uri"]: r["id"] for r in rows}
