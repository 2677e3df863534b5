"""SQL of the storefront: seller profiles, listings and their stock, orders and their history.

Functions take a connection; the caller owns the transaction. Stock and order state only move by
one UPDATE ... WHERE that checks what it changes (never read-then-write in Python), under the
table constraints (stock never below zero, states from the one list).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from activities.listing import Listing
from fedserver.repo.moderation import hidden_actor_sql
from fedserver.repo.safety import blocks_between_sql

# Seller profiles


@dataclass(frozen=True)
class SellerProfile:
    """What a maker discloses to buyers (전자상거래법 §13) and how to pay them."""

    business_name: str = ""
    representative: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""
    registration_number: str = ""
    mail_order_number: str = ""
    payment_text: str = ""
    payto: str = ""

    @property
    def discloses_business(self) -> bool:
        """Whether the maker gave the identity a registered online seller must show."""
        return bool(self.business_name and self.address and self.phone)


PROFILE_FIELDS = tuple(f.name for f in fields(SellerProfile))


async def get_seller_profile(conn: asyncpg.Connection, account_id: int) -> SellerProfile:
    """The maker's profile (empty for a hobby maker who gave none)."""
    row = await conn.fetchrow(f"SELECT {', '.join(PROFILE_FIELDS)} FROM seller_profiles WHERE account_id = $1",
                              account_id)
    return SellerProfile(**dict(row)) if row else SellerProfile()


async def update_seller_profile(conn: asyncpg.Connection, account_id: int, changes: dict[str, str]) -> SellerProfile:
    """Set some fields of the maker's profile (the others keep their value); the profile as stored."""
    names = [name for name in PROFILE_FIELDS if name in changes]
    columns = ", ".join(["account_id", *names])
    values = ", ".join(f"${i}" for i in range(1, len(names) + 2))
    updates = ", ".join([*(f"{n} = EXCLUDED.{n}" for n in names), "updated_at = now()"])
    await conn.execute(
        f"INSERT INTO seller_profiles ({columns}) VALUES ({values}) "
        f"ON CONFLICT (account_id) DO UPDATE SET {updates}",
        account_id, *(changes[n] for n in names),
    )
    return await get_seller_profile(conn, account_id)


# Listings


@dataclass(frozen=True)
class ListingRow:
    """A listing as stored, with its Note's id and its seller."""

    id: int
    uri: str
    object_id: int
    seller_id: int
    seller_uri: str
    seller_inbox: str
    is_local: bool
    title: str
    description: str
    currency: str
    price: int
    stock: int | None
    token_price: int | None
    shipping_krw: int
    free_shipping_over: int | None
    auto_accept: bool
    status: str
    created_at: datetime
    updated_at: datetime


_LISTING = """l.id, o.uri, l.object_id, l.seller_id, a.uri AS seller_uri, a.inbox_uri AS seller_inbox, l.is_local,
              l.title, l.description, l.currency,
              l.price, l.stock, l.token_price, l.shipping_krw, l.free_shipping_over, l.auto_accept, l.status,
              l.created_at, l.updated_at
              FROM listings l JOIN objects o ON o.id = l.object_id JOIN actors a ON a.id = l.seller_id"""


def _listing(row: asyncpg.Record | None) -> ListingRow | None:
    return ListingRow(**dict(row)) if row else None


async def next_listing_id(conn: asyncpg.Connection) -> int:
    """The id the next listing will have (its URL is made before its Note is stored)."""
    return await conn.fetchval("SELECT nextval(pg_get_serial_sequence('listings', 'id'))")


async def insert_listing_with_id(conn: asyncpg.Connection, listing_id: int, **values: object) -> None:
    """Store a local listing (its Note is already in `objects`) under an id taken with `next_listing_id`."""
    await conn.execute(
        """INSERT INTO listings (id, object_id, seller_id, is_local, title, description, price, stock, token_price,
                                 shipping_krw, free_shipping_over, auto_accept, status)
           OVERRIDING SYSTEM VALUE
           VALUES ($1, $2, $3, true, $4, $5, $6, $7, $8, $9, $10, $11,
                   CASE WHEN $7::integer = 0 THEN 'sold_out' ELSE 'active' END)""",
        listing_id, values["object_id"], values["seller_id"], values["title"], values["description"],
        values["price"], values["stock"], values["token_price"], values["shipping_krw"],
        values["free_shipping_over"], values["auto_accept"],
    )


