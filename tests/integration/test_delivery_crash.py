"""kill -9 of a real `fedserver run` in the middle of a fan-out loses no delivery.

500 followers with personal inboxes on 5 loopback receivers (20 ms per request) get one
post. The server is killed with SIGKILL after some but not all POSTs arrived, then
restarted. Every (inbox, activity) pair must arrive; duplicates are allowed only for the
rows that were leased, unfinished, at the moment of the kill (at-least-once delivery).
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from tests.support.instance import Instance, free_port, instance_env
from tests.support.receivers import add_remote_followers, start_receivers, wait_for

pytestmark = pytest.mark.slow

RECEIVERS = 5
FOLLOWERS_EACH = 100
LEASE_SECONDS = 3


@pytest.fixture
def instance(db_url, tmp_path) -> Instance:
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port, extra={
        "FEDSERVER_FEDERATION__DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
        "FEDSERVER_LOGGING__LEVEL": "warning",
    })
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    yield inst
    inst.kill()


async def _leased_inboxes(pool) -> set[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT inbox_uri FROM deliveries WHERE state = 'queued' AND locked_until IS NOT NULL")
    return {row["inbox_uri"] for row in rows}


async def _all_delivered(pool) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM deliveries WHERE state = 'delivered'") == (
            RECEIVERS * FOLLOWERS_EACH)


async def test_kill_9_mid_fanout_then_restart_delivers_every_activity(instance, pool):
    created = await asyncio.to_thread(instance.command, "account", "create", "alice")
    assert created.returncode == 0, created.stderr
    async with pool.acquire() as conn:
        alice = await conn.fetchrow("SELECT id, key_id, public_key_pem FROM actors WHERE username = 'alice'")
    receivers = await start_receivers(RECEIVERS, {alice["key_id"]: alice["public_key_pem"]}, delay=0.02)
    bases = [r.base for r in receivers]
    try:
        async with pool.acquire() as conn:
            for receiver in receivers:
                await add_remote_followers(conn, alice["id"], receiver, FOLLOWERS_EACH, shared_inbox=False)
        await asyncio.to_thread(instance.start)

        posting = asyncio.create_task(asyncio.to_thread(instance.command, "post", "alice", "가마에서 막 나온 찻잔"))
        arrived = lambda: sum(len(r.verified()) for r in receivers)  # noqa: E731
        await wait_for(lambda: arrived() >= 60, 30, "the first deliveries")
        instance.kill()
        at_kill = arrived()
        posted = await posting
        assert posted.returncode == 0, posted.stderr
        in_flight = await _leased_inboxes(pool)
        assert 0 < at_kill < RECEIVERS * FOLLOWERS_EACH, "the kill did not land mid-flight"

        await asyncio.to_thread(instance.start)
        await wait_for(lambda: _all_delivered(pool), 45, "every delivery after the restart", interval=0.2)
    finally:
        for receiver in receivers:
            await receiver.close()

    activity_id = posted.stdout.strip().replace("/statuses/", "/activities/create/")
    expected = {(f"{base}/users/f{i}/inbox", activity_id) for base in bases for i in range(FOLLOWERS_EACH)}
    got = {(f"{base}{path}", aid) for base, r in zip(bases, receivers) for path, aid in r.unique()}
    assert got == expected, f"missing: {sorted(expected - got)[:5]}"
    duplicates = collections.Counter()
    for base, r in zip(bases, receivers):
        duplicates.update({f"{base}{path}": n for (path, _), n in r.duplicates().items()})
    assert set(duplicates) <= in_flight, "only rows in flight at the kill may arrive twice"
    assert all(n == 1 for n in duplicates.values())
    assert all(hit.verified for r in receivers for hit in r.hits)
    print(f"\narrived before the kill: {at_kill}; leased at the kill: {len(in_flight)}; "
          f"duplicates: {sum(duplicates.values())}; unique: {len(got)}")
    assert instance.terminate() == 0
