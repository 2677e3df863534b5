"""The shop's one-shot actions for the command line and the API: find a listing or an order by what a
person typed (a URL or a local id), then run one service in a transaction of its own."""

from __future__ import annotations

import re

import asyncpg

from activities.listing import parse_listing
from fedserver.config import Settings
from fedserver.federation import outbox
from fedserver.federation.targets import TargetError, resolve_object
from fedserver.net.http import HttpClient
from fedserver.publish import Publisher
from fedserver.repo import actors as actors_repo

from . import orders, products, store
from .orders import OrderError
from .products import ProductDraft, ProductError
from .rules import MoveRefused
from .store import ListingRow, OrderRow

# The move each command makes, and which party makes it unless told otherwise.
EVENT_PARTY = {"accept": "seller", "reject": "seller", "pay": "seller", "ship": "seller", "deliver": "seller",
               "complete": "buyer", "cancel": None}
MARKS = {"paid": "pay", "shipped": "ship", "delivered": "deliver"}


LOCAL_ID = r"[0-9]{1,18}"  # ASCII digits (str.isdigit() also takes "²") that fit a bigint


def _local_id(settings: Settings, ref: str, kind: str) -> int | None:
    """The id in `<base>/<kind>/<id>` or a bare id; None for another server's URL (or for no id at all)."""
    match = re.fullmatch(f"(?:{re.escape(f'{settings.base_url}/{kind}/')})?({LOCAL_ID})", ref.strip())
    return int(match.group(1)) if match else None


async def find_listing(conn: asyncpg.Connection, settings: Settings, ref: str) -> ListingRow:
    """A listing by its local id or its URL (local or already known); ProductError when unknown."""
    local = _local_id(settings, ref, "listings")
    listing = await (store.get_listing(conn, local) if local is not None else store.get_listing_by_uri(conn, ref))
    if listing is None:
        raise ProductError(f"no known listing {ref[:200]}")
    return listing


async def listing_to_order(pool: asyncpg.Pool, settings: Settings, http: HttpClient | None, ref: str) -> ListingRow:
    """The listing a buyer orders from: known here, or (another server's URL) fetched and read."""
    async with pool.acquire() as conn:
        try:
            return await find_listing(conn, settings, ref)
        except ProductError:
            if _local_id(settings, ref, "listings") is not None or not ref.startswith(("https://", "http://")):
                raise
    try:
        post = await resolve_object(pool, settings, http, ref)
    except TargetError as exc:
        raise ProductError(str(exc)) from None
    listing = parse_listing(post.data)
    if listing is None or post.actor_id is None or listing.attributed_to != post.author_uri:
        raise ProductError(f"{ref[:200]} is not a listing that can be ordered")
    async with pool.acquire() as conn, conn.transaction():
        await store.upsert_remote_listing(conn, post.id, post.actor_id, listing)
        return await find_listing(conn, settings, post.uri)


async def find_order(conn: asyncpg.Connection, settings: Settings, ref: str) -> OrderRow:
    """An order by its local id or its URL (its Agreement id); OrderError when unknown."""
    ref = ref.strip()
    if re.fullmatch(LOCAL_ID, ref):
        order = await store.get_order_by_uri(conn, f"{settings.base_url}/orders/{ref}")
        order = order or await store.get_order(conn, int(ref))
    else:
        order = await store.get_order_by_uri(conn, ref)
    if order is None:
        raise OrderError(f"no order {ref[:200]} here")
    return order


async def create_product(pool: asyncpg.Pool, publisher: Publisher, username: str, draft: ProductDraft) -> ListingRow:
    """List a product for a local account."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await products.create_product(conn, publisher, actor, draft)


async def update_product(pool: asyncpg.Pool, publisher: Publisher, ref: str, changes: dict[str, object], *,
                         username: str | None = None) -> ListingRow:
    """Change a listing (as its maker: `username` when given must be the maker)."""
    async with pool.acquire() as conn, conn.transaction():
        listing = await find_listing(conn, publisher.settings, ref)
        actor = await _maker(conn, listing, username)
        return await products.update_product(conn, publisher, actor, listing.id, changes)


async def delete_product(pool: asyncpg.Pool, publisher: Publisher, ref: str, *, username: str | None = None) -> str:
    """Delist a product; the Delete's id."""
    async with pool.acquire() as conn, conn.transaction():
        listing = await find_listing(conn, publisher.settings, ref)
        actor = await _maker(conn, listing, username)
        return await products.delete_product(conn, publisher, actor, listing.id)


