"""Undoing a like whose receipt is not countersigned yet: the reversal waits for it, or fails unsent with it.

Two live instances on loopback (alice's home `a` countersigns, bob's home `b` issues),
driven through the real outbox (like, unlike, delete) and the delivery worker's own
claim-and-deliver steps; plus the claim order and the migration of older rows.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
import pytest

from fedserver.app import build_publisher
from fedserver.accounts import create_account, validate_new_account
from fedserver.federation import commands
from fedserver.net.http import HttpClient
from rewards.issue import issue_receipt
from rewards.keys import receipts_key_name
from rewards.note import Ed25519Signer, parse_note, sign_note
from rewards.receipt import Receipt, build_receipt, parse_receipt
from rewards.store import (
    DELIVERY_CHANNEL,
    claim_receipt_deliveries,
    mark_receipt_delivered,
    mark_receipt_failed,
)
from tests.support.database import just_before
from tests.support.rewards import (
    FakeMember,
    LiveInstance,
    befriend,
    deliver_all,
    log_leaves,
    pin,
    publish_live,
    serve_again,
    start_live_instance,
    stop_live_instance,
)


@pytest.fixture
async def pair(pg_cluster, tmp_path):
    """a: alice's instance (the beneficiary); b: bob's (the issuer). Members of each other, no witness quorum."""
    a, b = [await start_live_instance(pg_cluster, tmp_path, name) for name in ("a", "b")]
    await befriend(a, b, quorum="none")
    await befriend(b, a, quorum="none")
    yield a, b
    for x in (a, b):
        await stop_live_instance(pg_cluster, x)


async def _alice_posts_and_bob_likes(a: LiveInstance, b: LiveInstance) -> str:
    """alice posts on a; bob, on b, fetches the post over HTTP and likes it. Returns the post's id."""
    await create_account(a.pool, a.settings, validate_new_account(username="alice"))
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    post = await commands.create_post(a.pool, build_publisher(a.settings), "alice", "새 찻잔을 구웠어요")
    async with HttpClient(b.settings) as http:
        await commands.like(b.pool, build_publisher(b.settings), http, "bob", post)
    return post


async def _deliveries(x: LiveInstance) -> list[asyncpg.Record]:
    return await x.pool.fetch(
        """SELECT id, kind, points, reverses, state, attempts, last_status, last_error
           FROM rewards_receipt_deliveries ORDER BY id""")


def _fields(leaf: bytes) -> tuple[str, int]:
    receipt = parse_receipt(parse_note(leaf).text)
    return receipt.kind, receipt.points


async def test_undo_while_the_beneficiary_is_down_is_countersigned_after_the_like(pair):
    a, b = pair
    post = await _alice_posts_and_bob_likes(a, b)
    await a.server.close()  # alice's instance goes down before the like's receipt reaches it
    assert await deliver_all(b) == 1
    [like] = await _deliveries(b)
    assert (like["state"], like["attempts"]) == ("queued", 1) and "Connect" in like["last_error"]

    await commands.unlike(b.pool, build_publisher(b.settings), "bob", post)
    like, undo = await _deliveries(b)
    assert (undo["kind"], undo["points"], undo["reverses"]) == ("undo-like", -like["points"], like["id"])
    assert like["points"] == 1

    await serve_again(a)
    await b.pool.execute("UPDATE rewards_receipt_deliveries SET next_attempt_at = now() WHERE id = $1",
                         like["id"])  # the back-off is over
    assert await deliver_all(b) == 1  # the like only: its reversal waits for the countersignature
    assert [r["state"] for r in await _deliveries(b)] == ["delivered", "queued"]
    assert await deliver_all(b) == 1  # then the reversal
    assert await deliver_all(b) == 0
    assert [r["state"] for r in await _deliveries(b)] == ["delivered", "delivered"]

    ours, theirs = await log_leaves(b), await log_leaves(a)
    assert ours == theirs  # the same bytes, in the same order, in both logs
    assert [_fields(leaf) for leaf in theirs] == [("like", 1), ("undo-like", -1)]
    assert await publish_live(a)
    async with aiohttp.ClientSession() as session, session.get(f"{a.url}/rewards/balance/alice") as response:
        shown = await response.json()
    assert (shown["points"], shown["pending"], shown["unpublished_points"], shown["receipts"]) == (0, 0, 0, 2)


async def test_a_reversal_fails_unsent_when_its_receipt_is_refused_for_good(pair):
    a, b = pair
    post = await _alice_posts_and_bob_likes(a, b)
    await commands.unlike(b.pool, build_publisher(b.settings), "bob", post)
    # Before the like's receipt arrives:
    await commands.delete_object(a.pool, build_publisher(a.settings), "alice", post)
    assert await deliver_all(b) == 1  # the like: refused for good (no live post)
    like, undo = await _deliveries(b)
    assert (like["state"], like["last_status"]) == ("failed", 422) and "no live post" in like["last_error"]
    assert undo["reverses"] == like["id"]
    assert (undo["state"], undo["attempts"], undo["last_status"]) == ("failed", 0, None)  # never claimed
    assert "not sent: the receipt it reverses" in undo["last_error"] and "was refused for good" in undo["last_error"]
    assert await deliver_all(b) == 0
    assert await log_leaves(a) == [] and await log_leaves(b) == []


