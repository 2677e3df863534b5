"""`rewards verify --balances`: which accounts are checked and how a served document is compared (pure parts)."""

from __future__ import annotations

from rewards.balance import TokenPolicy, fold_balance, home_accounts
from rewards.mint import Mint
from rewards.receipt import Receipt
from rewards.verify_balances import DIFFERS, OK, UNCHECKED, account_name, check_served

HOME = "a.example"
ALICE = f"https://{HOME}/users/alice"
BOB = "https://b.example/users/bob"
T0 = 1_767_225_600
POLICY = TokenPolicy(points_per_token=2, mint_threshold=3, settlement_seconds=10)
LOG = [Receipt("b/r/1", "reply", BOB, f"https://{HOME}/posts/1", ALICE, 3, T0),
       Receipt("a/r/2", "like", ALICE, "https://b.example/posts/2", BOB, 1, T0),
       Receipt("b/r/3", "like", BOB, f"https://{HOME}/posts/1", ALICE, 1, T0 + 1),
       Mint(ALICE, 1, 4, 2, T0 + 20)]


def served(size: int, as_of: int, **changes) -> dict:
    doc = {"actor": ALICE, **fold_balance(LOG[:size], ALICE, as_of, POLICY).as_dict(), "log_size": size}
    return {**doc, **changes}


def test_only_accounts_of_the_logs_own_instance_are_checked():
    assert home_accounts(LOG, HOME) == [ALICE]
    assert home_accounts(LOG, "b.example") == [BOB]
    assert account_name(ALICE) == "alice" and account_name(ALICE + "/") == "alice"


def test_a_served_balance_is_recomputed_at_its_own_log_size_and_time():
    for size, as_of in ((4, T0 + 30), (3, T0 + 5), (2, T0 + 30), (0, T0)):
        check = check_served(ALICE, "alice", served(size, as_of), LOG, 4, POLICY)
        assert (check.status, check.differences, check.log_size) == (OK, [], size), (size, as_of)


def test_differences_name_the_field_the_served_and_the_recomputed_value():
    check = check_served(ALICE, "alice", served(4, T0 + 30, tokens=3, mints=0), LOG, 4, POLICY)
    assert check.status == DIFFERS and check.differences == [("tokens", 3, 2), ("mints", 0, 1)]
    assert check.describe() == "tokens served 3, recomputed 2; mints served 0, recomputed 1"
    beyond = check_served(ALICE, "alice", served(4, T0 + 30, log_size=9), LOG, 4, POLICY)
    # Served at a newer checkpoint than the one verified: not comparable, so not checked (never a mismatch).
    assert beyond.status == UNCHECKED and beyond.differences == [] and "past the verified checkpoint" in beyond.reason
    other = check_served(ALICE, "alice", served(4, T0 + 30, actor=BOB), LOG, 4, POLICY)
    assert other.differences == [("actor", BOB, ALICE)]
