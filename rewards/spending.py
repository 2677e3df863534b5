"""Paying with tokens: the buyer's instance debits and issues a spend, the maker's instance countersigns it.

The buyer's home instance is authoritative for the buyer's balance. `issue_spend` runs in the
transaction that creates the order: one guarded UPDATE takes the tokens from the wallet (or the
order is refused at once), the spend is signed and either appended to our log at once (the maker
is on this instance) or queued for the maker's instance like a receipt (rewards/issue.py delivers
it; `record_countersigned_spend` appends the doubly-signed bytes when it comes back, and
`record_refused_spend` gives the tokens back when it is refused for good). So the tokens are
debited exactly when the order exists, and a kill -9 anywhere leaves either the spend on its
way (the job survives), completed on both sides, or refused with the tokens returned.

`issue_undo` returns the tokens of an order that ended cancelled or rejected; the undo waits for
its spend's countersignature, and the tokens come back when the undo is countersigned.

On the maker's side, `check_spend` does every check that needs no order (a member's signature,
the buyer lives on the issuer, the maker lives here, canonical text, recent) and countersigns;
`append_spend` records it once (a replay returns the same countersignature; a second spend for
the same order, or an undo of nothing, is refused). What the order says (listing, price,
state) is the storefront's to check, in the same transaction.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

import asyncpg

from fedserver.config import Settings
from fedserver.jobs.batcher import Batcher
from rewards import spend_store
from rewards.context import RewardsContext
from rewards.keys import ensure_reward_keys
from rewards.logstore import append_entries, append_entry
from rewards.note import NoteSignature, parse_note, sign_note
from rewards.receipt import ReceiptError
from rewards.receipts import MAX_FUTURE_SECONDS, ReceiptRefused, _issuer_verified, _parse_signed, countersign
from rewards.spend import Spend, build_spend, parse_spend, undo_of
from rewards.spend_store import SpendRow
from rewards.store import ReceiptDelivery, get_member_base_url

log = logging.getLogger("rewards.spending")


class NotEnoughTokens(Exception):
    """The wallet does not cover the spend; `available` is what it holds."""

    def __init__(self, needed: int, available: int):
        super().__init__(f"not enough tokens: this costs {needed}, the account has {available}")
        self.needed = needed
        self.available = available


class SpendNotPossible(Exception):
    """A spend this instance cannot issue (tokens off, the maker's instance not a member); the message says why."""


def new_spend_id(domain: str, now: float) -> str:
    """A unique, roughly time-ordered spend id in our namespace: <domain>/s/<hex ms><random>."""
    return f"{domain}/s/{int(now * 1000):012x}{secrets.token_hex(8)}"


async def issue_spend(conn: asyncpg.Connection, settings: Settings, *, account: str, order: str, listing: str,
                      seller: str, quantity: int, tokens: int, now: float | None = None) -> Spend:
    """Debit the buyer and issue the spend of a new order, in the caller's transaction.

    NotEnoughTokens (nothing written) when the wallet does not cover it; SpendNotPossible when tokens
    are off here or the maker's instance is not a member of our reward federation.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("issue_spend runs in the transaction that creates the order")
    if not settings.rewards.tokens_enabled:
        raise SpendNotPossible("tokens are turned off on this instance ([rewards] tokens_enabled)")
    now = time.time() if now is None else now
    domain = settings.instance.domain
    spend = Spend(new_spend_id(domain, now), "spend", account, order, listing, seller, quantity, tokens, int(now))
    if spend.home != domain:
        raise SpendNotPossible(f"{account} is not an account of {domain}: an instance spends its own accounts' tokens")
    target = await _target(conn, spend, domain)
    if await spend_store.debit(conn, account, tokens) is None:
        raise NotEnoughTokens(tokens, await spend_store.wallet_available(conn, account))
    await _send(conn, domain, spend, target, reverses=None)
    return spend


async def issue_undo(conn: asyncpg.Connection, settings: Settings, order: str, now: float | None = None) -> Spend | None:
    """Return the tokens of an order that ended without being fulfilled (cancelled or rejected), once.

    None when the order was not paid in tokens, its spend was refused (its tokens are back already),
    or it was undone before.
    """
    original = await spend_store.get_spend(conn, order)
    if original is None or original.role == "counterparty" or original.state == "refused":
        return None
    if await spend_store.get_spend(conn, order, "undo-spend") is not None:
        return None
    now = time.time() if now is None else now
    domain = settings.instance.domain
    undo = undo_of(_spend_of(original, now), new_spend_id(domain, now), int(now))
    target = await _target(conn, undo, domain) if undo.maker_home != domain else None
    await _send(conn, domain, undo, target, reverses=original.delivery_id)
    return undo


def _spend_of(row: SpendRow, now: float) -> Spend:
    return Spend(row.spend_id, row.kind, row.account_uri, row.order_uri, row.listing_uri, row.seller_uri,
                 row.quantity, row.tokens, int(now))


async def _target(conn: asyncpg.Connection, spend: Spend, domain: str) -> str | None:
    if spend.maker_home == domain:
        return None
    base_url = await get_member_base_url(conn, spend.maker_home)
    if base_url is None:
        raise SpendNotPossible(f"{spend.maker_home} is not a member of this instance's reward federation: "
                               "it cannot take tokens from here")
    return f"{base_url}/rewards/spends"


async def _send(conn: asyncpg.Connection, domain: str, spend: Spend, target: str | None,
                reverses: int | None) -> None:
    keys = await ensure_reward_keys(conn, domain)
    body = sign_note(build_spend(spend), [keys.receipts])
    if target is None:  # buyer and maker both here: signed by us alone, in our log at once
        index = await append_entry(conn, body)
        await spend_store.insert_spend(conn, spend, "local", "countersigned", idx=index)
        if spend.kind == "undo-spend":
            await spend_store.credit(conn, spend.account, spend.tokens)
        log.info("spend appended", extra={"spend": spend.id, "kind": spend.kind, "index": index})
        return
    await spend_store.enqueue_spend(conn, spend, target, body, reverses)


def is_spend_delivery(delivery: ReceiptDelivery) -> bool:
    """True when a queued delivery carries a spend rather than a receipt."""
    return delivery.body.startswith(b"rewards/spend/v1\n")


async def record_countersigned_spend(conn: asyncpg.Connection, delivery: ReceiptDelivery, leaf: bytes) -> int:
    """In the caller's transaction: append the countersigned spend (once), close it; an undo gives the tokens back."""
    row = await spend_store.get_spend_for_update(conn, delivery.receipt_id)
    assert row is not None, f"no spend {delivery.receipt_id} for delivery {delivery.id}"
    if row.idx is not None:
        return row.idx
    index = await append_entry(conn, leaf)
    await spend_store.mark_spend(conn, row.spend_id, "countersigned", idx=index)
    if row.kind == "undo-spend":
        await spend_store.credit(conn, row.account_uri, row.tokens)
    return index


async def record_countersigned_spends(conn: asyncpg.Connection, items: list[tuple[str, bytes]]) -> list[int]:
    """Append many countersigned spends (spend id, leaf) in one transaction: one turn of the log's lock and one
    commit for all the answers that came back together; each already in the log keeps its index."""
    async with conn.transaction():
        rows = await spend_store.lock_spends(conn, sorted({sid for sid, _ in items}))
        fresh: dict[str, bytes] = {}
        for sid, leaf in items:
            row = rows.get(sid)
            if row is None:
                raise LookupError(f"no spend {sid} was issued here")
            if row.idx is None and sid not in fresh:
                fresh[sid] = leaf
        placed: dict[str, int] = {sid: row.idx for sid, row in rows.items() if row.idx is not None}
        if fresh:
            first = await append_entries(conn, list(fresh.values()))
            appended = [(sid, first + n) for n, sid in enumerate(fresh)]
            await spend_store.mark_spends_countersigned(conn, appended)
            placed.update(appended)
            for sid, _ in appended:
                if rows[sid].kind == "undo-spend":
                    await spend_store.credit(conn, rows[sid].account_uri, rows[sid].tokens)
    return [placed[sid] for sid, _ in items]


def spend_recorder(pool: asyncpg.Pool) -> Batcher[tuple[str, bytes], int]:
    """The group commit of countersigned spends for one delivery worker (one flusher: one holder of the lock)."""
    return Batcher(pool, record_countersigned_spends, name="token-spend-appends", max_batch=256, max_flushers=1)


async def record_refused_spend(conn: asyncpg.Connection, delivery: ReceiptDelivery, error: str) -> None:
    """In the caller's transaction: a spend refused for good gives its tokens back (an undo refused: they stay)."""
    row = await spend_store.get_spend_for_update(conn, delivery.receipt_id)
    if row is None or row.state != "pending":
        return
    await spend_store.mark_spend(conn, row.spend_id, "refused", reason=error)
    if row.kind == "spend":
        await spend_store.credit(conn, row.account_uri, row.tokens)
        undo = await spend_store.get_spend(conn, row.order_uri, "undo-spend")
        if undo is not None and undo.state == "pending":  # never sent (rewards.store.mark_receipt_failed)
            await spend_store.mark_spend(conn, undo.spend_id, "refused", reason="its spend was refused: nothing to return")
    else:
        log.error("undo-spend refused by the maker's instance: the tokens stay spent",
                  extra={"spend": row.spend_id, "order": row.order_uri, "error": error})


# The maker's side


@dataclass(frozen=True)
class CheckedSpend:
    """A spend that passed the checks that need no order, with our countersignature."""

    spend: Spend
    text: str
    leaf: bytes
    countersignature: NoteSignature


@dataclass(frozen=True)
class SpendAccepted:
    """A spend in our log: its index and our countersignature line."""

    index: int
    countersignature: str
    duplicate: bool = False


async def check_spend(ctx: RewardsContext, conn: asyncpg.Connection | asyncpg.Pool, body: bytes,
                      now: int | None = None) -> CheckedSpend:
    """A member's spend, checked as far as it can be without the order, and countersigned (ReceiptRefused if not)."""
    note = _parse_signed(body)
    issuer = await _issuer_verified(ctx, conn, note)
    try:
        spend = parse_spend(note.text)
    except ReceiptError as exc:
        raise ReceiptRefused(400, f"not a rewards/spend/v1: {exc}") from None
    if spend.home != issuer:
        raise ReceiptRefused(422, f"{issuer} cannot spend the tokens of {spend.account}: an instance spends its own "
                                  "accounts' tokens only")
    if spend.maker_home != ctx.keys.domain:
        raise ReceiptRefused(422, f"the maker {spend.seller} is not on this instance")
    now = int(time.time()) if now is None else now
    if spend.time > now + MAX_FUTURE_SECONDS or spend.time < now - ctx.settings.rewards.receipt_max_age:
        raise ReceiptRefused(422, f"spend time {spend.time} is outside the accepted window")
    counter, leaf = countersign(ctx, note)
    return CheckedSpend(spend, note.text, leaf, counter)


async def spend_to_append(conn: asyncpg.Connection, checked: CheckedSpend, known: SpendRow | None | bool = False
                          ) -> SpendAccepted | None:
    """In the caller's transaction, before a checked spend enters our log: None if it is to be appended
    (`append_spends`), its acceptance if it is a replay of one in the log (ReceiptRefused if it may not be).

    `known`: the spend with its id here, when the caller looked it up already (None: there is none).
    """
    spend = checked.spend
    if known is False:
        known = await spend_store.get_spend_by_id(conn, spend.id)
    if known is not None:
        stored = parse_note(await spend_store.get_leaf(conn, known.idx)) if known.idx is not None else None
        if stored is None or stored.text != checked.text:
            raise ReceiptRefused(409, "this spend id was already used for a different spend")
        return SpendAccepted(known.idx, checked.countersignature.line(), duplicate=True)  # type: ignore[arg-type]
    paid = await spend_store.get_spend(conn, spend.order)
    if spend.kind == "spend" and paid is not None:
        raise ReceiptRefused(409, f"order {spend.order} is paid already, by spend {paid.spend_id}")
    if spend.kind == "undo-spend":
        if (paid is None or paid.idx is None or paid.account_uri != spend.account or paid.tokens != spend.tokens
                or paid.seller_uri != spend.seller):
            raise ReceiptRefused(409, f"this undo-spend returns no spend of order {spend.order} we countersigned")
        if await spend_store.get_spend(conn, spend.order, "undo-spend") is not None:
            raise ReceiptRefused(409, f"the spend of order {spend.order} was returned already")
    return None


async def append_spends(conn: asyncpg.Connection, spends: list[CheckedSpend]) -> list[SpendAccepted]:
    """In the caller's transaction: append spends `spend_to_append` let through (of distinct orders) to our log.
    One turn of the log's lock for all, held until the caller commits: do every check before it."""
    first = await append_entries(conn, [checked.leaf for checked in spends])
    await spend_store.insert_spends(conn, [(checked.spend, first + n) for n, checked in enumerate(spends)],
                                    "counterparty", "countersigned")
    return [SpendAccepted(first + n, checked.countersignature.line()) for n, checked in enumerate(spends)]


async def append_spend(conn: asyncpg.Connection, checked: CheckedSpend, known: SpendRow | None | bool = False
                       ) -> SpendAccepted:
    """In the caller's transaction: record a checked spend in our log once (ReceiptRefused if it may not be)."""
    done = await spend_to_append(conn, checked, known)
    return done if done is not None else (await append_spends(conn, [checked]))[0]
