"""Verifying a member's log: full audit (``verify_log``) and incremental monitoring (``check_head``).

A full audit fetches the cosigned checkpoint, every entry bundle and every tile,
recomputes the tree, compares it with the served tiles and the checkpoint root,
checks it extends the last checkpoint we accepted, re-verifies both signatures
on every receipt, and checks every mint against the instance's published token policy
(signed by the log's own instance, for one of its own accounts, within what its settled
points allow). Any failure raises VerifyFailure with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewards.balance import (
    ExpireRefused,
    MintRefused,
    SpendRefused,
    TokenPolicy,
    check_expiries,
    check_mints,
    check_spends,
)
from rewards.checkpoint import CheckpointError
from rewards.client import FetchError, LogClient
from rewards.expire import Expire, is_expire_text, parse_expire
from rewards.keys import log_origin
from rewards.merkle import CompactRange, consistency_plan, leaf_hash, root_from_leaf_hashes, verify_consistency
from rewards.mint import Mint, is_mint_text, parse_mint
from rewards.note import Ed25519Verifier, NoteError, parse_note, verify_note
from rewards.points import url_domain
from rewards.policy import Policy, WitnessedCheckpoint, verify_checkpoint
from rewards.receipt import Receipt, ReceiptError, parse_receipt
from rewards.spend import Spend, is_spend_text, parse_spend
from rewards.store import WitnessState
from rewards.tiles import integrate

if TYPE_CHECKING:
    from fedserver.progress import Advance

PROGRESS_STEP = 256  # receipts verified between two progress reports


class VerifyFailure(Exception):
    """The log failed verification; the message says why. `kind` classifies it for alerts."""

    def __init__(self, message: str, kind: str = "invalid"):
        super().__init__(message)
        self.kind = kind


@dataclass
class VerifyReport:
    """What a successful audit established."""

    origin: str
    size: int
    root: bytes
    checkpoint: bytes
    cosigned_by: list[str]
    totals: dict[str, int] = field(default_factory=dict)
    receipts: int = 0
    mints: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    entries: list[bytes] = field(default_factory=list, repr=False)  # the verified leaves, in log order

    def head(self) -> WitnessState:
        """The checkpoint to remember as our last-seen head."""
        return WitnessState(self.size, self.root, self.checkpoint)


async def witnessed(client: LogClient, policy: Policy) -> tuple[bytes, WitnessedCheckpoint]:
    """Fetch the checkpoint and check the log signature and the witness quorum."""
    try:
        data = await client.checkpoint()
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch the checkpoint: {exc}", "unavailable") from None
    try:
        return data, verify_checkpoint(data, policy)
    except (NoteError, CheckpointError) as exc:
        raise VerifyFailure(f"checkpoint rejected: {exc}", "bad-checkpoint") from None


def compare_heads(previous: WitnessState | None, size: int, root: bytes) -> None:
    """Refuse a checkpoint smaller than, or forked from, the last one we accepted (same size)."""
    if previous is None:
        return
    if size < previous.size:
        raise VerifyFailure(f"log truncated: checkpoint size {size} is smaller than the {previous.size} seen before",
                            "truncated")
    if size == previous.size and root != previous.root:
        raise VerifyFailure(f"log forked: two checkpoints of size {size} with different roots", "fork")


async def _check_tiles(client: LogClient, leaf_hashes: list[bytes], root: bytes) -> None:
    built = integrate(CompactRange(), {}, leaf_hashes)
    if built.root != root:
        raise VerifyFailure(f"entries hash to root {built.root.hex()}, the checkpoint says {root.hex()}: "
                            "the log was rewritten", "rewrite")
    try:
        served = await client.tiles([tile for tile, _ in built.tiles])
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch tiles: {exc}", "unavailable") from None
    for tile, data in built.tiles:
        if served[tile][: len(data)] != data:
            raise VerifyFailure(f"served tile {tile.path()} does not match the entries", "rewrite")


def _parsed(leaf: bytes, parse, noun: str):
    """The note and its entry, canonical (VerifyFailure `not a <noun>` / `<noun> is not in canonical form`)."""
    try:
        note = parse_note(leaf)
        entry = parse(note.text)
    except (NoteError, ReceiptError) as exc:
        raise VerifyFailure(f"not {'an' if noun[0] in 'aeiou' else 'a'} {noun}: {exc}") from None
    if note.encode() != leaf:
        raise VerifyFailure(f"{noun} is not in canonical form")
    return note, entry


def _keys_of(domains, receipt_keys: dict[str, Ed25519Verifier]) -> list[Ed25519Verifier]:
    """The pinned receipts key of each instance (VerifyFailure for one not pinned)."""
    keys = []
    for domain in domains:
        if domain not in receipt_keys:
            raise VerifyFailure(f"no pinned receipts key for {domain}")
        keys.append(receipt_keys[domain])
    return keys


def check_receipt_entry(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier]) -> Receipt:
    """Check a receipt leaf: canonical, both the issuer's and the counterparty's signatures valid.

    The counterparty is the beneficiary of a v1 receipt and the author of a v2 one (rewards.receipt);
    a v2 receipt between two accounts of one instance carries that instance's signature alone.
    """
    note, receipt = _parsed(leaf, parse_receipt, "receipt")
    parties = list(dict.fromkeys([url_domain(receipt.actor), url_domain(receipt.counterparty)]))
    if len(parties) == 1 and (receipt.policy < 2 or len(note.signatures) != 1):
        raise VerifyFailure("a receipt within one instance is of policy 2 or later and signed by that instance alone")
    keys = _keys_of(parties, receipt_keys)
    try:
        verified = verify_note(note, keys).verified_names()
    except NoteError as exc:
        raise VerifyFailure(f"bad signature: {exc}") from None
    missing = {k.name for k in keys} - verified
    if missing:
        raise VerifyFailure(f"missing signature by {', '.join(sorted(missing))}")
    return receipt


def _check_home_signed(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier], parse, noun: str,
                       why: str) -> Mint | Expire:
    """Check a leaf only an account's own instance signs (a mint, an expiry): canonical, its key alone."""
    note, entry = _parsed(leaf, parse, noun)
    what = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    key = receipt_keys.get(entry.home)
    if key is None:
        raise VerifyFailure(f"no pinned receipts key for {entry.home}, the instance of {entry.account}")
    try:
        verified = verify_note(note, [key]).verified_names()
    except NoteError as exc:
        raise VerifyFailure(f"bad signature on {what}: {exc}") from None
    if key.name not in verified or len(note.signatures) != 1:
        raise VerifyFailure(f"{what} for {entry.account} must be signed by {key.name} alone: {why}")
    return entry


