"""SQL for what a local person does to keep others out of sight: blocks they make, mutes, domain blocks.

Blocks that remote actors make of local ones are in `interactions` (they arrive by federation); the
`blocks` table holds both. Lists page by the row id (`status_views.Window`), newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .status_views import Window

_ORDER = {False: "DESC", True: "ASC"}


@dataclass(frozen=True)
class MuteRow:
    id: int
    target_id: int
    notifications: bool
    expires_at: datetime | None


@dataclass(frozen=True)
class FollowerOnDomain:
    """A follow of a local account by an actor of a domain it now blocks."""

    follower_id: int
    follower_uri: str
    inbox_uri: str
    activity_uri: str | None
    activity: dict | None


async def insert_block(conn: asyncpg.Connection, account_id: int, target_id: int, activity_uri: str) -> bool:
    """Record a block by a local account; False when it already blocks the target (nothing changes)."""
    status = await conn.execute(
        """INSERT INTO blocks (actor_id, target_id, activity_uri) VALUES ($1, $2, $3)
           ON CONFLICT (actor_id, target_id) DO NOTHING""",
        account_id, target_id, activity_uri,
    )
    return status.endswith(" 1")


async def take_block(conn: asyncpg.Connection, account_id: int, target_id: int) -> str | None:
    """Remove a block by a local account; the Block activity id it was sent with, '' when it had none, None
    when there was no block."""
    row = await conn.fetchrow(
        "DELETE FROM blocks WHERE actor_id = $1 AND target_id = $2 RETURNING coalesce(activity_uri, '') AS uri",
        account_id, target_id,
    )
    return row["uri"] if row else None


def blocks_between_sql(a: str, b: str) -> str:
    """Two columns, `forward` (a blocks b) and `backward` (b blocks a), for actor ids `a` and `b` (SQL)."""
    return f"""EXISTS (SELECT 1 FROM blocks WHERE actor_id = {a} AND target_id = {b}) AS forward,
               EXISTS (SELECT 1 FROM blocks WHERE actor_id = {b} AND target_id = {a}) AS backward"""


async def blocks_between(conn: asyncpg.Connection, a: int, b: int) -> tuple[bool, bool]:
    """(a blocks b, b blocks a), in one round trip."""
    row = await conn.fetchrow(f"SELECT {blocks_between_sql('$1', '$2')}", a, b)
    return row["forward"], row["backward"]


async def read_blocks(conn: asyncpg.Connection, account_id: int, window: Window) -> list[tuple[int, int]]:
    """(block row id, blocked account id) of the account's blocks of existing accounts."""
    rows = await conn.fetch(
        f"""SELECT b.id, b.target_id FROM blocks b JOIN actors a ON a.id = b.target_id AND a.deleted_at IS NULL
            WHERE b.actor_id = $1 AND b.id > $2 AND b.id < $3
            ORDER BY b.id {_ORDER[window.ascending]} LIMIT $4""",
        account_id, *window.params(),
    )
    return [(r["id"], r["target_id"]) for r in rows]


async def upsert_mute(conn: asyncpg.Connection, account_id: int, target_id: int, notifications: bool,
                      expires_at: datetime | None) -> None:
    """Mute an account, or change a mute's options (as Mastodon: muting again replaces them)."""
    await conn.execute(
        """INSERT INTO mutes (account_id, target_id, notifications, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account_id, target_id)
           DO UPDATE SET notifications = EXCLUDED.notifications, expires_at = EXCLUDED.expires_at""",
        account_id, target_id, notifications, expires_at,
    )


async def delete_mute(conn: asyncpg.Connection, account_id: int, target_id: int) -> bool:
    """Lift a mute; False when there was none."""
    status = await conn.execute("DELETE FROM mutes WHERE account_id = $1 AND target_id = $2", account_id, target_id)
    return not status.endswith(" 0")


async def read_mutes(conn: asyncpg.Connection, account_id: int, window: Window) -> list[MuteRow]:
    """The account's mutes in force, of existing accounts."""
    rows = await conn.fetch(
        f"""SELECT m.id, m.target_id, m.notifications, m.expires_at
            FROM mutes m JOIN actors a ON a.id = m.target_id AND a.deleted_at IS NULL
            WHERE m.account_id = $1 AND (m.expires_at IS NULL OR m.expires_at > now())
              AND m.id > $2 AND m.id < $3
            ORDER BY m.id {_ORDER[window.ascending]} LIMIT $4""",
        account_id, *window.params(),
    )
    return [MuteRow(**dict(r)) for r in rows]


async def get_mutes(conn: asyncpg.Connection, account_id: int, target_ids: list[int]) -> dict[int, MuteRow]:
    """The account's mutes in force of these accounts, by target id."""
    rows = await conn.fetch(
        """SELECT id, target_id, notifications, expires_at FROM mutes
           WHERE account_id = $1 AND target_id = ANY($2::bigint[]) AND (expires_at IS NULL OR expires_at > now())""",
        account_id, target_ids,
    )
    return {r["target_id"]: MuteRow(**dict(r)) for r in rows}


async def delete_expired_mutes(conn: asyncpg.Connection, _retention_seconds: float = 0.0) -> int:
    """Forget mutes whose time is over (they already hide nothing); how many. A janitor's pruner."""
    status = await conn.execute("DELETE FROM mutes WHERE expires_at <= now()")
    return int(status.split()[-1])


async def insert_domain_block(conn: asyncpg.Connection, account_id: int, domain: str) -> bool:
    """Block a domain for one account; False when it already does."""
    status = await conn.execute(
        "INSERT INTO account_domain_blocks (account_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        account_id, domain,
    )
    return status.endswith(" 1")


async def delete_domain_block(conn: asyncpg.Connection, account_id: int, domain: str) -> bool:
    """Lift an account's domain block; False when there was none."""
    status = await conn.execute(
        "DELETE FROM account_domain_blocks WHERE account_id = $1 AND domain = $2", account_id, domain)
    return not status.endswith(" 0")


async def read_domain_blocks(conn: asyncpg.Connection, account_id: int, window: Window) -> list[tuple[int, str]]:
    """(row id, domain) of the account's domain blocks."""
    rows = await conn.fetch(
        f"""SELECT id, domain FROM account_domain_blocks WHERE account_id = $1 AND id > $2 AND id < $3
            ORDER BY id {_ORDER[window.ascending]} LIMIT $4""",
        account_id, *window.params(),
    )
    return [(r["id"], r["domain"]) for r in rows]


async def blocked_domains_of(conn: asyncpg.Connection, account_id: int, domains: list[str]) -> set[str]:
    """Those of `domains` the account blocks."""
    rows = await conn.fetch(
        "SELECT domain FROM account_domain_blocks WHERE account_id = $1 AND domain = ANY($2::text[])",
        account_id, domains,
    )
    return {r["domain"] for r in rows}


async def take_followers_on_domain(conn: asyncpg.Connection, account_id: int, domain: str) -> list[FollowerOnDomain]:
    """Remove every follow (and follow request) of the account by actors of `domain`; who they were."""
    rows = await conn.fetch(
        """DELETE FROM follows f USING actors a
           WHERE f.followee_id = $1 AND a.id = f.follower_id AND a.domain = $2 AND NOT a.is_local
           RETURNING f.follower_id, a.uri AS follower_uri, a.inbox_uri, f.activity_uri, f.activity""",
        account_id, domain,
    )
    return [FollowerOnDomain(**dict(r)) for r in rows]
