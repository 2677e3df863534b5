"""The Fedify test peer (tests/peer) as a subprocess, driven through its control API."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

PEER_DIR = Path(__file__).resolve().parents[1] / "peer"


class PeerError(Exception):
    """The peer's control API answered with an error."""


def ensure_peer_installed() -> None:
    """`npm ci` the peer's pinned packages once, so the plain test command needs nothing else.

    The test files run on several xdist workers: the first to get here installs while the others
    wait on a file lock, so no two `npm ci` run at once in one directory and no worker sees a
    half-written `node_modules` (the check is made under the lock)."""
    with (PEER_DIR / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if all((PEER_DIR / "node_modules" / name).is_dir() for name in ("@fedify/fedify", "masto")):
                return
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("the federation tests need Node.js 20+ and npm on PATH")
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR,
                           check=True, timeout=600)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class FedifyPeer:
    """A running peer: `control("follow", actor=..., target=...)` and friends."""

    def __init__(self, log_path: Path):
        ensure_peer_installed()
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            ["node", str(PEER_DIR / "peer.mjs"), "--port", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the Fedify peer did not start: {line!r}\n{log_path.read_text()[-3000:]}")
        self.base_url = line.split()[1].strip()

    def actor_url(self, name: str) -> str:
        return f"{self.base_url}/users/{name}"

    def control(self, action: str, method: str = "POST", **payload) -> dict | list:
        """Call `/_control/<action>`; GET parameters go in the query string."""
        url = f"{self.base_url}/_control/{action}"
        data = None
        if method == "GET":
            if payload:
                url += "?" + "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in payload.items())
        else:
            data = json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise PeerError(f"{action}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def inbox(self, actor: str | None = None, *, wait: float = 0, min_count: int = 1, **filters) -> list[dict]:
        """Activities the peer received, optionally waiting until at least `min_count` match."""
        params = dict(filters)
        if actor:
            params["actor"] = actor
        if wait:
            params.update(wait=wait, min=min_count)
        return self.control("inbox", method="GET", **params)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self._log.close()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
