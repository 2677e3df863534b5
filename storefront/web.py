"""`/listings/{id}` and `/orders/{id}`: a listing as ActivityPub JSON or a page; an order to its parties.

A listing's JSON is its Note with the current stock in `availableQuantity` (stock changes are
not sent as Updates); once deleted it answers 410 with a Tombstone. An order (its Agreement)
is served only to a request signed by one of its parties; everyone else gets 404.
"""

from __future__ import annotations

from aiohttp import web

from activities.actor import build_tombstone
from activities.listing import with_available
from activities.text import compose_html
from activities.trade import build_agreement
from fedserver.app_keys import POOL, SETTINGS
from fedserver.auth.signed import signed_reader
from fedserver.documents import activity_response, wants_activitypub
from fedserver.errors import HTTPError
from fedserver.repo import actors as actors_repo
from fedserver.repo import statuses as statuses_repo
from fedserver.templates import cached_page, render_page

from . import store
from .orders import party_of

NOT_FOUND = "no such listing"


@cached_page
async def listing_get(request: web.Request) -> web.Response:
    """A local listing: its Note (current stock) for ActivityPub clients, its page for browsers."""
    listing_id = int(request.match_info["id"])
    async with request.config_dict[POOL].acquire() as conn:
        listing = await store.get_listing(conn, listing_id)
        post = await statuses_repo.get_object_by_uri(conn, listing.uri) if listing and listing.is_local else None
        if listing is None or post is None:
            raise HTTPError(404, NOT_FOUND)
        if post.deleted_at is not None:
            return activity_response(request, build_tombstone(post.uri, "Note", post.deleted_at), status=410)
        if not wants_activitypub(request):
            seller = await actors_repo.get_actor_by_uri(conn, listing.seller_uri)
            profile = await store.get_seller_profile(conn, listing.seller_id)
            if seller is None:
                raise HTTPError(404, NOT_FOUND)
            # The maker's description (plain text); the Note's content repeats title, price and stock for Mastodon.
            return render_page(request, "listing.html", listing=listing,
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


def setup_routes(app: web.Application) -> None:
    """Register the listing and order documents."""
    app.router.add_get("/listings/{id:[0-9]{1,18}}", listing_get)
    app.router.add_get("/orders/{id:[0-9]{1,20}}", order_get)
