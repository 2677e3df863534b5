"""Spend entries (``rewards/spend/v1``): tokens a buyer spent on an order, or got back when it was undone.

A spend is issued (signed first) by the buyer's home instance, the only one that holds the
buyer's balance, and countersigned by the maker's instance; both append the identical
doubly-signed bytes to their logs. When buyer and maker live on the same instance, that one
instance signs it alone. ``undo-spend`` returns the tokens of an order that was cancelled or
rejected: same order, same account, same tokens, at most once. The text is strict and
canonical like a receipt's, so both instances sign byte-identical text:

    rewards/spend/v1
    id b.example/s/0190f3c2a1b2c3d4e5f6a7b8
    kind spend
    account https://b.example/users/buyer
    order https://b.example/orders/8412
    listing https://a.example/listings/12
    seller https://a.example/users/potter
    quantity 2
    tokens 16
    time 1767225600

Tokens never move between people: the only way out of an account's balance is a spend on a
listing (or expiry), and the only way back is the undo of that spend.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.points import url_domain
from rewards.receipt import MAX_POINTS, MAX_TIME, ReceiptError, _check_id, _check_int, _check_url, _field, _parse_int

SPEND_HEADER = "rewards/spend/v1"
SPEND_FIELDS = ("id", "kind", "account", "order", "listing", "seller", "quantity", "tokens", "time")
SPEND_KINDS = ("spend", "undo-spend")
MAX_QUANTITY = 1000


class SpendError(ReceiptError):
    """The text or fields are not a valid rewards/spend/v1."""


@dataclass(frozen=True)
class Spend:
    """`account` spent (or, undone, got back) `tokens` on `quantity` of `listing` sold by `seller`, for `order`."""

    id: str
    kind: str
    account: str
    order: str
    listing: str
    seller: str
    quantity: int
    tokens: int
    time: int

    def __post_init__(self) -> None:
        validate_spend(self)

    @property
    def home(self) -> str:
        """The buyer's instance (host[:port]): the one that issues the spend."""
        return url_domain(self.account)

    @property
    def maker_home(self) -> str:
        """The maker's instance: the one that countersigns (the same as `home` for a local order)."""
        return url_domain(self.seller)

    @property
    def signed_tokens(self) -> int:
        """The tokens this entry takes from the buyer: positive for a spend, negative for its undo."""
        return self.tokens if self.kind == "spend" else -self.tokens


def validate_spend(s: Spend) -> None:
    """Raise SpendError unless every field is well formed."""
    try:
        _check_id(s.id)
        if s.kind not in SPEND_KINDS:
            raise SpendError(f"unknown spend kind {s.kind!r}; expected one of {', '.join(SPEND_KINDS)}")
        for name in ("account", "order", "listing", "seller"):
            _check_url(name, getattr(s, name))
        _check_int("quantity", s.quantity, 1, MAX_QUANTITY)
        _check_int("tokens", s.tokens, 1, MAX_POINTS)
        _check_int("time", s.time, 0, MAX_TIME)
    except SpendError:
        raise
    except ReceiptError as exc:
        raise SpendError(f"spend: {exc}") from None
    if not s.id.startswith(f"{url_domain(s.account)}/"):
        raise SpendError(f"spend id {s.id!r} must start with the buyer's instance {url_domain(s.account)}/")
    if url_domain(s.order) != url_domain(s.account):
        raise SpendError("the order (its Agreement id) must live on the buyer's instance")
    if url_domain(s.listing) != url_domain(s.seller):
        raise SpendError("the listing must live on the maker's instance")
    if s.account == s.seller:
        raise SpendError("an account cannot spend tokens on its own listing")


def build_spend(s: Spend) -> str:
    """The canonical spend text (note body, ending in a newline)."""
    validate_spend(s)
    values = (s.id, s.kind, s.account, s.order, s.listing, s.seller, str(s.quantity), str(s.tokens), str(s.time))
    return "\n".join([SPEND_HEADER, *(f"{k} {v}" for k, v in zip(SPEND_FIELDS, values))]) + "\n"


def is_spend_text(text: str) -> bool:
    """True when a note's text claims to be a spend (its first line)."""
    return text.startswith(SPEND_HEADER + "\n")


def parse_spend(text: str) -> Spend:
    """Parse canonical spend text; anything not byte-for-byte canonical is rejected."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if not lines or lines[0] != SPEND_HEADER:
        raise SpendError(f"a spend must start with {SPEND_HEADER!r} and end with a newline")
    if len(lines) != 1 + len(SPEND_FIELDS):
        raise SpendError(f"a spend has exactly {len(SPEND_FIELDS)} field lines")
    try:
        values = [_field(line, key) for line, key in zip(lines[1:], SPEND_FIELDS)]
        spend = Spend(*values[:6], *(_parse_int(name, v) for name, v in zip(SPEND_FIELDS[6:], values[6:])))
    except SpendError:
        raise
    except ReceiptError as exc:
        raise SpendError(f"spend: {exc}") from None
    if build_spend(spend) != text:
        raise SpendError("spend text is not in canonical form")
    return spend


def undo_of(spend: Spend, id: str, time: int) -> Spend:
    """The undo-spend that returns `spend`'s tokens (its own id and time)."""
    if spend.kind != "spend":
        raise SpendError("only a spend can be undone")
    return Spend(id, "undo-spend", spend.account, spend.order, spend.listing, spend.seller, spend.quantity,
                 spend.tokens, time)
