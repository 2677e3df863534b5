"""SQL of every durable job table (`fedserver.jobs` works them): claim with a lease, record, prune.

A job table has `id`, `state` ('queued' until a final state), `attempts`, `next_attempt_at`,
`locked_until` (the lease), `last_error`, `last_status` and `finished_at`. A worker owns a
claimed row until its lease runs out; an outcome is written only while it still holds that
exact lease, so a row taken over after an expired lease is never overwritten by its first owner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Queue:
    """A table of durable jobs: what a claim returns, in which order, and how long a lease lasts.

    `ready` is an extra SQL condition on a candidate row `q` (parameters from `$3` on, given to
    `claim`); `retention` says whether finished rows are pruned after `[jobs] retention_days`.
    """

    table: str
    channel: str
    columns: tuple[str, ...]
    order_by: str = "next_attempt_at"
    ready: str = ""
    lease_seconds: float = 120.0
    max_attempts: int = 16
    retention: bool = False

    def __post_init__(self) -> None:
        for name in (self.table, self.channel, self.order_by, *self.columns):
            if not _NAME.match(name):
                raise ValueError(f"not a plain SQL name: {name!r}")


@dataclass(frozen=True)
class Job:
    """A claimed row: held until `lease`; `row` has the queue's columns."""

    id: int
    attempts: int
    lease: datetime
    row: Mapping[str, Any]

    def __getitem__(self, column: str) -> Any:
        return self.row[column]


def _returning(queue: Queue) -> str:
    extra = [c for c in queue.columns if c not in ("id", "attempts", "locked_until")]
    return ", ".join(["j.id", "j.attempts", "j.locked_until", *(f"j.{c}" for c in extra)])


async def claim(conn: asyncpg.Connection, queue: Queue, limit: int, *args: Any, where: str | None = None,
                due: bool = True) -> list[Job]:
    """Lease up to `limit` queued rows (skipping rows others hold), oldest first by `queue.order_by`.

    `where` replaces `queue.ready`; `due=False` also takes rows whose next attempt is not due yet.
    """
    if limit <= 0:
        return []
    conditions = ["q.state = 'queued'", "(q.locked_until IS NULL OR q.locked_until < now())"]
    if due:
        conditions.append("q.next_attempt_at <= now()")
    ready = queue.ready if where is None else where
    if ready:
        conditions.append(f"({ready})")
    rows = await conn.fetch(
        f"""UPDATE {queue.table} AS j
            SET locked_until = clock_timestamp() + make_interval(secs => $2), attempts = j.attempts + 1
            WHERE j.id IN (SELECT q.id FROM {queue.table} q WHERE {' AND '.join(conditions)}
                           ORDER BY q.{queue.order_by} LIMIT $1 FOR UPDATE OF q SKIP LOCKED)
            RETURNING {_returning(queue)}, j.{queue.order_by} AS claim_order""",
        limit, queue.lease_seconds, *args,
    )
    rows = sorted(rows, key=lambda r: (r["claim_order"], r["id"]))  # RETURNING keeps no order
    return [Job(r["id"], r["attempts"], r["locked_until"], r) for r in rows]


@dataclass(frozen=True)
class Settled:
    """An outcome to record for a claimed job: a final `state`, or `queued` again after `delay` seconds."""

    job: Job
    state: str
    delay: float
    error: str | None
    status: int | None


async def record_many(conn: asyncpg.Connection, queue: Queue, outcomes: list[Settled]) -> set[int]:
    """Record many outcomes in one statement (`finish` or `reschedule` each); the ids whose lease still held."""
    rows = await conn.fetch(
        f"""UPDATE {queue.table} AS t
            SET state = u.state, last_error = u.error, last_status = u.status, locked_until = NULL,
                finished_at = CASE WHEN u.state = 'queued' THEN NULL ELSE now() END,
                next_attempt_at = CASE WHEN u.state = 'queued' THEN now() + make_interval(secs => u.delay)
                                       ELSE t.next_attempt_at END
            FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::float8[], $5::text[], $6::int[])
                 AS u(id, lease, state, delay, error, status)
            WHERE t.id = u.id AND t.locked_until = u.lease AND t.state = 'queued'
            RETURNING t.id""",
        [o.job.id for o in outcomes], [o.job.lease for o in outcomes], [o.state for o in outcomes],
        [o.delay for o in outcomes], [o.error for o in outcomes], [o.status for o in outcomes],
    )
    return {row["id"] for row in rows}


async def finish(conn: asyncpg.Connection, queue: Queue, job: Job, state: str, *, error: str | None,
                 status: int | None) -> bool:
    """Record a final state; False (nothing written) if the lease was lost meanwhile."""
    return job.id in await record_many(conn, queue, [Settled(job, state, 0.0, error, status)])


async def reschedule(conn: asyncpg.Connection, queue: Queue, job: Job, delay_seconds: float, *,
                     error: str | None, status: int | None) -> bool:
    """Put a row back for another attempt after `delay_seconds`; False if the lease was lost."""
    return job.id in await record_many(conn, queue, [Settled(job, "queued", delay_seconds, error, status)])


async def prune(conn: asyncpg.Connection, queue: Queue, older_than_seconds: float, limit: int) -> int:
    """Delete up to `limit` rows that finished more than `older_than_seconds` ago; how many went."""
    result = await conn.execute(
        f"""DELETE FROM {queue.table} WHERE id IN (
                SELECT id FROM {queue.table}
                WHERE state <> 'queued' AND finished_at < now() - make_interval(secs => $1)
                LIMIT $2)""",
        older_than_seconds, limit,
    )
    return int(result.rsplit(" ", 1)[-1])


async def count_queued(conn: asyncpg.Connection, queue: Queue) -> int:
    """Rows waiting (due or not, held or not)."""
    return await conn.fetchval(f"SELECT count(*) FROM {queue.table} WHERE state = 'queued'")
