"""SQL for the outbound delivery queue and per-domain delivery health.

Every state change is one statement. A worker owns a claimed row until its lease
(`locked_until`) runs out; its result is written only while it still holds that exact
lease, so a row taken over after an expired lease is never overwritten by the first owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

_CLAIMED = "d.id, d.activity_uri, d.sender_id, d.inbox_uri, d.domain, d.body, d.attempts, d.locked_until"


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker holds until `lease` (its `locked_until`)."""

    id: int
    activity_uri: str
    sender_id: int
    inbox_uri: str
    domain: str
    body: dict
    attempts: int
    lease: datetime


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the command line lists it."""

    id: int
    activity_uri: str
    inbox_uri: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def _claimed(rows: list[asyncpg.Record]) -> list[ClaimedDelivery]:
    return [
        ClaimedDelivery(id=r["id"], activity_uri=r["activity_uri"], sender_id=r["sender_id"], inbox_uri=r["inbox_uri"],
                        domain=r["domain"], body=r["body"], attempts=r["attempts"], lease=r["locked_until"])
        for r in rows
    ]


async def claim_due(conn: asyncpg.Connection, *, limit: int, lease_seconds: float,
                    pause_after_seconds: float) -> list[ClaimedDelivery]:
    """Lease up to `limit` due rows, skipping rows others hold and domains paused for failing too long."""
    rows = await conn.fetch(
        f"""UPDATE deliveries AS d
            SET locked_until = clock_timestamp() + make_interval(secs => $2), attempts = d.attempts + 1
            WHERE d.id IN (
                SELECT q.id FROM deliveries q
                WHERE q.state = 'queued' AND q.next_attempt_at <= now()
                  AND (q.locked_until IS NULL OR q.locked_until < now())
                  AND q.domain NOT IN (SELECT domain FROM delivery_domains
                                       WHERE failing_since < now() - make_interval(secs => $3))
                ORDER BY q.next_attempt_at LIMIT $1
                FOR UPDATE SKIP LOCKED)
            RETURNING {_CLAIMED}""",
        limit, lease_seconds, pause_after_seconds,
    )
    return _claimed(rows)


async def take_probe_slots(conn: asyncpg.Connection, *, pause_after_seconds: float,
                           probe_interval_seconds: float) -> list[str]:
    """Paused domains whose probe is due; taking one pushes the next probe `probe_interval` ahead."""
    rows = await conn.fetch(
        """UPDATE delivery_domains SET paused_until = now() + make_interval(secs => $2)
           WHERE failing_since < now() - make_interval(secs => $1)
             AND (paused_until IS NULL OR paused_until <= now())
           RETURNING domain""",
        pause_after_seconds, probe_interval_seconds,
    )
    return [row["domain"] for row in rows]


async def claim_probe(conn: asyncpg.Connection, domain: str, *, lease_seconds: float) -> ClaimedDelivery | None:
    """Lease the oldest queued row of a paused domain, due or not, as its probe."""
    rows = await conn.fetch(
        f"""UPDATE deliveries AS d
            SET locked_until = clock_timestamp() + make_interval(secs => $2), attempts = d.attempts + 1
            WHERE d.id = (
                SELECT q.id FROM deliveries q
                WHERE q.domain = $1 AND q.state = 'queued' AND (q.locked_until IS NULL OR q.locked_until < now())
                ORDER BY q.next_attempt_at LIMIT 1
                FOR UPDATE SKIP LOCKED)
            RETURNING {_CLAIMED}""",
        domain, lease_seconds,
    )
    claimed = _claimed(rows)
    return claimed[0] if claimed else None


async def finish(conn: asyncpg.Connection, delivery: ClaimedDelivery, state: str, *, status: int | None,
                 error: str | None) -> bool:
    """Record a final outcome (delivered, failed, gone); False if the lease was lost meanwhile."""
    result = await conn.execute(
        """UPDATE deliveries SET state = $3, last_status = $4, last_error = $5, finished_at = now(),
                  locked_until = NULL
           WHERE id = $1 AND locked_until = $2 AND state = 'queued'""",
        delivery.id, delivery.lease, state, status, error,
    )
    return result.endswith(" 1")


async def reschedule(conn: asyncpg.Connection, delivery: ClaimedDelivery, *, delay_seconds: float,
                     status: int | None, error: str | None) -> bool:
    """Put a row back in the queue for another attempt after `delay_seconds`; False if the lease was lost."""
    result = await conn.execute(
        """UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $3), last_status = $4,
                  last_error = $5, locked_until = NULL
           WHERE id = $1 AND locked_until = $2 AND state = 'queued'""",
        delivery.id, delivery.lease, delay_seconds, status, error,
    )
    return result.endswith(" 1")


async def record_domain_failure(conn: asyncpg.Connection, domain: str) -> None:
    """A server did not answer usefully (5xx, timeout, refused): start or continue its failing period."""
    await conn.execute(
        """INSERT INTO delivery_domains AS h (domain, failing_since, last_failure_at) VALUES ($1, now(), now())
           ON CONFLICT (domain) DO UPDATE
           SET failing_since = coalesce(h.failing_since, now()), last_failure_at = now()""",
        domain,
    )


async def record_domain_success(conn: asyncpg.Connection, domain: str) -> None:
    """A server answered: end its failing period and any pause (a no-op for healthy domains)."""
    await conn.execute(
        """UPDATE delivery_domains SET failing_since = NULL, paused_until = NULL, last_success_at = now()
           WHERE domain = $1 AND (failing_since IS NOT NULL OR paused_until IS NOT NULL)""",
        domain,
    )


async def mark_inbox_owners_gone(conn: asyncpg.Connection, inbox_uri: str) -> int:
    """Mark remote actors whose personal inbox answered 410 Gone as deleted."""
    result = await conn.execute(
        """UPDATE actors SET deleted_at = now(), updated_at = now()
           WHERE inbox_uri = $1 AND NOT is_local AND deleted_at IS NULL""",
        inbox_uri,
    )
    return int(result.rsplit(" ", 1)[-1])


async def count_by_state(conn: asyncpg.Connection) -> dict[str, int]:
    """How many deliveries are in each state."""
    rows = await conn.fetch("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    counts = {state: 0 for state in ("queued", "delivered", "failed", "gone")}
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


async def list_latest(conn: asyncpg.Connection, *, state: str | None, limit: int) -> list[DeliveryRow]:
    """The most recently created deliveries, optionally of one state."""
    rows = await conn.fetch(
        """SELECT id, activity_uri, inbox_uri, state, attempts, next_attempt_at, last_status, last_error,
                  created_at, finished_at
           FROM deliveries WHERE ($1::text IS NULL OR state = $1) ORDER BY id DESC LIMIT $2""",
        state, limit,
    )
    return [DeliveryRow(**dict(row)) for row in rows]


async def get_sender_key(conn: asyncpg.Connection, actor_id: int) -> tuple[str, str] | None:
    """`(key_id, private_key_pem)` of a local actor, deleted ones included (their Deletes still go out)."""
    row = await conn.fetchrow(
        """SELECT a.key_id, l.private_key_pem FROM actors a JOIN local_accounts l ON l.actor_id = a.id
           WHERE a.id = $1""",
        actor_id,
    )
    return (row["key_id"], row["private_key_pem"]) if row else None
