"""Receipts appended per second, end to end, on one `fedserver run` instance.

Run: .venv/bin/python bench/rewards_append.py [receipts] [concurrency]
Database: see bench/benchdb.py (a database is created and dropped on the server).
Starts a real `fedserver run` (quorum none: checkpoints publish at once), pins a simulated member, then POSTs pre-signed
receipts to /rewards/receipts over HTTP keep-alive. Each request is parsed, the
issuer's Ed25519 signature verified, the points/ownership/duplicate/cap checks run,
the receipt countersigned and appended (group commit: one transaction per batch,
synchronous_commit on). Prints accepted receipts/s, latency percentiles, the mean
batch size and the time until a published checkpoint covers every receipt.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from rewards.store import upsert_member  # noqa: E402
from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from tests.support.instance import Instance, free_port, instance_env  # noqa: E402
from tests.support.rewards import FakeMember  # noqa: E402


async def prepare(instance: Instance, peer: FakeMember, count: int) -> list[bytes]:
    """Account, post, pinned member; then `count` signed receipts from distinct actors."""
    result = instance.command("account", "create", "alice")
    assert result.returncode == 0, result.stderr
    alice = f"{instance.base_url}/users/alice"
    post = f"{alice}/statuses/1"
    conn = await asyncpg.connect(instance.env["FEDSERVER_DATABASE__URL"])
    await conn.execute("""INSERT INTO objects (uri, object_type, actor_id, is_local, content)
                          SELECT $1, 'Note', id, true, 'x' FROM actors WHERE uri = $2""", post, alice)
    await upsert_member(conn, peer.domain, "https://peer.test", peer.vkeys())
    await conn.close()
    return [peer.sign(peer.receipt(actor=f"https://peer.test/users/u{i}", obj=post, beneficiary=alice))
            for i in range(count)]


async def fire(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """POST every body with `concurrency` requests in flight; returns (seconds, latencies, failures)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            async with session.post(url, data=body) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


async def wait_published(db: str, size: int, timeout: float = 60) -> float:
    """Seconds until the published checkpoint covers `size` entries."""
    conn = await asyncpg.connect(db)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            if (await conn.fetchval("SELECT published_size FROM rewards_log_state") or 0) >= size:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
        return float("nan")
    finally:
        await conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def main(admin: str, count: int, concurrency: int) -> None:
    db = await create_database(admin)
    tmp = Path(tempfile.mkdtemp(prefix="rewards-bench-"))
    port = free_port()
    env = instance_env(database_url=db, data_dir=tmp / "data", port=port,
                       extra={"FEDSERVER_LOGGING__ACCESS_LOG": "false", "FEDSERVER_LOGGING__LEVEL": "warning",
                              "FEDSERVER_DATABASE__POOL_MAX_SIZE": "20"})
    instance = Instance(port=port, env=env, cwd=tmp, log_path=tmp / "server.log")
    try:
        instance.start()
        bodies = await prepare(instance, FakeMember.create("peer.test"), count + 500)
        await fire(f"{instance.base_url}/rewards/receipts", bodies[:500], concurrency)  # warm-up
        seconds, latencies, failures = await fire(f"{instance.base_url}/rewards/receipts", bodies[500:], concurrency)
        to_publish = await wait_published(db, count + 500)
        conn = await asyncpg.connect(db)
        size = await conn.fetchval("SELECT next_index FROM rewards_log_seq")
        await conn.close()
        print(f"receipts: {count} over HTTP, {concurrency} in flight, {os.cpu_count()} CPUs (server, PostgreSQL "
              "and this load generator share them)")
        print(f"accepted: {count - failures} ({failures} refused); log size {size}")
        print(f"throughput: {count / seconds:,.0f} receipts/s end to end ({seconds:.2f} s)")
        print(f"latency: p50 {percentile(latencies, .5) * 1000:.1f} ms, p99 {percentile(latencies, .99) * 1000:.1f} ms,"
              f" mean {statistics.mean(latencies) * 1000:.1f} ms")
        print(f"published checkpoint covered every receipt {to_publish:.2f} s after the last answer")
        print(f"target >= 1,000 receipts/s: ratio {count / seconds / 1000:.2f}x")
    finally:
        instance.kill()
        await drop_database(admin, db)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    with database_server() as admin_url:
        asyncio.run(main(admin_url, n, c))
