"""`fedserver run`: the web server and the background workers in one process, or split by role."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from rewards.keys import ensure_reward_keys
from rewards.workers import REWARDS_WORKERS
from storefront.workers import STOREFRONT_WORKERS

from . import turns
from .accounts import ensure_instance_actor
from .api.scheduled_worker import run_scheduled_worker
from .app import AccessLogger, build_dispatcher, build_publisher, create_app
from .config import ConfigError, Settings
from .datadir import probe_writable
from .db import Database, database_down, migrate
from .embedded import EmbeddedDatabaseError
from .federation.delivery import run_delivery_worker
from .federation.keys import instance_signer
from .federation.processing import run_inbox_worker
from .jobs.janitor import run_janitor
from .jobs.planner_stats import run_planner_stats
from .moderation import Moderation
from .net.http import HttpClient
from .repo.deliveries import DELIVERIES, prune_bodies
from .repo.inbox import INBOX
from .repo.safety import delete_expired_mutes
from .runtime import Runtime, Worker

log = logging.getLogger("fedserver.server")


async def run_jobs_janitor(runtime: Runtime, stop: asyncio.Event) -> None:
    """Prune finished inbox items and deliveries (and unused bodies) after `[jobs] retention_days`, and
    mutes whose time is over."""
    retention = runtime.settings.jobs.retention_days * 86400.0
    await run_janitor(runtime.pool, [INBOX, DELIVERIES], [prune_bodies, delete_expired_mutes], retention, stop)


async def run_planner_stats_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Keep the planner's row counts up with tables a burst has outgrown (`jobs/planner_stats.py`)."""
    await run_planner_stats(runtime.pool, stop)


# Background workers of `run --role all|worker`: each runs until the stop event is set.
WORKERS: list[tuple[str, Worker]] = [
    ("inbox", run_inbox_worker),
    ("delivery", run_delivery_worker),
    ("jobs-janitor", run_jobs_janitor),
    ("planner-stats", run_planner_stats_worker),
    ("scheduled-statuses", run_scheduled_worker),
    *REWARDS_WORKERS,
    *STOREFRONT_WORKERS,
]


UNCOUNTED = ("/api/v1/streaming",)  # requests that stay open as long as the client listens


@web.middleware
async def web_first(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
    """Count a request in flight while it is handled, so the workers of this process make way (`turns`)."""
    if request.path.startswith(UNCOUNTED):
        return await handler(request)
    turns.request_started()
    try:
        return await handler(request)
    finally:
        turns.request_finished()


async def _start_web(runtime: Runtime, http: HttpClient, *, with_workers: bool = False) -> web.AppRunner:
    settings = runtime.settings
    app = create_app(settings, runtime.pool, http=http, publisher=runtime.publisher, moderation=runtime.moderation)
    if with_workers:  # the web and the workers share this process's one core: requests go first
        app.middlewares.insert(0, web_first)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("fedserver.access") if settings.logging.access_log else None,
        shutdown_timeout=settings.server.shutdown_timeout,
        handle_signals=False,
        # Counted from the connection's start or its last response: a request whose headers
        # trickle in (slow loris), and an idle keep-alive connection, are closed after it.
        keepalive_timeout=settings.server.idle_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port, reuse_address=True,
                       reuse_port=settings.server.reuse_port or None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(_listen_failure(settings, exc)) from None
    return runner


class ListenError(ConfigError):
    """The HTTP port cannot be opened (in use, not allowed): one line, no traceback."""


def _listen_failure(settings: Settings, exc: OSError) -> str:
    host, port = settings.server.host, settings.server.port
    where = f"{f'[{host}]' if ':' in host else host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = "the port is already in use (another fedserver, or another program, listens there)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    else:
        why = exc.strerror or str(exc)
    return (f"cannot listen on {where}: {why}; stop the other program or set another "
            f"[server] port (FEDSERVER_SERVER__PORT)")


async def _supervise(name: str, worker: Worker, runtime: Runtime, stop: asyncio.Event) -> None:
    """Run a worker; restart it after a crash (logged) until the server stops.

    A worker stopped by a database outage is restarted after a second, with one line in the log;
    any other crash is logged with its traceback and restarted after five.
    """
    while not stop.is_set():
        try:
            await worker(runtime, stop)
            continue
        except Exception as exc:
            if database_down(exc):
                log.warning("worker waits for the database: %s", exc or type(exc).__name__, extra={"worker": name})
                pause = 1.0
            else:
                log.exception("worker crashed; restarting in 5 s", extra={"worker": name})
                pause = 5.0
        try:
            await asyncio.wait_for(stop.wait(), timeout=pause)
        except asyncio.TimeoutError:
            pass


EMBEDDED_CHECK_SECONDS = 1.0


async def _watch_embedded(database: Database, stop: asyncio.Event, failed: list[BaseException]) -> None:
    """Keep the embedded PostgreSQL this process started alive: if it dies (killed, out of memory), start it
    again at once; the pool reconnects by itself. If it cannot be started, stop the server with the reason
    (a supervisor such as Docker's restart policy starts fedserver again)."""
    embedded = database.embedded
    while embedded is not None and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=EMBEDDED_CHECK_SECONDS)
            return
        except asyncio.TimeoutError:
            pass
        if await asyncio.to_thread(embedded.running):
            continue
        log.error("embedded database stopped unexpectedly; starting it again (PostgreSQL runs crash recovery)",
                  extra={"pgdata": str(embedded.pgdata)})
        try:
            await asyncio.to_thread(embedded.start_again)
        except EmbeddedDatabaseError as exc:
            log.critical("%s; fedserver stops so that it can be started again cleanly", exc)
            failed.append(exc)
            stop.set()


