"""The PostgreSQL server the benchmarks run on, and a fresh migrated database on it.

The server: $FEDSERVER_BENCH_DATABASE_URL, else $FEDSERVER_TEST_DATABASE_URL, else an
embedded PostgreSQL in a temporary directory (stopped afterwards). Each bench creates
its own database on it and drops it at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from fedserver.db import migrate  # noqa: E402
from tests.support.database import with_database  # noqa: E402


@contextmanager
def database_server() -> Iterator[str]:
    """The admin URL of the server to create bench databases on."""
    url = os.environ.get("FEDSERVER_BENCH_DATABASE_URL") or os.environ.get("FEDSERVER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from fedserver.embedded import start_embedded

    with tempfile.TemporaryDirectory(prefix="fedbench-pg-") as tmp:
        embedded = start_embedded(Path(tmp) / "pg")
        try:
            yield embedded.url
        finally:
            embedded.stop()


async def create_database(admin_url: str) -> str:
    """A new database with every migration applied; returns its URL."""
    name = f"fedbench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def drop_database(admin_url: str, url: str) -> None:
    """Drop a bench database, closing whatever is still connected to it."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()
