"""Inbox ingest: signed Create(Note) POSTs accepted durably per second, against the HTTP ceiling.

Both figures come from the same run, the same load generator and the same machine:
  ceiling  = a trivial aiohttp handler that reads the body and answers 202;
  ingest   = `fedserver run --role web` verifying every draft-cavage signature and
             committing every activity before answering 202.
The ratio ingest / ceiling is printed last. The load generator is wrk (Debian package
`wrk`) when installed, else a Python aiohttp client (slower; the ratio is then less
meaningful). Every request carries a distinct activity id, pre-signed before timing.

With --processes N (default 1) both servers run N processes sharing the port
(SO_REUSEPORT), as `[server] reuse_port` lets an operator run several web processes.

Usage: python bench/inbox_ingest.py [--seconds 8] [--connections 64] [--requests N] [--processes 1]
Database: see bench/benchdb.py (a database is created and dropped on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from fedserver.signatures import generate_rsa_keypair, sign_request  # noqa: E402

REMOTE = "http://remote.bench"
ACTOR = f"{REMOTE}/users/sender"
KEY_ID = f"{ACTOR}#main-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sign_batch(args: tuple[str, str, int, int]) -> list[tuple[str, dict]]:
    private_pem, host, start, count = args
    out = []
    for i in range(start, start + count):
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{REMOTE}/activities/{i}-{uuid.uuid4().hex[:8]}", "type": "Create", "actor": ACTOR,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {"id": f"{REMOTE}/notes/{i}", "type": "Note", "attributedTo": ACTOR,
                       "content": f"<p>bench note {i}: 오늘의 도자기</p>",
                       "to": ["https://www.w3.org/ns/activitystreams#Public"]},
        }
        body = json.dumps(activity)
        headers = {"Content-Type": "application/activity+json"}
        headers.update(sign_request("POST", "/inbox", headers, body.encode(), key_id=KEY_ID,
                                    private_key=private_pem, host=host))
        out.append((body, headers))
    return out


def presign(private_pem: str, host: str, total: int) -> list[tuple[str, dict]]:
    workers = os.cpu_count() or 2
    chunk = (total + workers - 1) // workers
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_sign_batch, [(private_pem, host, i * chunk, min(chunk, total - i * chunk))
                                       for i in range(workers) if i * chunk < total])
    return [item for part in parts for item in part]


WRK_SCRIPT = textwrap.dedent("""
    local requests = {}
    local counter = 0
    local bad = 0
    init = function(args)
      local f = io.open(args[1], "r")
      local thread_index = tonumber(args[2])
      local threads = tonumber(args[3])
      local n = 0
      for line in f:lines() do
        n = n + 1
        if n % threads == thread_index then
          local sep = string.find(line, "\\t")
          local headers_line = string.sub(line, 1, sep - 1)
          local body = string.sub(line, sep + 1)
          local headers = {}
          for k, v in string.gmatch(headers_line, "([^\\1]+)\\1([^\\2]+)\\2") do headers[k] = v end
          requests[#requests + 1] = wrk.format("POST", "/inbox", headers, body)
        end
      end
      f:close()
    end
    request = function()
      counter = counter + 1
      if counter > #requests then counter = 1 end
      return requests[counter]
    end
    response = function(status, headers, body)
      if status ~= 202 then bad = bad + 1 end
    end
    done = function(summary, latency, requests)
      io.write(string.format("non202 %d\\n", bad))
      io.write(string.format("completed %d\\n", summary.requests))
    end
""")


def write_wrk_inputs(signed: list[tuple[str, dict]], directory: Path) -> tuple[Path, Path]:
    data = directory / "requests.tsv"
    with data.open("w") as fh:
        for body, headers in signed:
            encoded = "".join(f"{k}\x01{v}\x02" for k, v in headers.items() if k.lower() != "host")
            fh.write(f"{encoded}\t{body}\n")
    script = directory / "post.lua"
    script.write_text(WRK_SCRIPT)
    return data, script


def run_wrk(url: str, script: Path, data: Path, seconds: int, connections: int) -> tuple[float, int, int]:
    """Requests/s, non-202 answers and requests completed, one wrk thread (the other core serves)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url, "--", str(data), "0", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    bad = int(next(line.split()[1] for line in out.splitlines() if line.startswith("non202")))
    done = int(next(line.split()[1] for line in out.splitlines() if line.startswith("completed")))
    return rate, bad, done


async def run_python_client(url: str, signed: list[tuple[str, dict]], seconds: int,
                            connections: int) -> tuple[float, int, int]:
    import aiohttp

    sent = bad = 0
    deadline = time.monotonic() + seconds
    index = iter(range(10**12))

    async def worker(session):
        nonlocal sent, bad
        while time.monotonic() < deadline:
            body, headers = signed[next(index) % len(signed)]
            async with session.post(url, data=body.encode(), headers=headers) as response:
                await response.read()
                bad += response.status != 202
                sent += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        start = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        return sent / (time.monotonic() - start), bad, sent


TRIVIAL_SERVER = textwrap.dedent("""
    import sys
    from aiohttp import web
    async def inbox(request):
        await request.read()
        return web.Response(status=202)
    app = web.Application()
    app.router.add_post("/inbox", inbox)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, reuse_port=True)
""")


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as exc:  # noqa: BLE001 - any answer, even 404/405, means it listens
            if hasattr(exc, "code"):
                return
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def prepare_database(admin_url: str, public_pem: str) -> str:
    """A fresh database that already knows the sender's key (no fetch during the run)."""
    url = await create_database(admin_url)
    conn = await asyncpg.connect(url)
    await conn.execute(
        """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, shared_inbox_uri,
                               key_id, public_key_pem, fetched_at)
           VALUES ($1, false, 'sender', 'remote.bench', 'Person', $2, $3, $4, $5, now())""",
        ACTOR, f"{ACTOR}/inbox", f"{REMOTE}/inbox", KEY_ID, public_pem,
    )
    await conn.close()
    return url


async def count_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM inbox_items")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=0,
                        help="distinct pre-signed activities (default: 12,000 per second of the run)")
    parser.add_argument("--processes", type=int, default=1, help="server processes for each of the two servers")
    args = parser.parse_args()
    args.requests = args.requests or 12_000 * args.seconds
    with database_server() as admin_url:
        bench(args, admin_url)