def settle_garbage_collector() -> None:
    """Keep the collector's pauses short while the process serves and works.

    What start-up made (modules, settings, the app, pools) lives as long as the process; frozen,
    the full collections never walk it again: they took 30-45 ms each (with any request waiting
    behind them) while an inbox backlog drained, and now walk only what was made since. The
    youngest generation is collected every 10,000 allocations instead of 700: most of what a
    request or a batch makes is freed by reference counting long before that. Measured over a
    40,000-activity burst and its drain: the collector's time fell from about 850 ms to 65 ms,
    its longest pause from 44 ms to under 20 ms (the one at start-up).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _listening_on(runner: web.AppRunner) -> str:
    for address in runner.addresses:
        host, port = address[0], address[1]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"
    return "?"


async def run(settings: Settings, role: str = "all", *, ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight requests and stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Media, the rewards policy and an embedded database live there: refuse at once, in one line, if it
    # cannot take writes, rather than fail on the first upload.
    await asyncio.to_thread(probe_writable, settings.storage.data_dir)
    database = Database(settings)
    await database.open()
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task] = []
    failed: list[BaseException] = []  # why the server stopped by itself, if it did
    http = HttpClient(settings)  # the workers'
    web_http = HttpClient(settings)  # what web requests fetch (signers' keys): a stalling host holds no delivery
    try:
        pool = database.pool
        assert pool is not None
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("database migrated", extra={"applied": [f"{m.version:04d}_{m.name}" for m in applied]})
        await ensure_instance_actor(pool, settings)
        await ensure_reward_keys(pool, settings.instance.domain)
        await http.start()
        await web_http.start()
        moderation = Moderation(pool)  # one per process: the inbox, the workers and every outbound request
        http.host_policy = web_http.host_policy = moderation.refusal
        runtime = Runtime(settings, pool, http, await instance_signer(pool, settings), build_publisher(settings),
                          build_dispatcher(), moderation)
        if role in ("all", "worker"):
            tasks = [asyncio.create_task(_supervise(name, worker, runtime, stop), name=name)
                     for name, worker in WORKERS]
            log.info("workers started", extra={"workers": [name for name, _ in WORKERS]})
        if role in ("all", "web"):
            runner = await _start_web(runtime, web_http, with_workers=role == "all")
            where = _listening_on(runner)
            log.info("listening", extra={"address": where, "public": settings.base_url, "role": role})
            if ready:
                ready(where)
        elif ready:
            ready("")
        if database.embedded is not None and database.embedded.owned:
            tasks.append(asyncio.create_task(_watch_embedded(database, stop, failed), name="embedded-watch"))
        settle_garbage_collector()
        await stop.wait()
        log.info("shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()  # stops accepting, lets in-flight requests finish
        stop.set()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await http.close()
        await web_http.close()
        await database.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped")
    if failed:
        raise failed[0]
