"""How each delivery answer is classified, on the jobs retry schedule."""

from __future__ import annotations

import random

import pytest

from fedserver.federation.delivery import MAX_ATTEMPTS, classify, parse_retry_after
from fedserver.jobs import retry_delay as next_retry_delay
from fedserver.net.http import DeliveryResult
from fedserver.signatures import http_date

def _outcome(status=None, *, attempt=1, retry_after=None, error=None, permanent=False, scale=1.0):
    result = DeliveryResult(status=status, retry_after=retry_after, error=error, permanent=permanent)
    return classify(result, attempt, rng=random.Random(0), scale=scale, now=1_000_000.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered_and_the_domain_alive(status):
    outcome = _outcome(status)
    assert (outcome.state, outcome.domain) == ("delivered", "alive")


def test_410_is_gone():
    assert _outcome(410).state == "gone"


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 422, 501, 302])
def test_other_4xx_and_501_are_final(status):
    assert _outcome(status).state == "failed"


@pytest.mark.parametrize("status, domain", [(500, "failing"), (502, "failing"), (503, "failing"),
                                            (401, "alive"), (408, "alive")])
def test_5xx_401_408_are_retried(status, domain):
    outcome = _outcome(status, attempt=3)
    assert outcome.state == "retry" and outcome.domain == domain
    assert 81 + 15 <= outcome.delay <= 81 * 1.5 + 15


def test_network_errors_are_retried_and_count_against_the_domain():
    outcome = _outcome(None, error="cannot connect")
    assert (outcome.state, outcome.domain) == ("retry", "failing")


def test_a_refused_address_is_final():
    assert _outcome(None, error="private address", permanent=True).state == "failed"


def test_the_sixteenth_failed_attempt_is_final():
    assert _outcome(503, attempt=MAX_ATTEMPTS - 1).state == "retry"
    assert _outcome(503, attempt=MAX_ATTEMPTS).state == "failed"


def test_429_honours_retry_after_capped_at_one_hour_and_is_no_domain_failure():
    assert _outcome(429, retry_after="120") == _outcome(429, retry_after="120")
    outcome = _outcome(429, retry_after="120", scale=0.001)
    assert (outcome.state, outcome.delay, outcome.domain) == ("retry", 120.0, "alive")
    assert _outcome(429, retry_after="86400").delay == 3600.0
    assert _outcome(429, retry_after=http_date(1_000_000.0 + 300)).delay == pytest.approx(300)
    assert _outcome(429).delay == pytest.approx(next_retry_delay(1, random.Random(0)))


def test_retry_delay_scale_shrinks_the_schedule():
    assert _outcome(503, attempt=5, scale=0.001).delay == pytest.approx(
        next_retry_delay(5, random.Random(0)) * 0.001)


@pytest.mark.parametrize("value, expected", [
    ("0", 0.0), ("30", 30.0), (" 7 ", 7.0), ("99999", 3600.0), ("soon", None), ("", None), (None, None),
    ("-5", None), ("²", None), ("٣", None),  # digits to str.isdigit(), not to float() or HTTP
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, 0.0) == expected
