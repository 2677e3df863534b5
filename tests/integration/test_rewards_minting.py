"""Minting and balances: concurrent minters against PostgreSQL, and two live instances end to end."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from rewards.balance import TokenPolicy, fold_balance, parse_entry
from rewards.client import LogClient, fetch_token_policy
from rewards.context import http_session
from rewards.logstore import append_entry
from rewards.mint import Mint, build_mint
from rewards.minting import balance_document, mint_if_due
from rewards.note import parse_note, sign_note
from rewards.policy import parse_policy, verify_checkpoint
from rewards.tiles import TILE_WIDTH, decode_entry_bundle
from rewards.verify import VerifyFailure, verify_log
from tests.support.instance import Instance, running_instances
from tests.support.rewards import (
    FakeMember,
    account_with_post,
    context,
    pin,
    publish_live,
    publish_now,
    start_live_instance,
    stop_live_instance,
)

WEEK = 7 * 86400


async def test_concurrent_minters_append_one_mint_for_the_same_points(client, pool, settings):
    peer = FakeMember.create("peer.test")
    await pin(pool, peer)
    ctx = await context(pool, settings)
    alice, post = await account_with_post(pool, settings, "alice")
    for n in range(40):  # 40 replies from 40 actors: 120 points, above the default threshold of 100
        body = peer.sign(peer.receipt(actor=f"https://peer.test/users/u{n}", obj=post, beneficiary=alice,
                                      kind="reply", points=3))
        assert (await client.post("/rewards/receipts", data=body)).status == 200
    later = time.time() + WEEK + 60  # every receipt has settled by then

    async def mint_once():
        async with pool.acquire() as conn:
            try:
                return await mint_if_due(conn, ctx, alice, now=later)
            except asyncpg.UniqueViolationError:
                return "lost the race"

    results = await asyncio.gather(*(mint_once() for _ in range(12)))
    mints = [r for r in results if isinstance(r, Mint)]
    assert len(mints) == 1 and mints[0] == Mint(alice, 1, 120, 12, int(later))
    assert await mint_once() is None  # nothing left to convert: 120 points became 12 tokens
    rows = await pool.fetch("SELECT seq, points, tokens FROM rewards_mints")
    assert [tuple(r) for r in rows] == [(1, 120, 12)]
    leaves = [bytes(r["leaf"]) for r in await pool.fetch("SELECT leaf FROM rewards_log_entries ORDER BY idx")]
    assert sum(b"rewards/mint/v1" in leaf for leaf in leaves) == 1
    minted = parse_note(leaves[-1])
    assert [s.name for s in minted.signatures] == [ctx.keys.receipts.name]  # our receipts key alone
    with pytest.raises(ValueError, match="mints for its own only"):
        async with pool.acquire() as conn:
            await mint_if_due(conn, ctx, "https://peer.test/users/u1", now=later)
    await publish_now(pool, ctx)
    async with pool.acquire() as conn:
        shown = await balance_document(conn, ctx, "alice", now=later)
    assert (shown["points"], shown["pending"], shown["tokens"], shown["mints"], shown["log_size"]) == (0, 0, 12, 1, 41)


FAST = {"FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1",
        "FEDSERVER_REWARDS__SETTLEMENT_SECONDS": "4", "FEDSERVER_REWARDS__POINTS_PER_TOKEN": "2",
        "FEDSERVER_REWARDS__MINT_THRESHOLD": "3"}


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout.strip().splitlines()[-1]


async def _sql(x: Instance, query: str, *args):
    conn = await asyncpg.connect(x.env["FEDSERVER_DATABASE__URL"])
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _json(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()


async def _log_from_tiles(session: aiohttp.ClientSession, x: Instance, size: int) -> list[bytes]:
    out: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        async with session.get(f"{x.base_url}/rewards/log/tile/entries/{n:03d}{suffix}") as response:
            assert response.status == 200
            out += decode_entry_bundle(await response.read())
    return out


async def _settled_and_published(session: aiohttp.ClientSession, a: Instance, policy) -> int:
    """Wait until alice's points have settled, the mint worker is done, and a's checkpoint covers everything."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        entries = len(await _sql(a, "SELECT idx FROM rewards_log_entries"))
        async with session.get(f"{a.base_url}/rewards/log/checkpoint") as response:
            body = await response.read() if response.status == 200 else b""
        size = verify_checkpoint(body, policy).checkpoint.size if body else -1
        doc = await _json(session, f"{a.base_url}/rewards/balance/alice")
        if (entries >= 5 and size == entries and doc["mints"] >= 1 and doc["pending"] == 0
                and doc["points"] < 3):
            return size
        await asyncio.sleep(0.3)
    raise AssertionError(f"no settled, minted and published balance in time: {doc}\n{a.log()}")


