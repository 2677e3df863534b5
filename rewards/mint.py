"""Mint entries (``rewards/mint/v1``): settled points of an account converted into whole tokens.

A mint is a log entry of the account's home instance, signed by that instance's receipts
key alone (no counterparty: the points were already countersigned in the receipts). Its
text is strict and canonical like a receipt's; ``seq`` numbers an account's mints 1, 2, 3...
so a mint is never made twice for the same points (a unique key in the database, and a
gap or a repeat fails verification).

    rewards/mint/v1
    account https://a.example/users/yara
    seq 1
    points 100
    tokens 10
    time 1767225600
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.points import url_domain
from rewards.receipt import MAX_POINTS, MAX_TIME, ReceiptError, _check_int, _check_url, _field, _parse_int

MINT_HEADER = "rewards/mint/v1"
MINT_FIELDS = ("account", "seq", "points", "tokens", "time")


class MintError(ReceiptError):
    """The text or fields are not a valid rewards/mint/v1."""


@dataclass(frozen=True)
class Mint:
    """`points` settled points of `account` became `tokens` tokens (its `seq`-th mint) at `time`."""

    account: str
    seq: int
    points: int
    tokens: int
    time: int

    def __post_init__(self) -> None:
        validate_mint(self)

    @property
    def home(self) -> str:
        """The account's instance (host[:port]): the only one that may sign its mints."""
        return url_domain(self.account)


def validate_mint(m: Mint) -> None:
    """Raise MintError unless every field is well formed (whole, positive tokens for positive points)."""
    try:
        _check_url("account", m.account)
        _check_int("seq", m.seq, 1, MAX_POINTS)
        _check_int("points", m.points, 1, MAX_POINTS)
        _check_int("tokens", m.tokens, 1, MAX_POINTS)
        _check_int("time", m.time, 0, MAX_TIME)
    except MintError:
        raise
    except ReceiptError as exc:
        raise MintError(f"mint: {exc}") from None


def build_mint(m: Mint) -> str:
    """The canonical mint text (note body, ending in a newline)."""
    validate_mint(m)
    values = (m.account, str(m.seq), str(m.points), str(m.tokens), str(m.time))
    return "\n".join([MINT_HEADER, *(f"{k} {v}" for k, v in zip(MINT_FIELDS, values))]) + "\n"


def is_mint_text(text: str) -> bool:
    """True when a note's text claims to be a mint (its first line)."""
    return text.startswith(MINT_HEADER + "\n")


def parse_mint(text: str) -> Mint:
    """Parse canonical mint text; anything not byte-for-byte canonical is rejected."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if not lines or lines[0] != MINT_HEADER:
        raise MintError(f"a mint must start with {MINT_HEADER!r} and end with a newline")
    if len(lines) != 1 + len(MINT_FIELDS):
        raise MintError(f"a mint has exactly {len(MINT_FIELDS)} field lines")
    try:
        values = [_field(line, key) for line, key in zip(lines[1:], MINT_FIELDS)]
        mint = Mint(values[0], *(_parse_int(name, v) for name, v in zip(MINT_FIELDS[1:], values[1:])))
    except MintError:
        raise
    except ReceiptError as exc:
        raise MintError(f"mint: {exc}") from None
    if build_mint(mint) != text:
        raise MintError("mint text is not in canonical form")
    return mint
