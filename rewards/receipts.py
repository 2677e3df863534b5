"""Receiving receipts: check an issuer's receipt, countersign it, append it to our log.

Checks, in the request handler (no database but the member keys): a canonical
signed note with exactly one signature; the signer is the pinned receipts key of
a member domain; a valid rewards/receipt/v1; the points follow the policy
(self-interaction earns nothing); the id is in the issuer's namespace; the actor
lives on the issuer; the beneficiary is on this instance; the time is recent.
Then, in the batch transaction: a known id returns the existing entry (same text)
or is refused (other text); the beneficiary is a live local account owning the
live object; a reversal (undo-*) undoes an earlier countersigned receipt of its kind,
actor and object, once and for no more points; the actor's daily cap; for policy 2
receipts the issuing instance's daily quota (rewards.endorse.instance_grant: a receipt the
quota cannot cover in full is refused). Policy 2 receipts (rewards/receipt/v2) name the
object's author: the author's instance (us) countersigns both the author's receipt and the
curator's (curate-share, curate-reply, which credit the actor), and their points are
bounded by base points x weights (rewards.points.max_points); the issuer's budget is its
own, recomputable from its log. v1 receipts are checked with v1 rules. Accepted
receipts are appended in batches: one transaction and one commit for all the
requests that arrived while the previous batch was committing (group commit), with
one lookup query for the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg

from rewards.context import RewardsContext, endorsement_policy
from rewards.endorse import instance_grant
from rewards.keys import domain_of_receipts_key
from rewards.logstore import append_entries
from rewards.note import Note, NoteError, NoteSignature, parse_note, verify_note
from rewards.points import PointsError, check_points, receipt_day, url_domain
from rewards.receipt import Receipt, ReceiptError, parse_receipt
from rewards.store import (
    add_instance_points,
    claim_daily_points,
    claim_daily_points_many,
    countersigned_pairs,
    lock_instance_days,
    lookup_receipts,
)

log = logging.getLogger("rewards.receipts")

MAX_RECEIPT_BYTES = 8192
MAX_FUTURE_SECONDS = 3600
MAX_BATCH = 512


class ReceiptRefused(Exception):
    """A receipt we will not countersign: HTTP status and the reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Accepted:
    """A receipt in our log: its index, our countersignature line and the full leaf."""

    index: int
    countersignature: str
    leaf: bytes
    duplicate: bool = False


@dataclass(frozen=True)
class CheckedReceipt:
    """A receipt that passed the stateless checks, with our countersignature."""

    receipt: Receipt
    leaf: bytes
    countersignature: NoteSignature
    text: str


def _parse_signed(body: bytes) -> Note:
    if len(body) > MAX_RECEIPT_BYTES:
        raise ReceiptRefused(413, f"a receipt is at most {MAX_RECEIPT_BYTES} bytes")
    try:
        note = parse_note(body)
    except NoteError as exc:
        raise ReceiptRefused(400, f"not a signed note: {exc}") from None
    if note.encode() != body:
        raise ReceiptRefused(400, "the signed note is not in canonical form")
    if len(note.signatures) != 1:
        raise ReceiptRefused(400, "a receipt must arrive with exactly one signature, its issuer's")
    return note


async def _issuer_verified(ctx: RewardsContext, conn: asyncpg.Connection, note: Note) -> str:
    name = note.signatures[0].name
    domain = domain_of_receipts_key(name)
    if domain is None:
        raise ReceiptRefused(403, f"{name!r} is not an instance's receipts key")
    member = await ctx.member(conn, domain)
    if member is None or domain == ctx.keys.domain:
        raise ReceiptRefused(403, f"unknown issuer {domain}: not a member of this instance's federation")
    try:
        verify_note(note, [member.receipts])
    except NoteError:
        raise ReceiptRefused(403, f"bad signature: not signed by the pinned receipts key of {domain}") from None
    return domain


def _check_fields(ctx: RewardsContext, receipt: Receipt, issuer: str, now: int) -> None:
    try:
        check_points(ctx.points, receipt)
    except PointsError as exc:
        raise ReceiptRefused(422, str(exc)) from None
    if not receipt.id.startswith(f"{issuer}/"):
        raise ReceiptRefused(422, f"receipt id must start with the issuer's domain {issuer}/")
    if url_domain(receipt.actor) != issuer:
        raise ReceiptRefused(422, f"the actor {receipt.actor} does not live on the issuer {issuer}")
    if url_domain(receipt.counterparty) != ctx.keys.domain:
        who = "author" if receipt.author is not None else "beneficiary"
        raise ReceiptRefused(422, f"the {who} {receipt.counterparty} is not on this instance")
    if receipt.time > now + MAX_FUTURE_SECONDS or receipt.time < now - ctx.settings.rewards.receipt_max_age:
        raise ReceiptRefused(422, f"receipt time {receipt.time} is outside the accepted window")


