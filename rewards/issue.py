"""Issuing receipts: a local user interacted with a remote member's post.

``issue_receipt`` runs in the caller's transaction (the publishing of the Like, Announce
or reply, through the publish hook in rewards/hooks.py): it signs the receipt and queues a
durable delivery row, a job of `fedserver.jobs`. The delivery worker posts it to the
beneficiary's instance; once that instance countersigns, the identical doubly-signed bytes
are appended to our own log and the delivery is closed, in one transaction.

An undo (undo-like, undo-announce) reverses the newest receipt of the interaction,
countersigned or still queued. Its delivery names that receipt's delivery and waits
for it: a reversal is sent only after the receipt is countersigned, and fails unsent
if the receipt is refused for good (rewards/store.py).
"""

from __future__ import annotations

import json
import logging
import time

import aiohttp
import asyncpg

from fedserver.config import Settings
from fedserver.jobs import RETRY, Outcome
from fedserver.jobs.batcher import Batcher
from rewards.context import RewardsContext, RewardsHttp, points_policy
from rewards.endorsing import issue_v2, new_receipt_id
from rewards.keys import ensure_reward_keys
from rewards.logstore import append_entry
from rewards.note import Note, NoteError, parse_note, parse_signature_lines, sign_note, verify_note
from rewards.points import points_for, url_domain
from rewards.receipt import REVERSALS, Receipt, build_receipt, parse_receipt
from rewards.spending import is_spend_delivery, record_countersigned_spend, record_refused_spend
from rewards.store import (
    RECEIPT_DELIVERIES,
    Member,
    ReceiptDelivery,
    claim_daily_points,
    enqueue_receipt_delivery,
    get_member_base_url,
    get_receipt_leaf,
    get_reversible_delivery,
    insert_receipt_index,
    mark_receipt_delivered,
    mark_receipt_failed,
    points_used,
)

log = logging.getLogger("rewards.issue")

FINAL_STATUSES = frozenset({400, 403, 404, 409, 410, 413, 422})


class DeliveryError(Exception):
    """A delivery attempt failed; `final` means never retry."""

    def __init__(self, message: str, status: int | None = None, final: bool = False):
        super().__init__(message)
        self.status = status
        self.final = final


async def issue_receipt(conn: asyncpg.Connection, settings: Settings, kind: str, actor_uri: str, object_uri: str,
                        beneficiary_uri: str, *, now: float | None = None) -> str | None:
    """Sign a receipt for a local actor's interaction and queue its delivery; returns its id.

    Returns None (nothing to do) when the beneficiary is local or on a non-member
    instance, or for an undo with no receipt to reverse. Runs in the caller's
    transaction, so the interaction and its receipt commit together. An undo reverses
    the interaction's receipt even while that one still waits for its countersignature.
    From policy 2 (rewards/endorsing.py) `beneficiary_uri` is the post's author, a local
    author earns too, and a share or reply also issues the curator's receipt: the id
    returned is the author's receipt's.
    """
    domain = settings.instance.domain
    if url_domain(actor_uri) != domain:
        raise ValueError(f"receipts are issued by the actor's instance; {actor_uri} is not on {domain}")
    if settings.rewards.policy_version >= 2:
        ids = await issue_v2(conn, settings, kind, actor_uri, object_uri, beneficiary_uri,
                             time.time() if now is None else now)
        return ids[0] if ids else None
    target = url_domain(beneficiary_uri)
    base_url = await get_member_base_url(conn, target) if target != domain else None
    if base_url is None:
        return None
    now = time.time() if now is None else now
    reverses: int | None = None
    if kind in REVERSALS:
        original = await get_reversible_delivery(conn, kind.removeprefix("undo-"), actor_uri, object_uri)
        if original is None:
            return None
        points, reverses = -original.points, original.id
    else:
        points = await _points(conn, settings, kind, actor_uri, beneficiary_uri, int(now))
    receipt = Receipt(new_receipt_id(domain, now), kind, actor_uri, object_uri, beneficiary_uri, points, int(now))
    keys = await ensure_reward_keys(conn, domain)
    body = sign_note(build_receipt(receipt), [keys.receipts])
    await enqueue_receipt_delivery(conn, receipt, target, f"{base_url}/rewards/receipts", body, reverses)
    return receipt.id


