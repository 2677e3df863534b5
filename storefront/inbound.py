"""Inbound orders and listings: the FEP-0837 activities, and remote Notes that are listings or orders.

Registered with the dispatcher by `register`: `Offer{Agreement}` (an order for a listing here),
`Accept{Offer}` / `Reject{Offer}` (the maker's answer), `Update(Agreement)` (a new state) and
`Create(Document)` (the buyer's Receipt). Each checks that the signer (already bound to the
activity's actor by the inbox) is the party allowed that move; anything else is ignored with
the reason, and changes nothing. The post hook keeps the listing a remote Note carries, and
turns a Mastodon user's direct message that orders ("주문 2개") into an order.
"""

from __future__ import annotations

import logging
import re

import asyncpg

from activities.actor import Actor
from activities.listing import parse_listing
from activities.parse import InboundActivity, RemotePost, ref
from activities.sanitize import html_to_text
from activities.trade import TradeError, announced_state, parse_terms, receipt_agreement
from fedserver.dispatch import DONE, Dispatcher, InboundContext, Result, ignored
from fedserver.federation.inbound.common import remote_actor
from fedserver.repo import actors as actors_repo
from fedserver.repo import status_views

from . import orders, rules, store
from .orders import OrderError
from .rules import MoveRefused

log = logging.getLogger("storefront.inbound")


async def on_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """An order from another server for a listing here: a new order, or a Reject saying why not."""
    try:
        terms = parse_terms(act.object)
    except TradeError as exc:
        return ignored(str(exc))
    buyer = await remote_actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        listing = await store.get_listing_by_uri(conn, terms.listing_id)
        if listing is None or not listing.is_local:
            return ignored("the Agreement is not for a listing of this server")
        try:  # refused before anything is written: no savepoint needed
            order = await orders.receive_offer(conn, ctx.publisher, buyer, act.raw, terms, listing)
        except OrderError as exc:
            seller = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
            await orders.refuse_offer(conn, ctx.publisher, seller, buyer, act.raw, str(exc))  # type: ignore[arg-type]
            return ignored(f"refused: {exc}")
    return DONE if order is not None else ignored("this Offer was already received")


async def _order_answered(conn: asyncpg.Connection, act: InboundActivity) -> store.OrderRow | None:
    order = await store.get_order_by_offer(conn, act.object_id) if act.object_id else None
    result = ref(act.raw.get("result"))
    if order is None and result:
        order = await store.get_order_by_uri(conn, result)
    return order


async def _move(ctx: InboundContext, conn: asyncpg.Connection, order: store.OrderRow | None, actor: str,
                event: str, *, only: str | None, reason: str = "", details: str = "") -> Result:
    """Apply a move announced by another server, if `actor` is the party allowed it."""
    if order is None:
        return ignored("no such order here")
    party = orders.party_of(order, actor)
    if party is None or (only is not None and party != only):
        return ignored(f"only the {only or 'buyer or seller'} of the order may {event} it")
    if (order.seller_is_local if party == "seller" else order.buyer_is_local):
        return ignored("a local party's move cannot come from another server")
    try:  # a remote party's move reserves no stock here: refused before anything is written
        await orders.move(conn, ctx.publisher, order, event, party, reason=reason, details=details)
    except (MoveRefused, OrderError) as exc:
        return ignored(str(exc))
    return DONE


def _text(value: object) -> str:
    return html_to_text(value, max_chars=1000).strip() if isinstance(value, str) else ""


async def on_accept_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """The maker accepted an order a local buyer placed."""
    result = act.raw.get("result")
    async with ctx.pool.acquire() as conn, conn.transaction():
        order = await _order_answered(conn, act)
        details = _text(result.get("content")) if isinstance(result, dict) else ""
        if order is not None and act.actor == order.seller_uri:
            order = await _take_stated_total(conn, order, result)
        return await _move(ctx, conn, order, act.actor, "accept", only="seller", details=details)


async def _take_stated_total(conn: asyncpg.Connection, order: store.OrderRow, result: object) -> store.OrderRow | None:
    """The total the maker's Accept states (the goods and shipping), when it is the goods' price or more."""
    try:
        total = parse_terms(result).total
    except TradeError:
        return order
    subtotal = order.unit_price * order.quantity
    if order.state != "requested" or total is None or total == order.total_krw \
            or not subtotal <= total <= subtotal + 10_000_000:
        return order
    return await store.set_order_total(conn, order.id, shipping_krw=total - subtotal, total_krw=total)


