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
from collections import Counter
from dataclasses import replace

import asyncpg

from activities.actor import Actor
from activities.listing import KRW, parse_listing, same_currency
from activities.parse import InboundActivity, RemotePost, ref
from activities.sanitize import html_to_text
from activities.trade import Terms, TradeError, announced_state, parse_terms, receipt_agreement
from fedserver.dispatch import DONE, REFERENCE, BatchItem, Dispatcher, Handler, InboundContext, Result, ignored
from fedserver.federation.inbound.common import remote_actors
from fedserver.net.http import FetchError
from fedserver.repo import actors as actors_repo
from fedserver.repo import status_views

from . import orders, rules, store
from .orders import OrderError
from .rules import MoveRefused

log = logging.getLogger("storefront.inbound")


async def on_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """An order from another server for a listing here: a new order, or a Reject saying why not."""
    [result] = await on_offers(ctx, [BatchItem(act, None)])
    if isinstance(result, Exception):
        raise result
    return result


async def on_offers(ctx: InboundContext, items: list[BatchItem]) -> list[Result | Exception]:
    """Offers (from one server or many, in arrival order), each handled as `on_offer` handles one, all in one
    transaction: a batch takes its listings' stock rows, the counters and the commit once, not once per Offer.

    The stock of the batch's acceptances is taken at its end (`orders.AcceptBatch`), so other batches of
    the same listing wait for that UPDATE and the commit only. When an Offer finds too little stock for
    it in what the batch read, or the stock is gone by the end, the batch is undone to its savepoint
    and runs again taking each order's stock as it accepts it, against the listing read again each time.
    """
    results: list[Result | Exception] = [DONE] * len(items)
    offers: list[tuple[int, Terms]] = []
    for i, item in enumerate(items):
        try:
            offers.append((i, parse_terms(item.activity.object)))
        except TradeError as exc:
            results[i] = ignored(str(exc))
    buyers = await remote_actors(ctx, list(dict.fromkeys(items[i].activity.actor for i, _ in offers)))
    async with ctx.pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():
                batch = orders.AcceptBatch()
                taken = await _take_offers(ctx, conn, items, offers, buyers, batch)
                await batch.reserve(conn)
        except orders.StockShort:
            taken = await _take_offers(ctx, conn, items, offers, buyers, None)
    for i, result in taken.items():
        results[i] = result
    return results


async def _take_offers(ctx: InboundContext, conn: asyncpg.Connection, items: list[BatchItem],
                       offers: list[tuple[int, Terms]], buyers: dict[str, Actor | FetchError],
                       batch: orders.AcceptBatch | None) -> dict[int, Result | Exception]:
    """The orders of parsed Offers, in order: each item's result. With `batch`, the acceptances' stock is left
    to the caller and an Offer that finds too little of it raises StockShort."""
    results: dict[int, Result | Exception] = {}
    listings: dict[str, tuple[store.ListingRow, Actor] | None] = {}
    for i, terms in offers:
        act, buyer = items[i].activity, buyers[items[i].activity.actor]
        if terms.listing_id not in listings:
            listings[terms.listing_id] = await _local_listing(conn, terms.listing_id)
        found = listings[terms.listing_id]
        if isinstance(buyer, FetchError) or found is None:
            results[i] = buyer if isinstance(buyer, FetchError) else \
                ignored("the Agreement is not for a listing of this server")
            continue
        listing, seller = found
        if batch is not None and listing.stock is not None and listing.auto_accept and listing.status == "active" \
                and isinstance(terms.quantity, int) and terms.quantity > listing.stock:  # sold out: refused below
            raise orders.StockShort(f"{listing.uri} has {listing.stock} left in what this batch read")
        try:  # refused before anything is written: no savepoint needed
            order = await orders.receive_offer(conn, ctx.publisher, buyer, act.raw, terms, listing, batch, seller)
        except OrderError as exc:
            if not await orders.refuse_token_offer(conn, ctx.publisher, seller, buyer, act.raw, terms, listing,
                                                   str(exc)):
                await orders.refuse_offer(conn, ctx.publisher, seller, buyer, act.raw, str(exc))
            results[i] = ignored(f"refused: {exc}")
            continue
        if order is None:
            results[i] = ignored("this Offer was already received")
        elif order.reserved and listing.stock is not None and batch is not None:  # taken at the end
            listings[terms.listing_id] = (replace(listing, stock=listing.stock - order.reserved), seller)
        elif order.state != "requested" and listing.stock is not None:  # it took stock, or found none left
            fresh = await store.get_listing(conn, listing.id)
            listings[terms.listing_id] = (fresh, seller) if fresh else None
    return results


