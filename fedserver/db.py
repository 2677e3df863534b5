"""Database access: the asyncpg pool, the embedded server when no URL is set, migrations."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import AsyncIterator, Callable

import asyncpg

from .config import Settings
from .embedded import EmbeddedPostgres, start_embedded
from .repo.session_state import holds_session_state

log = logging.getLogger("fedserver.db")

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every fedserver process.
_MIGRATION_LOCK = 0x6665_6473_6D69_67  # "fedsmig"


# Errors that mean "the database cannot be reached right now" (it restarts, is down, is starting up or
# shutting down, or has no connection slot free): a worker waits and tries again, a request gets 503.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.TooManyConnectionsError,
    # what asyncpg raises when the connection dies during a COMMIT ("cannot switch to state 15")
    asyncpg.InternalClientError)


def database_down(exc: BaseException) -> bool:
    """Whether `exc` says the database is out of reach for now, not that a statement or the code is wrong.

    Of the OSErrors only the connection kinds count (refused, reset, no socket file, timed out):
    a full disk or a permission problem is something else.
    """
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, FileNotFoundError, TimeoutError)):
        return False
    return isinstance(exc, DATABASE_DOWN)


class DatabaseError(Exception):
    """The database cannot be reached or is not in a usable state."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, so an edit after it was applied is noticed."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Read `migrations/NNNN_name.sql` in order; refuse gaps and duplicates."""
    found: list[Migration] = []
    for entry in resources.files("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise DatabaseError(f"migration numbers must run 0001, 0002, ... without gaps; found {migration.version:04d}")
    return found


async def ping(conn: asyncpg.Connection) -> None:
    """A round trip: raises when the database does not answer."""
    await conn.fetchval("SELECT 1")


async def migrate(conn: asyncpg.Connection,
                  on_applied: Callable[[Migration], None] | None = None) -> list[Migration]:
    """Apply pending migrations in one transaction (all or none); return the ones applied.

    `on_applied` is called after each one (inside the transaction), for a progress bar.
    """
    migrations = load_migrations()
    applied_now: list[Migration] = []
    async with conn.transaction():
        # One migrator at a time, whatever the number of processes starting together.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        _check_applied(rows, migrations)
        done = {row["version"] for row in rows}
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version, migration.name, migration.checksum,
            )
            log.info("migration applied", extra={"migration": f"{migration.version:04d}_{migration.name}"})
            applied_now.append(migration)
            if on_applied is not None:
                on_applied(migration)
    return applied_now


def _check_applied(rows: list, migrations: list[Migration]) -> None:
    """Refuse a database migrated by a newer release, or whose applied migration files were edited since."""
    known = {m.version: m for m in migrations}
    for row in rows:
        mine = known.get(row["version"])
        if mine is None:
            raise DatabaseError(
                f"the database has migration {row['version']:04d}_{row['name']} which this version of "
                "fedserver does not know; it was migrated by a newer release"
            )
        if mine.checksum != row["checksum"]:
            raise DatabaseError(
                f"migration {mine.version:04d}_{mine.name}.sql was edited after it was applied "
                f"(checksum {row['checksum'][:12]} in the database, {mine.checksum[:12]} on disk); "
                "migrations are forward-only: restore the file and add a new migration instead"
            )


@dataclass(frozen=True)
class MigrationStatus:
    """How far a database is migrated: the count applied and the ones this release would still apply."""

    applied: int
    pending: list[Migration]


async def migration_status(conn: asyncpg.Connection) -> MigrationStatus:
    """Read, without changing anything, which migrations are applied; raise DatabaseError as `migrate` would."""
    migrations = load_migrations()
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return MigrationStatus(0, migrations)
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    _check_applied(rows, migrations)
    done = {row["version"] for row in rows}
    return MigrationStatus(len(rows), [m for m in migrations if m.version not in done])


async def database_clock(conn: asyncpg.Connection) -> datetime:
    """The database server's clock now (not the transaction's start), for comparing clocks."""
    return await conn.fetchval("SELECT clock_timestamp()")


async def init_connection(conn: asyncpg.Connection) -> None:
    """Decode json and jsonb columns to Python values on every pooled connection."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def reset_connection(conn: asyncpg.Connection) -> None:
    """The pool's reset: the full reset query (one more round trip per release) only where needed.

    Most connections are used for statements and transactions only; after asyncpg's own cleanup
    (ROLLBACK if a transaction is open) they are as new. Skipping `UNLISTEN *; RESET ALL; ...` on
    them saves a round trip on every release: measured, about a tenth of a busy process's CPU.
    """
    if holds_session_state(conn):
        await conn.execute(conn.get_reset_query())


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ***, fit to print."""
    return _redact(url)


async def create_pool(url: str, settings: Settings) -> asyncpg.Pool:
    """Open a pool, waiting for a database that is not up yet; connection failures become one DatabaseError.

    A database that refuses, times out, is starting up or recovering (an embedded one right after
    a `kill -9`, a container that starts beside ours) is tried again with back-off, one log line per
    attempt, until `[database] connect_deadline` seconds have passed. A wrong password or database
    name fails at once: waiting cannot fix it.
    """
    db = settings.database
    started = time.monotonic()
    pause = 0.25
    for attempt in itertools.count(1):
        try:
            return await asyncpg.create_pool(
                url,
                min_size=min(db.pool_min_size, db.pool_max_size),
                max_size=db.pool_max_size,
                timeout=db.connect_timeout,
                command_timeout=60,
                server_settings={"application_name": "fedserver", "timezone": "UTC"},
                init=init_connection,
                reset=reset_connection,
            )
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = str(exc) or type(exc).__name__
            waiting = time.monotonic() - started
            if not _worth_waiting(exc) or waiting + pause > db.connect_deadline:
                tried = f" (tried {attempt} times in {waiting:.0f} s)" if attempt > 1 else ""
                raise DatabaseError(f"cannot connect to the database at {_redact(url)}: {reason}{tried}") from None
            log.warning("the database at %s does not answer yet (attempt %d: %s); trying again in %.1f s",
                        _redact(url), attempt, reason, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
    raise AssertionError("unreachable")


def _worth_waiting(exc: BaseException) -> bool:
    """A database that is down, starting or unresolvable for now (a compose service not up yet).

    asyncpg reports a refused connection to a name with several addresses as a plain OSError
    ("Multiple exceptions: ..."), so every OSError but a permission problem counts here.
    """
    return database_down(exc) or (isinstance(exc, OSError) and not isinstance(exc, PermissionError))


class Database:
    """The pool plus, when no URL is configured, the embedded server behind it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.pool: asyncpg.Pool | None = None

    @property
    def url(self) -> str:
        return self.settings.database.url or (self.embedded.url if self.embedded else "")

    async def open(self) -> asyncpg.Pool:
        """Start the embedded server if needed and open the pool."""
        if not self.settings.database.url:
            self.embedded = await asyncio.to_thread(start_embedded, self.settings.storage.data_dir)
        try:
            self.pool = await create_pool(self.url, self.settings)
        except BaseException:
            await self.close()
            raise
        return self.pool

    async def close(self) -> None:
        """Close the pool, then stop the embedded server if we started it."""
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=10)
            except asyncio.TimeoutError:
                self.pool.terminate()
            self.pool = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None


@asynccontextmanager
async def open_database(settings: Settings, *, run_migrations: bool = True) -> AsyncIterator[asyncpg.Pool]:
    """Open the database for a command; migrate it first unless told not to."""
    database = Database(settings)
    pool = await database.open()
    try:
        if run_migrations:
            async with pool.acquire() as conn:
                await migrate(conn)
        yield pool
    finally:
        await database.close()
