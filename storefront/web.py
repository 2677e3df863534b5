"""`/listings/{id}` and `/orders/{id}`: a listing as ActivityPub JSON or a page; an order to its parties.

A listing's JSON is its Note with the current stock in `availableQuantity` (stock changes are
not sent as Updates); once deleted it answers 410 with a Tombstone. An order (its Agreement)
is served only to a request signed by one of its parties; everyone else gets 404.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from activities.actor import build_tombstone
from activities.listing import with_available
from activities.text import compose_html
from activities.trade import build_agreement
from fedserver.app_keys import POOL, PUBLISHER, SETTINGS
from fedserver.auth import viewer
from fedserver.auth.signed import signed_reader
from fedserver.documents import activity_response, wants_activitypub
from fedserver.errors import HTTPError
from fedserver.jobs.batcher import Batcher, Write
from fedserver.publish import Publisher
from fedserver.repo import actors as actors_repo
from fedserver.repo import statuses as statuses_repo
from fedserver.templates import cached_page, render_page
from rewards import spend_store
from rewards.receipts import ReceiptRefused
from rewards.spending import CheckedSpend, SpendAccepted, check_spend
from rewards.web import rewards_context

from . import store
from .orders import party_of, receive_spends

NOT_FOUND = "no such listing"
# Spends checked by the handlers, written in group-committed batches.
SPENDS: web.AppKey[Batcher[CheckedSpend, SpendAccepted | ReceiptRefused]] = web.AppKey("storefront_spends", Batcher)


@cached_page
async def listing_get(request: web.Request) -> web.Response:
    """A local listing: its Note (current stock) for ActivityPub clients, its page for browsers."""
    listing_id = int(request.match_info["id"])
    async with request.config_dict[POOL].acquire() as conn:
        listing = await store.get_listing(conn, listing_id)
        post = await statuses_repo.get_object_by_uri(conn, listing.uri) if listing and listing.is_local else None
        if listing is None or post is None or await store.seller_suspended(conn, listing.seller_id):
            raise HTTPError(404, NOT_FOUND)  # a suspended maker's listings are hidden, as its posts are
        if post.deleted_at is not None:
            return activity_response(request, build_tombstone(post.uri, "Note", post.deleted_at), status=410)
        if not wants_activitypub(request):
            seller = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
            profile = await store.get_seller_profile(conn, listing.seller_id)
            if seller is None:
                raise HTTPError(404, NOT_FOUND)
            # The maker's description (plain text); the Note's content repeats title, price and stock for Mastodon.
            session = viewer(request)
            tokens_held = await spend_store.wallet_available(
                conn, f"{request.config_dict[SETTINGS].base_url}/users/{session.username}") \
                if session is not None and listing.token_price else None
            return render_page(request, "listing.html", listing=listing, tokens_held=tokens_held,
                               description=compose_html(listing.description, {}) if listing.description else "",
                               images=[a for a in post.data.get("attachment") or []
                                       if isinstance(a, dict) and a.get("type") != "Link" and a.get("url")],
                               profile=profile, seller_username=seller.username,
                               seller_name=seller.display_name or seller.username,
                               seller_handle=f"@{seller.username}@{request.config_dict[SETTINGS].instance.domain}")
    return activity_response(request, with_available(post.data, listing.stock), cache_seconds=10)


async def order_get(request: web.Request) -> web.Response:
    """An order's Agreement, for a request signed by the buyer or the seller."""
    uri = f"{request.config_dict[SETTINGS].base_url}/orders/{request.match_info['id']}"
    reader = await signed_reader(request)
    async with request.config_dict[POOL].acquire() as conn:
        order = await store.get_order_by_uri(conn, uri)
    if order is None or reader is None or party_of(order, reader) is None:
        raise HTTPError(404, "no such order")
    agreement = build_agreement(order.uri, order.listing_uri, order.quantity, order.total_krw,
                                attributed_to=order.seller_uri,
                                state=order.state if order.state in ("paid", "shipped", "delivered", "cancelled")
                                else None)
    response = activity_response(request, {"@context": "https://www.w3.org/ns/activitystreams", **agreement})
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def spends_post(request: web.Request) -> web.Response:
    """`POST /rewards/spends`: a member instance's spend of its buyer's tokens on a listing here (or the undo of
    one), as a signed rewards/spend/v1 note: checked, countersigned and appended to our log; the answer
    carries our countersignature line, like `/rewards/receipts`."""
    ctx = rewards_context(request)
    body = await request.read()
    try:
        checked = await check_spend(ctx, request.config_dict[POOL], body)
        accepted = await request.config_dict[SPENDS].submit(checked)
    except ReceiptRefused as exc:
        raise HTTPError(exc.status, exc.message) from None
    except asyncpg.UniqueViolationError:  # the same spend, committed by a concurrent request: seen on retry
        raise HTTPError(503, "this order's spend is being recorded; retry") from None
    if isinstance(accepted, ReceiptRefused):
        raise HTTPError(accepted.status, accepted.message)
    return web.json_response({"index": accepted.index, "countersignature": accepted.countersignature,
                              "origin": ctx.keys.origin, "duplicate": accepted.duplicate})


def spend_writer(publisher: Publisher) -> Write:
    """Record a batch of checked spends in one transaction (one commit for all who arrived together); a refused
    spend is refused before it writes anything, so it is returned as its refusal and the others stand."""

    async def write(conn: asyncpg.Connection, items: list[CheckedSpend]) -> list[SpendAccepted | ReceiptRefused]:
        async with conn.transaction():
            return await receive_spends(conn, publisher, items)

    return write


async def _spends_lifecycle(app: web.Application):
    app[SPENDS] = Batcher(app[POOL], spend_writer(app[PUBLISHER]), name="token-spends", max_batch=128,
                          max_flushers=2)
    yield
    await app[SPENDS].stop()


def setup_routes(app: web.Application) -> None:
    """Register the listing and order documents, and the endpoint that countersigns token spends."""
    app.cleanup_ctx.append(_spends_lifecycle)
    app.router.add_get("/listings/{id:[0-9]{1,18}}", listing_get)
    app.router.add_get("/orders/{id:[0-9]{1,20}}", order_get)
    app.router.add_post("/rewards/spends", spends_post)