@pytest.mark.slow
async def test_points_settle_mint_and_every_balance_recomputes_from_the_log(pg_cluster, tmp_path):
    # Policy 1: bob's share and reply earn him no curation share here, so he stays below the threshold.
    async with running_instances(pg_cluster, tmp_path, "ab", {**FAST, "FEDSERVER_REWARDS__POLICY_VERSION": "1"}
                                 ) as (a, b):
        await _run(a, "rewards", "peer", "add", b.base_url)
        await _run(b, "rewards", "peer", "add", a.base_url)
        policies = {x.port: parse_policy((Path(x.env["FEDSERVER_STORAGE__DATA_DIR"]) / "rewards-policy.txt")
                                         .read_text()) for x in (a, b)}
        await _run(a, "account", "create", "alice")
        await _run(b, "account", "create", "bob")
        alices_post = await _run(a, "post", "alice", "alice의 첫 작품")
        bobs_post = await _run(b, "post", "bob", "bob의 첫 작품")
        await _run(b, "like", "bob", alices_post)  # 1 point
        await _run(b, "post", "bob", "멋진 작품이네요", "--reply-to", alices_post)  # 3 points
        await _run(b, "announce", "bob", alices_post)  # 2 points
        await _run(a, "like", "alice", bobs_post)  # 1 point for bob: below the threshold, never minted
        alice = f"{a.base_url}/users/alice"
        async with aiohttp.ClientSession() as session:
            early = await _json(session, f"{a.base_url}/rewards/balance/alice@127.0.0.1:{a.port}")
            assert early["account"] == f"alice@127.0.0.1:{a.port}" and early["actor"] == f"{a.base_url}/users/alice"
            size = await _settled_and_published(session, a, policies[a.port])
            served = await _json(session, f"{a.base_url}/rewards/balance/alice")
            cli = json.loads((await asyncio.to_thread(a.command, "rewards", "balance", "alice", "--json")).stdout)
            published = (await _json(session, f"{a.base_url}/rewards/policy"))["tokens"]
            leaves = await _log_from_tiles(session, a, size)
            bobs_balance = await _json(session, f"{b.base_url}/rewards/balance/bob")
        # The endpoint and the command agree, at the same log size.
        moment = ("as_of", "budget")
        assert {k: v for k, v in served.items() if k not in moment} == {k: v for k, v in cli.items() if k not in moment}
        assert served["log_size"] == cli["log_size"] == size and served["log"]["size"] == size
        # Both match a recomputation from the witnessed log's tiles, with the published numbers, at their as_of.
        policy = TokenPolicy.from_dict(published)
        assert (policy.points_per_token, policy.mint_threshold, policy.settlement_seconds) == (2, 3, 4)
        assert published["token_expiry_days"] == 3 * 365 and published["enabled"] is True
        entries = [parse_entry(leaf) for leaf in leaves]
        for shown in (served, cli):
            recomputed = fold_balance(entries, alice, shown["as_of"], policy).as_dict()
            assert {k: shown[k] for k in recomputed} == recomputed
        # 6 points settled; whole tokens at 2 points each, in mints of at least 3 points.
        mints = [e for e in entries if isinstance(e, Mint)]
        assert mints and all(m.account == alice and m.points == 2 * m.tokens and m.points >= 3 for m in mints)
        assert [m.seq for m in mints] == list(range(1, len(mints) + 1))
        assert served["points"] + 2 * served["tokens"] == 6 and served["tokens"] == sum(m.tokens for m in mints)
        assert (served["tokens_spent"], served["tokens_redeemed"], served["tokens_expired"]) == (0, 0, 0)
        assert served["budget"]["capacity_units"] >= served["budget"]["units"] > 0
        mint_leaves = [leaf for leaf in leaves if b"rewards/mint/v1" in leaf]
        assert [s.name for leaf in mint_leaves for s in parse_note(leaf).signatures] == \
            [f"127.0.0.1:{a.port}/rewards/receipts"] * len(mints)
        assert bobs_balance["tokens"] == 0 and bobs_balance["mints"] == 0
        assert await _sql(b, "SELECT * FROM rewards_mints") == []
        # Both instances verify both logs, mints included; the ranking still reads the log with its mints.
        for x, y in ((b, a), (a, b)):  # each verifies the other's log (and its own: test_token_spends)
            result = await asyncio.to_thread(x.command, "rewards", "verify", y.base_url)
            assert result.returncode == 0, (x.port, y.port, result.stderr)
            if y is a:
                assert f"{len(mints)} mints, each signed by its account's own instance" in result.stdout
        # --balances: every balance each instance serves recomputes from its verified log, from the other side.
        for x, y in ((b, a), (a, b)):
            result = await asyncio.to_thread(x.command, "rewards", "verify", y.base_url, "--balances", "--json")
            assert result.returncode == 0, (x.port, y.port, result.stdout, result.stderr)
            checked = {c["account"]: c for c in json.loads(result.stdout)["balances"]}
            assert checked and all(c["status"] == "ok" and c["differences"] == [] for c in checked.values())
            assert set(checked) == ({alice} if y is a else {f"{b.base_url}/users/bob"})
        text = await asyncio.to_thread(a.command, "rewards", "verify", b.base_url, "--balances")
        assert text.returncode == 0 and f"balance bob@127.0.0.1:{b.port} at log size" in text.stdout
        assert text.stdout.rstrip().endswith(": ok")
        # Tamper with what b serves (its receipt index, not its log): bob's served points no longer add up.
        bob = f"{b.base_url}/users/bob"
        tampered = await _sql(b, "UPDATE rewards_receipts SET beneficiary_uri = beneficiary_uri || '#x' "
                                 "WHERE beneficiary_uri = $1 RETURNING idx", bob)
        assert len(tampered) == 1
        b.kill()  # a running server keeps the balances it folded; started again, it reads the tampered index
        await asyncio.to_thread(b.start)
        found = await asyncio.to_thread(a.command, "rewards", "verify", b.base_url, "--balances")
        assert found.returncode == 2, (found.stdout, found.stderr)
        assert f"ok: 127.0.0.1:{b.port}/rewards/v1 size" in found.stdout  # the log itself still verifies
        line = next(ln for ln in found.stdout.splitlines() if ln.startswith(f"balance bob@127.0.0.1:{b.port}"))
        assert "differs: " in line and ("points served 0, recomputed 1" in line or
                                        "pending served 0, recomputed 1" in line), line
        assert "balance-mismatch" in found.stderr
        data = await asyncio.to_thread(a.command, "rewards", "verify", b.base_url, "--balances", "--json")
        assert data.returncode == 2
        [bad] = [c for c in json.loads(data.stdout)["balances"] if c["account"] == bob]
        assert bad["status"] == "differs" and {d["field"] for d in bad["differences"]} <= {"points", "pending"}
        assert [(d["served"], d["recomputed"]) for d in bad["differences"]] == [(0, 1)]
        alerts = json.loads((await asyncio.to_thread(a.command, "rewards", "alerts", "--json")).stdout)
        mismatch = [x for x in alerts if x["kind"] == "balance-mismatch"]
        assert len(mismatch) == 1 and mismatch[0]["origin"] == f"127.0.0.1:{b.port}/rewards/v1"
        assert mismatch[0]["seen"] == 2  # the same difference twice: counted, not repeated
        message = mismatch[0]["message"]
        assert f"bob@127.0.0.1:{b.port}" in message and "recomputed 1" in message
        assert f"at log size {bad['log_size']}" in message
        plain = await asyncio.to_thread(a.command, "rewards", "verify", b.base_url)
        assert plain.returncode == 0 and "balance " not in plain.stdout  # without --balances: as before
        await _sql(b, "UPDATE rewards_receipts SET beneficiary_uri = $1 WHERE beneficiary_uri = $2", bob, bob + "#x")
        ranked = await asyncio.to_thread(b.command, "rewards", "rank", "--kind", "posts", "--json")
        assert ranked.returncode == 0, ranked.stderr
        ranking = json.loads(ranked.stdout)
        assert f"127.0.0.1:{a.port}/rewards/v1" in [log["origin"] for log in ranking["logs"]]
        assert ranking["ranking"][0]["object"] == alices_post and ranking["ranking"][0]["score"] == 6
        shown = await asyncio.to_thread(a.command, "rewards", "balance", "alice")
        assert shown.returncode == 0 and "tokens" in shown.stdout and f"size {size}" in shown.stdout
        missing = await asyncio.to_thread(a.command, "rewards", "balance", "nobody")
        assert missing.returncode == 1 and "no account named nobody" in missing.stderr


