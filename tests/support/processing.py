"""Run the inbox worker's own code in a test until the queue is empty."""

from __future__ import annotations

from fedserver.app import build_dispatcher, build_publisher
from fedserver.federation.keys import instance_signer
from fedserver.federation.processing import InboxWorker
from fedserver.net.http import HttpClient
from fedserver.repo import jobs
from fedserver.repo.inbox import INBOX
from fedserver.runtime import Runtime


async def process_all(pool, settings) -> list[str]:
    """Claim and process every due inbox item; return the recorded states in order."""
    outcomes = []
    async with HttpClient(settings) as http:
        runtime = Runtime(settings, pool, http, await instance_signer(pool, settings), build_publisher(settings),
                          build_dispatcher())
        worker = InboxWorker(runtime)
        while True:
            async with pool.acquire() as conn:
                items = await jobs.claim(conn, INBOX, 10)
            if not items:
                return outcomes
            for item in items:
                outcome = await worker.jobs.attempt(item)
                outcomes.append(outcome.state if outcome else "crashed")


async def process_as_one_batch(pool, settings) -> list[str]:
    """Claim every due inbox item and give them to the worker as it groups them (batches where a pair has a batch
    handler); return the recorded states in order."""
    async with HttpClient(settings) as http:
        runtime = Runtime(settings, pool, http, await instance_signer(pool, settings), build_publisher(settings),
                          build_dispatcher())
        worker = InboxWorker(runtime)
        async with pool.acquire() as conn:
            items = await jobs.claim(conn, INBOX, 500)
        for unit in worker.jobs.units(items):
            await (worker.jobs.attempt_batch(unit) if len(unit) > 1 else worker.jobs.attempt(unit[0]))
    rows = await pool.fetch("SELECT state FROM inbox_items WHERE id = ANY($1::bigint[]) ORDER BY id",
                            [item.id for item in items])
    return [row["state"] for row in rows]