async def get_listing(conn: asyncpg.Connection, listing_id: int) -> ListingRow | None:
    """A listing by its id here."""
    return _listing(await conn.fetchrow(f"SELECT {_LISTING} WHERE l.id = $1", listing_id))


async def get_listing_by_uri(conn: asyncpg.Connection, uri: str) -> ListingRow | None:
    """A listing by its Note's id (local or remote)."""
    return _listing(await conn.fetchrow(f"SELECT {_LISTING} WHERE o.uri = $1", uri))


async def lock_listing(conn: asyncpg.Connection, listing_id: int) -> ListingRow | None:
    """A listing, locked until the caller's transaction ends (a change of its fields and of its Note)."""
    return _listing(await conn.fetchrow(f"SELECT {_LISTING} WHERE l.id = $1 FOR UPDATE OF l", listing_id))


async def list_listings(conn: asyncpg.Connection, seller_id: int, *, include_deleted: bool = False,
                        limit: int = 200) -> list[ListingRow]:
    """A seller's listings, newest first."""
    rows = await conn.fetch(
        f"SELECT {_LISTING} WHERE l.seller_id = $1 AND ($2 OR l.status <> 'deleted') ORDER BY l.id DESC LIMIT $3",
        seller_id, include_deleted, limit,
    )
    return [_listing(r) for r in rows]  # type: ignore[misc]


@dataclass(frozen=True)
class ShopItem:
    """A listing as a shop page shows it: with its first image (its Note's first attachment), if any."""

    listing: ListingRow
    image: dict | None


async def shop_items(conn: asyncpg.Connection, *, seller_id: int | None, limit: int, offset: int = 0,
                     network: bool = False) -> list[ShopItem]:
    """Listings a visitor may see, newest first: one seller's (not deleted), or the instance's active ones, or
    (`network`) the active ones of every server this one knows."""
    if seller_id is not None:
        where = "l.seller_id = $1 AND l.status <> 'deleted'"
    else:
        where = f"{'true' if network else 'l.is_local'} AND l.status = 'active' AND $1::bigint IS NULL"
    where += f" AND NOT {hidden_actor_sql('l.seller_id', silenced_too=network)}"
    rows = await conn.fetch(
        f"""SELECT o.data -> 'attachment' -> 0 AS image, {_LISTING}
            WHERE {where} AND a.deleted_at IS NULL ORDER BY l.id DESC LIMIT $2 OFFSET $3""",
        seller_id, limit, offset,
    )
    items = []
    for row in rows:
        values = dict(row)
        image = values.pop("image")
        items.append(ShopItem(ListingRow(**values), image if isinstance(image, dict) and image.get("url") else None))
    return items


async def shop_items_by_uri(conn: asyncpg.Connection, uris: list[str]) -> dict[str, ShopItem]:
    """The active listings among `uris` (listing object ids) that a visitor may see, by uri."""
    rows = await conn.fetch(
        f"""SELECT o.data -> 'attachment' -> 0 AS image, {_LISTING}
            WHERE o.uri = ANY($1::text[]) AND l.status = 'active' AND a.deleted_at IS NULL
              AND NOT {hidden_actor_sql('l.seller_id', silenced_too=True)}""",
        uris,
    )
    found = {}
    for row in rows:
        values = dict(row)
        image = values.pop("image")
        found[values["uri"]] = ShopItem(ListingRow(**values),
                                        image if isinstance(image, dict) and image.get("url") else None)
    return found


_EDITABLE = ("title", "description", "price", "stock", "token_price", "shipping_krw", "free_shipping_over",
             "auto_accept", "status")


async def update_listing(conn: asyncpg.Connection, listing_id: int, changes: dict[str, object]) -> ListingRow:
    """Change some fields of a listing; a stock change also moves `status` between active and sold_out."""
    names = [n for n in _EDITABLE if n in changes]
    sets = [f"{n} = ${i}" for i, n in enumerate(names, start=2)]
    if "stock" in names and "status" not in names:
        sets.append(f"""status = CASE WHEN ${names.index('stock') + 2}::integer = 0 AND status = 'active' THEN 'sold_out'
                                      WHEN coalesce(${names.index('stock') + 2}::integer, 1) > 0 AND status = 'sold_out'
                                      THEN 'active' ELSE status END""")
    await conn.execute(f"UPDATE listings SET {', '.join(sets)}, updated_at = now() WHERE id = $1",
                       listing_id, *(changes[n] for n in names))
    return await get_listing(conn, listing_id)  # type: ignore[return-value]


