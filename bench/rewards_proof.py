"""Inclusion-proof latency from the tile store at 10^6 entries (server side and over HTTP).

Run: .venv/bin/python bench/rewards_proof.py [entries] [proofs]
Database: see bench/benchdb.py. Builds the log
quickly: COPY of ~300-byte entries, then the real integrator (rewards.integrator, in
batches) writes the tiles and root; a checkpoint is signed and published (quorum
none). Then times `plan_hashes` (one tile query + hashing, as GET /rewards/proof
does) and the whole HTTP GET /rewards/proof/<i> on a local server, sequentially, for
random indices; every proof is verified. Prints build rates and p50/p99 latencies.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time

import aiohttp
import asyncpg
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from bench.rewards_append import percentile  # noqa: E402
from fedserver.app import create_app  # noqa: E402
from fedserver.config import load_settings  # noqa: E402
from fedserver.db import init_connection  # noqa: E402
from rewards.checkpoint import parse_tlog_proof, peek_checkpoint  # noqa: E402
from rewards.context import load_context  # noqa: E402
from rewards.integrator import EdgeCache, integrate_batch, sign_checkpoint  # noqa: E402
from rewards.logstore import get_state, plan_hashes  # noqa: E402
from rewards.merkle import inclusion_plan, leaf_hash, verify_inclusion  # noqa: E402
from rewards.publisher import Publisher  # noqa: E402
from tests.support.instance import free_port  # noqa: E402

ENTRY = 300


async def build(conn: asyncpg.Connection, count: int) -> tuple[float, float]:
    """COPY `count` entries, then integrate them; returns (copy seconds, integrate seconds)."""
    started = time.perf_counter()
    chunk = 100_000
    for begin in range(0, count, chunk):
        records = [(i, i.to_bytes(8, "big") * (ENTRY // 8)) for i in range(begin, min(count, begin + chunk))]
        await conn.copy_records_to_table("rewards_log_entries", records=records, columns=["idx", "leaf"])
    await conn.execute("UPDATE rewards_log_seq SET next_index = $1", count)
    copied = time.perf_counter() - started
    started = time.perf_counter()
    cache = EdgeCache()
    while await integrate_batch(conn, cache, limit=65_536):
        pass
    return copied, time.perf_counter() - started


async def server_side(conn: asyncpg.Connection, size: int, root: bytes, samples: int) -> list[float]:
    """Latency of computing an inclusion proof from the tiles (what the endpoint does)."""
    out = []
    for index in random.Random(1).sample(range(size), samples):
        started = time.perf_counter()
        path = await plan_hashes(conn, inclusion_plan(index, size), size)
        out.append(time.perf_counter() - started)
        leaf = index.to_bytes(8, "big") * (ENTRY // 8)
        assert verify_inclusion(index, size, leaf_hash(leaf), path, root)
    return out


async def over_http(base: str, size: int, root: bytes, samples: int) -> list[float]:
    """Latency of GET /rewards/proof/<i>, one request at a time."""
    out = []
    async with aiohttp.ClientSession() as session:
        for index in random.Random(2).sample(range(size), samples):
            started = time.perf_counter()
            async with session.get(f"{base}/rewards/proof/{index}") as response:
                body = await response.read()
            out.append(time.perf_counter() - started)
            proof = parse_tlog_proof(body)
            leaf = index.to_bytes(8, "big") * (ENTRY // 8)
            assert verify_inclusion(index, size, leaf_hash(leaf), list(proof.path), root)
    return out


def report(name: str, values: list[float]) -> None:
    print(f"{name}: p50 {percentile(values, .5) * 1000:.2f} ms, p99 {percentile(values, .99) * 1000:.2f} ms "
          f"({len(values)} proofs)")


async def main(admin: str, count: int, samples: int) -> None:
    db = await create_database(admin)
    port = free_port()
    settings = load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{port}", "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_DATABASE__URL": db, "FEDSERVER_STORAGE__DATA_DIR": tempfile.mkdtemp(prefix="proof-bench-"),
    })
    pool = await asyncpg.create_pool(db, min_size=1, max_size=4, init=init_connection)
    runner = None
    try:
        async with pool.acquire() as conn:
            copied, integrated = await build(conn, count)
            ctx = await load_context(pool, settings)
            state = await sign_checkpoint(conn, ctx.keys)
        assert await Publisher(ctx).publish(pool, None, state)  # type: ignore[arg-type]
        async with pool.acquire() as conn:
            state = await get_state(conn)
            tiles = await conn.fetchval("SELECT pg_total_relation_size('rewards_log_tiles')")
        root = peek_checkpoint(state.published_checkpoint or b"").root
        print(f"built {count:,} entries: COPY {count / copied:,.0f}/s, integration {count / integrated:,.0f}/s "
              f"({integrated:.1f} s); tiles table {tiles / 2**20:.1f} MiB ({tiles / count:.0f} B/entry)")
        async with pool.acquire() as conn:
            report("server side (tile query + hashing)", await server_side(conn, count, root, samples))
        runner = web.AppRunner(create_app(settings, pool), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        report("HTTP GET /rewards/proof/<i>", await over_http(settings.base_url, count, root, samples))
        print("target: p99 < 5 ms at 10^6 entries")
    finally:
        if runner is not None:
            await runner.cleanup()
        await pool.close()
        await drop_database(admin, db)
        shutil.rmtree(settings.storage.data_dir, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    s = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with database_server() as admin_url:
        asyncio.run(main(admin_url, n, s))
