"""The order state machine, every (state, event, party) combination, totals, and what a message orders."""

from __future__ import annotations

import itertools

import pytest

from storefront.rules import (
    EVENTS, MOVES, PARTIES, STATES, MoveRefused, next_state, order_quantity, order_total, shipping_fee,
)

# The allowed moves, written out once more by hand: the table must say exactly this.
ALLOWED = {
    ("requested", "accept", "seller"): "accepted",
    ("requested", "reject", "seller"): "rejected",
    ("requested", "cancel", "buyer"): "cancelled",
    ("requested", "cancel", "seller"): "cancelled",
    ("accepted", "pay", "seller"): "paid",
    ("accepted", "cancel", "buyer"): "cancelled",
    ("accepted", "cancel", "seller"): "cancelled",
    ("paid", "ship", "seller"): "shipped",
    ("paid", "cancel", "seller"): "cancelled",
    ("shipped", "deliver", "seller"): "delivered",
    ("delivered", "complete", "buyer"): "completed",
}


@pytest.mark.parametrize("state, event, party", list(itertools.product(STATES, EVENTS, PARTIES)))
def test_every_combination_is_allowed_or_refused_naming_the_state(state, event, party):
    expected = ALLOWED.get((state, event, party))
    if expected is not None:
        assert next_state(state, event, party) == expected
    else:
        with pytest.raises(MoveRefused) as refused:
            next_state(state, event, party)
        assert f"the order is {state}" in str(refused.value)


def test_the_table_has_no_move_beyond_the_allowed_ones():
    derived = {(s, e, p): target for (s, e), (target, parties) in MOVES.items() for p in parties}
    assert derived == ALLOWED
    assert len(list(itertools.product(STATES, EVENTS, PARTIES))) == 112


def test_final_states_allow_nothing():
    for state in ("rejected", "completed", "cancelled"):
        assert not [e for e in EVENTS if (state, e) in MOVES]


def test_unknown_names_are_refused():
    for args in (("lost", "accept", "seller"), ("requested", "steal", "seller"), ("requested", "accept", "thief")):
        with pytest.raises(MoveRefused, match="unknown"):
            next_state(*args)


def test_shipping_is_flat_free_above_a_total_or_included():
    assert shipping_fee(30_000, 3_000, None) == 3_000
    assert shipping_fee(50_000, 3_000, 50_000) == 0 and shipping_fee(49_999, 3_000, 50_000) == 3_000
    assert shipping_fee(10_000, 0, None) == 0
    assert order_total(38_000, 2, 3_000, 50_000) == (0, 76_000)
    assert order_total(38_000, 1, 3_000, 50_000) == (3_000, 41_000)


@pytest.mark.parametrize("text, quantity", [
    ("주문 2개", 2), ("주문합니다", 1), ("2개 주문할게요", 2), ("order 3", 3), ("Order x4 please", 4),
    ("@pottery 주문: 5", 5), ("I'd like to ORDER one", 1), ("주문 0개", 0),
    ("예뻐요!", None), ("what a nice border", None), ("recorder", None),
])
def test_what_a_direct_message_orders(text, quantity):
    assert order_quantity(text) == quantity


@pytest.mark.parametrize("text", [
    "주문취소", "주문 취소해 주세요", "주문 취소할게요", "cancel my order", "order cancelled",
])
def test_a_direct_message_that_cancels_an_order_orders_nothing(text):
    assert order_quantity(text) is None


@pytest.mark.parametrize("text, meant", [
    ("주문 -1개", None), ("order two", 2), ("주문 두 개요", 2), ("주문 세개", 3), ("주문 ²개", 2),
    ("주문 2.5개", None), ("주문 1,000개", 1000),
])
def test_a_quantity_the_parser_cannot_read_exactly_never_becomes_an_order_of_another_quantity(text, meant):
    got = order_quantity(text)
    # Acceptable: the quantity meant, or a refusal (None, or a number the caller refuses: outside 1 to 1000).
    assert got == meant or got is None or not 1 <= got <= 1000, f"{text!r} orders {got}"
