"""`fedserver doctor`: the checks that an instance can work, each a small function returning a `Check`.

In order: the configuration loads; the data directory takes writes and has room; the database answers
and its migrations are current; the public address answers WebFinger (over https in production, through
the one outbound client, so the same address rules apply as for any peer); the clocks agree. Later checks
are skipped, not failed, when what they need is missing. Nothing is changed: no migration is applied and
no directory created (an embedded PostgreSQL that is not running is started for the check and stopped
again, as any command does).
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from yarl import URL

from .config import ConfigError, Settings, find_config_file, load_settings
from .datadir import DataDirError, failure_parts, free_bytes, probe_writable
from .db import Database, DatabaseError, database_clock, migration_status, redact_url
from .embedded import EmbeddedDatabaseError
from .net.http import FetchError, HttpClient, is_activitypub_content_type
from .repo import actors as actors_repo

OK, WARNING, PROBLEM, SKIPPED = "ok", "warning", "problem", "skipped"
# Mastodon accepts signatures dated up to an hour off, but receipts, expiring signatures (RFC 9421
# `expires`) and stricter peers allow minutes; a synchronised clock is off by milliseconds.
CLOCK_WARNING_SECONDS = 30.0
CLOCK_PROBLEM_SECONDS = 300.0
LOW_SPACE_BYTES = 1 << 30
DATABASE_TIMEOUT, DATABASE_DEADLINE = 3.0, 5.0
HTTP_CONNECT_TIMEOUT, HTTP_TOTAL_TIMEOUT = 3.0, 5.0
DEFAULT_DOMAIN = "localhost:8000"
NAMES = ("config", "data_dir", "database", "migrations", "webfinger", "clock")


@dataclass(frozen=True)
class Check:
    """One finding: `status` is ok, warning, problem or skipped; `fix` says what to do, in plain words."""

    name: str
    status: str
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of `--json`."""
        return asdict(self)


@dataclass
class _Clocks:
    """Seconds by which other clocks are ahead of this machine's (None: not measured)."""

    database: float | None = None
    public: float | None = None


async def run_checks(config_path: str | None, environ: dict[str, str]) -> list[Check]:
    """Every check, in order; never raises for what it checks."""
    settings, config = check_config(config_path, environ)
    if settings is None:
        return [config, *(_skipped(name, "the configuration does not load") for name in NAMES[1:])]
    checks = [config, check_data_dir(settings.storage.data_dir)]
    clocks = _Clocks()
    async with _database(settings) as (pool, database_check):
        checks.append(database_check)
        if pool is None:
            checks.append(_skipped("migrations", "no database to read"))
            target = _Target(settings.hostname, None)
        else:
            checks.append(await check_migrations(pool))
            target = await _webfinger_target(pool, settings)
            clocks.database = await _database_skew(pool)
    webfinger, clocks.public = await check_webfinger(settings, target)
    return [*checks, webfinger, check_clock(clocks, settings.base_url)]


def _skipped(name: str, why: str) -> Check:
    return Check(name, SKIPPED, f"not checked: {why}")


# The configuration


def check_config(config_path: str | None, environ: dict[str, str]) -> tuple[Settings | None, Check]:
    """Load the settings as every command does; name the file and variables used and the public address."""
    path = find_config_file(config_path, environ)
    source = str(path.resolve()) if path else "no config file (built-in defaults)"
    variables = sorted(k for k in environ if k.startswith("FEDSERVER_") and "__" in k)
    details: dict[str, Any] = {"file": str(path.resolve()) if path else None, "environment": variables}
    try:
        settings = load_settings(config_path, environ)
    except ConfigError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines())
        return None, Check("config", PROBLEM, message, _config_fix(path), details)
    details.update(base_url=settings.base_url, domain=settings.instance.domain, scheme=settings.instance.scheme,
                   database="external" if settings.database.url else "embedded",
                   data_dir=str(settings.storage.data_dir))
    also = f" + {len(variables)} FEDSERVER_ variables" if variables else ""
    message = f"{source}{also}: public address {settings.base_url}"
    if settings.instance.domain == DEFAULT_DOMAIN:
        return settings, Check("config", WARNING, f"{message}, the default", "set [instance] domain "
                               "(FEDSERVER_INSTANCE__DOMAIN) to the public host name before federating: "
                               "accounts are name@domain and it cannot change afterwards", details)
    if settings.instance.scheme == "http" and not settings.federation.allow_private_addresses:
        return settings, Check("config", WARNING, f"{message}, without TLS", "keep [instance] scheme = \"https\" "
                               "and put a TLS proxy in front: ActivityPub peers fetch over https only", details)
    return settings, Check("config", OK, message, details=details)


