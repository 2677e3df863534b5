"""The points policy, first version: points per kind, zero for self-interaction, a daily cap.

Pure code. The issuing instance decides the points of a receipt with ``points_for``;
the receiving instance accepts them only if ``check_points`` passes. Versioned so
the economy can grow (regenerating budgets, settlement windows) without changing
what old receipts meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from rewards.receipt import KINDS, Receipt

DAY_SECONDS = 86400


class PointsError(ValueError):
    """A receipt's points do not follow the policy."""


@dataclass(frozen=True)
class PointsPolicy:
    """Points per interaction kind and the per-actor daily cap."""

    version: int
    like: int
    announce: int
    reply: int
    daily_cap: int

    def base_points(self, kind: str) -> int:
        """Points for a kind of interaction (undo-* kinds reverse the base kind)."""
        base = kind.removeprefix("undo-")
        if base not in KINDS:
            raise PointsError(f"unknown interaction kind {kind!r}")
        return {"like": self.like, "announce": self.announce, "reply": self.reply}[base]

    def as_dict(self) -> dict:
        """The policy as published at /rewards/policy."""
        return {
            "version": self.version,
            "points": {"like": self.like, "announce": self.announce, "reply": self.reply},
            "self_interaction": 0,
            "non_member_interaction": 0,
            "daily_cap_per_actor": self.daily_cap,
            "reversal": "undo-<kind> receipts carry minus the points of the receipt they reverse",
        }


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
    """Raise PointsError unless the receipt's points are allowed for its kind and parties."""
    base = policy.base_points(receipt.kind)
    if is_self_interaction(receipt.actor, receipt.beneficiary) and receipt.points != 0:
        raise PointsError("self-interaction earns nothing: points must be 0")
    if receipt.is_reversal and not -base <= receipt.points <= 0:
        raise PointsError(f"an {receipt.kind} receipt carries between -{base} and 0 points")
    if not receipt.is_reversal and not 0 <= receipt.points <= base:
        raise PointsError(f"a {receipt.kind} receipt carries between 0 and {base} points (policy v{policy.version})")


def receipt_day(receipt: Receipt) -> int:
    """The UTC day number (days since 1970-01-01) a receipt counts against."""
    return receipt.time // DAY_SECONDS
