"""The delivery worker against real loopback receivers that verify every signature."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import pytest

from fedserver.accounts import create_account, delete_account, validate_new_account
from fedserver.config import Settings
from fedserver.federation import commands
from fedserver.federation.delivery import DeliveryWorker
from fedserver.moderation import Moderation, act_on_domain
from fedserver.net.http import HttpClient
from fedserver.repo import deliveries as repo
from fedserver.repo import jobs
from tests.support.receivers import (
    Receiver,
    add_remote_followers,
    start_receivers,
    wait_for,
)


def tuned(settings: Settings, **federation) -> Settings:
    """The test settings with `[federation]` keys changed (retries 10,000 times faster by default)."""
    values = {"retry_delay_scale": 0.0001, **federation}
    return settings.model_copy(update={"federation": settings.federation.model_copy(update=values)})


@pytest.fixture
async def alice(pool, settings):
    return await create_account(pool, settings, validate_new_account(username="alice"))


@pytest.fixture
async def receivers(alice) -> AsyncIterator[list[Receiver]]:
    started: list[Receiver] = []

    async def make(count: int = 1, **kwargs) -> list[Receiver]:
        new = await start_receivers(count, {alice.key_id: alice.public_key_pem}, **kwargs)
        started.extend(new)
        return new

    yield make  # type: ignore[misc]
    for receiver in started:
        await receiver.close()


@contextlib.asynccontextmanager
async def worker(pool, settings: Settings) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker running in this event loop until the block ends (refusing what moderation blocks)."""
    async with HttpClient(settings, allow_private=True) as http:
        http.host_policy = Moderation(pool).refusal
        stop = asyncio.Event()
        instance = DeliveryWorker(pool, settings, http)
        task = asyncio.create_task(instance.run(stop))
        try:
            yield instance
        finally:
            stop.set()
            await task


async def _rows(pool) -> list[dict]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT id, inbox_uri, state, attempts, last_status, last_error FROM deliveries ORDER BY id")]


async def _all_final(pool) -> bool:
    return all(row["state"] != "queued" for row in await _rows(pool))


async def test_a_post_is_delivered_signed_and_marked_delivered(pool, settings, publisher, alice, receivers):
    (peer,) = await receivers()
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 3)
    uri = await commands.create_post(pool, publisher, "alice", "첫 글입니다")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 10, "the delivery to finish")
    assert [(h.path, h.activity_type, h.verified) for h in peer.hits] == [("/inbox", "Create", True)]
    assert peer.hits[0].body["object"]["id"] == uri
    (row,) = await _rows(pool)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 202)


async def test_a_domain_blocked_after_the_post_is_never_delivered_to(pool, settings, publisher, alice, receivers):
    blocked, kept = await receivers(2)
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, blocked, 2)
        await add_remote_followers(conn, alice.id, kept, 1, prefix="k")
    await commands.create_post(pool, publisher, "alice", "hello")
    done = await act_on_domain(pool, blocked.domain, "block", "test", "spam", settings.instance.domain)
    assert done == f"blocked {blocked.domain}; 2 follows ended"
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 10, "the deliveries to finish")
    rows = {row["inbox_uri"]: row for row in await _rows(pool)}
    refused = rows[f"{blocked.base}/inbox"]
    assert (refused["state"], refused["attempts"]) == ("failed", 1)
    assert "blocked by this server's moderation" in refused["last_error"]
    assert rows[f"{kept.base}/inbox"]["state"] == "delivered"
    assert blocked.hits == [] and len(kept.hits) == 1


async def test_410_marks_the_delivery_gone_and_the_actor_deleted(pool, settings, publisher, alice, receivers):
    (peer,) = await receivers(script=lambda path, n: (410, {}))
    async with pool.acquire() as conn:
        (bob,) = await add_remote_followers(conn, alice.id, peer, 1, shared_inbox=False)
    await commands.create_post(pool, publisher, "alice", "hello")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 10, "the delivery to finish")
    (row,) = await _rows(pool)
    assert (row["state"], row["last_status"]) == ("gone", 410)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT deleted_at IS NOT NULL FROM actors WHERE id = $1", bob)
    assert len(peer.hits) == 1


async def test_404_is_final_and_never_retried(pool, settings, publisher, alice, receivers):
    (peer,) = await receivers(script=lambda path, n: (404, {}))
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 1)
    await commands.create_post(pool, publisher, "alice", "hello")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 10, "the delivery to finish")
        await asyncio.sleep(1.2)  # a retry, if any, would come within the 1 s poll
    (row,) = await _rows(pool)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, 404)
    assert len(peer.hits) == 1