def _config_fix(path: Path | None) -> str:
    if path is not None and not path.is_file():
        return "point --config or FEDSERVER_CONFIG at the config file (the shipped config.toml documents every key)"
    return "correct what is named here, in the file or in its FEDSERVER_SECTION__KEY variable"


# The data directory


def check_data_dir(data_dir: Path) -> Check:
    """The data directory takes a file (written, synced, deleted) and has room; a missing one is not made."""
    data_dir = data_dir.expanduser().absolute()
    details: dict[str, Any] = {"path": str(data_dir)}
    if not data_dir.exists() and not _blocked_by_file(data_dir):
        parent = next(p for p in data_dir.parents if p.exists())
        if os.access(parent, os.W_OK):
            return Check("data_dir", WARNING, f"{data_dir} does not exist yet",
                         "`fedserver run` creates it; if this is not the intended place, set [storage] data_dir",
                         details)
        problem, fix = failure_parts(data_dir, PermissionError(13, "Permission denied"))
        return Check("data_dir", PROBLEM, problem, fix, details)
    try:
        probe_writable(data_dir)
    except DataDirError as exc:
        problem, fix = exc.parts
        return Check("data_dir", PROBLEM, problem, fix, details)
    free = details["free_bytes"] = free_bytes(data_dir)
    if free < LOW_SPACE_BYTES:
        return Check("data_dir", WARNING, f"{data_dir} is writable but only {_size(free)} is free",
                     "free some space or grow the volume: uploads and the database stop when it is full", details)
    return Check("data_dir", OK, f"{data_dir} is writable, {_size(free)} free", details=details)


def _blocked_by_file(path: Path) -> bool:
    return any(p.exists() and not p.is_dir() for p in path.parents)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# The database


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool | None, Check]]:
    """Open a small pool with short timeouts; yield it (None when it cannot be had) and the database check."""
    db = settings.database
    quick = db.model_copy(update={"connect_timeout": min(db.connect_timeout, DATABASE_TIMEOUT),
                                  "connect_deadline": min(db.connect_deadline, DATABASE_DEADLINE),
                                  "pool_min_size": 1, "pool_max_size": 2})
    settings = settings.model_copy(update={"database": quick})
    pgdata = settings.storage.data_dir / "postgres"
    if not db.url and not (pgdata / "PG_VERSION").exists():
        yield None, Check("database", WARNING, f"the embedded PostgreSQL in {pgdata} is not created yet",
                          "`fedserver run` creates it (or set [database] url to use a PostgreSQL server)",
                          {"kind": "embedded"})
        return
    database = Database(settings)
    try:
        pool = await database.open()
    except (DatabaseError, EmbeddedDatabaseError, DataDirError) as exc:
        yield None, _database_failed(settings, str(exc))
        return
    try:
        yield pool, await _database_answers(database, pool)
    finally:
        await database.close()


async def _database_answers(database: Database, pool: asyncpg.Pool) -> Check:
    async with pool.acquire() as conn:
        server = conn.get_server_version()
    version = f"{server.major}.{server.micro}" if server.major >= 10 else f"{server.major}.{server.minor}"
    if database.embedded is not None:
        where = f"embedded PostgreSQL {version} in {database.embedded.pgdata}"
        shared = " (the running server's)" if not database.embedded.owned else ""
        return Check("database", OK, f"{where} answers{shared}", details={"kind": "embedded", "version": version})
    url = redact_url(database.url)
    return Check("database", OK, f"PostgreSQL {version} at {url} answers",
                 details={"kind": "external", "version": version, "url": url})


