"""Rewards alerts in PostgreSQL: an unresolved alert is raised once and counted; the migration folds repeats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rewards.store import insert_alert, list_alerts, resolve_alert
from tests.support.database import just_before

FORK = ("a.test/rewards/v1", "fork", "log forked: two checkpoints of size 4 with different roots")


async def test_an_unresolved_alert_is_counted_and_a_resolved_one_raised_anew(pool):
    for _ in range(3):  # the monitor finds the same fork every minute
        await insert_alert(pool, *FORK)
    await insert_alert(pool, "a.test/rewards/v1", "rewrite", "log rewritten")
    [rewrite, fork] = await list_alerts(pool)
    assert (fork.kind, fork.seen, rewrite.seen) == ("fork", 3, 1)
    assert fork.last_seen_at > fork.created_at
    assert await resolve_alert(pool, fork.id, None) is True
    await insert_alert(pool, *FORK)
    again = await list_alerts(pool, include_resolved=False)
    assert [(a.kind, a.seen) for a in again] == [("fork", 1), ("rewrite", 1)] and again[0].id > fork.id
    assert len(await list_alerts(pool)) == 3


async def test_the_migration_folds_repeated_unresolved_alerts_into_the_first(pg_cluster):
    async with just_before(pg_cluster, "alerts_once") as (conn, once):
        start = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)
        for minute, resolved in ((1, True), (2, False), (3, False), (4, False)):
            when = start + timedelta(minutes=minute)
            await conn.execute(
                """INSERT INTO rewards_alerts (origin, kind, message, created_at, resolved_at)
                   VALUES ($1, $2, $3, $4, $5)""", *FORK, when, when if resolved else None)
        await conn.execute("INSERT INTO rewards_alerts (origin, kind, message) VALUES ('b.test/rewards/v1', 'x', 'y')")
        await conn.execute(once.sql)
        rows = await conn.fetch("SELECT id, kind, seen, created_at, last_seen_at, resolved_at FROM rewards_alerts "
                                "ORDER BY id")
    assert [(r["kind"], r["seen"], r["resolved_at"] is None) for r in rows] == [
        ("fork", 1, False), ("fork", 3, True), ("x", 1, True)]
    assert rows[1]["last_seen_at"] - rows[1]["created_at"] == timedelta(minutes=2)  # first and last of the three
    assert rows[0]["last_seen_at"] == rows[0]["created_at"]
