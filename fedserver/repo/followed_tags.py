"""SQL for hashtags people follow, and the numbers of the Tag entity (`following`, daily `history`).

A followed tag brings new public posts carrying it into the follower's home timeline; that fan-out
happens where posts are stored (repo/home_feed.py), so reading a home page stays one range scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from .status_views import Window, window_sql

HISTORY_DAYS = 7


@dataclass(frozen=True)
class DayUse:
    """One day of a tag's use here: posts carrying it and distinct accounts that posted them."""

    day: date
    uses: int
    accounts: int


async def follow_tag(conn: asyncpg.Connection, account_id: int, name: str) -> None:
    """Follow a (normalised) tag, creating it if no post carried it yet; idempotent."""
    await conn.execute(
        """WITH t AS (INSERT INTO tags (name) VALUES ($2) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
                      RETURNING id)
           INSERT INTO followed_tags (account_id, tag_id) SELECT $1, id FROM t ON CONFLICT DO NOTHING""",
        account_id, name)


async def unfollow_tag(conn: asyncpg.Connection, account_id: int, name: str) -> None:
    """Stop following a tag; idempotent."""
    await conn.execute(
        "DELETE FROM followed_tags WHERE account_id = $1 AND tag_id = (SELECT id FROM tags WHERE name = $2)",
        account_id, name)


async def followed_among(conn: asyncpg.Connection, account_id: int | None, names: list[str]) -> set[str]:
    """Which of `names` the account follows (none for anonymous readers)."""
    if account_id is None or not names:
        return set()
    rows = await conn.fetch(
        """SELECT t.name FROM followed_tags f JOIN tags t ON t.id = f.tag_id
           WHERE f.account_id = $1 AND t.name = ANY($2::text[])""",
        account_id, names)
    return {r["name"] for r in rows}


async def read_followed(conn: asyncpg.Connection, account_id: int, window: Window) -> list[tuple[int, str]]:
    """(cursor, tag name) of the tags the account follows, latest follow first."""
    bounds, order = window_sql("f.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT f.id, t.name FROM followed_tags f JOIN tags t ON t.id = f.tag_id
            WHERE f.account_id = $1 AND {bounds} {order}""",
        account_id, *window.params())
    return [(r["id"], r["name"]) for r in rows]


async def history(conn: asyncpg.Connection, names: list[str], days: int = HISTORY_DAYS) -> dict[str, list[DayUse]]:
    """Per tag (known or not), the last `days` UTC days, today first: public posts known here carrying it, and
    their authors."""
    if not names:
        return {}
    rows = await conn.fetch(
        """WITH days AS (SELECT (now() AT TIME ZONE 'UTC')::date - n AS day FROM generate_series(0, $2 - 1) AS n),
           used AS (
               SELECT t.name, (o.published_at AT TIME ZONE 'UTC')::date AS day, count(*) AS uses,
                      count(DISTINCT o.actor_id) AS accounts
               FROM tags t JOIN object_tags ot ON ot.tag_id = t.id JOIN objects o ON o.id = ot.object_id
               WHERE t.name = ANY($1::text[]) AND o.visibility = 'public' AND o.deleted_at IS NULL
                 AND o.published_at >= ((SELECT min(day) FROM days)::timestamp AT TIME ZONE 'UTC')
               GROUP BY 1, 2)
           SELECT n.name, d.day, coalesce(u.uses, 0) AS uses, coalesce(u.accounts, 0) AS accounts
           FROM unnest($1::text[]) AS n(name) CROSS JOIN days d
           LEFT JOIN used u ON u.name = n.name AND u.day = d.day
           ORDER BY n.name, d.day DESC""",
        names, days)
    found: dict[str, list[DayUse]] = {}
    for r in rows:
        found.setdefault(r["name"], []).append(DayUse(r["day"], r["uses"], r["accounts"]))
    return found
