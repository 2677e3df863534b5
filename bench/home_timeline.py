"""Home timeline latency: GET /api/v1/timelines/home?limit=20 for an account following 1,000 accounts,
with 1,000,000 statuses in the database.

Setup (INSERT … SELECT generate_series, then VACUUM ANALYZE): 1,000 remote accounts, all followed
by one local reader, and 100 strangers; 1,000,000 posts, 2% of them by strangers and boosted by a
followed account; 200,000 likes; and the `home_feed` rows fan-out-on-write would have written
(one per followed post and per boost: 1,000,000 rows for the reader). Then the real application runs in
an aiohttp runner on loopback and is asked over real HTTP, one request at a time: a third of the
requests for the newest page, the rest for a page at a random `max_id`. Printed: setup time, then
median, p90, p99 and max latency in milliseconds, and requests per second.

Usage: python bench/home_timeline.py [--requests 3000] [--statuses 1000000] [--accounts 1000]
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from fedserver.accounts import (  # noqa: E402
    create_account,
    ensure_instance_actor,
    validate_new_account,
)
from fedserver.api.oauth_service import OOB, issue_token, register_app  # noqa: E402
from fedserver.app import create_app  # noqa: E402
from fedserver.config import load_settings  # noqa: E402
from fedserver.db import init_connection  # noqa: E402

BOOST_SHARE = 50  # one post in 50 is boosted by another followed account
LIKES = 200_000


_ACTORS = """INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, url, inbox_uri,
                                  shared_inbox_uri, followers_uri, key_id, public_key_pem)
              SELECT 'https://' || d || '/users/' || n, false, n, d, 'Person', '작가 ' || n,
                     'https://' || d || '/@' || n,
                     'https://' || d || '/users/' || n || '/inbox', 'https://' || d || '/inbox',
                     'https://' || d || '/users/' || n || '/followers', 'https://' || d || '/users/' || n || '#key', 'PEM'
              FROM generate_series(1, $1) g, LATERAL (SELECT $2 || g AS n, 'r' || (g % 50) || '.example' AS d) x
              RETURNING id"""


async def generate(conn: asyncpg.Connection, reader_id: int, accounts: int, statuses: int) -> None:
    """Followed accounts and strangers, posts, boosts, likes, and the reader's home feed, in bulk.

    Post g has id 2g; one in BOOST_SHARE is by a stranger (not followed) and boosted by a followed
    account right away (boost id 2g+1), so boosts interleave with posts as they would live. Posts
    by followed accounts and the boosts are in the reader's feed, as fan-out would have put them.
    """
    followed = sorted(r["id"] for r in await conn.fetch(_ACTORS, accounts, "u"))
    strangers = sorted(r["id"] for r in await conn.fetch(_ACTORS, 100, "s"))
    await conn.execute(
        """INSERT INTO follows (follower_id, followee_id, state, accepted_at)
           SELECT $1, unnest($2::bigint[]), 'accepted', now()""", reader_id, followed)
    print(f"  {accounts:,} accounts followed; writing {statuses:,} posts ...", flush=True)
    await conn.execute(
        """INSERT INTO objects (id, uri, object_type, actor_id, is_local, content, url, visibility, data, published_at)
           OVERRIDING SYSTEM VALUE
           SELECT 2 * g, 'https://r' || (g % 50) || '.example/notes/' || g, 'Note',
                  CASE WHEN g % $4 = 0 THEN ($3::bigint[])[1 + (g / $4) % 100]
                       ELSE ($2::bigint[])[1 + (g * 7919) % cardinality($2::bigint[])] END, false,
                  '<p>오늘의 작업 ' || g || ' — 가마에서 꺼낸 찻잔입니다 #도자기</p>',
                  'https://r' || (g % 50) || '.example/@x/' || g, 'public',
                  jsonb_build_object('type', 'Note', 'sensitive', false, 'contentMap', jsonb_build_object('ko', '')),
                  now() - make_interval(secs => ($1 - g)::float8)
           FROM generate_series(1::bigint, $1::bigint) g""", statuses, followed, strangers, BOOST_SHARE)
    await conn.execute(
        """INSERT INTO announces (id, actor_id, object_uri, activity_uri, created_at)
           SELECT o.id + 1, ($1::bigint[])[1 + (o.id * 31) % cardinality($1::bigint[])], o.uri, o.uri || '/boost',
                  o.published_at
           FROM objects o WHERE o.actor_id = ANY($2::bigint[])""", followed, strangers)
    await conn.execute("SELECT setval('objects_id_seq', (SELECT max(id) + 2 FROM objects))")
    await conn.execute(
        """INSERT INTO likes (actor_id, object_uri, activity_uri)
           SELECT ($2::bigint[])[1 + g % cardinality($2::bigint[])], 'https://r' || (k % 50) || '.example/notes/' || k,
                  'https://like.example/' || g
           FROM generate_series(1::bigint, $1::bigint) g, LATERAL (SELECT (g * 104729) % $3 + 1 AS k) x
           ON CONFLICT DO NOTHING""", LIKES, followed, statuses)
    print("  writing the home feed ...", flush=True)
    await conn.execute(
        """INSERT INTO home_feed (account_id, entry_id, object_id, author_id)
           SELECT $1, id, id, actor_id FROM objects WHERE actor_id = ANY($2::bigint[])""", reader_id, followed)
    await conn.execute(
        """INSERT INTO home_feed (account_id, entry_id, object_id, author_id, reblog_by)
           SELECT $1, an.id, o.id, o.actor_id, an.actor_id FROM announces an JOIN objects o ON o.uri = an.object_uri""",
        reader_id)


async def measure(base: str, token: str, requests: int, lowest: int, highest: int) -> list[float]:
    """Latencies in ms of sequential home timeline requests (a third newest page, the rest random pages)."""
    headers = {"Authorization": f"Bearer {token}"}
    timings: list[float] = []
    rng = random.Random(7)
    async with aiohttp.ClientSession(headers=headers) as http:
        for n in range(requests + 100):
            params = {"limit": "20"}
            if n % 3:
                params["max_id"] = str(rng.randint(lowest, highest))
            start = time.perf_counter()
            async with http.get(f"{base}/api/v1/timelines/home", params=params) as response:
                body = await response.json()
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status == 200 and len(body) == 20, (response.status, str(body)[:200])
            if n >= 100:  # the first 100 warm caches and plans
                timings.append(elapsed)
    return timings


async def bench(admin_url: str, requests: int, statuses: int, accounts: int) -> None:
    url = await create_database(admin_url)
    settings = load_settings(environ={"FEDSERVER_INSTANCE__DOMAIN": "bench.test", "FEDSERVER_DATABASE__URL": url,
                                      "FEDSERVER_API__RATE_LIMIT_PER_5MIN": "0"})
    pool = await asyncpg.create_pool(url, min_size=2, max_size=10, init=init_connection)
    runner = None
    try:
        started = time.perf_counter()
        print(f"home timeline: one reader following {accounts:,} accounts, {statuses:,} statuses")
        await ensure_instance_actor(pool, settings)
        reader = await create_account(pool, settings, validate_new_account(username="reader"))
        async with pool.acquire() as conn:
            await generate(conn, reader.id, accounts, statuses)
            await conn.execute("VACUUM ANALYZE")
            feed_rows = await conn.fetchval("SELECT count(*) FROM home_feed")
            lowest, highest = await conn.fetchrow("SELECT min(entry_id) + 2000, max(entry_id) FROM home_feed")
            app, _ = await register_app(pool, name="bench", website=None, redirect_uris=[OOB], scopes=("read",))
            token = (await issue_token(conn, app, reader.id, ("read",))).access_token
        print(f"  setup: {feed_rows:,} home feed rows in {time.perf_counter() - started:.0f} s")
        runner = web.AppRunner(create_app(settings, pool), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        began = time.perf_counter()
        timings = await measure(f"http://127.0.0.1:{port}", token, requests, lowest, highest)
        wall = time.perf_counter() - began
        ordered = sorted(timings)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        print(f"  {len(timings):,} requests of limit=20 over real HTTP, one at a time:")
        print(f"  median {statistics.median(timings):.2f} ms   p90 {pick(0.90):.2f} ms   p99 {pick(0.99):.2f} ms   "
              f"max {ordered[-1]:.2f} ms   ({len(timings) / wall:.0f} requests/s)")
        print(f"  target p99 < 25 ms: {'met' if pick(0.99) < 25 else 'NOT met'}")
    finally:
        if runner is not None:
            await runner.cleanup()
        await pool.close()
        await drop_database(admin_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--statuses", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    with database_server() as admin_url:
        asyncio.run(bench(admin_url, args.requests, args.statuses, args.accounts))


if __name__ == "__main__":
    main()
