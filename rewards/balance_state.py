"""An account's balance kept up to date entry by entry, equal to the pure fold (rewards.balance.fold_balance).

`fold_balance` reads every entry about the account at every query: a maker with thousands of
receipts costs milliseconds per balance. `FoldState` absorbs the entries once, in log order, and
answers a balance at any time `as_of` no earlier than the last one it answered in O(log n) per
entry that settled meanwhile. It gives exactly the numbers `fold_balance` gives over the same
entries at the same `as_of` (a property test checks it); an earlier `as_of` is refused (None)
and the caller folds from scratch.

A state is saved (`to_bytes`) and restored (`from_bytes`) with the policies it was folded
under (`policy_key`): a restored state absorbing more entries answers exactly what the unsaved
one would. A receipt not reversed is only needed again when it settles (its moment in the heap)
or an undo names it: a restored state keeps them packed (arrays of their (actor, object, kind)
key, time and points) and unpacks one as it settles (`_unpack_one`) or a key's when an undo of
that key comes (`_thaw`), so restoring costs a few array copies, not an object per receipt.

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
import json
import struct
import sys
from array import array
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import compress, repeat

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


FORMAT = 1  # of to_bytes; part of policy_key, so a state saved in another format is folded again
_MAGIC = b"FOLD\x01"


@lru_cache(maxsize=16)
def policy_key(policy: TokenPolicy, endorsement: EndorsementPolicy) -> str:
    """What a saved state was folded under (the policies and the format): restored only under the same."""
    text = json.dumps({"format": FORMAT, "tokens": asdict(policy), "endorsement": asdict(endorsement)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pack(kind: str, values: object) -> bytes:
    out = array(kind, values)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def _unpack(kind: str, data: bytes, offset: int, count: int) -> tuple[array, int]:
    out = array(kind)
    end = offset + out.itemsize * count
    out.frombytes(data[offset:end])
    if len(out) != count:
        raise ValueError("a saved balance state cut short")
    if sys.byteorder == "big":
        out.byteswap()
    return out, end


@dataclass(slots=True)
class _Packed:
    """Receipts not reversed: their _key (16 bytes each), time and points; a key's receipts in log order, and
    older in the log than any receipt of that key in a stack (FoldState._open)."""

    keys: bytes
    time: array
    points: array
    thawed: set[int] = field(default_factory=set)  # unpacked since: no longer here

    def find(self, key: bytes) -> list[int]:
        """The receipts of `key` still packed, in log order."""
        found, at = [], self.keys.find(key)
        while at >= 0:
            if at % 16 == 0 and at // 16 not in self.thawed:
                found.append(at // 16)
            at = self.keys.find(key, at + 1)
        return found


@dataclass
class FoldState:
    """The running fold of one account's entries (in log order)."""

    account: str
    policy: TokenPolicy
    endorsement: EndorsementPolicy
    frontier: int | None = None  # the latest as_of answered: no earlier one can be
    entries: int = 0
    receipts: int = 0  # receipts crediting (or debiting) the account
    _earned: list[_Earned | None] = field(default_factory=list)  # None: packed (in _cold, same position)
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
    _cold: _Packed | None = None  # the receipts not reversed as restored (positions 0...): unpacked when needed
    _unpacked: int = 0  # of those

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
        key = _key(r.actor, r.object, r.kind.removeprefix("undo-"))
        if self._cold is not None:
            self._thaw(key)
        stack = self._open.get(key)
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
            e = self._earned[position] or self._unpack_one(position)
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

    @property
    def held(self) -> int:
        """About how much memory the state takes, in receipts kept unpacked (a packed one is an eighth)."""
        packed = len(self._cold.time) if self._cold is not None else 0
        return 1 + len(self._waiting) + len(self._earned) - packed + packed // 8 + self._unpacked

    def _unpack_one(self, position: int) -> _Earned:
        """The packed receipt at `position` as an unpacked one (pending if it finalises after the frontier)."""
        cold = self._cold
        time = cold.time[position]
        e = _Earned(time, cold.points[position], None,
                    self.frontier is None or time + self.policy.settlement_seconds > self.frontier)
        self._earned[position] = e
        self._unpacked += 1
        return e

    def _thaw(self, key: bytes) -> None:
        """Unpack the restored receipts of `key` not reversed: older in the log than any receipt absorbed since."""
        found = self._cold.find(key)
        if not found:
            return
        self._cold.thawed.update(found)
        for position in found:
            if self._earned[position] is None:
                self._unpack_one(position)
        self._open[key][:0] = found

    def to_bytes(self) -> bytes:
        """The state, to be restored by `from_bytes` under the same policies (`policy_key`).

        Every receipt not reversed is packed (key, time, points), a key's in log order: those packed
        before and not unpacked since first, then each key's stack (receipts of a key go after those
        of the key packed before: older). Pending ones are listed with the moment they finalise;
        the reversed ones still pending are kept unpacked.
        """
        earned, cold = self._earned, self._cold
        before = len(cold.time) if cold is not None else 0
        if cold is None:
            keys, times, points = b"", array("q"), array("q")
            moved: list[int] | range = range(0)
        elif not cold.thawed:
            keys, times, points = cold.keys, array("q", cold.time), array("q", cold.points)
            moved = range(before)
        else:
            mask = [t not in cold.thawed for t in range(before)]
            keys = b"".join(compress((cold.keys[i:i + 16] for i in range(0, len(cold.keys), 16)), mask))
            times, points = array("q", compress(cold.time, mask)), array("q", compress(cold.points, mask))
            moved = [-1] * before  # where each one packed before goes
            for at, position in enumerate(compress(range(before), mask)):
                moved[position] = at
        where: dict[int, int] = {}
        stack_keys = []
        for key, stack in self._open.items():
            for position in stack:
                where[position] = len(times) + len(where)
                stack_keys.append(key)
        keys += b"".join(stack_keys)
        times.extend([earned[p].time for p in where])
        points.extend([earned[p].points for p in where])
        pending, reversed_ = [], []  # (moment, packed index), (moment, unpacked receipt)
        for moment, position, version in self._heap:
            e = earned[position]
            if e is not None and (version != e.version or not e.young):
                continue  # placed again since
            if position < before and (e is None or moved[position] >= 0):
                pending.append((moment, moved[position]))
            elif position in where:
                pending.append((moment, where[position]))
            else:
                reversed_.append((moment, e))
        count = len(times)
        pending += [(moment, count + j) for j, (moment, _) in enumerate(reversed_)]
        pending.sort()
        head = {
            "format": FORMAT, "policy": policy_key(self.policy, self.endorsement), "account": self.account,
            "frontier": self.frontier, "entries": self.entries, "receipts": self.receipts,
            "sums": [self._pending, self._settled, self._minted_points, self._minted_tokens, self._mints,
                     self._spent, self._redeemed, self._expired],
            "budget": None if self._budget is None else [self._budget.mana, self._budget.updated_at],
            "waiting": self._waiting, "packed": count, "reversed": len(reversed_), "pending": len(pending),
        }
        text = json.dumps(head, separators=(",", ":")).encode()
        return b"".join([
            _MAGIC, struct.pack("<I", len(text)), text, keys, _pack("q", times), _pack("q", points),
            _pack("q", [e.time for _, e in reversed_]), _pack("q", [e.points for _, e in reversed_]),
            _pack("q", [e.undone for _, e in reversed_]),
            _pack("I", [position for _, position in pending]), _pack("q", [moment for moment, _ in pending]),
        ])

    @classmethod
    def from_bytes(cls, data: bytes, policy: TokenPolicy, endorsement: EndorsementPolicy | None = None) -> FoldState:
        """A state saved by `to_bytes`; ValueError if it is not one, or was folded under other policies."""
        endorsement = endorsement or EndorsementPolicy(settlement_seconds=policy.settlement_seconds)
        if data[:len(_MAGIC)] != _MAGIC or len(data) < len(_MAGIC) + 4:
            raise ValueError("not a saved balance state")
        (length,) = struct.unpack_from("<I", data, len(_MAGIC))
        offset = len(_MAGIC) + 4 + length
        head = json.loads(data[len(_MAGIC) + 4:offset])
        if head.get("format") != FORMAT or head.get("policy") != policy_key(policy, endorsement):
            raise ValueError("a balance state saved under other policies")
        state = cls(head["account"], policy, endorsement, head["frontier"], head["entries"], head["receipts"])
        (state._pending, state._settled, state._minted_points, state._minted_tokens, state._mints, state._spent,
         state._redeemed, state._expired) = head["sums"]
        state._budget = None if head["budget"] is None else EndorsementBudget(*head["budget"])
        state._waiting = list(head["waiting"])
        c, n, pending = head["packed"], head["reversed"], head["pending"]
        keys, offset = data[offset:offset + 16 * c], offset + 16 * c
        times, offset = _unpack("q", data, offset, c)
        points, offset = _unpack("q", data, offset, c)
        reversed_times, offset = _unpack("q", data, offset, n)
        reversed_points, offset = _unpack("q", data, offset, n)
        undone, offset = _unpack("q", data, offset, n)
        positions, offset = _unpack("I", data, offset, pending)
        moments, offset = _unpack("q", data, offset, pending)
        if offset != len(data) or len(keys) != 16 * c:
            raise ValueError("a saved balance state of the wrong length")
        if c:
            state._cold = _Packed(keys, times, points)
        state._earned = [None] * c + list(map(_Earned, reversed_times, reversed_points, undone, repeat(True)))
        state._heap = list(zip(moments, positions, repeat(0)))  # sorted: a heap as it is
        return state

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