async def reserve_stock(conn: asyncpg.Connection, listing_id: int, quantity: int) -> int | None:
    """Take `quantity` from an orderable listing's stock: how much came off a count (0 for a listing made
    to order, which has none to take, and none to give back on a cancel), or None when short.

    An active listing whose count reaches 0 is sold out; a paused one stays paused (its maker paused it,
    and a cancel or a restock must not make it orderable again)."""
    return await conn.fetchval(
        """UPDATE listings SET stock = stock - $2,
                  status = CASE WHEN stock - $2 = 0 AND status = 'active' THEN 'sold_out' ELSE status END,
                  updated_at = now()
           WHERE id = $1 AND status IN ('active', 'paused') AND (stock IS NULL OR stock >= $2)
           RETURNING CASE WHEN stock IS NULL THEN 0 ELSE $2 END""",
        listing_id, quantity,
    )


async def release_stock(conn: asyncpg.Connection, listing_id: int, quantity: int) -> None:
    """Give reserved stock back (an accepted order was cancelled); a sold-out listing is orderable again."""
    await conn.execute(
        """UPDATE listings SET stock = stock + $2,
                  status = CASE WHEN status = 'sold_out' THEN 'active' ELSE status END, updated_at = now()
           WHERE id = $1 AND stock IS NOT NULL""",
        listing_id, quantity,
    )


async def upsert_remote_listing(conn: asyncpg.Connection, object_id: int, seller_id: int, listing: Listing) -> None:
    """Keep what a remote Note's FEP-0837 fields say, for discovery (a new version replaces the old)."""
    await conn.execute(
        """INSERT INTO listings (object_id, seller_id, is_local, title, currency, price, stock, token_price)
           VALUES ($1, $2, false, $3, $4, $5, $6, $7)
           ON CONFLICT (object_id) DO UPDATE SET title = EXCLUDED.title, currency = EXCLUDED.currency,
               price = EXCLUDED.price, stock = EXCLUDED.stock, token_price = EXCLUDED.token_price, updated_at = now()
           WHERE NOT listings.is_local""",
        object_id, seller_id, listing.title, listing.currency, listing.price, listing.available, listing.token_price,
    )


async def mark_listing_deleted(conn: asyncpg.Connection, listing_id: int) -> None:
    """A deleted listing stays (orders point at it) but is never offered again."""
    await conn.execute("UPDATE listings SET status = 'deleted', updated_at = now() WHERE id = $1", listing_id)


# Orders


@dataclass(frozen=True)
class OrderRow:
    """An order as this instance keeps it, with the ids of its listing and parties."""

    id: int
    uri: str
    offer_uri: str | None
    listing_id: int
    listing_uri: str
    buyer_id: int
    buyer_uri: str
    buyer_is_local: bool
    seller_id: int
    seller_uri: str
    seller_is_local: bool
    quantity: int
    unit_price: int
    shipping_krw: int
    total_krw: int
    payment_method: str
    total_tokens: int | None
    channel: str
    state: str
    reserved: int
    message: str
    reason: str
    thread_uri: str | None
    created_at: datetime
    updated_at: datetime


_ORDER_COLUMNS = """r.id, r.uri, r.offer_uri, r.listing_id, o.uri AS listing_uri, r.buyer_id, b.uri AS buyer_uri,
            b.is_local AS buyer_is_local, r.seller_id, s.uri AS seller_uri, s.is_local AS seller_is_local,
            r.quantity, r.unit_price, r.shipping_krw, r.total_krw, r.payment_method, r.total_tokens, r.channel, r.state,
            r.reserved, r.message, r.reason, r.thread_uri, r.created_at, r.updated_at"""
_ORDER_JOINS = """JOIN listings l ON l.id = r.listing_id JOIN objects o ON o.id = l.object_id
            JOIN actors b ON b.id = r.buyer_id JOIN actors s ON s.id = r.seller_id"""
_ORDER = f"{_ORDER_COLUMNS} FROM orders r {_ORDER_JOINS}"


