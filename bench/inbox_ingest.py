"""Inbox ingest and processing: signed activities accepted and processed per second, against the HTTP ceiling.

Every figure comes from one run, one load generator (wrk, Debian package `wrk`; a slower
Python client when it is missing) and one machine:
  ceiling    = a trivial aiohttp handler that reads the body and answers 202;
  accepted/s = signed activities answered 202 by fedserver (every signature verified and
               every activity committed before the answer);
  processed/s (--role all) = inbox rows finished (done, ignored or failed) / (last
               `finished_at` - first `received_at`), the backlog drained end to end.

--role all (default): a burst of --burst distinct pre-signed activities (sent once each) at
`fedserver run` with its default roles (web and workers in one process), where a local
account follows every sender, so each Create is stored, indexed and fanned out to a home
timeline. Also printed: the drain time, the process's RSS (idle, peak, after the drain),
and the p99 of `GET /api/v1/timelines/home` polled by that account while the backlog drains.
--role web: the inbox alone (`fedserver run --role web`, nothing processed) for --seconds.

--mix create=50,like=30,announce=15,follow=3,delete=2 sets the activity mix (likes and
boosts of stored local posts; follows of the local account; deletes of the sender's earlier
notes); --senders N --hosts H spreads the burst over N remote actors on H hosts (default one
actor, the worst case: its activities must be processed in order); --unknown-key leaves every
sender unknown, so each first contact fetches the actor and its key from a local actor server.
With --processes N, --role web runs N server processes sharing the port (SO_REUSEPORT);
--role all runs N `--role web` and N `--role worker` processes instead of one `run`.

Usage: python bench/inbox_ingest.py [--role all|web] [--burst 40000] [--seconds 8] [--connections 64]
                                    [--mix ...] [--senders 1] [--hosts 1] [--unknown-key] [--processes 1]
                                    [--env FEDSERVER_X=VALUE]...
       python bench/inbox_ingest.py --check-refusals   (the bench counts what a refusing server answers)
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from bench.loadgen import ACTOR_SERVER, TRIVIAL_SERVER, PythonClient, Wrk, free_port, wait_http  # noqa: E402
from fedserver.signatures import generate_rsa_keypair, sign_request  # noqa: E402

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
LOCAL_POSTS = 2000  # stored local posts that Likes and Announces point at


# -- the activities ---------------------------------------------------------------------------------------------

def sender_uris(base: str | None, senders: int, hosts: int) -> list[str]:
    """Actor ids: on `hosts` made-up hosts, or all on the local actor server at `base`."""
    if base:
        return [f"{base}/users/s{i}" for i in range(senders)]
    return [f"http://remote{i % hosts}.bench/users/s{i}" for i in range(senders)]


def parse_mix(text: str) -> list[tuple[str, int]]:
    parts = [(name.strip(), int(weight)) for name, weight in (p.split("=") for p in text.split(","))]
    unknown = {name for name, _ in parts} - {"create", "like", "announce", "follow", "delete"}
    if unknown or sum(w for _, w in parts) <= 0:
        raise SystemExit(f"--mix: unknown kinds {sorted(unknown)} or no weight")
    return parts


def plan(total: int, mix: list[tuple[str, int]], actors: list[str], local_posts: list[str],
         reader: str, *, mention_reader: bool = False) -> list[dict]:
    """`total` distinct activities, kinds spread evenly by weight, senders taking turns.

    `mention_reader`: notes mention the reader (senders nobody here follows are kept only then).
    """
    weights = sum(w for _, w in mix)
    slots = [name for name, w in mix for _ in range(w)]
    created: dict[str, list[str]] = {actor: [] for actor in actors}
    out = []
    for i in range(total):
        actor = actors[i % len(actors)]
        kind = slots[(i * 7) % weights] if len(mix) > 1 else mix[0][0]
        base = {"@context": "https://www.w3.org/ns/activitystreams", "actor": actor, "to": [PUBLIC],
                "id": f"{actor}/activities/{i}-{uuid.uuid4().hex[:8]}"}
        if kind == "delete" and created[actor]:
            out.append({**base, "type": "Delete", "object": created[actor].pop(0)})
        elif kind == "like":
            out.append({**base, "type": "Like", "object": local_posts[(i * 13) % len(local_posts)]})
        elif kind == "announce":
            out.append({**base, "type": "Announce", "object": local_posts[(i * 17) % len(local_posts)]})
        elif kind == "follow":
            out.append({**base, "type": "Follow", "object": reader})
        else:
            note = f"{actor}/notes/{i}"
            created[actor].append(note)
            tags = [{"type": "Hashtag", "name": "#공방"}]
            cc = [reader] if mention_reader else []
            if mention_reader:
                tags.append({"type": "Mention", "href": reader, "name": "@reader"})
            out.append({**base, "type": "Create", "cc": cc,
                        "object": {"id": note, "type": "Note", "attributedTo": actor, "to": [PUBLIC], "cc": cc,
                                   "content": f"<p>bench note {i}: 오늘의 도자기 #공방</p>", "tag": tags}})
    return out


def _sign_batch(args: tuple[str, str, list[dict]]) -> list[tuple[str, dict]]:
    private_pem, host, activities = args
    out = []
    for activity in activities:
        body = json.dumps(activity)
        headers = {"Content-Type": "application/activity+json"}
        headers.update(sign_request("POST", "/inbox", headers, body.encode(), key_id=f"{activity['actor']}#main-key",
                                    private_key=private_pem, host=host))
        out.append((body, headers))
    return out


def presign(private_pem: str, host: str, activities: list[dict]) -> list[tuple[str, dict]]:
    workers = os.cpu_count() or 2
    chunk = (len(activities) + workers - 1) // workers
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_sign_batch, [(private_pem, host, activities[i:i + chunk])
                                       for i in range(0, len(activities), chunk)])
    return [item for part in parts for item in part]


# -- the database -----------------------------------------------------------------------------------------------

async def prepare_database(url: str, public_pem: str, actors: list[str], *, known: bool, reader: str | None,
                           base_url: str) -> tuple[list[str], str | None]:
    """Senders (and their keys unless unknown), the reader following each, stored local posts; (post ids, token)."""
    conn = await asyncpg.connect(url)
    try:
        if known:
            await conn.execute(
                """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, shared_inbox_uri,
                                       key_id, public_key_pem, fetched_at)
                   SELECT u, false, split_part(u, '/', 5), split_part(u, '/', 3), 'Person', u || '/inbox',
                          'http://' || split_part(u, '/', 3) || '/inbox', u || '#main-key', $2, now()
                   FROM unnest($1::text[]) AS u""",
                actors, public_pem,
            )
        if reader is None:
            return [], None
        reader_id = await conn.fetchval("SELECT id FROM actors WHERE is_local AND username = $1", reader)
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, activity_uri, state, accepted_at)
               SELECT $1, a.id, $2 || '/follows/' || a.id, 'accepted', now() FROM actors a WHERE a.uri = ANY($3)""",
            reader_id, base_url, actors,
        )
        posts = [f"{base_url}/bench/posts/{i}" for i in range(LOCAL_POSTS)]
        await conn.execute(
            """INSERT INTO objects (uri, object_type, actor_id, is_local, content, visibility)
               SELECT u, 'Note', $1, true, '<p>local post</p>', 'public' FROM unnest($2::text[]) AS u""",
            reader_id, posts,
        )
        # A running instance's tables have planner statistics (autovacuum keeps them); a database created a
        # moment ago has none, and PostgreSQL then plans the posts' lookups by id as scans of the whole table.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return posts, None


