"""Spend entries (rewards/spend/v1): canonical text, and the log rules a verifier applies to them (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.balance import (
    ExpireRefused, SpendRefused, TokenPolicy, check_expiries, check_spends, expiry_due, fold_balance, next_expire,
)
from rewards.expire import Expire, build_expire, parse_expire
from rewards.mint import Mint
from rewards.note import Ed25519Signer, sign_note
from rewards.settlement import SettlementError, month_bounds, settle
from rewards.spend import Spend, SpendError, build_spend, parse_spend, undo_of
from rewards.verify import VerifyFailure, check_spend_entry

BUYER = "https://b.example/users/buyer"
MAKER = "https://a.example/users/potter"
LISTING = "https://a.example/listings/12"


def spend(n: int = 1, tokens: int = 4, *, account: str = BUYER, seller: str = MAKER, kind: str = "spend",
          time: int = 1_767_225_600) -> Spend:
    return Spend(f"b.example/s/{n:04d}", kind, account, f"https://b.example/orders/{n}", LISTING, seller, 1, tokens,
                 time)


def mint(tokens: int, seq: int = 1, account: str = BUYER) -> Mint:
    return Mint(account, seq, tokens * 10, tokens, 1_767_000_000)


def test_a_spend_round_trips_through_its_canonical_text():
    s = spend()
    text = build_spend(s)
    assert text.startswith("rewards/spend/v1\nid b.example/s/0001\nkind spend\n") and text.endswith("\ntime 1767225600\n")
    assert parse_spend(text) == s
    assert parse_spend(build_spend(undo_of(s, "b.example/s/0002", 1_767_300_000))).kind == "undo-spend"


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("tokens 4", "tokens 0"), "tokens 0 is out of range"),
    (lambda t: t.replace("tokens 4", "tokens -4"), "out of range"),
    (lambda t: t.replace("tokens 4", "tokens 04"), "not a canonical decimal"),
    (lambda t: t.replace("kind spend", "kind transfer"), "unknown spend kind"),
    (lambda t: t.replace("id b.example/", "id c.example/"), "must start with the buyer's instance"),
    (lambda t: t.replace("order https://b.example", "order https://c.example"), "order .* buyer's instance"),
    (lambda t: t.replace("seller https://a.example/users/potter", "seller https://b.example/users/buyer"),
     "listing must live on the maker's instance"),
    (lambda t: t + "\n", "exactly 9 field lines"),
    (lambda t: t.replace("quantity 1", "quantity 1001"), "out of range"),
])
def test_malformed_spends_are_refused(change, message):
    with pytest.raises(SpendError, match=message):
        parse_spend(change(build_spend(spend())))


def test_tokens_never_go_to_another_account_a_spend_on_ones_own_listing_is_refused():
    with pytest.raises(SpendError, match="its own listing"):
        Spend("a.example/s/1", "spend", MAKER, "https://a.example/orders/1", LISTING, MAKER, 1, 4, 0)


def test_the_log_rules_covered_spends_once_and_undos_of_real_spends():
    entries = [mint(10), spend(1, 4), spend(2, 4), undo_of(spend(1, 4), "b.example/s/0009", 1_767_300_000)]
    assert check_spends(entries, "b.example") == 3
    balance = fold_balance(entries, BUYER, 1_767_400_000, TokenPolicy())
    assert (balance.tokens_minted, balance.tokens_spent, balance.tokens) == (10, 4, 6)
    maker = fold_balance(entries, MAKER, 1_767_400_000, TokenPolicy())
    assert maker.tokens_redeemed == 4 and maker.tokens == 0
    with pytest.raises(SpendRefused, match="who held 2"):
        check_spends([mint(10), spend(1, 4), spend(2, 4), spend(3, 4)], "b.example")
    with pytest.raises(SpendRefused, match="a second time"):
        check_spends([mint(10), spend(1, 4), Spend("b.example/s/0005", "spend", BUYER, "https://b.example/orders/1",
                                                    LISTING, MAKER, 1, 4, 0)], "b.example")
    with pytest.raises(SpendRefused, match="returns no spend"):
        check_spends([mint(10), undo_of(spend(1, 4), "b.example/s/0009", 0)], "b.example")
    undo = undo_of(spend(1, 4), "b.example/s/0009", 0)
    with pytest.raises(SpendRefused, match="returns no spend"):
        check_spends([mint(10), spend(1, 4), undo, undo], "b.example")
    with pytest.raises(SpendRefused, match="neither the buyer's nor the maker's"):
        check_spends([spend(1, 4)], "c.example")
    # The maker's log holds its side only: the buyer's mints are elsewhere, so it checks no coverage.
    assert check_spends([spend(1, 4)], "a.example") == 1


@given(st.integers(0, 40), st.lists(st.tuples(st.booleans(), st.integers(1, 15)), max_size=30))
def test_whatever_a_buyer_attempts_a_checked_log_never_spends_more_than_was_minted(minted, attempts):
    entries: list = [mint(minted)] if minted else []
    held, n = minted, 0
    for undo, tokens in attempts:
        n += 1
        if undo:
            open_spends = [e for e in entries if isinstance(e, Spend) and e.kind == "spend"
                           and not any(u.kind == "undo-spend" and u.order == e.order for u in entries
                                       if isinstance(u, Spend))]
            if open_spends:
                entries.append(undo_of(open_spends[0], f"b.example/s/u{n}", 0))
                held += open_spends[0].tokens
        elif tokens <= held:
            entries.append(spend(n, tokens))
            held -= tokens
        else:
            with pytest.raises(SpendRefused):
                check_spends([*entries, spend(n, tokens)], "b.example")
    check_spends(entries, "b.example")
    balance = fold_balance(entries, BUYER, 1_767_400_000, TokenPolicy())
    assert balance.tokens == held >= 0


def test_settlement_counts_each_spend_once_per_pair_and_month():
    november, december = 1_793_491_200, 1_796_083_200  # 2026-11-01, 2026-12-01 (UTC)
    other = "https://c.example/users/weaver"
    entries = [spend(1, 4, time=november + 10), spend(2, 6, time=november + 20),
               Spend("b.example/s/0003", "spend", BUYER, "https://b.example/orders/3", "https://c.example/listings/1",
                     other, 1, 5, november + 30),
               undo_of(spend(2, 6), "b.example/s/0009", november + 40), spend(4, 7, time=december + 5)]
    twice = entries + entries[:2]  # the buyer's log and the maker's log hold the same entries
    assert [p.as_dict() for p in settle(twice, "2026-11")] == [
        {"buyer_instance": "b.example", "maker_instance": "a.example", "tokens_redeemed": 4, "spends": 2, "undone": 1},
        {"buyer_instance": "b.example", "maker_instance": "c.example", "tokens_redeemed": 5, "spends": 1, "undone": 0}]
    assert [p.tokens_redeemed for p in settle(twice, "2026-12")] == [7]
    assert settle(twice, "2025-01") == []
    with pytest.raises(SettlementError, match="YYYY-MM"):
        settle(entries, "2026-1")
    assert month_bounds("2026-12") == (december, 1_798_761_600)


def test_unused_tokens_expire_oldest_first_after_the_period():
    policy = TokenPolicy(token_expiry_days=10)
    day = 86400
    old, new = Mint(BUYER, 1, 60, 6, 0), Mint(BUYER, 2, 40, 4, 20 * day)
    entries = [old, new, spend(1, 4, time=5 * day)]
    assert expiry_due(entries, BUYER, 9 * day, policy) == 0  # nothing is ten days old yet
    assert expiry_due(entries, BUYER, 10 * day, policy) == 2  # the spend used 4 of the first mint's 6
    first = next_expire(entries, BUYER, 10 * day, policy)
    assert first == Expire(BUYER, 1, 2, 10 * day)
    entries.append(first)
    assert expiry_due(entries, BUYER, 29 * day, policy) == 0 and check_expiries(entries, policy, "b.example") == 1
    assert expiry_due(entries, BUYER, 30 * day, policy) == 4
    assert next_expire(entries, BUYER, 30 * day, policy, limit=3).tokens == 3  # a spend on its way holds one
    balance = fold_balance(entries, BUYER, 30 * day, policy)
    assert (balance.tokens_minted, balance.tokens_spent, balance.tokens_expired, balance.tokens) == (10, 4, 2, 4)
    with pytest.raises(ExpireRefused, match="takes 3 tokens; 2 were due"):
        check_expiries([old, new, spend(1, 4, time=5 * day), Expire(BUYER, 1, 3, 10 * day)], policy, "b.example")
    with pytest.raises(ExpireRefused, match="repeats or skips"):
        check_expiries([old, Expire(BUYER, 2, 1, 10 * day)], policy, "b.example")
    with pytest.raises(ExpireRefused, match="not an account of a.example"):
        check_expiries([old, Expire(BUYER, 1, 1, 10 * day)], policy, "a.example")
    # An expiry leaves nothing to spend: a spend of expired tokens is refused by the log rules.
    with pytest.raises(SpendRefused, match="who held 0"):
        check_spends([old, Expire(BUYER, 1, 6, 10 * day), spend(2, 1, time=11 * day)], "b.example")
    assert parse_expire(build_expire(first)) == first


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 9)), max_size=25), st.integers(1, 5))
def test_expiry_never_takes_more_than_is_left_and_is_monotone(events, days):
    policy = TokenPolicy(token_expiry_days=days)
    entries: list = []
    held = mints = expiries = n = 0
    clock = 0
    for kind, amount in events:
        clock += 86400
        n += 1
        if kind == 0:
            mints += 1
            entries.append(Mint(BUYER, mints, amount * 10, amount, clock))
            held += amount
        elif kind == 1 and amount <= held:
            entries.append(spend(n, amount, time=clock))
            held -= amount
        else:
            found = next_expire(entries, BUYER, clock, policy)
            if found is not None:
                assert found.tokens <= held
                expiries += 1
                entries.append(found)
                held -= found.tokens
                assert expiry_due(entries, BUYER, clock, policy) == 0
    assert check_expiries(entries, policy, "b.example") == expiries
    assert fold_balance(entries, BUYER, clock, policy).tokens == held >= 0


def test_a_spend_in_a_log_needs_the_buyers_instance_first_and_the_makers_countersignature():
    buyers = Ed25519Signer.generate("b.example/rewards/receipts")
    makers = Ed25519Signer.generate("a.example/rewards/receipts")
    keys = {"b.example": buyers.verifier(), "a.example": makers.verifier()}
    text = build_spend(spend())
    assert check_spend_entry(sign_note(text, [buyers, makers]), keys) == spend()
    with pytest.raises(VerifyFailure, match="needs exactly the signatures"):
        check_spend_entry(sign_note(text, [buyers]), keys)  # never countersigned by the maker's instance
    with pytest.raises(VerifyFailure, match="must be issued .signed first. by b.example"):
        check_spend_entry(sign_note(text, [makers, buyers]), keys)
    other = Ed25519Signer.generate("c.example/rewards/receipts")
    with pytest.raises(VerifyFailure, match="must be issued .signed first. by b.example"):  # another instance
        check_spend_entry(sign_note(text, [other, makers]), {**keys, "c.example": other.verifier()})