def check_mint_entry(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier]) -> Mint:
    """Check a mint leaf: canonical, signed by the receipts key of the account's own instance, and by no one else."""
    return _check_home_signed(leaf, receipt_keys, parse_mint, "mint",  # type: ignore[return-value]
                              "only an account's own instance mints for it")


def check_expire_entry(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier]) -> Expire:
    """Check an expiry leaf: canonical, signed by the receipts key of the account's own instance alone."""
    return _check_home_signed(leaf, receipt_keys, parse_expire, "expiry",  # type: ignore[return-value]
                              "only an account's own instance expires its tokens")


def check_spend_entry(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier]) -> Spend:
    """Check a spend leaf: canonical, signed first by the buyer's own instance (the only one that may spend
    its tokens), and countersigned by the maker's instance (no second signature when both are one)."""
    note, spend = _parsed(leaf, parse_spend, "spend")
    keys = _keys_of(dict.fromkeys((spend.home, spend.maker_home)), receipt_keys)
    try:
        verified = verify_note(note, keys).verified_names()
    except NoteError as exc:
        raise VerifyFailure(f"bad signature on the spend: {exc}") from None
    if note.signatures[0].name != keys[0].name:
        raise VerifyFailure(f"a spend of {spend.account} must be issued (signed first) by {keys[0].name}: only an "
                            "account's own instance spends its tokens")
    if {k.name for k in keys} - verified or len(note.signatures) != len(keys):
        raise VerifyFailure(f"a spend needs exactly the signatures of {', '.join(k.name for k in keys)}")
    return spend


def check_log_entry(leaf: bytes, receipt_keys: dict[str, Ed25519Verifier]) -> Receipt | Mint | Spend | Expire:
    """Check one log entry: a receipt (both signatures), a mint (its home instance's signature) or a spend."""
    try:
        text = parse_note(leaf).text
    except NoteError as exc:
        raise VerifyFailure(f"not a signed note: {exc}") from None
    if is_mint_text(text):
        return check_mint_entry(leaf, receipt_keys)
    if is_spend_text(text):
        return check_spend_entry(leaf, receipt_keys)
    if is_expire_text(text):
        return check_expire_entry(leaf, receipt_keys)
    return check_receipt_entry(leaf, receipt_keys)


def log_home(origin: str) -> str:
    """The instance (host[:port]) whose log has this origin (`<domain>/rewards/v1`)."""
    return origin.removesuffix(log_origin(""))


@dataclass
class Folded:
    """What a pass over a log's entries found: points per beneficiary, tokens minted per account, counts."""

    totals: dict[str, int]
    tokens: dict[str, int]
    receipts: int
    mints: int


