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

From policy v2 (``rewards/receipt/v2``) a receipt also names its ``policy`` version and the
object's ``author``: the author earns through like, announce and reply receipts (beneficiary
= author) and the sharer or replier earns a curation share through curate-share and
curate-reply receipts (beneficiary = actor, the curator). Every party that earns is named in
the text: the actor and the author, whichever of them is the beneficiary. The author's
instance countersigns both; when actor and author live on the same instance that instance
alone signs (no counterparty). v1 texts keep their v1 meaning.

    rewards/receipt/v2
    id b.example/r/01JABCD7Q3
    policy 2
    kind curate-share
    actor https://b.example/users/xavier
    object https://a.example/posts/42
    author https://a.example/users/yara
    beneficiary https://b.example/users/xavier
    points 1
    time 1767225600
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

RECEIPT_HEADER = "rewards/receipt/v1"
RECEIPT_HEADER_V2 = "rewards/receipt/v2"
# Endorsements: the author earns (and the actor spends endorsement budget).
ENDORSEMENTS = frozenset({"like", "announce", "reply"})
# Curation shares (policy v2): the sharer or replier earns; no budget of their own.
CURATIONS = frozenset({"curate-share", "curate-reply"})
CURATION_OF = {"announce": "curate-share", "reply": "curate-reply"}
KINDS = ENDORSEMENTS | CURATIONS  # every earning kind
REVERSALS = frozenset(f"undo-{kind}" for kind in KINDS)
ALL_KINDS = KINDS | REVERSALS
V1_KINDS = ENDORSEMENTS | frozenset(f"undo-{kind}" for kind in ENDORSEMENTS)
FIELDS = ("id", "kind", "actor", "object", "beneficiary", "points", "time")
FIELDS_V2 = ("id", "policy", "kind", "actor", "object", "author", "beneficiary", "points", "time")
MAX_POLICY = 1 << 31
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
    """One reward event; undo-* kinds reverse an earlier event with points <= 0.

    ``author`` and ``policy`` are those of a v2 receipt; a v1 receipt has no author (its
    beneficiary is the author) and policy 1.
    """

    id: str
    kind: str
    actor: str
    object: str
    beneficiary: str
    points: int
    time: int
    author: str | None = None
    policy: int = 1

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

    @property
    def counterparty(self) -> str:
        """The object's author: whose instance countersigns (the beneficiary of a v1 receipt)."""
        return self.author if self.author is not None else self.beneficiary

    @property
    def is_curation(self) -> bool:
        """True for curate-* kinds and their reversals: the actor, not the author, earns."""
        return self.kind.removeprefix("undo-") in CURATIONS

    @property
    def is_same_instance(self) -> bool:
        """True when actor and author live on one instance (host[:port]): it alone signs."""
        return _netloc(self.actor) == _netloc(self.counterparty)


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


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
    _check_version(r)


def _check_version(r: Receipt) -> None:
    """v1: no author, endorsement kinds only. v2+: an author, and the beneficiary is who earns."""
    _check_int("policy", r.policy, 1, MAX_POLICY)
    if r.policy == 1:
        if r.author is not None:
            raise ReceiptError("a policy 1 receipt names no author (its beneficiary is the author)")
        if r.kind not in V1_KINDS:
            raise ReceiptError(f"a {r.kind} receipt needs policy 2 or later")
        return
    if r.author is None:
        raise ReceiptError(f"a policy {r.policy} receipt names the object's author")
    _check_url("author", r.author)
    earner = r.actor if r.is_curation else r.author
    if r.beneficiary != earner:
        who = "the actor (the curator)" if r.is_curation else "the author"
        raise ReceiptError(f"the beneficiary of a {r.kind} receipt is {who}")


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
    if r.policy == 1:
        values = (r.id, r.kind, r.actor, r.object, r.beneficiary, str(r.points), str(r.time))
        lines = [RECEIPT_HEADER, *(f"{k} {v}" for k, v in zip(FIELDS, values))]
    else:
        values = (r.id, str(r.policy), r.kind, r.actor, r.object, r.author, r.beneficiary, str(r.points),
                  str(r.time))
        lines = [RECEIPT_HEADER_V2, *(f"{k} {v}" for k, v in zip(FIELDS_V2, values))]
    return "\n".join(lines) + "\n"


def parse_receipt(text: str) -> Receipt:
    """Parse canonical receipt text; anything not byte-for-byte canonical is rejected."""
    if not text.endswith("\n"):
        raise ReceiptError("receipt text must end with a newline")
    lines = text[:-1].split("\n")
    if lines[0] not in (RECEIPT_HEADER, RECEIPT_HEADER_V2):
        raise ReceiptError(f"receipt must start with {RECEIPT_HEADER!r} or {RECEIPT_HEADER_V2!r}, got {lines[0]!r}")
    fields = FIELDS if lines[0] == RECEIPT_HEADER else FIELDS_V2
    if len(lines) != 1 + len(fields):
        raise ReceiptError(f"receipt must have exactly {len(fields)} field lines")
    values = dict(zip(fields, (_field(line, key) for line, key in zip(lines[1:], fields))))
    receipt = Receipt(
        values["id"], values["kind"], values["actor"], values["object"], values["beneficiary"],
        _parse_int("points", values["points"]), _parse_int("time", values["time"]), values.get("author"),
        _parse_int("policy", values["policy"]) if "policy" in values else 1,
    )
    if lines[0] == RECEIPT_HEADER_V2 and receipt.policy < 2:
        raise ReceiptError(f"a {RECEIPT_HEADER_V2} receipt is of policy 2 or later")
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