def _database_failed(settings: Settings, reason: str) -> Check:
    if settings.database.url:
        fix = ("check [database] url (FEDSERVER_DATABASE__URL): that PostgreSQL runs there, is reachable from "
               "here, and accepts that user, password and database")
        return Check("database", PROBLEM, reason, fix, {"kind": "external", "url": redact_url(settings.database.url)})
    log_file = settings.storage.data_dir / "postgres" / "log"
    return Check("database", PROBLEM, reason, f"the embedded PostgreSQL's own log is {log_file}",
                 {"kind": "embedded"})


async def check_migrations(pool: asyncpg.Pool) -> Check:
    """Every migration of this release is applied, none edited since, none unknown (a newer release's)."""
    try:
        async with pool.acquire() as conn:
            status = await migration_status(conn)
    except DatabaseError as exc:
        return Check("migrations", PROBLEM, str(exc), "run the fedserver release that migrated this database, "
                     "or restore the migration files it knows")
    details = {"applied": status.applied, "pending": [f"{m.version:04d}_{m.name}" for m in status.pending]}
    if status.pending:
        names = ", ".join(details["pending"][:3]) + (", ..." if len(status.pending) > 3 else "")
        return Check("migrations", WARNING, f"{len(status.pending)} not applied yet ({names})",
                     "`fedserver migrate` applies them (`fedserver run` does at start)", details)
    return Check("migrations", OK, f"all {status.applied} applied", details=details)


# WebFinger at the public address


@dataclass(frozen=True)
class _Target:
    """Whom to look up: an account name, and its actor id when the database says."""

    name: str
    actor_uri: str | None


async def _webfinger_target(pool: asyncpg.Pool, settings: Settings) -> _Target:
    """The instance actor (every instance has one once it ran), else the first account."""
    async with pool.acquire() as conn:
        instance = await actors_repo.get_instance_account(conn)
        if instance is not None:
            return _Target(instance.actor.username, instance.actor.uri)
        accounts = await actors_repo.list_local_accounts(conn)
    if accounts:
        return _Target(accounts[0].actor.username, accounts[0].actor.uri)
    return _Target(settings.hostname, None)


async def check_webfinger(settings: Settings, target: _Target) -> tuple[Check, float | None]:
    """GET https://DOMAIN/.well-known/webfinger as a peer would (Host: DOMAIN); also the answer's clock skew."""
    domain = settings.instance.domain
    url = URL.build(scheme=settings.instance.scheme, authority=domain, path="/.well-known/webfinger",
                    query={"resource": f"acct:{target.name}@{domain}"})
    details: dict[str, Any] = {"url": str(url)}
    async with HttpClient(settings, connect_timeout=HTTP_CONNECT_TIMEOUT, total_timeout=HTTP_TOTAL_TIMEOUT) as http:
        sent = time.time()
        try:
            jrd, date = await http.get_jrd_dated(url)
        except FetchError as exc:
            return Check("webfinger", PROBLEM, f"{url} failed: {exc.reason}", _webfinger_fix(settings, exc),
                         details), None
        received = time.time()
    href = _self_href(jrd)
    wrong = _wrong_answer(jrd, href, target, settings)
    if wrong:
        return Check("webfinger", PROBLEM, f"{url} {wrong}", "[instance] domain and scheme must be the public "
                     "address, and the proxy must send that address's requests to this instance", details), None
    details["actor"] = href
    return Check("webfinger", OK, f"{settings.base_url} answers WebFinger for {href}", details=details), \
        _skew_from_date(date, sent, received)


def _self_href(jrd: dict[str, Any]) -> str | None:
    links = jrd.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "self" and is_activitypub_content_type(link.get("type")):
            href = link.get("href")
            return href if isinstance(href, str) else None
    return None


