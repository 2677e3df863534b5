"""The incremental balance (rewards/balance_state.py) equals the pure fold at every time it answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.balance import TokenPolicy, fold_balance
from rewards.balance_state import FoldState, policy_key
from rewards.endorse import EndorsementPolicy
from rewards.expire import Expire
from rewards.mint import Mint
from rewards.receipt import ALL_KINDS, Receipt, ReceiptError
from rewards.spend import Spend

ME = "https://a.example/users/me"
PEOPLE = [ME, "https://b.example/users/x", "https://b.example/users/y"]
POSTS = ["https://a.example/posts/1", "https://a.example/posts/2"]
POLICY = TokenPolicy(points_per_token=2, mint_threshold=1, settlement_seconds=10)

def _receipt(n: int, kind: str, actor: str, obj: str, beneficiary: str, points: int, time: int,
             policy: int) -> Receipt | None:
    try:
        return Receipt(f"b.example/r/{n}", kind, actor, obj, beneficiary, -points if kind.startswith("undo-")
                       else points, time, author=None if policy == 1 else ME, policy=policy)
    except ReceiptError:
        return None  # a combination the receipt format refuses: not an entry any log can hold


receipts = st.builds(
    _receipt, st.integers(0, 10**6), st.sampled_from(sorted(ALL_KINDS)), st.sampled_from(PEOPLE),
    st.sampled_from(POSTS), st.sampled_from([ME, PEOPLE[1]]), st.integers(0, 3), st.integers(0, 60),
    st.sampled_from([1, 2])).filter(lambda r: r is not None)
others = st.one_of(
    st.builds(lambda seq, tokens, time: Mint(ME, seq, 2 * tokens, tokens, time), st.integers(1, 9),
              st.integers(1, 5), st.integers(0, 60)),
    st.builds(lambda n, tokens, mine, kind: Spend(
        f"{'a' if mine else 'b'}.example/s/{n}", kind, ME if mine else PEOPLE[1],
        f"https://{'a' if mine else 'b'}.example/orders/{n}", f"https://{'b' if mine else 'a'}.example/listings/1",
        PEOPLE[1] if mine else ME, 1, tokens, 5), st.integers(0, 99), st.integers(1, 5), st.booleans(),
        st.sampled_from(["spend", "undo-spend"])),
    st.builds(lambda seq, tokens, time: Expire(ME, seq, tokens, time), st.integers(1, 9), st.integers(1, 5),
              st.integers(0, 60)),
)
steps = st.lists(st.tuples(st.lists(st.one_of(receipts, receipts, receipts, others), max_size=6),
                           st.integers(0, 8)), min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_the_running_fold_answers_what_the_pure_fold_answers(plan):
    state = FoldState.start(ME, POLICY)
    seen: list = []
    as_of = 0
    for batch, step in plan:
        state.absorb(batch)
        seen += batch
        as_of += step
        assert state.balance(as_of) == fold_balance(seen, ME, as_of, POLICY)


def test_an_earlier_time_than_one_answered_is_left_to_the_pure_fold():
    state = FoldState.start(ME, POLICY)
    state.absorb([Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)])
    assert state.balance(20).points == 1
    assert state.balance(19) is None
    assert state.balance(20) == fold_balance([Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)],
                                             ME, 20, POLICY)


def test_an_undo_at_the_very_end_of_the_window_no_longer_cancels():
    like = Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)
    undo = Receipt("b.example/r/2", "undo-like", PEOPLE[1], POSTS[0], ME, -1, 15)  # 5 + 10: the window has ended
    early = Receipt("b.example/r/3", "undo-like", PEOPLE[1], POSTS[0], ME, -1, 14)
    for entries, settled in (([like, undo], 1), ([like, early], 0)):
        state = FoldState.start(ME, POLICY)
        state.absorb(entries[:1])
        assert state.balance(12).pending == 1  # still in its window
        state.absorb(entries[1:])
        assert state.balance(20).points == settled == fold_balance(entries, ME, 20, POLICY).points


likes = st.builds(  # few (actor, object, kind) keys, old enough to settle: undos of packed receipts
    _receipt, st.integers(0, 10**6), st.sampled_from(["like", "undo-like", "announce", "undo-announce"]),
    st.sampled_from(PEOPLE[1:]), st.sampled_from(POSTS), st.just(ME), st.integers(1, 3), st.integers(0, 40),
    st.just(2)).filter(lambda r: r is not None)
saved_steps = st.lists(st.tuples(st.lists(st.one_of(receipts, likes, likes, others), max_size=6),
                                 st.integers(0, 12)), min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(saved_steps, st.lists(st.booleans(), min_size=14, max_size=14))
def test_a_saved_and_restored_fold_answers_what_the_unsaved_one_answers(plan, saves):
    kept, saved = FoldState.start(ME, POLICY), FoldState.start(ME, POLICY)
    seen: list = []
    as_of = 0
    for (batch, step), save in zip(plan, saves, strict=False):
        if save:  # saved and restored, again and again: packed receipts carried over, or unpacked by an undo
            saved = FoldState.from_bytes(saved.to_bytes(), POLICY)
        kept.absorb(batch)
        saved.absorb(batch)
        seen += batch
        as_of += step
        assert saved.balance(as_of) == kept.balance(as_of) == fold_balance(seen, ME, as_of, POLICY)
        assert (saved.entries, saved.receipts) == (kept.entries, kept.receipts)


def test_a_restored_fold_keeps_its_frontier_and_its_policies():
    like = Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)
    state = FoldState.start(ME, POLICY)
    state.absorb([like])
    assert state.balance(20).points == 1
    restored = FoldState.from_bytes(state.to_bytes(), POLICY)
    assert restored.balance(19) is None  # earlier than answered before it was saved: the caller folds from scratch
    assert restored.balance(20) == fold_balance([like], ME, 20, POLICY)
    other = TokenPolicy(points_per_token=2, mint_threshold=1, settlement_seconds=11)
    assert policy_key(POLICY, EndorsementPolicy(settlement_seconds=10)) != policy_key(
        other, EndorsementPolicy(settlement_seconds=10))
    with pytest.raises(ValueError, match="other policies"):
        FoldState.from_bytes(state.to_bytes(), other)
    with pytest.raises(ValueError):
        FoldState.from_bytes(b"not a state", POLICY)


def test_an_undo_of_a_packed_receipt_unpacks_it_first():
    like = Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)
    again = Receipt("b.example/r/2", "like", PEOPLE[1], POSTS[0], ME, 1, 50)
    undo = Receipt("b.example/r/3", "undo-like", PEOPLE[1], POSTS[0], ME, -1, 12)  # late, inside the first's window
    state = FoldState.start(ME, POLICY)
    state.absorb([like])
    assert state.balance(30).points == 1
    restored = FoldState.from_bytes(state.to_bytes(), POLICY)
    assert restored._cold is not None and restored._earned == [None]  # packed
    for entries in ([again, undo], [undo]):
        fresh = FoldState.from_bytes(state.to_bytes(), POLICY)
        fresh.absorb(entries)
        assert fresh.balance(30) == fold_balance([like, *entries], ME, 30, POLICY)


def test_an_undo_of_a_key_packed_twice_reverses_the_newest():
    first = Receipt("b.example/r/1", "like", PEOPLE[1], POSTS[0], ME, 1, 5)
    second = Receipt("b.example/r/2", "like", PEOPLE[1], POSTS[0], ME, 1, 25)
    undo = Receipt("b.example/r/3", "undo-like", PEOPLE[1], POSTS[0], ME, -1, 30)  # inside the second's window only
    state = FoldState.start(ME, POLICY)
    state.absorb([first, second])
    assert state.balance(40).points == 2
    for saves in range(1, 3):
        restored = state
        for _ in range(saves):
            restored = FoldState.from_bytes(restored.to_bytes(), POLICY)
        restored.absorb([undo])
        assert restored.balance(40) == fold_balance([first, second, undo], ME, 40, POLICY)
        assert restored.balance(40).points == 1
