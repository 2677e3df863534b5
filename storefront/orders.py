"""Orders: placing one, taking one from another server (an Offer or a Mastodon user's direct message),
and moving it through its states, each in the caller's transaction.

Stock is reserved when an order is accepted (`store.reserve_stock`: one UPDATE guarded by the
stock; a batch of Offers takes its acceptances' stock together, last: `AcceptBatch`) and returned
when an accepted or paid order is cancelled. A move is checked against the
one table of `rules`, then written only if the order is still in the state it was read in; a move
by the local party goes to the other party as the FEP-0837 activity (Accept, Reject,
Update(Agreement), Create(Receipt)) or, for a Mastodon buyer or a party on this instance, as a
direct message; a move that came from another server is told to the local party (`messages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import asyncpg

from activities.actor import Actor
from activities.build import activity_uri, new_object_id
from activities.listing import TOKENS, same_currency
from activities.trade import (
    Terms,
    build_accept_offer,
    build_agreement,
    build_agreement_update,
    build_offer,
    build_receipt,
    build_reject_offer,
)
from activities.urls import BadId, id_host
from fedserver.publish import Publisher
from fedserver.repo import actors as actors_repo
from rewards import spend_store
from rewards.receipts import ReceiptRefused
from rewards.spending import CheckedSpend, SpendAccepted, append_spends, spend_to_append

from . import messages, rules, store, tokens
from .rules import MoveRefused
from .store import ListingRow, OrderRow


class OrderError(Exception):
    """An order refused before anything was stored; the message says why."""


class StockShort(Exception):
    """The stock a batch meant to take at its end is no longer there (another batch took it meanwhile)."""


class AcceptBatch:
    """What a batch of automatic acceptances shares: the stock they take, as the batch's last statements (one
    UPDATE per listing), and each maker's profile and the blocks between a maker and a buyer, read once.

    Taken one order at a time, a listing's row would stay locked from the batch's first acceptance
    to its commit, through every later order's writes, and every other batch of that listing would
    wait for all of it. Taken at the end, the row is locked for the UPDATE and the commit only. The
    batch decides its acceptances against the stock it read, unlocked; `reserve` raises StockShort
    when that stock is gone by the end, and the caller runs the batch again the careful way.
    """

    def __init__(self) -> None:
        self.taken: dict[int, int] = {}
        self._counted: dict[int, bool] = {}  # per listing: it had a count when the batch read it
        self._profiles: dict[int, store.SellerProfile] = {}
        self._blocks: dict[tuple[int, int], tuple[bool, bool, bool]] = {}

    def take(self, listing: ListingRow, quantity: int) -> None:
        """Count `quantity` to take from the listing at the end (as a count, or made to order as it was read)."""
        self.taken[listing.id] = self.taken.get(listing.id, 0) + quantity
        self._counted[listing.id] = listing.stock is not None

    async def reserve(self, conn: asyncpg.Connection) -> None:
        for listing_id, quantity in sorted(self.taken.items()):  # one order of rows for every batch
            counted = await store.reserve_stock(conn, listing_id, quantity)
            if counted is None:
                raise StockShort(f"listing {listing_id} no longer has {quantity} to take")
            if bool(counted) != self._counted[listing_id]:  # its maker switched it to a count or from one
                raise StockShort(f"listing {listing_id} changed between a count and made to order")

    async def blocks(self, conn: asyncpg.Connection, seller_id: int, buyer_id: int) -> tuple[bool, bool, bool]:
        """(the maker is suspended, it blocks the buyer, the buyer blocks it): one read per pair in a batch."""
        if (seller_id, buyer_id) not in self._blocks:
            self._blocks[seller_id, buyer_id] = await store.order_barriers(conn, seller_id, buyer_id)
        return self._blocks[seller_id, buyer_id]

    async def profile(self, conn: asyncpg.Connection, seller_id: int) -> store.SellerProfile:
        if seller_id not in self._profiles:
            self._profiles[seller_id] = await store.get_seller_profile(conn, seller_id)
        return self._profiles[seller_id]


def order_url(base_url: str) -> str:
    """A new Agreement id on this instance."""
    return f"{base_url}/orders/{new_object_id()}"


def party_of(order: OrderRow, actor_uri: str) -> str | None:
    """`buyer` or `seller` for a party of the order, else None."""
    return "buyer" if actor_uri == order.buyer_uri else "seller" if actor_uri == order.seller_uri else None


def check_orderable(listing: ListingRow, buyer_id: int, quantity: object) -> int:
    """The quantity, if this buyer may order it from this listing now; OrderError otherwise."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= rules.MAX_QUANTITY:
        raise OrderError(f"the quantity must be a whole number from 1 to {rules.MAX_QUANTITY}")
    if listing.seller_id == buyer_id:
        raise OrderError("you cannot order your own product")
    if listing.status != "active":
        raise OrderError({"paused": "the listing is paused: it takes no orders now",
                          "sold_out": "the listing is sold out",
                          "deleted": "the listing was deleted"}.get(listing.status, "the listing takes no orders"))
    if listing.stock is not None and quantity > listing.stock:
        raise OrderError(f"only {listing.stock} left")
    return quantity