async def check_receipt(ctx: RewardsContext, conn: asyncpg.Connection | asyncpg.Pool, body: bytes,
                        now: int | None = None) -> CheckedReceipt:
    """Every check that needs no database (but the member keys), then our countersignature."""
    note = _parse_signed(body)
    issuer = await _issuer_verified(ctx, conn, note)
    try:
        receipt = parse_receipt(note.text)
    except ReceiptError as exc:
        raise ReceiptRefused(400, f"not a rewards/receipt/v1: {exc}") from None
    _check_fields(ctx, receipt, issuer, int(time.time()) if now is None else now)
    counter, leaf = countersign(ctx, note)
    return CheckedReceipt(receipt, leaf, counter, note.text)


def countersign(ctx: RewardsContext, note: Note) -> tuple[NoteSignature, bytes]:
    """Our countersignature of an issuer's singly-signed note, and the doubly-signed leaf it makes."""
    ours = ctx.keys.receipts
    counter = NoteSignature(ours.name, ours.key_id, ours.sign(note.text.encode("utf-8")))
    return counter, Note(note.text, (note.signatures[0], counter)).encode()


def _duplicate(ctx: RewardsContext, note: Note, index: int, leaf: bytes) -> Accepted:
    stored = parse_note(leaf)
    if stored.text != note.text:
        raise ReceiptRefused(409, "this receipt id was already used for a different receipt")
    ours = [s for s in stored.signatures if s.name == ctx.keys.receipts.name]
    line = ours[0].line() if ours else ""
    return Accepted(index, line, leaf, duplicate=True)


@dataclass
class _Pending:
    checked: CheckedReceipt
    future: asyncio.Future


class ReceiptBatcher:
    """Appends checked receipts in group-committed batches (one writer task per process)."""

    def __init__(self, ctx: RewardsContext, pool: asyncpg.Pool, max_batch: int = MAX_BATCH):
        self.ctx = ctx
        self.pool = pool
        self.max_batch = max_batch
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the writer task."""
        self.task = asyncio.create_task(self._run(), name="rewards-receipt-batcher")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish queued work (for up to `timeout` seconds), then stop the writer task."""
        if self.task is not None:
            deadline = time.monotonic() + timeout
            while not self.queue.empty() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def submit(self, checked: CheckedReceipt) -> Accepted:
        """Queue a checked receipt and wait until it is durably in the log."""
        pending = _Pending(checked, asyncio.get_running_loop().create_future())
        await self.queue.put(pending)
        return await pending.future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._commit_with_retry(batch)
            except Exception as exc:  # the requests get a 503 and the issuer retries
                log.exception("receipt batch failed")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(ReceiptRefused(503, f"could not append: {type(exc).__name__}"))

    async def _commit_with_retry(self, batch: list[_Pending]) -> None:
        for attempt in range(3):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    results = await append_checked(self.ctx, conn, [p.checked for p in batch])
                break
            except (asyncpg.UniqueViolationError, asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                if attempt == 2:
                    raise  # another process appended one of these ids concurrently; it is seen next time
        for pending, result in zip(batch, results):
            if isinstance(result, Exception):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)


async def append_checked(ctx: RewardsContext, conn: asyncpg.Connection, items: list[CheckedReceipt]
                         ) -> list[Accepted | ReceiptRefused]:
    """In the caller's transaction: dedupe, check ownership, apply daily caps, append, index."""
    results: list[Accepted | ReceiptRefused | None] = [None] * len(items)
    known, owners = await lookup_receipts(conn, [c.receipt for c in items])
    fresh: list[int] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        rid = item.receipt.id
        if rid in known or rid in seen:
            results[i] = _in_batch_duplicate(ctx, item, known.get(rid), items[seen[rid]] if rid in seen else None)
            continue
        seen[rid] = i
        results[i] = _ownership_refusal(item.receipt, owners[i])
        if results[i] is None:
            fresh.append(i)
    fresh = await _reversals_that_reverse(conn, items, fresh, results)
    accepted = await _within_caps(ctx, conn, items, fresh, results)
    if accepted:
        first = await append_entries(conn, [items[i].leaf for i in accepted])
        await _index(conn, [(items[i].receipt, first + n) for n, i in enumerate(accepted)])
        for n, i in enumerate(accepted):
            results[i] = Accepted(first + n, items[i].countersignature.line(), items[i].leaf)
    _resolve_batch_duplicates(items, results, seen)
    return results  # type: ignore[return-value]


def _ownership_refusal(receipt: Receipt, owner: str | None) -> ReceiptRefused | None:
    if owner is None:
        return ReceiptRefused(422, f"no live post {receipt.object} on this instance")
    if owner != receipt.counterparty:
        return ReceiptRefused(422, f"{receipt.object} does not belong to {receipt.counterparty}")
    return None


