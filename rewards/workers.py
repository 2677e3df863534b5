"""Background workers: the log (integrate, sign, witness, publish), receipt delivery, member monitoring,
minting and expiry, saving balance folds.

Registered in ``fedserver.server.WORKERS`` via ``REWARDS_WORKERS``. The log worker
runs on one process at a time (a session advisory lock elects it; a crashed
leader's lock dies with its connection), the fold saver too (its own lock, per round);
the others run on every worker process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

import asyncpg

from fedserver.config import Settings
from fedserver.db import database_down
from fedserver.jobs import JobWorker, WorkerOptions
from fedserver.jobs.periodic import run_periodically
from fedserver.runtime import Runtime
from rewards.client import LogClient
from rewards.context import RewardsContext, RewardsHttp, http_session, load_context
from rewards.integrator import EdgeCache, integrate_all, sign_checkpoint
from rewards.issue import attempt_delivery
from rewards.logstore import LOG_CHANNEL, release_leader_lock, take_leader_lock
from rewards.minting import FoldSaver, expire_round, mint_round
from rewards.publisher import Publisher
from rewards.spending import spend_recorder
from rewards.store import (
    RECEIPT_DELIVERIES,
    ReceiptDelivery,
    advance_peer_head,
    get_peer_head,
    insert_alert,
    insert_evidence,
    release_fold_lock,
    try_fold_lock,
)
from rewards.verify import VerifyFailure, check_head

log = logging.getLogger("rewards.workers")

LEADER_RETRY_SECONDS = 5.0
DELIVERY_CONCURRENCY = 32
IDLE_SECONDS = 5.0
ALERT_KINDS = frozenset({"fork", "rewrite", "truncated"})


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0))


def _log_failure(message: str, exc: Exception) -> None:
    """One line while the database is out of reach (it restarts); the traceback for anything else."""
    if database_down(exc):
        log.warning("%s: the database is not available (%s)", message, exc or type(exc).__name__)
    else:
        log.error(message, exc_info=exc)


async def _context(pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event) -> RewardsContext | None:
    """Load the context, retrying while the database or policy file is not usable."""
    while not stop.is_set():
        try:
            return await load_context(pool, settings)
        except Exception as exc:
            _log_failure("rewards: cannot load keys and policy; retrying", exc)
            await _sleep(stop, LEADER_RETRY_SECONDS)
    return None


async def log_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Integrate, sign, collect cosignatures and publish, while holding the leader lock."""
    pool = runtime.pool
    ctx = await _context(pool, runtime.settings, stop)
    while ctx is not None and not stop.is_set():
        try:
            async with pool.acquire() as conn:
                if await take_leader_lock(conn):
                    try:
                        await _lead(ctx, pool, conn, stop)
                    finally:
                        with suppress(Exception):
                            await release_leader_lock(conn)
        except Exception as exc:  # keep the worker alive: log, back off, try again
            _log_failure("rewards log worker failed; retrying", exc)
        await _sleep(stop, LEADER_RETRY_SECONDS)