async def check_not_blocked(conn: asyncpg.Connection, listing: ListingRow, buyer_id: int,
                            batch: AcceptBatch | None = None) -> None:
    """OrderError when the maker blocks the buyer, or the buyer the maker: a block refuses orders (as it does
    follows and likes). A batch's orders of one buyer from one maker read the blocks once. A maker this server
    suspended takes no orders at all."""
    suspended, maker_blocks, buyer_blocks = await batch.blocks(conn, listing.seller_id, buyer_id) if batch else \
        await store.order_barriers(conn, listing.seller_id, buyer_id)
    if suspended:
        raise OrderError("the maker does not take orders now")
    if maker_blocks:
        raise OrderError("the maker does not take orders from this account")
    if buyer_blocks:
        raise OrderError("you block this maker: unblock them to order")


async def _actor(conn: asyncpg.Connection, uri: str) -> Actor:
    actor = await actors_repo.get_actor_by_uri(conn, uri)
    assert actor is not None
    return actor


async def _new_order(conn: asyncpg.Connection, listing: ListingRow, buyer: Actor, quantity: int, *, uri: str,
                     channel: str, offer_uri: str | None = None, message: str = "",
                     thread_uri: str | None = None, total_tokens: int | None = None) -> OrderRow | None:
    shipping, total = rules.order_total(listing.price, quantity, listing.shipping_krw, listing.free_shipping_over)
    return await store.insert_order(
        conn, uri=uri, offer_uri=offer_uri, listing_id=listing.id, buyer_id=buyer.id, seller_id=listing.seller_id,
        quantity=quantity, unit_price=listing.price, shipping_krw=shipping, total_krw=total, channel=channel,
        message=message[:1000], thread_uri=thread_uri, payment_method="krw" if total_tokens is None else "tokens",
        total_tokens=total_tokens)


