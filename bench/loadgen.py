"""Load generators and stand-in servers for the inbox bench: wrk driven by a Lua script that counts
every answer per thread (with a slower Python client when wrk is missing), a trivial aiohttp
handler that gives the ceiling, and an actor server for senders whose keys are fetched on first
contact. Used by `inbox_ingest.py`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Counters live in each wrk thread's own Lua state: `done` (in the main state) reads them through
# the thread handles that `setup` collected. With `limit`, each request is sent once and the
# thread stops when every one is answered (the few requests in flight at the end repeat the last
# one, which the server answers 202 without storing it twice); it then writes the marker file,
# on which the bench interrupts wrk (wrk sleeps its whole -d otherwise; SIGINT ends that sleep
# and still runs `done`).
WRK_SCRIPT = textwrap.dedent("""
    local threads = {}
    setup = function(thread) table.insert(threads, thread) end
    requests = {}
    counter = 0
    bad = 0
    answered = 0
    limit = 0
    marker = nil
    init = function(args)
      local f = io.open(args[1], "r")
      limit = tonumber(args[2])
      marker = args[3]
      for line in f:lines() do
        local sep = string.find(line, "\\t")
        local headers_line = string.sub(line, 1, sep - 1)
        local body = string.sub(line, sep + 1)
        local headers = {}
        for k, v in string.gmatch(headers_line, "([^\\1]+)\\1([^\\2]+)\\2") do headers[k] = v end
        requests[#requests + 1] = wrk.format("POST", "/inbox", headers, body)
      end
      f:close()
    end
    request = function()
      counter = counter + 1
      if counter > #requests then
        if limit > 0 then return requests[#requests] end
        counter = 1
      end
      return requests[counter]
    end
    response = function(status, headers, body)
      answered = answered + 1
      if status ~= 202 then bad = bad + 1 end
      if limit > 0 and answered == limit then
        local m = io.open(marker, "w")
        m:write("done")
        m:close()
        wrk.thread:stop()
      end
    end
    done = function(summary, latency, requests)
      local total_bad, total_answered = 0, 0
      for _, thread in ipairs(threads) do
        total_bad = total_bad + thread:get("bad")
        total_answered = total_answered + thread:get("answered")
      end
      io.write(string.format("non202 %d\\n", total_bad))
      io.write(string.format("answered %d\\n", total_answered))
      io.write(string.format("elapsed_us %d\\n", summary.duration))
    end
""")


class Wrk:
    """wrk with the script above: one thread (the other core serves)."""

    def __init__(self, signed: list[tuple[str, dict]], directory: Path):
        self.data = directory / "requests.tsv"
        with self.data.open("w") as fh:
            for body, headers in signed:
                encoded = "".join(f"{k}\x01{v}\x02" for k, v in headers.items() if k.lower() != "host")
                fh.write(f"{encoded}\t{body}\n")
        self.script = directory / "post.lua"
        self.script.write_text(WRK_SCRIPT)
        self.count = len(signed)
        self.signed = signed

    def run(self, url: str, connections: int, *, seconds: int = 0) -> tuple[float, int, int]:
        """(answers/s, non-202 answers, answers): for `seconds`, or (0) until each request is answered once."""
        duration = seconds or 3600
        marker = self.data.with_suffix(".done")
        marker.unlink(missing_ok=True)
        proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(self.script), url,
             "--", str(self.data), "0" if seconds else str(self.count), str(marker)],
            stdout=subprocess.PIPE, text=True,
        )
        if not seconds:
            while proc.poll() is None and not marker.exists():
                time.sleep(0.005)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"wrk exited with {proc.returncode}")
        figures = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
                   if line.split() and line.split()[0] in ("non202", "answered", "elapsed_us")}
        return figures["answered"] / (figures["elapsed_us"] / 1e6), figures["non202"], figures["answered"]


class PythonClient:
    """The fallback load generator (slower: the ratio is then less meaningful)."""

    def __init__(self, signed: list[tuple[str, dict]], _directory: Path):
        self.signed = signed

    def run(self, url: str, connections: int, *, seconds: int = 0) -> tuple[float, int, int]:
        return asyncio.run(self._run(url, connections, seconds))

    async def _run(self, url: str, connections: int, seconds: int) -> tuple[float, int, int]:
        import aiohttp

        sent = bad = 0
        deadline = time.monotonic() + (seconds or 3600)
        index = iter(range(10**12))

        async def worker(session):
            nonlocal sent, bad
            while time.monotonic() < deadline:
                i = next(index)
                if not seconds and i >= len(self.signed):
                    return
                body, headers = self.signed[i % len(self.signed)]
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
    status = int(sys.argv[2]) if len(sys.argv) > 2 else 202
    async def inbox(request):
        await request.read()
        return web.Response(status=status)
    app = web.Application()
    app.router.add_post("/inbox", inbox)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, reuse_port=True)
""")

# Serves actor documents (with their keys) for --unknown-key: GET /users/NAME.
ACTOR_SERVER = textwrap.dedent("""
    import json, sys
    from aiohttp import web
    port, pem = int(sys.argv[1]), open(sys.argv[2]).read()
    base = f"http://127.0.0.1:{port}"
    async def actor(request):
        uri = f"{base}/users/{request.match_info['name']}"
        return web.json_response({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": request.match_info["name"],
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "endpoints": {"sharedInbox": f"{base}/inbox"},
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": pem}},
            content_type="application/activity+json")
    async def inbox(request):
        await request.read()
        return web.Response(status=202)
    app = web.Application()
    app.router.add_get("/users/{name}", actor)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_post("/inbox", inbox)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
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
