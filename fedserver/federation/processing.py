"""The inbox worker: claim stored activities, dispatch each to its handler, record the outcome.

Inbox items are a queue of the one job mechanism (`fedserver.jobs`): any number of workers
share the table, and a worker killed mid-activity leaves its rows to be claimed again when
the lease runs out. One sender's activities run one after another in arrival order (a Follow
before its Undo); different senders run in parallel. A fetch that fails for now (the sender's
server is down) is retried on the jobs schedule; anything else that goes wrong fails the item
alone, with the reason kept on its row.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from activities.parse import ParseError

from ..dispatch import InboundContext
from ..jobs import RETRY, Job, JobWorker, Outcome, WorkerOptions
from ..net.http import FetchBudget, FetchError
from ..repo.inbox import INBOX

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("fedserver.federation.processing")

CONCURRENCY = 32
POLL_SECONDS = 2.0
FETCH_BUDGET = 20


class InboxWorker:
    """One process's inbox loop."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        options = WorkerOptions(concurrency=CONCURRENCY, poll_seconds=POLL_SECONDS,
                                shutdown_timeout=runtime.settings.server.shutdown_timeout,
                                ordering_key=lambda item: runtime.dispatcher.ordering_key(item["actor_uri"],
                                                                                           item["body"]))
        queue = replace(INBOX, lease_seconds=runtime.settings.federation.inbox_lease_seconds)
        self.jobs = JobWorker(runtime.pool, queue, self.process, options)

    async def run(self, stop: asyncio.Event) -> None:
        """Process inbox items until `stop` is set."""
        await self.jobs.run(stop)

    async def process(self, item: Job) -> Outcome:
        """Dispatch one stored activity; what came of it (never raises)."""
        rt = self.runtime
        ctx = InboundContext(rt.pool, rt.settings, rt.http, rt.signer, FetchBudget(FETCH_BUDGET), item["recipient_id"],
                             rt.publisher, rt.dispatcher.post_hooks)
        try:
            result = await rt.dispatcher.dispatch(ctx, item["body"])
        except (ParseError, ValueError) as exc:
            return Outcome("failed", str(exc))
        except FetchError as exc:
            return Outcome("failed" if exc.permanent else RETRY, exc.reason)
        except Exception as exc:  # a bug must not stop the worker: record it and go on
            log.exception("inbox handler crashed", extra={"item": item.id})
            return Outcome("failed", f"internal error {type(exc).__name__}")
        return Outcome(result.outcome.value, result.reason)


async def run_inbox_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The `inbox` background worker of `fedserver run`."""
    await InboxWorker(runtime).run(stop)