async def place_order(conn: asyncpg.Connection, publisher: Publisher, buyer: Actor, listing: ListingRow,
                      quantity: object, message: str = "", pay: str = "krw") -> OrderRow:
    """A local buyer orders: from a listing here (taken at once when it accepts automatically), or from
    another server's listing (an Offer goes to its maker).

    `pay="tokens"` pays with the buyer's reward tokens: they are debited here and now (refused at once,
    nothing stored, when they do not cover the order), and the spend goes to the maker's instance.
    """
    quantity = check_orderable(listing, buyer.id, quantity)
    await check_not_blocked(conn, listing, buyer.id)
    if pay not in tokens.PAYMENT_METHODS:
        raise OrderError(f"pay must be one of {', '.join(tokens.PAYMENT_METHODS)}")
    uri = order_url(publisher.settings.base_url)
    cost: int | None = None
    if pay == "tokens":
        try:
            cost = tokens.token_cost(listing, quantity)
            await tokens.pay(conn, publisher.settings, buyer_uri=buyer.uri, order_uri=uri, listing=listing,
                             quantity=quantity, cost=cost)
        except tokens.TokenPaymentRefused as exc:
            raise OrderError(str(exc)) from None
    if listing.is_local:
        seller = await _actor(conn, listing.seller_uri)
        order = await _new_order(conn, listing, buyer, quantity, uri=uri, channel="local", message=message,
                                 total_tokens=cost)
        assert order is not None
        await messages.tell(conn, publisher, buyer, seller, messages.new_order_text(order, listing.title),
                            order_uri=order.uri)
        return await accept_automatically(conn, publisher, order, listing, Parties(buyer, seller))
    offer_uri = activity_uri(buyer.uri, "offer", new_object_id())
    order = await _new_order(conn, listing, buyer, quantity, uri=uri, channel="fep", offer_uri=offer_uri,
                             message=message, total_tokens=cost)
    assert order is not None
    # The maker adds shipping, which a listing's FEP-0837 fields do not tell: the Offer asks for the goods'
    # price, and the maker's Accept states the total the buyer pays. A token order states its tokens.
    agreement = build_agreement(uri, listing.uri, quantity, listing.price * quantity, currency=listing.currency) \
        if cost is None else build_agreement(uri, listing.uri, quantity, cost, currency=TOKENS)
    offer = build_offer(buyer.uri, offer_uri, agreement, listing.seller_uri)
    if message:
        offer["content"] = message[:1000]
    await publisher.publish(conn, buyer, offer, [listing.seller_inbox], object_uri=uri)
    return order


async def receive_offer(conn: asyncpg.Connection, publisher: Publisher, buyer: Actor, offer: dict, terms: Terms,
                        listing: ListingRow, batch: AcceptBatch | None = None, seller: Actor | None = None
                        ) -> OrderRow | None:
    """An Offer from another server for a listing here: a new order (None if this Offer was seen before).

    A repeat is never answered with a Reject: an Offer processed again after a crash, or re-sent,
    may find the listing sold out by its own order. A refusal therefore first checks that the
    Offer is new; an accepted Offer's repeat is caught by the order's unique ids.
    """
    try:
        quantity = check_orderable(listing, buyer.id, terms.quantity)
        await check_not_blocked(conn, listing, buyer.id, batch)
    except OrderError:
        if await store.order_exists(conn, offer["id"], terms.agreement_id):
            return None
        raise
    uri = terms.agreement_id or order_url(publisher.settings.base_url)
    if (wrong := _agreement_not_the_buyers(uri, buyer)) is not None:
        raise OrderError(wrong)
    _, total = rules.order_total(listing.price, quantity, listing.shipping_krw, listing.free_shipping_over)
    cost: int | None = None
    if terms.in_tokens:
        try:
            cost = tokens.token_cost(listing, quantity)
        except tokens.TokenPaymentRefused as exc:
            raise OrderError(str(exc)) from None
        if terms.total != cost:
            raise OrderError(f"{quantity} of this product cost {cost} tokens, not {terms.total}")
    elif not same_currency(terms.currency, listing.currency):
        raise OrderError(f"the listing is priced in {listing.currency}, not {terms.currency}")
    elif terms.total is not None and terms.total not in (listing.price * quantity, total):
        raise OrderError(f"the price of {quantity} is {listing.price * quantity} won, not {terms.total}")
    message = offer.get("content") if isinstance(offer.get("content"), str) else ""
    order = await _new_order(conn, listing, buyer, quantity, uri=uri, channel="fep", offer_uri=offer["id"],
                             message=message, total_tokens=cost)
    if order is None:
        return None  # the same Offer (or Agreement) again: one order
    seller = seller or await _actor(conn, listing.seller_uri)
    await messages.notify_local(conn, publisher, seller, messages.new_order_text(order, listing.title), order.uri)
    return await accept_automatically(conn, publisher, order, listing, Parties(buyer, seller), batch)


