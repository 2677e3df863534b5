"""The one retry schedule of every job queue (Mastodon's), and how an attempt's outcome is settled."""

from __future__ import annotations

import random

from fedserver.jobs import RETRY, Outcome
from fedserver.jobs import retry_delay as next_retry_delay
from fedserver.jobs.schedule import RETRY_AFTER_CAP, settle
from fedserver.repo.deliveries import DELIVERIES

MAX_ATTEMPTS = DELIVERIES.max_attempts
DAY = 86400


def _total(rng: random.Random) -> float:
    # 16 attempts leave 15 waits between them.
    return sum(next_retry_delay(attempt, rng) for attempt in range(1, MAX_ATTEMPTS))


def test_sixteen_attempts_span_two_to_four_days_like_mastodon():
    for seed in range(50):
        assert 2 * DAY < _total(random.Random(seed)) < 4 * DAY


def test_bounds_of_each_delay():
    low = random.Random()
    low.uniform = lambda a, b: a  # type: ignore[method-assign]
    high = random.Random()
    high.uniform = lambda a, b: b  # type: ignore[method-assign]
    assert next_retry_delay(1, low) == 16 and next_retry_delay(1, high) == 16.5
    assert next_retry_delay(10, low) == 10_015 and next_retry_delay(10, high) == 15_015
    assert 2 * DAY < _total(low) < _total(high) < 3.2 * DAY


def test_each_delay_is_at_least_n_to_the_fourth_plus_15_and_at_most_half_again():
    rng = random.Random(1)
    for n in range(1, MAX_ATTEMPTS):
        assert n**4 + 15 <= next_retry_delay(n, rng) <= 1.5 * n**4 + 15


def test_sixteen_is_the_delivery_queues_limit_and_eight_the_inbox_queues():
    from fedserver.repo.inbox import INBOX
    from rewards.store import RECEIPT_DELIVERIES

    assert (DELIVERIES.max_attempts, RECEIPT_DELIVERIES.max_attempts, INBOX.max_attempts) == (16, 16, 8)


def test_a_retry_past_the_last_attempt_is_failed_and_keeps_its_reason_and_effects():
    async def effects(conn):
        return None

    retry = Outcome(RETRY, "HTTP 503", 503, effects=effects)
    kept, delay = settle(retry, 3, 3, random.Random(0))
    assert (kept.state, kept.error, kept.status, kept.effects, delay) == ("failed", "HTTP 503", 503, effects, 0.0)
    again, delay = settle(retry, 2, 3, random.Random(0))
    assert again is retry and delay == next_retry_delay(2, random.Random(0))


def test_a_final_outcome_is_recorded_as_it_is():
    done = Outcome("delivered")
    assert settle(done, 16, 16, random.Random()) == (done, 0.0)


def test_an_explicit_delay_is_honoured_up_to_the_cap_and_not_scaled():
    assert settle(Outcome(RETRY, delay=120.0), 1, 16, random.Random(), 0.001)[1] == 120.0
    assert settle(Outcome(RETRY, delay=86400.0), 1, 16, random.Random())[1] == RETRY_AFTER_CAP
    assert settle(Outcome(RETRY), 5, 16, random.Random(0), 0.001)[1] == next_retry_delay(5, random.Random(0), 0.001)
