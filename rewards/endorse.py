"""Anti-abuse rules for endorsements (issue #11): a regenerating budget, self and circle limits,
per-instance quotas and a settlement window.

Pure code: times are Unix seconds passed in, never read from the clock. The budget is kept
in whole integers so that any instance can recompute every account's points, and so the
ranking, byte-identically: one full endorsement is ``UNITS_PER_ENDORSEMENT`` (86 400) units,
which makes an account's regeneration exactly ``endorsements_per_day`` units per whole second,
with no rounding anywhere.

The rules, in the order an issuer applies them to one endorsement (like, share, reply):

1. self-interaction earns nothing and spends no budget;
2. the endorsement spends up to one full endorsement from the actor's budget
   (``spend_endorsement``); a burst of likes past the budget spends fractions, so a hundred
   likes are worth no more than ten;
3. the reciprocal-pair weight (``reciprocal_weight``) is 0 once two accounts that mostly
   endorse each other have used the pair's allowance;
4. ``endorsement_points`` = base points (rewards.points) × share of a full endorsement spent ×
   weight, rounded down;
5. the beneficiary's instance grants at most ``instance_daily_quota`` points a day from each
   member instance and none from others (``instance_grant``);
6. the points stay ``pending`` for ``settlement_seconds``; an undo inside that window cancels
   them (``settlement_state``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from rewards.points import DAY_SECONDS, PointsPolicy, curation_share, is_self_interaction, same_instance_points

# One full endorsement, in budget units: a day's worth of seconds, so regeneration is integral.
UNITS_PER_ENDORSEMENT = DAY_SECONDS

PENDING = "pending"
SETTLED = "settled"
CANCELLED = "cancelled"
# The settlement lifecycle: pending ends once, settled or cancelled; neither ever changes again.
SETTLEMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SETTLED, CANCELLED}),
    SETTLED: frozenset(),
    CANCELLED: frozenset(),
}


@dataclass(frozen=True)
class EndorsementPolicy:
    """The anti-abuse parameters, published with the points policy.

    ``endorsements_per_day``: full endorsements an account holds at most, and regains per 24 h
    (Hive's HF19 figure of about ten full votes a day; here the budget refills in one day).
    ``instance_daily_quota``: points a day an instance accepts from any one member instance.
    ``settlement_seconds``: how long points stay pending and an undo can cancel them (Hive's
    7-day payout window).
    ``reciprocal_window_seconds``, ``reciprocal_share_percent``, ``reciprocal_pair_cap``: see
    ``reciprocal_weight``.
    """

    endorsements_per_day: int = 10
    instance_daily_quota: int = 1000
    settlement_seconds: int = 7 * DAY_SECONDS
    reciprocal_window_seconds: int = DAY_SECONDS
    reciprocal_share_percent: int = 50
    reciprocal_pair_cap: int = 3

    def __post_init__(self) -> None:
        if self.endorsements_per_day < 1:
            raise ValueError("endorsements_per_day must be at least 1")
        if self.instance_daily_quota < 0 or self.settlement_seconds < 0 or self.reciprocal_pair_cap < 0:
            raise ValueError("quotas, caps and windows cannot be negative")
        if self.reciprocal_window_seconds < 1:
            raise ValueError("reciprocal_window_seconds must be at least 1")
        if not 0 <= self.reciprocal_share_percent < 100:
            # "more than 100%" never happens: such a policy would silently turn the circle cap off
            raise ValueError("reciprocal_share_percent is a percentage, 0 to 99")

    @property
    def capacity(self) -> int:
        """The most budget an account can hold, in units: a day's worth of full endorsements."""
        return self.endorsements_per_day * UNITS_PER_ENDORSEMENT

    def as_dict(self) -> dict:
        """The rules as published at /rewards/policy, next to PointsPolicy.as_dict()."""
        return {
            "endorsement_budget": {
                "full_endorsements_per_day": self.endorsements_per_day,
                "units_per_full_endorsement": UNITS_PER_ENDORSEMENT,
                "capacity_units": self.capacity,
                "regeneration": f"linear: {self.endorsements_per_day} units per whole second "
                                f"({self.endorsements_per_day} full endorsements per {DAY_SECONDS} s), "
                                "capped at capacity; a new account starts full",
                "spend": "each endorsement spends min(1 full endorsement, the budget available)",
            },
            "endorsement_points": "floor(base points x units spent x weight / units_per_full_endorsement)",
            "self_interaction": 0,
            "reciprocal_pairs": {
                "window_seconds": self.reciprocal_window_seconds,
                "share_percent": self.reciprocal_share_percent,
                "pair_cap": self.reciprocal_pair_cap,
                "rule": "weight 0 when, counting the next one, more than share_percent of A's endorsements in "
                        "the window go to B, B endorsed A in the window, and A already endorsed B pair_cap "
                        "times in the window; otherwise weight 1",
            },
            "non_member_interaction": 0,
            "instance_daily_quota": self.instance_daily_quota,
            "settlement_seconds": self.settlement_seconds,
            "undo": "an undo before settlement cancels the points; after settlement it no longer does",
        }


@dataclass(frozen=True)
class EndorsementBudget:
    """An account's endorsement budget ("voting mana"): units held at `updated_at` (whole Unix seconds)."""

    mana: int
    updated_at: int


@dataclass(frozen=True)
class Spent:
    """What one endorsement took: the budget left and the units spent (at most one full endorsement)."""

    budget: EndorsementBudget
    units: int

    @property
    def fraction(self) -> Fraction:
        """The share of a full endorsement spent, 0 to 1, exact."""
        return Fraction(self.units, UNITS_PER_ENDORSEMENT)


def _second(now: float) -> int:
    """Whole Unix seconds: the budget's clock, the same resolution as receipt times."""
    return math.floor(now)


def full_budget(policy: EndorsementPolicy, now: float) -> EndorsementBudget:
    """A new account's budget: full, so its first endorsements count."""
    return EndorsementBudget(policy.capacity, _second(now))


def regenerate(budget: EndorsementBudget, now: float, policy: EndorsementPolicy) -> EndorsementBudget:
    """The budget at `now`: plus `endorsements_per_day` units a second since it was updated, clamped to capacity.

    Time never runs backwards for a budget: an event older than the last update regains
    nothing and keeps the later time, so no second is ever counted twice. A budget held
    above capacity (the policy lowered) is brought down to it.
    """
    second = max(budget.updated_at, _second(now))
    gained = (second - budget.updated_at) * policy.endorsements_per_day
    return EndorsementBudget(max(0, min(policy.capacity, budget.mana + gained)), second)


def spend_endorsement(budget: EndorsementBudget, now: float, policy: EndorsementPolicy) -> Spent:
    """Regenerate, then spend one full endorsement or whatever is left, if less."""
    current = regenerate(budget, now, policy)
    units = min(UNITS_PER_ENDORSEMENT, current.mana)
    return Spent(EndorsementBudget(current.mana - units, current.updated_at), units)


def endorsement_points(base: int, units: int, actor: str, beneficiary: str, weight: Fraction = Fraction(1)) -> int:
    """Points for one endorsement: base × share of a full endorsement spent × weight, rounded down; 0 for self.

    Rounding down keeps the sum of an account's points within what its budget allows.
    """
    if is_self_interaction(actor, beneficiary) or base <= 0:
        return 0
    return math.floor(base * Fraction(units, UNITS_PER_ENDORSEMENT) * weight)


def issued_points(policy: PointsPolicy, kind: str, units: int, actor: str, author: str, weight: Fraction,
                  same_instance: bool) -> tuple[int, int]:
    """Policy v2: (the author's points, the curator's points) for one like, announce or reply.

    The author's points are `endorsement_points`, then the same-instance weight; the curator
    (the sharer or replier) earns `curation_share` of them (none for a like).
    """
    points = endorsement_points(policy.base_points(kind), units, actor, author, weight)
    if same_instance:
        points = same_instance_points(points, policy.same_instance_percent)
    curator = curation_share(points, policy.curation_percent) if kind in ("announce", "reply") else 0
    return points, curator


def reciprocal_weight(a_to_b: int, b_to_a: int, a_total: int, policy: EndorsementPolicy) -> Fraction:
    """The weight (0 or 1) of A's next endorsement of B, from counts over the reciprocal window.

    A and B form a reciprocal pair when, counting the next endorsement, more than
    ``reciprocal_share_percent`` of A's endorsements in the window go to B and B endorsed A
    at least once in the window. Within a pair, the first ``reciprocal_pair_cap``
    endorsements of B in the window count fully and the rest count nothing, so a vote
    circle earns at most that many full endorsements per window whatever its activity.
    """
    if min(a_to_b, b_to_a, a_total) < 0 or a_to_b > a_total:
        raise ValueError("counts are non-negative and A's endorsements of B are among A's total")
    mostly_b = (a_to_b + 1) * 100 > policy.reciprocal_share_percent * (a_total + 1)
    if mostly_b and b_to_a > 0 and a_to_b >= policy.reciprocal_pair_cap:
        return Fraction(0)
    return Fraction(1)


def instance_grant(requested: int, credited_today: int, member: bool, policy: EndorsementPolicy) -> int:
    """Points granted from one instance today: none from non-members, never past the daily quota.

    Only credits are clipped here; a reversal reverses exactly what its receipt was granted.
    """
    if requested < 0 or credited_today < 0:
        raise ValueError("requested and credited points are credits, never negative")
    if not member:
        return 0
    return max(0, min(requested, policy.instance_daily_quota - credited_today))


def settlement_state(issued_at: float, now: float, settlement_seconds: float, undone_at: float | None = None) -> str:
    """`pending`, `settled` or `cancelled`: the state at `now` of points issued at `issued_at`.

    The window is [issued_at, issued_at + settlement_seconds). An undo inside it cancels the
    points from the moment of the undo; once the window has passed the points are settled
    and a later undo no longer cancels them: they stay settled.
    The state only moves forward in time: pending, then settled or cancelled for good.
    """
    settles_at = issued_at + settlement_seconds
    if undone_at is not None and undone_at < settles_at and undone_at <= now:
        return CANCELLED
    return SETTLED if now >= settles_at else PENDING
