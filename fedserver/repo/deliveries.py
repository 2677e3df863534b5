"""SQL for the outbound delivery queue, the bodies it sends, and per-domain delivery health.

Deliveries are a job table of `fedserver.jobs` (claimed with a lease, recorded only while the
lease is held). One activity's JSON is stored once in `delivery_bodies`, whatever the number
of inboxes it goes to; finished deliveries and the bodies nobody refers to any more are pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities.urls import BadId, id_host

from . import jobs
from .jobs import Job, Queue

CHANNEL = "fedserver_deliveries"

# A delivery waits for every earlier queued delivery of its sender to its inbox (held or waiting for a retry): a
# line of the queue. So one recipient gets a sender's activities in the order they were made (a Create before its
# Update and Delete), also after a peer was down for days; different senders' lines to one inbox run side by side
# (the receiver, too, orders per sender). The price: an activity the peer keeps answering with 5xx holds its
# sender's later ones to that inbox until it succeeds or runs out of attempts.

# Claimable: queued, due, not held, first in its line, and not to a domain paused for failing too long ($3 seconds).
DELIVERIES = Queue(
    table="deliveries", channel=CHANNEL, order_by="next_attempt_at",
    columns=("activity_uri", "sender_id", "inbox_uri", "domain", "body_id"),
    ready="""q.domain NOT IN (SELECT domain FROM delivery_domains
                              WHERE failing_since < now() - make_interval(secs => $3))""",
    line=("inbox_uri", "sender_id"),
    lease_seconds=60.0, max_attempts=16, retention=True,
)


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


async def record_and_enqueue(conn: asyncpg.Connection, activity: dict, sender_id: int, inboxes: Iterable[str], *,
                             object_uri: str | None, visibility: str) -> int:
    """Record a published activity and queue it for each distinct inbox, in one statement.

    The activity is stored for its id and the outbox (UniqueViolationError if its id is taken),
    its body once for delivery; returns how many deliveries were added. Runs in the caller's
    transaction; the NOTIFY is delivered at commit, waking the workers. A delivery queued behind
    an earlier one of this sender to its inbox is `waiting`; the last queued row ahead of it is
    share-locked until the caller commits, so that row (and hence every row before the new one, since
    a line's rows end in order) cannot end and release its line before the new row is seen. The last
    row, not the first: the first (being sent) is then rarely held up by inserters. A row being
    recorded just now is skipped: the new row is then not marked, and only the claim's own check of
    the line holds it back.
    """
    targets = sorted({inbox for inbox in inboxes if inbox})
    return await conn.fetchval(
        f"""WITH recorded AS (
                INSERT INTO activities (uri, actor_id, activity_type, object_uri, visibility, data)
                VALUES ($1, $2, $6, $7, $8, $3::jsonb) RETURNING id),
            body AS (
                INSERT INTO delivery_bodies (activity_uri, body) SELECT $1, $3::jsonb WHERE cardinality($4::text[]) > 0
                ON CONFLICT (activity_uri) DO UPDATE SET activity_uri = EXCLUDED.activity_uri
                RETURNING id),
            ahead AS (
                SELECT first.inbox_uri FROM unnest($4::text[]) AS t(inbox) CROSS JOIN LATERAL (
                    SELECT e.inbox_uri FROM deliveries e
                    WHERE e.inbox_uri = t.inbox AND e.sender_id = $2 AND e.state = 'queued'
                    ORDER BY e.id DESC LIMIT 1 FOR SHARE OF e SKIP LOCKED) AS first),
            added AS (
                INSERT INTO deliveries (activity_uri, sender_id, inbox_uri, domain, body_id, waiting)
                SELECT $1, $2, t.inbox, t.domain, body.id, t.inbox IN (SELECT inbox_uri FROM ahead)
                FROM unnest($4::text[], $5::text[]) AS t(inbox, domain), body
                ON CONFLICT (activity_uri, inbox_uri) DO NOTHING
                RETURNING 1)
            SELECT count(*) FROM added, (SELECT pg_notify('{CHANNEL}', '') FROM recorded
                                         WHERE cardinality($4::text[]) > 0) AS woken""",
        activity["id"], sender_id, activity, targets, [_domain(inbox) for inbox in targets], activity["type"],
        object_uri, visibility,
    )


async def claim_followers(conn: asyncpg.Connection, queue: Queue, heads: list[Job], per_line: int,
                          limit: int) -> list[Job]:
    """Lease the queued deliveries that follow each of these claimed heads in its line (up to `per_line` each,
    `limit` in all), in line order: the caller sends them one after another behind their head, and puts back
    a follower whose predecessor did not end. Each follower's row has `after`, the id it follows.

    No one else leases a row behind a queued head; a follower found taken anyway ends its line's run there.
    """
    if not heads or per_line <= 0 or limit <= 0:
        return []
    # The followers are found once (MATERIALIZED), then leased by primary key: left to itself the planner
    # joined every queued row to them and ran the search behind every head again for each (measured: 60
    # queued rows, 7 heads, 7,400 buffers and 23 ms instead of a few hundred buffers).
    rows = await conn.fetch(
        f"""WITH n AS MATERIALIZED (
                SELECT n.id, n.rank, h.id AS head FROM deliveries h CROSS JOIN LATERAL (
                    SELECT f.id, row_number() OVER (ORDER BY f.id) AS rank FROM (
                        SELECT f.id FROM deliveries f
                        WHERE f.inbox_uri = h.inbox_uri AND f.sender_id = h.sender_id AND f.state = 'queued'
                          AND f.id > h.id
                        ORDER BY f.id LIMIT $3) AS f) AS n
                WHERE h.id = ANY($1::bigint[]))
            UPDATE deliveries AS j
            SET locked_until = clock_timestamp() + make_interval(secs => $2), attempts = j.attempts + 1
            FROM n
            WHERE j.id = n.id AND j.state = 'queued' AND (j.locked_until IS NULL OR j.locked_until < now())
            RETURNING {', '.join(f'j.{c}' for c in ('id', 'attempts', 'locked_until', *queue.columns))}, n.rank, n.head""",
        [head.id for head in heads], queue.lease_seconds, per_line,
    )
    by_head: dict[int, dict[int, dict]] = {}
    for row in rows:
        by_head.setdefault(row["head"], {})[row["rank"]] = dict(row)
    followers: list[Job] = []
    for head in heads:
        after, taken = head.id, by_head.get(head.id, {})
        for rank in range(1, len(taken) + 1):
            if rank not in taken or len(followers) >= limit:
                break  # a gap (or the limit): the rest of this line waits for a later claim
            row = taken.pop(rank)
            row["after"] = after
            followers.append(Job(row["id"], row["attempts"], row["locked_until"], row))
            after = row["id"]
    stray = [row for rows_left in by_head.values() for row in rows_left.values()]
    if stray:  # leased past a gap: given back untouched
        await unclaim(conn, [Job(r["id"], r["attempts"], r["locked_until"], r) for r in stray])
    return followers


async def uncount_attempt(conn: asyncpg.Connection, delivery_id: int) -> None:
    """A follower put back unsent (its outcome just recorded): its claim counted no attempt."""
    await conn.execute("UPDATE deliveries SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0", delivery_id)


async def unclaim(conn: asyncpg.Connection, jobs: list[Job]) -> None:
    """Give back leased deliveries that were not attempted: no lease, and the attempt their claim counted undone."""
    await conn.execute(
        """UPDATE deliveries AS t SET locked_until = NULL, attempts = t.attempts - 1
           FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, lease)
           WHERE t.id = u.id AND t.locked_until = u.lease AND t.state = 'queued'""",
        [job.id for job in jobs], [job.lease for job in jobs],
    )


def _domain(inbox: str) -> str:
    try:
        return id_host(inbox)
    except BadId:
        return ""


async def get_bodies(conn: asyncpg.Connection, body_ids: Iterable[int]) -> dict[int, dict]:
    """Bodies by id."""
    rows = await conn.fetch("SELECT id, body FROM delivery_bodies WHERE id = ANY($1::bigint[])", list(body_ids))
    return {row["id"]: row["body"] for row in rows}


async def prune_bodies(conn: asyncpg.Connection, older_than_seconds: float) -> int:
    """Delete bodies older than the retention that no delivery refers to any more."""
    status = await conn.execute(
        """DELETE FROM delivery_bodies b
           WHERE b.created_at < now() - make_interval(secs => $1)
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.body_id = b.id)""",
        older_than_seconds,
    )
    return int(status.rsplit(" ", 1)[-1])


async def follower_inboxes(conn: asyncpg.Connection, actor_id: int) -> list[str]:
    """Inboxes of the remote followers of a local actor, one per server where a shared inbox exists."""
    rows = await conn.fetch(
        """SELECT DISTINCT coalesce(a.shared_inbox_uri, a.inbox_uri) AS inbox
           FROM follows f JOIN actors a ON a.id = f.follower_id
           WHERE f.followee_id = $1 AND f.state = 'accepted' AND NOT a.is_local AND a.deleted_at IS NULL""",
        actor_id,
    )
    return [row["inbox"] for row in rows]


async def following_inboxes(conn: asyncpg.Connection, actor_id: int) -> list[str]:
    """Inboxes of the remote actors a local actor follows or asked to follow (shared inbox preferred)."""
    rows = await conn.fetch(
        """SELECT DISTINCT coalesce(a.shared_inbox_uri, a.inbox_uri) AS inbox
           FROM follows f JOIN actors a ON a.id = f.followee_id
           WHERE f.follower_id = $1 AND NOT a.is_local AND a.deleted_at IS NULL""",
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


async def release_stranded(conn: asyncpg.Connection, queue: Queue) -> int:
    """Release the first delivery of each line that still waits for one that ended (a crash came between); how many."""
    return await jobs.release_stranded(conn, queue)


async def claim_probe(conn: asyncpg.Connection, queue: Queue, domain: str) -> Job | None:
    """Lease the oldest queued row of a paused domain that is first in its line, due or not, as its probe."""
    claimed = await jobs.claim(conn, queue, 1, domain, where="q.domain = $3", due=False)
    return claimed[0] if claimed else None


async def record_domain_failure(conn: asyncpg.Connection, domain: str) -> None:
    """A server did not answer usefully (5xx, timeout, refused): start or continue its failing period."""
    await conn.execute(
        """INSERT INTO delivery_domains AS h (domain, failing_since, last_failure_at) VALUES ($1, now(), now())
           ON CONFLICT (domain) DO UPDATE
           SET failing_since = coalesce(h.failing_since, now()), last_failure_at = now()""",
        domain,
    )


async def failing_domains(conn: asyncpg.Connection) -> list[str]:
    """Domains in a failing period now."""
    rows = await conn.fetch("SELECT domain FROM delivery_domains WHERE failing_since IS NOT NULL")
    return [row["domain"] for row in rows]


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
