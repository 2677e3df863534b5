"""POST /rewards/receipts over real HTTP: countersigning, refusals, duplicates, caps, balances."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from fedserver.app import build_publisher
from rewards.logstore import sequenced_size
from rewards.note import parse_note, parse_signature_lines, sign_note, verify_note
from rewards.points import PointsPolicy
from rewards.receipt import build_receipt
from rewards.receipts import ReceiptRefused, append_checked, check_receipt
from storefront import actions
from storefront.products import ProductDraft
from tests.support.rewards import FakeMember, account_with_post, context, pin, publish_now


@pytest.fixture
async def peer(pool) -> FakeMember:
    member = FakeMember.create("peer.test")
    await pin(pool, member)
    return member


@pytest.fixture
async def alice(pool, settings) -> tuple[str, str]:
    return await account_with_post(pool, settings, "alice")


async def size(pool) -> int:
    async with pool.acquire() as conn:
        return await sequenced_size(conn)


async def post(client, body: bytes):
    response = await client.post("/rewards/receipts", data=body, headers={"Content-Type": "text/plain"})
    return response.status, await response.json()


async def test_receipt_is_countersigned_and_the_identical_bytes_appended(client, pool, settings, peer, alice):
    ctx = await context(pool, settings)
    actor, obj = alice
    signed = peer.sign(peer.receipt(obj=obj, beneficiary=actor))
    status, answer = await post(client, signed)
    assert status == 200, answer
    assert answer["index"] == 0 and answer["duplicate"] is False and answer["origin"] == "shop.test/rewards/v1"
    line = parse_signature_lines(answer["countersignature"])[0]
    leaf = signed + answer["countersignature"].encode()
    stored = bytes(await pool.fetchval("SELECT leaf FROM rewards_log_entries WHERE idx = 0"))
    assert stored == leaf
    assert verify_note(leaf, [peer.receipts.verifier(), ctx.keys.receipts_verifier()]).verified_names() == {
        "peer.test/rewards/receipts", "shop.test/rewards/receipts"}
    assert line.name == "shop.test/rewards/receipts"


async def test_duplicate_id_returns_the_existing_index_and_adds_no_leaf(client, pool, peer, alice):
    actor, obj = alice
    signed = peer.sign(peer.receipt(obj=obj, beneficiary=actor))
    first = await post(client, signed)
    again = await post(client, signed)
    assert again[0] == 200 and again[1]["index"] == first[1]["index"] and again[1]["duplicate"] is True
    assert again[1]["countersignature"] == first[1]["countersignature"]
    assert await size(pool) == 1
    concurrent = await asyncio.gather(*(post(client, peer.sign(peer.receipt(obj=obj, beneficiary=actor, rid="peer.test/r/same")))
                                        for _ in range(10)))
    assert len({answer["index"] for _, answer in concurrent}) == 1
    assert await size(pool) == 2


async def test_reused_id_with_other_content_is_409(client, pool, peer, alice):
    actor, obj = alice
    receipt = peer.receipt(obj=obj, beneficiary=actor, rid="peer.test/r/1")
    assert (await post(client, peer.sign(receipt)))[0] == 200
    status, answer = await post(client, peer.sign(dataclasses.replace(receipt, kind="announce", points=2)))
    assert status == 409 and "already used" in answer["error"]
    assert await size(pool) == 1


async def _refused(client, pool, body: bytes, status: int, words: str) -> None:
    before = await size(pool)
    got, answer = await post(client, body)
    assert got == status, answer
    assert words in answer["error"]
    assert await size(pool) == before


async def test_bad_signature_and_unknown_issuer_are_refused_without_a_leaf(client, pool, peer, alice):
    actor, obj = alice
    good = peer.sign(peer.receipt(obj=obj, beneficiary=actor))
    tampered = good.replace(b"points 1", b"points 0")
    await _refused(client, pool, tampered, 403, "bad signature")
    stranger = FakeMember.create("stranger.test")
    await _refused(client, pool, stranger.sign(stranger.receipt(obj=obj, beneficiary=actor)), 403, "unknown issuer")
    impostor = dataclasses.replace(FakeMember.create("peer.test"))  # same names, other keys
    await _refused(client, pool, impostor.sign(impostor.receipt(obj=obj, beneficiary=actor)), 403, "bad signature")
    twice = sign_note(build_receipt(peer.receipt(obj=obj, beneficiary=actor)), [peer.receipts, stranger.receipts])
    await _refused(client, pool, twice, 400, "exactly one signature")
    await _refused(client, pool, b"not a note", 400, "not a signed note")
    not_receipts_key = sign_note(build_receipt(peer.receipt(obj=obj, beneficiary=actor)), [peer.log])
    await _refused(client, pool, not_receipts_key, 403, "not an instance's receipts key")


async def test_self_interaction_with_points_is_refused(client, pool, peer, alice):
    actor, obj = alice
    self_like = peer.receipt(actor=actor, obj=obj, beneficiary=actor, points=1)
    await _refused(client, pool, peer.sign(self_like), 422, "self-interaction earns nothing")


async def test_wrong_beneficiary_missing_object_and_foreign_parties_are_refused(client, pool, settings, peer, alice):
    actor, obj = alice
    bob, bobs_post = await account_with_post(pool, settings, "bob")
    await _refused(client, pool, peer.sign(peer.receipt(obj=bobs_post, beneficiary=actor)), 422, "does not belong")
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj + "x", beneficiary=actor)), 422, "no live post")
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary="https://else.test/users/a")), 422,
                   "not on this instance")
    await _refused(client, pool, peer.sign(peer.receipt(actor="https://else.test/users/x", obj=obj,
                                                        beneficiary=actor)), 422, "does not live on the issuer")
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary=actor, rid="else.test/r/1")), 422,
                   "issuer's domain")
    await pool.execute("UPDATE objects SET deleted_at = now() WHERE uri = $1", obj)
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary=actor)), 422, "no live post")


async def test_points_and_time_must_follow_the_policy(client, pool, peer, alice):
    actor, obj = alice
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary=actor, points=2)), 422, "between 0 and 1")
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary=actor, kind="undo-reply", points=-4)),
                   422, "between -3 and 0")
    old = int(time.time()) - 8 * 86400
    await _refused(client, pool, peer.sign(peer.receipt(obj=obj, beneficiary=actor, when=old)), 422, "window")
    assert (await post(client, peer.sign(peer.receipt(obj=obj, beneficiary=actor, kind="reply", points=3))))[0] == 200


async def test_daily_cap_is_applied_per_actor_in_the_append_transaction(pool, settings, peer, alice):
    ctx = await context(pool, settings)
    ctx = dataclasses.replace(ctx, points=PointsPolicy(1, 1, 2, 3, daily_cap=3))
    actor, obj = alice
    bodies = [peer.sign(peer.receipt(obj=obj, beneficiary=actor, kind="announce", points=2)) for _ in range(3)]
    async with pool.acquire() as conn:
        checked = [await check_receipt(ctx, conn, body) for body in bodies]
        async with conn.transaction():
            results = await append_checked(ctx, conn, checked)
    assert [type(r).__name__ for r in results] == ["Accepted", "ReceiptRefused", "ReceiptRefused"]
    assert isinstance(results[1], ReceiptRefused) and "daily cap" in results[1].message
    assert await size(pool) == 1


async def test_concurrent_receipts_are_group_committed_with_contiguous_indices(client, pool, peer, alice):
    actor, obj = alice
    bodies = [peer.sign(peer.receipt(obj=obj, beneficiary=actor)) for _ in range(80)]
    results = await asyncio.gather(*(post(client, body) for body in bodies))
    assert all(status == 200 for status, _ in results)
    assert sorted(answer["index"] for _, answer in results) == list(range(80))
    rows = await pool.fetch("SELECT idx, leaf FROM rewards_log_entries ORDER BY idx")
    by_index = {answer["index"]: body + answer["countersignature"].encode() for body, (_, answer) in zip(bodies, results)}
    assert all(bytes(r["leaf"]) == by_index[r["idx"]] for r in rows)


async def test_balance_counts_published_receipts_only(client, pool, settings, peer, alice):
    ctx = await context(pool, settings)
    actor, obj = alice
    for kind, points in (("like", 1), ("reply", 3), ("announce", 2), ("undo-like", -1)):
        assert (await post(client, peer.sign(peer.receipt(obj=obj, beneficiary=actor, kind=kind, points=points))))[0] == 200
    balance = await (await client.get("/rewards/balance/alice")).json()
    assert (balance["points"], balance["pending"], balance["unpublished_points"], balance["receipts"]) == (0, 0, 5, 0)
    profile = await (await client.get("/@alice", headers={"Accept-Language": "en"})).text()
    assert "Points 0" in profile
    await publish_now(pool, ctx)
    profile = await (await client.get("/@alice", headers={"Accept-Language": "en"})).text()
    balance = await (await client.get("/rewards/balance/alice@shop.test")).json()
    # the profile page shows the balance from the witnessed log: settled points (none yet) and tokens
    assert f"Points {balance['points']}<" in profile and f"Tokens {balance['tokens']}<" in profile
    # the like and its undo cancel each other; the rest settles after the 7-day window
    assert (balance["points"], balance["pending"], balance["unpublished_points"], balance["receipts"]) == (0, 5, 0, 4)
    assert balance["log"] == {"origin": "shop.test/rewards/v1", "size": 4} and balance["log_size"] == 4
    assert (balance["tokens"], balance["tokens_spent"], balance["tokens_redeemed"], balance["tokens_expired"]) == (0,) * 4
    assert (await client.get("/rewards/balance/nobody")).status == 404
    assert (await client.get("/rewards/balance/alice@else.test")).status == 404
    leaf = parse_note(bytes(await pool.fetchval("SELECT leaf FROM rewards_log_entries WHERE idx = 3")))
    assert "points -1" in leaf.text


async def test_a_listing_earns_receipts_like_any_post_until_it_is_deleted(client, pool, settings, peer, alice):
    actor, _ = alice
    publisher = build_publisher(settings)
    listing = await actions.create_product(pool, publisher, "alice", ProductDraft(title="분청 접시", price=24_000))
    status, answer = await post(client, peer.sign(peer.receipt(obj=listing.uri, beneficiary=actor)))
    assert status == 200 and answer["index"] == 0, answer
    await actions.delete_product(pool, publisher, str(listing.id))
    status, answer = await post(client, peer.sign(peer.receipt(obj=listing.uri, beneficiary=actor)))
    assert status == 422 and await size(pool) == 1, answer


async def test_a_reversal_needs_an_earlier_receipt_of_its_kind_once_and_never_more_than_it(client, pool, peer, alice):
    actor, obj = alice

    async def send(kind: str, points: int, who: str = "xavier") -> tuple[int, dict]:
        return await post(client, peer.sign(peer.receipt(actor=f"https://peer.test/users/{who}", obj=obj,
                                                         beneficiary=actor, kind=kind, points=points)))

    status, answer = await send("undo-like", -1)  # nothing to reverse: a member could drive points down forever
    assert status == 422 and "earlier" in answer["error"], answer
    assert (await send("like", 1))[0] == 200
    assert (await send("undo-announce", -2))[0] == 422  # another kind
    assert (await send("undo-like", -1, who="yvonne"))[0] == 422  # another actor
    assert (await send("undo-like", -1))[0] == 200
    assert (await send("undo-like", -1))[0] == 422  # once only
    assert (await send("reply", 1))[0] == 200
    assert (await send("undo-reply", -3))[0] == 422  # never more than the receipt it reverses
    assert (await send("undo-reply", -1))[0] == 200
    assert await size(pool) == 4