def bench(args: argparse.Namespace, admin_url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fedbench-"))
    private_pem, public_pem = generate_rsa_keypair()
    db_url = asyncio.run(prepare_database(admin_url, public_pem))

    trivial_port, fed_port = free_port(), free_port()
    host = f"127.0.0.1:{fed_port}"
    t0 = time.monotonic()
    signed = presign(private_pem, host, args.requests)
    print(f"pre-signed {len(signed)} requests in {time.monotonic() - t0:.1f} s")

    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSERVER_")}
    env.update({"FEDSERVER_INSTANCE__DOMAIN": host, "FEDSERVER_INSTANCE__SCHEME": "http",
                "FEDSERVER_SERVER__PORT": str(fed_port), "FEDSERVER_DATABASE__URL": db_url,
                "FEDSERVER_STORAGE__DATA_DIR": str(tmp / "data"), "FEDSERVER_LOGGING__ACCESS_LOG": "false",
                "FEDSERVER_LOGGING__LEVEL": "warning", "FEDSERVER_SERVER__REUSE_PORT": "true"})
    servers = []
    for _ in range(args.processes):
        servers.append(subprocess.Popen([sys.executable, "-c", TRIVIAL_SERVER, str(trivial_port)]))
        servers.append(subprocess.Popen([sys.executable, "-m", "fedserver", "run", "--role", "web"], env=env,
                                        cwd=tmp, stdout=subprocess.DEVNULL))
    use_wrk = shutil.which("wrk") is not None
    try:
        wait_http(f"http://127.0.0.1:{trivial_port}/inbox")
        wait_http(f"http://127.0.0.1:{fed_port}/healthz")
        if use_wrk:
            data, script = write_wrk_inputs(signed, tmp)
            run = lambda url: run_wrk(url, script, data, args.seconds, args.connections)  # noqa: E731
        else:
            print("wrk not found (apt-get install wrk); using the slower Python load generator")
            run = lambda url: asyncio.run(run_python_client(url, signed, args.seconds, args.connections))  # noqa: E731
        ceiling, _, _ = run(f"http://127.0.0.1:{trivial_port}/inbox")
        ingest, bad, completed = run(f"http://127.0.0.1:{fed_port}/inbox")
        stored = asyncio.run(count_rows(db_url))
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)
        asyncio.run(drop_database(admin_url, db_url))
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"load generator:          {'wrk' if use_wrk else 'python aiohttp'}, "
          f"{args.connections} connections, {args.seconds} s per run, {args.processes} server process(es) each")
    print(f"HTTP ceiling (trivial):  {ceiling:,.0f} requests/s")
    print(f"inbox ingest:            {ingest:,.0f} signed activities/s accepted (non-202 answers: {bad})")
    print(f"rows stored durably:     {stored:,} ({completed:,} answers counted; requests still in flight "
          f"when the run stopped are stored but not counted)")
    if completed > len(signed):
        # Repeats are answered 202 without a second insert, which would flatter the figure.
        print(f"WARNING: only {len(signed):,} distinct activities were pre-signed, so some were sent twice; "
              f"rerun with --requests {completed * 2:,}")
    print(f"ratio ingest / ceiling:  {ingest / ceiling:.2f}")


if __name__ == "__main__":
    main()
