"""Token spends per second, end to end, between two `fedserver run` instances.

Setup: two instances (web and workers, default settings but for loopback federation) on one
PostgreSQL server, members of each other's reward federation. A's maker lists a made-to-order
product with a token price of 1; B has `--buyers` accounts. Each buyer's wallet is credited
directly with what it will spend (minting is measured by the rewards tests, not here).

Timed: N spends issued on B exactly as an order paid in tokens issues them (rewards/spending.py
`issue_spend`: the guarded debit, the signed spend and its queued delivery, one transaction each,
C at a time), B's delivery worker POSTing each to A's `/rewards/spends`, A checking, countersigning
and appending it to its log, and B appending the countersigned bytes to its own log. The clock
stops when every spend is countersigned on B.

Printed: spends/s end to end, the issuing rate, and the check: both logs hold N spends, every
wallet is at zero and none went below it.

Usage: python bench/token_spends.py [--spends 2000] [--buyers 50] [--concurrency 16] [--env K=V]...
Database: see bench/benchdb.py (two databases are created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from bench.orders import _cli, _count, _instance  # noqa: E402
from fedserver.config import load_settings  # noqa: E402
from fedserver.db import init_connection  # noqa: E402
from rewards.spending import issue_spend  # noqa: E402


async def _issue(b_url: str, env: dict[str, str], buyers: list[str], listing: str, seller: str, n: int,
                 concurrency: int) -> float:
    settings = load_settings(environ=env)
    pool = await asyncpg.create_pool(b_url, min_size=concurrency, max_size=concurrency, init=init_connection)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            async with pool.acquire() as conn, conn.transaction():
                await issue_spend(conn, settings, account=buyers[i % len(buyers)],
                                  order=f"{settings.base_url}/orders/bench{i}", listing=listing, seller=seller,
                                  quantity=1, tokens=1)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await pool.close()
    return time.perf_counter() - started


async def bench(args: argparse.Namespace, admin_url: str) -> None:
    urls = [await create_database(admin_url) for _ in range(2)]
    with tempfile.TemporaryDirectory(prefix="fedbench-spends-") as tmp:
        settings = dict(item.split("=", 1) for item in args.env)
        a, b = (_instance(url, Path(tmp), name, settings) for url, name in zip(urls, "ab"))
        try:
            for x in (a, b):
                await asyncio.to_thread(x.start)
            await asyncio.to_thread(_cli, a, "rewards", "peer", "add", b.base_url)
            await asyncio.to_thread(_cli, b, "rewards", "peer", "add", a.base_url)
            await asyncio.to_thread(_cli, a, "account", "create", "maker")
            listing = await asyncio.to_thread(_cli, a, "product", "create", "maker", "--title", "bench cup",
                                              "--price", "10000", "--made-to-order", "--token-price", "1")
            names = [f"buyer{i}" for i in range(args.buyers)]
            for name in names:
                await asyncio.to_thread(_cli, b, "account", "create", name)
            buyers = [f"{b.base_url}/users/{name}" for name in names]
            share = -(-args.spends // args.buyers)
            conn = await asyncpg.connect(urls[1])
            try:
                await conn.executemany("INSERT INTO token_wallets (account_uri, available) VALUES ($1, $2)",
                                       [(buyer, share if i < args.spends % args.buyers or not args.spends % args.buyers
                                         else share - 1) for i, buyer in enumerate(buyers)])
            finally:
                await conn.close()
            started = time.perf_counter()
            issuing = await _issue(urls[1], b.env, buyers, listing, f"{a.base_url}/users/maker", args.spends,
                                   args.concurrency)
            done_sql = "SELECT count(*) FROM token_spends WHERE state = 'countersigned'"
            while await _count(urls[1], done_sql) < args.spends:
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"not every spend was countersigned within {args.timeout} s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            await _report(args, urls, issuing, elapsed)
        finally:
            for x in (a, b):
                x.kill()
    for url in urls:
        await drop_database(admin_url, url)


async def _report(args, urls, issuing: float, elapsed: float) -> None:
    a_url, b_url = urls
    in_a = await _count(a_url, "SELECT count(*) FROM rewards_log_entries WHERE leaf LIKE 'rewards/spend/v1%'")
    in_b = await _count(b_url, "SELECT count(*) FROM rewards_log_entries WHERE leaf LIKE 'rewards/spend/v1%'")
    left = await _count(b_url, "SELECT coalesce(sum(available), 0) FROM token_wallets")
    negative = await _count(b_url, "SELECT count(*) FROM token_wallets WHERE available < 0")
    refused = await _count(b_url, "SELECT count(*) FROM token_spends WHERE state = 'refused'")
    print(f"token spends between two instances on one machine ({args.concurrency} issuing at a time, "
          f"{args.buyers} buyers)")
    print(f"  issued on B (debit, sign, queue): {args.spends:,} in {issuing:.2f} s ({args.spends / issuing:,.0f}/s)")
    print(f"  end to end (issued on B, countersigned by A, in both logs): {args.spends:,} in {elapsed:.2f} s "
          f"= {args.spends / elapsed:,.0f} spends/s")
    ok = in_a == in_b == args.spends and left == 0 and negative == 0 and refused == 0
    print(f"  check: spends in A's log {in_a}, in B's log {in_b}, refused {refused}, tokens left {left}, "
          f"wallets below zero {negative}: {'ok' if ok else 'FAILED'}")
    print(f"  target >= 300 spends/s: {'met' if args.spends / elapsed >= 300 else 'not met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spends", type=int, default=2000)
    parser.add_argument("--buyers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--env", action="append", default=[], metavar="FEDSERVER_X=VALUE",
                        help="a setting for both instances")
    args = parser.parse_args()
    with database_server() as admin_url:
        asyncio.run(bench(args, admin_url))


if __name__ == "__main__":
    main()