async def issue_reader_token(url: str, reader: str) -> str:
    from fedserver.api.oauth_service import issue_token, register_app

    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        app, _ = await register_app(pool, name="bench", website=None, redirect_uris=["urn:ietf:wg:oauth:2.0:oob"],
                                    scopes=("read",))
        async with pool.acquire() as conn:
            reader_id = await conn.fetchval("SELECT id FROM actors WHERE is_local AND username = $1", reader)
            return (await issue_token(conn, app, reader_id, ("read",))).access_token
    finally:
        await pool.close()


async def inbox_figures(url: str) -> tuple[int, int, float | None]:
    """(rows, rows finished, seconds from the first received to the last finished)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT count(*) AS rows, count(*) FILTER (WHERE state <> 'queued') AS finished,
                      extract(epoch FROM max(finished_at) - min(received_at)) AS span FROM inbox_items""")
        return row["rows"], row["finished"], float(row["span"]) if row["span"] is not None else None
    finally:
        await conn.close()


class QueuedRows:
    """Rows not yet finished, counted on one connection kept open: cheap while draining (the partial index of
    queued rows), where counting every row every 0.2 s took about 30 ms of the database each time, and a new
    connection and event loop each time took CPU from the server and the timeline sampler while they measured."""

    def __init__(self, url: str):
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))

    def __call__(self) -> int:
        count = self.conn.fetchval("SELECT count(*) FROM inbox_items WHERE state = 'queued'")
        return self.loop.run_until_complete(count)

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


