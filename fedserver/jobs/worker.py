"""The one loop that works a job table: claim with a lease, run, record, retry on the schedule.

A worker keeps up to `concurrency` jobs in flight and claims in batches (when at least
`refill_at` slots are free), woken by NOTIFY on the queue's channel, by a finished job, and
by a slow poll (so it keeps working, by polling alone, while it cannot LISTEN). Jobs that
share an ordering key run one after another in the order they were claimed; others run in
parallel. A queue may also run batches: consecutive claimed jobs of one ordering key that share
a batch key go to `run_batch` together (one transaction for all, say), and if that raises, each
runs alone, so one bad job fails alone. A batch's `prepare_batch` (pure work: parsing, say) runs
as soon as it is claimed, ahead of its turn, so that a key's next batch is made ready while its
previous one waits on the database; and a key's next unit starts as soon as a batch's `run_batch`
has returned (its work committed), while the batch's outcomes are being written. A job's run
never raises into the loop: a crash is logged and its lease brings it back later. On stop, jobs
in flight get `shutdown_timeout` seconds; cancelled ones come back when their lease runs out.
Nothing is held only in memory.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import asyncpg

from ..db import DATABASE_DOWN, database_down
from ..repo import jobs as store
from ..repo.jobs import Job, Queue, Settled
from ..repo.session_state import keeps_session_state
from ..turns import worker_turn
from .batcher import Batcher
from .schedule import Outcome, settle

log = logging.getLogger("fedserver.jobs")

OUTAGE_PAUSE = 1.0  # seconds between tries of a job's step while the database restarts
T = TypeVar("T")

_ALONE = object()  # a batch whose preparing failed: each of its jobs runs alone

Run = Callable[[Job], Awaitable[Outcome]]
RunBatch = Callable[[list[Job], Any], Awaitable[list[Outcome]]]  # with what prepare_batch made (or None)
PrepareBatch = Callable[[list[Job]], Awaitable[Any]]
ExtraClaim = Callable[[asyncpg.Connection, int], Awaitable[list[Job]]]
# Jobs to lease along with those just claimed, each to run after the claimed ones of its ordering key.
ClaimAlong = Callable[[asyncpg.Connection, list[Job]], Awaitable[list[Job]]]


@dataclass(frozen=True)
class WorkerOptions:
    """How one process works a queue."""

    concurrency: int = 32
    refill_at: int | None = None  # free slots needed before claiming again (default: a quarter)
    poll_seconds: float = 1.0
    retry_scale: float = 1.0  # multiplies the schedule's delays (tests only)
    shutdown_timeout: float = 10.0
    ordering_key: Callable[[Job], Hashable] | None = None
    extra_claim: ExtraClaim | None = None  # claimed first on each fill (such as probes of paused domains)
    # Claimed last on each fill (such as the rows behind a line's first); they wait in their key's order and take
    # no slot of `concurrency`, so the claim that brings them must bound how many.
    claim_along: ClaimAlong | None = None
    batch_key: Callable[[Job], Hashable | None] | None = None  # None: the job runs alone
    run_batch: RunBatch | None = None  # an outcome for each job of a batch, in order
    prepare_batch: PrepareBatch | None = None  # pure work on a batch, run ahead of its turn
    max_batch: int = 64
    claim_interval: float = 0.0  # least seconds between two claims: rows arriving meanwhile are claimed together
    parallel: int | None = None  # units (jobs or batches) running at once; None: as many as are in hand


class JobWorker:
    """Works one queue in this process until its stop event is set."""

    def __init__(self, pool: asyncpg.Pool, queue: Queue, run: Run, options: WorkerOptions | None = None, *,
                 rng: random.Random | None = None, claim_args: tuple[Any, ...] = ()):
        self.pool, self.queue, self.run_job = pool, queue, run
        self.options = options or WorkerOptions()
        self.refill_at = self.options.refill_at or max(1, self.options.concurrency // 4)
        self.rng = rng or random.Random()
        self.claim_args = claim_args
        self.name = uuid.uuid4().hex  # the claimant of the rows this worker leases
        self.in_flight: set[asyncio.Task] = set()
        self.wake = asyncio.Event()
        self._chains: dict[Hashable, asyncio.Task] = {}
        self._jobs_in_flight = 0  # jobs in the tasks of `in_flight` (a batch is one task), but those claimed along
        self._last_claim = 0.0  # time.monotonic() of the latest claim
        self._running = asyncio.Semaphore(self.options.parallel or self.options.concurrency)
        # Outcomes without effects, of jobs that end at about the same time, go in one statement.
        self._outcomes: Batcher[Settled, bool] = Batcher(pool, self._record_many, name=f"{queue.table}-outcomes",
                                                         max_batch=256, max_flushers=2)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run until `stop` is set, then let jobs in flight finish (bounded)."""
        stopper = asyncio.create_task(self._wake_on(stop))
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                listener = await self._ensure_listener(listener)
                self.wake.clear()
                if await self._fill() == 0:
                    await self._sleep(self.options.poll_seconds)
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
        """LISTEN on a connection of our own; when that fails, keep going on polling alone."""
        if listener is not None and _open(listener):
            return listener
        await self._close_listener(listener)
        try:
            conn = await self.pool.acquire()
        except DATABASE_DOWN as exc:
            log.warning("cannot LISTEN on %s (polling instead): %s", self.queue.channel, exc)
            return None
        keeps_session_state(conn)
        try:
            await conn.add_listener(self.queue.channel, self._notified)
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            log.warning("cannot LISTEN on %s (polling instead): %s", self.queue.channel, exc)
            await self.pool.release(conn)
            return None
        return conn

    def _notified(self, *_args: object) -> None:
        self.wake.set()

    async def _close_listener(self, listener: asyncpg.Connection | None) -> None:
        if listener is None:
            return
        try:
            if _open(listener):
                await listener.remove_listener(self.queue.channel, self._notified)
            await self.pool.release(listener)
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            log.debug("closing the %s listener: %s", self.queue.channel, exc)

    async def _fill(self) -> int:
        """Claim as many jobs as there are free slots and start them; how many were claimed."""
        free = self.options.concurrency - self._jobs_in_flight
        if free < self.refill_at and self.in_flight:
            return 0  # claim in batches, not one row per finished job
        pause = self._last_claim + self.options.claim_interval - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        self._last_claim = time.monotonic()
        try:
            async with self.pool.acquire() as conn:
                claimed = await self.options.extra_claim(conn, free) if self.options.extra_claim else []
                claimed += await store.claim(conn, self.queue, free - len(claimed), *self.claim_args,
                                             worker=self.name)
                along = await self.options.claim_along(conn, claimed) if claimed and self.options.claim_along else []
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            log.warning("claiming from %s failed: %s", self.queue.table, exc)
            return 0
        for unit in self.units(claimed):
            self._start(unit)
        for job in along:
            self._start([job], counted=False)
        return len(claimed) + len(along)

    def units(self, claimed: list[Job]) -> list[list[Job]]:
        """Claimed jobs in what runs as one: a batch of jobs of one batch key, or one job.

        A batch may hold jobs of several ordering keys; a job joins its batch key's latest batch
        only if no later unit holds an earlier job of its ordering key, so each key's jobs still
        run in claim order.
        """
        units: list[list[Job]] = []
        open_batch: dict[Hashable, int] = {}  # batch key -> index of its latest batch
        last: dict[Hashable, int] = {}  # ordering key -> index of the last unit holding one of its jobs
        for job in claimed:
            key = self.options.ordering_key(job) if self.options.ordering_key else None
            batch = self.options.batch_key(job) if self.options.batch_key and self.options.run_batch else None
            at = open_batch.get(batch) if batch is not None else None
            if at is not None and last.get(key, -1) <= at and len(units[at]) < self.options.max_batch:
                units[at].append(job)
                last[key] = at
                continue
            units.append([job])
            last[key] = len(units) - 1
            if batch is not None:
                open_batch[batch] = len(units) - 1
        return units

    def _start(self, unit: list[Job], counted: bool = True) -> None:
        keys = list(dict.fromkeys(self.options.ordering_key(job) for job in unit)) if self.options.ordering_key else []
        before = {self._chains[key] for key in keys if key in self._chains}
        # What the next unit of these keys waits for: this one's effects committed (a batch's, before its outcomes
        # are recorded), or its end.
        turn: asyncio.Future = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._after(before, unit, turn))
        task.add_done_callback(functools.partial(_pass_turn, turn))
        for key in keys:
            self._chains[key] = turn
            task.add_done_callback(functools.partial(self._unchain, key, turn))
        self.in_flight.add(task)
        size = len(unit) if counted else 0
        self._jobs_in_flight += size
        task.add_done_callback(functools.partial(self._done, size=size))

    def _unchain(self, key: Hashable, turn: asyncio.Future, _task: asyncio.Task) -> None:
        if self._chains.get(key) is turn:
            del self._chains[key]

    def _done(self, task: asyncio.Task, size: int) -> None:
        self.in_flight.discard(task)
        self._jobs_in_flight -= size
        self.wake.set()

    async def _after(self, before: set[asyncio.Future], unit: list[Job], turn: asyncio.Future) -> None:
        prepared: Any = None
        if len(unit) > 1 and self.options.prepare_batch is not None:
            try:
                prepared = await self.options.prepare_batch(unit)
            except Exception:
                log.warning("preparing a batch of %d %s jobs failed; each runs alone", len(unit), self.queue.table,
                            exc_info=True)
                prepared = _ALONE
        if before:
            await asyncio.wait(before)  # the earlier units of the same keys first, whatever came of them
        await worker_turn()  # requests in flight in this process first (briefly)
        async with self._running:
            if len(unit) == 1:
                await self.attempt(unit[0])
            elif prepared is _ALONE:
                await self._each_alone(unit)
            else:
                await self.attempt_batch(unit, prepared, turn)

    async def attempt_batch(self, jobs: list[Job], prepared: Any = None, turn: asyncio.Future | None = None) -> None:
        """Run jobs as one batch and record each outcome; if the batch raises, run each alone.

        Once the batch's effects are committed, `turn` lets the next unit of its keys start while the outcomes
        are recorded (unless recording them has effects of its own): if recording fails, or the process dies
        first, the leases bring the jobs back, and what a batch handler does is idempotent (a Create of a post
        already stored, a Like already kept, an Offer already made into an order are each ignored).
        """
        run_batch = self.options.run_batch
        assert run_batch is not None
        lease = min(job.lease for job in jobs)
        try:
            outcomes = await _through_outages(lease, lambda: run_batch(jobs, prepared))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if database_down(exc):
                log.warning("a batch of %d %s jobs waits for the database; their leases bring them back: %s",
                            len(jobs), self.queue.table, exc)
                return
            log.warning("a batch of %d %s jobs failed; each runs alone", len(jobs), self.queue.table, exc_info=True)
            await self._each_alone(jobs)
            return
        if turn is not None and all(outcome.effects is None for outcome in outcomes):
            _pass_turn(turn)  # what the batch did is committed; recording its outcomes has no effects to wait for
        try:
            await _through_outages(lease, lambda: asyncio.gather(
                *(self.record(job, outcome) for job, outcome in zip(jobs, outcomes, strict=True))))
        except Exception as exc:
            log.error("recording a batch of %s jobs failed; their leases bring them back", self.queue.table,
                      exc_info=None if database_down(exc) else exc)

    async def _each_alone(self, jobs: list[Job]) -> None:
        """Jobs that could not run as a batch, one after another in their order."""
        for job in jobs:
            await self.attempt(job)

    async def attempt(self, job: Job) -> Outcome | None:
        """Run one job and record what came of it; never raises (the lease covers any crash)."""
        try:
            outcome = await _through_outages(job.lease, lambda: self.run_job(job))
            return await _through_outages(job.lease, lambda: self.record(job, outcome))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if database_down(exc):
                log.warning("%s job %s waits for the database; it is retried when its lease runs out: %s",
                            self.queue.table, job.id, exc)
            else:
                log.exception("%s job %s crashed; it is retried when its lease runs out", self.queue.table, job.id)
            return None

    async def record(self, job: Job, outcome: Outcome) -> Outcome:
        """Write the outcome (and its effects) in one transaction, if the lease is still ours."""
        outcome, delay = settle(outcome, job.attempts, self.queue.max_attempts, self.rng, self.options.retry_scale)
        error = outcome.error[:500] if outcome.error else None
        settled = Settled(job, "queued" if outcome.retry else outcome.state, delay, error, outcome.status)
        if outcome.effects is None:
            kept = await self._outcomes.submit(settled)
        else:
            async with self.pool.acquire() as conn, conn.transaction():
                kept = job.id in await store.record_many(conn, self.queue, [settled])
                if kept:
                    await outcome.effects(conn)
        if not kept:
            log.info("%s job %s was taken over after its lease ran out", self.queue.table, job.id)
        return outcome

    async def _record_many(self, conn: asyncpg.Connection, outcomes: list[Settled]) -> list[bool]:
        kept = await store.record_many(conn, self.queue, outcomes)
        return [settled.job.id in kept for settled in outcomes]

    async def _drain(self) -> None:
        """Give jobs in flight the shutdown timeout to finish; cancelled ones come back after their lease."""
        if not self.in_flight:
            return
        _done, pending = await asyncio.wait(set(self.in_flight), timeout=self.options.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _through_outages(lease: datetime, step: Callable[[], Awaitable[T]]) -> T:
    """Run `step`; while it fails because the database is out of reach (a restart), try again every
    OUTAGE_PAUSE seconds as long as the job's lease lasts. Running a step again is safe: a job may
    run more than once (at-least-once), and an outcome is recorded only under its lease.
    """
    while True:
        try:
            return await step()
        except Exception as exc:
            if not database_down(exc) or datetime.now(timezone.utc) + timedelta(seconds=2 * OUTAGE_PAUSE) >= lease:
                raise
        await asyncio.sleep(OUTAGE_PAUSE)


def _pass_turn(turn: asyncio.Future, *_args: object) -> None:
    if not turn.done():
        turn.set_result(None)


def _open(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is still usable: when the server closes it, the pool takes it back."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # "connection has been released back to the pool"
        return False
