"""Paying with tokens on real PostgreSQL and real HTTP: the buyer's instance debits under concurrency, the
maker's instance countersigns the spend, and both logs hold exactly what was paid."""

from __future__ import annotations

import asyncio
import json
import math
import time

import aiohttp
import pytest

from fedserver.accounts import create_account, validate_new_account
from fedserver.app import build_publisher
from fedserver.federation.delivery import DeliveryWorker
from fedserver.net.http import HttpClient
from fedserver.repo import jobs
from rewards.balance import check_spends, parse_entry
from rewards.balance import TokenPolicy, fold_balance
from rewards.context import token_policy
from rewards.expire import Expire
from rewards.mint import Mint
from rewards.minting import expire_if_due, mint_if_due
from rewards.rankings import receipt_keys
from rewards.verify import fold_entries
from rewards.note import parse_note, sign_note
from rewards.receipts import ReceiptRefused
from rewards.spend import Spend, build_spend, parse_spend
from rewards.spending import check_spend
from storefront import actions
from storefront.orders import OrderError, receive_spends
from storefront.rules import MoveRefused
from storefront.products import ProductDraft
from storefront.workers import cancel_refused_token_orders
from tests.support.instance import fetchval, running_instances
from tests.support.processing import process_all
from tests.support.rewards import (
    FakeMember,
    LiveInstance,
    account_with_post,
    befriend,
    deliver_all,
    log_leaves,
    pin,
    start_live_instance,
    stop_live_instance,
)

WEEK = 7 * 86400


@pytest.fixture
async def pair(pg_cluster, tmp_path):
    """a: the buyer alice and the maker carol; b: the maker bob. Members of each other."""
    a, b = [await start_live_instance(pg_cluster, tmp_path, name) for name in ("a", "b")]
    await befriend(a, b, quorum="none")
    await befriend(b, a, quorum="none")
    yield a, b
    for x in (a, b):
        await stop_live_instance(pg_cluster, x)


async def _tokens_for_alice(a: LiveInstance) -> int:
    return (await _mint_for_alice(a)).tokens


async def _mint_for_alice(a: LiveInstance) -> Mint:
    """alice earns 120 points from a member's 40 countersigned replies, they settle, and she mints them."""
    peer = FakeMember.create("peer.test")
    await pin(a.pool, peer)
    alice, post = await account_with_post(a.pool, a.settings, "alice")
    async with aiohttp.ClientSession() as session:
        for n in range(40):
            body = peer.sign(peer.receipt(actor=f"https://peer.test/users/u{n}", obj=post, beneficiary=alice,
                                          kind="reply", points=3))
            async with session.post(f"{a.url}/rewards/receipts", data=body) as response:
                assert response.status == 200, await response.text()
    async with a.pool.acquire() as conn:
        minted = await mint_if_due(conn, a.ctx, alice, now=time.time() + WEEK + 60)
    assert minted is not None
    return minted


def _spends(leaves: list[bytes]) -> list[Spend]:
    return [e for e in (parse_entry(leaf) for leaf in leaves) if isinstance(e, Spend)]


