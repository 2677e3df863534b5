"""Reward receipt bodies (``rewards/receipt/v1``): the signed-note text of a log leaf.

A receipt says "actor did <kind> to object by beneficiary, who earns points".
The text is strict and canonical: fixed header, fixed key order, one space per
line, so the issuer and the counterparty sign byte-identical text.

    rewards/receipt/v1
    id b.example/r/01JABCD7Q2
    kind like
    actor https://b.example/users/xavier
    object https://a.example/posts/42
    beneficiary https://a.example/users/yara
    points 1
    time 1767225600
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

RECEIPT_HEADER = "rewards/receipt/v1"
KINDS = frozenset({"like", "announce", "reply"})
REVERSALS = frozenset(f"undo-{kind}" for kind in KINDS)
ALL_KINDS = KINDS | REVERSALS
FIELDS = ("id", "kind", "actor", "object", "beneficiary", "points", "time")
MAX_ID_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_POINTS = (1 << 63) - 1
MAX_TIME = (1 << 63) - 1
_ID = re.compile(r"[A-Za-z0-9._~:/@!$&'()*,;=%-]+")
_URL_CHARS = re.compile(r"[\x21-\x7e]+")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")


class ReceiptError(ValueError):
    """The receipt text or fields are not a valid rewards/receipt/v1."""


@dataclass(frozen=True)
class Receipt:
    """One reward event; undo-* kinds reverse an earlier event with points <= 0."""

    id: str
    kind: str
    actor: str
    object: str
    beneficiary: str
    points: int
    time: int

    def __post_init__(self) -> None:
        validate_receipt(self)

    @property
    def is_reversal(self) -> bool:
        """True for undo-* kinds."""
        return self.kind in REVERSALS

    @property
    def actor_host(self) -> str:
        """Host of the actor URL: the instance that must issue (sign first) the receipt."""
        return urlsplit(self.actor).hostname or ""


def validate_receipt(r: Receipt) -> None:
    """Raise ReceiptError unless every field is well formed."""
    _check_id(r.id)
    if r.kind not in ALL_KINDS:
        raise ReceiptError(f"unknown receipt kind {r.kind!r}; expected one of {sorted(ALL_KINDS)}")
    for name in ("actor", "object", "beneficiary"):
        _check_url(name, getattr(r, name))
    _check_int("points", r.points, -MAX_POINTS, MAX_POINTS)
    _check_int("time", r.time, 0, MAX_TIME)
    if r.kind in KINDS and r.points < 0:
        raise ReceiptError(f"a {r.kind} receipt cannot carry negative points")
    if r.kind in REVERSALS and r.points > 0:
        raise ReceiptError(f"an {r.kind} receipt cannot carry positive points")


def _check_id(value: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value) or len(value) > MAX_ID_LENGTH:
        raise ReceiptError(f"receipt id {value!r} must be 1-{MAX_ID_LENGTH} URL-safe characters")


def _check_url(name: str, value: str) -> None:
    if not isinstance(value, str) or not _URL_CHARS.fullmatch(value):
        raise ReceiptError(f"{name} must be a URL without spaces or control characters")
    if len(value) > MAX_URL_LENGTH:
        raise ReceiptError(f"{name} is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ReceiptError(f"{name} {value!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ReceiptError(f"{name} {value!r} must be an absolute http(s) URL")


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReceiptError(f"{name} must be an integer")
    if not low <= value <= high:
        raise ReceiptError(f"{name} {value} is out of range")


def build_receipt(r: Receipt) -> str:
    """Return the canonical receipt text (note body, ending in a newline)."""
    validate_receipt(r)
    values = (r.id, r.kind, r.actor, r.object, r.beneficiary, str(r.points), str(r.time))
    lines = [RECEIPT_HEADER, *(f"{k} {v}" for k, v in zip(FIELDS, values))]
    return "\n".join(lines) + "\n"


def parse_receipt(text: str) -> Receipt:
    """Parse canonical receipt text; anything not byte-for-byte canonical is rejected."""
    if not text.endswith("\n"):
        raise ReceiptError("receipt text must end with a newline")
    lines = text[:-1].split("\n")
    if lines[0] != RECEIPT_HEADER:
        raise ReceiptError(f"receipt must start with {RECEIPT_HEADER!r}, got {lines[0]!r}")
    if len(lines) != 1 + len(FIELDS):
        raise ReceiptError(f"receipt must have exactly {len(FIELDS)} field lines")
    values = [_field(line, key) for line, key in zip(lines[1:], FIELDS)]
    receipt = Receipt(
        values[0], values[1], values[2], values[3], values[4],
        _parse_int("points", values[5]), _parse_int("time", values[6]),
    )
    if build_receipt(receipt) != text:
        raise ReceiptError("receipt text is not in canonical form")
    return receipt


def _field(line: str, key: str) -> str:
    name, sep, value = line.partition(" ")
    if name != key or not sep:
        raise ReceiptError(f"expected field {key!r}, got line {line!r}")
    return value


def _parse_int(name: str, value: str) -> int:
    if not _INT.fullmatch(value) or value == "-0" or len(value) > 20:
        raise ReceiptError(f"{name} {value!r} is not a canonical decimal integer")
    return int(value)
