"""The points policy: points per kind, zero for self-interaction, a daily cap; from v2 curation
shares and same-instance points.

Pure code. The issuing instance decides the points of a receipt with ``points_for`` (v1) or
rewards.endorse and ``curation_share`` / ``same_instance_points`` (v2); the receiving
instance accepts them only if ``check_points`` passes. Versioned so the economy can grow
without changing what old receipts meant: a receipt is checked under the policy version it
names (a v1 receipt with v1 rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from rewards.receipt import ENDORSEMENTS, Receipt

DAY_SECONDS = 86400
LATEST_VERSION = 2
# The endorsement a curation share is a share of.
_CURATED = {"curate-share": "announce", "curate-reply": "reply"}


class PointsError(ValueError):
    """A receipt's points do not follow the policy."""


@dataclass(frozen=True)
class PointsPolicy:
    """Points per interaction kind and the per-actor daily cap; from v2 the curation and same-instance shares."""

    version: int
    like: int
    announce: int
    reply: int
    daily_cap: int
    curation_percent: int = 50
    same_instance_percent: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.version <= LATEST_VERSION:
            raise ValueError(f"points policy version {self.version} is unknown (1 to {LATEST_VERSION})")
        if not (0 <= self.curation_percent <= 100 and 0 <= self.same_instance_percent <= 100):
            raise ValueError("curation_percent and same_instance_percent are percentages, 0 to 100")

    def base_points(self, kind: str) -> int:
        """Points for a kind of endorsement (undo-* kinds reverse the base kind; curate-* the curated one)."""
        base = kind.removeprefix("undo-")
        base = _CURATED.get(base, base)
        if base not in ENDORSEMENTS:
            raise PointsError(f"unknown interaction kind {kind!r}")
        return {"like": self.like, "announce": self.announce, "reply": self.reply}[base]

    def as_dict(self) -> dict:
        """The policy as published at /rewards/policy (the version in force and what each version means)."""
        return {
            "version": self.version,
            "points": {"like": self.like, "announce": self.announce, "reply": self.reply},
            "self_interaction": 0,
            "non_member_interaction": 0,
            "daily_cap_per_actor": self.daily_cap,
            "reversal": "undo-<kind> receipts carry minus the points of the receipt they reverse",
            **({"curation_percent": self.curation_percent, "same_instance_percent": self.same_instance_percent}
               if self.version >= 2 else {}),
            "versions": {"1": VERSION_1, "2": self.version_2()},
        }

    def version_2(self) -> dict:
        """What a policy 2 receipt (rewards/receipt/v2) means."""
        return {
            "receipt": "rewards/receipt/v2: names policy, actor, object, author and beneficiary",
            "earners": "like, announce and reply: the author (beneficiary = author); curate-share (with an "
                       "announce) and curate-reply (with a reply): the sharer or replier (beneficiary = actor)",
            "author_points": "endorsement_points: base points x share of a full endorsement spent from the "
                             "actor's budget x reciprocal-pair weight, rounded down (see endorsement)",
            "curation_points": f"floor(author points x {self.curation_percent} / 100)",
            "same_instance": f"actor and author on one instance: that instance alone signs the receipt and appends "
                             f"it to its own log (witnessed by the peers); its points are weighted "
                             f"{self.same_instance_percent}%: floor(points x {self.same_instance_percent} / 100), "
                             "applied to the author's points before the curation share",
            "bound": "a countersigning instance accepts 0 <= points <= max_points (base x weights, no budget)",
            "self_interaction": "actor = author: no receipt, no points, no budget spent",
        }


VERSION_1 = {
    "receipt": "rewards/receipt/v1: the beneficiary is the author of the object",
    "earners": "the author, for like, announce and reply from another member instance",
    "author_points": "base points, clipped by the actor's daily cap",
}


def curation_share(author_points: int, percent: int) -> int:
    """The curator's points for an endorsement that earned the author `author_points`: never negative, never more."""
    if author_points <= 0 or percent <= 0:
        return 0
    return author_points * min(percent, 100) // 100


def same_instance_points(points: int, percent: int) -> int:
    """Points of an interaction between two accounts of one instance: `percent` of them, rounded down."""
    if points <= 0 or percent <= 0:
        return 0
    return points * min(percent, 100) // 100


def max_points(policy: PointsPolicy, receipt: Receipt) -> int:
    """The most points (in absolute value) `policy` allows a receipt of its kind, parties and version."""
    if is_self_interaction(receipt.actor, receipt.counterparty):
        return 0
    base = policy.base_points(receipt.kind)
    if receipt.policy < 2:
        return base
    if receipt.is_same_instance:
        base = same_instance_points(base, policy.same_instance_percent)
    return curation_share(base, policy.curation_percent) if receipt.is_curation else base


def url_domain(url: str) -> str:
    """The host[:port] of a URL, lower-cased: what instance domains are compared with."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def is_self_interaction(actor: str, beneficiary: str) -> bool:
    """True when the actor interacts with their own post."""
    return actor == beneficiary


def points_for(policy: PointsPolicy, kind: str, actor: str, beneficiary: str, used_today: int) -> int:
    """Points an issuer grants: base points, 0 for self-interaction, clipped by the daily cap."""
    if is_self_interaction(actor, beneficiary):
        return 0
    base = policy.base_points(kind)
    if kind.startswith("undo-"):
        return -base
    return max(0, min(base, policy.daily_cap - used_today))


def check_points(policy: PointsPolicy, receipt: Receipt) -> None:
    """Raise PointsError unless the receipt's points are allowed for its kind, parties and policy version."""
    if receipt.policy > LATEST_VERSION or receipt.policy > policy.version:
        raise PointsError(f"policy {receipt.policy} is unknown here (this instance publishes policy {policy.version})")
    if is_self_interaction(receipt.actor, receipt.counterparty) and receipt.points != 0:
        raise PointsError("self-interaction earns nothing: points must be 0")
    base = max_points(policy, receipt)
    if receipt.is_reversal and not -base <= receipt.points <= 0:
        raise PointsError(f"an {receipt.kind} receipt carries between -{base} and 0 points")
    if not receipt.is_reversal and not 0 <= receipt.points <= base:
        raise PointsError(f"a {receipt.kind} receipt carries between 0 and {base} points (policy v{policy.version})")


def receipt_day(receipt: Receipt) -> int:
    """The UTC day number (days since 1970-01-01) a receipt counts against."""
    return receipt.time // DAY_SECONDS
