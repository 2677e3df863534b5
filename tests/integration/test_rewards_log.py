"""The rewards log on real PostgreSQL and real HTTP: sequencing, integration, tiles, proofs, keys."""

from __future__ import annotations

import asyncio
import random

import pytest

from rewards.checkpoint import open_checkpoint, parse_tlog_proof
from rewards.integrator import EdgeCache, integrate_all, integrate_batch, sign_checkpoint
from rewards.logstore import append_entries, append_entry, get_state
from rewards.merkle import CompactRange, leaf_hash, root_from_leaf_hashes, verify_inclusion
from rewards.note import Ed25519Verifier
from rewards.tiles import TileID, decode_entry_bundle, integrate
from tests.support.rewards import context, publish_now


class Boom(Exception):
    pass


async def _entries(pool) -> list[tuple[int, bytes]]:
    rows = await pool.fetch("SELECT idx, leaf FROM rewards_log_entries ORDER BY idx")
    return [(r["idx"], bytes(r["leaf"])) for r in rows]


async def test_concurrent_appends_get_contiguous_indices_and_rollbacks_leave_no_gap(pool):
    async def append(n: int) -> int | None:
        try:
            async with pool.acquire() as conn, conn.transaction():
                index = await append_entry(conn, f"entry {n}".encode())
                await asyncio.sleep(random.random() / 100)
                if n % 3 == 0:
                    raise Boom  # the transaction rolls back after taking an index
                return index
        except Boom:
            return None

    results = await asyncio.gather(*(append(n) for n in range(60)))
    committed = sorted(r for r in results if r is not None)
    assert committed == list(range(40))
    entries = await _entries(pool)
    assert [idx for idx, _ in entries] == list(range(40))
    assert {leaf for _, leaf in entries} == {f"entry {n}".encode() for n in range(60) if n % 3}


async def test_append_refuses_to_run_outside_a_transaction(pool):
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await append_entry(conn, b"x")


