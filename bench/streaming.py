"""Streaming API: 1,000 WebSocket clients on one server process; delay from a post's commit to its `update`.

Setup: one local maker and `--connections` local readers who all follow the maker, each with its
own token (rows written with SQL; the readers share the maker's key, which nothing here uses). A
server process (this file with `--serve`: the real application in an aiohttp runner on loopback,
rate limit off) is started; this process opens the WebSockets (`/api/v1/streaming?stream=user`,
or `public:local` with `--stream public:local`), waits until they are idle, and reads the server's
RSS before and after to get the memory one idle connection costs. Then it publishes `--posts`
posts, one at a time, with the same service the API uses, takes the time right after each commit,
and waits until every connection has the post's `update` (the payload's uri is checked) before the
next. Printed: p50/p99/max delay over all (post, connection) pairs, and memory per connection.
Target: p99 under 100 ms. The clients all run in this one Python process, so the last of 1,000
connections is read up to a few tens of milliseconds after the first: the figures include that.

Usage: python bench/streaming.py [--connections 1000] [--posts 30] [--stream user|public:local]
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database
from fedserver.accounts import create_account, ensure_instance_actor, validate_new_account
from fedserver.api.oauth_service import OOB, issue_token, register_app
from fedserver.app import build_publisher, create_app
from fedserver.config import load_settings
from fedserver.db import init_connection, reset_connection
from fedserver.federation import commands
from fedserver.server import settle_garbage_collector


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bench_settings(url: str):
    return load_settings(environ={"FEDSERVER_INSTANCE__DOMAIN": "bench.test", "FEDSERVER_DATABASE__URL": url,
                                  "FEDSERVER_API__RATE_LIMIT_PER_5MIN": "0"})


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# The server process


async def serve(url: str) -> None:
    """The server; on SIGTERM it prints how long handing each event to its subscribers took, then stops."""
    raise_open_files_limit()
    sends = time_the_fan_out()
    settings = bench_settings(url)
    pool = await asyncpg.create_pool(url, min_size=2, max_size=10, init=init_connection, reset=reset_connection)
    runner = web.AppRunner(create_app(settings, pool), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    settle_garbage_collector()  # as `fedserver run` does once it has started
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        big = sorted(seconds * 1000 for seconds, count in sends if count >= 100)
        messages = sum(count for _, count in sends)
        if big and messages:
            print(f"  server side: handing one event to its subscribers took median {statistics.median(big):.1f} ms "
                  f"per call of >= 100 subscribers; {sum(s for s, _ in sends) / messages * 1e6:.0f} us per message",
                  flush=True)
        await runner.cleanup()
        await pool.close()


def time_the_fan_out() -> list[tuple[float, int]]:
    """Wrap the hub's `send` to note (seconds, subscribers) of each call."""
    from fedserver.api import stream_hub

    original, sends = stream_hub.send, []

    async def timed(pairs, out) -> None:
        began = time.perf_counter()
        await original(pairs, out)
        sends.append((time.perf_counter() - began, len(pairs)))

    stream_hub.send = timed
    return sends


# Setup and measurement


async def setup(pool: asyncpg.Pool, settings, readers: int) -> list[str]:
    """The maker and `readers` followers with tokens; the tokens."""
    await ensure_instance_actor(pool, settings)
    maker = await create_account(pool, settings, validate_new_account(username="maker"))
    async with pool.acquire() as conn:
        ids = await conn.fetch(
            """WITH new AS (
                   INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, url, inbox_uri,
                                       followers_uri, key_id, public_key_pem)
                   SELECT 'https://bench.test/users/r' || g, true, 'r' || g, 'bench.test', 'Person', '독자 ' || g,
                          'https://bench.test/@r' || g, 'https://bench.test/users/r' || g || '/inbox',
                          'https://bench.test/users/r' || g || '/followers', 'https://bench.test/users/r' || g || '#k',
                          m.public_key_pem
                   FROM generate_series(1, $1) g, actors m WHERE m.id = $2 RETURNING id)
               SELECT id FROM new ORDER BY id""", readers, maker.id)
        reader_ids = [row["id"] for row in ids]
        await conn.execute(
            """INSERT INTO local_accounts (actor_id, private_key_pem)
               SELECT r, l.private_key_pem FROM unnest($1::bigint[]) r, local_accounts l WHERE l.actor_id = $2""",
            reader_ids, maker.id)
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, state, activity_uri)
               SELECT r, $2, 'accepted', 'https://bench.test/follows/' || r FROM unnest($1::bigint[]) r""",
            reader_ids, maker.id)
        await conn.execute("VACUUM ANALYZE")
        app, _ = await register_app(pool, name="bench", website=None, redirect_uris=[OOB], scopes=("read",))
        return [(await issue_token(conn, app, r, ("read",))).access_token for r in reader_ids]


class Clients:
    """The WebSockets, and when each got each post."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.expected: str | None = None
        self.all_in = asyncio.Event()
        self.total = 0

    async def connect(self, http: aiohttp.ClientSession, base: str, stream: str, tokens: list[str]) -> list:
        limit = asyncio.Semaphore(50)

        async def one(token: str):
            async with limit:
                return await http.ws_connect(f"{base}/api/v1/streaming", params={"stream": stream,
                                                                                  "access_token": token},
                                             heartbeat=None, autoping=True, max_msg_size=0)
        sockets = await asyncio.gather(*(one(t) for t in tokens))
        self.total = len(sockets)
        return sockets

    async def read(self, ws: aiohttp.ClientWebSocketResponse, check: bool) -> None:
        """Note the time of each update; one connection checks the whole event, the rest only look for the mark
        (the client side costs little, so the figures are mostly the server's)."""
        async for msg in ws:
            now = time.perf_counter()
            uri = self.expected
            if msg.type != aiohttp.WSMsgType.TEXT or uri is None or uri not in msg.data:
                continue
            if check:
                event = json.loads(msg.data)
                assert event["stream"] and event["event"] == "update", event
                assert uri in json.loads(event["payload"])["content"]
            times = self.arrivals.setdefault(uri, [])
            times.append(now)
            if len(times) == self.total:
                self.all_in.set()