async def test_twenty_concurrent_token_orders_each_costing_four_tenths_of_the_balance_exactly_two_succeed(pair):
    a, b = pair
    tokens = await _tokens_for_alice(a)
    price = math.ceil(0.4 * tokens)
    assert 2 * price <= tokens < 3 * price
    await create_account(a.pool, a.settings, validate_new_account(username="carol"))
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    draft = ProductDraft(title="달항아리", price=120_000, stock=50, token_price=price)
    carols = await actions.create_product(a.pool, build_publisher(a.settings), "carol", draft)
    bobs = await actions.create_product(b.pool, build_publisher(b.settings), "bob", draft)
    publisher = build_publisher(a.settings)
    alice = f"{a.url}/users/alice"
    async with HttpClient(a.settings) as http:
        await actions.listing_to_order(a.pool, a.settings, http, bobs.uri)  # known before the burst

        async def order(n: int):
            listing = str(carols.id) if n % 2 else bobs.uri
            return await actions.place_order(a.pool, publisher, http, "alice", listing, 1, pay="tokens")

        results = await asyncio.gather(*(order(n) for n in range(20)), return_exceptions=True)
    placed = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(placed) == 2, results
    assert all(isinstance(r, OrderError) and "not enough tokens" in str(r) for r in refused), refused
    assert await a.pool.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", alice) \
        == tokens - 2 * price
    # Nothing of the 18 refused orders is left behind: two orders, two spends.
    assert await a.pool.fetchval("SELECT count(*) FROM orders WHERE payment_method = 'tokens'") == 2
    assert await a.pool.fetchval("SELECT count(*) FROM token_spends") == 2
    # The spends to bob travel to b, which countersigns them; then both logs hold exactly what was paid.
    while await deliver_all(a):
        pass
    assert await a.pool.fetchval("SELECT count(*) FROM token_spends WHERE state = 'countersigned'") == 2
    mine, theirs = _spends(await log_leaves(a)), _spends(await log_leaves(b))
    assert len(mine) == 2 and all(s.account == alice and s.tokens == price for s in mine)
    to_bob = [s for s in mine if s.seller == f"{b.url}/users/bob"]
    assert theirs == to_bob  # b's log holds the spends on its maker's listing, byte for byte the same entries
    assert check_spends([parse_entry(leaf) for leaf in await log_leaves(a)], a.domain) == 2
    for leaf in await log_leaves(b):
        if b"rewards/spend/v1" in leaf:
            assert [s.name for s in parse_note(leaf).signatures] == [a.ctx.keys.receipts.name,
                                                                     b.ctx.keys.receipts.name]



async def test_unused_tokens_expire_by_a_log_entry_and_can_no_longer_be_spent(pair):
    a, _ = pair
    minted = await _mint_for_alice(a)
    alice = minted.account
    await create_account(a.pool, a.settings, validate_new_account(username="carol"))
    publisher = build_publisher(a.settings)
    cup = await actions.create_product(a.pool, publisher, "carol",
                                       ProductDraft(title="찻잔", price=38_000, stock=9, token_price=3))
    order = await actions.place_order(a.pool, publisher, None, "alice", str(cup.id), 1, pay="tokens")
    assert (order.payment_method, order.total_tokens, order.state) == ("tokens", 3, "paid")  # local: paid at once
    policy = token_policy(a.settings)
    before = minted.time + policy.token_expiry_days * 86400 - 1
    async with a.pool.acquire() as conn:
        assert await expire_if_due(conn, a.ctx, alice, now=before) is None  # a second early: nothing expires
        expired = await expire_if_due(conn, a.ctx, alice, now=before + 1)
        assert expired == Expire(alice, 1, minted.tokens - 3, before + 1)
        assert await expire_if_due(conn, a.ctx, alice, now=before + 86400) is None  # once
    assert await a.pool.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", alice) == 0
    with pytest.raises(OrderError, match="not enough tokens: this order costs 3, you have 0"):
        await actions.place_order(a.pool, publisher, None, "alice", str(cup.id), 1, pay="tokens")
    leaves = await log_leaves(a)
    entries = [parse_entry(leaf) for leaf in leaves]
    balance = fold_balance(entries, alice, before + 2, policy)
    assert (balance.tokens_minted, balance.tokens_spent, balance.tokens_expired, balance.tokens) == \
        (minted.tokens, 3, minted.tokens - 3, 0)
    carol = fold_balance(entries, f"{a.url}/users/carol", before + 2, policy)
    assert carol.tokens_redeemed == 3 and carol.tokens == 0
    # The whole log verifies: mint, the spend signed by this one instance, the expiry against the policy.
    folded = fold_entries(leaves, await receipt_keys(a.ctx, a.pool), tokens=TokenPolicy(**{
        k: getattr(policy, k) for k in ("points_per_token", "mint_threshold", "settlement_seconds",
                                        "token_expiry_days")}), home=a.domain)
    assert folded.mints == 1
    assert [s.name for s in parse_note(leaves[-1]).signatures] == [a.ctx.keys.receipts.name]


