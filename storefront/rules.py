"""The rules of an order, pure: which party may make which move from which state, what it costs,
and what a direct message that orders says. No I/O.

One table of allowed moves (`MOVES`): requested → accepted | rejected | cancelled;
accepted → paid | cancelled; paid → shipped | cancelled; shipped → delivered;
delivered → completed. The listing's author (the seller) accepts, rejects, marks paid,
shipped and delivered; the buyer completes; both may cancel before payment, only the
seller after it (the seller refunds).
"""

from __future__ import annotations

import re

STATES = ("requested", "accepted", "rejected", "paid", "shipped", "delivered", "completed", "cancelled")
EVENTS = ("accept", "reject", "pay", "ship", "deliver", "complete", "cancel")
PARTIES = ("buyer", "seller")
FINAL_STATES = frozenset({"rejected", "completed", "cancelled"})

# (state, event) -> (next state, parties who may make that move)
MOVES: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("requested", "accept"): ("accepted", frozenset({"seller"})),
    ("requested", "reject"): ("rejected", frozenset({"seller"})),
    ("requested", "cancel"): ("cancelled", frozenset({"buyer", "seller"})),
    ("accepted", "pay"): ("paid", frozenset({"seller"})),
    ("accepted", "cancel"): ("cancelled", frozenset({"buyer", "seller"})),
    ("paid", "ship"): ("shipped", frozenset({"seller"})),
    ("paid", "cancel"): ("cancelled", frozenset({"seller"})),
    ("shipped", "deliver"): ("delivered", frozenset({"seller"})),
    ("delivered", "complete"): ("completed", frozenset({"buyer"})),
}
# The event that leads to a state (what an Update(Agreement) announcing that state means).
EVENT_TO = {target: event for (_, event), (target, _) in MOVES.items()}
# States that hold reserved stock: leaving them for `cancelled` gives it back.
HOLDS_STOCK = frozenset({"accepted", "paid"})

MAX_QUANTITY = 1000


class MoveRefused(Exception):
    """A move the table does not allow; the message names the state and the move."""


def next_state(state: str, event: str, party: str) -> str:
    """The state after `party` makes `event` in `state`; MoveRefused when that is not allowed."""
    if state not in STATES or event not in EVENTS or party not in PARTIES:
        raise MoveRefused(f"unknown state, move or party: {state}, {event}, {party}")
    move = MOVES.get((state, event))
    if move is None:
        raise MoveRefused(f"the order is {state}: it cannot be {done_word(event)}")
    target, parties = move
    if party not in parties:
        raise MoveRefused(f"the order is {state}: only the {' or '.join(sorted(parties))} may {event} it")
    return target


def moves_for(state: str, party: str) -> list[str]:
    """The moves `party` may make on an order in `state`, in the table's order (the buttons a page shows)."""
    return [event for (from_state, event), (_, parties) in MOVES.items() if from_state == state and party in parties]


def done_word(event: str) -> str:
    """The move as a past participle: `accepted`, `marked paid`, ..."""
    return {"accept": "accepted", "reject": "rejected", "pay": "marked paid", "ship": "marked shipped",
            "deliver": "marked delivered", "complete": "completed", "cancel": "cancelled"}[event]


def shipping_fee(subtotal: int, shipping: int, free_over: int | None) -> int:
    """배송비: the flat fee, or nothing when the order reaches the free-shipping total."""
    return 0 if free_over is not None and subtotal >= free_over else shipping


def order_total(unit_price: int, quantity: int, shipping: int, free_over: int | None) -> tuple[int, int]:
    """(shipping fee, total with shipping) of `quantity` at `unit_price`."""
    subtotal = unit_price * quantity
    fee = shipping_fee(subtotal, shipping, free_over)
    return fee, subtotal + fee


_ORDER_WORD = re.compile(r"(?:주문|\border\b)", re.IGNORECASE)
# A message that speaks of cancelling, refunding or not ordering orders nothing ("주문취소", "cancel my order").
_NOT_AN_ORDER = re.compile(r"취소|환불|반품|안\s*(?:할|해|함|살)|\bcancel|\brefund|\bdon'?t\b|\bdo not\b", re.IGNORECASE)
# A number as people type one: any decimal digits (full-width too), and what would change its meaning (a sign,
# a decimal point, superscripts), so that "주문 -1개" or "주문 2.5개" is refused, not read as 1 or 2.
_TOKEN = r"[-+]?[\d¹²³⁰⁴-⁹][\d¹²³⁰⁴-⁹.,]*"
_QUANTITY_AFTER = re.compile(rf"(?:주문|\border\b)\s*(?:[:x×]\s*)?({_TOKEN})", re.IGNORECASE)
_QUANTITY_UNIT = re.compile(rf"({_TOKEN})\s*(?:개|ea\b|pcs?\b)", re.IGNORECASE)
_KOREAN_COUNT = {"한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "네": 4, "넷": 4, "다섯": 5, "여섯": 6,
                 "일곱": 7, "여덟": 8, "아홉": 9, "열": 10}
_ENGLISH_COUNT = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                  "nine": 9, "ten": 10}
_KOREAN_WORD = re.compile(rf"(?<![가-힣])({'|'.join(sorted(_KOREAN_COUNT, key=len, reverse=True))})\s*개")
_ENGLISH_WORD = re.compile(rf"\border\s+({'|'.join(_ENGLISH_COUNT)})\b", re.IGNORECASE)
UNREADABLE = 0  # a quantity written so that it cannot be read exactly: the caller refuses it (1 to MAX_QUANTITY)


def _read_number(token: str) -> int:
    """A typed number: plain digits (any script's decimal digits, thousands as 1,000), else UNREADABLE."""
    token = token.rstrip(".,")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        token = token.replace(",", "")
    if not token.isdecimal() or len(token) > 6:  # isdecimal(): no sign, point, comma or superscript
        return UNREADABLE
    return int(token)


def order_quantity(text: str) -> int | None:
    """How many a direct message orders ("주문 2개", "order 3", "2개 주문", "주문 두 개", "주문": 1); None if it
    orders nothing (no order word, or it cancels).

    A quantity outside 1 to 1000, or one that cannot be read exactly (UNREADABLE: "주문 -1개", "주문 2.5개"),
    is still returned, so the caller can refuse it with a reason rather than order another quantity.
    """
    if not _ORDER_WORD.search(text) or _NOT_AN_ORDER.search(text):
        return None
    match = _QUANTITY_AFTER.search(text) or _QUANTITY_UNIT.search(text)
    if match:
        return _read_number(match.group(1))
    if word := _KOREAN_WORD.search(text):
        return _KOREAN_COUNT[word.group(1)]
    if word := _ENGLISH_WORD.search(text):
        return _ENGLISH_COUNT[word.group(1).lower()]
    return 1