async def bench(admin_url: str, connections: int, posts: int, stream: str) -> None:
    raise_open_files_limit()
    url = await create_database(admin_url)
    settings = bench_settings(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4, init=init_connection, reset=reset_connection)
    server = None
    try:
        started = time.perf_counter()
        tokens = await setup(pool, settings, connections)
        print(f"streaming: {connections:,} WebSocket clients on `{stream}`, one server process; "
              f"setup {time.perf_counter() - started:.1f} s")
        server = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", url,
                                                      stdout=asyncio.subprocess.PIPE)
        port = int(await server.stdout.readline())  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        clients = Clients()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            # One connection first, so the hub is listening and the first renders are warm.
            warm = await http.ws_connect(f"{base}/api/v1/streaming", params={"stream": stream,
                                                                               "access_token": tokens[0]})
            await asyncio.sleep(1.0)
            before = rss_kib(server.pid)
            began = time.perf_counter()
            sockets = await clients.connect(http, base, stream, tokens)
            connected = time.perf_counter() - began
            readers = [asyncio.create_task(clients.read(ws, n == 0)) for n, ws in enumerate(sockets)]
            await asyncio.sleep(2.0)
            after = rss_kib(server.pid)
            print(f"  {connections:,} connections opened in {connected:.1f} s; server RSS {before / 1024:.1f} MiB "
                  f"-> {after / 1024:.1f} MiB: {(after - before) / connections:.1f} KiB per idle connection")
            settle_garbage_collector()  # the clients here are the measuring tool: no collector pause in the figures
            publisher = build_publisher(settings)
            delays: list[float] = []
            firsts: list[float] = []
            missing = 0
            for n in range(posts + 2):  # the first two warm the path
                clients.all_in.clear()
                uri = clients.expected = f"bench-post-{n}-end"  # a mark in the content, found without parsing
                await commands.create_post(pool, publisher, "maker", f"<p>가마에서 꺼낸 찻잔 {uri} #도자기</p>")
                committed = time.perf_counter()  # right after the commit returned
                if len(clients.arrivals.get(uri, [])) < connections:
                    try:
                        await asyncio.wait_for(clients.all_in.wait(), 10)
                    except TimeoutError:
                        pass
                got = clients.arrivals.get(uri, [])
                if n >= 2:
                    missing += connections - len(got)
                    delays.extend((t - committed) * 1000 for t in got)
                    firsts.append((min(got) - committed) * 1000 if got else float("nan"))
                await asyncio.sleep(0.1)
            for task in readers:
                task.cancel()
            for ws in (*sockets, warm):
                await ws.close()
        ordered = sorted(delays)

        def pick(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        print(f"  {posts} posts x {connections:,} connections = {len(delays):,} updates received "
              f"({missing} missing)")
        print(f"  commit -> update: p50 {statistics.median(ordered):.1f} ms   p99 {pick(0.99):.1f} ms   "
              f"max {ordered[-1]:.1f} ms")
        print(f"  commit -> first connection's update: median {statistics.median(firsts):.1f} ms")
        print(f"  target p99 < 100 ms: {'met' if pick(0.99) < 100 and not missing else 'NOT met'}")
    finally:
        if server is not None:
            server.terminate()
            tail = await server.stdout.read()  # type: ignore[union-attr]
            await server.wait()
            print(tail.decode().rstrip())
        await pool.close()
        gc.collect()
        await drop_database(admin_url, url)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(serve(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--stream", choices=("user", "public:local"), default="user")
    args = parser.parse_args()
    with database_server() as admin_url:
        asyncio.run(bench(admin_url, args.connections, args.posts, args.stream))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
