"""Public pages under concurrent readers: p99 of the profile, listing and article pages of one account
holding 10,000 posts and 1,000 listings (target: under 20 ms each).

Setup: one `fedserver run` process (web and workers, default settings but for loopback, access
log off) on a fresh database. One account, `potter`, is created with the CLI, and posts one Note,
one Article (`fedserver post … --article --title …`) and one product (`fedserver product create`)
through it: the Article's and the product's pages are the ones measured, and the three stored
documents (with their Create activity) are the templates of the rest. The other posts and listings
are written in bulk, a few INSERT … SELECT generate_series statements into what the pages read:
`objects` (a Note in ten is an Article with a title; documents as the CLI writes them, with their
own ids, text and `published`), `listings` (each with its Note at `/listings/{id}`, ids chosen
and the sequence moved past them; one in twelve sold out), and `activities` (a Create per post
and listing, as the outbox the profile counts would hold). Then ANALYZE. Home feeds, search
index and post sources are not written: no page here reads them.

Measured: each page for `--seconds` (after `--warmup` seconds not counted) with `--concurrency`
keep-alive connections sending `Accept: text/html` and `Accept-Language: ko`, one page at a time:
`/@potter` (profile), `/listings/{id}` (listing), the Article's status URL (article), and as extra
lines `/@potter/blog`, `/@potter/shop` and `/`. Load comes from wrk (one thread, a Lua script
counting answers other than 200), or from an aiohttp client with `--client python` or when wrk
is missing (slower: it shares the two cores with the server). Printed: the counts read back from
the database, then per page requests per second, p50 and p99 latency in ms, errors (answers
other than 200, plus socket errors and timeouts), and for the three target pages whether p99 is
under 20 ms. Figures only: nothing is asserted.

The server's page cache (`[server] page_cache_seconds`, 5 s) is on, as an operator runs it: these
readers have no session, so most answers are a kept page and one rendering every 5 s refreshes it.
`--env FEDSERVER_SERVER__PAGE_CACHE_SECONDS=0` measures every request rendered.

Usage: python bench/pages.py [--posts 10000] [--listings 1000] [--seconds 10] [--concurrency 64]
                             [--warmup 1] [--client wrk|python] [--env K=V]...
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from activities.listing import stock_text
from bench.benchdb import create_database, database_server, drop_database
from tests.support.instance import Instance, free_port, instance_env

USERNAME = "potter"
DISPLAY_NAME = "도예 공방"
TARGET_MS = 20.0
PRICE = 38000
STOCK = 5
HEADERS = {"Accept": "text/html", "Accept-Language": "ko"}

NOTE_TEXT = "오늘 가마에서 꺼낸 찻사발입니다. 유약은 재유, 환원 소성."
ARTICLE_TITLE = "장작 가마 일지: 봄 소성"
ARTICLE_PARAGRAPH = ("사흘 동안 장작을 때며 가마 온도를 1,250도까지 올렸다. 초벌한 그릇에 재유를 입히고, "
                     "환원 분위기에서 마지막 여섯 시간을 버텼다. 식히는 데 이틀이 걸렸고, 문을 열자 찻사발 마흔 점 "
                     "가운데 서른한 점이 살아 나왔다.")
ARTICLE_TEXT = " ".join([ARTICLE_PARAGRAPH] * 6)
LISTING_TITLE = "백자 달항아리 소품"
LISTING_DESCRIPTION = "지름 12 cm의 작은 달항아리입니다. 손으로 빚어 장작 가마에서 구웠습니다. 하나하나 모양이 다릅니다."


def _instance(url: str, root: Path, settings: dict[str, str]) -> Instance:
    port = free_port()
    env = instance_env(database_url=url, data_dir=root / "data", port=port,
                       extra={"FEDSERVER_LOGGING__ACCESS_LOG": "false", "FEDSERVER_LOGGING__LEVEL": "warning",
                              **settings})
    return Instance(port=port, env=env, cwd=root, log_path=root / "server.log")


def _cli(x: Instance, *args: str) -> str:
    result = x.command(*args)
    if result.returncode != 0:
        raise SystemExit(f"fedserver {' '.join(args[:3])} … failed: {result.stderr}")
    return result.stdout.strip().splitlines()[-1]


# Seeding. The documents of the three posts made through the CLI become templates: their id (and
# every id built on it), text, title and `published` are replaced by markers the SQL fills in.

def _template(data: str, uri: str, *, title: str | None = None, keep_content: bool = False) -> str:
    doc = json.loads(data)
    doc["published"] = "@@PUBLISHED@@"
    if keep_content:  # a listing's: its title is replaced, and its stock
        doc["content"] = doc["content"].replace(stock_text(STOCK), "@@STOCK@@")
        available = (doc.get("publishes") or {}).get("availableQuantity")
        if isinstance(available, dict):
            available["hasNumericalValue"] = "@@STOCKN@@"
    else:
        doc["content"] = "@@CONTENT@@"
        if isinstance(doc.get("contentMap"), dict):
            doc["contentMap"] = {lang: "@@CONTENT@@" for lang in doc["contentMap"]}
    text = json.dumps(doc, ensure_ascii=False).replace(uri, "@@URI@@")
    return text.replace(title, "@@TITLE@@") if title else text


# Post i (1..n) was published 1 h + 17 min × i ago; its status number is made as the server makes
# them (milliseconds << 16 | 16 more bits). Generated text has no quotes or backslashes, so it
# can go into the JSON text as it is.
_SEED_POSTS = """
WITH s AS (
    SELECT i, i % 10 = 0 AS article,
           date_trunc('second', now() - interval '1 hour' - i * interval '17 minutes') AS at
    FROM generate_series(1, $5::int) AS i),
