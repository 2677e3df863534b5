"""SQL of every durable job table (`fedserver.jobs` works them): claim with a lease, record, prune.

A job table has `id`, `state` ('queued' until a final state), `attempts`, `next_attempt_at`,
`locked_until` (the lease), `last_error`, `last_status` and `finished_at`. A worker owns a
claimed row until its lease runs out; an outcome is written only while it still holds that
exact lease, so a row taken over after an expired lease is never overwritten by its first owner.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
CLAIM_LOCK_CLASS = 0x6A6F6273  # first key of the advisory lock that orders claims of a queue with a sender ("jobs")


@dataclass(frozen=True)
class Queue:
    """A table of durable jobs: what a claim returns, in which order, and how long a lease lasts.

    `ready` is an extra SQL condition on a candidate row `q` (parameters from `$3` on, given to
    `claim`); `retention` says whether finished rows are pruned after `[jobs] retention_days`.
    With `sender`, the rows that share that column's value are leased to one worker at a time
    (the table has a `claimed_by` column): a claim skips the senders whose rows another worker
    holds, and claims are taken one at a time (a transaction-level advisory lock), so no two
    workers ever run one sender's rows side by side, in any number of processes.
    With `line`, the rows that share those columns' values go one after another in id order: a
    row is claimed only when no earlier row of its line is queued. A row queued behind another
    is marked `waiting` (the table has that column, and an index on `order_by` that leaves waiting
    rows out) by its inserter, which holds a share lock on a queued row ahead of it until it
    commits; when a row of a line ends, the line's first queued row is released. So a claim reads
    the first rows of the lines, not every queued row.
    """

    table: str
    channel: str
    columns: tuple[str, ...]
    order_by: str = "next_attempt_at"
    ready: str = ""
    lease_seconds: float = 120.0
    max_attempts: int = 16
    retention: bool = False
    sender: str | None = None
    line: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (self.table, self.channel, self.order_by, *self.columns, *([self.sender] if self.sender else []),
                     *self.line):
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


def _same_line(queue: Queue, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in queue.line)


def first_in_line(queue: Queue) -> str:
    """SQL: no earlier row of candidate `q`'s line is queued (true for every row of a queue without lines)."""
    if not queue.line:
        return "true"
    return f"""NOT EXISTS (SELECT 1 FROM {queue.table} e
                           WHERE {_same_line(queue, 'e', 'q')} AND e.state = 'queued' AND e.id < q.id)"""


def _returning(queue: Queue) -> str:
    extra = [c for c in queue.columns if c not in ("id", "attempts", "locked_until")]
    return ", ".join(["j.id", "j.attempts", "j.locked_until", *(f"j.{c}" for c in extra)])


async def claim(conn: asyncpg.Connection, queue: Queue, limit: int, *args: Any, where: str | None = None,
                due: bool = True, worker: str | None = None) -> list[Job]:
    """Lease up to `limit` queued rows (skipping rows others hold), oldest first by `queue.order_by`.

    `where` replaces `queue.ready`; `due=False` also takes rows whose next attempt is not due yet.
    `worker` names the claimant for a queue with a `sender` (default: a name of its own for this claim).
    """
    if limit <= 0:
        return []
    conditions = ["q.state = 'queued'", "(q.locked_until IS NULL OR q.locked_until < now())"]
    if due:
        conditions.append("q.next_attempt_at <= now()")
    ready = queue.ready if where is None else where
    if ready:
        conditions.append(f"({ready})")
    if queue.line:  # waiting rows are not even read (the index leaves them out); the first in line is checked
        conditions += ["NOT q.waiting", first_in_line(queue)]
    claimant = ""
    params: list[Any] = [limit, queue.lease_seconds, *args]
    if queue.sender:
        params.append(worker or uuid.uuid4().hex)
        me = f"${len(params)}"
        claimant = f", claimed_by = {me}"
        conditions.append(
            f"""q.{queue.sender} NOT IN (SELECT l.{queue.sender} FROM {queue.table} l
                    WHERE l.state = 'queued' AND l.locked_until > now() AND l.claimed_by IS DISTINCT FROM {me})""")
    statement = f"""UPDATE {queue.table} AS j
            SET locked_until = clock_timestamp() + make_interval(secs => $2), attempts = j.attempts + 1{claimant}
            WHERE j.id IN (SELECT q.id FROM {queue.table} q WHERE {' AND '.join(conditions)}
                           ORDER BY q.{queue.order_by} LIMIT $1 FOR UPDATE OF q SKIP LOCKED)
            RETURNING {_returning(queue)}, j.{queue.order_by} AS claim_order"""
    if queue.sender:
        # One claim at a time: the next one starts after this one committed, so it sees these leases.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", CLAIM_LOCK_CLASS, queue.table)
            rows = await conn.fetch(statement, *params)
    else:
        rows = await conn.fetch(statement, *params)
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
    """Record many outcomes in one statement (`finish` or `reschedule` each); the ids whose lease still held.

    In a queue with lines, rows that ended then release the next row of their line, by a statement of
    its own: it sees a row an inserter committed while the UPDATE waited for that inserter's share lock
    on the row ending. A crash between the two leaves that row waiting until `release_stranded` frees it.
    """
    kept = await _record(conn, queue, outcomes)
    ended = [o.job.id for o in outcomes if o.state != "queued" and o.job.id in kept] if queue.line else []
    if ended:
        await release_lines(conn, queue, ended)
    return kept


async def release_lines(conn: asyncpg.Connection, queue: Queue, ended: list[int]) -> None:
    """The first queued row of each line of these rows (which ended) is no longer waiting."""
    columns = ", ".join(queue.line)
    await conn.execute(
        f"""UPDATE {queue.table} AS w SET waiting = false
            FROM (SELECT DISTINCT {columns} FROM {queue.table} WHERE id = ANY($1::bigint[])) AS l
            CROSS JOIN LATERAL (SELECT h.id FROM {queue.table} h WHERE {_same_line(queue, 'h', 'l')}
                                AND h.state = 'queued' ORDER BY h.id LIMIT 1) AS first
            WHERE w.id = first.id AND w.waiting""",
        ended,
    )


async def release_stranded(conn: asyncpg.Connection, queue: Queue) -> int:
    """Release lines whose first queued row still waits (after a crash between recording and releasing); how many."""
    columns = ", ".join(queue.line)
    result = await conn.execute(
        f"""UPDATE {queue.table} AS w SET waiting = false
            FROM (SELECT DISTINCT ON ({columns}) id, waiting FROM {queue.table} WHERE state = 'queued'
                  ORDER BY {columns}, id) AS first
            WHERE w.id = first.id AND first.waiting AND w.waiting AND w.state = 'queued'""")
    return int(result.rsplit(" ", 1)[-1])


async def _record(conn: asyncpg.Connection, queue: Queue, outcomes: list[Settled]) -> set[int]:
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
