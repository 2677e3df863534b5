"""The endorsement anti-abuse rules: budget, self and circle limits, instance quota, settlement."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.endorse import (
    CANCELLED,
    PENDING,
    SETTLED,
    SETTLEMENT_TRANSITIONS,
    UNITS_PER_ENDORSEMENT,
    EndorsementBudget,
    EndorsementPolicy,
    endorsement_points,
    full_budget,
    instance_grant,
    reciprocal_weight,
    regenerate,
    settlement_state,
    spend_endorsement,
)
from rewards.points import DAY_SECONDS, PointsPolicy

POLICY = EndorsementPolicy()
FULL = UNITS_PER_ENDORSEMENT
T0 = 1767225600.0
A = "https://b.example/users/a"
B = "https://a.example/users/b"
POINTS = PointsPolicy(version=1, like=1, announce=2, reply=3, daily_cap=100)
MAX_BASE = max(POINTS.base_points(kind) for kind in ("like", "announce", "reply"))
EXAMPLES = settings(max_examples=150, deadline=None)

policies = st.builds(
    EndorsementPolicy,
    endorsements_per_day=st.integers(1, 50),
    instance_daily_quota=st.integers(0, 5000),
    settlement_seconds=st.integers(0, 14 * DAY_SECONDS),
    reciprocal_share_percent=st.integers(0, 99),
    reciprocal_pair_cap=st.integers(0, 10),
)
# (seconds since the previous event, whether the account endorses then)
events = st.lists(st.tuples(st.floats(0, 20000, allow_nan=False), st.booleans()), max_size=120)


def empty(now: float = T0) -> EndorsementBudget:
    return EndorsementBudget(0, int(now))


# The budget, by example.

def test_a_new_account_starts_with_a_full_budget():
    assert full_budget(POLICY, T0) == EndorsementBudget(10 * FULL, int(T0))
    assert POLICY.capacity == 10 * FULL


def test_a_hundred_likes_in_one_minute_are_worth_no_more_than_the_capacity():
    budget, spent, points = full_budget(POLICY, T0), 0, 0
    for i in range(100):
        result = spend_endorsement(budget, T0 + i * 0.6, POLICY)
        budget, spent = result.budget, spent + result.units
        points += endorsement_points(POINTS.base_points("like"), result.units, A, B)
    assert spent <= POLICY.capacity + 60 * POLICY.endorsements_per_day
    assert points == 10


def test_each_endorsement_spends_one_full_endorsement_while_the_budget_lasts():
    result = spend_endorsement(full_budget(POLICY, T0), T0, POLICY)
    assert result.units == FULL and result.fraction == 1
    assert result.budget.mana == 9 * FULL


def test_an_empty_budget_spends_nothing_and_earns_nothing():
    result = spend_endorsement(empty(), T0, POLICY)
    assert result.units == 0 and result.fraction == 0 and result.budget.mana == 0
    assert endorsement_points(3, result.units, A, B) == 0


def test_a_full_idle_day_regenerates_exactly_to_capacity_and_no_more():
    assert regenerate(empty(), T0 + DAY_SECONDS, POLICY).mana == POLICY.capacity
    assert regenerate(empty(), T0 + 3 * DAY_SECONDS, POLICY).mana == POLICY.capacity


def test_regeneration_is_linear_half_a_day_gives_half_the_daily_amount():
    assert regenerate(empty(), T0 + DAY_SECONDS / 2, POLICY).mana == 5 * FULL
    assert regenerate(empty(), T0 + DAY_SECONDS / 10, POLICY).mana == FULL
    assert regenerate(empty(), T0 + 1, POLICY).mana == POLICY.endorsements_per_day


def test_a_partial_endorsement_earns_its_share_rounded_down():
    half = spend_endorsement(empty(), T0 + DAY_SECONDS / 20, POLICY)
    assert half.fraction == Fraction(1, 2)
    assert endorsement_points(POINTS.base_points("reply"), half.units, A, B) == 1
    assert endorsement_points(POINTS.base_points("like"), half.units, A, B) == 0


def test_an_event_older_than_the_budget_regains_nothing_and_keeps_the_later_time():
    budget = EndorsementBudget(FULL, int(T0))
    assert regenerate(budget, T0 - 3600, POLICY) == budget


def test_a_budget_above_a_lowered_capacity_is_brought_down_to_it():
    lowered = EndorsementPolicy(endorsements_per_day=2)
    assert regenerate(EndorsementBudget(10 * FULL, int(T0)), T0, lowered).mana == 2 * FULL


# Self-interaction and reciprocal pairs, by example.

def test_self_interaction_earns_nothing_whatever_was_spent():
    assert endorsement_points(POINTS.base_points("reply"), FULL, A, A) == 0
    assert endorsement_points(POINTS.base_points("reply"), FULL, A, B) == 3


def test_a_reciprocal_pair_is_capped_after_the_pair_allowance():
    assert reciprocal_weight(a_to_b=0, b_to_a=5, a_total=0, policy=POLICY) == 1
    assert reciprocal_weight(a_to_b=2, b_to_a=5, a_total=2, policy=POLICY) == 1
    assert reciprocal_weight(a_to_b=3, b_to_a=5, a_total=3, policy=POLICY) == 0
    assert reciprocal_weight(a_to_b=3, b_to_a=1, a_total=5, policy=POLICY) == 0


def test_a_fan_who_is_not_endorsed_back_is_not_capped():
    assert reciprocal_weight(a_to_b=9, b_to_a=0, a_total=9, policy=POLICY) == 1


def test_an_account_that_spreads_its_endorsements_is_not_capped():
    assert reciprocal_weight(a_to_b=4, b_to_a=5, a_total=10, policy=POLICY) == 1
    assert reciprocal_weight(a_to_b=5, b_to_a=5, a_total=10, policy=POLICY) == 0


def test_reciprocal_counts_must_be_consistent():
    with pytest.raises(ValueError):
        reciprocal_weight(a_to_b=3, b_to_a=0, a_total=2, policy=POLICY)
    with pytest.raises(ValueError):
        reciprocal_weight(a_to_b=0, b_to_a=-1, a_total=2, policy=POLICY)


def test_the_weight_scales_the_points():
    assert endorsement_points(3, FULL, A, B, weight=Fraction(0)) == 0


# Instance quota, by example.

def test_an_instance_gets_points_up_to_its_daily_quota():
    assert instance_grant(5, credited_today=0, member=True, policy=POLICY) == 5
    assert instance_grant(5, credited_today=997, member=True, policy=POLICY) == 3
    assert instance_grant(5, credited_today=1000, member=True, policy=POLICY) == 0


def test_a_non_member_instance_gets_no_points():
    assert instance_grant(5, credited_today=0, member=False, policy=POLICY) == 0


def test_the_quota_clips_credits_only():
    with pytest.raises(ValueError):
        instance_grant(-1, credited_today=0, member=True, policy=POLICY)


# Settlement, by example.

def test_points_are_pending_during_the_window_and_settled_after():
    week = POLICY.settlement_seconds
    assert settlement_state(T0, T0, week) == PENDING
    assert settlement_state(T0, T0 + week - 1, week) == PENDING
    assert settlement_state(T0, T0 + week, week) == SETTLED


def test_an_undo_inside_the_window_cancels():
    assert settlement_state(T0, T0 + 10, 60, undone_at=T0 + 5) == CANCELLED
    assert settlement_state(T0, T0 + 3600, 60, undone_at=T0 + 5) == CANCELLED
    assert settlement_state(T0, T0 + 4, 60, undone_at=T0 + 5) == PENDING


def test_an_undo_after_settlement_no_longer_cancels():
    assert settlement_state(T0, T0 + 120, 60, undone_at=T0 + 60) == SETTLED
    assert settlement_state(T0, T0 + 120, 60, undone_at=T0 + 90) == SETTLED


def test_a_zero_window_settles_at_once():
    assert settlement_state(T0, T0, 0) == SETTLED
    assert settlement_state(T0, T0, 0, undone_at=T0) == SETTLED


# The policy.

def test_the_policy_publishes_its_rules():
    published = POLICY.as_dict()
    assert published["endorsement_budget"]["full_endorsements_per_day"] == 10
    assert published["instance_daily_quota"] == 1000
    assert published["settlement_seconds"] == 7 * DAY_SECONDS
    assert published["self_interaction"] == 0 and published["non_member_interaction"] == 0
    assert published["reciprocal_pairs"] | {"rule": ""} == {"window_seconds": DAY_SECONDS, "share_percent": 50,
                                                            "pair_cap": 3, "rule": ""}


@pytest.mark.parametrize("bad", [
    {"endorsements_per_day": 0}, {"instance_daily_quota": -1}, {"settlement_seconds": -1},
    {"reciprocal_pair_cap": -1}, {"reciprocal_window_seconds": 0}, {"reciprocal_share_percent": 100},
])
def test_the_policy_refuses_impossible_parameters(bad):
    with pytest.raises(ValueError):
        EndorsementPolicy(**bad)


# Properties.

@EXAMPLES
@given(policies, st.data(), events)
def test_the_budget_is_never_negative_nor_above_capacity(policy, data, steps):
    budget = EndorsementBudget(data.draw(st.integers(0, policy.capacity)), int(T0))
    now = T0
    for step, endorse in steps:
        now += step
        if endorse:
            result = spend_endorsement(budget, now, policy)
            assert 0 <= result.units <= FULL and 0 <= result.fraction <= 1
            budget = result.budget
        else:
            budget = regenerate(budget, now, policy)
        assert 0 <= budget.mana <= policy.capacity


@EXAMPLES
@given(policies, st.data(), st.integers(0, 3 * DAY_SECONDS), st.integers(0, 3 * DAY_SECONDS))
def test_regeneration_is_linear_and_capped(policy, data, first, second):
    budget = EndorsementBudget(data.draw(st.integers(0, policy.capacity)), int(T0))
    direct = regenerate(budget, T0 + first + second, policy)
    assert direct.mana == min(policy.capacity, budget.mana + (first + second) * policy.endorsements_per_day)
    assert regenerate(regenerate(budget, T0 + first, policy), T0 + first + second, policy) == direct


@EXAMPLES
@given(policies, st.lists(st.tuples(st.floats(0, 2000, allow_nan=False),
                                    st.sampled_from(["like", "announce", "reply"])), max_size=150))
def test_an_account_earns_at_most_capacity_plus_a_day_of_regeneration_in_any_day(policy, likes):
    budget, now, points = full_budget(policy, T0), T0, 0
    for step, kind in likes:
        if now + step >= T0 + DAY_SECONDS:
            break
        now += step
        result = spend_endorsement(budget, now, policy)
        budget = result.budget
        points += endorsement_points(POINTS.base_points(kind), result.units, A, B)
    assert points <= 2 * policy.endorsements_per_day * MAX_BASE


@EXAMPLES
@given(st.integers(0, 100), st.integers(0, FULL), st.fractions(0, 1), st.text(max_size=20))
def test_self_interaction_is_always_worth_zero(base, units, weight, actor):
    assert endorsement_points(base, units, actor, actor, weight) == 0


@EXAMPLES
@given(policies, st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_the_reciprocal_cap_holds_for_any_counts(policy, a_to_b, b_to_a, extra):
    a_total = a_to_b + extra
    weight = reciprocal_weight(a_to_b, b_to_a, a_total, policy)
    assert weight in (0, 1)
    mostly_b = (a_to_b + 1) * 100 > policy.reciprocal_share_percent * (a_total + 1)
    assert (weight == 0) == (mostly_b and b_to_a > 0 and a_to_b >= policy.reciprocal_pair_cap)


@EXAMPLES
@given(policies, st.integers(1, 100), st.integers(0, 60))
def test_a_vote_circle_earns_at_most_the_pair_cap_per_window(policy, b_to_a, endorsements):
    weights = sum(reciprocal_weight(n, b_to_a, n, policy) for n in range(endorsements))
    assert weights <= policy.reciprocal_pair_cap


@EXAMPLES
@given(policies, st.lists(st.tuples(st.integers(0, 500), st.booleans()), max_size=60))
def test_the_instance_quota_is_never_exceeded(policy, requests):
    credited = 0
    for requested, member in requests:
        granted = instance_grant(requested, credited, member, policy)
        assert 0 <= granted <= requested
        assert member or granted == 0
        credited += granted
        assert credited <= policy.instance_daily_quota


@EXAMPLES
@given(st.integers(0, 14 * DAY_SECONDS), st.one_of(st.none(), st.floats(-100, 20 * DAY_SECONDS, allow_nan=False)),
       st.lists(st.floats(-100, 30 * DAY_SECONDS, allow_nan=False), min_size=2, max_size=20))
def test_settlement_only_moves_forward_in_time(window, undo_after, offsets):
    undone_at = None if undo_after is None else T0 + undo_after
    states = [settlement_state(T0, T0 + offset, window, undone_at) for offset in sorted(offsets)]
    for before, after in pairwise(states):
        assert after == before or after in SETTLEMENT_TRANSITIONS[before]