async def test_a_spend_the_makers_instance_refuses_gives_the_tokens_back_and_the_order_ends_cancelled(pair):
    a, b = pair
    tokens = await _tokens_for_alice(a)
    alice = f"{a.url}/users/alice"
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    bobs = await actions.create_product(b.pool, build_publisher(b.settings), "bob",
                                        ProductDraft(title="분청 접시", price=20_000, stock=5, token_price=2))
    publisher = build_publisher(a.settings)
    async with HttpClient(a.settings) as http:
        order = await actions.place_order(a.pool, publisher, http, "alice", bobs.uri, 1, pay="tokens")
    assert await a.pool.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", alice) == tokens - 2
    # Its tokens left at once: the buyer cannot take them back by cancelling; the maker would return them.
    with pytest.raises(MoveRefused, match="cancelled by the maker"):
        await actions.move_order(a.pool, publisher, order.uri, "cancel", username="alice", reason="마음이 바뀌었어요")
    # The maker raised the token price before the spend arrived: it no longer pays for what it names.
    await b.pool.execute("UPDATE listings SET token_price = 3 WHERE id = $1", bobs.id)
    while await deliver_all(a):
        pass
    row = await a.pool.fetchrow("SELECT state, reason FROM token_spends WHERE order_uri = $1", order.uri)
    assert row["state"] == "refused" and "do not cost 2 tokens" in row["reason"]
    assert await a.pool.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", alice) == tokens
    assert await cancel_refused_token_orders(a.pool, publisher) == 1
    closed = await a.pool.fetchrow("SELECT state, reason FROM orders WHERE uri = $1", order.uri)
    assert closed["state"] == "cancelled" and closed["reason"].startswith("토큰 결제가 거절되었습니다")
    assert await cancel_refused_token_orders(a.pool, publisher) == 0
    assert _spends(await log_leaves(a)) == [] and _spends(await log_leaves(b)) == []


async def test_hostile_spends_are_refused_and_leave_the_log_unchanged(pair):
    a, b = pair
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    bobs = await actions.create_product(b.pool, build_publisher(b.settings), "bob",
                                        ProductDraft(title="분청 접시", price=20_000, stock=5, token_price=2))
    bob = f"{b.url}/users/bob"
    signer = a.ctx.keys.receipts  # a is a member of b's federation: its spends are heard

    def signed(n: int, *, account: str | None = None, order: str | None = None, tokens: int = 2,
               kind: str = "spend", sid: str | None = None, when: int | None = None) -> bytes:
        spend = Spend(sid or f"{a.domain}/s/hostile{n}", kind, account or f"{a.url}/users/alice",
                      order or f"{a.url}/orders/{n}", bobs.uri, bob, 1, tokens, int(time.time()) if when is None
                      else when)
        return sign_note(build_spend(spend), [signer])

    async with aiohttp.ClientSession() as session:
        async def post(body: bytes) -> tuple[int, dict | str]:
            async with session.post(f"{b.url}/rewards/spends", data=body) as response:
                text = await response.text()
                return response.status, json.loads(text) if response.status == 200 else text

        size = len(await log_leaves(b))
        # A spend for an account that is not the issuer's own: refused.
        status, why = await post(signed(1, account="https://c.example/users/zed", order="https://c.example/orders/1",
                                        sid="c.example/s/1"))
        assert status == 422 and "cannot spend the tokens of https://c.example/users/zed" in why
        # More or fewer tokens than the listing costs: refused.
        status, why = await post(signed(2, tokens=1))
        assert status == 422 and "do not cost 1 tokens" in why
        # An undo of a spend that was never countersigned here: refused.
        status, why = await post(signed(3, kind="undo-spend"))
        assert status == 409 and "not cancelled or rejected here" in why
        # Not signed by a member, or with a second signature already on it: refused.
        stranger = FakeMember.create("stranger.test")
        status, _ = await post(sign_note(build_spend(Spend("stranger.test/s/1", "spend",
                                                           "https://stranger.test/users/x",
                                                           "https://stranger.test/orders/1", bobs.uri, bob, 1, 2,
                                                           int(time.time()))), [stranger.receipts]))
        assert status == 403
        status, _ = await post(sign_note(build_spend(parse_spend(parse_note(signed(4)).text)),
                                         [signer, b.ctx.keys.receipts]))
        assert status == 400
        assert len(await log_leaves(b)) == size  # nothing of these is in the log
        # A good spend is countersigned once; replayed, the same answer; the same id with other text, or a
        # second spend for the same order, refused.
        good = signed(5)
        first, again = await post(good), await post(good)
        assert first[0] == again[0] == 200 and first[1]["countersignature"] == again[1]["countersignature"]
        assert (first[1]["duplicate"], again[1]["duplicate"]) == (False, True)
        status, why = await post(signed(5, tokens=2, when=int(time.time()) - 5))
        assert status == 409 and "already used for a different spend" in why
        status, why = await post(signed(6, order=f"{a.url}/orders/5"))
        assert status == 409 and "is paid already" in why
        assert len(await log_leaves(b)) == size + 1

