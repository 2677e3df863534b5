"""Rewards with real `fedserver run` processes: three witnessing members, and kill -9 during appends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from rewards.merkle import leaf_hash, root_from_leaf_hashes
from rewards.policy import parse_policy, verify_checkpoint
from rewards.store import upsert_member
from rewards.tiles import TILE_WIDTH, decode_entry_bundle
from tests.support.instance import Instance, named_instance, running_instances
from tests.support.rewards import FakeMember

pytestmark = pytest.mark.slow

FAST = {"FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1"}


@pytest.fixture
async def cluster(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "abc", FAST) as instances:
        yield instances


async def _sql(x: Instance, query: str, *args):
    conn = await asyncpg.connect(x.env["FEDSERVER_DATABASE__URL"])
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout.strip().splitlines()[-1]


async def _account_with_post(x: Instance, name: str) -> tuple[str, str]:
    await _run(x, "account", "create", name)
    return f"{x.base_url}/users/{name}", await _run(x, "post", name, f"{name}의 첫 작품")


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def _entries(session: aiohttp.ClientSession, x: Instance, size: int) -> list[bytes]:
    out: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        status, body = await _get(session, f"{x.base_url}/rewards/log/tile/entries/{n:03d}{suffix}")
        assert status == 200
        out += decode_entry_bundle(body)
    return out


async def _published_size(session: aiohttp.ClientSession, x: Instance, policy) -> tuple[int, bytes]:
    status, body = await _get(session, f"{x.base_url}/rewards/log/checkpoint")
    if status != 200:
        return -1, b""
    return verify_checkpoint(body, policy).checkpoint.size, body


async def test_three_members_witness_each_other_and_verify(cluster):
    a, b, c = cluster
    for x in cluster:
        others = [y for y in cluster if y is not x]
        for y, quorum in zip(others, ([], ["--quorum", "2"])):
            result = await asyncio.to_thread(x.command, "rewards", "peer", "add", y.base_url, *quorum)
            assert result.returncode == 0, result.stderr
    policies = {x.port: parse_policy((Path(x.env["FEDSERVER_STORAGE__DATA_DIR"]) / "rewards-policy.txt").read_text())
                for x in cluster}
    shown = await asyncio.to_thread(a.command, "rewards", "policy")
    assert shown.returncode == 0 and "quorum members" in shown.stdout and "group members 2" in shown.stdout
    alice, alices_post = await _account_with_post(a, "alice")
    bob, bobs_post = await _account_with_post(b, "bob")
    carol, carols_post = await _account_with_post(c, "carol")
    # Real interactions through the command line: each one issues its receipt in its own transaction.
    await _run(b, "like", "bob", alices_post)
    await _run(b, "post", "bob", "멋진 작품이네요", "--reply-to", alices_post)
    await _run(c, "announce", "carol", alices_post)
    await _run(a, "like", "alice", bobs_post)
    await _run(a, "post", "alice", "감사합니다", "--reply-to", carols_post)
    await _run(c, "like", "carol", bobs_post)
    issued = [row["receipt_id"] for x in cluster
              for row in await _sql(x, "SELECT receipt_id FROM rewards_receipt_deliveries")]
    assert len(issued) == 9  # policy 2: each reply and share also issues the curator's receipt
    expected = {a.port: 8, b.port: 5, c.port: 5}
    seen_checkpoints: set[bytes] = set()
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sizes = {}
            for x in cluster:
                size, body = await _published_size(session, x, policies[x.port])
                sizes[x.port] = size
                if size > 0:
                    seen_checkpoints.add(body)
            if sizes == expected:
                break
            await asyncio.sleep(0.2)
        assert sizes == expected, [x.log() for x in cluster]
        logs = {x.port: await _entries(session, x, expected[x.port]) for x in cluster}
    for checkpoint in seen_checkpoints:  # every published checkpoint carries the quorum, for every member's policy
        for policy in policies.values():
            assert len(verify_checkpoint(checkpoint, policy).cosigned_at) >= 2
    rows = await _sql(b, "SELECT receipt_id FROM rewards_receipt_deliveries WHERE state = 'delivered'")
    assert len(rows) == 3
    # Each receipt sits, byte for byte, in the issuer's and the beneficiary's logs, and nowhere else.
    for rid in issued:
        copies = [leaf for x in cluster for leaf in logs[x.port] if f"\nid {rid}\n".encode() in leaf]
        assert len(copies) == 2 and copies[0] == copies[1], rid
    for x in cluster:
        for y in cluster:
            result = await asyncio.to_thread(x.command, "rewards", "verify", y.base_url)
            assert result.returncode == 0, (x.port, y.port, result.stderr)
            assert "both signatures verified" in result.stdout
    totals = await asyncio.to_thread(b.command, "rewards", "verify", a.base_url)
    assert f"{1 + 3 + 2 + 1:>8}  {alice}" in totals.stdout  # and 1, her curation share of her reply to carol
    assert await _sql(a, "SELECT * FROM rewards_alerts") == []


async def test_kill_9_during_a_burst_of_appends_keeps_indices_contiguous(db_url, tmp_path):
    x = named_instance(db_url, tmp_path, "k", FAST)
    peer = FakeMember.create("peer.test")
    conn = await asyncpg.connect(db_url)
    await upsert_member(conn, peer.domain, "https://peer.test", peer.vkeys())
    await conn.close()
    x.start()
    try:
        alice, post = await _account_with_post(x, "alice")
        bodies = [peer.sign(peer.receipt(actor=f"https://peer.test/users/u{i}", obj=post, beneficiary=alice))
                  for i in range(3000)]  # many actors: the daily cap is per actor
        acknowledged: dict[int, bytes] = {}
        statuses: list[int] = []

        async def send(session: aiohttp.ClientSession, body: bytes) -> None:
            try:
                async with session.post(f"{x.base_url}/rewards/receipts", data=body) as response:
                    statuses.append(response.status)
                    if response.status == 200:
                        answer = await response.json()
                        acknowledged[answer["index"]] = body + answer["countersignature"].encode()
            except (aiohttp.ClientError, OSError):
                pass

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            tasks = [asyncio.create_task(send(session, body)) for body in bodies]
            deadline = time.monotonic() + 60
            while len(acknowledged) < 300 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(acknowledged) >= 300, (sorted(set(statuses)), x.log())
            x.kill()  # SIGKILL in the middle of the burst
            await asyncio.gather(*tasks)
        rows = await _sql(x, "SELECT idx, leaf FROM rewards_log_entries ORDER BY idx")
        assert [r["idx"] for r in rows] == list(range(len(rows)))
        assert len(rows) < len(bodies)
        stored = {r["idx"]: bytes(r["leaf"]) for r in rows}
        assert all(stored[i] == leaf for i, leaf in acknowledged.items())  # acknowledged means durable
        state = (await _sql(x, "SELECT * FROM rewards_log_state"))[0]
        assert (state["published_size"] or 0) <= state["tree_size"] <= len(rows)
        x.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = (await _sql(x, "SELECT * FROM rewards_log_state"))[0]
            if state["published_size"] == len(rows):
                break
            await asyncio.sleep(0.2)
        assert state["published_size"] == len(rows)
        assert bytes(state["tree_root"]) == root_from_leaf_hashes([leaf_hash(stored[i]) for i in range(len(rows))])
        result = await asyncio.to_thread(x.command, "rewards", "verify", x.base_url)
        assert result.returncode == 0, result.stderr
        assert f"{len(rows)} receipts" in result.stdout
        await _sql(x, "UPDATE rewards_log_entries SET leaf = $1 WHERE idx = 7", stored[7].replace(b"like", b"reply"))
        tampered = await asyncio.to_thread(x.command, "rewards", "verify", x.base_url)
        assert tampered.returncode == 2
        assert "FAILED" in tampered.stderr and "the log was rewritten" in tampered.stderr
    finally:
        x.kill()
