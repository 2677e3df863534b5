"""Expiry entries (``rewards/expire/v1``): tokens an account left unused past the published period.

Tokens expire ``token_expiry_days`` after the mint that made them, oldest first: spends use the
oldest tokens first, so what expires at a time is what is left of the mints older than the period,
after every spend and every earlier expiry (rewards.balance.expiry_due). Like a mint, an expiry is
an entry of the account's home log signed by that instance alone, numbered ``seq`` 1, 2, 3... per
account, so it is made once and anyone can check it against the log:

    rewards/expire/v1
    account https://a.example/users/yara
    seq 1
    tokens 3
    time 1861833600
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.points import url_domain
from rewards.receipt import MAX_POINTS, MAX_TIME, ReceiptError, _check_int, _check_url, _field, _parse_int

EXPIRE_HEADER = "rewards/expire/v1"
EXPIRE_FIELDS = ("account", "seq", "tokens", "time")


class ExpireError(ReceiptError):
    """The text or fields are not a valid rewards/expire/v1."""


@dataclass(frozen=True)
class Expire:
    """`tokens` unused tokens of `account` expired (its `seq`-th expiry) at `time`."""

    account: str
    seq: int
    tokens: int
    time: int

    def __post_init__(self) -> None:
        try:
            _check_url("account", self.account)
            _check_int("seq", self.seq, 1, MAX_POINTS)
            _check_int("tokens", self.tokens, 1, MAX_POINTS)
            _check_int("time", self.time, 0, MAX_TIME)
        except ExpireError:
            raise
        except ReceiptError as exc:
            raise ExpireError(f"expire: {exc}") from None

    @property
    def home(self) -> str:
        """The account's instance: the only one that may sign its expiries."""
        return url_domain(self.account)


def build_expire(e: Expire) -> str:
    """The canonical expiry text (note body, ending in a newline)."""
    values = (e.account, str(e.seq), str(e.tokens), str(e.time))
    return "\n".join([EXPIRE_HEADER, *(f"{k} {v}" for k, v in zip(EXPIRE_FIELDS, values))]) + "\n"


def is_expire_text(text: str) -> bool:
    """True when a note's text claims to be an expiry (its first line)."""
    return text.startswith(EXPIRE_HEADER + "\n")


def parse_expire(text: str) -> Expire:
    """Parse canonical expiry text; anything not byte-for-byte canonical is rejected."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if not lines or lines[0] != EXPIRE_HEADER:
        raise ExpireError(f"an expiry must start with {EXPIRE_HEADER!r} and end with a newline")
    if len(lines) != 1 + len(EXPIRE_FIELDS):
        raise ExpireError(f"an expiry has exactly {len(EXPIRE_FIELDS)} field lines")
    try:
        values = [_field(line, key) for line, key in zip(lines[1:], EXPIRE_FIELDS)]
        found = Expire(values[0], *(_parse_int(name, v) for name, v in zip(EXPIRE_FIELDS[1:], values[1:])))
    except ExpireError:
        raise
    except ReceiptError as exc:
        raise ExpireError(f"expire: {exc}") from None
    if build_expire(found) != text:
        raise ExpireError("expiry text is not in canonical form")
    return found
