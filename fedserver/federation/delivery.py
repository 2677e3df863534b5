"""The delivery worker: sign and POST queued deliveries, record each outcome.

Deliveries are a queue of the one job mechanism (`fedserver.jobs`): leased rows, so any
number of workers share them and a worker killed with -9 leaves its rows to be claimed again
when the lease runs out (delivery is at least once); woken by NOTIFY, polled every second.
A line (one sender's deliveries to one inbox, sent in order) goes in runs: the rows behind its
first are leased with it and sent one after another, each only once the one before it ended.

Outcomes follow Mastodon's DeliveryWorker: 2xx delivered; 410 gone (actors at that inbox
are marked deleted); other 4xx and 501 final; 429 retried after its Retry-After (capped at
1 h); 5xx, 401, 408 and network errors retried on the jobs schedule
(`attempt**4 + 15 + rand(0.5 * attempt**4)` seconds), failed after 16 attempts (about 2 to 3 days).

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import asyncpg

from ..jobs import Job, JobWorker, WorkerOptions
from ..jobs import Outcome as JobOutcome
from ..jobs.schedule import RETRY_AFTER_CAP, settle
from ..net.http import DeliveryResult, HttpClient, Signer
from ..repo import deliveries as repo
from ..signatures import parse_http_date

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import Runtime

log = logging.getLogger("fedserver.federation.delivery")

MAX_ATTEMPTS = repo.DELIVERIES.max_attempts
CLAIM_INTERVAL = 0.03  # deliveries queued together are claimed together (only under load: see processing.py)
LINE_RUN = 16  # deliveries of one line (sender and inbox) leased behind its first and sent after it in a run
POLL_SECONDS = 1.0
STRANDED_SWEEP_SECONDS = 10.0  # a crash between recording a delivery and releasing its line delays the line this long
RETRIED_4XX = frozenset({401, 408, 429})
_DAY = 86400.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP date), capped at 1 h; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also takes "²", which float() refuses
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
    retry_after: float | None = None  # a retry's wait set by the peer (429 Retry-After), not by the schedule


def classify(result: DeliveryResult, attempt: int, *, rng: random.Random, scale: float = 1.0,
             now: float | None = None) -> Outcome:
    """Decide the next step for a delivery from its result, on the jobs schedule (pure apart from the rng)."""
    state, delay, domain = _verdict(result, time.time() if now is None else now)
    settled, wait = settle(JobOutcome(state, delay=delay), attempt, MAX_ATTEMPTS, rng, scale)
    return Outcome(settled.state, wait, domain, delay if settled.retry else None)  # type: ignore[arg-type]


def _verdict(result: DeliveryResult, now: float) -> tuple[str, float | None, DomainHealth]:
    """(state, explicit retry delay, domain health) from one answer, before the attempt count is considered."""
    status = result.status
    if status is None:
        if result.permanent:  # the address itself is refused: retrying cannot help
            return "failed", None, "unknown"
        return "retry", None, "failing"
    if 200 <= status < 300:
        return "delivered", None, "alive"
    if status == 410:
        return "gone", None, "alive"
    if status == 429:
        return "retry", parse_retry_after(result.retry_after, now), "alive"
    if (400 <= status < 500 and status not in RETRIED_4XX) or status == 501 or 300 <= status < 400:
        return "failed", None, "alive"  # inboxes do not move: a POST is never redirected
    return "retry", None, "failing" if status >= 500 else "alive"


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
        self.rng = rng or random.Random()
        self.scale = fed.retry_delay_scale
        self.pause_after = fed.pause_failing_domain_after_days * _DAY
        self.probe_interval = fed.probe_interval_hours * 3600.0
        self.queue = replace(repo.DELIVERIES, lease_seconds=fed.delivery_lease_seconds)
        options = WorkerOptions(concurrency=fed.delivery_concurrency, poll_seconds=POLL_SECONDS,
                                retry_scale=self.scale, shutdown_timeout=settings.server.shutdown_timeout,
                                extra_claim=self._claim_probes, claim_along=self._claim_along,
                                claim_interval=CLAIM_INTERVAL,
                                ordering_key=lambda delivery: (delivery["inbox_uri"], delivery["sender_id"]))
        self.jobs = JobWorker(pool, self.queue, self._send, options, rng=self.rng, claim_args=(self.pause_after,))
        self._signers: dict[int, Signer] = {}
        self._bodies: dict[int, bytes] = {}
        self._next_probe_check = 0.0
        self._next_sweep = time.monotonic() + STRANDED_SWEEP_SECONDS
        # Domains recorded as failing, re-read at each probe check: an answer from one of them ends its
        # failing period; an answer from any other needs no write (most deliveries).
        self._failing: frozenset[str] = frozenset()
        # Line runs: the ids that claimed followers wait for, and those of them that ended (delivered or final).
        self._followed: set[int] = set()
        self._ended: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop` is set, then let in-flight POSTs finish (bounded)."""
        await self.jobs.run(stop)

    async def _claim_probes(self, conn: asyncpg.Connection, free: int) -> list[Job]:
        """At most once per poll interval: re-read the failing domains; take due probe slots of paused domains
        and lease one row each. Now and then, release lines a crash left waiting."""
        now = time.monotonic()
        if now < self._next_probe_check:
            return []
        self._next_probe_check = now + POLL_SECONDS
        if now >= self._next_sweep:
            self._next_sweep = now + STRANDED_SWEEP_SECONDS
            if released := await repo.release_stranded(conn, self.queue):
                log.info("released %d deliveries left waiting behind ended ones", released)
        self._failing = frozenset(await repo.failing_domains(conn))
        if free <= 0:
            return []
        probes: list[Job] = []
        domains = await repo.take_probe_slots(conn, pause_after_seconds=self.pause_after,
                                              probe_interval_seconds=self.probe_interval)
        for domain in domains[:free]:
            probe = await repo.claim_probe(conn, self.queue, domain)
            if probe is not None:
                log.info("probing paused domain", extra={"domain": domain, "delivery": probe.id})
                probes.append(probe)
        return probes

    async def _claim_along(self, conn: asyncpg.Connection, heads: list[Job]) -> list[Job]:
        """The deliveries behind the first ones of their lines, leased too: a line is sent in a run, one after
        another, rather than one claim (and one wake-up) per delivery. The bodies of all are read at once."""
        followers = await repo.claim_followers(conn, self.queue, heads, LINE_RUN, LINE_RUN * len(heads))
        self._followed.update(follower["after"] for follower in followers)
        missing = {job["body_id"] for job in [*heads, *followers]} - self._bodies.keys()
        if missing:
            if len(self._bodies) + len(missing) > MAX_CACHED_BODIES:
                self._bodies.clear()
            for body_id, document in (await repo.get_bodies(conn, missing)).items():
                self._bodies[body_id] = _encode(document)
        return followers

    async def _send(self, delivery: Job) -> JobOutcome:
        """POST one delivery; the outcome carries the domain health and gone actors to record with it.

        A follower (leased behind the first of its line) goes only if the one before it ended; otherwise
        it is put back unsent, to wait in its line."""
        after = delivery.row.get("after")
        if after is not None:
            self._followed.discard(after)
            if after not in self._ended:
                return JobOutcome("queued", "held back: the delivery before it in its line did not go through",
                                  effects=lambda conn: repo.uncount_attempt(conn, delivery.id))
            self._ended.discard(after)
        outcome = await self._post(delivery)
        if delivery.id in self._followed and outcome.state != "retry":
            self._ended.add(delivery.id)
        return outcome

    async def _post(self, delivery: Job) -> JobOutcome:
        signer = await self._signer(delivery["sender_id"])
        if signer is None:
            result = DeliveryResult(status=None, error="the sender has no key", permanent=True)
        else:
            body = await self._body(delivery["body_id"])
            result = await self.http.post_activity(delivery["inbox_uri"], body, signer=signer)
        outcome = classify(result, delivery.attempts, rng=self.rng, scale=self.scale)
        _log_outcome(delivery, outcome, result)
        if outcome.domain == "failing":
            self._failing = self._failing | {delivery["domain"]}
        needs_record = outcome.state == "gone" or outcome.domain == "failing" or (
            outcome.domain == "alive" and delivery["domain"] in self._failing)
        # Only a peer's Retry-After goes with the outcome: the job worker caps an explicit delay at an hour, and
        # the schedule's own waits (about 1.1 to 21 hours from attempt 8 on) are drawn by the worker uncapped.
        return JobOutcome(outcome.state, describe(result), result.status, delay=outcome.retry_after,
                          effects=(lambda conn: _record_health(conn, delivery, outcome)) if needs_record else None)

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

    async def _body(self, body_id: int) -> bytes:
        """The activity's JSON, loaded and encoded once per process however many inboxes it goes to."""
        body = self._bodies.get(body_id)
        if body is None:
            async with self.pool.acquire() as conn:
                document = (await repo.get_bodies(conn, [body_id]))[body_id]
            if len(self._bodies) >= MAX_CACHED_BODIES:
                self._bodies.clear()
            body = self._bodies[body_id] = _encode(document)
        return body


