"""Rewards between live instances on loopback (in this process): issuing, witnessing, verifying, tampering."""

from __future__ import annotations

import dataclasses
import re

import aiohttp
import pytest

from fedserver.accounts import create_account, validate_new_account
from rewards.client import LogClient
from rewards.context import http_session
from rewards.integrator import EdgeCache, integrate_all, sign_checkpoint
from rewards.logstore import append_entries, set_published
from rewards.note import parse_note
from rewards.policy import verify_checkpoint
from rewards.store import WitnessState
from rewards.verify import VerifyFailure, verify_log
from rewards.workers import monitor_member
from tests.support.admin import admin_login
from tests.support.rewards import (
    LiveInstance,
    account_with_post,
    befriend,
    deliver_all,
    interact,
    log_leaves,
    publish_live,
    start_live_instance,
    stop_live_instance,
)

# These tests are about logs and witnesses: their entry counts are those of policy 1 (no curation
# receipts), which instances keep supporting. Policy 2 is in test_rewards_policy_v2.py.
POLICY_1 = {"FEDSERVER_REWARDS__POLICY_VERSION": "1"}


@pytest.fixture
async def trio(pg_cluster, tmp_path):
    instances = [await start_live_instance(pg_cluster, tmp_path, name, POLICY_1) for name in ("a", "b", "c")]
    for x in instances:
        others = [y for y in instances if y is not x]
        await befriend(x, others[0])
        await befriend(x, others[1], quorum="2")
    yield instances
    for x in instances:
        await stop_live_instance(pg_cluster, x)


async def _verify(verifier: LiveInstance, target: LiveInstance, previous: WitnessState | None = None,
                  lax: bool = False):
    keys = {m.domain: m.receipts for m in (await verifier.ctx.members(verifier.pool, fresh=True)).values()}
    keys[verifier.ctx.keys.domain] = verifier.ctx.keys.receipts_verifier()
    policy = verifier.ctx.policy()
    if lax:  # a verifier that does not ask for cosignatures: only its own memory protects it
        policy = dataclasses.replace(policy, groups=(), quorum="none")
    async with http_session(verifier.settings) as session:
        return await verify_log(LogClient(session, f"{target.url}/rewards/log"), policy, keys, previous)


async def _interactions(trio) -> None:
    a, b, c = trio
    alice, alices_post = await account_with_post(a.pool, a.settings, "alice")
    bob, bobs_post = await account_with_post(b.pool, b.settings, "bob")
    carol, _ = await account_with_post(c.pool, c.settings, "carol")
    assert await interact(b, bob, alices_post, alice)
    assert await interact(b, bob, alices_post, alice, "reply")
    assert await interact(c, carol, alices_post, alice, "announce")
    assert await interact(a, alice, bobs_post, bob)
    assert await interact(a, alice, alices_post, alice) is None  # local: no receipt
    assert await interact(a, alice, "http://stranger.test/p/1", "http://stranger.test/users/x") is None
    for x in trio:
        await deliver_all(x)


async def test_receipts_between_instances_are_byte_identical_in_both_logs(trio):
    a, b, c = trio
    await _interactions(trio)
    leaves = {x.domain: await log_leaves(x) for x in trio}
    assert len(leaves[a.domain]) == 4 and len(leaves[b.domain]) == 3 and len(leaves[c.domain]) == 1
    assert set(leaves[b.domain]) <= set(leaves[a.domain]) and set(leaves[c.domain]) <= set(leaves[a.domain])
    assert set(leaves[a.domain]) == set(leaves[b.domain]) | set(leaves[c.domain])
    for leaf in leaves[a.domain]:
        assert len(parse_note(leaf).signatures) == 2
    state = await b.pool.fetch("SELECT state, log_index FROM rewards_receipt_deliveries")
    assert {r["state"] for r in state} == {"delivered"}