@pytest.fixture
async def bob(pool, settings) -> str:
    """bob on shop.test, interacting with posts of the member peer.test."""
    await pin(pool, FakeMember.create("peer.test"))
    return (await create_account(pool, settings, validate_new_account(username="bob"))).uri


POST, OWNER = "https://peer.test/users/yara/statuses/1", "https://peer.test/users/yara"


async def _issue(pool, settings, actor: str, kind: str) -> int | None:
    async with pool.acquire() as conn, conn.transaction():
        rid = await issue_receipt(conn, settings, kind, actor, POST, OWNER)
        return None if rid is None else await conn.fetchval(
            "SELECT id FROM rewards_receipt_deliveries WHERE receipt_id = $1", rid)


async def _claim(pool) -> list[int]:
    async with pool.acquire() as conn:
        return [d.id for d in await claim_receipt_deliveries(conn, 10, 60)]


async def test_a_reversal_is_not_claimed_while_the_receipt_it_reverses_is_queued(pool, settings, bob):
    like = await _issue(pool, settings, bob, "like")
    undo = await _issue(pool, settings, bob, "undo-like")
    assert like and undo
    assert await _claim(pool) == [like]
    await pool.execute("UPDATE rewards_receipt_deliveries SET locked_until = now() - interval '1 second'")
    assert await _claim(pool) == [like]  # its lease ran out and it is due again; the reversal still waits
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    async with pool.acquire() as listener:
        await listener.add_listener(DELIVERY_CHANNEL, wake)
        async with pool.acquire() as conn, conn.transaction():
            await mark_receipt_delivered(conn, like, 0)
        await asyncio.wait_for(woken.wait(), 5)  # the workers hear that the reversal may go
        await listener.remove_listener(DELIVERY_CHANNEL, wake)
    assert await _claim(pool) == [undo]


async def test_an_undo_racing_the_refusal_of_its_receipt_fails_with_it(pool, settings, bob):
    await _issue(pool, settings, bob, "like")
    async with pool.acquire() as conn:
        [like] = await claim_receipt_deliveries(conn, 10, 60)
    async with pool.acquire() as undoing, pool.acquire() as failing:
        undo = undoing.transaction()
        await undo.start()
        assert await issue_receipt(undoing, settings, "undo-like", bob, POST, OWNER)
        refusal = asyncio.create_task(mark_receipt_failed(failing, like, 422, "refused"))
        await asyncio.sleep(0.3)
        assert not refusal.done()  # it waits for the undo, which holds the receipt it reverses
        await undo.commit()
        assert await refusal == 1
    assert await pool.fetchval("SELECT state FROM rewards_receipt_deliveries WHERE reverses = $1", like.id) == "failed"


async def test_each_receipt_is_reversed_once_and_a_failed_one_not_at_all(pool, settings, bob):
    reverses = "SELECT reverses FROM rewards_receipt_deliveries WHERE id = $1"
    first = await _issue(pool, settings, bob, "like")
    assert await pool.fetchval(reverses, await _issue(pool, settings, bob, "undo-like")) == first
    assert await _issue(pool, settings, bob, "undo-like") is None  # nothing left to reverse
    second = await _issue(pool, settings, bob, "like")
    assert await pool.fetchval(reverses, await _issue(pool, settings, bob, "undo-like")) == second
    third = await _issue(pool, settings, bob, "like")
    await pool.execute("UPDATE rewards_receipt_deliveries SET state = 'failed' WHERE id = $1", third)
    assert await _issue(pool, settings, bob, "undo-like") is None  # its points were never granted


async def test_the_migration_reads_older_deliveries_back_from_their_signed_receipts(pg_cluster):
    async with just_before(pg_cluster, "receipt_reversals") as (conn, reversals):
        signer = Ed25519Signer.generate(receipts_key_name("shop.test"))
        rows = [("like", 1, "delivered"), ("undo-like", -1, "delivered"), ("like", 1, "queued"),
                ("undo-like", -1, "queued"), ("undo-like", -1, "queued")]  # the last: a second undo of one like
        for n, (kind, points, state) in enumerate(rows):
            receipt = Receipt(f"shop.test/r/{n}", kind, "https://shop.test/users/bob", POST, OWNER, points,
                              int(time.time()))
            await conn.execute(
                """INSERT INTO rewards_receipt_deliveries (receipt_id, target_domain, target_url, body, state)
                   VALUES ($1, 'peer.test', 'https://peer.test/rewards/receipts', $2, $3)""",
                receipt.id, sign_note(build_receipt(receipt), [signer]), state)
        await conn.execute(reversals.sql)
        got = await conn.fetch("SELECT id, kind, actor_uri, object_uri, points, reverses FROM "
                               "rewards_receipt_deliveries ORDER BY id")
    ids = [r["id"] for r in got]
    assert [(r["kind"], r["points"]) for r in got] == [(kind, points) for kind, points, _ in rows]
    assert {(r["actor_uri"], r["object_uri"]) for r in got} == {("https://shop.test/users/bob", POST)}
    assert [r["reverses"] for r in got] == [None, ids[0], None, ids[2], None]
