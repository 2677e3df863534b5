"""SQL for what a person keeps through the client API: posting preferences and timeline markers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Preferences:
    posting_visibility: str = "public"
    posting_sensitive: bool = False
    posting_language: str | None = None
    expand_media: str = "default"
    expand_spoilers: bool = False


@dataclass(frozen=True)
class Marker:
    timeline: str
    last_read_id: str
    version: int
    updated_at: datetime


async def get_preferences(conn: asyncpg.Connection, account_id: int) -> Preferences:
    """Stored preferences, or Mastodon's defaults."""
    row = await conn.fetchrow(
        """SELECT posting_visibility, posting_sensitive, posting_language, expand_media, expand_spoilers
           FROM account_preferences WHERE account_id = $1""",
        account_id,
    )
    return Preferences(**dict(row)) if row else Preferences()


async def update_posting_preferences(conn: asyncpg.Connection, account_id: int, *, visibility: str | None,
                                     sensitive: bool | None, language: str | None,
                                     clear_language: bool = False) -> None:
    """Change posting defaults (None keeps a value; `clear_language` sets the language to none)."""
    await conn.execute(
        """INSERT INTO account_preferences AS p (account_id, posting_visibility, posting_sensitive, posting_language)
           VALUES ($1, coalesce($2, 'public'), coalesce($3, false), $4)
           ON CONFLICT (account_id) DO UPDATE SET
               posting_visibility = coalesce($2, p.posting_visibility),
               posting_sensitive = coalesce($3, p.posting_sensitive),
               posting_language = CASE WHEN $5 THEN NULL ELSE coalesce($4, p.posting_language) END,
               updated_at = now()""",
        account_id, visibility, sensitive, language, clear_language,
    )


async def get_markers(conn: asyncpg.Connection, account_id: int, timelines: list[str]) -> list[Marker]:
    """The stored markers among `timelines`."""
    rows = await conn.fetch(
        """SELECT timeline, last_read_id, version, updated_at FROM timeline_markers
           WHERE account_id = $1 AND timeline = ANY($2::text[]) ORDER BY timeline""",
        account_id, timelines,
    )
    return [Marker(**dict(row)) for row in rows]


async def save_marker(conn: asyncpg.Connection, account_id: int, timeline: str, last_read_id: str) -> Marker:
    """Set a marker, raising its version."""
    row = await conn.fetchrow(
        """INSERT INTO timeline_markers AS m (account_id, timeline, last_read_id) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, timeline) DO UPDATE
               SET last_read_id = $3, version = m.version + 1, updated_at = now()
           RETURNING timeline, last_read_id, version, updated_at""",
        account_id, timeline, last_read_id,
    )
    return Marker(**dict(row))
