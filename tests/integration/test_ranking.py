"""The open ranking with three real `fedserver run` processes witnessing each other (quorum 2).

Receipts come from real likes, shares and replies through the command line. Two instances serve
byte-identical rankings from the same checkpoints; `rewards rank --at FILE` reproduces a saved
answer on another instance, still after a later receipt has grown the logs.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from rewards.checkpoint import peek_checkpoint
from tests.support.instance import Instance, running_instances

pytestmark = pytest.mark.slow

FAST = {"FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1"}


@pytest.fixture
async def cluster(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "abc", FAST) as instances:
        for x in instances:
            others = [y for y in instances if y is not x]
            for y, quorum in zip(others, ([], ["--quorum", "2"])):
                result = await asyncio.to_thread(x.command, "rewards", "peer", "add", y.base_url, *quorum)
                assert result.returncode == 0, result.stderr
        yield instances


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout.strip().splitlines()[-1]


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def _wait_for_sizes(session: aiohttp.ClientSession, expected: dict[str, int]) -> None:
    """Until every log's published (cosigned) checkpoint has the expected size."""
    sizes: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for base in expected:
            status, body = await _get(session, f"{base}/rewards/log/checkpoint")
            sizes[base] = peek_checkpoint(body).size if status == 200 else -1
        if sizes == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"published sizes {sizes}, expected {expected}")


async def test_two_instances_rank_byte_identically_and_a_saved_ranking_is_reproduced(cluster, tmp_path):
    a, b, c = cluster
    posts = {}
    for x, name in zip(cluster, ("alice", "bob", "carol")):
        await _run(x, "account", "create", name)
        posts[name] = await _run(x, "post", name, f"{name}의 새 작품")
    await _run(b, "like", "bob", posts["alice"])
    await _run(c, "announce", "carol", posts["alice"])
    await _run(a, "like", "alice", posts["bob"])
    await _run(c, "post", "carol", "어디서 사나요?", "--reply-to", posts["bob"])
    async with aiohttp.ClientSession() as session:
        # Policy 2: carol's share and reply also issue her curation receipts (which the ranking does not count).
        await _wait_for_sizes(session, {a.base_url: 4, b.base_url: 4, c.base_url: 4})
        status, from_a = await _get(session, f"{a.base_url}/rewards/ranking?kind=posts&window=7d")
        assert status == 200, from_a
        status, from_b = await _get(session, f"{b.base_url}/rewards/ranking?kind=posts&window=7d")
        assert status == 200, from_b
        assert from_a == from_b  # the same checkpoints: the same bytes
        saved = json.loads(from_a)
        assert {(h["url"], h["size"]) for h in saved["logs"]} == {
            (f"{a.base_url}/rewards/log", 4), (f"{b.base_url}/rewards/log", 4), (f"{c.base_url}/rewards/log", 4)}
        assert {e["object"] for e in saved["ranking"]} == {posts["alice"], posts["bob"]}
        assert all(e["actors"] == 2 and e["score"] > 0 for e in saved["ranking"])
        status, makers = await _get(session, f"{c.base_url}/rewards/ranking?kind=makers")
        assert status == 200 and json.loads(makers)["window"] == "7d"
        assert {e["maker"] for e in json.loads(makers)["ranking"]} == {f"{a.base_url}/users/alice",
                                                                       f"{b.base_url}/users/bob"}
        status, policy = await _get(session, f"{a.base_url}/rewards/policy")
        assert json.loads(policy)["ranking"]["version"] == saved["formula"]["version"] == 1

        file = tmp_path / "ranking.json"
        file.write_bytes(from_a)
        again = await asyncio.to_thread(c.command, "rewards", "rank", "--at", str(file))
        assert again.returncode == 0, again.stderr
        assert again.stdout.encode() == from_a
        cli = await asyncio.to_thread(b.command, "rewards", "rank", "--kind", "posts", "--window", "7d", "--json")
        assert cli.returncode == 0 and cli.stdout.encode() == from_a

        # A receipt after the saved checkpoints: the live ranking moves on, the saved one does not.
        await _run(b, "like", "bob", posts["carol"])
        await _wait_for_sizes(session, {a.base_url: 4, b.base_url: 5, c.base_url: 5})
        status, later = await _get(session, f"{a.base_url}/rewards/ranking?kind=posts&window=7d")
        assert status == 200 and later != from_a and posts["carol"] in later.decode()
    for x in (b, c):
        replay = await asyncio.to_thread(x.command, "rewards", "rank", "--at", str(file))
        assert replay.returncode == 0, replay.stderr
        assert replay.stdout.encode() == from_a


async def test_unknown_kinds_windows_and_a_tampered_saved_ranking_are_refused(cluster, tmp_path):
    a, b, _ = cluster
    async with aiohttp.ClientSession() as session:
        for query in ("kind=trending", "kind=posts&window=2d", "window=7d", "kind=products&window=ALL"):
            async with session.get(f"{a.base_url}/rewards/ranking?{query}") as response:
                assert response.status == 400, query
                assert "kind" in (await response.json())["error"] or "window" in (await response.json())["error"]
        await _wait_for_sizes(session, {a.base_url: 0})
        status, body = await _get(session, f"{a.base_url}/rewards/ranking?kind=products&window=all")
        assert status == 200 and json.loads(body)["ranking"] == []
    refused = await asyncio.to_thread(a.command, "rewards", "rank", "--kind", "posts", "--window", "2d")
    assert refused.returncode == 1 and "unknown ranking window '2d'" in refused.stderr
    refused = await asyncio.to_thread(a.command, "rewards", "rank", "--kind", "likes")
    assert refused.returncode == 1 and "unknown ranking kind 'likes'" in refused.stderr
    saved = json.loads(body)
    own = next(h for h in saved["logs"] if h["url"] == f"{a.base_url}/rewards/log")
    own["root"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    tampered = Path(tmp_path / "tampered.json")
    tampered.write_text(json.dumps(saved))
    result = await asyncio.to_thread(b.command, "rewards", "rank", "--at", str(tampered))
    assert result.returncode == 1 and "cannot recompute" in result.stderr and own["origin"] in result.stderr
    missing = await asyncio.to_thread(b.command, "rewards", "rank", "--at", str(tmp_path / "nothing.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
