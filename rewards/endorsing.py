"""Issuing policy v2 receipts (issue #11): budgets, curation shares, same-instance receipts.

Runs in the caller's transaction (the publishing of the Like, Announce or reply, through
rewards/issue.py). For one endorsement of an author's post by a local actor it applies the
anti-abuse rules of rewards/endorse.py in order: self-interaction issues nothing; the
actor's budget (a locked row) pays up to one full endorsement; the reciprocal-pair weight;
the points (``issued_points``), with the same-instance weight; then the actor's daily cap and,
for a same-instance receipt, this instance's daily quota. A share or a reply also issues the
curator's receipt (curate-share, curate-reply). A receipt whose author lives on another
member instance is queued for that instance's countersignature (rewards/issue.py delivers
it); one between two of our accounts is signed by us alone and appended to our log at once.

An undo reverses the newest unreversed receipt of each kind of the interaction (the author's
and the curator's), as rewards/issue.py did for v1.
"""

from __future__ import annotations

import secrets

import asyncpg

from fedserver.config import Settings
from rewards.context import endorsement_policy, points_policy
from rewards.endorse import full_budget, instance_grant, issued_points, reciprocal_weight, spend_endorsement
from rewards.keys import ensure_reward_keys
from rewards.logstore import append_entry
from rewards.note import sign_note
from rewards.points import DAY_SECONDS, is_self_interaction, url_domain
from rewards.receipt import CURATION_OF, ENDORSEMENTS, REVERSALS, Receipt, build_receipt
from rewards.store import (
    add_instance_points,
    claim_daily_points,
    endorsement_counts,
    enqueue_receipt_delivery,
    get_member_base_url,
    get_reversible_delivery,
    insert_receipt_index,
    local_receipt_history,
    lock_budget,
    lock_instance_days,
    points_used,
    save_budget,
)

Planned = tuple[Receipt, int | None]  # a receipt and the delivery it reverses (cross-instance undo)


def new_receipt_id(domain: str, now: float) -> str:
    """A unique, roughly time-ordered receipt id in our namespace: <domain>/r/<hex ms><random>."""
    return f"{domain}/r/{int(now * 1000):012x}{secrets.token_hex(8)}"


async def issue_v2(conn: asyncpg.Connection, settings: Settings, kind: str, actor: str, obj: str, author: str,
                   now: float) -> list[str]:
    """Sign the policy v2 receipts of one interaction; returns their ids (the author's first), [] if none."""
    domain = settings.instance.domain
    target = url_domain(author)
    same = target == domain
    base_url = None if same else await get_member_base_url(conn, target)
    if is_self_interaction(actor, author) or (not same and base_url is None):
        return []
    if kind in REVERSALS:
        planned = await _reversals(conn, settings, kind, actor, obj, author, same, now)
    else:
        planned = await _endorsement(conn, settings, kind, actor, obj, author, same, now)
    keys = await ensure_reward_keys(conn, domain)
    for receipt, reverses in planned:
        body = sign_note(build_receipt(receipt), [keys.receipts])
        if same:  # no counterparty: our signature alone, straight into our log (witnessed like every entry)
            await insert_receipt_index(conn, receipt, await append_entry(conn, body), "local")
        else:
            await enqueue_receipt_delivery(conn, receipt, target, f"{base_url}/rewards/receipts", body, reverses)
    return [r.id for r, _ in planned]


async def _endorsement(conn: asyncpg.Connection, settings: Settings, kind: str, actor: str, obj: str, author: str,
                       same: bool, now: float) -> list[Planned]:
    rules, policy = endorsement_policy(settings), points_policy(settings)
    second = int(now)
    spent = spend_endorsement(await lock_budget(conn, actor, full_budget(rules, second)), second, rules)
    await save_budget(conn, actor, spent.budget)
    counts = await endorsement_counts(conn, actor, author, second - rules.reciprocal_window_seconds,
                                      sorted(ENDORSEMENTS))
    weight = reciprocal_weight(*counts, rules)
    points, curator = issued_points(policy, kind, spent.units, actor, author, weight, same)
    if same:
        points, curator = await _within_quota(conn, settings, second, points, curator)
    points = await _within_daily_cap(conn, settings, actor, second, points)
    curator = await _within_daily_cap(conn, settings, actor, second, curator)
    domain = settings.instance.domain
    planned: list[Planned] = [(Receipt(new_receipt_id(domain, now), kind, actor, obj, author, points, second,
                                       author, policy.version), None)]
    if kind in CURATION_OF and curator > 0:
        planned.append((Receipt(new_receipt_id(domain, now), CURATION_OF[kind], actor, obj, actor, curator, second,
                                author, policy.version), None))
    return planned


async def _within_quota(conn: asyncpg.Connection, settings: Settings, second: int, *points: int) -> tuple[int, ...]:
    """Same-instance points granted within our own daily quota (instance_grant), in order."""
    key = (settings.instance.domain, second // DAY_SECONDS)
    credited = (await lock_instance_days(conn, [key]))[key]
    granted = []
    for requested in points:
        granted.append(instance_grant(requested, credited, True, endorsement_policy(settings)))
        credited += granted[-1]
    await add_instance_points(conn, {key: sum(granted)})
    return tuple(granted)


async def _within_daily_cap(conn: asyncpg.Connection, settings: Settings, actor: str, second: int,
                            points: int) -> int:
    """Points left of the actor's daily cap (what every countersigning instance also counts)."""
    if points <= 0:
        return 0
    cap, day = settings.rewards.daily_cap, second // DAY_SECONDS
    points = max(0, min(points, cap - await points_used(conn, actor, day)))
    return points if await claim_daily_points(conn, actor, day, points, cap) else 0


async def _reversals(conn: asyncpg.Connection, settings: Settings, kind: str, actor: str, obj: str, author: str,
                     same: bool, now: float) -> list[Planned]:
    """The undo of the interaction's author receipt and, for a share, of its curator receipt."""
    base = kind.removeprefix("undo-")
    planned: list[Planned] = []
    for original in (base, CURATION_OF.get(base)):
        if original is None:
            continue
        found = await (_local_reversible(conn, original, actor, obj) if same
                       else _delivered_reversible(conn, original, actor, obj))
        if found is not None:
            points, reverses = found
            earner = actor if original in CURATION_OF.values() else author
            receipt = Receipt(new_receipt_id(settings.instance.domain, now), f"undo-{original}", actor, obj, earner,
                              -points, int(now), author, points_policy(settings).version)
            planned.append((receipt, reverses))
    return planned


async def _delivered_reversible(conn: asyncpg.Connection, kind: str, actor: str, obj: str
                                ) -> tuple[int, int | None] | None:
    original = await get_reversible_delivery(conn, kind, actor, obj)
    return None if original is None else (original.points, original.id)


async def _local_reversible(conn: asyncpg.Connection, kind: str, actor: str, obj: str) -> tuple[int, None] | None:
    """The newest same-instance receipt not reversed yet (an undo pops the newest, as rewards/balance.py folds)."""
    open_points: list[int] = []
    for _, points, undo in await local_receipt_history(conn, kind, actor, obj):
        if not undo:
            open_points.append(points)
        elif open_points:
            open_points.pop()
    return (open_points[-1], None) if open_points else None
