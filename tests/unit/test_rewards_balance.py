"""The balance fold, settlement and minting (rewards/balance.py, rewards/mint.py), and mint entry checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.balance import (
    MintRefused,
    TokenPolicy,
    check_mint,
    check_mints,
    fold_balance,
    next_mint,
    parse_entry,
    settlement_states,
)
from rewards.endorse import CANCELLED, PENDING, SETTLED
from rewards.keys import receipts_key_name
from rewards.mint import Mint, MintError, build_mint, parse_mint
from rewards.note import Ed25519Signer, sign_note
from rewards.receipt import Receipt, build_receipt
from rewards.verify import VerifyFailure, check_log_entry, check_mint_entry

HOME = "a.example"
ALICE = f"https://{HOME}/users/alice"
POST = f"https://{HOME}/posts/1"
T0 = 1_767_225_600
EXAMPLES = settings(max_examples=200, deadline=None)
MINT_TEXT = f"rewards/mint/v1\naccount {ALICE}\nseq 1\npoints 100\ntokens 10\ntime {T0}\n"

_ids = iter(range(10**9))


def receipt(kind: str = "like", points: int = 1, when: int = T0, actor: str = "https://b.example/users/x",
            obj: str = POST, beneficiary: str = ALICE) -> Receipt:
    return Receipt(f"b.example/r/{next(_ids)}", kind, actor, obj, beneficiary, points, when)


# Generated histories: earning receipts and undos of them, in log order, by a few actors on a few posts.
events = st.lists(st.tuples(st.sampled_from(["like", "announce", "reply", "undo-like", "undo-announce"]),
                            st.integers(0, 3), st.integers(0, 2), st.integers(0, 40 * 86400), st.integers(0, 5)),
                  max_size=40)
policies = st.builds(TokenPolicy, points_per_token=st.integers(1, 20), mint_threshold=st.integers(0, 60),
                     settlement_seconds=st.integers(0, 10 * 86400))


def history(spec: list[tuple[str, int, int, int, int]]) -> list[Receipt]:
    out = []
    for kind, actor, post, offset, points in spec:
        value = -points if kind.startswith("undo-") else points
        out.append(receipt(kind, value, T0 + offset, f"https://b.example/users/u{actor}", f"{POST}{post}"))
    return out


def with_mints(entries: list, policy: TokenPolicy, times: list[int]) -> list:
    """Interleave the mints a home instance would make at `times` (as the mint worker does)."""
    log = list(entries)
    for when in sorted(times):
        mint = next_mint(fold_balance(log, ALICE, when, policy), policy)
        if mint is not None:
            log.append(mint)
    return log


def test_mint_text_is_canonical_and_round_trips():
    mint = Mint(ALICE, 1, 100, 10, T0)
    assert build_mint(mint) == MINT_TEXT
    assert parse_mint(MINT_TEXT) == mint
    for bad in (MINT_TEXT.replace("seq 1", "seq 01"), MINT_TEXT.replace("tokens 10", "tokens 0"),
                MINT_TEXT.replace("seq 1\n", ""), MINT_TEXT + "extra 1\n", MINT_TEXT.replace("account ", "account  "),
                MINT_TEXT.replace("points 100", "points -100"), MINT_TEXT[:-1]):
        with pytest.raises(MintError):
            parse_mint(bad)


def test_undo_inside_the_window_cancels_after_it_does_not():
    like, late_like = receipt(when=T0), receipt(obj=f"{POST}x", when=T0)
    undo = receipt("undo-like", -1, T0 + 10)
    late_undo = receipt("undo-like", -1, T0 + 200, obj=f"{POST}x")
    states = {r.id: s for r, s in settlement_states([like, undo, late_like, late_undo], ALICE, T0 + 300, 100)}
    assert states == {like.id: CANCELLED, late_like.id: SETTLED}
    policy = TokenPolicy(settlement_seconds=100)
    assert (fold_balance([like, late_like], ALICE, T0 + 50, policy).pending,
            fold_balance([like, late_like], ALICE, T0 + 50, policy).points) == (2, 0)
    assert fold_balance([like, undo, late_like, late_undo], ALICE, T0 + 300, policy).points == 1


@EXAMPLES
@given(events, policies, st.lists(st.integers(0, 60 * 86400), max_size=6), st.integers(0, 60 * 86400))
def test_tokens_are_never_negative_and_every_mint_passes_verification(spec, policy, mint_times, at):
    log = with_mints(history(spec), policy, [T0 + t for t in mint_times])
    balance = fold_balance(log, ALICE, T0 + at, policy)
    assert balance.tokens >= 0 and balance.tokens_minted == sum(m.tokens for m in log if isinstance(m, Mint))
    assert balance.points_minted == balance.tokens_minted * policy.points_per_token
    assert check_mints(log, policy, HOME) == balance.mints  # what the minter appends, verify accepts
    assert (balance.tokens_spent, balance.tokens_redeemed, balance.tokens_expired) == (0, 0, 0)


@EXAMPLES
@given(st.integers(0, 10_000), policies)
def test_minted_tokens_are_floor_of_points_over_ratio_at_the_threshold(points, policy):
    log = [receipt(points=points, when=T0)]
    balance = fold_balance(log, ALICE, T0 + policy.settlement_seconds, policy)
    mint = next_mint(balance, policy)
    if points < max(policy.mint_threshold, policy.points_per_token):
        assert mint is None
        return
    assert mint is not None
    assert mint.tokens == points // policy.points_per_token
    assert mint.points == mint.tokens * policy.points_per_token
    after = fold_balance([*log, mint], ALICE, mint.time, policy)
    assert after.points == points % policy.points_per_token and after.tokens == mint.tokens


@EXAMPLES
@given(events, policies, st.integers(0, 60 * 86400))
def test_recomputation_from_signed_leaves_is_deterministic(spec, policy, at):
    signer = Ed25519Signer.generate(receipts_key_name(HOME))
    log = with_mints(history(spec), policy, [T0 + 20 * 86400, T0 + 40 * 86400])
    leaves = [sign_note(build_mint(e) if isinstance(e, Mint) else build_receipt(e), [signer]) for e in log]
    first = fold_balance([parse_entry(leaf) for leaf in leaves], ALICE, T0 + at, policy)
    again = fold_balance([parse_entry(leaf) for leaf in leaves], ALICE, T0 + at, policy)
    assert first == again == fold_balance(log, ALICE, T0 + at, policy)
    assert first.as_dict() == again.as_dict()


@EXAMPLES
@given(events, st.integers(0, 10 * 86400), st.integers(0, 60 * 86400), st.integers(0, 60 * 86400))
def test_pending_to_settled_is_monotone_in_time(spec, window, t1, t2):
    early, late = sorted((t1, t2))
    log = history(spec)
    before = {r.id: s for r, s in settlement_states(log, ALICE, T0 + early, window)}
    after = {r.id: s for r, s in settlement_states(log, ALICE, T0 + late, window)}
    for rid, state in before.items():
        assert after[rid] == state or state == PENDING  # only pending ever changes, and only once
    policy = TokenPolicy(settlement_seconds=window)
    assert fold_balance(log, ALICE, T0 + early, policy).points <= fold_balance(log, ALICE, T0 + late, policy).points


def test_a_mint_above_the_policy_is_refused_with_the_reason():
    policy = TokenPolicy(points_per_token=10, mint_threshold=20, settlement_seconds=0)
    log = [receipt(points=25, when=T0)]
    check_mint(log, Mint(ALICE, 1, 20, 2, T0), policy)
    with pytest.raises(MintRefused, match="above the policy"):
        check_mint(log, Mint(ALICE, 1, 30, 3, T0), policy)
    with pytest.raises(MintRefused, match="cost 20 points"):
        check_mint(log, Mint(ALICE, 1, 10, 2, T0), policy)
    with pytest.raises(MintRefused, match="repeats or skips"):
        check_mint([*log, Mint(ALICE, 1, 20, 2, T0)], Mint(ALICE, 1, 20, 2, T0), policy)
    with pytest.raises(MintRefused, match="above the policy"):  # not settled yet at the mint's time
        check_mint(log, Mint(ALICE, 1, 20, 2, T0), TokenPolicy(10, 20, settlement_seconds=60))
    with pytest.raises(MintRefused, match="above the policy"):  # below the threshold
        check_mint([receipt(points=15, when=T0)], Mint(ALICE, 1, 10, 1, T0), policy)


def test_a_mint_for_another_instances_account_is_refused():
    policy = TokenPolicy(points_per_token=1, mint_threshold=0, settlement_seconds=0)
    bob = "https://b.example/users/bob"
    log = [receipt(points=5, beneficiary=bob), Mint(bob, 1, 5, 5, T0)]
    with pytest.raises(MintRefused, match="an account of b.example, in the log of a.example"):
        check_mints(log, policy, HOME)


def test_mint_entries_must_be_signed_by_the_accounts_own_instance_alone():
    ours = Ed25519Signer.generate(receipts_key_name(HOME))
    theirs = Ed25519Signer.generate(receipts_key_name("b.example"))
    keys = {HOME: ours.verifier(), "b.example": theirs.verifier()}
    assert check_log_entry(sign_note(MINT_TEXT, [ours]), keys) == parse_mint(MINT_TEXT)
    with pytest.raises(VerifyFailure, match="bad signature|must be signed by a.example/rewards/receipts alone"):
        check_mint_entry(sign_note(MINT_TEXT, [theirs]), keys)
    with pytest.raises(VerifyFailure, match="alone"):
        check_mint_entry(sign_note(MINT_TEXT, [ours, theirs]), keys)
    with pytest.raises(VerifyFailure, match="no pinned receipts key"):
        check_mint_entry(sign_note(MINT_TEXT, [ours]), {"b.example": theirs.verifier()})
