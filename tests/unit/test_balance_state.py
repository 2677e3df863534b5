"""The incremental balance (rewards/balance_state.py) equals the pure fold at every time it answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.balance import TokenPolicy, fold_balance
from rewards.balance_state import FoldState
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
