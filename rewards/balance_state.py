"""An account's balance kept up to date entry by entry, equal to the pure fold (rewards.balance.fold_balance).

`fold_balance` reads every entry about the account at every query: a maker with thousands of
receipts costs milliseconds per balance. `FoldState` absorbs the entries once, in log order, and
answers a balance at any time `as_of` no earlier than the last one it answered in O(log n) per
entry that settled meanwhile. It gives exactly the numbers `fold_balance` gives over the same
entries at the same `as_of` (a property test checks it); an earlier `as_of` is refused (None)
and the caller folds from scratch.

How: an earning receipt (rewards.receipt.KINDS) is `pending` until it finalises, at
`time + settlement_seconds` (settled) or, undone inside its window, at the undo's time
(cancelled); those not final at the last `as_of` are kept in a heap by that moment, with their
points summed as pending; the rest are summed as settled. An undo reverses the newest receipt
of its (actor, object, kind) not reversed yet, exactly as `settlement_states` does, and moves it
between the sums if its fate changed. The endorsement budget is applied in log order to the
account's own endorsements whose time has come; later ones wait, as the fold skips them.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from rewards.balance import Balance, Entry, TokenPolicy
from rewards.endorse import EndorsementBudget, EndorsementPolicy, full_budget, regenerate, spend_endorsement
from rewards.expire import Expire
from rewards.mint import Mint
from rewards.points import is_self_interaction
from rewards.receipt import ENDORSEMENTS, KINDS, Receipt
from rewards.spend import Spend


def _key(actor: str, obj: str, kind: str) -> bytes:
    """An interaction's (actor, object, kind) in 16 bytes: what an undo is matched by, kept small in memory."""
    return hashlib.blake2b(f"{actor}\n{obj}\n{kind}".encode(), digest_size=16).digest()


@dataclass(slots=True)
class _Earned:
    time: int
    points: int
    undone: int | None = None
    young: bool = False
    version: int = 0


