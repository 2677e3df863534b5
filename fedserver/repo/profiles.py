"""SQL for a local actor's own profile fields."""

from __future__ import annotations

import asyncpg


async def update_profile(conn: asyncpg.Connection, actor_id: int, *, display_name: str | None,
                         summary_html: str | None) -> bool:
    """Change the display name and/or bio (None keeps a field); False if the actor is gone."""
    result = await conn.execute(
        """UPDATE actors SET display_name = coalesce($2, display_name), summary = coalesce($3, summary),
                  updated_at = now()
           WHERE id = $1 AND is_local AND deleted_at IS NULL""",
        actor_id, display_name, summary_html,
    )
    return result.endswith(" 1")