async def test_a_batch_of_spends_answers_each_alone_and_appends_the_good_ones_together(pair):
    a, b = pair
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    bobs = await actions.create_product(b.pool, build_publisher(b.settings), "bob",
                                        ProductDraft(title="분청 접시", price=20_000, stock=5, token_price=2))

    def signed(n: int, *, order: int | None = None, tokens: int = 2) -> bytes:
        spend = Spend(f"{a.domain}/s/batch{n}", "spend", f"{a.url}/users/alice", f"{a.url}/orders/{order or n}",
                      bobs.uri, f"{b.url}/users/bob", 1, tokens, int(time.time()))
        return sign_note(build_spend(spend), [a.ctx.keys.receipts])

    async def batch(*bodies: bytes) -> list:
        checked = [await check_spend(b.ctx, b.pool, body) for body in bodies]
        async with b.pool.acquire() as conn, conn.transaction():
            return await receive_spends(conn, build_publisher(b.settings), checked)

    size = len(await log_leaves(b))
    # distinct orders: checked first, the good ones appended together, the bad one refused alone
    good, bad, other = await batch(signed(1), signed(2, tokens=1), signed(3))
    assert isinstance(bad, ReceiptRefused) and bad.status == 422 and "do not cost 1 tokens" in bad.message
    assert (good.index, other.index, good.duplicate, other.duplicate) == (size, size + 1, False, False)
    # a replay, a second spend of a paid order, and two spends of one new order in one batch: one at a time
    replay, second, new, again = await batch(signed(1), signed(4, order=3), signed(5), signed(6, order=5))
    assert (replay.index, replay.duplicate, replay.countersignature) == (size, True, good.countersignature)
    assert isinstance(second, ReceiptRefused) and second.status == 409 and "is paid already" in second.message
    assert new.index == size + 2 and not new.duplicate
    assert isinstance(again, ReceiptRefused) and again.status == 409 and "is paid already" in again.message
    leaves = await log_leaves(b)
    assert len(leaves) == size + 3
    assert [s.id for s in _spends(leaves[size:])] == [f"{a.domain}/s/batch{n}" for n in (1, 3, 5)]
    assert await b.pool.fetchval("SELECT count(*) FROM token_spends WHERE spend_id LIKE '%/s/batch%'") == 3


TOKENS_FAST = {"FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1",
               "FEDSERVER_REWARDS__SETTLEMENT_SECONDS": "3", "FEDSERVER_REWARDS__POINTS_PER_TOKEN": "1",
               "FEDSERVER_REWARDS__MINT_THRESHOLD": "1", "FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.05"}


