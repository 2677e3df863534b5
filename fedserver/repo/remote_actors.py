"""SQL for finding actors by `name@domain` handle (what people type to follow or mention)."""

from __future__ import annotations

import asyncpg

from activities.actor import Actor

from .actors import get_actor_by_uri


async def get_actor_by_handle(conn: asyncpg.Connection, username: str, domain: str) -> Actor | None:
    """A known actor (local or remote) by case-insensitive name and exact domain."""
    uri = await conn.fetchval(
        "SELECT uri FROM actors WHERE lower(username) = lower($1) AND domain = $2", username, domain.lower()
    )
    return await get_actor_by_uri(conn, uri) if uri else None


async def get_actors_by_handles(conn: asyncpg.Connection, handles: list[tuple[str, str]]) -> dict[str, Actor]:
    """Known, non-deleted actors for `(name, domain)` pairs, keyed by `name@domain` in lower case."""
    found: dict[str, Actor] = {}
    for username, domain in handles:
        actor = await get_actor_by_handle(conn, username, domain)
        if actor is not None and actor.deleted_at is None:
            found[f"{username}@{domain}".lower()] = actor
    return found