async def missing_activities(url: str, signed: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Signed activities of the burst with no inbox row (cut off in flight when wrk stopped)."""
    conn = await asyncpg.connect(url)
    try:
        stored = {r["activity_uri"] for r in await conn.fetch("SELECT activity_uri FROM inbox_items")}
    finally:
        await conn.close()
    return [(body, headers) for body, headers in signed if json.loads(body)["id"] not in stored]


async def inbox_states(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {r["state"]: r["n"] for r in await conn.fetch(
            "SELECT state, count(*) AS n FROM inbox_items GROUP BY state ORDER BY state")}
    finally:
        await conn.close()


# -- measuring the server ---------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Polls the home timeline one request at a time and samples RSS, until stopped."""

    def __init__(self, base_url: str, token: str, pids: list[int]):
        super().__init__(daemon=True)
        self.base_url, self.token, self.pids = base_url, token, pids
        self.stop_event = threading.Event()
        self.phase = "burst"
        self.latencies: dict[str, list[float]] = {"burst": [], "drain": []}
        self.errors = 0
        self.peak_rss = 0.0

    def run(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.base_url}/api/v1/timelines/home?limit=20",
                                         headers={"Authorization": f"Bearer {self.token}"})
        while not self.stop_event.is_set():
            self.peak_rss = max(self.peak_rss, sum(rss_mb(pid) for pid in self.pids))
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                self.latencies[self.phase].append((time.perf_counter() - start) * 1000)
            except OSError:
                self.errors += 1
            self.stop_event.wait(0.05)


def p99(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    return f"{statistics.quantiles(values, n=100)[98]:.1f} ms (median {statistics.median(values):.1f} ms, " \
           f"{len(values)} requests)"


# -- the runs ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=("all", "web"), default="all")
    parser.add_argument("--burst", type=int, default=40_000, help="activities sent once each (--role all)")
    parser.add_argument("--seconds", type=int, default=8, help="length of the ceiling run (and of --role web)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=0,
                        help="--role web: distinct pre-signed activities (default: 12,000 per second of the run)")
    parser.add_argument("--mix", default="create=100", help="kind=weight,...: create, like, announce, follow, delete")
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--unknown-key", action="store_true", help="senders unknown: keys fetched on first contact")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="FEDSERVER_X=VALUE",
                        help="a setting for the server processes, e.g. FEDSERVER_FEDERATION__DELIVERY_CONCURRENCY=16")
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--check-refusals", action="store_true",
                        help="only check that the bench counts refusals (a server answering 500 to everything)")
    args = parser.parse_args()
    if args.check_refusals:
        check_refusals()
        return
    args.requests = args.requests or 12_000 * args.seconds
    with database_server() as admin_url:
        bench(args, admin_url)