@dataclass
class FoldState:
    """The running fold of one account's entries (in log order)."""

    account: str
    policy: TokenPolicy
    endorsement: EndorsementPolicy
    frontier: int | None = None  # the latest as_of answered: no earlier one can be
    entries: int = 0
    receipts: int = 0  # receipts crediting (or debiting) the account
    _earned: list[_Earned] = field(default_factory=list)
    _open: dict[bytes, list[int]] = field(default_factory=lambda: defaultdict(list))  # by _key
    _heap: list[tuple[int, int, int]] = field(default_factory=list)  # (finalises at, earned index, version)
    _pending: int = 0
    _settled: int = 0
    _minted_points: int = 0
    _minted_tokens: int = 0
    _mints: int = 0
    _spent: int = 0
    _redeemed: int = 0
    _expired: int = 0
    _budget: EndorsementBudget | None = None  # after the endorsements applied for good
    _waiting: list[int] = field(default_factory=list)  # times of own endorsements not applied yet

    @classmethod
    def start(cls, account: str, policy: TokenPolicy, endorsement: EndorsementPolicy | None = None) -> FoldState:
        return cls(account, policy, endorsement or EndorsementPolicy(settlement_seconds=policy.settlement_seconds))

    def absorb(self, entries: list[Entry]) -> None:
        """Take the next entries of the log (in log order; only those about the account matter)."""
        for entry in entries:
            self.entries += 1
            if isinstance(entry, Receipt):
                self._receipt(entry)
            elif isinstance(entry, Mint):
                if entry.account == self.account:
                    self._minted_points += entry.points
                    self._minted_tokens += entry.tokens
                    self._mints += 1
            elif isinstance(entry, Spend):
                if entry.account == self.account:
                    self._spent += entry.signed_tokens
                if entry.seller == self.account:
                    self._redeemed += entry.signed_tokens
            elif isinstance(entry, Expire) and entry.account == self.account:
                self._expired += entry.tokens

    def _receipt(self, r: Receipt) -> None:
        if r.actor == self.account and r.kind in ENDORSEMENTS and not is_self_interaction(r.actor, r.beneficiary):
            self._waiting.append(r.time)
        if r.beneficiary != self.account:
            return
        self.receipts += 1
        if r.kind in KINDS:
            self._open[_key(r.actor, r.object, r.kind)].append(len(self._earned))
            self._earned.append(_Earned(r.time, r.points))
            self._place(len(self._earned) - 1)
            return
        stack = self._open.get(_key(r.actor, r.object, r.kind.removeprefix("undo-")))
        if stack:
            position = stack.pop()
            earned = self._earned[position]
            if earned.young:  # its moment may change: take it out of the pending sum and place it again
                earned.young = False
                earned.version += 1
                self._pending -= earned.points
            elif self._finalises(earned) is not None and not self._cancels(earned):
                self._settled -= earned.points  # it was settled; placed again below with its undo
            earned.undone = r.time
            self._place(position, again=True)

    def _cancels(self, e: _Earned) -> bool:
        return e.undone is not None and e.undone < e.time + self.policy.settlement_seconds

    def _finalises(self, e: _Earned) -> int | None:
        """When its state stops changing (undone inside the window: then cancelled; else: settled)."""
        return e.undone if self._cancels(e) else e.time + self.policy.settlement_seconds

    def _place(self, position: int, again: bool = False) -> None:
        e = self._earned[position]
        moment = self._finalises(e)
        if self.frontier is not None and moment <= self.frontier:
            if not self._cancels(e):
                self._settled += e.points
            return
        e.young = True
        self._pending += e.points
        heapq.heappush(self._heap, (moment, position, e.version))

    def _advance(self, as_of: int) -> None:
        while self._heap and self._heap[0][0] <= as_of:
            _, position, version = heapq.heappop(self._heap)
            e = self._earned[position]
            if version != e.version or not e.young:
                continue  # placed again since
            e.young = False
            self._pending -= e.points
            if not self._cancels(e):
                self._settled += e.points
        self.frontier = as_of

    def _budget_at(self, as_of: int) -> EndorsementBudget:
        budget, applied = self._budget, 0
        for when in self._waiting:  # the fold's order: log order, skipping endorsements not yet due
            if when > as_of:
                break
            budget = spend_endorsement(budget or full_budget(self.endorsement, when), when, self.endorsement).budget
            applied += 1
        self._budget, self._waiting = budget, self._waiting[applied:]  # due for good: as_of never goes back
        for when in self._waiting:
            if when <= as_of:
                budget = spend_endorsement(budget or full_budget(self.endorsement, when), when,
                                           self.endorsement).budget
        return full_budget(self.endorsement, as_of) if budget is None else regenerate(budget, as_of, self.endorsement)

    def balance(self, as_of: int) -> Balance | None:
        """The balance at `as_of`; None when `as_of` is earlier than one already answered (fold from scratch)."""
        if self.frontier is not None and as_of < self.frontier:
            return None
        self._advance(as_of)
        return Balance(self.account, as_of, self._settled - self._minted_points, self._pending, self._minted_points,
                       self._minted_tokens, self._mints, self._budget_at(as_of), self.endorsement.capacity,
                       tokens_spent=self._spent, tokens_redeemed=self._redeemed, tokens_expired=self._expired)


def _unchecked(cls: type, **fields: object) -> object:
    """An entry from its index row: the row was written from the validated entry, so it is not validated again."""
    entry = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(entry, name, value)
    return entry


def entries_of_rows(rows: list) -> list[Entry]:
    """The entries an index read (rewards.store.get_account_rows) describes, in its order, each once."""
    out: list[Entry] = []
    last = None
    for row in rows:
        if row["idx"] == last:
            continue
        last = row["idx"]
        kind = row["t"]
        if kind == "r":
            out.append(_unchecked(Receipt, id="", kind=row["kind"], actor=row["a"], object=row["o"],
                                  beneficiary=row["b"], points=row["n"], time=row["at"], author=None, policy=2))
        elif kind == "m":
            out.append(_unchecked(Mint, account=row["a"], seq=row["q"], points=row["n"], tokens=row["m"],
                                  time=row["at"]))
        elif kind == "s":
            out.append(_unchecked(Spend, id=row["x"], kind=row["kind"], account=row["a"], order=row["o"],
                                  listing=row["y"], seller=row["b"], quantity=row["q"], tokens=row["n"],
                                  time=row["at"]))
        else:
            out.append(_unchecked(Expire, account=row["a"], seq=row["q"], tokens=row["n"], time=row["at"]))
    return out