async def _local_listing(conn: asyncpg.Connection, uri: str) -> tuple[store.ListingRow, Actor] | None:
    """A listing of this server and its maker, or None."""
    listing = await store.get_listing_by_uri(conn, uri)
    if listing is None or not listing.is_local:
        return None
    seller = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
    return (listing, seller) if seller is not None else None


async def _order_answered(conn: asyncpg.Connection, act: InboundActivity, known: _Known | None = None
                          ) -> store.OrderRow | None:
    if known is not None and act.object_id in known.orders:
        order = known.orders[act.object_id]
    else:
        order = await store.get_order_by_offer(conn, act.object_id) if act.object_id else None
    result = ref(act.raw.get("result"))
    if order is None and result:
        order = await store.get_order_by_uri(conn, result)
    return order


class _Known:
    """Listings and actors read once for a batch of moves (its orders share a few of each), and the orders its
    answers are about and their parties, read together (`orders`, by Offer id: an Offer answered once in the
    batch)."""

    def __init__(self) -> None:
        self._listings: dict[int, store.ListingRow | None] = {}
        self._actors: dict[str, Actor | None] = {}
        self.orders: dict[str, store.OrderRow | None] = {}

    async def read_orders(self, conn: asyncpg.Connection, items: list[BatchItem]) -> None:
        """Read at once the orders of the Offers answered once in `items` (one answered twice is read at its
        turn, after the first answer moved it)."""
        offers = [item.activity.object_id for item in items if item.activity.object_id]
        once = [offer for offer, n in Counter(offers).items() if n == 1]
        if once:
            found = await store.get_orders_by_offers(conn, once)
            self.orders = {offer: found.get(offer) for offer in once}
            parties = list({uri for order in found.values() for uri in (order.buyer_uri, order.seller_uri)})
            actors = await actors_repo.get_actors_by_uris(conn, parties) if parties else {}
            self._actors.update({uri: actors.get(uri) for uri in parties})

    async def listing(self, conn: asyncpg.Connection, listing_id: int) -> store.ListingRow | None:
        if listing_id not in self._listings:
            self._listings[listing_id] = await store.get_listing(conn, listing_id)
        return self._listings[listing_id]

    async def parties(self, conn: asyncpg.Connection, order: store.OrderRow) -> orders.Parties | None:
        for uri in (order.buyer_uri, order.seller_uri):
            if uri not in self._actors:
                self._actors[uri] = await actors_repo.get_actor_by_uri(conn, uri)
        buyer, seller = self._actors[order.buyer_uri], self._actors[order.seller_uri]
        return orders.Parties(buyer, seller) if buyer and seller else None


async def _move(ctx: InboundContext, conn: asyncpg.Connection, order: store.OrderRow | None, actor: str,
                event: str, *, only: str | None, reason: str = "", details: str = "",
                known: _Known | None = None) -> Result:
    """Apply a move announced by another server, if `actor` is the party allowed it."""
    if order is None:
        return ignored("no such order here")
    party = orders.party_of(order, actor)
    if party is None or (only is not None and party != only):
        return ignored(f"only the {only or 'buyer or seller'} of the order may {event} it")
    if (order.seller_is_local if party == "seller" else order.buyer_is_local):
        return ignored("a local party's move cannot come from another server")
    listing = await known.listing(conn, order.listing_id) if known else None
    parties = await known.parties(conn, order) if known else None
    try:  # a refused move writes nothing (orders.move changes stock only with a move it made)
        await orders.move(conn, ctx.publisher, order, event, party, reason=reason, details=details, listing=listing,
                          parties=parties)
    except (MoveRefused, OrderError) as exc:
        return ignored(str(exc))
    return DONE