async def test_checkpoints_are_published_only_with_a_quorum_of_cosignatures(trio):
    a, b, c = trio
    await _interactions(trio)
    assert await publish_live(a)
    published = bytes(await a.pool.fetchval("SELECT published_checkpoint FROM rewards_log_state"))
    witnessed = verify_checkpoint(published, a.ctx.policy())
    assert set(witnessed.cosigned_at) == {b.domain, c.domain}
    assert witnessed.checkpoint.size == 4
    await c.server.close()  # one witness down: quorum 2 cannot be met
    alice = await a.pool.fetchval("SELECT uri FROM actors WHERE username = 'alice'")
    bobs_post = await b.pool.fetchval("SELECT uri FROM objects LIMIT 1")
    bob = await b.pool.fetchval("SELECT uri FROM actors WHERE username = 'bob'")
    assert await interact(a, alice, bobs_post, bob, "announce")
    await deliver_all(a)
    assert not await publish_live(a)
    state = await a.pool.fetchrow("SELECT tree_size, signed_size, published_size FROM rewards_log_state")
    assert (state["tree_size"], state["signed_size"], state["published_size"]) == (5, 5, 4)


async def test_verify_succeeds_against_each_instance_and_folds_points(trio):
    a, b, c = trio
    await _interactions(trio)
    for x in trio:
        assert await publish_live(x)
    report = await _verify(b, a)
    alice = await a.pool.fetchval("SELECT uri FROM actors WHERE username = 'alice'")
    bob = await b.pool.fetchval("SELECT uri FROM actors WHERE username = 'bob'")
    assert report.size == 4 and report.receipts == 4
    assert report.totals == {alice: 1 + 3 + 2, bob: 1}
    assert set(report.cosigned_by) == {b.domain, c.domain}
    for verifier in trio:
        for target in trio:
            await _verify(verifier, target)


async def _rebuild(x: LiveInstance, keep: int, extra: list[bytes]) -> None:
    """What a dishonest operator with database access might do: cut the log and re-grow it."""
    async with x.pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM rewards_receipts WHERE idx >= $1", keep)
        await conn.execute("DELETE FROM rewards_log_entries WHERE idx >= $1", keep)
        await conn.execute("DELETE FROM rewards_log_tiles")
        await conn.execute("UPDATE rewards_log_seq SET next_index = $1", keep)
        await conn.execute("""UPDATE rewards_log_state SET tree_size = 0, tree_root = sha256(''::bytea),
                              signed_size = NULL, signed_checkpoint = NULL, published_size = NULL,
                              published_checkpoint = NULL""")
        if extra:
            await append_entries(conn, extra)
    async with x.pool.acquire() as conn:
        await integrate_all(conn, EdgeCache())
        state = await sign_checkpoint(conn, x.ctx.keys)
    async with x.pool.acquire() as conn:
        await set_published(conn, state.signed_size, state.signed_checkpoint)  # no witness would cosign this


async def test_rewriting_an_entry_in_the_database_fails_verification(trio):
    a, b, c = trio
    await _interactions(trio)
    assert await publish_live(a)
    leaf = bytes(await a.pool.fetchval("SELECT leaf FROM rewards_log_entries WHERE idx = 1"))
    tampered = re.sub(rb"\npoints -?[0-9]+\n", b"\npoints 99\n", leaf)
    assert tampered != leaf
    await a.pool.execute("UPDATE rewards_log_entries SET leaf = $1 WHERE idx = 1", tampered)
    with pytest.raises(VerifyFailure, match="the log was rewritten"):
        await _verify(b, a)


async def test_truncating_or_regrowing_the_log_fails_verification(trio):
    a, b, c = trio
    await _interactions(trio)
    assert await publish_live(a)
    seen = (await _verify(b, a)).head()
    leaves = await log_leaves(a)
    await _rebuild(a, 2, [])
    with pytest.raises(VerifyFailure, match="quorum"):  # no witness cosigns a rolled-back log
        await _verify(b, a, seen)
    with pytest.raises(VerifyFailure, match="truncated: checkpoint size 2 is smaller than the 4 seen before"):
        await _verify(b, a, seen, lax=True)
    await _rebuild(a, 2, [leaves[3], leaves[2]])  # same size, another history
    with pytest.raises(VerifyFailure, match="forked: two checkpoints of size 4"):
        await _verify(b, a, seen, lax=True)
    await _rebuild(a, 2, [leaves[3], leaves[2], leaves[0]])  # grown, but not from what b saw
    with pytest.raises(VerifyFailure, match="rewritten: its first 4 entries"):
        await _verify(b, a, seen, lax=True)


