"""SQL read at each `/metrics` scrape: queue depths, failing delivery domains, the rewards log's progress.

Two statements per scrape, each bounded: counts over the queues' partial indexes (`WHERE state =
'queued'`), two one-row tables and one primary-key lookup, then at most `limit` failing domains.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Queues by the name the metrics label them with.
QUEUES = ("inbox", "delivery", "receipt_delivery")


@dataclass(frozen=True)
class Backlog:
    """What waits and how far the rewards log is behind, at one moment."""

    queued: dict[str, int]  # rows still queued (due, held or waiting for a retry), by queue name
    failing_domains: int  # receiving domains whose latest delivery attempt failed
    paused_domains: int  # failing longer than `[federation] pause_failing_domain_after_days`
    log_sequenced: int  # entries appended to our rewards log
    log_integrated: int  # entries in the Merkle tree the integrator built
    log_signed: int  # size of the latest checkpoint signed with our log key
    log_published: int  # size of the latest checkpoint that reached the witness quorum
    unwitnessed_age_seconds: float  # age of the oldest entry not covered by the published checkpoint (0: none)


@dataclass(frozen=True)
class FailingDomain:
    """A receiving domain in a failing period."""

    domain: str
    failing_seconds: float
    queued: int  # deliveries to it still queued


async def get_backlog(conn: asyncpg.Connection, *, pause_after_seconds: float, timeout: float) -> Backlog:
    """Queue depths, failing-domain counts and the rewards log's sizes, in one statement."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM inbox_items WHERE state = 'queued') AS inbox,
                  (SELECT count(*) FROM deliveries WHERE state = 'queued') AS delivery,
                  (SELECT count(*) FROM rewards_receipt_deliveries WHERE state = 'queued') AS receipt_delivery,
                  (SELECT count(*) FROM delivery_domains WHERE failing_since IS NOT NULL) AS failing_domains,
                  (SELECT count(*) FROM delivery_domains
                   WHERE failing_since < now() - make_interval(secs => $1)) AS paused_domains,
                  s.next_index AS log_sequenced, l.tree_size AS log_integrated,
                  coalesce(l.signed_size, 0) AS log_signed, coalesce(l.published_size, 0) AS log_published,
                  coalesce(extract(epoch FROM now() - (SELECT e.created_at FROM rewards_log_entries e
                                                       WHERE e.idx = coalesce(l.published_size, 0))), 0)::float8
                      AS unwitnessed_age_seconds
           FROM rewards_log_seq s, rewards_log_state l""",
        pause_after_seconds, timeout=timeout,
    )
    return Backlog(
        queued={name: row[name] for name in QUEUES},
        failing_domains=row["failing_domains"], paused_domains=row["paused_domains"],
        log_sequenced=row["log_sequenced"], log_integrated=row["log_integrated"], log_signed=row["log_signed"],
        log_published=row["log_published"], unwitnessed_age_seconds=max(0.0, row["unwitnessed_age_seconds"]),
    )


async def get_failing_domains(conn: asyncpg.Connection, *, limit: int, timeout: float) -> list[FailingDomain]:
    """The `limit` domains failing longest, with how many deliveries wait for each."""
    rows = await conn.fetch(
        """SELECT d.domain, extract(epoch FROM now() - d.failing_since)::float8 AS failing_seconds,
                  (SELECT count(*) FROM deliveries q WHERE q.domain = d.domain AND q.state = 'queued') AS queued
           FROM delivery_domains d WHERE d.failing_since IS NOT NULL
           ORDER BY d.failing_since, d.domain LIMIT $1""",
        limit, timeout=timeout,
    )
    return [FailingDomain(row["domain"], max(0.0, row["failing_seconds"]), row["queued"]) for row in rows]
