"""Policy v2 between live instances: curation receipts, same-instance receipts, the budget, the member quota."""

from __future__ import annotations

import contextlib

import aiohttp
import pytest

from fedserver.accounts import create_account, validate_new_account
from fedserver.app import build_publisher
from fedserver.federation import commands
from fedserver.net.http import HttpClient
from rewards.client import LogClient
from rewards.context import http_session, token_policy
from rewards.note import parse_note
from rewards.receipt import Receipt, parse_receipt
from rewards.verify import verify_log
from rewards.verify_balances import OK, check_balances
from tests.support.rewards import (
    LiveInstance,
    befriend,
    deliver_all,
    interact,
    log_leaves,
    publish_live,
    start_live_instance,
    stop_live_instance,
)

# Points settle at once; a like is worth 4 so that the same-instance weight (50%) shows.
V2 = {"FEDSERVER_REWARDS__SETTLEMENT_SECONDS": "0", "FEDSERVER_REWARDS__POINTS_LIKE": "4"}


@contextlib.asynccontextmanager
async def _pair(pg_cluster, tmp_path, a_env: dict[str, str] | None = None):
    """a: alice's instance (the author's); b: bob's. Each witnesses the other (quorum 1)."""
    a = await start_live_instance(pg_cluster, tmp_path, "a", {**V2, **(a_env or {})})
    b = await start_live_instance(pg_cluster, tmp_path, "b", V2)
    try:
        await befriend(a, b, quorum="1")
        await befriend(b, a, quorum="1")
        yield a, b
    finally:
        for x in (a, b):
            await stop_live_instance(pg_cluster, x)


@pytest.fixture
async def pair(pg_cluster, tmp_path):
    async with _pair(pg_cluster, tmp_path) as instances:
        yield instances


def _receipts(leaves: list[bytes]) -> list[tuple[Receipt, list[str]]]:
    """Each leaf's receipt and the names of its signatures."""
    return [(parse_receipt(parse_note(leaf).text), [s.name for s in parse_note(leaf).signatures]) for leaf in leaves]


async def _balance(x: LiveInstance, name: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"{x.url}/rewards/balance/{name}") as response:
        assert response.status == 200
        return await response.json()


async def _verify(verifier: LiveInstance, target: LiveInstance):
    keys = {m.domain: m.receipts for m in (await verifier.ctx.members(verifier.pool, fresh=True)).values()}
    keys[verifier.ctx.keys.domain] = verifier.ctx.keys.receipts_verifier()
    async with http_session(verifier.settings) as session:
        return await verify_log(LogClient(session, f"{target.url}/rewards/log"), verifier.ctx.policy(), keys, None)


async def _deliver_everything(x: LiveInstance) -> None:
    while await deliver_all(x):
        pass


