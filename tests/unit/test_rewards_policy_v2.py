"""Policy v2 points: curation share, same-instance weight, the countersigner's bound, a burst of likes."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.endorse import (
    UNITS_PER_ENDORSEMENT,
    EndorsementPolicy,
    full_budget,
    issued_points,
    spend_endorsement,
)
from rewards.note import Ed25519Signer, add_signatures, sign_note
from rewards.points import PointsError, PointsPolicy, check_points, curation_share, max_points, same_instance_points
from rewards.receipt import Receipt, build_receipt
from rewards.verify import VerifyFailure, check_receipt_entry

EXAMPLES = settings(max_examples=200, deadline=None)
A = "https://b.example/users/a"  # the actor (a sharer or replier)
B = "https://a.example/users/b"  # the author
B2 = "https://b.example/users/b2"  # an author on the actor's instance
POST = "https://a.example/posts/1"
T0 = 1767225600
ENDORSING = ("like", "announce", "reply")

points = st.integers(-10**12, 10**12)
percents = st.integers(0, 100)
policies = st.builds(PointsPolicy, version=st.just(2), like=st.integers(0, 1000), announce=st.integers(0, 1000),
                     reply=st.integers(0, 1000), daily_cap=st.integers(0, 10**6), curation_percent=percents,
                     same_instance_percent=percents)


@EXAMPLES
@given(points, percents)
def test_curation_share_is_bounded_and_never_negative(author_points, percent):
    share = curation_share(author_points, percent)
    assert 0 <= share <= max(author_points, 0)
    assert share == max(author_points, 0) * percent // 100


@EXAMPLES
@given(points, percents)
def test_same_instance_points_are_bounded_and_never_negative(p, percent):
    weighted = same_instance_points(p, percent)
    assert 0 <= weighted <= max(p, 0)
    assert same_instance_points(p, 100) == max(p, 0) and same_instance_points(p, 0) == 0


@EXAMPLES
@given(policies, st.sampled_from(ENDORSING), st.integers(0, UNITS_PER_ENDORSEMENT),
       st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1)]), st.booleans())
def test_issued_points_are_within_what_the_countersigner_accepts(policy, kind, units, weight, same):
    author = B2 if same else B
    earned, curator = issued_points(policy, kind, units, A, author, weight, same)
    assert 0 <= curator <= earned <= policy.base_points(kind)
    assert kind != "like" or curator == 0
    receipt = Receipt("b.example/r/1", kind, A, POST, author, earned, T0, author, 2)
    check_points(policy, receipt)  # never refused
    assert earned <= max_points(policy, receipt)
    if curator:
        curation = Receipt("b.example/r/2", f"curate-{'share' if kind == 'announce' else 'reply'}", A, POST, A,
                           curator, T0, author, 2)
        check_points(policy, curation)


@EXAMPLES
@given(policies, st.sampled_from(ENDORSING), st.integers(0, UNITS_PER_ENDORSEMENT), st.booleans())
def test_self_interaction_earns_zero(policy, kind, units, same):
    assert issued_points(policy, kind, units, A, A, Fraction(1), same) == (0, 0)
    receipt = Receipt("b.example/r/1", kind, A, POST, A, 0, T0, A, 2)
    assert max_points(policy, receipt) == 0
    with pytest.raises(PointsError, match="self-interaction"):
        check_points(policy, Receipt("b.example/r/1", kind, A, POST, A, 1, T0, A, 2))


def test_countersigner_refuses_points_above_base_times_weight():
    policy = PointsPolicy(2, like=4, announce=2, reply=3, daily_cap=100, curation_percent=50,
                          same_instance_percent=25)
    check_points(policy, Receipt("b.example/r/1", "like", A, POST, B, 4, T0, B, 2))
    with pytest.raises(PointsError, match="between 0 and 4"):
        check_points(policy, Receipt("b.example/r/1", "like", A, POST, B, 5, T0, B, 2))
    with pytest.raises(PointsError, match="between 0 and 1"):
        check_points(policy, Receipt("b.example/r/1", "curate-reply", A, POST, A, 2, T0, B, 2))
    assert max_points(policy, Receipt("b.example/r/1", "like", A, POST, B2, 1, T0, B2, 2)) == 1  # 25% of 4
    with pytest.raises(PointsError, match="policy 2 is unknown"):
        check_points(PointsPolicy(1, 1, 2, 3, 100), Receipt("b.example/r/1", "like", A, POST, B, 1, T0, B, 2))


def test_v1_receipts_keep_their_v1_meaning():
    policy = PointsPolicy(2, like=1, announce=2, reply=3, daily_cap=100)
    v1 = Receipt("b.example/r/1", "announce", A, POST, B, 2, T0)
    check_points(policy, v1)
    assert max_points(policy, v1) == 2


@EXAMPLES
@given(st.integers(1, 20), st.integers(1, 500), st.integers(0, 5))
def test_a_burst_of_likes_is_worth_no_more_than_the_budget(per_day, likes, spacing):
    rules = EndorsementPolicy(endorsements_per_day=per_day)
    policy = PointsPolicy(2, like=3, announce=2, reply=3, daily_cap=10**9)
    budget, total = full_budget(rules, T0), 0
    for n in range(likes):
        spent = spend_endorsement(budget, T0 + n * spacing, rules)
        budget = spent.budget
        total += issued_points(policy, "like", spent.units, A, B, Fraction(1), False)[0]
    elapsed = (likes - 1) * spacing
    regained = Fraction(elapsed * per_day, UNITS_PER_ENDORSEMENT)  # full endorsements regained meanwhile
    assert total <= 3 * (per_day + regained)


def test_a_same_instance_receipt_verifies_with_its_instance_signature_alone():
    b_key, a_key = Ed25519Signer.generate("b.example/rewards/receipts"), Ed25519Signer.generate(
        "a.example/rewards/receipts")
    keys = {"b.example": b_key.verifier(), "a.example": a_key.verifier()}
    local = Receipt("b.example/r/1", "like", A, "https://b.example/posts/1", B2, 2, T0, B2, 2)
    assert check_receipt_entry(sign_note(build_receipt(local), [b_key]), keys) == local
    twice = add_signatures(sign_note(build_receipt(local), [b_key]), [a_key])
    with pytest.raises(VerifyFailure, match="signed by that instance alone"):
        check_receipt_entry(twice, keys)
    v1 = Receipt("b.example/r/2", "like", A, "https://b.example/posts/1", B2, 1, T0)
    with pytest.raises(VerifyFailure, match="policy 2 or later"):
        check_receipt_entry(sign_note(build_receipt(v1), [b_key]), keys)
    across = Receipt("b.example/r/3", "curate-reply", A, POST, A, 1, T0, B, 2)
    with pytest.raises(VerifyFailure, match="missing signature by a.example"):
        check_receipt_entry(sign_note(build_receipt(across), [b_key]), keys)