def _text(value: object) -> str:
    return html_to_text(value, max_chars=1000).strip() if isinstance(value, str) else ""


async def on_accept_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """The maker accepted an order a local buyer placed."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        return await _accept_offer(ctx, conn, act)


async def on_accept_offers(ctx: InboundContext, items: list[BatchItem]) -> list[Result | Exception]:
    """Acceptances (from one maker's server or many, in arrival order), in one transaction: each refused
    move is refused before it writes, so one needs no savepoint; anything else fails the batch."""
    known = _Known()
    async with ctx.pool.acquire() as conn, conn.transaction():
        await known.read_orders(conn, items)
        return [await _accept_offer(ctx, conn, item.activity, known) for item in items]


async def _accept_offer(ctx: InboundContext, conn: asyncpg.Connection, act: InboundActivity,
                        known: _Known | None = None, order: store.OrderRow | None = None) -> Result:
    result = act.raw.get("result")
    order = order or await _order_answered(conn, act, known)
    details = _text(result.get("content")) if isinstance(result, dict) else ""
    if order is not None and act.actor == order.seller_uri:
        if other := _other_terms(order, result):
            return ignored(other)
        order = await _take_stated_total(conn, order, result)
    return await _move(ctx, conn, order, act.actor, "accept", only="seller", details=details, known=known)


def _other_terms(order: store.OrderRow, result: object) -> str | None:
    """Why an acceptance whose Agreement states other terms than the order's accepts nothing (FEP-0837: other
    terms are a new offer, not an agreement); None when it states the order's terms, or none we can read."""
    try:
        terms = parse_terms(result)
    except TradeError:
        return None
    if terms.quantity != order.quantity:
        return f"the acceptance is for {terms.quantity}, the order for {order.quantity}"
    if terms.listing_id != order.listing_uri or (terms.agreement_id and terms.agreement_id != order.uri):
        return "the acceptance is for another listing or agreement than the order's"
    return None


async def _take_stated_total(conn: asyncpg.Connection, order: store.OrderRow, result: object) -> store.OrderRow | None:
    """The total the maker's Accept states (the goods and shipping), when it is the goods' price or more."""
    try:
        terms = parse_terms(result)
    except TradeError:
        return order
    if terms.in_tokens or order.payment_method == "tokens":
        return order  # a token order's price is its tokens, fixed when it was placed
    if not same_currency(terms.currency, KRW):
        return order  # a total in another currency is no total in won
    total = terms.total
    subtotal = order.unit_price * order.quantity
    if order.state != "requested" or total is None or total == order.total_krw \
            or not subtotal <= total <= subtotal + 10_000_000:
        return order
    # Guarded by the state: an order read before an earlier answer of the same batch moved it keeps its total.
    return await store.set_order_total(conn, order.id, shipping_krw=total - subtotal, total_krw=total) or order


async def on_reject_offer(ctx: InboundContext, act: InboundActivity) -> Result:
    """The maker refused an order a local buyer placed."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        return await _reject_offer(ctx, conn, act)


async def _reject_offer(ctx: InboundContext, conn: asyncpg.Connection, act: InboundActivity,
                        order: store.OrderRow | None = None) -> Result:
    order = order or await _order_answered(conn, act)
    return await _move(ctx, conn, order, act.actor, "reject", only="seller",
                       reason=_text(act.raw.get("content")) or "reason not given")


async def on_accept_reference(ctx: InboundContext, act: InboundActivity, then: Handler) -> Result:
    """An Accept that names its object by id, as FEP-0837 has it ("the `id` of the `Offer`"): an order's
    acceptance when that is an Offer of ours (or its `result` our Agreement), else for `then` (a follow)."""
    return await _answer_by_reference(ctx, act, then, _accept_offer)


async def on_reject_reference(ctx: InboundContext, act: InboundActivity, then: Handler) -> Result:
    """A Reject that names its object by id: an order's refusal when that is an Offer of ours, else for `then`."""
    return await _answer_by_reference(ctx, act, then, _reject_offer)