async def test_share_and_reply_earn_the_author_and_the_curator_and_a_local_like_is_weighted(pair):
    a, b = pair
    alice = (await create_account(a.pool, a.settings, validate_new_account(username="alice"))).uri
    amy = (await create_account(a.pool, a.settings, validate_new_account(username="amy"))).uri
    bob = (await create_account(b.pool, b.settings, validate_new_account(username="bob"))).uri
    post = await commands.create_post(a.pool, build_publisher(a.settings), "alice", "새 찻잔을 구웠어요")
    async with HttpClient(b.settings) as http:
        await commands.like(b.pool, build_publisher(b.settings), http, "bob", post)
        await commands.announce(b.pool, build_publisher(b.settings), http, "bob", post)
    await commands.create_post(b.pool, build_publisher(b.settings), "bob", "멋진 찻잔이네요", in_reply_to=post)
    await commands.like(a.pool, build_publisher(a.settings), None, "amy", post)  # two accounts of a
    await _deliver_everything(b)

    theirs, ours = _receipts(await log_leaves(a)), _receipts(await log_leaves(b))
    earned = {(r.kind, r.actor, r.beneficiary, r.points) for r, _ in theirs}
    assert earned == {("like", bob, alice, 4), ("announce", bob, alice, 2), ("curate-share", bob, bob, 1),
                      ("reply", bob, alice, 3), ("curate-reply", bob, bob, 1), ("like", amy, alice, 2)}
    assert all(r.policy == 2 and r.author == alice for r, _ in theirs)  # every receipt names author and curator
    a_key, b_key = a.ctx.keys.receipts.name, b.ctx.keys.receipts.name
    for receipt, signers in theirs:  # countersigned by a, except the local like: a alone
        assert signers == ([a_key] if receipt.actor == amy else [b_key, a_key])
    assert [r for r, _ in ours] == [r for r, _ in theirs if r.actor == bob]  # b's log: the same 5 receipts
    assert await a.pool.fetchval("SELECT count(*) FROM rewards_receipt_deliveries") == 0  # no delivery for a local one

    assert await publish_live(a) and await publish_live(b)  # each log cosigned by the other (quorum 1)
    shown_alice, shown_bob = await _balance(a, "alice"), await _balance(b, "bob")
    assert (shown_alice["points"], shown_alice["pending"]) == (4 + 2 + 3 + 2, 0)
    assert (shown_bob["points"], shown_bob["pending"]) == (1 + 1, 0)
    assert shown_bob["budget"]["full_endorsements"] in (6, 7)  # three full endorsements spent of ten
    report = await _verify(b, a)
    assert report.size == 6 and report.totals == {alice: 11, bob: 2}
    assert (await _verify(a, b)).totals == {alice: 9, bob: 2}
    for verifier, target in ((b, a), (a, b)):  # `rewards verify URL --balances`: every served balance recomputes
        async with http_session(verifier.settings) as session:
            checks = await check_balances(session, target.url, await _verify(verifier, target),
                                          token_policy(target.settings))
        assert checks and all(c.status == OK for c in checks), [c.as_dict() for c in checks]
    async with aiohttp.ClientSession() as session, session.get(f"{a.url}/rewards/policy") as response:
        published = await response.json()
    assert published["version"] == 2 and published["same_instance_percent"] == 50
    assert published["curation_percent"] == 50 and "same_instance" in published["versions"]["2"]
    assert published["endorsement"]["endorsement_budget"]["full_endorsements_per_day"] == 10

    await commands.unannounce(b.pool, build_publisher(b.settings), "bob", post)
    await _deliver_everything(b)
    undone = [r for r, _ in _receipts(await log_leaves(a))[6:]]
    assert {(r.kind, r.beneficiary, r.points) for r in undone} == {("undo-announce", alice, -2),
                                                                   ("undo-curate-share", bob, -1)}
    assert await publish_live(a) and await publish_live(b)
    # Settlement is immediate here: an undo after the window leaves settled points (and the curator's) as they are.
    assert (await _balance(a, "alice"))["points"] == 11 and (await _balance(b, "bob"))["points"] == 2


async def test_a_hundred_likes_in_a_burst_earn_no_more_than_ten_full_endorsements(pair):
    a, b = pair
    alice = (await create_account(a.pool, a.settings, validate_new_account(username="alice"))).uri
    bob = (await create_account(b.pool, b.settings, validate_new_account(username="bob"))).uri
    actor_id = await a.pool.fetchval("SELECT id FROM actors WHERE uri = $1", alice)
    posts = [f"{alice}/statuses/burst{n}" for n in range(100)]
    await a.pool.executemany(
        "INSERT INTO objects (uri, object_type, actor_id, is_local, content) VALUES ($1, 'Note', $2, true, 'hi')",
        [(p, actor_id) for p in posts])
    for p in posts:
        assert await interact(b, bob, p, alice)
    await _deliver_everything(b)
    likes = [r for r, _ in _receipts(await log_leaves(a))]
    assert len(likes) == 100 and {r.kind for r in likes} == {"like"}
    assert sum(r.points for r in likes) <= 10 * 4 + 4  # ten full likes, and what a few seconds regained
    assert [r.points for r in likes[:10]] == [4] * 10 and sum(r.points for r in likes[10:]) <= 4
    assert await publish_live(b)
    assert (await _balance(b, "bob"))["budget"]["full_endorsements"] == 0


async def test_the_countersigner_holds_each_member_to_its_daily_quota(pg_cluster, tmp_path):
    async with _pair(pg_cluster, tmp_path, {"FEDSERVER_REWARDS__INSTANCE_DAILY_QUOTA": "5"}) as (a, b):
        alice = (await create_account(a.pool, a.settings, validate_new_account(username="alice"))).uri
        bob = (await create_account(b.pool, b.settings, validate_new_account(username="bob"))).uri
        actor_id = await a.pool.fetchval("SELECT id FROM actors WHERE uri = $1", alice)
        posts = [f"{alice}/statuses/q{n}" for n in range(2)]
        await a.pool.executemany(
            "INSERT INTO objects (uri, object_type, actor_id, is_local, content) VALUES ($1, 'Note', $2, true, 'x')",
            [(p, actor_id) for p in posts])
        for p in posts:
            assert await interact(b, bob, p, alice)
        await _deliver_everything(b)
        rows = await b.pool.fetch("SELECT state, last_status, last_error FROM rewards_receipt_deliveries ORDER BY id")
        assert [(r["state"], r["last_status"]) for r in rows] == [("delivered", 200), ("failed", 422)]
        assert "daily quota of 5 points" in rows[1]["last_error"]
        assert [r.points for r, _ in _receipts(await log_leaves(a))] == [4]