async def test_monitor_raises_an_alert_when_a_member_log_is_rewritten(trio, caplog):
    a, b, c = trio
    await _interactions(trio)
    assert await publish_live(a)
    async with http_session(b.settings) as session:
        await monitor_member(b.ctx, b.pool, session, a.ctx.keys.origin, f"{a.url}/rewards/log")
        assert await b.pool.fetchval("SELECT size FROM rewards_peer_heads") == 4
        leaves = await log_leaves(a)
        await _rebuild(a, 0, [leaves[1], leaves[0], leaves[2], leaves[3]])  # same size, another history
        # With the quorum policy, the uncosigned fork is refused quietly (it may just be new).
        await monitor_member(b.ctx, b.pool, session, a.ctx.keys.origin, f"{a.url}/rewards/log")
        assert await b.pool.fetchval("SELECT count(*) FROM rewards_alerts") == 0
        # A monitor that needs no cosignatures still catches it from the head it remembers.
        await befriend(b, a, quorum="none")
        await monitor_member(b.ctx, b.pool, session, a.ctx.keys.origin, f"{a.url}/rewards/log")
        await _rebuild(a, 0, [leaves[1], leaves[0], leaves[2], leaves[3], leaves[2]])
        await monitor_member(b.ctx, b.pool, session, a.ctx.keys.origin, f"{a.url}/rewards/log")
    alerts = await b.pool.fetch("SELECT origin, kind, message FROM rewards_alerts ORDER BY id")
    assert [(r["origin"], r["kind"]) for r in alerts] == [(a.ctx.keys.origin, "fork"), (a.ctx.keys.origin, "rewrite")]
    assert await b.pool.fetchval("SELECT count(*) FROM rewards_evidence") == 2
    assert await b.pool.fetchval("SELECT size FROM rewards_peer_heads") == 4  # never moved to a forked head
    logged = [r.getMessage() for r in caplog.records if r.name == "rewards.workers" and r.levelname == "ERROR"]
    assert [f"member log {a.ctx.keys.origin} failed monitoring" in line for line in logged] == [True, True]
    # ... and both are on the admin page of b, for its administrators.
    await create_account(b.pool, b.settings, validate_new_account(username="mira", password="a good password",
                                                                  role="admin"))
    async with aiohttp.ClientSession(base_url=b.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert (await admin_login(browser, "mira", "a good password")).status == 303
        async with browser.get("/admin/rewards/alerts", headers={"Accept-Language": "en"}) as page:
            html = await page.text()
    assert "2 unresolved" in html and html.count(a.ctx.keys.origin) == 2
    assert html.index("log rewritten") < html.index("log forked: two checkpoints of size 4")


async def test_a_restarted_log_catches_witnesses_up_from_their_409_size(trio):
    a, b, c = trio
    await _interactions(trio)
    assert await publish_live(a)  # witnesses now hold size 4
    bob = await b.pool.fetchval("SELECT uri FROM actors WHERE username = 'bob'")
    bobs_post = await b.pool.fetchval("SELECT uri FROM objects LIMIT 1")
    alice = await a.pool.fetchval("SELECT uri FROM actors WHERE username = 'alice'")
    assert await interact(a, alice, bobs_post, bob, "reply")
    await deliver_all(a)
    assert await publish_live(a)  # a fresh Publisher sends old 0, gets 409 "4", resends with a proof from 4
    for witness in (b, c):
        assert await witness.pool.fetchval("SELECT size FROM rewards_witness_state") == 5
    assert await a.pool.fetchval("SELECT count(*) FROM rewards_alerts") == 0
