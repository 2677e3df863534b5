"""The inbox worker: claim stored activities, dispatch each to its handler, record the outcome.

Inbox items are a queue of the one job mechanism (`fedserver.jobs`): any number of workers
share the table, and a worker killed mid-activity leaves its rows to be claimed again when
the lease runs out. One sender's activities run one after another in arrival order (a Follow
before its Undo), in any number of worker processes (a sender's rows are leased to one worker
at a time); different senders run in parallel. A run of one sender's activities that have a
batch handler (Creates of posts) is handled as one batch, in one transaction; if the batch
fails, each of its activities runs alone. A fetch that fails for now (the sender's server is
down) is retried on the jobs schedule; anything else that goes wrong fails the item alone,
with the reason kept on its row.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from activities.parse import ParseError

from ..db import database_down
from ..dispatch import InboundContext, Prepared, Result
from ..jobs import RETRY, Job, JobWorker, Outcome, WorkerOptions
from ..moderation import Moderation
from ..net.http import FetchBudget, FetchError
from ..repo.inbox import INBOX

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("fedserver.federation.processing")

CONCURRENCY = 512  # activities claimed and in hand at once (a batch of a sender's run counts its size)
MAX_BATCH = 256  # bench/inbox_ingest.py, alternating runs: 128 drained 2,133-2,254/s, 256 2,504-3,265/s, and the
# timeline p99 was no worse; a batch's posts are JSON-encoded while it is prepared (in turns), so its longest step
# without a turn for requests is now at most about 8 ms under load (it was 13 ms when its INSERT encoded them)
PARALLEL = 4  # jobs or batches running at once: the web keeps its share of the pool and of the CPU
POLL_SECONDS = 2.0
CLAIM_INTERVAL = 0.05  # a burst's activities are claimed (and batched) together, not one claim each; after a
# quiet spell the first claim waits for nothing (bench/orders.py: 0.02 made 14.0-14.6 statements per order on
# the maker's server, 0.05 makes 10.5-11.5)
FETCH_BUDGET = 20


class InboxWorker:
    """One process's inbox loop."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        dispatcher = runtime.dispatcher
        options = WorkerOptions(concurrency=CONCURRENCY, poll_seconds=POLL_SECONDS,
                                shutdown_timeout=runtime.settings.server.shutdown_timeout,
                                ordering_key=lambda item: dispatcher.ordering_key(item["actor_uri"], item["body"]),
                                batch_key=lambda item: dispatcher.batch_key(item["body"]),
                                run_batch=self.process_batch, prepare_batch=self.prepare_batch,
                                max_batch=MAX_BATCH, parallel=PARALLEL, claim_interval=CLAIM_INTERVAL)
        queue = replace(INBOX, lease_seconds=runtime.settings.federation.inbox_lease_seconds)
        self.jobs = JobWorker(runtime.pool, queue, self.process, options)
        self.moderation = runtime.moderation or Moderation(runtime.pool)

    async def run(self, stop: asyncio.Event) -> None:
        """Process inbox items until `stop` is set."""
        await self.jobs.run(stop)

    def _context(self, recipient_id: int | None, activities: int = 1) -> InboundContext:
        """What a handler gets: the fetch budget of `activities` activities (a batch shares theirs)."""
        rt = self.runtime
        return InboundContext(rt.pool, rt.settings, rt.http, rt.signer, FetchBudget(FETCH_BUDGET * activities),
                              recipient_id, rt.publisher, rt.dispatcher.post_hooks)

    async def process(self, item: Job) -> Outcome:
        """Dispatch one stored activity; what came of it (raises only when the database is out of reach)."""
        if refused := await self.moderation.refuses_actor(item["actor_uri"]):
            return Outcome("ignored", refused)  # suspended after it was received
        try:
            result: Result | Exception = await self.runtime.dispatcher.dispatch(self._context(item["recipient_id"]),
                                                                                item["body"])
        except Exception as exc:
            result = exc
        return _outcome(item, result)

    async def prepare_batch(self, items: list[Job]) -> Prepared:
        """Parse and prepare a batch ahead of its turn (pure); raises when they are not one batch."""
        return await self.runtime.dispatcher.prepare_many([(item["body"], item["recipient_id"]) for item in items])

    async def process_batch(self, items: list[Job], prepared: Prepared | None) -> list[Outcome]:
        """Dispatch activities of one batch handler as one batch; raises when the batch as a whole failed."""
        if any([await self.moderation.refuses_actor(item["actor_uri"]) for item in items]):
            raise BatchRefused("a sender of the batch is suspended: its activities are dropped one by one")
        results = await self.runtime.dispatcher.dispatch_many(
            self._context(None, len(items)), [(item["body"], item["recipient_id"]) for item in items], prepared)
        return [_outcome(item, result) for item, result in zip(items, results, strict=True)]


class BatchRefused(Exception):
    """A batch holds an activity of a suspended sender: each is processed (or dropped) alone."""


def _outcome(item: Job, result: Result | Exception) -> Outcome:
    """What a handler's result, or what it raised, comes to for the item's row."""
    if isinstance(result, (ParseError, ValueError)):
        return Outcome("failed", str(result))
    if isinstance(result, FetchError):
        return Outcome("failed" if result.permanent else RETRY, result.reason)
    if database_down(result):  # not the activity's fault: the worker tries again once the database is back
        raise result
    if isinstance(result, Exception):  # a bug must not stop the worker: record it and go on
        log.error("inbox handler crashed", exc_info=result, extra={"item": item.id})
        return Outcome("failed", f"internal error {type(result).__name__}")
    return Outcome(result.outcome.value, result.reason)


async def run_inbox_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The `inbox` background worker of `fedserver run`."""
    await InboxWorker(runtime).run(stop)
