"""Test databases: one migrated template per session, one fresh copy of it per test.

`FEDSERVER_TEST_DATABASE_URL` names a server to use (any database on it; the tests
create and drop their own). Without it, an embedded PostgreSQL is started in a
temporary directory for the session.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from fedserver.db import Migration, load_migrations, migrate
from fedserver.embedded import EmbeddedPostgres, start_embedded


# Deliveries with the body each sends (a body is stored once per activity, in delivery_bodies).
DELIVERED = "deliveries JOIN delivery_bodies b ON b.id = body_id"


def query(url: str, sql: str, *args) -> list[asyncpg.Record]:
    """Run one query on its own connection, from synchronous test code (beside live instances)."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@dataclass
class TestCluster:
    """A PostgreSQL server the tests may create databases on."""

    admin_url: str
    template: str
    embedded: EmbeddedPostgres | None = None

    async def create_database(self) -> str:
        """A new database cloned from the migrated template; returns its URL."""
        name = f"fedtest_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        return with_database(self.admin_url, name)

    async def create_empty_database(self) -> str:
        """A new database with no schema at all."""
        name = f"fedtest_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return with_database(self.admin_url, name)

    async def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def just_before(cluster: TestCluster, name: str) -> AsyncIterator[tuple[asyncpg.Connection, Migration]]:
    """A fresh database migrated up to, not including, the migration `name`: (connection, that migration).

    For testing what a migration does to rows written under the schema before it.
    """
    migrations = load_migrations()
    index = next(i for i, m in enumerate(migrations) if m.name == name)
    url = await cluster.create_empty_database()
    conn = await asyncpg.connect(url)
    try:
        for migration in migrations[:index]:
            await conn.execute(migration.sql)
        yield conn, migrations[index]
    finally:
        await conn.close()
        await cluster.drop_database(url)


async def _make_template(admin_url: str) -> str:
    name = f"fedtest_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_database(admin_url, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return name


def start_cluster(tmp_dir: Path) -> TestCluster:
    """Use FEDSERVER_TEST_DATABASE_URL, or start an embedded server in `tmp_dir`."""
    url = os.environ.get("FEDSERVER_TEST_DATABASE_URL", "").strip()
    embedded = None
    if not url:
        embedded = start_embedded(tmp_dir)
        url = embedded.url
    template = asyncio.run(_make_template(url))
    return TestCluster(admin_url=url, template=template, embedded=embedded)


def stop_cluster(cluster: TestCluster) -> None:
    """Drop this session's template and stop the embedded server if one was started."""
    async def drop_template() -> None:
        conn = await asyncpg.connect(cluster.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{cluster.template}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop_template())
    if cluster.embedded is not None:
        cluster.embedded.stop()