def _order(row: asyncpg.Record | None) -> OrderRow | None:
    return OrderRow(**dict(row)) if row else None


async def insert_order(conn: asyncpg.Connection, *, uri: str, offer_uri: str | None, listing_id: int, buyer_id: int,
                       seller_id: int, quantity: int, unit_price: int, shipping_krw: int, total_krw: int,
                       channel: str, message: str = "", thread_uri: str | None = None,
                       payment_method: str = "krw", total_tokens: int | None = None) -> OrderRow | None:
    """Store a new (requested) order once, with its first event: None when its Agreement id or Offer was seen."""
    return _order(await conn.fetchrow(
        f"""WITH r AS (
                INSERT INTO orders (uri, offer_uri, listing_id, buyer_id, seller_id, quantity, unit_price,
                                    shipping_krw, total_krw, channel, message, thread_uri, payment_method,
                                    total_tokens)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                ON CONFLICT DO NOTHING RETURNING *),
            event AS (INSERT INTO order_events (order_id, event, party, state, note)
                      SELECT id, 'order', 'buyer', 'requested', $11 FROM r)
            SELECT {_ORDER_COLUMNS} FROM r {_ORDER_JOINS}""",
        uri, offer_uri, listing_id, buyer_id, seller_id, quantity, unit_price, shipping_krw, total_krw, channel,
        message, thread_uri, payment_method, total_tokens,
    ))


async def get_order(conn: asyncpg.Connection, order_id: int) -> OrderRow | None:
    """An order by its id here."""
    return _order(await conn.fetchrow(f"SELECT {_ORDER} WHERE r.id = $1", order_id))


async def get_order_by_uri(conn: asyncpg.Connection, uri: str) -> OrderRow | None:
    """An order by its Agreement id."""
    return _order(await conn.fetchrow(f"SELECT {_ORDER} WHERE r.uri = $1", uri))


async def order_exists(conn: asyncpg.Connection, offer_uri: str, agreement_id: str | None) -> bool:
    """Whether an order was made by this Offer, or has this Agreement id."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders WHERE offer_uri = $1 OR uri = $2)",
                               offer_uri, agreement_id)


async def seller_suspended(conn: asyncpg.Connection, seller_id: int) -> bool:
    """Whether the maker of a listing is suspended by this server's moderation: its listings are hidden and
    take no orders."""
    return await conn.fetchval(f"SELECT {hidden_actor_sql('$1::bigint')}", seller_id)


async def order_barriers(conn: asyncpg.Connection, seller_id: int, buyer_id: int) -> tuple[bool, bool, bool]:
    """(the maker is suspended here, the maker blocks the buyer, the buyer blocks the maker), in one round trip."""
    row = await conn.fetchrow(
        f"SELECT {hidden_actor_sql('$1::bigint')} AS suspended, {blocks_between_sql('$1', '$2')}",
        seller_id, buyer_id)
    return row["suspended"], row["forward"], row["backward"]


async def answered_in_thread(conn: asyncpg.Connection, note_uri: str) -> bool:
    """Whether a direct message already made an order here, or was answered from here (an edit of it orders
    nothing again)."""
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM orders WHERE thread_uri = $1)
               OR EXISTS (SELECT 1 FROM objects WHERE in_reply_to_uri = $1 AND is_local)""", note_uri)


async def get_order_by_offer(conn: asyncpg.Connection, offer_uri: str) -> OrderRow | None:
    """An order by the Offer that made it."""
    return _order(await conn.fetchrow(f"SELECT {_ORDER} WHERE r.offer_uri = $1", offer_uri))


async def get_orders_by_offers(conn: asyncpg.Connection, offer_uris: list[str]) -> dict[str, OrderRow]:
    """The orders these Offers made, by Offer id (an Offer that made none is left out), in one round trip."""
    rows = await conn.fetch(f"SELECT {_ORDER} WHERE r.offer_uri = ANY($1::text[])", offer_uris)
    return {row["offer_uri"]: OrderRow(**dict(row)) for row in rows}