p AS (
    SELECT i, article, at,
           $2::text || '/statuses/' || (((extract(epoch FROM at) * 1000)::bigint << 16) | (i % 65536)) AS uri,
           CASE WHEN article
                THEN '<p>' || repeat('가마 일지 ' || i || '번째: 초벌한 그릇에 유약을 입히고 환원 소성으로 마무리했다. ', 12)
                     || '</p><p>' || repeat('식힌 뒤 가마를 열어 보니 색이 고르게 나왔다. ', 10) || '</p>'
                ELSE '<p>오늘 구운 접시 ' || i || '번입니다. 유약은 재유, 가마는 1,250도.</p>' END AS html,
           '공방 일지 ' || i || '호' AS title,
           to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS published
    FROM s)
INSERT INTO objects (uri, object_type, actor_id, is_local, content, name, url, visibility, data, published_at)
SELECT uri, CASE WHEN article THEN 'Article' ELSE 'Note' END, $1, true, html, CASE WHEN article THEN title END,
       uri, 'public',
       replace(replace(replace(replace(CASE WHEN article THEN $4::text ELSE $3::text END,
               '@@URI@@', uri), '@@PUBLISHED@@', published), '@@TITLE@@', title), '@@CONTENT@@', html)::jsonb,
       at
FROM p"""

# Listing ids $4 + 1 .. $4 + n, each with its Note at /listings/{id} (stored first, as the server does);
# $7 is the stock as the Note's text says it, for 0 to 11.
_SEED_LISTINGS = """
WITH l AS (
    SELECT $4::bigint + i AS id, '찻사발 ' || ($4::bigint + i) || '호' AS title, i % 12 AS stock,
           $2::text || '/listings/' || ($4::bigint + i) AS uri,
           date_trunc('second', now() - interval '30 minutes' - i * interval '2 hours 53 minutes') AS at
    FROM generate_series(1, $5::int) AS i),
d AS (
    SELECT l.*, replace(replace(replace(replace(replace($3::text, '@@URI@@', uri), '@@TITLE@@', title),
                        '@@STOCKN@@', stock::text), '@@STOCK@@', ($7::text[])[stock + 1]),
                        '@@PUBLISHED@@', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))::jsonb AS doc
    FROM l),
made AS (
    INSERT INTO objects (uri, object_type, actor_id, is_local, content, name, url, visibility, data, published_at)
    SELECT uri, 'Note', $1, true, doc ->> 'content', title, uri, 'public', doc, at FROM d
    RETURNING id, uri)