def _agreement_not_the_buyers(agreement_id: str, buyer: Actor) -> str | None:
    """Why an Agreement id cannot be the buyer's (not a URL, or on another server), or None."""
    try:
        same = id_host(agreement_id) == id_host(buyer.uri)
    except BadId:
        return "the Agreement's id is not a URL"
    return None if same else "the Agreement's id is not on the buyer's server"


async def receive_direct_order(conn: asyncpg.Connection, publisher: Publisher, buyer: Actor, listing: ListingRow,
                               quantity: int, note_uri: str, text: str) -> OrderRow:
    """A Mastodon user's direct message that orders: a new order, answered in the same thread."""
    quantity = check_orderable(listing, buyer.id, quantity)
    await check_not_blocked(conn, listing, buyer.id)
    order = await _new_order(conn, listing, buyer, quantity, uri=order_url(publisher.settings.base_url),
                             channel="dm", message=text, thread_uri=note_uri)
    assert order is not None  # a fresh Agreement id
    return await accept_automatically(conn, publisher, order, listing,
                                      Parties(buyer, await _actor(conn, listing.seller_uri)))


async def refuse_direct_order(conn: asyncpg.Connection, publisher: Publisher, seller: Actor, buyer: Actor,
                              reason: str, note_uri: str) -> None:
    """Answer a direct message that orders what cannot be ordered, in its thread; nothing is stored."""
    await messages.tell(conn, publisher, seller, buyer, f"주문을 받을 수 없습니다: {reason}", order_uri=note_uri,
                        in_reply_to=note_uri)


async def refuse_token_offer(conn: asyncpg.Connection, publisher: Publisher, seller: Actor, buyer: Actor,
                             offer: dict, terms: Terms, listing: ListingRow, reason: str) -> bool:
    """Refuse a well-formed Offer paid in tokens by keeping it as a rejected order (True; False when it cannot
    be one, and refuse_offer must answer it).

    Its spend travels on a queue of its own and may be countersigned here before or after the Offer is
    refused: the order rejected here makes a later spend refused and an earlier one undone (see
    `_check_received_spend`), so the buyer's tokens come back whichever arrives first."""
    if not terms.in_tokens or not terms.agreement_id or not isinstance(terms.quantity, int) \
            or not 1 <= terms.quantity <= rules.MAX_QUANTITY or terms.total is None \
            or _agreement_not_the_buyers(terms.agreement_id, buyer) is not None:
        return False
    order = await _new_order(conn, listing, buyer, terms.quantity, uri=terms.agreement_id, channel="fep",
                             offer_uri=offer["id"], total_tokens=terms.total)
    if order is None:
        return False  # an order of this Offer or Agreement is here already
    await move(conn, publisher, order, "reject", "seller", reason=reason, listing=listing,
               parties=Parties(buyer, seller))
    return True


async def refuse_offer(conn: asyncpg.Connection, publisher: Publisher, seller: Actor, buyer: Actor, offer: dict,
                       reason: str) -> None:
    """Reject an Offer that cannot become an order; nothing is stored but the Reject."""
    reject = build_reject_offer(seller.uri, activity_uri(seller.uri, "reject", new_object_id()), offer, reason,
                                buyer.uri)
    await publisher.publish(conn, seller, reject, [buyer.inbox_uri], object_uri=offer.get("id"))


async def accept_automatically(conn: asyncpg.Connection, publisher: Publisher, order: OrderRow,
                               listing: ListingRow, parties: Parties, batch: AcceptBatch | None = None) -> OrderRow:
    """Accept a new order when its listing says so, while stock lasts; sold out meanwhile: rejected.
    With `batch`, the stock is taken at the end of the caller's batch (the caller checked it is there)."""
    if not listing.auto_accept:
        return order
    try:
        return await move(conn, publisher, order, "accept", "seller", listing=listing, parties=parties, batch=batch)
    except OrderError as exc:
        return await move(conn, publisher, order, "reject", "seller", reason=str(exc), listing=listing,
                          parties=parties)


