"""The delivery worker: claim queued deliveries, sign and POST them, record each outcome.

Rows are leased with `FOR UPDATE SKIP LOCKED` (`locked_until`), so any number of workers
share the queue and a worker killed with -9 leaves its rows to be claimed again when the
lease runs out: delivery is at least once. Workers wake on NOTIFY and poll every second.

Outcomes follow Mastodon's DeliveryWorker: 2xx delivered; 410 gone (actors at that inbox
are marked deleted); other 4xx and 501 final; 429 retried after its Retry-After (capped at
1 h); 5xx, 401, 408 and network errors retried on `attempt**4 + 15 + rand(0.5 * attempt**4)`
seconds, failed after 16 attempts (about 2 to 3 days).

Domain health: a 5xx or no answer starts (or continues) the domain's failing period; any
other answer ends it. A domain failing for longer than `pause_failing_domain_after_days`
is paused: its rows are no longer claimed. Once per `probe_interval_hours` one worker wins
the probe slot (`delivery_domains.paused_until`, taken by an UPDATE) and sends that
domain's oldest queued row; an answer ends the pause and the rest flows again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import asyncpg

from ..net.http import DeliveryResult, HttpClient, Signer
from ..repo import deliveries as repo
from ..signatures import parse_http_date
from .fanout import DELIVERY_CHANNEL

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import Runtime

log = logging.getLogger("fedserver.federation.delivery")

MAX_ATTEMPTS = 16
RETRY_AFTER_CAP = 3600.0
POLL_SECONDS = 1.0
RETRIED_4XX = frozenset({401, 408, 429})
_DAY = 86400.0


def next_retry_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): Mastodon's `n**4 + 15 + rand(0.5 * n**4)`."""
    base = float(attempt) ** 4
    return base + 15.0 + rng.uniform(0.0, 0.5 * base)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP date), capped at 1 h; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parse_http_date(value) - now
        except ValueError:
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


