"""`fedserver run`: the web server and the background workers in one process, or split by role."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Awaitable, Callable

import asyncpg
from aiohttp import web

from .accounts import ensure_instance_actor
from .config import Settings
from .db import Database, migrate
from .web.app import AccessLogger, create_app

log = logging.getLogger("fedserver.server")

# Background workers register here as (name, coroutine function taking the pool, settings
# and a stop event). The federation and rewards issues add inbox processing, delivery,
# log integration and witnessing.
Worker = Callable[[asyncpg.Pool, Settings, asyncio.Event], Awaitable[None]]
WORKERS: list[tuple[str, Worker]] = []


async def _start_web(settings: Settings, pool: asyncpg.Pool) -> web.AppRunner:
    app = create_app(settings, pool)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("fedserver.access") if settings.logging.access_log else None,
        shutdown_timeout=settings.server.shutdown_timeout,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port, reuse_address=True)
    await site.start()
    return runner


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
    database = Database(settings)
    await database.open()
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task] = []
    try:
        pool = database.pool
        assert pool is not None
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("database migrated", extra={"applied": [f"{m.version:04d}_{m.name}" for m in applied]})
        await ensure_instance_actor(pool, settings)
        if role in ("all", "worker"):
            tasks = [asyncio.create_task(worker(pool, settings, stop), name=name) for name, worker in WORKERS]
            log.info("workers started", extra={"workers": [name for name, _ in WORKERS]})
        if role in ("all", "web"):
            runner = await _start_web(settings, pool)
            where = _listening_on(runner)
            log.info("listening", extra={"address": where, "public": settings.base_url, "role": role})
            if ready:
                ready(where)
        elif ready:
            ready("")
        await stop.wait()
        log.info("shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()  # stops accepting, lets in-flight requests finish
        stop.set()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await database.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped")
