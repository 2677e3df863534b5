"""Fan-out: how long one post takes to reach 1,000 followers on 200 instances, and how many POSTs it makes.

Setup: 200 simulated receiver instances on loopback (one aiohttp site each, in a child
process, each verifying every draft-cavage signature against the sender's key), 5
followers on each. Two runs of the real delivery worker (`DeliveryWorker`, default
settings: 32 POSTs in flight) against a fresh database:

  shared   every instance advertises a shared inbox: expect 200 POSTs
  personal no shared inboxes (GoToSocial style): expect 1,000 POSTs

Timing runs from the `create_post` call (which queues the deliveries in its transaction)
until every delivery row is `delivered`. Printed: seconds, POSTs made, followers reached
per second, POSTs per second, and the ratio of the two runs.

Usage: python bench/fanout.py [--instances 200] [--followers-each 5]
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from fedserver.app import build_publisher  # noqa: E402
from fedserver.accounts import create_account, validate_new_account  # noqa: E402
from fedserver.config import load_settings  # noqa: E402
from fedserver.db import init_connection  # noqa: E402
from fedserver.federation.delivery import DeliveryWorker  # noqa: E402
from fedserver.federation import commands  # noqa: E402
from fedserver.net.http import HttpClient  # noqa: E402
from fedserver.signatures import (  # noqa: E402
    SignatureError,
    load_public_key,
    parse_request_signature,
    verify_parsed,
)

# ---- the receivers (child process) ---------------------------------------------------------

async def serve_receivers(count: int, public_pem: str) -> None:
    """Run `count` sites, print their ports, count verified POSTs per site, print the counts on stdin EOF."""
    from aiohttp import web

    key = load_public_key(public_pem)
    counts: Counter[str] = Counter()
    bad: Counter[str] = Counter()

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = parse_request_signature("POST", request.raw_path, request.headers.items(), body,
                                             scheme="http", authority=request.host)
            verify_parsed(parsed, key)
        except SignatureError:
            bad[request.host] += 1
            return web.Response(status=401)
        counts[request.host] += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "report":
            print(json.dumps({"posts": sum(counts.values()), "hosts": len(counts), "bad": sum(bad.values())}),
                  flush=True)
            counts.clear()
            bad.clear()
        if not line:
            break
    await runner.cleanup()


async def add_followers(pool: asyncpg.Pool, followee_id: int, ports: list[int], each: int, *, shared: bool,
                        tag: str) -> None:
    """`each` remote followers on every receiver port, with or without a shared inbox."""
    uris, domains, inboxes, shared_inboxes = [], [], [], []
    for port in ports:
        base = f"http://127.0.0.1:{port}"
        for i in range(each):
            uris.append(f"{base}/users/{tag}{i}")
            domains.append(f"127.0.0.1:{port}")
            inboxes.append(f"{base}/users/{tag}{i}/inbox")
            shared_inboxes.append(f"{base}/inbox" if shared else None)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM follows WHERE followee_id = $1", followee_id)
        ids = await conn.fetch(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, shared_inbox_uri,
                                   key_id, public_key_pem)
               SELECT u, false, $1 || ordinality, d, 'Person', i, s, u || '#main-key', 'unused'
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(u, d, i, s)
               RETURNING id""",
            tag, uris, domains, inboxes, shared_inboxes)
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, state, accepted_at)
               SELECT f, $1, 'accepted', now() FROM unnest($2::bigint[]) AS f""",
            followee_id, [row["id"] for row in ids])


# ---- one run -------------------------------------------------------------------------------

async def one_run(pool: asyncpg.Pool, settings, receivers: subprocess.Popen, text: str) -> dict:
    """Post once with the worker running; time until every delivery is delivered."""
    async with HttpClient(settings, allow_private=True) as http:
        stop = asyncio.Event()
        task = asyncio.create_task(DeliveryWorker(pool, settings, http).run(stop))
        await asyncio.sleep(0.2)  # the worker is listening
        started = time.perf_counter()
        uri = await commands.create_post(pool, build_publisher(settings), "maker", text)
        queued_at = time.perf_counter()
        activity = uri.replace("/statuses/", "/activities/create/")
        async with pool.acquire() as conn:
            total = await conn.fetchval("SELECT count(*) FROM deliveries WHERE activity_uri = $1", activity)
            while await conn.fetchval(
                    "SELECT count(*) FROM deliveries WHERE activity_uri = $1 AND state <> 'queued'", activity) < total:
                await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        async with pool.acquire() as conn:
            states = dict(await conn.fetch(
                "SELECT state, count(*) FROM deliveries WHERE activity_uri = $1 GROUP BY state", activity))
    receivers.stdin.write("report\n")  # type: ignore[union-attr]
    receivers.stdin.flush()  # type: ignore[union-attr]
    seen = json.loads(receivers.stdout.readline())  # type: ignore[union-attr]
    return {"elapsed": elapsed, "queue": queued_at - started, "rows": total, "states": states, **seen}


def _print(label: str, run: dict, followers: int) -> None:
    print(f"  {label:<9} {run['elapsed']:7.3f} s   POSTs {run['posts']:>5} (rows {run['rows']}, "
          f"instances {run['hosts']}, bad signatures {run['bad']})   "
          f"{followers / run['elapsed']:8,.0f} followers/s   {run['posts'] / run['elapsed']:7,.0f} POSTs/s   "
          f"queueing {run['queue'] * 1000:.0f} ms   states {run['states']}")


async def bench(admin_url: str, instances: int, each: int) -> None:
    url = await create_database(admin_url)
    settings = load_settings(environ={"FEDSERVER_INSTANCE__DOMAIN": "bench.test", "FEDSERVER_DATABASE__URL": url,
                                      "FEDSERVER_FEDERATION__ALLOW_PRIVATE_ADDRESSES": "true"})
    pool = await asyncpg.create_pool(url, min_size=2, max_size=10, init=init_connection)
    receivers = None
    try:
        maker = await create_account(pool, settings, validate_new_account(username="maker"))
        receivers = subprocess.Popen(
            [sys.executable, __file__, "--serve-receivers", str(instances)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, "FANOUT_PUBLIC_PEM": maker.public_key_pem})
        ports = json.loads(receivers.stdout.readline())  # type: ignore[union-attr]
        followers = instances * each
        print(f"fan-out of one post to {followers} followers on {instances} loopback instances "
              f"({settings.federation.delivery_concurrency} POSTs in flight, signatures verified by the receivers)")
        await add_followers(pool, maker.id, ports, each, shared=True, tag="s")
        warm = await one_run(pool, settings, receivers, "warm-up")  # connections, key cache, plans
        shared = await one_run(pool, settings, receivers, "공유 받은편지함으로")
        await add_followers(pool, maker.id, ports, each, shared=False, tag="p")
        personal = await one_run(pool, settings, receivers, "개인 받은편지함으로")
        del warm
        _print("shared", shared, followers)
        _print("personal", personal, followers)
        print(f"  shared inboxes: {personal['posts'] / max(shared['posts'], 1):.1f}x fewer POSTs, "
              f"{personal['elapsed'] / shared['elapsed']:.1f}x faster to reach every follower")
    finally:
        if receivers is not None:
            receivers.stdin.close()  # type: ignore[union-attr]
            receivers.wait(10)
        await pool.close()
        await drop_database(admin_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--followers-each", type=int, default=5)
    parser.add_argument("--serve-receivers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receivers:
        asyncio.run(serve_receivers(args.serve_receivers, os.environ["FANOUT_PUBLIC_PEM"]))
        return
    with database_server() as admin_url:
        asyncio.run(bench(admin_url, args.instances, args.followers_each))


if __name__ == "__main__":
    main()