async def _maker(conn: asyncpg.Connection, listing: ListingRow, username: str | None):
    if not listing.is_local:
        raise ProductError(f"{listing.uri} is another server's listing")
    actor = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
    if actor is None or actor.deleted_at is not None or (username is not None and actor.username != username):
        raise ProductError(f"no listing {listing.id} of yours")
    return actor


async def place_order(pool: asyncpg.Pool, publisher: Publisher, http: HttpClient | None, username: str,
                      listing_ref: str, quantity: object, message: str = "", pay: str = "krw") -> OrderRow:
    """A local account orders from a listing here or on another server (`pay`: `krw` or `tokens`)."""
    listing = await listing_to_order(pool, publisher.settings, http, listing_ref)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await orders.place_order(conn, publisher, actor, listing, quantity, message, pay)


async def move_order(pool: asyncpg.Pool, publisher: Publisher, ref: str, event: str, *, reason: str = "",
                     username: str | None = None, party: str | None = None) -> OrderRow:
    """Make one move on an order as its local party: `username`'s part in it, else `party` or the usual one."""
    async with pool.acquire() as conn, conn.transaction():
        order = await find_order(conn, publisher.settings, ref)
        party = await _party(conn, order, event, username, party)
        return await orders.move(conn, publisher, order, event, party, reason=reason)


async def _party(conn: asyncpg.Connection, order: OrderRow, event: str, username: str | None,
                 party: str | None) -> str:
    if username is not None:
        actor = await actors_repo.get_local_actor_by_username(conn, username)
        found = orders.party_of(order, actor.uri) if actor and actor.deleted_at is None else None
        if found is None:
            raise OrderError(f"no order {order.uri} of yours")
        return found
    party = party or EVENT_PARTY[event] or ("seller" if order.seller_is_local else "buyer")
    if not (order.seller_is_local if party == "seller" else order.buyer_is_local):
        raise MoveRefused(f"the order's {party} is on another server: only they can {event} it")
    return party


async def update_seller(pool: asyncpg.Pool, username: str, changes: dict[str, str]) -> store.SellerProfile:
    """Set a maker's business information and payment instructions."""
    for name, value in changes.items():
        if len(value) > 500 or any(ord(c) < 32 and c not in "\n" for c in value):
            raise ProductError(f"{name} is limited to 500 characters without control characters")
    if changes.get("payto") and not changes["payto"].startswith("payto:"):
        raise ProductError("payto must be a payto: URI, such as payto://iban/…")
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await store.update_seller_profile(conn, actor.id, changes)


def order_json(order: OrderRow) -> dict:
    """An order as the command line and the API show it."""
    return {
        "id": order.uri, "listing": order.listing_uri, "buyer": order.buyer_uri, "seller": order.seller_uri,
        "quantity": order.quantity, "unit_price_krw": order.unit_price, "shipping_krw": order.shipping_krw,
        "total_krw": order.total_krw, "payment_method": order.payment_method,
        "total_tokens": order.total_tokens, "state": order.state,
        "channel": order.channel, "message": order.message, "reason": order.reason,
        "created_at": order.created_at.isoformat(), "updated_at": order.updated_at.isoformat(),
    }


def listing_json(listing: ListingRow) -> dict:
    """A listing as the command line and the API show it."""
    return {
        "id": listing.id, "url": listing.uri, "seller": listing.seller_uri, "title": listing.title,
        "price_krw": listing.price, "stock": listing.stock, "made_to_order": listing.stock is None,
        "token_price": listing.token_price, "shipping_krw": listing.shipping_krw,
        "free_shipping_over": listing.free_shipping_over, "auto_accept": listing.auto_accept,
        "status": listing.status, "created_at": listing.created_at.isoformat(),
        "updated_at": listing.updated_at.isoformat(),
    }