async def _run(x, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


async def _until(what: str, check, x, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not in {seconds} s\n{x.log()[-3000:]}")


async def _balance(session: aiohttp.ClientSession, x, name: str) -> dict:
    async with session.get(f"{x.base_url}/rewards/balance/{name}") as response:
        assert response.status == 200
        return await response.json()


@pytest.mark.slow
async def test_three_members_with_quorum_two_earn_mint_pay_with_tokens_and_a_cancel_returns_them(
        pg_cluster, tmp_path):
    """a: the buyer alice; b: the maker bob; c: carol, who likes, shares and replies. Every log needs the
    cosignatures of both other members (quorum 2)."""
    async with running_instances(pg_cluster, tmp_path, "abc", TOKENS_FAST) as cluster:
        a, b, c = cluster
        for x in cluster:
            others = [y for y in cluster if y is not x]
            for y, quorum in zip(others, ([], ["--quorum", "2"])):
                await _run(x, "rewards", "peer", "add", y.base_url, *quorum)
        await _run(a, "account", "create", "alice")
        await _run(b, "account", "create", "bob")
        await _run(c, "account", "create", "carol")
        post = await _run(a, "post", "alice", "alice의 찻잔")
        await _run(c, "like", "carol", post)
        await _run(c, "post", "carol", "멋지네요", "--reply-to", post)
        await _run(c, "announce", "carol", post)
        await _run(b, "like", "bob", post)
        alice = f"{a.base_url}/users/alice"
        async with aiohttp.ClientSession() as session:
            async def minted():
                doc = await _balance(session, a, "alice")
                return doc if doc["pending"] == 0 and doc["points"] == 0 and doc["tokens"] >= 4 else None

            held = (await _until("alice's points settle and become tokens", minted, a))["tokens"]
            listing = await _run(b, "product", "create", "bob", "--title", "분청 접시", "--price", "30000",
                                 "--stock", "5", "--token-price", "2")
            # More than she holds: refused at once, nothing stored, nothing debited.
            too_many = await asyncio.to_thread(a.command, "order", "create", "alice", listing, "--pay", "tokens",
                                               "--quantity", str(held // 2 + 1))
            assert too_many.returncode != 0 and f"not enough tokens: this order costs {2 * (held // 2 + 1)}, " \
                f"you have {held}" in too_many.stderr + too_many.stdout
            assert await fetchval(a, "SELECT count(*) FROM orders") == 0
            assert await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", alice) == held
            # The maker's instance is killed, the order is placed (debited, its spend waiting), the buyer's
            # instance is killed too; after both restart the spend completes once on both sides.
            b.kill()
            order = await _run(a, "order", "create", "alice", listing, "--pay", "tokens")
            assert await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", alice) == held - 2
            await asyncio.sleep(1.0)  # a's workers try b and fail
            a.kill()
            await asyncio.to_thread(b.start)
            await asyncio.to_thread(a.start)

            async def state(x):
                return await fetchval(x, "SELECT state FROM orders WHERE uri = $1", order)

            async def paid_on_both():
                return await state(a) == "paid" and await state(b) == "paid"

            await _until("the order is paid on both sides", paid_on_both, b, seconds=90)
            assert await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", alice) == held - 2
            for x in (a, b):
                assert await fetchval(x, "SELECT count(*) FROM token_spends WHERE order_uri = $1 AND idx IS NOT NULL",
                                      order) == 1
            # Only the countersigned spend marks a token order paid: never the maker by hand.
            listing2 = await _run(b, "product", "create", "bob", "--title", "작은 접시", "--price", "9000",
                                  "--made-to-order", "--token-price", "1", "--no-auto-accept")
            second = await _run(a, "order", "create", "alice", listing2, "--pay", "tokens")
            await _until("the second order reaches b", lambda: fetchval(b, "SELECT 1 FROM orders WHERE uri = $1",
                                                                        second), b)
            by_hand = await asyncio.to_thread(b.command, "order", "accept", second)
            assert by_hand.returncode == 0, by_hand.stderr
            await _until("the accepted order is paid by its spend",
                         lambda: fetchval(b, "SELECT state = 'paid' FROM orders WHERE uri = $1", second), b)

            async def spends_published():
                mine, bobs = await _balance(session, a, "alice"), await _balance(session, b, "bob")
                return mine["tokens_spent"] == 3 and bobs["tokens_redeemed"] == 3 and (mine, bobs)

            mine, bobs = await _until("both balances show the spends", spends_published, a)
            # What bob received counts as redeemed: it is not his to spend (tokens never move between people).
            assert mine["tokens"] == held - 3 and bobs["tokens"] == bobs["tokens_minted"] - bobs["tokens_spent"]
            # The maker cancels the paid order: the buyer's instance returns its tokens by an undo-spend.
            await _run(b, "order", "cancel", order, "--reason", "가마에서 깨졌어요")

            async def returned():
                back = await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", alice)
                return await state(a) == "cancelled" and back == held - 1

            await _until("the cancelled order's tokens come back", returned, a)
            undo = await fetchval(b, "SELECT count(*) FROM token_spends WHERE kind = 'undo-spend' AND idx IS NOT NULL")
            assert undo == 1

            async def settled_both():
                mine, bobs = await _balance(session, a, "alice"), await _balance(session, b, "bob")
                return mine["tokens_spent"] == 1 and bobs["tokens_redeemed"] == 1 and (mine, bobs)

            mine, bobs = await _until("both balances show the undo", settled_both, a)
            assert mine["tokens"] == held - 1
        # What the makers received this month, from the logs alone: the same on both sides, each entry once.
        month = time.strftime("%Y-%m", time.gmtime())
        settled = [json.loads(await asyncio.to_thread(lambda x=x: x.command("rewards", "settlement", "--month", month,
                                                                           "--json").stdout)) for x in (a, b)]
        assert settled[0]["pairs"] == settled[1]["pairs"] == [
            {"buyer_instance": f"127.0.0.1:{a.port}", "maker_instance": f"127.0.0.1:{b.port}", "tokens_redeemed": 1,
             "spends": 2, "undone": 1}]
        csv_out = await asyncio.to_thread(b.command, "rewards", "settlement", "--month", month, "--csv")
        assert csv_out.stdout.splitlines() == [
            "month,buyer_instance,maker_instance,tokens_redeemed,spends,undone",
            f"{month},127.0.0.1:{a.port},127.0.0.1:{b.port},1,2,1"]
        bad = await asyncio.to_thread(b.command, "rewards", "settlement", "--month", "2026-13")
        assert bad.returncode == 1 and "must be YYYY-MM" in bad.stderr
        # Every served balance recomputes from the witnessed logs, from every member against every other.
        for x in cluster:
            for y in (y for y in cluster if y is not x):
                result = await asyncio.to_thread(x.command, "rewards", "verify", y.base_url, "--balances")
                assert result.returncode == 0, (x.port, y.port, result.stdout, result.stderr)
                assert result.stdout.rstrip().endswith(": ok")
        # b serves a tampered balance (its spend index, not its log, says bob received nothing): reported.
        await fetchval(b, "UPDATE token_spends SET seller_uri = seller_uri || '#x'")
        b.kill()  # a running server keeps the balances it folded; started again, it reads the tampered index
        await asyncio.to_thread(b.start)
        found = await asyncio.to_thread(c.command, "rewards", "verify", b.base_url, "--balances")
        assert found.returncode != 0 and "tokens_redeemed served 0, recomputed 1" in found.stdout + found.stderr


# A token Offer the maker's instance refuses at the door: its spend may arrive before or after it.

DISH = ProductDraft(title="분청 접시", price=20_000, stock=5, token_price=2)


async def _send_activities(x: LiveInstance) -> int:
    """One pass of x's ActivityPub delivery worker: POST what is due to the other instance's inbox."""
    async with HttpClient(x.settings) as http:
        worker = DeliveryWorker(x.pool, x.settings, http)
        async with x.pool.acquire() as conn:
            batch = await jobs.claim(conn, worker.queue, 100, worker.pause_after)
        for job in batch:
            await worker.jobs.attempt(job)
    return len(batch)


async def _flow(a: LiveInstance, b: LiveInstance) -> None:
    """Run both instances' workers (activities, inboxes, spends, refused token orders) until nothing moves."""
    for _ in range(30):
        moved = 0
        for x in (a, b):
            moved += await _send_activities(x)
        for x in (a, b):
            moved += len(await process_all(x.pool, x.settings))
        for x in (a, b):
            moved += await deliver_all(x)
            moved += await cancel_refused_token_orders(x.pool, build_publisher(x.settings))
        if not moved:
            return
    raise AssertionError("the two instances never settled")


async def _wallet(a: LiveInstance) -> int:
    return await a.pool.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", f"{a.url}/users/alice")


async def _state(x: LiveInstance, order_uri: str) -> str | None:
    return await x.pool.fetchval("SELECT state FROM orders WHERE uri = $1", order_uri)


async def _bob_and_his_dish(b: LiveInstance, draft: ProductDraft = DISH):
    await create_account(b.pool, b.settings, validate_new_account(username="bob"))
    return await actions.create_product(b.pool, build_publisher(b.settings), "bob", draft)


async def _alice_orders(a: LiveInstance, listing_uri: str, quantity: int = 1):
    async with HttpClient(a.settings) as http:
        return await actions.place_order(a.pool, build_publisher(a.settings), http, "alice", listing_uri, quantity,
                                         pay="tokens")


async def _refused_and_given_back(a: LiveInstance, b: LiveInstance, order_uri: str, tokens: int) -> None:
    """Both instances settle; the order is taken nowhere and alice has every token back."""
    await _flow(a, b)
    # Whichever of b's Reject and its refusal of the spend reaches a first ends the order there (rejected, or
    # cancelled for the refused spend); b keeps the Offer as a rejected order, so the spend cannot be taken.
    assert await _state(a, order_uri) in ("rejected", "cancelled")
    assert await _state(b, order_uri) == "rejected"
    spends = await a.pool.fetch("SELECT kind, state, reason FROM token_spends WHERE order_uri = $1 ORDER BY kind",
                                order_uri)
    assert await _wallet(a) == tokens, [dict(s) for s in spends]
    # and bob's instance counts nothing redeemed for an order it never took (settlement reads its log)
    assert await b.pool.fetchval(
        "SELECT coalesce(sum(CASE kind WHEN 'spend' THEN tokens ELSE -tokens END), 0) FROM token_spends "
        "WHERE order_uri = $1 AND idx IS NOT NULL", order_uri) == 0


async def test_a_token_offer_the_makers_instance_refuses_at_the_door_gives_every_token_back(pair):
    a, b = pair
    tokens = await _tokens_for_alice(a)
    dish = await _bob_and_his_dish(b)
    order = await _alice_orders(a, dish.uri)
    assert await _wallet(a) == tokens - 2
    # Before alice's Offer reaches b, bob pauses the listing: b answers the Offer with a Reject.
    await actions.update_product(b.pool, build_publisher(b.settings), str(dish.id), {"status": "paused"})
    await _refused_and_given_back(a, b, order.uri, tokens)


async def test_a_spend_countersigned_before_a_token_price_change_refuses_its_offer_still_gives_every_token_back(
        pair):
    a, b = pair
    tokens = await _tokens_for_alice(a)
    dish = await _bob_and_his_dish(b)
    order = await _alice_orders(a, dish.uri)
    # The spend travels on its own queue and reaches b first: b countersigns it (2 tokens is the listing's price).
    assert await deliver_all(a) == 1
    assert await a.pool.fetchval("SELECT state FROM token_spends WHERE order_uri = $1", order.uri) == "countersigned"
    # Then bob raises the token price, and alice's Offer (2 tokens) arrives: b refuses it.
    await actions.update_product(b.pool, build_publisher(b.settings), str(dish.id), {"token_price": 3})
    await _refused_and_given_back(a, b, order.uri, tokens)
