"""An account's balance as a pure fold over the entries of its home instance's log (issue #11).

Anyone holding the log up to a size (its tiles) can recompute every number here: the
input is the parsed entries in log order, the account, a time ``as_of`` and the published
token policy; nothing else (no clock, no database).

- A like, announce or reply receipt for the account (and, from policy 2, a curate-share or
  curate-reply receipt: the account's curation share) is ``pending`` until
  ``settlement_seconds`` after its time, then ``settled`` (rewards.endorse.settlement_state).
  An undo-* receipt of the same actor, object and kind reverses the newest such receipt not
  reversed yet: inside the window it cancels it (it counts nothing), after the window the
  points stay settled. Undo receipts themselves carry no further weight.
- ``points`` = settled points - points converted by the account's mints. It is negative only
  when a late undo (one whose time falls inside the window but that reached the log after a
  mint) cancels points already minted; new points pay that off before the next mint.
- ``tokens`` = tokens minted - spent - expired. ``tokens_spent`` is the account's spends less
  their undo-spends (rewards/spend.py); ``tokens_redeemed`` the same for spends on the
  account's listings (what a maker received).
- A mint is allowed when the account's points at the mint's time, over the entries before it
  in the log, reach ``mint_threshold`` and at least one token; it converts whole tokens only
  (``points = tokens x points_per_token``) and numbers itself ``seq`` = previous mints + 1.
- ``budget``: the account's endorsement budget (rewards.endorse) after its own like, announce
  and reply receipts in the log up to ``as_of``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rewards.endorse import (
    CANCELLED,
    PENDING,
    SETTLED,
    UNITS_PER_ENDORSEMENT,
    EndorsementBudget,
    EndorsementPolicy,
    full_budget,
    regenerate,
    settlement_state,
    spend_endorsement,
)
from rewards.expire import Expire, is_expire_text, parse_expire
from rewards.mint import Mint, is_mint_text, parse_mint
from rewards.note import parse_note
from rewards.points import is_self_interaction, url_domain
from rewards.receipt import ENDORSEMENTS, KINDS, Receipt, parse_receipt
from rewards.spend import Spend, is_spend_text, parse_spend

Entry = Receipt | Mint | Spend | Expire
DAY = 86400
DEFAULT_EXPIRY_DAYS = 3 * 365


class MintRefused(ValueError):
    """A mint entry the published token policy does not allow; the message says why."""


class SpendRefused(ValueError):
    """A spend entry that takes more tokens than the account holds, or undoes nothing; the message says why."""


@dataclass(frozen=True)
class TokenPolicy:
    """The published numbers of minting: settlement window, conversion rate and threshold."""

    points_per_token: int = 10
    mint_threshold: int = 100
    settlement_seconds: int = 7 * 86400
    token_expiry_days: int = DEFAULT_EXPIRY_DAYS
    tokens_enabled: bool = True

    def __post_init__(self) -> None:
        if self.points_per_token < 1:
            raise ValueError("points_per_token must be at least 1")
        if min(self.mint_threshold, self.settlement_seconds, self.token_expiry_days) < 0:
            raise ValueError("mint_threshold, settlement_seconds and token_expiry_days cannot be negative")

    def as_dict(self) -> dict:
        """The numbers as published at /rewards/policy (member `tokens`)."""
        return {
            "enabled": self.tokens_enabled,
            "settlement_seconds": self.settlement_seconds,
            "points_per_token": self.points_per_token,
            "mint_threshold": self.mint_threshold,
            "token_expiry_days": self.token_expiry_days,
            "mint": "when an account's settled, unminted points reach mint_threshold (and one token), its home "
                    "instance appends a rewards/mint/v1 entry converting floor(points / points_per_token) whole "
                    "tokens, for exactly tokens x points_per_token points",
            "expiry": "tokens expire token_expiry_days after the mint that made them, oldest first (spends use "
                      "the oldest tokens first): the home instance appends a rewards/expire/v1 entry for what is "
                      "left of the mints older than that, after every spend and earlier expiry",
            "transfers": "none: tokens are spent on products only and never move between people",
        }

    @classmethod
    def from_dict(cls, data: dict) -> TokenPolicy:
        """The policy from a published `tokens` member (ValueError if malformed)."""
        try:
            return cls(int(data["points_per_token"]), int(data["mint_threshold"]), int(data["settlement_seconds"]),
                       int(data.get("token_expiry_days", DEFAULT_EXPIRY_DAYS)), bool(data.get("enabled", True)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a token policy: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Balance:
    """An account's balance at `as_of`, from its home log."""

    account: str
    as_of: int
    points: int
    pending: int
    points_minted: int
    tokens_minted: int
    mints: int
    budget: EndorsementBudget
    budget_capacity: int
    tokens_spent: int = 0
    tokens_redeemed: int = 0
    tokens_expired: int = 0

    @property
    def tokens(self) -> int:
        """Tokens available: minted, less spent and expired."""
        return self.tokens_minted - self.tokens_spent - self.tokens_expired

    def as_dict(self) -> dict:
        """The numbers served at /rewards/balance/<acct> and printed by `rewards balance --json`."""
        return {
            "points": self.points, "pending": self.pending, "tokens": self.tokens,
            "tokens_spent": self.tokens_spent, "tokens_redeemed": self.tokens_redeemed,
            "tokens_expired": self.tokens_expired, "tokens_minted": self.tokens_minted,
            "points_minted": self.points_minted, "mints": self.mints,
            "budget": {"units": self.budget.mana, "capacity_units": self.budget_capacity,
                       "units_per_full_endorsement": UNITS_PER_ENDORSEMENT,
                       "full_endorsements": self.budget.mana // UNITS_PER_ENDORSEMENT},
            "as_of": self.as_of,
        }


def parse_entry(leaf: bytes) -> Entry:
    """A log leaf's receipt or mint, signatures not checked (NoteError, ReceiptError or MintError if malformed)."""
    text = parse_note(leaf).text
    if is_mint_text(text):
        return parse_mint(text)
    if is_expire_text(text):
        return parse_expire(text)
    return parse_spend(text) if is_spend_text(text) else parse_receipt(text)


def settlement_states(entries: Iterable[Entry], account: str, as_of: int, settlement_seconds: int
                      ) -> list[tuple[Receipt, str]]:
    """Each earning receipt (rewards.receipt.KINDS: like, announce, reply, curate-*) for `account` with its
    state at `as_of`, in log order."""
    earned: list[tuple[Receipt, int | None]] = []
    open_by_key: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for entry in entries:
        if not isinstance(entry, Receipt) or entry.beneficiary != account:
            continue
        if entry.kind in KINDS:
            open_by_key[(entry.actor, entry.object, entry.kind)].append(len(earned))
            earned.append((entry, None))
            continue
        stack = open_by_key.get((entry.actor, entry.object, entry.kind.removeprefix("undo-")))
        if stack:  # an undo reverses the newest receipt of the interaction not reversed yet
            position = stack.pop()
            earned[position] = (earned[position][0], entry.time)
    return [(r, settlement_state(r.time, as_of, settlement_seconds, undone)) for r, undone in earned]


def _budget(entries: Iterable[Entry], account: str, as_of: int, policy: EndorsementPolicy) -> EndorsementBudget:
    budget: EndorsementBudget | None = None
    for entry in entries:
        if (isinstance(entry, Receipt) and entry.actor == account and entry.kind in ENDORSEMENTS
                and entry.time <= as_of
                and not is_self_interaction(entry.actor, entry.beneficiary)):
            budget = spend_endorsement(budget or full_budget(policy, entry.time), entry.time, policy).budget
    return full_budget(policy, as_of) if budget is None else regenerate(budget, as_of, policy)


def fold_balance(entries: Sequence[Entry], account: str, as_of: int, policy: TokenPolicy,
                 endorsement: EndorsementPolicy | None = None) -> Balance:
    """The balance of `account` at `as_of` over its home log's entries (in log order)."""
    endorsement = endorsement or EndorsementPolicy(settlement_seconds=policy.settlement_seconds)
    settled = pending = 0
    for receipt, state in settlement_states(entries, account, as_of, policy.settlement_seconds):
        if state == SETTLED:
            settled += receipt.points
        elif state == PENDING:
            pending += receipt.points
        else:
            assert state == CANCELLED
    mints = [e for e in entries if isinstance(e, Mint) and e.account == account]
    minted_points = sum(m.points for m in mints)
    spent = sum(e.signed_tokens for e in entries if isinstance(e, Spend) and e.account == account)
    redeemed = sum(e.signed_tokens for e in entries if isinstance(e, Spend) and e.seller == account)
    expired = sum(e.tokens for e in entries if isinstance(e, Expire) and e.account == account)
    return Balance(account, as_of, settled - minted_points, pending, minted_points, sum(m.tokens for m in mints),
                   len(mints), _budget(entries, account, as_of, endorsement), endorsement.capacity,
                   tokens_spent=spent, tokens_redeemed=redeemed, tokens_expired=expired)


class ExpireRefused(ValueError):
    """An expiry entry the published token policy does not allow; the message says why."""


def expiry_due(entries: Sequence[Entry], account: str, as_of: int, policy: TokenPolicy) -> int:
    """Tokens of `account` that have expired by `as_of` and are not recorded as expired yet.

    Spends use the oldest tokens first, so what is left of the mints older than the period, after
    every spend (net of undos) and every earlier expiry, is due: max(0, tokens of those mints -
    spent - expired).
    """
    cutoff = as_of - policy.token_expiry_days * DAY
    old = sum(e.tokens for e in entries if isinstance(e, Mint) and e.account == account and e.time <= cutoff)
    spent = sum(e.signed_tokens for e in entries if isinstance(e, Spend) and e.account == account)
    expired = sum(e.tokens for e in entries if isinstance(e, Expire) and e.account == account)
    return max(0, old - spent - expired)


def next_expire(entries: Sequence[Entry], account: str, as_of: int, policy: TokenPolicy,
                limit: int | None = None) -> Expire | None:
    """The expiry the policy asks for now (at most `limit` tokens: what the account can still give up), if any."""
    due = expiry_due(entries, account, as_of, policy)
    if limit is not None:
        due = min(due, limit)
    if due <= 0:
        return None
    seq = sum(1 for e in entries if isinstance(e, Expire) and e.account == account) + 1
    return Expire(account, seq, due, as_of)


def check_expiries(entries: Sequence[Entry], policy: TokenPolicy, home: str) -> int:
    """Check every expiry of a log (ExpireRefused names the first bad one); returns how many there are.

    An expiry is for an account of the log's instance, numbered in turn, and takes no more than was due
    at its time (less is allowed: tokens held by a spend still on its way are not taken).
    """
    count = 0
    seen: dict[str, int] = defaultdict(int)
    for position, entry in enumerate(entries):
        if not isinstance(entry, Expire):
            continue
        count += 1
        if entry.home != home:
            raise ExpireRefused(f"expiry {entry.seq} is for {entry.account}, not an account of {home}")
        if entry.seq != seen[entry.account] + 1:
            raise ExpireRefused(f"expiry {entry.seq} of {entry.account} repeats or skips one: "
                                f"{seen[entry.account]} came before")
        due = expiry_due(entries[:position], entry.account, entry.time, policy)
        if entry.tokens > due:
            raise ExpireRefused(f"expiry {entry.seq} of {entry.account} takes {entry.tokens} tokens; "
                                f"{due} were due at {entry.time}")
        seen[entry.account] += 1
    return count


def next_mint(balance: Balance, policy: TokenPolicy) -> Mint | None:
    """The mint the policy allows now, converting as many whole tokens as the points cover; None if none."""
    if not policy.tokens_enabled or balance.points < max(policy.mint_threshold, policy.points_per_token):
        return None
    tokens = balance.points // policy.points_per_token
    return Mint(balance.account, balance.mints + 1, tokens * policy.points_per_token, tokens, balance.as_of)


def check_mint(before: Sequence[Entry], mint: Mint, policy: TokenPolicy) -> None:
    """Raise MintRefused unless `mint` is allowed after the entries `before` it in its log."""
    balance = fold_balance(before, mint.account, mint.time, policy)
    if mint.seq != balance.mints + 1:
        raise MintRefused(f"mint {mint.seq} of {mint.account} repeats or skips a mint: {balance.mints} came before")
    if mint.points != mint.tokens * policy.points_per_token:
        raise MintRefused(f"mint {mint.seq} of {mint.account}: {mint.tokens} tokens cost "
                          f"{mint.tokens * policy.points_per_token} points at {policy.points_per_token} per token, "
                          f"not {mint.points}")
    if balance.points < policy.mint_threshold or mint.points > balance.points:
        raise MintRefused(f"mint {mint.seq} of {mint.account} converts {mint.points} points, above the policy: "
                          f"the account had {balance.points} settled, unminted points at {mint.time} "
                          f"(threshold {policy.mint_threshold})")


def check_mints(entries: Sequence[Entry], policy: TokenPolicy, home: str) -> int:
    """Check every mint of a log (MintRefused names the first bad one); returns how many there are.

    `home` is the log's instance (host[:port]): it mints for its own accounts only.
    """
    accounts = {e.account for e in entries if isinstance(e, Mint)}
    if not accounts:
        return 0
    by_account: dict[str, list[Entry]] = defaultdict(list)
    count = 0
    for entry in entries:
        if isinstance(entry, Mint):
            if entry.home != home:
                raise MintRefused(f"mint {entry.seq} is for {entry.account}, an account of {entry.home}, in the log "
                                  f"of {home}: an instance mints only for its own accounts")
            check_mint(by_account[entry.account], entry, policy)
            count += 1
        if isinstance(entry, Spend | Expire):
            continue  # spends and expiries move tokens, not points: no mint depends on them
        owner = entry.account if isinstance(entry, Mint) else entry.beneficiary
        if owner in accounts:
            by_account[owner].append(entry)
    return count


def check_spends(entries: Sequence[Entry], home: str) -> int:
    """Check every spend of a log (SpendRefused names the first bad one); returns how many there are.

    `home` is the log's instance: a spend in it is by one of its accounts (it issued it) or on one
    of its listings (it countersigned it). A spend by one of its own accounts must be covered by
    the tokens the account holds just before it; an undo-spend must return a spend of the same
    order, account and tokens, once. Signatures are checked by rewards.verify.
    """
    tokens: dict[str, int] = defaultdict(int)
    spends: dict[str, Spend] = {}
    undone: set[str] = set()
    count = 0
    for entry in entries:
        if isinstance(entry, Mint):
            tokens[entry.account] += entry.tokens
            continue
        if isinstance(entry, Expire):
            tokens[entry.account] -= entry.tokens
            continue
        if not isinstance(entry, Spend):
            continue
        count += 1
        if home not in (entry.home, entry.maker_home):
            raise SpendRefused(f"spend {entry.id} of {entry.account} on {entry.listing} is in the log of {home}, "
                               "which is neither the buyer's nor the maker's instance")
        if entry.kind == "spend":
            if entry.order in spends:
                raise SpendRefused(f"spend {entry.id} pays for order {entry.order} a second time")
            if entry.home == home and tokens[entry.account] < entry.tokens:
                raise SpendRefused(f"spend {entry.id} takes {entry.tokens} tokens from {entry.account}, who held "
                                   f"{tokens[entry.account]}")
            spends[entry.order] = entry
        else:
            original = spends.get(entry.order)
            if (original is None or entry.order in undone or original.account != entry.account
                    or original.tokens != entry.tokens or original.seller != entry.seller):
                raise SpendRefused(f"undo-spend {entry.id} returns no spend of order {entry.order} (or a second time)")
            undone.add(entry.order)
        tokens[entry.account] -= entry.signed_tokens
    return count


RECOMPUTABLE = ("points", "pending", "tokens", "tokens_minted", "points_minted", "mints", "tokens_spent",
                "tokens_redeemed", "tokens_expired")


def home_accounts(entries: Iterable[Entry], home: str) -> list[str]:
    """Every account of instance `home` (host[:port]) a log's entries credit: receipt beneficiaries, minted accounts."""
    found: set[str] = set()
    for e in entries:
        found.update((e.account,) if isinstance(e, Mint | Expire) else (e.account, e.seller)
                     if isinstance(e, Spend) else (e.beneficiary,))
    return sorted(a for a in found if url_domain(a) == home)


def balance_differences(served: dict, recomputed: Balance) -> list[tuple[str, object, int]]:
    """The recomputable fields where a served balance document differs: (field, served, recomputed)."""
    mine = recomputed.as_dict()
    return [(name, served.get(name), mine[name]) for name in RECOMPUTABLE if served.get(name) != mine[name]]