@dataclass(frozen=True)
class Parties:
    """The buyer and the seller of an order, when the caller already has them."""

    buyer: Actor
    seller: Actor


async def move(conn: asyncpg.Connection, publisher: Publisher, order: OrderRow, event: str, party: str, *,
               reason: str = "", details: str = "", listing: ListingRow | None = None,
               parties: Parties | None = None, by_spend: bool = False, batch: AcceptBatch | None = None) -> OrderRow:
    """Make one move (MoveRefused, or OrderError when the stock is short), record it and tell the other party.
    An acceptance given `batch` leaves the stock to it (taken at the end of the caller's batch).

    A token order is paid by its countersigned spend, never by hand: when the maker's instance holds
    both the acceptance and the spend, the order moves on to `paid` (`by_spend`); when the buyer's
    order ends cancelled or rejected, its tokens go back (tokens.give_back). Its buyer cannot cancel it
    (the tokens left at once; the maker cancels and returns them), unless its spend was refused
    (`by_spend`: storefront.workers).
    """
    target = rules.next_state(order.state, event, party)
    if event == "pay" and order.payment_method == "tokens" and order.seller_is_local and not by_spend:
        raise MoveRefused("a token order is marked paid by the buyer's countersigned spend, not by hand")
    if event == "cancel" and party == "buyer" and order.payment_method == "tokens" and order.buyer_is_local \
            and not by_spend:  # its tokens are spent from the start: only the maker's cancel returns them
        raise MoveRefused("an order paid with tokens is cancelled by the maker, who returns the tokens; "
                          "ask the maker to cancel it")
    listing = listing or await store.get_listing(conn, order.listing_id)
    assert listing is not None
    # What the order holds of the listing's count once moved: what an acceptance takes (0 when made to order),
    # nothing once cancelled. Stock changes only with a move that was made: a move refused because the order
    # changed meanwhile (another move won the race) leaves the stock as it was.
    reserved: int | None = None
    if event == "accept" and listing.is_local and batch is not None:
        reserved = order.quantity if listing.stock is not None else 0  # taken at the end of the batch
    elif event == "accept" and listing.is_local:
        reserved = await store.reserve_stock(conn, listing.id, order.quantity)
        if reserved is None:
            fresh = await store.get_listing(conn, listing.id)
            left = fresh.stock if fresh and fresh.status != "deleted" else 0
            raise OrderError("sold out" if not left else f"only {left} left")
    elif event == "cancel" and order.reserved:
        reserved = 0
    moved = await store.move_order(conn, order.id, order.state, target, event=event, party=party,
                                   reserved=reserved, reason=reason)
    if moved is None:
        if event == "accept" and reserved:  # taken just above, for a move that did not happen
            await store.release_stock(conn, listing.id, reserved)
        raise MoveRefused(f"the order is no longer {order.state}: it cannot be {rules.done_word(event)} now")
    if event == "accept" and listing.is_local and batch is not None:
        batch.take(listing, order.quantity)
    elif event == "cancel" and order.reserved:  # the guarded move found it still holding what it read
        await store.release_stock(conn, listing.id, order.reserved)
    await _announce(conn, publisher, moved, listing, event, party, reason, details, parties, batch)
    if moved.payment_method == "tokens":
        return await settle_tokens(conn, publisher, moved, listing, parties)
    return moved


async def receive_spend(conn: asyncpg.Connection, publisher: Publisher, checked: CheckedSpend) -> SpendAccepted:
    """A member instance's spend (or undo-spend) for an order of a listing here, checked against the listing
    and the order, countersigned into our log; an accepted order it pays moves on to `paid` (ReceiptRefused
    with the reason otherwise, nothing written)."""
    (result,) = await receive_spends(conn, publisher, [checked])
    if isinstance(result, ReceiptRefused):
        raise result
    return result


