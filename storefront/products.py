"""Products: listing, changing and delisting them, each published as a federated Note.

A listing is stored twice over in one transaction: its shop fields in `listings` and the Note it
federates as in `objects` (so it is a status like any post: it reaches the followers' home
timelines, and likes, boosts and replies land on it and earn receipts). Creating one sends
`Create(Note)` to the followers; a change of title, price or description sends `Update(Note)`;
a stock change does not (the served Note carries the current `availableQuantity`); deleting
sends `Delete` and leaves a Tombstone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

import asyncpg

from activities.actor import Actor
from activities.build import activity_uri, build_create, build_delete, build_update, new_object_id
from activities.context import PUBLIC
from activities.listing import MAX_PRICE_KRW, ListingText, build_listing
from activities.text import compose_html, normalize_hashtag
from fedserver.config import Settings
from fedserver.federation import feeds
from fedserver.publish import Publisher
from fedserver.repo import interactions as interactions_repo
from fedserver.repo import media as media_repo
from fedserver.repo import published as published_repo
from fedserver.repo import statuses as statuses_repo
from fedserver.repo.deliveries import follower_inboxes
from fedserver.repo.search import index_post_text

from . import store
from .store import ListingRow

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_STOCK = 1_000_000
MAX_TOKEN_PRICE = 1_000_000_000
MAX_SHIPPING = 10_000_000
MAX_TAGS = 10
STATUSES_SET_BY_HAND = ("active", "paused")


class ProductError(Exception):
    """A product change refused; the message says why."""


@dataclass(frozen=True)
class ProductDraft:
    """What a maker gives for a new product."""

    title: str
    price: int
    stock: int | None = None  # None: made to order
    description: str = ""
    tags: tuple[str, ...] = ()
    token_price: int | None = None
    shipping_krw: int = 0
    free_shipping_over: int | None = None
    auto_accept: bool | None = None  # None: on for counted stock, off for made to order
    media_ids: tuple[int, ...] = ()


def listing_url(settings: Settings, listing_id: int) -> str:
    """Where a local listing is served (as ActivityPub JSON and as a page)."""
    return f"{settings.base_url}/listings/{listing_id}"


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProductError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise ProductError(f"{name} must be from {low:,} to {high:,}")
    return value


def check_price(price: object) -> int:
    """A price in won: a whole number above 0, at most ₩100,000,000."""
    return _whole("the price", price, 1, MAX_PRICE_KRW)


def check_draft(draft: ProductDraft) -> ProductDraft:
    """The draft if every field is acceptable; ProductError naming the first that is not."""
    title = draft.title.strip() if isinstance(draft.title, str) else ""
    if not title or len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
        raise ProductError(f"the title must be 1 to {MAX_TITLE} characters without control characters")
    check_price(draft.price)
    if draft.stock is not None:
        _whole("the stock", draft.stock, 0, MAX_STOCK)
    if draft.token_price is not None:
        _whole("the token price", draft.token_price, 1, MAX_TOKEN_PRICE)
    _whole("the shipping fee", draft.shipping_krw, 0, MAX_SHIPPING)
    if draft.free_shipping_over is not None:
        _whole("the free-shipping total", draft.free_shipping_over, 1, MAX_PRICE_KRW * 10)
    if len(draft.description) > MAX_DESCRIPTION:
        raise ProductError(f"the description is limited to {MAX_DESCRIPTION:,} characters")
    tags = tuple(dict.fromkeys(t for t in (normalize_hashtag(tag) for tag in draft.tags) if t))
    if len(tags) > MAX_TAGS or len(tags) < len([t for t in draft.tags if t.strip()]):
        raise ProductError(f"give at most {MAX_TAGS} hashtags of letters, digits and underscores")
    return ProductDraft(title=title, price=draft.price, stock=draft.stock, description=draft.description.strip(),
                        tags=tags, token_price=draft.token_price, shipping_krw=draft.shipping_krw,
                        free_shipping_over=draft.free_shipping_over,
                        auto_accept=draft.stock is not None if draft.auto_accept is None else draft.auto_accept,
                        media_ids=draft.media_ids)


def _text(settings: Settings, listing: ListingRow | ProductDraft, tags: Sequence[str]) -> ListingText:
    base = f"{settings.base_url}/tags/"
    stock = listing.stock
    return ListingText(title=listing.title, price=listing.price, available=stock, shipping=listing.shipping_krw,
                       free_shipping_over=listing.free_shipping_over, token_price=listing.token_price,
                       description_html=compose_html(listing.description, {}) if listing.description else "",
                       hashtags=tuple((tag, base + quote(tag)) for tag in tags))


async def create_product(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, draft: ProductDraft
                         ) -> ListingRow:
    """List a product: store it and its Note, and send Create(Note) to the followers."""
    draft = check_draft(draft)
    settings = publisher.settings
    listing_id = await store.next_listing_id(conn)
    uri = listing_url(settings, listing_id)
    published = datetime.now(timezone.utc)
    note = build_listing(actor, id=uri, text=_text(settings, draft, draft.tags), published=published)
    object_id = await statuses_repo.insert_object(
        conn, uri=uri, object_type="Note", actor_id=actor.id, is_local=True, content=note["content"],
        name=draft.title, summary=None, url=uri, in_reply_to_uri=None, visibility="public", data=note,
        published_at=published)
    await store.insert_listing_with_id(
        conn, listing_id, object_id=object_id, seller_id=actor.id, title=draft.title, description=draft.description,
        price=draft.price, stock=draft.stock, token_price=draft.token_price, shipping_krw=draft.shipping_krw,
        free_shipping_over=draft.free_shipping_over, auto_accept=draft.auto_accept)
    note = await _attach(conn, actor.id, object_id, note, draft.media_ids)
    await feeds.post_stored(conn, object_id, mention_uris=[], hashtags=list(draft.tags))
    await index_post_text(conn, object_id, note["content"])
    create = build_create(actor.uri, activity_uri(actor.uri, "create", new_object_id()), note)
    await publisher.publish(conn, actor, create, await follower_inboxes(conn, actor.id), object_uri=uri,
                            visibility="public")
    return await store.get_listing(conn, listing_id)  # type: ignore[return-value]


async def _attach(conn: asyncpg.Connection, actor_id: int, object_id: int, note: dict,
                  media_ids: Sequence[int]) -> dict:
    if not media_ids:
        return note
    try:
        media = await media_repo.attach_media(conn, actor_id, list(media_ids), object_id)
    except media_repo.MediaError as exc:
        raise ProductError(str(exc)) from None
    note = {**note, "attachment": media_repo.attachment_documents(media)}
    await statuses_repo.update_object_data(conn, object_id, note)
    return note


async def own_listing(conn: asyncpg.Connection, actor: Actor, listing_id: int) -> ListingRow:
    """The actor's own listing, locked for a change; ProductError when there is none."""
    listing = await store.lock_listing(conn, listing_id)
    if listing is None or not listing.is_local or listing.seller_id != actor.id:
        raise ProductError(f"@{actor.username} has no listing {listing_id}")
    if listing.status == "deleted":
        raise ProductError(f"listing {listing_id} is deleted")
    return listing