async def on_reject_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """The maker refused an order a local buyer placed."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        order = await _order_answered(conn, act)
        return await _move(ctx, conn, order, act.actor, "reject", only="seller",
                           reason=_text(act.raw.get("content")) or "reason not given")


async def on_update_agreement(ctx: InboundContext, act: InboundActivity) -> Result:
    """A new state of an order, from the party allowed that move."""
    try:
        event = rules.EVENT_TO[announced_state(act.object)]
    except TradeError as exc:
        return ignored(str(exc))
    async with ctx.pool.acquire() as conn, conn.transaction():
        order = await store.get_order_by_uri(conn, act.object_id) if act.object_id else None
        return await _move(ctx, conn, order, act.actor, event, only=None,
                           reason=_text((act.object or {}).get("content")) if event == "cancel" else "")


async def on_create_document(ctx: InboundContext, act: InboundActivity) -> Result:
    """The buyer's Receipt: the order is completed."""
    try:
        agreement = receipt_agreement(act.object)
    except TradeError as exc:
        return ignored(str(exc))
    async with ctx.pool.acquire() as conn, conn.transaction():
        order = await store.get_order_by_uri(conn, agreement)
        return await _move(ctx, conn, order, act.actor, "complete", only="buyer")


def _listing_ids(base_url: str, post: RemotePost) -> list[tuple[int, bool]]:
    """(id, replied to) of this server's listings a post replies to or links."""
    pattern = re.compile(re.escape(f"{base_url}/listings/") + r"(\d{1,18})(?![\d/])")
    found = [(int(m.group(1)), True) for m in pattern.finditer(post.in_reply_to or "")]
    found += [(int(m.group(1)), False) for m in pattern.finditer(post.content or "")]
    return list(dict.fromkeys(found))


async def on_post_stored(conn: asyncpg.Connection, ctx: InboundContext, post: RemotePost, author: Actor) -> None:
    """Keep the listing a remote Note carries; answer a direct message that orders one of our listings."""
    listing = parse_listing(post.raw)
    if listing is not None and listing.attributed_to == author.uri:
        object_id = await status_views.get_object_id(conn, post.id)
        if object_id is not None:
            await store.upsert_remote_listing(conn, object_id, author.id, listing)
    if post.visibility == "direct" and post.raw.get("context") is None:
        await _direct_order(conn, ctx, post, author)


async def _direct_order(conn: asyncpg.Connection, ctx: InboundContext, post: RemotePost, author: Actor) -> None:
    quantity = rules.order_quantity(html_to_text(post.content, max_chars=2000))
    if quantity is None:
        return
    for listing_id, replied_to in _listing_ids(ctx.settings.base_url, post):
        listing = await store.get_listing(conn, listing_id)
        if listing is None or not listing.is_local or not (replied_to or listing.seller_uri in post.mentions):
            continue  # a link to a listing is an order only in a message to its maker
        if author.deleted_at is not None:
            log.info("order by direct message from a gone actor ignored", extra={"note": post.id})
            return
        seller = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
        assert seller is not None
        try:  # refused before anything is written
            await orders.receive_direct_order(conn, ctx.publisher, author, listing, quantity, post.id,
                                              html_to_text(post.content, max_chars=1000))
        except OrderError as exc:
            await orders.refuse_direct_order(conn, ctx.publisher, seller, author, str(exc), post.id)
        return


def agreement_of(body: dict) -> str | None:
    """The order (Agreement id) an order activity is about: activities about different orders run side by side."""
    obj = body.get("object")
    if not isinstance(obj, dict):
        return None
    if obj.get("type") == "Document":  # a Receipt names its order in `context`
        return obj["context"] if isinstance(obj.get("context"), str) else None
    for candidate in (obj, body.get("result"), obj.get("object")):  # Offer/Update, Accept's result, Reject's Offer
        if isinstance(candidate, dict) and candidate.get("type") == "Agreement" and isinstance(candidate.get("id"), str):
            return candidate["id"]
    return None


def register(dispatcher: Dispatcher) -> None:
    """Route the FEP-0837 order activities, and read every stored remote post."""
    dispatcher.register("Offer", "Agreement", on_offer)
    dispatcher.register("Accept", "Offer", on_accept_offer)
    dispatcher.register("Reject", "Offer", on_reject_offer)
    dispatcher.register("Update", "Agreement", on_update_agreement)
    dispatcher.register("Create", "Document", on_create_document)
    dispatcher.on_post(on_post_stored)
    for kind, object_type in (("Offer", "Agreement"), ("Accept", "Offer"), ("Reject", "Offer"),
                              ("Update", "Agreement"), ("Create", "Document")):
        dispatcher.order_by(kind, object_type, agreement_of)