async def receive_spends(conn: asyncpg.Connection, publisher: Publisher, items: list[CheckedSpend]
                         ) -> list[SpendAccepted | ReceiptRefused]:
    """`receive_spend` for many in the caller's transaction, each answered alone (a refused one writes nothing).
    Every check comes first and the accepted spends enter the log together at the end, so the log's lock is
    held for one append, not for every spend's reads. Spends of one order (or one id) are taken one at a time."""
    if len(items) > 1 and (len({c.spend.id for c in items}) < len(items)
                           or len({c.spend.order for c in items}) < len(items)):
        return [result for checked in items for result in await receive_spends(conn, publisher, [checked])]
    results: list[SpendAccepted | ReceiptRefused | None] = []
    fresh: list[tuple[int, CheckedSpend, ListingRow, OrderRow | None]] = []
    for checked in items:
        try:
            replayed, listing, order = await _check_received_spend(conn, checked)
        except ReceiptRefused as exc:
            results.append(exc)
            continue
        if replayed is None:
            fresh.append((len(results), checked, listing, order))
        results.append(replayed)
    if fresh:
        accepted = await append_spends(conn, [checked for _, checked, _, _ in fresh])
        for (at, checked, listing, order), one in zip(fresh, accepted, strict=True):
            results[at] = one
            if checked.spend.kind == "spend" and order is not None and order.state == "accepted":
                try:
                    await settle_tokens(conn, publisher, order, listing)
                except MoveRefused:
                    pass  # moved meanwhile: the spend is in, and the order's next acceptance pays it
    return results  # type: ignore[return-value]


async def _check_received_spend(conn: asyncpg.Connection, checked: CheckedSpend
                                ) -> tuple[SpendAccepted | None, ListingRow | None, OrderRow | None]:
    """The checks of a received spend, writing nothing: (its acceptance if it is a replay, else None; the
    listing; the order here, if any). ReceiptRefused if it may not enter the log."""
    spend = checked.spend
    known = await spend_store.get_spend_by_id(conn, spend.id)
    if known is not None:  # a replay: the same countersignature, or 409 for other text
        return await spend_to_append(conn, checked, known), None, None
    listing = await store.get_listing_by_uri(conn, spend.listing)
    if listing is None or not listing.is_local or listing.seller_uri != spend.seller:
        raise ReceiptRefused(422, f"no listing {spend.listing} of {spend.seller} here")
    order = await store.get_order_by_uri(conn, spend.order)
    if order is not None and (order.listing_id != listing.id or order.buyer_uri != spend.account
                              or order.quantity != spend.quantity or order.total_tokens != spend.tokens):
        raise ReceiptRefused(422, f"the spend does not match order {order.uri}: {order.quantity} for "
                                  f"{order.total_tokens} tokens by {order.buyer_uri}")
    if spend.kind == "spend":
        if order is None and (listing.token_price is None or listing.token_price * spend.quantity != spend.tokens):
            raise ReceiptRefused(422, f"{spend.quantity} of {spend.listing} do not cost {spend.tokens} tokens")
        if order is not None and order.state in ("rejected", "cancelled"):
            raise ReceiptRefused(409, f"order {order.uri} was {order.state}: there is nothing to pay")
    elif order is None or order.state not in ("rejected", "cancelled"):
        raise ReceiptRefused(409, f"order {spend.order} is not cancelled or rejected here: its tokens stay spent")
    return await spend_to_append(conn, checked, None), listing, order


async def settle_tokens(conn: asyncpg.Connection, publisher: Publisher, order: OrderRow,
                        listing: ListingRow | None = None, parties: Parties | None = None) -> OrderRow:
    """What a token order's state asks of this instance now: the maker's side marks an accepted order paid
    once its spend is in; the buyer's side gives the tokens of a cancelled or rejected order back."""
    if order.seller_is_local and order.state == "accepted" and await tokens.spend_is_in(conn, order.uri):
        return await move(conn, publisher, order, "pay", "seller", listing=listing, parties=parties, by_spend=True)
    if order.buyer_is_local and order.state in ("cancelled", "rejected"):
        await tokens.give_back(conn, publisher.settings, order.uri)
    return order