async def test_integrated_tiles_and_root_equal_the_pure_computation(pool):
    rng = random.Random(7)
    leaves = [rng.randbytes(rng.randint(0, 300)) for _ in range(70_000 // 100)]
    cache = EdgeCache()
    pos = 0
    async with pool.acquire() as conn:
        while pos < len(leaves):
            n = rng.randint(1, 300)
            async with conn.transaction():
                await append_entries(conn, leaves[pos:pos + n])
            pos += n
            await integrate_batch(conn, cache if rng.random() < 0.5 else EdgeCache(), limit=rng.randint(1, 400))
        await integrate_all(conn, EdgeCache(), limit=97)
        state = await get_state(conn)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    assert state.tree_size == len(leaves)
    assert state.tree_root == root_from_leaf_hashes(hashes)
    expected = integrate(CompactRange(), {}, hashes)
    stored = {(r["level"], r["idx"]): bytes(r["hashes"]) for r in await pool.fetch("SELECT * FROM rewards_log_tiles")}
    assert stored == {(t.level, t.index): data for t, data in expected.tiles}


async def _log_of(pool, settings, count: int) -> tuple[list[bytes], object]:
    ctx = await context(pool, settings)
    leaves = [f"leaf {i} ".encode() * (i % 7 + 1) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await append_entries(conn, leaves)
    await publish_now(pool, ctx)
    return leaves, ctx


async def test_tiles_and_bundles_are_served_as_computed_with_cache_headers(client, pool, settings):
    leaves, _ = await _log_of(pool, settings, 600)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    for tile, data in integrate(CompactRange(), {}, hashes).tiles:
        response = await client.get(f"/rewards/log/{tile.path()}")
        assert response.status == 200, tile.path()
        assert await response.read() == data
        immutable = "immutable" in response.headers["Cache-Control"]
        assert immutable == tile.is_full
    for index, width in ((0, 256), (1, 256), (2, 88), (2, 10)):
        path = TileID(-1, index, width).path()
        response = await client.get(f"/rewards/log/{path}")
        assert response.status == 200, path
        assert decode_entry_bundle(await response.read()) == leaves[index * 256: index * 256 + width]
    partial_of_full = await client.get("/rewards/log/tile/0/000.p/5")
    assert await partial_of_full.read() == b"".join(hashes[:5])


@pytest.mark.parametrize("path", ["tile/0/002", "tile/0/002.p/89", "tile/0/003.p/1", "tile/1/000",
                                  "tile/entries/003", "tile/entries/002.p/89", "tile/2/000.p/1",
                                  "tile/0/02", "tile/0/x000/002", "tile/0/000.p/256", "tile/64/000"])
async def test_tiles_beyond_the_published_tree_or_malformed_are_404(client, pool, settings, path):
    await _log_of(pool, settings, 600)
    response = await client.get(f"/rewards/log/{path}")
    assert response.status == 404


async def test_entries_appended_after_publication_are_not_served(client, pool, settings):
    await _log_of(pool, settings, 10)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await append_entry(conn, b"late")
        await integrate_all(conn, EdgeCache())
    assert (await client.get("/rewards/log/tile/entries/000.p/11")).status == 404
    assert (await client.get("/rewards/proof/10")).status == 404
    assert (await client.get("/rewards/log/tile/entries/000.p/10")).status == 200


async def test_proofs_verify_against_the_published_checkpoint(client, pool, settings):
    leaves, ctx = await _log_of(pool, settings, 300)
    response = await client.get("/rewards/log/checkpoint")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    published = await response.read()
    checkpoint = open_checkpoint(published, [ctx.keys.log.verifier()]).checkpoint
    assert checkpoint.size == 300 and checkpoint.origin == ctx.keys.origin
    for index in list(range(0, 300, 7)) + [299]:
        response = await client.get(f"/rewards/proof/{index}")
        assert response.status == 200
        proof = parse_tlog_proof(await response.read())
        assert proof.index == index and proof.checkpoint == published
        assert verify_inclusion(index, 300, leaf_hash(leaves[index]), list(proof.path), checkpoint.root)
        assert not verify_inclusion(index, 300, leaf_hash(leaves[index] + b"x"), list(proof.path), checkpoint.root)
    assert (await client.get("/rewards/proof/300")).status == 404
    assert (await client.get("/rewards/proof/-1")).status == 400


async def test_nothing_is_served_before_the_first_checkpoint(client):
    assert (await client.get("/rewards/log/checkpoint")).status == 404
    assert (await client.get("/rewards/log/tile/entries/000.p/1")).status == 404


async def test_signing_never_goes_backwards_and_covers_only_integrated_entries(pool, settings):
    ctx = await context(pool, settings)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await append_entries(conn, [b"a", b"b", b"c"])
        state = await sign_checkpoint(conn, ctx.keys)
        assert state.signed_size == 0  # nothing integrated yet: the empty tree
        await integrate_all(conn, EdgeCache())
        state = await sign_checkpoint(conn, ctx.keys)
        assert state.signed_size == 3
        with pytest.raises(Exception):
            await conn.execute("UPDATE rewards_log_state SET signed_size = 4")  # CHECK: never beyond the tree


async def test_keys_are_published_in_wellknown_policy_and_instance_actor(client, pool, settings):
    response = await client.get("/.well-known/rewards")
    doc = await response.json()
    assert doc["domain"] == "shop.test"
    assert doc["log"]["origin"] == "shop.test/rewards/v1"
    assert Ed25519Verifier.from_vkey(doc["receipts"]["vkey"]).name == "shop.test/rewards/receipts"
    assert doc["witness"]["vkey"].startswith("shop.test/rewards/witness+")
    assert doc["log"]["url"] == "https://shop.test/rewards/log"
    again = await (await client.get("/.well-known/rewards")).json()
    assert again == doc  # generated once, then stable
    policy = await (await client.get("/rewards/policy")).json()
    assert policy["points"] == {"like": 1, "announce": 2, "reply": 3}
    assert policy["self_interaction"] == 0 and policy["daily_cap_per_actor"] == 100
    assert f"log {doc['log']['vkey']} {doc['log']['url']}" in policy["federation_policy"]
    assert policy["federation_policy"].endswith("quorum none\n")
    actor = await (await client.get("/actor", headers={"Accept": "application/activity+json"})).json()
    assert actor["rewards"]["log"] == doc["log"]["vkey"]
    assert actor["rewards"]["receipts"] == doc["receipts"]["vkey"]