async def _lead(ctx: RewardsContext, pool: asyncpg.Pool, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
    wake = asyncio.Event()

    def on_notify(*_: object) -> None:
        wake.set()

    await conn.add_listener(LOG_CHANNEL, on_notify)  # take_leader_lock marked conn: the pool clears this too
    cache, publisher = EdgeCache(), Publisher(ctx)
    interval = ctx.settings.rewards.checkpoint_interval
    next_round = 0.0
    async with http_session(ctx.settings) as session:
        try:
            while not stop.is_set():
                wake.clear()
                await integrate_all(conn, cache)
                if time.monotonic() >= next_round:
                    next_round = time.monotonic() + interval
                    await _checkpoint_round(ctx, pool, conn, session, publisher)
                await _wait_either(wake, stop, max(next_round - time.monotonic(), 0.05))
        finally:
            with suppress(Exception):
                await conn.remove_listener(LOG_CHANNEL, on_notify)


async def _checkpoint_round(ctx: RewardsContext, pool: asyncpg.Pool, conn: asyncpg.Connection, session: RewardsHttp,
                            publisher: Publisher) -> None:
    state = await sign_checkpoint(conn, ctx.keys)
    try:
        await publisher.publish(pool, session, state)
    except Exception:
        log.exception("rewards: publishing the checkpoint failed")


def receipt_worker(ctx: RewardsContext, pool: asyncpg.Pool, session: RewardsHttp) -> JobWorker:
    """The job worker that delivers our receipts to be countersigned (one per process)."""
    options = WorkerOptions(concurrency=DELIVERY_CONCURRENCY, poll_seconds=IDLE_SECONDS,
                            shutdown_timeout=ctx.settings.server.shutdown_timeout,
                            retry_scale=ctx.settings.federation.retry_delay_scale)
    spends = spend_recorder(pool)
    return JobWorker(pool, RECEIPT_DELIVERIES,
                     lambda job: attempt_delivery(ctx, pool, session, ReceiptDelivery.of(job), spends), options)


async def delivery_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Deliver issued receipts to the beneficiaries' instances, with retries."""
    pool, settings = runtime.pool, runtime.settings
    ctx = await _context(pool, settings, stop)
    if ctx is None:
        return
    async with http_session(settings) as session:
        await receipt_worker(ctx, pool, session).run(stop)


async def _wait_either(wake: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


async def monitor_member(ctx: RewardsContext, pool: asyncpg.Pool, session: RewardsHttp, origin: str,
                         url: str) -> None:
    """Check one member log against the last head we accepted; alert and keep evidence on failure."""
    previous = await get_peer_head(pool, origin)
    try:
        head = await check_head(LogClient(session, url), ctx.policy(), previous)
    except VerifyFailure as exc:
        if exc.kind not in ALERT_KINDS:  # unreachable, or not (yet) cosigned to quorum: not evidence
            log.warning("member log %s not accepted: %s", origin, exc)
            return
        log.error("member log %s failed monitoring: %s", origin, exc)
        await insert_alert(pool, origin, exc.kind, str(exc))
        with suppress(Exception):
            body = await LogClient(session, url).checkpoint()
            await insert_evidence(pool, origin, exc.kind, str(exc), body, previous.checkpoint if previous else None)
        return
    await advance_peer_head(pool, origin, head)


async def monitor_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Every monitor_interval, check every member log (fork or rewrite raises an alert)."""
    pool, settings = runtime.pool, runtime.settings
    ctx = await _context(pool, settings, stop)
    if ctx is None:
        return
    async with http_session(settings) as session:
        while not stop.is_set():
            members = [(e.verifier.name, e.url) for e in ctx.policy().logs if e.url and e.verifier.name != ctx.keys.origin]
            for origin, url in members:
                try:
                    await monitor_member(ctx, pool, session, origin, url)
                except Exception:
                    log.exception("monitoring %s failed", origin)
            await _sleep(stop, settings.rewards.monitor_interval)


def mint_interval(settlement_seconds: int) -> float:
    """How often to look for settled points to mint: a quarter of the window, between 0.5 s and a minute."""
    return min(60.0, max(0.5, settlement_seconds / 4))


async def mint_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Convert settled points into tokens and expire unused ones, on every process (the (account, seq) keys keep
    each mint and each expiry single)."""
    pool, settings = runtime.pool, runtime.settings
    ctx = await _context(pool, settings, stop)
    if ctx is None or not settings.rewards.tokens_enabled:
        return
    while not stop.is_set():
        try:
            await mint_round(pool, ctx)
            await expire_round(pool, ctx)
        except Exception as exc:  # noqa: BLE001 (keep the worker alive: log, then try again next round)
            _log_failure("rewards: minting failed; retrying", exc)
        await _sleep(stop, mint_interval(settings.rewards.settlement_seconds))


FOLD_SAVE_SECONDS = 10.0


async def fold_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Keep the saved balance folds of busy accounts near the published log (one process at a time), so that
    balance queries never fold a long history nor write."""
    saver = FoldSaver()

    async def step() -> None:
        async with runtime.pool.acquire() as conn:
            if not await try_fold_lock(conn):
                return
            try:
                saved = await saver.round(conn, runtime.settings)
            finally:
                await release_fold_lock(conn)
        if saved:
            log.info("saved balance folds", extra={"accounts": saved, "log_size": saver.scanned})

    await run_periodically(step, FOLD_SAVE_SECONDS, stop, "rewards: saving balance folds", log)


REWARDS_WORKERS = [
    ("rewards-log", log_worker),
    ("rewards-receipt-delivery", delivery_worker),
    ("rewards-monitor", monitor_worker),
    ("rewards-mint", mint_worker),
    ("rewards-folds", fold_worker),
]