MAX_CACHED_BODIES = 256


def _encode(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def _record_health(conn: asyncpg.Connection, delivery: Job, outcome: Outcome) -> None:
    """With the outcome: the domain's health, and actors whose inbox is gone."""
    if outcome.state == "gone":
        await repo.mark_inbox_owners_gone(conn, delivery["inbox_uri"])
    if outcome.domain == "failing":
        await repo.record_domain_failure(conn, delivery["domain"])
    elif outcome.domain == "alive":
        await repo.record_domain_success(conn, delivery["domain"])


def _log_outcome(delivery: Job, outcome: Outcome, result: DeliveryResult) -> None:
    level = logging.DEBUG if outcome.state == "delivered" else logging.INFO
    log.log(level, "delivery %s", outcome.state, extra={
        "delivery": delivery.id, "inbox": delivery["inbox_uri"], "attempt": delivery.attempts,
        "status": result.status, "error": result.error, "retry_after": outcome.retry_after})


async def run_delivery_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The `delivery` background worker of `fedserver run`; idle while federation is switched off."""
    if not runtime.settings.federation.enabled:
        log.info("federation is switched off: deliveries stay queued")
        await stop.wait()
        return
    await DeliveryWorker(runtime.pool, runtime.settings, runtime.http).run(stop)