async def move_order(conn: asyncpg.Connection, order_id: int, from_state: str, to_state: str, *, event: str,
                     party: str, reserved: int | None = None, reason: str = "") -> OrderRow | None:
    """Set a new state, with its event, if the order is still in `from_state` (else None: someone moved it first)."""
    return _order(await conn.fetchrow(
        f"""WITH r AS (
                UPDATE orders SET state = $3, reserved = coalesce($4, reserved),
                                  reason = CASE WHEN $5 = '' THEN reason ELSE $5 END, updated_at = now()
                WHERE id = $1 AND state = $2 RETURNING *),
            event AS (INSERT INTO order_events (order_id, event, party, state, note)
                      SELECT id, $6, $7, $3, $5 FROM r)
            SELECT {_ORDER_COLUMNS} FROM r {_ORDER_JOINS}""",
        order_id, from_state, to_state, reserved, reason, event, party,
    ))


async def set_order_total(conn: asyncpg.Connection, order_id: int, *, shipping_krw: int,
                          total_krw: int) -> OrderRow | None:
    """The total a maker's acceptance states (the buyer's server did not know the shipping fee), while the order
    is still requested; the order, or None when it has moved on."""
    return _order(await conn.fetchrow(
        f"""WITH r AS (UPDATE orders SET shipping_krw = $2, total_krw = $3, updated_at = now()
                       WHERE id = $1 AND state = 'requested' RETURNING *)
            SELECT {_ORDER_COLUMNS} FROM r {_ORDER_JOINS}""",
        order_id, shipping_krw, total_krw))


async def token_orders_refused(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 100) -> list[tuple[int, str]]:
    """(id, why) of our buyers' token orders still open whose spend the maker's instance refused for good."""
    rows = await conn.fetch(
        """SELECT r.id, s.reason FROM orders r
           JOIN token_spends s ON s.order_uri = r.uri AND s.kind = 'spend' AND s.state = 'refused'
           JOIN actors b ON b.id = r.buyer_id AND b.is_local
           WHERE r.payment_method = 'tokens' AND r.state IN ('requested', 'accepted') ORDER BY r.id LIMIT $1""",
        limit)
    return [(r["id"], r["reason"]) for r in rows]


async def list_orders(conn: asyncpg.Connection, account_id: int, role: str | None, *,
                      limit: int = 500) -> list[OrderRow]:
    """An account's orders as buyer, seller or both (`role` None), newest first."""
    rows = await conn.fetch(
        f"""SELECT {_ORDER}
            WHERE ((r.buyer_id = $1 AND $2::text IS DISTINCT FROM 'seller')
                   OR (r.seller_id = $1 AND $2::text IS DISTINCT FROM 'buyer'))
            ORDER BY r.id DESC LIMIT $3""",
        account_id, role, limit,
    )
    return [_order(r) for r in rows]  # type: ignore[misc]


@dataclass(frozen=True)
class OrderLine:
    """An order as a page lists it: with its listing's title and both parties' names."""

    order: OrderRow
    title: str
    buyer_name: str
    buyer_acct: str
    seller_name: str
    seller_acct: str


async def order_lines(conn: asyncpg.Connection, account_id: int, role: str, *, limit: int = 100) -> list[OrderLine]:
    """An account's orders as `buyer` or `seller`, newest first, ready to show."""
    column = {"buyer": "r.buyer_id", "seller": "r.seller_id"}[role]
    rows = await conn.fetch(
        f"""SELECT {_ORDER_COLUMNS}, l.title, coalesce(nullif(b.display_name, ''), b.username) AS buyer_name,
                   b.username || '@' || b.domain AS buyer_acct,
                   coalesce(nullif(s.display_name, ''), s.username) AS seller_name,
                   s.username || '@' || s.domain AS seller_acct
            FROM orders r {_ORDER_JOINS} WHERE {column} = $1 ORDER BY r.id DESC LIMIT $2""",
        account_id, limit,
    )
    lines = []
    for row in rows:
        values = dict(row)
        names = {key: values.pop(key) for key in ("title", "buyer_name", "buyer_acct", "seller_name", "seller_acct")}
        lines.append(OrderLine(OrderRow(**values), **names))
    return lines


async def count_orders_by_state(conn: asyncpg.Connection, listing_id: int) -> dict[str, int]:
    """How many orders of a listing are in each state."""
    rows = await conn.fetch("SELECT state, count(*) AS n FROM orders WHERE listing_id = $1 GROUP BY state",
                            listing_id)
    return {row["state"]: row["n"] for row in rows}
