"""SQL for inbound activities: the durable insert of verified activities, and their job queue.

Inbox items are a job table of `fedserver.jobs`, claimed in arrival order (`id`); one
sender's items are leased to one worker at a time, which runs them one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from .jobs import Queue

CHANNEL = "fedserver_inbox"

INBOX = Queue(
    table="inbox_items", channel=CHANNEL, order_by="id",
    columns=("activity_uri", "actor_uri", "body", "recipient_id"),
    lease_seconds=120.0, max_attempts=8, retention=True, sender="actor_uri",
)

# One statement per batch: insert, skip ids already stored, wake the workers when any is new.
_INSERT = f"""
WITH stored AS (
    INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, recipient_id, body, signer_key_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]::jsonb[], $6::text[])
    ON CONFLICT (activity_uri) DO NOTHING
    RETURNING 1
)
SELECT pg_notify('{CHANNEL}', '') FROM (SELECT 1 FROM stored LIMIT 1) AS anything_new
"""


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A verified activity to store."""

    activity_uri: str
    activity_type: str
    actor_uri: str
    recipient_id: int | None
    body: str  # the JSON text as received: PostgreSQL parses it, nothing is encoded twice
    signer_key_id: str | None


async def insert_items(conn: asyncpg.Connection, rows: Sequence[InboxRow]) -> None:
    """Store a batch in one statement (its own implicit transaction unless the caller opened one)."""
    await conn.execute(
        _INSERT,
        [r.activity_uri for r in rows], [r.activity_type for r in rows], [r.actor_uri for r in rows],
        [r.recipient_id for r in rows], [r.body for r in rows], [r.signer_key_id for r in rows],
    )
