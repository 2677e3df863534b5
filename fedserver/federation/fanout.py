"""Fan-out: one delivery row per distinct target inbox, written in the caller's transaction."""

from __future__ import annotations

from typing import Iterable

import asyncpg

from activities.actor import Actor
from activities.urls import BadId, id_host

DELIVERY_CHANNEL = "fedserver_deliveries"


async def follower_inboxes(conn: asyncpg.Connection, actor_id: int) -> list[str]:
    """Inboxes of the remote followers of a local actor, one per server where a shared inbox exists."""
    rows = await conn.fetch(
        """SELECT DISTINCT coalesce(a.shared_inbox_uri, a.inbox_uri) AS inbox
           FROM follows f JOIN actors a ON a.id = f.follower_id
           WHERE f.followee_id = $1 AND f.state = 'accepted' AND NOT a.is_local AND a.deleted_at IS NULL""",
        actor_id,
    )
    return [row["inbox"] for row in rows]


async def actor_inboxes(conn: asyncpg.Connection, actor_uris: Iterable[str]) -> list[str]:
    """Inboxes of known remote actors (shared inbox preferred)."""
    rows = await conn.fetch(
        """SELECT DISTINCT coalesce(shared_inbox_uri, inbox_uri) AS inbox FROM actors
           WHERE uri = ANY($1::text[]) AND NOT is_local AND deleted_at IS NULL""",
        list(actor_uris),
    )
    return [row["inbox"] for row in rows]


async def deliver(conn: asyncpg.Connection, *, sender: Actor, activity: dict, inboxes: Iterable[str]) -> int:
    """Queue `activity` for each distinct inbox; returns how many rows were added.

    Runs in the caller's transaction, so a post and its deliveries commit together;
    the NOTIFY is sent at commit, waking the delivery workers.
    """
    targets = sorted({inbox for inbox in inboxes if inbox})
    domains = []
    for inbox in targets:
        try:
            domains.append(id_host(inbox))
        except BadId:
            domains.append("")
    if not targets:
        return 0
    status = await conn.execute(
        """INSERT INTO deliveries (activity_uri, sender_id, inbox_uri, domain, body)
           SELECT $1, $2, t.inbox, t.domain, $3::jsonb
           FROM unnest($4::text[], $5::text[]) AS t(inbox, domain)
           ON CONFLICT (activity_uri, inbox_uri) DO NOTHING""",
        activity["id"], sender.id, activity, targets, domains,
    )
    await conn.execute(f"NOTIFY {DELIVERY_CHANNEL}")
    return int(status.rsplit(" ", 1)[-1])