async def test_503_is_retried_until_the_receiver_recovers(pool, settings, publisher, alice, receivers):
    (peer,) = await receivers(script=lambda path, n: (503, {}) if n < 2 else (202, {}))
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 2)
    await commands.create_post(pool, publisher, "alice", "hello")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 15, "the delivery to finish")
    (row,) = await _rows(pool)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 202)
    assert [h.verified for h in peer.hits] == [True, True, True]
    async with pool.acquire() as conn:
        health = await conn.fetchrow("SELECT * FROM delivery_domains WHERE domain = $1", peer.domain)
    assert health["failing_since"] is None and health["last_success_at"] is not None


async def test_429_waits_for_retry_after_and_does_not_count_against_the_domain(pool, settings, publisher, alice,
                                                                             receivers):
    (peer,) = await receivers(script=lambda path, n: (429, {"Retry-After": "2"}) if n == 0 else (202, {}))
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 1)
    await commands.create_post(pool, publisher, "alice", "hello")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 15, "the delivery to finish")
    first, second = peer.hits
    assert second.at - first.at >= 1.9  # Retry-After is honoured, not scaled down
    (row,) = await _rows(pool)
    assert (row["state"], row["attempts"]) == ("delivered", 2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM delivery_domains WHERE failing_since IS NOT NULL") == 0


async def test_one_post_makes_one_post_per_shared_inbox(pool, settings, publisher, alice, receivers):
    shared = await receivers(6)
    (personal,) = await receivers()
    async with pool.acquire() as conn:
        for peer in shared:
            await add_remote_followers(conn, alice.id, peer, 5)
        await add_remote_followers(conn, alice.id, personal, 3, shared_inbox=False)
    await commands.create_post(pool, publisher, "alice", "hello everyone")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 15, "the deliveries to finish")
    assert [[h.path for h in peer.hits] for peer in shared] == [["/inbox"]] * 6
    assert sorted(h.path for h in personal.hits) == [f"/users/f{i}/inbox" for i in range(3)]
    assert all(h.verified for peer in [*shared, personal] for h in peer.hits)
    assert [row["state"] for row in await _rows(pool)] == ["delivered"] * 9


async def test_a_domain_failing_for_days_is_paused_then_probed_by_one_delivery(pool, settings, publisher, alice,
                                                                              receivers):
    (peer,) = await receivers(script=lambda path, n: (503, {}) if n == 0 else (202, {}))
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 3, shared_inbox=False)
        await conn.execute(
            "INSERT INTO delivery_domains (domain, failing_since) VALUES ($1, now() - interval '4 days')", peer.domain)
    await commands.create_post(pool, publisher, "alice", "hello")
    slow = tuned(settings, retry_delay_scale=1.0, probe_interval_hours=1.0)
    async with worker(pool, slow):
        await wait_for(lambda: len(peer.hits) >= 1, 10, "the probe")
        await asyncio.sleep(1.5)  # paused: nothing else goes out, and the failed probe sets the next one an hour out
        assert len(peer.hits) == 1
        async with pool.acquire() as conn:
            health = await conn.fetchrow("SELECT * FROM delivery_domains WHERE domain = $1", peer.domain)
            assert health["paused_until"] is not None and health["failing_since"] is not None
            # The hour passes: the next probe succeeds, the pause ends and the rest flows.
            await conn.execute("UPDATE delivery_domains SET paused_until = now() WHERE domain = $1", peer.domain)
            await conn.execute("UPDATE deliveries SET next_attempt_at = now()")
        await wait_for(lambda: _all_final(pool), 10, "the remaining deliveries")
    assert len(peer.hits) == 4 and all(h.verified for h in peer.hits)
    async with pool.acquire() as conn:
        health = await conn.fetchrow("SELECT * FROM delivery_domains WHERE domain = $1", peer.domain)
    assert health["failing_since"] is None and health["paused_until"] is None


async def test_a_wrong_key_is_refused_by_the_receiver_and_retried(pool, settings, publisher, alice, receivers):
    (peer,) = await receivers()
    peer.keys.clear()  # the receiver does not accept alice's key: it answers 401
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 1)
    await commands.create_post(pool, publisher, "alice", "hello")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: len(peer.hits) >= 2, 10, "a retry after 401")
    rows = await _rows(pool)
    assert rows[0]["last_status"] == 401 and rows[0]["attempts"] >= 2


async def test_deleting_an_account_sends_delete_of_the_actor_to_its_followers_and_followees(
        pool, settings, publisher, alice, receivers):
    followers, followed = await receivers(2)
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, followers, 3)
        (bob,) = await add_remote_followers(conn, alice.id, followed, 1, shared_inbox=False)
        await conn.execute("DELETE FROM follows WHERE follower_id = $1", bob)  # alice follows bob instead
        await conn.execute("INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, 'accepted')",
                           alice.id, bob)
    await delete_account(pool, publisher, "alice")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 10, "the deliveries to finish")
    for peer, path in ((followers, "/inbox"), (followed, "/users/f0/inbox")):
        assert [(h.path, h.activity_type, h.verified) for h in peer.hits] == [(path, "Delete", True)]
        assert peer.hits[0].body["object"] == alice.uri and peer.hits[0].body["actor"] == alice.uri
    assert {row["state"] for row in await _rows(pool)} == {"delivered"}


