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
agreement with A on every order. Then the CPU each part spent per order during the timed phase
(A's and B's server processes, every PostgreSQL process on this machine, the bench's client):
a figure that moves much less than the rate when the machine's speed varies from run to run.
--count-statements also counts, in both servers, the statements sent to PostgreSQL per order and
by call site (bench/statements/sitecustomize.py, on the servers' PYTHONPATH).

Usage: python bench/orders.py [--orders 1000] [--stock 800] [--concurrency 32] [--buyers 10] [--env K=V]...
                              [--count-statements]
Database: see bench/benchdb.py (two databases are created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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


def _instance(url: str, root: Path, name: str, settings: dict[str, str], count: Path | None = None) -> Instance:
    port = free_port()
    (root / name).mkdir(parents=True, exist_ok=True)
    counting = {} if count is None else {
        "FEDSERVER_BENCH_STATEMENTS": str(count),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "bench" / "statements"), os.environ.get("PYTHONPATH")]))}
    env = instance_env(database_url=url, data_dir=root / name / "data", port=port,
                       extra={"FEDSERVER_LOGGING__ACCESS_LOG": "false", "FEDSERVER_LOGGING__LEVEL": "warning",
                              "FEDSERVER_API__RATE_LIMIT_PER_5MIN": "0", **settings, **counting})
    return Instance(port=port, env=env, cwd=root / name, log_path=root / name / "server.log")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """CPU seconds of every live process named postgres on this machine (the server and its backends)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            total += _cpu_seconds(int(entry))
    return total


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu(a: Instance, b: Instance) -> dict[str, float]:
    return {"maker's server (A)": _cpu_seconds(a.process.pid), "buyer's server (B)": _cpu_seconds(b.process.pid),
            "PostgreSQL": _postgres_cpu_seconds(), "bench client": _own_cpu_seconds()}


def _statement_counts(directory: Path, pid: int) -> dict[str, int]:
    try:
        return json.loads((directory / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return {}


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
        count = None
        if args.count_statements:
            count = Path(tmp) / "statements"
            count.mkdir()
        a, b = (_instance(url, Path(tmp), name, settings, count) for url, name in zip(urls, "ab"))
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
            await asyncio.sleep(1.0 if count else 0)  # the counts on disk include the first order
            counted = {x.process.pid: _statement_counts(count, x.process.pid) for x in (a, b)} if count else {}
            cpu = _cpu(a, b)
            started = time.perf_counter()
            failures, placing = await _place(b, tokens, listing, args.orders, args.concurrency)
            answered_sql = "SELECT count(*) FROM orders WHERE state IN ('accepted', 'rejected')"
            total = args.orders + 1
            while await _count(urls[1], answered_sql) < total - failures - first_failures:
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"not every order was answered within {args.timeout} s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = {part: seconds - cpu[part] for part, seconds in _cpu(a, b).items()}
            await _report(args, urls, total, failures + first_failures, placing, elapsed)
            _report_cpu(cpu, args.orders - failures)
            if count:
                await asyncio.sleep(1.0)  # the counts are written twice a second
                for x, name in ((a, "maker's server (A)"), (b, "buyer's server (B)")):
                    _report_statements(name, counted[x.process.pid], _statement_counts(count, x.process.pid),
                                       args.orders - failures)
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


def _report_cpu(cpu: dict[str, float], orders: int) -> None:
    total = sum(cpu.values())
    print(f"  CPU per order in the timed phase: {total / orders * 1000:.1f} ms in all (" +
          ", ".join(f"{part} {seconds / orders * 1000:.1f} ms" for part, seconds in cpu.items()) +
          f"): at most {os.cpu_count() * orders / total:,.0f} orders/s on {os.cpu_count()} cores if nothing waited")


def _report_statements(name: str, before: dict[str, int], after: dict[str, int], orders: int, shown: int = 12) -> None:
    sent = {site: n - before.get(site, 0) for site, n in after.items() if n > before.get(site, 0)}
    print(f"  statements to PostgreSQL per order, {name}: {sum(sent.values()) / orders:.1f}")
    for site, n in sorted(sent.items(), key=lambda item: -item[1])[:shown]:
        print(f"    {n / orders:5.2f}  {site}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--stock", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--buyers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--count-statements", action="store_true",
                        help="count the statements each server sends to PostgreSQL per order, by call site")
    parser.add_argument("--env", action="append", default=[], metavar="FEDSERVER_X=VALUE",
                        help="a setting for both instances, e.g. FEDSERVER_DATABASE__POOL_MAX_SIZE=20")
    args = parser.parse_args()
    with database_server() as admin_url:
        asyncio.run(bench(args, admin_url))


if __name__ == "__main__":
    main()
