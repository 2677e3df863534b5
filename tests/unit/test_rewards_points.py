"""The first points policy: per-kind points, zero for self-interaction, the daily cap, reversals."""

from __future__ import annotations

import dataclasses

import pytest

from rewards.points import PointsError, PointsPolicy, check_points, points_for, receipt_day, url_domain
from rewards.receipt import Receipt

POLICY = PointsPolicy(version=1, like=1, announce=2, reply=3, daily_cap=5)
X = "https://b.example/users/x"
Y = "https://a.example/users/y"


def receipt(kind: str = "like", points: int = 1, actor: str = X, beneficiary: str = Y) -> Receipt:
    return Receipt("b.example/r/1", kind, actor, "https://a.example/p/1", beneficiary, points, 1767225600)


def test_points_follow_the_kind_and_the_daily_cap():
    assert points_for(POLICY, "like", X, Y, used_today=0) == 1
    assert points_for(POLICY, "reply", X, Y, used_today=0) == 3
    assert points_for(POLICY, "reply", X, Y, used_today=3) == 2
    assert points_for(POLICY, "announce", X, Y, used_today=5) == 0
    assert points_for(POLICY, "undo-announce", X, Y, used_today=5) == -2


def test_self_interaction_earns_nothing():
    assert points_for(POLICY, "reply", Y, Y, used_today=0) == 0
    with pytest.raises(PointsError, match="self-interaction"):
        check_points(POLICY, receipt(actor=Y, beneficiary=Y))
    check_points(POLICY, receipt(actor=Y, beneficiary=Y, points=0))


@pytest.mark.parametrize(("kind", "points", "ok"), [
    ("like", 0, True), ("like", 1, True), ("like", 2, False), ("announce", 2, True), ("reply", 4, False),
    ("undo-reply", -3, True), ("undo-reply", -4, False), ("undo-like", 0, True),
])
def test_receiving_side_accepts_points_within_the_policy(kind, points, ok):
    if ok:
        check_points(POLICY, receipt(kind, points))
    else:
        with pytest.raises(PointsError):
            check_points(POLICY, receipt(kind, points))


def test_unknown_kinds_and_zero_policies():
    with pytest.raises(PointsError):
        POLICY.base_points("follow")
    stingy = dataclasses.replace(POLICY, like=0)
    with pytest.raises(PointsError):
        check_points(stingy, receipt("like", 1))


def test_domains_are_compared_with_their_port_and_days_are_utc():
    assert url_domain("http://127.0.0.1:8001/users/a") == "127.0.0.1:8001"
    assert url_domain("https://A.Example/users/a") == "a.example"
    assert url_domain("http://[::1") == ""
    assert receipt_day(receipt()) == 1767225600 // 86400


def test_published_policy_names_every_rule():
    published = POLICY.as_dict()
    assert published["points"] == {"like": 1, "announce": 2, "reply": 3}
    assert published["self_interaction"] == 0 and published["non_member_interaction"] == 0
    assert published["daily_cap_per_actor"] == 5 and published["version"] == 1
