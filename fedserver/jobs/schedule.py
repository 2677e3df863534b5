"""When a failed job is tried again, and what one attempt came to. Pure: no I/O.

One schedule for every queue, Mastodon's (`attempt**4 + 15 + rand(0.5 * attempt**4)` seconds
after failed attempt `attempt`): 16 attempts span about 2 to 3 days, 8 about 80 minutes.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

RETRY = "retry"
RETRY_AFTER_CAP = 3600.0  # a peer's Retry-After is honoured up to an hour

# Writes that belong with the outcome: run in the transaction that records it, only while the
# worker still holds the job's lease.
Effects = Callable[["asyncpg.Connection"], Awaitable[Any]]


def retry_delay(attempt: int, rng: random.Random, scale: float = 1.0) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based), times `scale` (tests shrink it)."""
    base = float(attempt) ** 4
    return (base + 15.0 + rng.uniform(0.0, 0.5 * base)) * scale


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: a final state of the queue's table, or RETRY.

    `error` and `status` are kept on the row; `delay` overrides the schedule for a retry
    (a Retry-After); `effects` are written together with the outcome.
    """

    state: str
    error: str | None = None
    status: int | None = None
    delay: float | None = None
    effects: Effects | None = None

    @property
    def retry(self) -> bool:
        """Whether the job goes back to the queue."""
        return self.state == RETRY


def settle(outcome: Outcome, attempts: int, max_attempts: int, rng: random.Random,
           scale: float = 1.0) -> tuple[Outcome, float]:
    """The outcome to record after attempt number `attempts`, and the retry delay (0 for a final one).

    A retry past the last attempt becomes `failed`; a retry's delay is its own (capped) or the schedule's.
    """
    if not outcome.retry:
        return outcome, 0.0
    if attempts >= max_attempts:
        return Outcome("failed", outcome.error, outcome.status, effects=outcome.effects), 0.0
    if outcome.delay is not None:
        return outcome, min(max(outcome.delay, 0.0), RETRY_AFTER_CAP)
    return outcome, retry_delay(attempts, rng, scale)