def check_refusals() -> None:
    """A server that answers 500 to every POST must show as that many refusals."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="fedbench-"))
    private_pem, _ = generate_rsa_keypair()
    port = free_port()
    signed = presign(private_pem, f"127.0.0.1:{port}",
                     plan(500, [("create", 1)], sender_uris(None, 1, 1), [], ""))
    server = subprocess.Popen([sys.executable, "-c", TRIVIAL_SERVER, str(port), "500"])
    try:
        wait_http(f"http://127.0.0.1:{port}/inbox")
        _, bad, answered = Wrk(signed, tmp).run(f"http://127.0.0.1:{port}/inbox", 16)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"a server answering 500 to everything: {answered} answers, {bad} counted as refused")
    if bad != answered or answered < len(signed):
        raise SystemExit("FAIL: the bench does not count refusals")
    print("ok: every refusal counted")


def bench(args: argparse.Namespace, admin_url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fedbench-"))
    private_pem, public_pem = generate_rsa_keypair()
    db_url = asyncio.run(create_database(admin_url))
    trivial_port, fed_port = free_port(), free_port()
    host = f"127.0.0.1:{fed_port}"
    base_url = f"http://{host}"
    helpers: list[subprocess.Popen] = []
    servers: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSERVER_")}
    env.update({"FEDSERVER_INSTANCE__DOMAIN": host, "FEDSERVER_INSTANCE__SCHEME": "http",
                "FEDSERVER_SERVER__HOST": "127.0.0.1", "FEDSERVER_SERVER__PORT": str(fed_port),
                "FEDSERVER_DATABASE__URL": db_url, "FEDSERVER_STORAGE__DATA_DIR": str(tmp / "data"),
                "FEDSERVER_LOGGING__ACCESS_LOG": "false", "FEDSERVER_LOGGING__LEVEL": "error",
                "FEDSERVER_SERVER__REUSE_PORT": "true", "FEDSERVER_API__RATE_LIMIT_PER_5MIN": "0",
                "FEDSERVER_FEDERATION__ALLOW_PRIVATE_ADDRESSES": "true"})
    env.update(dict(item.split("=", 1) for item in args.env))
    try:
        actor_base = None
        if args.unknown_key:
            actor_port = free_port()
            actor_base = f"http://127.0.0.1:{actor_port}"
            (tmp / "key.pem").write_text(public_pem)
            helpers.append(subprocess.Popen([sys.executable, "-c", ACTOR_SERVER, str(actor_port),
                                             str(tmp / "key.pem")]))
            wait_http(f"{actor_base}/inbox")
        actors = sender_uris(actor_base, args.senders, args.hosts)
        reader = "reader" if args.role == "all" else None
        if reader:
            created = subprocess.run([sys.executable, "-m", "fedserver", "account", "create", reader], env=env,
                                     cwd=tmp, capture_output=True, text=True)
            if created.returncode != 0:
                raise SystemExit(f"account create failed: {created.stderr}")
        posts, _ = asyncio.run(prepare_database(db_url, public_pem, actors, known=not args.unknown_key,
                                                reader=reader, base_url=base_url))
        token = asyncio.run(issue_reader_token(db_url, reader)) if reader else None
        total = args.burst if args.role == "all" else args.requests
        activities = plan(total, parse_mix(args.mix), actors, posts, f"{base_url}/users/reader",
                          mention_reader=args.unknown_key)
        t0 = time.monotonic()
        signed = presign(private_pem, host, activities)
        print(f"pre-signed {len(signed):,} activities in {time.monotonic() - t0:.1f} s "
              f"({args.senders} sender(s) on {1 if args.unknown_key else min(args.hosts, args.senders)} host(s), "
              f"mix {args.mix}{', keys unknown' if args.unknown_key else ''})")
        generator = (Wrk if shutil.which("wrk") else PythonClient)(signed, tmp)
        if isinstance(generator, PythonClient):
            print("wrk not found (apt-get install wrk); using the slower Python load generator")

        helpers.append(subprocess.Popen([sys.executable, "-c", TRIVIAL_SERVER, str(trivial_port)]))
        wait_http(f"http://127.0.0.1:{trivial_port}/inbox")
        ceiling, _, _ = generator.run(f"http://127.0.0.1:{trivial_port}/inbox", args.connections,
                                      seconds=args.seconds)

        roles = ([["run", "--role", "web"], ["run", "--role", "worker"]] if args.role == "all" and args.processes > 1
                 else [["run"]] if args.role == "all" else [["run", "--role", "web"]])
        for _ in range(args.processes):
            for role in roles:
                servers.append(subprocess.Popen([sys.executable, "-m", "fedserver", *role], env=env, cwd=tmp,
                                                stdout=subprocess.DEVNULL))
        wait_http(f"{base_url}/healthz")
        time.sleep(3)
        pids = [proc.pid for proc in servers]
        idle_rss = sum(rss_mb(pid) for pid in pids)
        if args.role == "web":
            run_web(args, generator, base_url, db_url, ceiling)
        else:
            run_all(args, generator, base_url, db_url, ceiling, token, pids, idle_rss)
    finally:
        for proc in servers + helpers:
            proc.terminate()
        for proc in servers + helpers:
            proc.wait(30)
        asyncio.run(drop_database(admin_url, db_url))
        shutil.rmtree(tmp, ignore_errors=True)


def run_web(args, generator, base_url: str, db_url: str, ceiling: float) -> None:
    ingest, bad, completed = generator.run(f"{base_url}/inbox", args.connections, seconds=args.seconds)
    stored, _, _ = asyncio.run(inbox_figures(db_url))
    print(f"load generator:          {type(generator).__name__}, {args.connections} connections, "
          f"{args.seconds} s per run, {args.processes} server process(es) each")
    print(f"HTTP ceiling (trivial):  {ceiling:,.0f} requests/s")
    print(f"inbox ingest:            {ingest:,.0f} signed activities/s accepted (non-202 answers: {bad})")
    print(f"rows stored durably:     {stored:,} ({completed:,} answers counted; requests still in flight "
          f"when the run stopped are stored but not counted)")
    if completed > args.requests:
        # Repeats are answered 202 without a second insert, which would flatter the figure.
        print(f"WARNING: only {args.requests:,} distinct activities were pre-signed, so some were sent twice; "
              f"rerun with --requests {completed * 2:,}")
    print(f"ratio ingest / ceiling:  {ingest / ceiling:.2f}")


def run_all(args, generator, base_url: str, db_url: str, ceiling: float, token: str, pids: list[int],
            idle_rss: float) -> None:
    sampler = Sampler(base_url, token, pids)
    sampler.start()
    accepted, bad, answered = generator.run(f"{base_url}/inbox", args.connections)
    # wrk stops when it has as many answers as activities; the last few sent may still have been in
    # flight (and dropped with the connection): send those once more so the whole burst is there.
    missing = asyncio.run(missing_activities(db_url, generator.signed))
    if missing:
        PythonClient(missing, Path()).run(f"{base_url}/inbox", min(len(missing), 8))
    sampler.phase = "drain"
    burst_end = time.monotonic()
    deadline = burst_end + args.drain_timeout
    queued_rows = QueuedRows(db_url)
    left_at_burst_end = queued_rows()
    while queued_rows() and time.monotonic() < deadline:
        time.sleep(0.2)
    queued_rows.close()
    drain_after_burst = time.monotonic() - burst_end
    rows, finished, span = asyncio.run(inbox_figures(db_url))
    sampler.stop_event.set()
    sampler.join()
    time.sleep(5)
    final_rss = sum(rss_mb(pid) for pid in pids)
    states = asyncio.run(inbox_states(db_url))

    print(f"load generator:            {type(generator).__name__}, {args.connections} connections; "
          f"server: {'fedserver run' if args.processes == 1 else f'{args.processes} web + {args.processes} worker'}")
    print(f"HTTP ceiling (trivial):    {ceiling:,.0f} requests/s")
    print(f"accepted:                  {accepted:,.0f} activities/s during the burst "
          f"({answered:,} answers, non-202: {bad})")
    print(f"ratio accepted / ceiling:  {accepted / ceiling:.2f}")
    print(f"inbox rows:                {rows:,} ({', '.join(f'{k} {v:,}' for k, v in states.items())}; "
          f"{len(missing)} cut off in flight when wrk stopped, sent again)")
    if finished < rows:
        print(f"NOT DRAINED: {rows - finished:,} rows still queued after {args.drain_timeout:.0f} s")
    print(f"processed end to end:      {finished / span:,.0f} activities/s "
          f"({finished:,} rows, first received to last finished {span:.1f} s)")
    print(f"drain after the burst:     {drain_after_burst:.1f} s ({rows - left_at_burst_end:,} processed during "
          f"the burst, {left_at_burst_end:,} after it: {left_at_burst_end / drain_after_burst:,.0f}/s)")
    print(f"RSS (server processes):    idle {idle_rss:.0f} MB, peak {sampler.peak_rss:.0f} MB, "
          f"after the drain {final_rss:.0f} MB")
    print(f"home timeline p99, burst:  {p99(sampler.latencies['burst'])}")
    print(f"home timeline p99, drain:  {p99(sampler.latencies['drain'])}"
          f"{f' ({sampler.errors} errors)' if sampler.errors else ''}")


if __name__ == "__main__":
    main()