def fold_entries(entries: list[bytes], receipt_keys: dict[str, Ed25519Verifier],
                 advance: Callable[[int], None] | None = None, *, tokens: TokenPolicy | None = None,
                 home: str | None = None) -> Folded:
    """Verify every entry: receipts (duplicate ids fail) and mints (against `tokens`, minted by `home` only).

    `advance(n)` is told every PROGRESS_STEP entries (and of the rest at the end), for a progress bar.
    """
    totals: dict[str, int] = defaultdict(int)
    minted: dict[str, int] = defaultdict(int)
    parsed: list[Receipt | Mint | Spend | Expire] = []
    seen: set[str] = set()
    reported = 0
    for index, leaf in enumerate(entries):
        if advance is not None and index - reported >= PROGRESS_STEP:
            advance(index - reported)
            reported = index
        try:
            entry = check_log_entry(leaf, receipt_keys)
        except VerifyFailure as exc:
            raise VerifyFailure(f"entry {index}: {exc}", "bad-receipt") from None
        parsed.append(entry)
        if isinstance(entry, Mint):
            minted[entry.account] += entry.tokens
            continue
        if isinstance(entry, Spend | Expire):
            continue  # checked together below: each must be covered by the account's tokens
        if entry.id in seen:
            raise VerifyFailure(f"entry {index}: duplicate receipt id {entry.id}", "bad-receipt")
        seen.add(entry.id)
        if entry.is_same_instance and home is not None and url_domain(entry.actor) != home:
            raise VerifyFailure(f"entry {index}: a receipt within {url_domain(entry.actor)} in the log of {home}",
                                "bad-receipt")
        totals[entry.beneficiary] += entry.points
    if advance is not None:
        advance(len(entries) - reported)
    mints = _check_mints(parsed, tokens, home) if minted else 0
    spends = _check_spends(parsed, home) if any(isinstance(e, Spend) for e in parsed) else 0
    expiries = _check_expiries(parsed, tokens, home) if any(isinstance(e, Expire) for e in parsed) else 0
    return Folded(dict(totals), dict(minted), len(parsed) - mints - spends - expiries, mints)


def _check_expiries(parsed: list, tokens: TokenPolicy | None, home: str | None) -> int:
    if tokens is None or home is None:
        raise VerifyFailure("the log holds expiry entries but no token policy is published to check them against",
                            "bad-expiry")
    try:
        return check_expiries(parsed, tokens, home)
    except ExpireRefused as exc:
        raise VerifyFailure(f"expiry refused: {exc}", "bad-expiry") from None


def _check_spends(parsed: list[Receipt | Mint | Spend], home: str | None) -> int:
    if home is None:
        raise VerifyFailure("the log holds spend entries but its instance is not known", "bad-spend")
    try:
        return check_spends(parsed, home)
    except SpendRefused as exc:
        raise VerifyFailure(f"spend refused: {exc}", "bad-spend") from None


def _check_mints(parsed: list[Receipt | Mint | Spend], tokens: TokenPolicy | None, home: str | None) -> int:
    if tokens is None or home is None:
        raise VerifyFailure("the log holds mint entries but no token policy is published to check them against",
                            "bad-mint")
    try:
        return check_mints(parsed, tokens, home)
    except MintRefused as exc:
        raise VerifyFailure(f"mint refused: {exc}", "bad-mint") from None


async def verify_log(client: LogClient, policy: Policy, receipt_keys: dict[str, Ed25519Verifier],
                     previous: WitnessState | None, advance: Advance | None = None,
                     tokens: TokenPolicy | None = None) -> VerifyReport:
    """Full audit of one log; raises VerifyFailure with the reason. Mints are checked against `tokens`.

    `advance` (from `fedserver.progress`) counts each entry twice: once fetched, once its receipt verified.
    """
    data, head = await witnessed(client, policy)
    cp = head.checkpoint
    compare_heads(previous, cp.size, cp.root)
    if advance is not None:
        advance(0, total=2 * cp.size, description=f"fetching {cp.size} entries")
    try:
        entries = await client.entries(cp.size, advance)
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch entries: {exc}", "unavailable") from None
    hashes = [leaf_hash(entry) for entry in entries]
    if cp.size:
        await _check_tiles(client, hashes, cp.root)
    if previous is not None and previous.size and root_from_leaf_hashes(hashes[: previous.size]) != previous.root:
        raise VerifyFailure(f"log rewritten: its first {previous.size} entries no longer match the checkpoint "
                            "seen before", "rewrite")
    if advance is not None:
        advance(0, description=f"verifying {cp.size} receipts")
    folded = fold_entries(entries, receipt_keys, advance, tokens=tokens, home=log_home(cp.origin))
    return VerifyReport(cp.origin, cp.size, cp.root, data, sorted(head.cosigned_at), folded.totals, folded.receipts,
                        folded.mints, folded.tokens, entries)


async def check_head(client: LogClient, policy: Policy, previous: WitnessState | None) -> WitnessState:
    """Incremental monitoring: the new checkpoint must extend the last accepted one (proof from tiles)."""
    data, head = await witnessed(client, policy)
    cp = head.checkpoint
    compare_heads(previous, cp.size, cp.root)
    new = WitnessState(cp.size, cp.root, data)
    if previous is None or previous.size in (0, cp.size):
        return new
    try:
        proof = await client.plan(consistency_plan(previous.size, cp.size), cp.size)
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch tiles for a consistency proof: {exc}", "unavailable") from None
    if not verify_consistency(previous.size, cp.size, previous.root, cp.root, proof):
        raise VerifyFailure(f"log rewritten: size {cp.size} is not consistent with size {previous.size} seen before",
                            "rewrite")
    return new