def _wrong_answer(jrd: dict[str, Any], href: str | None, target: _Target, settings: Settings) -> str:
    """Why the answer is not this instance's, or '' when it is."""
    subject = jrd.get("subject")
    expected = f"acct:{target.name}@{settings.instance.domain}"
    if not isinstance(subject, str) or subject.lower() != expected.lower():
        return f"answered for {subject!r}, not {expected}"
    if href is None:
        return "answered without an ActivityPub self link"
    if target.actor_uri is not None and href != target.actor_uri:
        return f"points at {href}, this instance's actor is {target.actor_uri}"
    if not href.startswith(f"{settings.base_url}/"):
        return f"points at {href}, outside {settings.base_url}"
    return ""


def _webfinger_fix(settings: Settings, exc: FetchError) -> str:
    """What to look at, from what went wrong."""
    domain, listen = settings.instance.domain, f"{settings.server.host}:{settings.server.port}"
    if exc.status in (404, 410):
        return (f"a server answers at {domain} but does not know this instance's account: the proxy must send "
                f"{domain} to this fedserver ({listen}) and keep the Host header")
    if exc.status is not None and exc.status >= 500:
        return (f"the proxy at {domain} answers but cannot reach fedserver: is `fedserver run` running and "
                f"listening on {listen}, where the proxy sends requests?")
    if exc.status is not None:
        return f"the server at {domain} refuses the request: the proxy must send it to this fedserver ({listen})"
    if "certificate" in exc.reason.lower() or "ssl" in exc.reason.lower():
        return f"the TLS certificate must be valid for {domain} (Caddy gets one itself when DNS points at it)"
    if exc.permanent:
        return ("peers would refuse this address too: the public address needs https on port 443 and a host "
                "name that resolves to a public IP address")
    dns = "" if _is_address(settings.hostname) else f"DNS for {settings.hostname} points at this machine, that "
    return (f"check that {dns}what serves {domain} (the TLS proxy, or fedserver itself) runs and sends requests to "
            f"fedserver ({listen}), and that `fedserver run` runs")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _skew_from_date(date: str | None, sent: float, received: float) -> float | None:
    """How far the answer's `Date` is ahead of this machine's clock, in seconds (it has whole seconds)."""
    if not date:
        return None
    try:
        stamped = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return stamped + 0.5 - (sent + received) / 2


# Clocks


async def _database_skew(pool: asyncpg.Pool) -> float:
    async with pool.acquire() as conn:
        before = time.time()
        now = await database_clock(conn)
        after = time.time()
    return now.timestamp() - (before + after) / 2


def check_clock(clocks: _Clocks, base_url: str) -> Check:
    """This machine's clock against the database's and the public server's `Date`."""
    measured = {name: skew for name, skew in (("the database", clocks.database), (base_url, clocks.public))
                if skew is not None}
    if not measured:
        return _skipped("clock", "neither the database nor the public address answered")
    details = {"database_skew_seconds": clocks.database, "public_skew_seconds": clocks.public}
    message = "this machine's clock is " + " and ".join(_offset(skew, name) for name, skew in measured.items())
    worst = max(abs(skew) for skew in measured.values())
    fix = ("synchronise the clocks (NTP: `timedatectl set-ntp true`, chrony or systemd-timesyncd) here and on the "
           "database's machine: peers refuse signatures dated minutes off")
    if worst > CLOCK_PROBLEM_SECONDS:
        return Check("clock", PROBLEM, message, fix, details)
    if worst > CLOCK_WARNING_SECONDS:
        return Check("clock", WARNING, message, fix, details)
    return Check("clock", OK, message, details=details)


def _offset(skew: float, name: str) -> str:
    if abs(skew) < 1:
        return f"within a second of {name}"
    return f"{abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} {name}"


def exit_code(checks: list[Check]) -> int:
    """0 when no check found a problem, else 1."""
    return 1 if any(check.status == PROBLEM for check in checks) else 0