INSERT INTO listings (id, object_id, seller_id, is_local, title, description, price, stock, auto_accept, status,
                      created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT l.id, made.id, $1, true, l.title,
       '손으로 빚은 찻사발 ' || l.title || '입니다. 장작 가마에서 구웠고, 굽 안쪽에 낙관이 있습니다.', $6, l.stock, true,
       CASE WHEN l.stock = 0 THEN 'sold_out' ELSE 'active' END, l.at, l.at
FROM l JOIN made ON made.uri = l.uri"""

# A Create per seeded post and listing, oldest first, as publishing each would have recorded it.
_SEED_CREATES = """
INSERT INTO activities (uri, actor_id, activity_type, object_uri, visibility, data, created_at)
SELECT a.uri, $1, 'Create', o.uri, 'public',
       $3::jsonb || jsonb_build_object('id', a.uri, 'object', o.data - '@context', 'published', o.data -> 'published',
                                       '@context', o.data -> '@context'),
       o.published_at
FROM objects o,
     LATERAL (SELECT $2::text || '/activities/create/'
                     || (((extract(epoch FROM o.published_at) * 1000)::bigint << 16) | (o.id % 65536)) AS uri) a
WHERE o.actor_id = $1 AND o.id > $4
ORDER BY o.published_at, o.id"""


@dataclass(frozen=True)
class Seeded:
    posts: int
    articles: int
    listings: int
    creates: int
    seconds: float


async def _seed(url: str, base_url: str, article_uri: str, listing_uri: str, posts: int, listings: int) -> Seeded:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        actor = await conn.fetchrow("SELECT id, uri FROM actors WHERE is_local AND username = $1", USERNAME)
        docs = {r["uri"]: r for r in await conn.fetch(
            """SELECT o.uri, o.object_type, o.data::text AS data, a.data::text AS create_data
               FROM objects o JOIN activities a ON a.object_uri = o.uri AND a.activity_type = 'Create'
               WHERE o.actor_id = $1""", actor["id"])}
        note_uri = next(uri for uri, r in docs.items() if r["object_type"] == "Note" and uri != listing_uri)
        note = _template(docs[note_uri]["data"], note_uri)
        article = _template(docs[article_uri]["data"], article_uri, title=ARTICLE_TITLE)
        listing = _template(docs[listing_uri]["data"], listing_uri, title=LISTING_TITLE, keep_content=True)
        create = docs[note_uri]["create_data"]
        async with conn.transaction():
            last_object = await conn.fetchval("SELECT coalesce(max(id), 0) FROM objects")
            last_listing = await conn.fetchval("SELECT coalesce(max(id), 0) FROM listings")
            await conn.execute(_SEED_POSTS, actor["id"], actor["uri"], note, article, posts)
            await conn.execute(_SEED_LISTINGS, actor["id"], base_url, listing, last_listing, listings, PRICE,
                               [stock_text(n) for n in range(12)])
            await conn.execute("SELECT setval(pg_get_serial_sequence('listings', 'id'), (SELECT max(id) FROM listings))")
            await conn.execute(_SEED_CREATES, actor["id"], actor["uri"], create, last_object)
        await conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
        shown = "o.actor_id = $1 AND o.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.object_id = o.id)"
        return Seeded(
            posts=await conn.fetchval(f"SELECT count(*) FROM objects o WHERE {shown}", actor["id"]),
            articles=await conn.fetchval(f"SELECT count(*) FROM objects o WHERE {shown} AND o.object_type = 'Article'",
                                         actor["id"]),
            listings=await conn.fetchval("SELECT count(*) FROM listings WHERE seller_id = $1", actor["id"]),
            creates=await conn.fetchval("SELECT count(*) FROM activities WHERE actor_id = $1 AND activity_type = 'Create'",
                                        actor["id"]),
            seconds=seconds)
    finally:
        await conn.close()


# Load generation.

@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# Counters live in each wrk thread's Lua state; `done` (in the main state) sums them through the
# thread handles `setup` collected. Latencies are wrk's own (microseconds, per answered request).
WRK_SCRIPT = textwrap.dedent("""
    local threads = {}
    setup = function(thread) table.insert(threads, thread) end
    bad = 0
    response = function(status, headers, body)
      if status ~= 200 then bad = bad + 1 end
    end
    done = function(summary, latency, requests)
      local total_bad = 0
      for _, thread in ipairs(threads) do total_bad = total_bad + thread:get("bad") end
      local e = summary.errors
      io.write(string.format("requests %d\\n", summary.requests))
      io.write(string.format("duration_us %d\\n", summary.duration))
      io.write(string.format("non200 %d\\n", total_bad))
      io.write(string.format("socket_errors %d\\n", e.connect + e.read + e.write + e.timeout))
      io.write(string.format("p50_us %d\\n", latency:percentile(50)))
      io.write(string.format("p99_us %d\\n", latency:percentile(99)))
    end
""")


def _wrk(url: str, seconds: float, connections: int, script: Path) -> Figures:
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", *headers,
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    f = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
         if len(line.split()) == 2 and line.split()[1].isdigit()}
    return Figures(requests=f["requests"], seconds=f["duration_us"] / 1e6, p50_ms=f["p50_us"] / 1000,
                   p99_ms=f["p99_us"] / 1000, errors=f["non200"] + f["socket_errors"])


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def _python_load(url: str, seconds: float, connections: int) -> Figures:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def reader(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with session.get(url, headers=HEADERS) as response:
                    await response.read()
                    errors += response.status != 200
            except (TimeoutError, aiohttp.ClientError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(reader(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Figures(requests=len(latencies), seconds=elapsed, p50_ms=_percentile(latencies, 50) * 1000,
                   p99_ms=_percentile(latencies, 99) * 1000, errors=errors)


def _check(url: str) -> str | None:
    """None when the page answers 200; else what it answered."""
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return None if response.status == 200 else f"{response.status}: {body[:300]!r}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code}: {exc.read()[:300]!r}"


async def _measure(args: argparse.Namespace, url: str, script: Path) -> Figures:
    if args.client == "wrk":
        if args.warmup > 0:
            await asyncio.to_thread(_wrk, url, args.warmup, args.concurrency, script)
        return await asyncio.to_thread(_wrk, url, args.seconds, args.concurrency, script)
    if args.warmup > 0:
        await _python_load(url, args.warmup, args.concurrency)
    return await _python_load(url, args.seconds, args.concurrency)


async def bench(args: argparse.Namespace, admin_url: str) -> None:
    url = await create_database(admin_url)
    x: Instance | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="fedbench-pages-") as tmp:
            root = Path(tmp)
            script = root / "pages.lua"
            script.write_text(WRK_SCRIPT)
            x = _instance(url, root, dict(item.split("=", 1) for item in args.env))
            started = time.perf_counter()
            await asyncio.to_thread(x.start)
            await asyncio.to_thread(_cli, x, "account", "create", USERNAME, "--display-name", DISPLAY_NAME)
            await asyncio.to_thread(_cli, x, "post", USERNAME, NOTE_TEXT)
            article_uri = await asyncio.to_thread(_cli, x, "post", USERNAME, ARTICLE_TEXT, "--article",
                                                  "--title", ARTICLE_TITLE)
            listing_uri = await asyncio.to_thread(_cli, x, "product", "create", USERNAME, "--title", LISTING_TITLE,
                                                  "--price", str(PRICE), "--stock", str(STOCK),
                                                  "--description", LISTING_DESCRIPTION)
            seeded = await _seed(url, x.base_url, article_uri, listing_uri, max(0, args.posts - 2),
                                 max(0, args.listings - 1))
            setup = time.perf_counter() - started
            pages = [
                ("profile", f"/@{USERNAME}", True),
                ("listing", urlsplit(listing_uri).path, True),
                ("article", urlsplit(article_uri).path, True),
                ("blog", f"/@{USERNAME}/blog", False),
                ("shop", f"/@{USERNAME}/shop", False),
                ("front page", "/", False),
            ]
            client = "wrk, 1 thread" if args.client == "wrk" else "aiohttp client"
            print(f"public pages under {args.concurrency} concurrent readers ({client}; {args.seconds:g} s per page "
                  f"after {args.warmup:g} s of warm-up; Accept: text/html, Accept-Language: ko)")
            print(f"  @{USERNAME} holds {seeded.posts:,} posts ({seeded.articles:,} of them articles) and "
                  f"{seeded.listings:,} listings, {seeded.creates:,} Create activities in its outbox "
                  f"(read back from the database; bulk insert and ANALYZE {seeded.seconds:.1f} s, setup {setup:.1f} s)")
            print(f"  {'page':<11} {'path':<50} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  "
                  f"p99 < {TARGET_MS:g} ms")
            for label, path, target in pages:
                problem = await asyncio.to_thread(_check, x.base_url + path)
                if problem:
                    print(f"  {label:<11} {path:<50} answered {problem}")
                    continue
                f = await _measure(args, x.base_url + path, script)
                verdict = ("met" if f.p99_ms < TARGET_MS else "not met") if target else ""
                print(f"  {label:<11} {path:<50} {f.rate:>7,.0f} {f.p50_ms:>8.1f} {f.p99_ms:>8.1f} {f.errors:>7,}  "
                      f"{verdict}", flush=True)
    finally:
        if x is not None:
            x.kill()
        await drop_database(admin_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10_000, help="posts on the account, the CLI's two included")
    parser.add_argument("--listings", type=int, default=1_000, help="listings on the account, the CLI's one included")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per page")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of load per page before measuring (0: none)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--env", action="append", default=[], metavar="FEDSERVER_X=VALUE",
                        help="a setting for the instance, e.g. FEDSERVER_DATABASE__POOL_MAX_SIZE=20")
    args = parser.parse_args()
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: use --client python")
    with database_server() as admin_url:
        asyncio.run(bench(args, admin_url))


if __name__ == "__main__":
    main()
