"""Run real `fedserver` processes for tests: the command line and the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def instance_env(*, database_url: str, data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict:
    """Environment for a loopback test instance at http://127.0.0.1:PORT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSERVER_")}
    env.update({
        "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{port}",
        "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_SERVER__HOST": "127.0.0.1",
        "FEDSERVER_SERVER__PORT": str(port),
        "FEDSERVER_DATABASE__URL": database_url,
        "FEDSERVER_STORAGE__DATA_DIR": str(data_dir),
        "FEDSERVER_FEDERATION__ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDSERVER_LOGGING__FORMAT": "text",
    })
    env.update(extra or {})
    return env


def fedserver(*args: str, env: dict, stdin: str | None = None, cwd: Path | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one `fedserver` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "fedserver", *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=cwd,
    )


@dataclass
class Instance:
    """A `fedserver run` process on 127.0.0.1."""

    port: int
    env: dict
    cwd: Path
    log_path: Path
    process: subprocess.Popen | None = None
    starts: int = field(default=0)
    launcher: tuple[str, ...] = ()  # a command that runs the server, such as `unshare --pid ...`

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until /healthz answers 200."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "fedserver", "run"], env=self.env, cwd=self.cwd,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fedserver exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"fedserver did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the server process only (its embedded PostgreSQL survives, as after a crash)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def command(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run a one-shot command against the same configuration."""
        return fedserver(*args, env=self.env, stdin=stdin, cwd=self.cwd)


def named_instance(database_url: str, root: Path, name: str, extra: dict[str, str] | None = None) -> Instance:
    """An instance (not started) whose data, log and working directory are `root/name`."""
    port = free_port()
    (root / name).mkdir(parents=True, exist_ok=True)
    env = instance_env(database_url=database_url, data_dir=root / name / "data", port=port, extra=extra)
    return Instance(port=port, env=env, cwd=root / name, log_path=root / name / "server.log")


@contextlib.asynccontextmanager
async def running_instances(pg_cluster, root: Path, names: str,
                            extra: dict[str, str] | None = None) -> AsyncIterator[list[Instance]]:
    """One started instance per letter of `names`, each on a fresh database; killed and dropped afterwards."""
    urls = [await pg_cluster.create_database() for _ in names]
    instances = [named_instance(url, root, name, extra) for url, name in zip(urls, names)]
    try:
        for x in instances:
            await asyncio.to_thread(x.start)
        yield instances
    finally:
        for x in instances:
            x.kill()
        for url in urls:
            await pg_cluster.drop_database(url)


async def fetchval(x: Instance, query: str, *args):
    """One value from an instance's database."""
    conn = await asyncpg.connect(x.env["FEDSERVER_DATABASE__URL"])
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
