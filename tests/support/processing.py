"""Run the inbox worker's own code in a test until the queue is empty."""

from __future__ import annotations

from fedserver.federation.keys import instance_signer
from fedserver.federation.processing import claim_inbox_items, process_item
from fedserver.net.http import HttpClient


async def process_all(pool, settings) -> list[str]:
    """Claim and process every due inbox item; return the outcomes in order."""
    outcomes = []
    async with HttpClient(settings) as http:
        signer = await instance_signer(pool, settings)
        while True:
            async with pool.acquire() as conn:
                items = await claim_inbox_items(conn, 10)
            if not items:
                return outcomes
            for item in items:
                outcomes.append(await process_item(pool, settings, http, signer, item))