async def _points(conn: asyncpg.Connection, settings: Settings, kind: str, actor: str, beneficiary: str,
                  now: int) -> int:
    policy = points_policy(settings)
    day = now // 86400
    points = points_for(policy, kind, actor, beneficiary, await points_used(conn, actor, day))
    if not await claim_daily_points(conn, actor, day, points, policy.daily_cap):
        points = 0  # a concurrent interaction used the rest of today's budget
    return points


async def post_receipt(session: RewardsHttp, delivery: ReceiptDelivery) -> dict:
    """POST a signed receipt to the beneficiary's instance; returns its JSON answer."""
    headers = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
    try:
        async with session.post(delivery.target_url, data=delivery.body, headers=headers) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if status != 200:
        final = status in FINAL_STATUSES
        raise DeliveryError(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}", status, final)
    try:
        return json.loads(body)
    except ValueError:
        raise DeliveryError("the answer is not JSON", status) from None


def countersigned_leaf(ctx: RewardsContext, member: Member, delivery: ReceiptDelivery, answer: dict) -> bytes:
    """Our signed receipt plus the beneficiary's verified countersignature line."""
    try:
        lines = parse_signature_lines(str(answer.get("countersignature", "")))
        ours = parse_note(delivery.body)
        leaf = Note(ours.text, (ours.signatures[0], lines[0])).encode()
        verify_note(Note(ours.text, (lines[0],)), [member.receipts])  # ours is the one we made: theirs is checked
    except (NoteError, IndexError) as exc:
        raise DeliveryError(f"bad countersignature from {delivery.target_domain}: {exc}") from None
    if len(lines) != 1 or lines[0].name != member.receipts.name:
        raise DeliveryError(f"the countersignature is not by {member.receipts.name}")
    return leaf


async def record_countersigned(conn: asyncpg.Connection, delivery: ReceiptDelivery, leaf: bytes) -> int:
    """In the caller's transaction: append the leaf (once) and close the delivery; returns its index."""
    existing = await get_receipt_leaf(conn, delivery.receipt_id)
    if existing is not None:
        index = existing[0]
    else:
        receipt = parse_receipt(parse_note(leaf).text)
        index = await append_entry(conn, leaf)
        await insert_receipt_index(conn, receipt, index, "issuer")
    await mark_receipt_delivered(conn, delivery.id, index)
    return index


async def attempt_delivery(ctx: RewardsContext, pool: asyncpg.Pool, session: RewardsHttp,
                           delivery: ReceiptDelivery, spends: Batcher | None = None) -> Outcome:
    """One attempt: post, verify the countersignature; the outcome appends to our log as it is recorded.

    A countersigned spend is appended through `spends` (spending.spend_recorder: one commit for the answers
    that come back together) before its outcome is recorded; appended again after a crash, it keeps its index.
    """
    member = await ctx.member(pool, delivery.target_domain)
    try:
        if member is None:
            raise DeliveryError(f"{delivery.target_domain} is no longer a member", final=True)
        leaf = countersigned_leaf(ctx, member, delivery, await post_receipt(session, delivery))
    except DeliveryError as exc:
        return _failure(delivery, exc)
    if spends is not None and is_spend_delivery(delivery):
        index = await spends.submit((delivery.receipt_id, leaf))
        log.info("spend countersigned", extra={"spend": delivery.receipt_id, "index": index})
        return Outcome("delivered", status=200)

    async def append(conn: asyncpg.Connection) -> None:
        if is_spend_delivery(delivery):
            index = await record_countersigned_spend(conn, delivery, leaf)
            await mark_receipt_delivered(conn, delivery.id, index)
        else:
            index = await record_countersigned(conn, delivery, leaf)
        log.info("receipt countersigned", extra={"receipt": delivery.receipt_id, "index": index})

    return Outcome("delivered", status=200, effects=append)


def _failure(delivery: ReceiptDelivery, exc: DeliveryError) -> Outcome:
    """Retry on the jobs schedule; refused for good (its queued reversal with it) when final or out of tries."""
    if not exc.final and delivery.attempts < RECEIPT_DELIVERIES.max_attempts:
        return Outcome(RETRY, str(exc), exc.status)

    async def refuse(conn: asyncpg.Connection) -> None:
        unsent = await mark_receipt_failed(conn, delivery, exc.status, str(exc))
        if is_spend_delivery(delivery):
            await record_refused_spend(conn, delivery, str(exc))
        log.warning("receipt refused", extra={"receipt": delivery.receipt_id, "error": str(exc),
                                              "reversals_not_sent": unsent})

    return Outcome("failed", str(exc), exc.status, effects=refuse)