async def _answer_by_reference(ctx: InboundContext, act: InboundActivity, then: Handler, answer) -> Result:
    async with ctx.pool.acquire() as conn, conn.transaction():
        order = await _order_answered(conn, act)
        if order is not None:
            return await answer(ctx, conn, act, order=order)
    return await then(ctx, act)


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


def _addressed(post: RemotePost) -> set[str]:
    """Whom a message is to: its mentions and its `to` and `cc`."""
    found = set(post.mentions)
    for key in ("to", "cc"):
        value = post.raw.get(key)
        found.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return found


def _listing_ids(base_url: str, post: RemotePost) -> list[int]:
    """This server's listings a post replies to or links, the one replied to first."""
    pattern = re.compile(re.escape(f"{base_url}/listings/") + r"(\d{1,18})(?![\d/])")
    found = [int(m.group(1)) for m in pattern.finditer(post.in_reply_to or "")]
    found += [int(m.group(1)) for m in pattern.finditer(post.content or "")]
    return list(dict.fromkeys(found))


async def on_post_stored(conn: asyncpg.Connection, ctx: InboundContext, post: RemotePost, author: Actor) -> None:
    """Keep the listing a remote Note carries; answer a direct message that orders one of our listings."""
    listing = parse_listing(post.raw)
    if listing is not None and listing.attributed_to == author.uri:
        object_id = await status_views.get_object_id(conn, post.id)
        if object_id is not None:
            await store.upsert_remote_listing(conn, object_id, author.id, listing)
    if post.visibility == "direct":
        await _direct_order(conn, ctx, post, author)


async def _direct_order(conn: asyncpg.Connection, ctx: InboundContext, post: RemotePost, author: Actor) -> None:
    quantity = rules.order_quantity(html_to_text(post.content, max_chars=2000))
    if quantity is None:
        return  # read before anything is looked up: most direct messages order nothing
    # A message in an order's own thread (its context that order) is about that order; Mastodon gives every
    # status its conversation as context, which orders as any direct message does.
    context = ref(post.raw.get("context"))
    if context and await store.get_order_by_uri(conn, context):
        return
    for listing_id in _listing_ids(ctx.settings.base_url, post):
        listing = await store.get_listing(conn, listing_id)
        if listing is None or not listing.is_local or listing.seller_uri not in _addressed(post):
            continue  # a reply to a listing, or a link to one, is an order only in a message to its maker
        if await store.answered_in_thread(conn, post.id):
            return  # an edit (Update) of a message that ordered, or was answered: not a second order
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
    if isinstance(obj, dict) and obj.get("type") == "Document":  # a Receipt names its order in `context`
        return obj["context"] if isinstance(obj.get("context"), str) else None
    # Offer/Update, Accept's result, Reject's Offer; an Accept naming its Offer by id has only its result
    candidates = (obj, body.get("result"), obj.get("object")) if isinstance(obj, dict) else (body.get("result"),)
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("type") == "Agreement" and isinstance(candidate.get("id"), str):
            return candidate["id"]
    return None


def register(dispatcher: Dispatcher) -> None:
    """Route the FEP-0837 order activities, and read every stored remote post."""
    dispatcher.register("Offer", "Agreement", on_offer)
    dispatcher.register_batch("Offer", "Agreement", on_offers)
    dispatcher.register("Accept", "Offer", on_accept_offer)
    dispatcher.register_batch("Accept", "Offer", on_accept_offers)
    dispatcher.register("Reject", "Offer", on_reject_offer)
    dispatcher.claim_first("Accept", REFERENCE, on_accept_reference)  # after the follows' handlers (app.py)
    dispatcher.claim_first("Reject", REFERENCE, on_reject_reference)
    dispatcher.register("Update", "Agreement", on_update_agreement)
    dispatcher.register("Create", "Document", on_create_document)
    dispatcher.on_post(on_post_stored)
    for kind, object_type in (("Offer", "Agreement"), ("Accept", "Offer"), ("Reject", "Offer"),
                              ("Accept", REFERENCE), ("Reject", REFERENCE),
                              ("Update", "Agreement"), ("Create", "Document")):
        dispatcher.order_by(kind, object_type, agreement_of)