async def _verify_with_published_tokens(x):
    keys = {m.domain: m.receipts for m in (await x.ctx.members(x.pool, fresh=True)).values()}
    keys[x.ctx.keys.domain] = x.ctx.keys.receipts_verifier()
    async with http_session(x.settings) as session:
        tokens = TokenPolicy.from_dict(await fetch_token_policy(session, x.url))
        return await verify_log(LogClient(session, f"{x.url}/rewards/log"), x.ctx.policy(), keys, None, None, tokens)


async def _append_forged(x, leaf: bytes) -> None:
    async with x.pool.acquire() as conn, conn.transaction():
        await append_entry(conn, leaf)
    assert await publish_live(x)


@pytest.mark.parametrize("forgery", ["above the policy", "another instance's account"])
async def test_verify_refuses_a_forged_mint_with_the_reason(pg_cluster, tmp_path, forgery):
    x = await start_live_instance(pg_cluster, tmp_path, "a")
    try:
        peer = FakeMember.create("peer.test")
        await pin(x.pool, peer)
        alice, post = await account_with_post(x.pool, x.settings, "alice")
        async with aiohttp.ClientSession() as session:
            for n in range(4):
                body = peer.sign(peer.receipt(actor=f"https://peer.test/users/u{n}", obj=post, beneficiary=alice,
                                              kind="reply", points=3))
                async with session.post(f"{x.url}/rewards/receipts", data=body) as response:
                    assert response.status == 200, await response.text()
        assert await publish_live(x)
        report = await _verify_with_published_tokens(x)
        assert (report.receipts, report.mints) == (4, 0)
        now = int(time.time())
        if forgery == "above the policy":  # 12 points, still pending for the 7-day window: nothing to mint
            leaf = sign_note(build_mint(Mint(alice, 1, 10, 1, now)), [x.ctx.keys.receipts])
            reason = r"mint refused: mint 1 of .*alice converts 10 points, above the policy: the account had 0 settled"
        else:  # signed by the account's own instance, but appended to our log
            leaf = sign_note(build_mint(Mint("https://peer.test/users/u1", 1, 100, 10, now)), [peer.receipts])
            reason = rf"mint refused: .* an account of peer.test, in the log of {x.domain}: an instance mints only"
        await _append_forged(x, leaf)
        with pytest.raises(VerifyFailure, match=reason) as failure:
            await _verify_with_published_tokens(x)
        assert failure.value.kind == "bad-mint"
    finally:
        await stop_live_instance(pg_cluster, x)