DomainHealth = Literal["alive", "failing", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What to do with a delivery after one attempt, and what it says about the receiving domain."""

    state: Literal["delivered", "gone", "failed", "retry"]
    delay: float = 0.0
    domain: DomainHealth = "alive"


def classify(result: DeliveryResult, attempt: int, *, rng: random.Random, scale: float = 1.0,
             now: float | None = None) -> Outcome:
    """Decide the next step for a delivery from its result (pure apart from the rng)."""
    status = result.status
    if status is None:
        if result.permanent:  # the address itself is refused: retrying cannot help
            return Outcome("failed", domain="unknown")
        return _retry(attempt, rng, scale, domain="failing")
    if 200 <= status < 300:
        return Outcome("delivered")
    if status == 410:
        return Outcome("gone")
    if status == 429:
        after = parse_retry_after(result.retry_after, time.time() if now is None else now)
        if after is not None and attempt < MAX_ATTEMPTS:
            return Outcome("retry", delay=after)
        return _retry(attempt, rng, scale, domain="alive")
    if (400 <= status < 500 and status not in RETRIED_4XX) or status == 501:
        return Outcome("failed")
    if 300 <= status < 400:  # inboxes do not move; a POST is never redirected
        return Outcome("failed")
    return _retry(attempt, rng, scale, domain="failing" if status >= 500 else "alive")


def _retry(attempt: int, rng: random.Random, scale: float, *, domain: DomainHealth) -> Outcome:
    if attempt >= MAX_ATTEMPTS:
        return Outcome("failed", domain=domain)
    return Outcome("retry", delay=next_retry_delay(attempt, rng) * scale, domain=domain)


def describe(result: DeliveryResult) -> str | None:
    """A short error text for the row: the client's error, or the start of a non-2xx answer."""
    if result.error:
        return result.error[:500]
    if result.ok:
        return None
    text = result.body.decode("utf-8", "replace").strip()
    return f"HTTP {result.status}" + (f": {text[:400]}" if text else "")


class DeliveryWorker:
    """One process's delivery loop: keeps up to `delivery_concurrency` POSTs in flight."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, http: HttpClient, *,
                 rng: random.Random | None = None):
        fed = settings.federation
        self.pool = pool
        self.http = http
        self.settings = settings
        self.rng = rng or random.Random()
        self.concurrency = fed.delivery_concurrency
        self.refill_at = max(1, self.concurrency // 4)
        self.lease = fed.delivery_lease_seconds
        self.scale = fed.retry_delay_scale
        self.pause_after = fed.pause_failing_domain_after_days * _DAY
        self.probe_interval = fed.probe_interval_hours * 3600.0
        self.in_flight: set[asyncio.Task] = set()
        self.wake = asyncio.Event()
        self._signers: dict[int, Signer] = {}
        self._next_probe_check = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop` is set, then let in-flight POSTs finish (bounded)."""
        stopper = asyncio.create_task(self._wake_on(stop))
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                listener = await self._ensure_listener(listener)
                self.wake.clear()
                if await self._fill() == 0:
                    await self._sleep(POLL_SECONDS)
        finally:
            stopper.cancel()
            await self._drain()
            await self._close_listener(listener)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _ensure_listener(self, listener: asyncpg.Connection | None) -> asyncpg.Connection | None:
        """LISTEN on a connection of our own; on failure keep going on polling alone."""
        if listener is not None and not listener.is_closed():
            return listener
        await self._close_listener(listener)
        try:
            conn = await self.pool.acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            log.warning("cannot LISTEN for deliveries (polling instead): %s", exc)
            return None
        try:
            await conn.add_listener(DELIVERY_CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot LISTEN for deliveries (polling instead): %s", exc)
            await self.pool.release(conn)
            return None
        return conn

    def _notified(self, *_args: object) -> None:
        self.wake.set()

    async def _close_listener(self, listener: asyncpg.Connection | None) -> None:
        if listener is None:
            return
        try:
            if not listener.is_closed():
                await listener.remove_listener(DELIVERY_CHANNEL, self._notified)
            await self.pool.release(listener)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("closing the delivery listener: %s", exc)

    async def _fill(self) -> int:
        """Claim as many rows as there are free slots (probes first) and start sending them."""
        free = self.concurrency - len(self.in_flight)
        if free < self.refill_at and self.in_flight:
            return 0  # claim in batches, not one row per finished POST
        try:
            claimed = await self._claim_probes(free)
            async with self.pool.acquire() as conn:
                claimed += await repo.claim_due(conn, limit=free - len(claimed), lease_seconds=self.lease,
                                                pause_after_seconds=self.pause_after)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            log.warning("claiming deliveries failed: %s", exc)
            return 0
        for delivery in claimed:
            task = asyncio.create_task(self._send(delivery))
            self.in_flight.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self.wake.set()

    async def _claim_probes(self, free: int) -> list[repo.ClaimedDelivery]:
        """At most once per poll interval: take due probe slots of paused domains and lease one row each."""
        now = time.monotonic()
        if now < self._next_probe_check:
            return []
        self._next_probe_check = now + POLL_SECONDS
        probes: list[repo.ClaimedDelivery] = []
        async with self.pool.acquire() as conn:
            domains = await repo.take_probe_slots(conn, pause_after_seconds=self.pause_after,
                                                  probe_interval_seconds=self.probe_interval)
            for domain in domains[:free]:
                probe = await repo.claim_probe(conn, domain, lease_seconds=self.lease)
                if probe is not None:
                    log.info("probing paused domain", extra={"domain": domain, "delivery": probe.id})
                    probes.append(probe)
        return probes

    async def _send(self, delivery: repo.ClaimedDelivery) -> None:
        """POST one delivery and record the outcome; never raises (the lease covers any crash)."""
        try:
            signer = await self._signer(delivery.sender_id)
            if signer is None:
                result = DeliveryResult(status=None, error="the sender has no key", permanent=True)
            else:
                body = json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()
                result = await self.http.post_activity(delivery.inbox_uri, body, signer=signer)
            outcome = classify(result, delivery.attempts, rng=self.rng, scale=self.scale)
            await self._record(delivery, outcome, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery %s crashed; it is retried when its lease runs out", delivery.id)

    async def _signer(self, actor_id: int) -> Signer | None:
        """The sender's key, loaded once per process."""
        signer = self._signers.get(actor_id)
        if signer is None:
            async with self.pool.acquire() as conn:
                key = await repo.get_sender_key(conn, actor_id)
            if key is None:
                return None
            signer = self._signers[actor_id] = Signer(key_id=key[0], private_key_pem=key[1])
        return signer

    async def _record(self, delivery: repo.ClaimedDelivery, outcome: Outcome, result: DeliveryResult) -> None:
        """Write the outcome: one UPDATE for the row, one for domain health, one for gone actors."""
        error = describe(result)
        async with self.pool.acquire() as conn:
            if outcome.state == "retry":
                kept = await repo.reschedule(conn, delivery, delay_seconds=outcome.delay, status=result.status,
                                             error=error)
            else:
                kept = await repo.finish(conn, delivery, outcome.state, status=result.status, error=error)
            if not kept:
                log.info("delivery %s was taken over after its lease ran out", delivery.id)
            if outcome.state == "gone":
                await repo.mark_inbox_owners_gone(conn, delivery.inbox_uri)
            if outcome.domain == "failing":
                await repo.record_domain_failure(conn, delivery.domain)
            elif outcome.domain == "alive":
                await repo.record_domain_success(conn, delivery.domain)
        _log_outcome(delivery, outcome, result)

    async def _drain(self) -> None:
        """Give in-flight POSTs the shutdown timeout to finish; cancelled ones are retried after their lease."""
        if not self.in_flight:
            return
        _done, pending = await asyncio.wait(set(self.in_flight), timeout=self.settings.server.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _log_outcome(delivery: repo.ClaimedDelivery, outcome: Outcome, result: DeliveryResult) -> None:
    level = logging.DEBUG if outcome.state == "delivered" else logging.INFO
    log.log(level, "delivery %s", outcome.state, extra={
        "delivery": delivery.id, "inbox": delivery.inbox_uri, "attempt": delivery.attempts,
        "status": result.status, "error": result.error, "retry_in": round(outcome.delay, 1)})


async def run_delivery_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The `delivery` background worker of `fedserver run`; idle while federation is switched off."""
    if not runtime.settings.federation.enabled:
        log.info("federation is switched off: deliveries stay queued")
        await stop.wait()
        return
    await DeliveryWorker(runtime.pool, runtime.settings, runtime.http).run(stop)