_FEDERATED = ("title", "price", "description", "shipping_krw", "free_shipping_over", "token_price")


async def update_product(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, listing_id: int,
                         changes: dict[str, object]) -> ListingRow:
    """Change a listing; a change of what its Note says (not its stock) sends Update(Note) to everyone it reached."""
    listing = await own_listing(conn, actor, listing_id)
    changes = _checked_changes(listing, changes)
    if not changes:
        raise ProductError("nothing to change")
    listing = await store.update_listing(conn, listing_id, changes)
    post = await statuses_repo.get_object_by_uri(conn, listing.uri)
    assert post is not None
    tags = [t["name"].lstrip("#") for t in post.data.get("tag") or [] if t.get("type") == "Hashtag"]
    now = datetime.now(timezone.utc)
    note = build_listing(actor, id=listing.uri, text=_text(publisher.settings, listing, tags),
                         published=post.published_at, attachments=tuple(post.data.get("attachment") or ()))
    if not any(name in changes for name in _FEDERATED):
        await statuses_repo.update_object_data(conn, post.id, note)  # what the API shows; no Update is sent
        return listing
    note["updated"] = now.isoformat().replace("+00:00", "Z")
    await statuses_repo.update_local_object(conn, post.id, content=note["content"], summary=None, data=note,
                                            updated_at=now)
    await index_post_text(conn, post.id, note["content"])
    inboxes = await published_repo.audience_inboxes(conn, listing.uri) + await follower_inboxes(conn, actor.id)
    update = build_update(actor.uri, activity_uri(actor.uri, "update", new_object_id()), note, now)
    await publisher.publish(conn, actor, update, inboxes, object_uri=listing.uri, visibility="public")
    return listing


def _checked_changes(listing: ListingRow, changes: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in changes.items():
        if value is None and name not in ("stock", "free_shipping_over", "token_price"):
            continue
        if name == "title":
            check_draft(ProductDraft(title=str(value), price=listing.price))
            out[name] = str(value).strip()
        elif name == "price":
            out[name] = check_price(value)
        elif name == "stock":
            out[name] = None if value is None else _whole("the stock", value, 0, MAX_STOCK)
        elif name == "description":
            if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
                raise ProductError(f"the description is limited to {MAX_DESCRIPTION:,} characters")
            out[name] = value.strip()
        elif name == "status":
            if value not in STATUSES_SET_BY_HAND:
                raise ProductError("the status can be set to active or paused (delete a listing to end it)")
            stock_after = changes["stock"] if "stock" in changes else listing.stock  # a restock in the same change
            if value == "active" and stock_after == 0:
                raise ProductError("a listing with no stock left cannot be active: add stock")
            out[name] = value
        elif name == "token_price":
            out[name] = None if value is None else _whole("the token price", value, 1, MAX_TOKEN_PRICE)
        elif name == "shipping_krw":
            out[name] = _whole("the shipping fee", value, 0, MAX_SHIPPING)
        elif name == "free_shipping_over":
            out[name] = None if value is None else _whole("the free-shipping total", value, 1, MAX_PRICE_KRW * 10)
        elif name == "auto_accept":
            out[name] = bool(value)
        else:
            raise ProductError(f"{name} cannot be changed")
    return {k: v for k, v in out.items() if getattr(listing, k) != v}


async def delete_product(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, listing_id: int) -> str:
    """Delist a product: its Note becomes a Tombstone (410) and Delete goes to everyone it reached."""
    listing = await own_listing(conn, actor, listing_id)
    post = await statuses_repo.get_object_by_uri(conn, listing.uri)
    assert post is not None
    await store.mark_listing_deleted(conn, listing_id)
    await statuses_repo.mark_object_deleted(conn, post.id)
    await interactions_repo.insert_tombstone(conn, post.uri, actor.uri, owner=True)
    inboxes = await published_repo.audience_inboxes(conn, post.uri) + await follower_inboxes(conn, actor.id)
    delete = build_delete(actor.uri, activity_uri(actor.uri, "delete", new_object_id()), post.uri, "Note",
                          to=[PUBLIC], cc=list(post.data.get("cc") or []))
    return await publisher.publish(conn, actor, delete, inboxes, object_uri=post.uri, visibility="public")