async def _reversals_that_reverse(conn: asyncpg.Connection, items: list[CheckedReceipt], fresh: list[int],
                                  results: list) -> list[int]:
    """Keep a reversal only if it undoes an earlier receipt we countersigned (same kind, actor, object and
    beneficiary), once per receipt, and for no more points than are left of them: a member instance
    cannot drive a local account's points down with reversals of nothing."""
    reversals = [items[i].receipt for i in fresh if items[i].receipt.is_reversal]
    if not reversals:
        return fresh
    state = await countersigned_pairs(conn, reversals)
    kept = []
    for i in fresh:
        r = items[i].receipt
        if r.is_reversal:
            base = r.kind.removeprefix("undo-")
            done, given = state.get((r.actor, r.object, r.beneficiary, base), (0, 0))
            undone, taken = state.get((r.actor, r.object, r.beneficiary, r.kind), (0, 0))
            if undone >= done or given + taken + r.points < 0:
                results[i] = ReceiptRefused(422, f"an {r.kind} receipt must reverse an earlier {base} receipt of "
                                                 "the same actor and object, once, and for no more points than it")
                continue
            state[(r.actor, r.object, r.beneficiary, r.kind)] = (undone + 1, taken + r.points)
        kept.append(i)
    return kept


async def _within_caps(ctx: RewardsContext, conn: asyncpg.Connection, items: list[CheckedReceipt],
                       fresh: list[int], results: list) -> list[int]:
    """Claim daily points for the batch in one statement; actors over the cap are retried one by one."""
    claims: dict[tuple[str, int], int] = {}
    for i in fresh:
        key = (items[i].receipt.actor, receipt_day(items[i].receipt))
        claims[key] = claims.get(key, 0) + max(items[i].receipt.points, 0)
    granted = await claim_daily_points_many(conn, claims, ctx.points.daily_cap)
    accepted = []
    for i in fresh:
        r = items[i].receipt
        if (r.actor, receipt_day(r)) in granted or await claim_daily_points(
                conn, r.actor, receipt_day(r), r.points, ctx.points.daily_cap):
            accepted.append(i)
        else:
            results[i] = ReceiptRefused(422, f"daily cap of {ctx.points.daily_cap} points reached for this actor")
    return await _within_quotas(ctx, conn, items, accepted, results)


async def _within_quotas(ctx: RewardsContext, conn: asyncpg.Connection, items: list[CheckedReceipt],
                         fresh: list[int], results: list) -> list[int]:
    """Policy 2: points a day from each member instance stay within instance_daily_quota (rows locked)."""
    keys = {i: (url_domain(items[i].receipt.actor), receipt_day(items[i].receipt)) for i in fresh
            if items[i].receipt.policy >= 2 and items[i].receipt.points > 0}
    credited = await lock_instance_days(conn, list(keys.values()))
    granted: dict[tuple[str, int], int] = {}
    rules = endorsement_policy(ctx.settings)
    accepted = []
    for i in fresh:
        key, points = keys.get(i), items[i].receipt.points
        if key is not None and instance_grant(points, credited[key], True, rules) < points:
            results[i] = ReceiptRefused(422, f"daily quota of {rules.instance_daily_quota} points from {key[0]} "
                                             "reached")
            continue
        if key is not None:
            credited[key] += points
            granted[key] = granted.get(key, 0) + points
        accepted.append(i)
    await add_instance_points(conn, granted)
    return accepted


def _in_batch_duplicate(ctx: RewardsContext, item: CheckedReceipt, stored: tuple[int, bytes] | None,
                        first: CheckedReceipt | None) -> Accepted | ReceiptRefused | None:
    if stored is not None:
        try:
            return _duplicate(ctx, parse_note(item.leaf), *stored)
        except ReceiptRefused as exc:
            return exc
    assert first is not None
    if first.text != item.text:
        return ReceiptRefused(409, "this receipt id was already used for a different receipt")
    return None  # resolved once the first copy has its index


def _resolve_batch_duplicates(items: list[CheckedReceipt], results: list, seen: dict[str, int]) -> None:
    for i, result in enumerate(results):
        if result is None:
            first = results[seen[items[i].receipt.id]]
            if isinstance(first, Accepted):
                first = Accepted(first.index, first.countersignature, first.leaf, duplicate=True)
            results[i] = first


async def _index(conn: asyncpg.Connection, rows: list[tuple[Receipt, int]]) -> None:
    await conn.copy_records_to_table(
        "rewards_receipts",
        records=[(r.id, idx, r.kind, r.actor, r.object, r.beneficiary, r.points,
                  datetime.fromtimestamp(r.time, timezone.utc), "counterparty") for r, idx in rows],
        columns=["receipt_id", "idx", "kind", "actor_uri", "object_uri", "beneficiary_uri", "points", "issued_at",
                 "role"],
    )