async def _announce(conn: asyncpg.Connection, publisher: Publisher, order: OrderRow, listing: ListingRow, event: str,
                    party: str, reason: str, details: str, parties: Parties | None,
                    batch: AcceptBatch | None = None) -> None:
    """Tell the other party: by activity, by direct message, or (a move from another server) by a notice."""
    mover_local = order.seller_is_local if party == "seller" else order.buyer_is_local
    other_local = order.buyer_is_local if party == "seller" else order.seller_is_local
    if not mover_local:  # a move made on another server: only the local party, to be told, is needed
        counterpart = (parties.buyer if party == "seller" else parties.seller) if parties else None
        counterpart = counterpart or await _actor(conn, order.buyer_uri if party == "seller" else order.seller_uri)
        text = messages.move_text(order, listing.title, reason=reason, details=details)
        await messages.notify_local(conn, publisher, counterpart, text, order.uri)
        return
    if parties is None:
        parties = Parties(await _actor(conn, order.buyer_uri), await _actor(conn, order.seller_uri))
    mover, counterpart = (parties.seller, parties.buyer) if party == "seller" else (parties.buyer, parties.seller)
    profile = None if event != "accept" else \
        await batch.profile(conn, mover.id) if batch else await store.get_seller_profile(conn, mover.id)
    if profile is not None and order.total_tokens is not None:
        details = f"토큰 {order.total_tokens}개로 결제하는 주문입니다. {messages.business_text(profile)}"
    elif profile is not None:
        details = f"{messages.payment_text(profile)} {messages.business_text(profile)}"
    text = messages.move_text(order, listing.title, reason=reason, details=details)
    if other_local or order.channel == "dm":
        await messages.tell(conn, publisher, mover, counterpart, text, order_uri=order.uri,
                            in_reply_to=order.thread_uri if order.channel == "dm" else None)
    else:
        await _send_activity(conn, publisher, order, listing, mover, counterpart, event, reason, text, profile)


async def _send_activity(conn: asyncpg.Connection, publisher: Publisher, order: OrderRow, listing: ListingRow,
                         mover: Actor, counterpart: Actor, event: str, reason: str, text: str,
                         profile: store.SellerProfile | None) -> None:
    """The FEP-0837 activity of a move, to the other party's server."""
    kind = {"accept": "accept", "reject": "reject", "complete": "create"}.get(event, "update")
    new_id = activity_uri(mover.uri, kind, new_object_id())
    offer = {"id": order.offer_uri, "type": "Offer", "actor": order.buyer_uri,
             "object": build_agreement(order.uri, listing.uri, order.quantity, order.total_krw)}
    if event == "accept" and order.total_tokens is not None:
        agreement = build_agreement(order.uri, listing.uri, order.quantity, order.total_tokens, currency=TOKENS,
                                    attributed_to=mover.uri, content=f"<p>{escape(text)}</p>")
        activity = build_accept_offer(mover.uri, new_id, offer, agreement, counterpart.uri)
    elif event == "accept":
        assert profile is not None
        agreement = build_agreement(order.uri, listing.uri, order.quantity, order.total_krw,
                                    attributed_to=mover.uri, content=f"<p>{escape(text)}</p>",
                                    payto=profile.payto or None)
        activity = build_accept_offer(mover.uri, new_id, offer, agreement, counterpart.uri)
    elif event == "reject":
        activity = build_reject_offer(mover.uri, new_id, offer, reason or "주문을 받을 수 없습니다", counterpart.uri)
    elif event == "complete":
        activity = build_receipt(mover.uri, new_id, f"{order.uri}/receipt", order.uri, counterpart.uri)
    else:
        agreement = build_agreement(order.uri, listing.uri, order.quantity, order.total_krw, state=order.state,
                                    content=f"<p>{escape(text)}</p>")
        activity = build_agreement_update(mover.uri, new_id, agreement, counterpart.uri)
    await publisher.publish(conn, mover, activity, [counterpart.inbox_uri], object_uri=order.uri)

