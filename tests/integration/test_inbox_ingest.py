"""The inbox's batched, durable insert (fedserver/federation/ingest.py) on real PostgreSQL.

What a 202 promises: the row is committed, stored once however often it is sent, and
one bad row in a batch does not fail its neighbours.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from fedserver.federation.ingest import MAX_BATCH, IngestBatcher, RowRefused
from fedserver.repo.inbox import CHANNEL as INBOX_CHANNEL
from fedserver.repo.inbox import InboxRow


def _row(n: int, *, recipient: int | None = None, body: str | None = None) -> InboxRow:
    uri = f"https://remote.test/activities/{n}"
    return InboxRow(uri, "Create", "https://remote.test/users/bob", recipient,
                    body or json.dumps({"id": uri, "type": "Create", "n": n}), "https://remote.test/users/bob#main-key")


async def _stored(pool) -> dict[str, dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT activity_uri, body FROM inbox_items")
    return {r["activity_uri"]: r["body"] for r in rows}


@pytest.fixture
async def batcher(pool):
    batcher = IngestBatcher(pool)
    batcher.start()
    yield batcher
    await batcher.stop()


async def test_concurrent_submits_are_all_stored_once(batcher, pool):
    # More rows than one batch holds, every one sent twice at the same time.
    count = MAX_BATCH + 300
    await asyncio.gather(*(batcher.submit(_row(n % count)) for n in range(2 * count)))
    stored = await _stored(pool)
    assert len(stored) == count
    assert stored["https://remote.test/activities/7"]["n"] == 7


async def test_a_bad_row_fails_alone(batcher, pool):
    # recipient_id 999999 breaks the foreign key: only that submit fails.
    rows = [_row(n) for n in range(20)] + [_row(20, recipient=999_999)]
    results = await asyncio.gather(*(batcher.submit(row) for row in rows), return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and isinstance(failures[0], RowRefused)  # the sender must not retry it
    assert isinstance(failures[0].__cause__, asyncpg.ForeignKeyViolationError)
    assert sorted(await _stored(pool)) == sorted(row.activity_uri for row in rows[:20])


async def test_json_postgresql_refuses_fails_alone(batcher, pool):
    # Python's json accepts NaN, jsonb does not: that row fails, its neighbours are stored.
    rows = [_row(1), _row(2, body='{"n": NaN}'), _row(3)]
    results = await asyncio.gather(*(batcher.submit(row) for row in rows), return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [False, True, False]
    assert sorted(await _stored(pool)) == [rows[0].activity_uri, rows[2].activity_uri]


async def test_workers_are_notified_only_when_something_is_new(batcher, pool, db_url):
    listener = await asyncpg.connect(db_url)
    heard: list[str] = []
    await listener.add_listener(INBOX_CHANNEL, lambda *args: heard.append(args[2]))
    try:
        await batcher.submit(_row(1))
        await asyncio.sleep(0.2)
        assert heard == [INBOX_CHANNEL]
        await batcher.submit(_row(1))  # a duplicate: nothing new, nobody woken
        await asyncio.sleep(0.2)
        assert heard == [INBOX_CHANNEL]
    finally:
        await listener.close()


async def test_stop_stores_what_is_queued_then_refuses(pool):
    batcher = IngestBatcher(pool)
    batcher.start()
    submits = [asyncio.create_task(batcher.submit(_row(n))) for n in range(50)]
    await asyncio.sleep(0)  # queued, not yet stored
    await batcher.stop()
    await asyncio.gather(*submits)
    assert len(await _stored(pool)) == 50
    with pytest.raises(RuntimeError, match="not running"):
        await batcher.submit(_row(99))
