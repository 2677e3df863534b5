"""Saved balance folds (table reward_balance_folds): a restarted server answers what the pure fold answers."""

from __future__ import annotations

import time

from rewards import minting
from rewards.balance import fold_balance, parse_entry
from rewards.context import endorsement_policy, token_policy
from rewards.minting import BalanceCache, FoldSaver
from rewards.store import get_account_rows
from tests.support.rewards import FakeMember, account_with_post, context, pin, publish_now

WEEK = 7 * 86400


async def _receipts(client, peer: FakeMember, alice: str, post: str, first: int, count: int, now: int) -> None:
    for n in range(first, first + count):
        body = peer.sign(peer.receipt(actor=f"https://peer.test/users/u{n}", obj=post, beneficiary=alice,
                                      kind="reply" if n % 2 else "like", points=3 if n % 2 else 1, when=now - n))
        assert (await client.post("/rewards/receipts", data=body)).status == 200


async def _expected(pool, settings, alice: str, size: int, as_of: int):
    rows = await pool.fetch("SELECT leaf FROM rewards_log_entries WHERE idx < $1 ORDER BY idx", size)
    entries = [parse_entry(bytes(r["leaf"])) for r in rows]
    return fold_balance(entries, alice, as_of, token_policy(settings), endorsement_policy(settings))


async def test_the_fold_saver_saves_busy_accounts_and_a_restart_reads_only_what_came_after(
        client, pool, settings, monkeypatch):
    peer = FakeMember.create("peer.test")
    await pin(pool, peer)
    ctx = await context(pool, settings)
    alice, post = await account_with_post(pool, settings, "alice")
    bob, bobs_post = await account_with_post(pool, settings, "bob")
    now = int(time.time())
    await _receipts(client, peer, alice, post, 0, 10, now)
    await _receipts(client, peer, bob, bobs_post, 100, 3, now)  # quiet: fewer rows than save_after
    size = await publish_now(pool, ctx)
    later = now + WEEK + 60  # settled by then: packed in the saved fold

    # a query answers, and writes nothing: saving is the worker's
    async with pool.acquire() as conn:
        first, receipts = await BalanceCache().balance(conn, settings, alice, size, later)
    assert first == await _expected(pool, settings, alice, size, later) and receipts == 10
    assert await pool.fetchval("SELECT count(*) FROM reward_balance_folds") == 0

    saver = FoldSaver(BalanceCache(), save_after=4)
    async with pool.acquire() as conn:
        assert await saver.round(conn, settings, later) == 1
        assert await saver.round(conn, settings, later) == 0  # nothing published since
    saved = await pool.fetch("SELECT account, log_size FROM reward_balance_folds")
    assert [(r["account"], r["log_size"]) for r in saved] == [(alice, size)]  # not bob's: cheap to fold

    # more receipts, and an undo of a settled one arriving late (inside its window): after a "restart"
    undo = peer.receipt(actor="https://peer.test/users/u0", obj=post, beneficiary=alice, kind="undo-like",
                        points=-1, when=now + 5)
    assert (await client.post("/rewards/receipts", data=peer.sign(undo))).status == 200
    await _receipts(client, peer, alice, post, 10, 3, now)
    grown = await publish_now(pool, ctx)
    restarted = BalanceCache()
    read = []

    async def counting(conn, account, begin, end):
        read.append((account, begin, end))
        return await get_account_rows(conn, account, begin, end)

    monkeypatch.setattr(minting, "get_account_rows", counting)
    async with pool.acquire() as conn:
        again, receipts = await restarted.balance(conn, settings, alice, grown, later + 1)
    monkeypatch.undo()
    assert again == await _expected(pool, settings, alice, grown, later + 1) and receipts == 14
    assert again.points == first.points - 1 + 1 + 3 + 1  # the undo cancelled a like (packed, settled)
    assert read == [(alice, size, grown)]  # only the rows after the saved fold
    assert await pool.fetchval("SELECT log_size FROM reward_balance_folds WHERE account = $1", alice) == size

    # the running saver counted the 4 new rows; a new process's saver counts them from the saved fold
    async with pool.acquire() as conn:
        assert await FoldSaver(BalanceCache(), save_after=5).round(conn, settings, later) == 0
        assert await saver.round(conn, settings, later) == 1
    assert await pool.fetchval("SELECT log_size FROM reward_balance_folds WHERE account = $1", alice) == grown
    async with pool.acquire() as conn:
        restored, _ = await BalanceCache().balance(conn, settings, alice, grown, later + 1)
    assert restored == again

    # an earlier time than the saved fold answered: folded from scratch, the same numbers
    async with pool.acquire() as conn:
        early, _ = await BalanceCache().balance(conn, settings, alice, grown, now + 2)
    assert early == await _expected(pool, settings, alice, grown, now + 2)

    # over fewer entries than saved, or under another policy: the saved fold is not used
    async with pool.acquire() as conn:
        cut, _ = await BalanceCache().balance(conn, settings, alice, size, later + 2)
        longer_window = settings.rewards.model_copy(update={"settlement_seconds": WEEK + 100})
        other = settings.model_copy(update={"rewards": longer_window})
        longer, _ = await BalanceCache().balance(conn, other, alice, grown, later + 2)
    assert cut == await _expected(pool, settings, alice, size, later + 2)
    assert longer == await _expected(pool, other, alice, grown, later + 2)
    assert longer.pending > 0  # the longer window keeps them pending