async def _line_rows(pool) -> list[tuple[int, int, str, bool]]:
    async with pool.acquire() as conn:
        return [tuple(r) for r in await conn.fetch(
            "SELECT id, sender_id, state, waiting FROM deliveries ORDER BY id")]


async def test_each_senders_deliveries_to_one_inbox_go_in_order_and_other_senders_go_side_by_side(
        pool, settings, alice):
    bob = await create_account(pool, settings, validate_new_account(username="bob"))
    inbox = "https://peer.example/users/maker/inbox"
    async with pool.acquire() as conn:
        for i in range(3):
            for sender in (alice, bob):
                await repo.record_and_enqueue(conn, {"id": f"{sender.uri}/offer/{i}", "type": "Offer"}, sender.id,
                                              [inbox], object_uri=None, visibility="direct")
        rows = await _line_rows(pool)
        assert [waiting for *_, waiting in rows] == [False, False, True, True, True, True]
        claimed = await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0)
        assert sorted(job["sender_id"] for job in claimed) == sorted([alice.id, bob.id])  # one of each line
        assert await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0) == []  # the rest wait behind them
        alices = next(job for job in claimed if job["sender_id"] == alice.id)
        await jobs.record_many(conn, repo.DELIVERIES, [jobs.Settled(alices, "delivered", 0, None, 202)])
        (after,) = await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0)
        assert (after["sender_id"], after["activity_uri"]) == (alice.id, f"{alice.uri}/offer/1")


async def test_a_line_left_waiting_by_a_crash_between_recording_and_releasing_is_released_by_the_sweep(
        pool, settings, alice):
    inbox = "https://peer.example/users/maker/inbox"
    async with pool.acquire() as conn:
        for i in range(2):
            await repo.record_and_enqueue(conn, {"id": f"{alice.uri}/offer/{i}", "type": "Offer"}, alice.id, [inbox],
                                          object_uri=None, visibility="direct")
        (first,) = await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0)
        await conn.execute("UPDATE deliveries SET state = 'delivered', locked_until = NULL WHERE id = $1", first.id)
        assert await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0) == []  # stranded: the crash came first
        assert await repo.release_stranded(conn, repo.DELIVERIES) == 1
        (second,) = await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0)
        assert second["activity_uri"] == f"{alice.uri}/offer/1"


async def test_a_line_is_sent_in_a_run_and_a_failing_first_holds_the_rest_back_in_order(
        pool, settings, publisher, alice, receivers):
    (peer,) = await receivers(script=lambda path, n: (503, {}) if n < 2 else (202, {}))
    async with pool.acquire() as conn:
        for i in range(5):
            await repo.record_and_enqueue(conn, {"id": f"{alice.uri}/offer/{i}", "type": "Offer"}, alice.id,
                                          [f"{peer.base}/inbox"], object_uri=None, visibility="direct")
    async with worker(pool, tuned(settings)):
        await wait_for(lambda: _all_final(pool), 15, "the line to be delivered")
    # The first was answered 503 twice: the rest, leased behind it, were put back unsent each time.
    assert [hit.activity_id for hit in peer.hits] == [f"{alice.uri}/offer/{i}" for i in (0, 0, 0, 1, 2, 3, 4)]
    assert [(row["state"], row["attempts"]) for row in await _rows(pool)] == \
        [("delivered", 3)] + [("delivered", 1)] * 4


async def test_followers_are_leased_behind_their_lines_first_in_order(pool, settings, alice):
    inbox = "https://peer.example/users/maker/inbox"
    async with pool.acquire() as conn:
        for i in range(4):
            await repo.record_and_enqueue(conn, {"id": f"{alice.uri}/offer/{i}", "type": "Offer"}, alice.id, [inbox],
                                          object_uri=None, visibility="direct")
        heads = await jobs.claim(conn, repo.DELIVERIES, 10, 86400.0)
        followers = await repo.claim_followers(conn, repo.DELIVERIES, heads, per_line=2, limit=10)
        assert [job["activity_uri"] for job in [*heads, *followers]] == [f"{alice.uri}/offer/{i}" for i in range(3)]
        assert [job["after"] for job in followers] == [heads[0].id, followers[0].id]
        assert await repo.claim_followers(conn, repo.DELIVERIES, heads, per_line=5, limit=10) == []  # held already
        await repo.unclaim(conn, followers)
        rows = await conn.fetch("SELECT attempts, locked_until FROM deliveries ORDER BY id")
        assert [(r["attempts"], r["locked_until"] is None) for r in rows] == [(1, False), (0, True), (0, True), (0, True)]
