"""Orders end to end between two instances: placed on B over its HTTP API, accepted by A, known accepted on B.

Setup: two `fedserver run` processes (web and workers, default settings but for loopback
federation) on one PostgreSQL server, each with its own database. A's maker lists a product
with `--stock S` that accepts automatically; B has buyers with OAuth tokens. Then N orders of
one item are POSTed to B's `/api/v1/storefront/orders` (C at a time): each stores the order
and queues an Offer; B's delivery worker signs and POSTs it to A; A's inbox verifies and
stores it; A's inbox worker reserves stock, accepts and queues the Accept; B's worker applies
the Accept. Timing runs from the first POST until every order on B is accepted or rejected.

Printed: placing rate over HTTP, orders per second end to end, and the oversell check: A's
stock never below zero, accepted orders = min(N, S), stock left = S - accepted on A, and B in
agreement with A on every order.

Usage: python bench/orders.py [--orders 1000] [--stock 800] [--concurrency 32] [--buyers 10] [--env K=V]...
Database: see bench/benchdb.py (two databases are created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from fedserver.api.oauth_service import issue_token, register_app  # noqa: E402
from tests.support.instance import Instance, free_port, instance_env  # noqa: E402


def _instance(url: str, root: Path, name: str, settings: dict[str, str]) -> Instance:
    port = free_port()
    (root / name).mkdir(parents=True, exist_ok=True)
    env = instance_env(database_url=url, data_dir=root / name / "data", port=port,
                       extra={"FEDSERVER_LOGGING__ACCESS_LOG": "false", "FEDSERVER_LOGGING__LEVEL": "warning",
                              "FEDSERVER_API__RATE_LIMIT_PER_5MIN": "0", **settings})
    return Instance(port=port, env=env, cwd=root / name, log_path=root / name / "server.log")


def _cli(x: Instance, *args: str) -> str:
    result = x.command(*args)
    if result.returncode != 0:
        raise SystemExit(f"fedserver {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip().splitlines()[-1]


async def _tokens(url: str, names: list[str]) -> list[str]:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        app, _ = await register_app(pool, name="bench", website=None, redirect_uris=["urn:ietf:wg:oauth:2.0:oob"],
                                    scopes=("read", "write"))
        async with pool.acquire() as conn:
            ids = {r["username"]: r["id"] for r in await conn.fetch(
                "SELECT id, username FROM actors WHERE is_local AND username = ANY($1::text[])", names)}
            return [(await issue_token(conn, app, ids[name], ("read", "write"))).access_token for name in names]
    finally:
        await pool.close()


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _place(b: Instance, tokens: list[str], listing: str, n: int, concurrency: int) -> tuple[int, float]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            async with session.post(f"{b.base_url}/api/v1/storefront/orders", headers=headers,
                                    json={"listing": listing, "quantity": 1}) as response:
                await response.read()
                failures += response.status != 200

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return failures, time.perf_counter() - started


async def bench(args: argparse.Namespace, admin_url: str) -> None:
    urls = [await create_database(admin_url) for _ in range(2)]
    with tempfile.TemporaryDirectory(prefix="fedbench-orders-") as tmp:
        settings = dict(item.split("=", 1) for item in args.env)
        a, b = (_instance(url, Path(tmp), name, settings) for url, name in zip(urls, "ab"))
        try:
            for x in (a, b):
                await asyncio.to_thread(x.start)
            await asyncio.to_thread(_cli, a, "account", "create", "maker")
            listing = await asyncio.to_thread(_cli, a, "product", "create", "maker", "--title", "bench cup",
                                              "--price", "10000", "--stock", str(args.stock))
            names = [f"buyer{i}" for i in range(args.buyers)]
            for name in names:
                await asyncio.to_thread(_cli, b, "account", "create", name)
            tokens = await _tokens(urls[1], names)
            # The first order fetches the listing from A; the timed ones find it known.
            first_failures, _ = await _place(b, tokens, listing, 1, 1)
            started = time.perf_counter()
            failures, placing = await _place(b, tokens, listing, args.orders, args.concurrency)
            answered_sql = "SELECT count(*) FROM orders WHERE state IN ('accepted', 'rejected')"
            total = args.orders + 1
            while await _count(urls[1], answered_sql) < total - failures - first_failures:
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"not every order was answered within {args.timeout} s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            await _report(args, urls, total, failures + first_failures, placing, elapsed)
        finally:
            for x in (a, b):
                x.kill()
    for url in urls:
        await drop_database(admin_url, url)


async def _report(args, urls, total: int, failures: int, placing: float, elapsed: float) -> None:
    a_url, b_url = urls
    accepted_a = await _count(a_url, "SELECT count(*) FROM orders WHERE state = 'accepted'")
    accepted_b = await _count(b_url, "SELECT count(*) FROM orders WHERE state = 'accepted'")
    stock = await _count(a_url, "SELECT stock FROM listings")
    reserved = await _count(a_url, "SELECT coalesce(sum(reserved), 0) FROM orders")
    disagree = await _count(b_url, "SELECT count(*) FROM orders WHERE state NOT IN ('accepted', 'rejected')")
    print(f"orders between two instances on one machine ({args.concurrency} API requests at a time, "
          f"{args.buyers} buyers, stock {args.stock})")
    print(f"  placed on B over HTTP:  {args.orders:,} in {placing:.2f} s ({args.orders / placing:,.0f}/s), "
          f"refused by the API: {failures}")
    print(f"  end to end (placed on B, accepted on A, known on B): {total - failures:,} in {elapsed:.2f} s "
          f"= {(total - failures) / elapsed:,.0f} orders/s")
    expected = min(total - failures, args.stock)
    ok = stock >= 0 and accepted_a == expected == accepted_b and stock == args.stock - accepted_a \
        and reserved == accepted_a and disagree == 0
    print(f"  oversell check: accepted on A {accepted_a}, on B {accepted_b}, expected {expected}; "
          f"stock left {stock} (of {args.stock}), reserved {reserved}: {'ok' if ok else 'FAILED'}")
    print(f"  target >= 200 orders/s: {'met' if (total - failures) / elapsed >= 200 else 'not met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--stock", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--buyers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--env", action="append", default=[], metavar="FEDSERVER_X=VALUE",
                        help="a setting for both instances, e.g. FEDSERVER_DATABASE__POOL_MAX_SIZE=20")
    args = parser.parse_args()
    with database_server() as admin_url:
        asyncio.run(bench(args, admin_url))


if __name__ == "__main__":
    main()
