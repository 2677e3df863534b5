"""The storefront's JSON API for apps and pages: `/api/v1/storefront/products` and `/orders`.

Tokens need `read`/`write` or `read:storefront`/`write:storefront`. Listings are public (GET
without a token); orders are shown to their parties only (404 to anyone else). Refusals are
`{"error": ...}` with 422 (bad input, an order that cannot be placed), 404 (unknown, or not
yours) or 409 (a move the order's state does not allow).
"""

from __future__ import annotations

import re

from aiohttp import web

from storefront import actions, store
from storefront.actions import MARKS
from storefront.orders import OrderError, party_of
from storefront.products import ProductDraft, ProductError
from storefront.rules import MoveRefused

from ..app_keys import HTTP, POOL, PUBLISHER, SETTINGS
from ..errors import HTTPError
from ..federation import outbox
from ..repo import status_views
from .auth import current_auth, require_scopes, require_user
from .params import Params, body_params, query_params

READ, WRITE = ("read:storefront",), ("write:storefront",)
NOT_FOUND = "Record not found"
_WHOLE = re.compile(actions.LOCAL_ID)  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
_MAX_WHOLE = 10**18
# A product's fields as POST and PATCH take them; the names the API answers with (`price_krw`, `shipping_krw`)
# are taken too, and any other field is refused, so that a change is never silently dropped.
_ALIASES = {"price_krw": "price", "shipping_krw": "shipping"}
_CREATE_FIELDS = frozenset({"title", "description", "price", "stock", "made_to_order", "tags", "token_price",
                            "shipping", "free_shipping_over", "auto_accept", "media_ids"})
_CHANGE_FIELDS = frozenset({"title", "description", "status", "price", "token_price", "shipping",
                            "free_shipping_over", "stock", "made_to_order", "auto_accept"})


def _int(params: Params, name: str, *, required: bool = False) -> int | None:
    raw = params.raw(name)
    if raw is None or raw == "":
        if required:
            raise HTTPError(422, f"Validation failed: {name} is required")
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < _MAX_WHOLE:
        return raw
    if isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()):
        return int(raw)
    raise HTTPError(422, f"Validation failed: {name} must be a whole number of at most 18 digits")


def _product_params(params: Params, accepted: frozenset[str]) -> Params:
    """The body with the answer's names taken as the request's; 422 naming any field not taken here."""
    twice = [f"{name} and {alias}" for alias, name in _ALIASES.items() if alias in params and name in params]
    if twice:
        raise HTTPError(422, f"Validation failed: give either {twice[0]}, not both")
    data = {_ALIASES.get(name, name): value for name, value in params.data.items()}
    unknown = sorted(set(data) - accepted)
    if unknown:
        raise HTTPError(422, f"Validation failed: unknown or unchangeable field {', '.join(unknown)}"
                             f" (taken: {', '.join(sorted(accepted))})")
    return Params(data)


def _refused(exc: Exception) -> HTTPError:
    if isinstance(exc, MoveRefused):
        return HTTPError(409, str(exc))
    message = str(exc)
    if message.startswith("no ") and ("listing" in message or "order" in message):
        return HTTPError(404, NOT_FOUND)
    return HTTPError(422, f"Validation failed: {message}")


async def products_get(request: web.Request) -> web.Response:
    """GET /api/v1/storefront/products: an account's listings (`account_id`), else the caller's own."""
    params = query_params(request)
    account_id = _int(params, "account_id")
    caller = current_auth(request)
    if account_id is None:
        if caller is None or caller.account_id is None:
            raise HTTPError(401, "The access token is invalid")
        account_id = caller.account_id
    async with request.config_dict[POOL].acquire() as conn:
        listings = await store.list_listings(conn, account_id)
    return web.json_response([actions.listing_json(listing) for listing in listings if listing.is_local])


@require_scopes(*WRITE)
async def products_post(request: web.Request) -> web.Response:
    """POST /api/v1/storefront/products: list a product."""
    caller = require_user(request)
    params = _product_params(await body_params(request), _CREATE_FIELDS)
    stock = None if params.boolean("made_to_order") else _int(params, "stock")
    auto = params.boolean("auto_accept")
    draft = ProductDraft(
        title=params.string("title", max_len=1000, required=True) or "", price=_int(params, "price", required=True),
        stock=stock, description=params.string("description", max_len=100_000) or "",
        tags=tuple(params.strings("tags", max_items=20)), token_price=_int(params, "token_price"),
        shipping_krw=_int(params, "shipping") or 0,  # absent: shipping included
        free_shipping_over=_int(params, "free_shipping_over"),
        auto_accept=auto, media_ids=tuple(int(i) for i in params.strings("media_ids", max_items=8)
                                          if _WHOLE.fullmatch(i)))
    try:
        listing = await actions.create_product(request.config_dict[POOL], request.config_dict[PUBLISHER],
                                               caller.username or "", draft)
    except (ProductError, outbox.OutboxError) as exc:
        raise _refused(exc) from None
    return web.json_response(actions.listing_json(listing))


async def product_get(request: web.Request) -> web.Response:
    """GET /api/v1/storefront/products/:id: one listing."""
    async with request.config_dict[POOL].acquire() as conn:
        listing = await store.get_listing(conn, _path_id(request))
    if listing is None or not listing.is_local:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(actions.listing_json(listing))


@require_scopes(*WRITE)
async def product_patch(request: web.Request) -> web.Response:
    """PATCH /api/v1/storefront/products/:id: change one's listing (a change of its text federates)."""
    caller = require_user(request)
    params = _product_params(await body_params(request), _CHANGE_FIELDS)
    changes: dict[str, object] = {}
    for name in ("title", "description", "status"):
        if name in params:
            changes[name] = params.string(name, max_len=100_000)
    for name, column in (("price", "price"), ("token_price", "token_price"), ("shipping", "shipping_krw"),
                         ("free_shipping_over", "free_shipping_over")):
        if name in params:
            changes[column] = _int(params, name)
    if "stock" in params or params.boolean("made_to_order"):
        # Made to order only by saying so: an empty or null stock is refused, not taken as "no count".
        changes["stock"] = None if params.boolean("made_to_order") else _int(params, "stock", required=True)
    if "auto_accept" in params:
        changes["auto_accept"] = bool(params.boolean("auto_accept"))
    try:
        listing = await actions.update_product(request.config_dict[POOL], request.config_dict[PUBLISHER],
                                               str(_path_id(request)), changes, username=caller.username)
    except ProductError as exc:
        raise _refused(exc) from None
    return web.json_response(actions.listing_json(listing))


@require_scopes(*WRITE)
async def product_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/storefront/products/:id: delist (the listing's page then answers 410)."""
    caller = require_user(request)
    pool, listing_id = request.config_dict[POOL], _path_id(request)
    try:
        await actions.delete_product(pool, request.config_dict[PUBLISHER], str(listing_id), username=caller.username)
    except ProductError as exc:
        raise _refused(exc) from None
    async with pool.acquire() as conn:
        listing = await store.get_listing(conn, listing_id)
    return web.json_response(actions.listing_json(listing))  # type: ignore[arg-type]


@require_scopes(*READ)
async def orders_get(request: web.Request) -> web.Response:
    """GET /api/v1/storefront/orders: the caller's orders (`role` buyer or seller), newest first."""
    caller = require_user(request)
    role = query_params(request).string("role", max_len=10)
    if role not in (None, "", "buyer", "seller"):
        raise HTTPError(422, "Validation failed: role must be buyer or seller")
    async with request.config_dict[POOL].acquire() as conn:
        found = await store.list_orders(conn, caller.account_id, role or None)  # type: ignore[arg-type]
    return web.json_response([actions.order_json(order) for order in found])


@require_scopes(*WRITE)
async def orders_post(request: web.Request) -> web.Response:
    """POST /api/v1/storefront/orders: order `quantity` of a listing (`listing`: its URL or local id), paid
    in won (`pay=krw`, the default) or with the caller's reward tokens (`pay=tokens`)."""
    caller = require_user(request)
    params = await body_params(request)
    listing = params.string("listing", max_len=2000, required=True) or ""
    quantity = _int(params, "quantity")
    quantity = 1 if quantity is None else quantity
    try:
        order = await actions.place_order(request.config_dict[POOL], request.config_dict[PUBLISHER],
                                          request.config_dict[HTTP], caller.username or "", listing, quantity,
                                          params.string("message", max_len=1000) or "",
                                          params.string("pay", max_len=10) or "krw")
    except (ProductError, OrderError, outbox.OutboxError) as exc:
        raise _refused(exc) from None
    return web.json_response(actions.order_json(order))


async def _own_order(request: web.Request) -> store.OrderRow:
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        try:
            order = await actions.find_order(conn, request.config_dict[SETTINGS], request.match_info["id"])
        except OrderError:
            raise HTTPError(404, NOT_FOUND) from None
        actors = await status_views.get_actors(conn, [caller.account_id])  # type: ignore[list-item]
    caller_actor = actors.get(caller.account_id)  # type: ignore[arg-type]
    if caller_actor is None or party_of(order, caller_actor.uri) is None:
        raise HTTPError(404, NOT_FOUND)
    return order


@require_scopes(*READ)
async def order_get(request: web.Request) -> web.Response:
    """GET /api/v1/storefront/orders/:id: one of the caller's orders."""
    return web.json_response(actions.order_json(await _own_order(request)))


def _mover(event: str):
    @require_scopes(*WRITE)
    async def order_move_post(request: web.Request) -> web.Response:
        caller = require_user(request)
        order = await _own_order(request)
        params = await body_params(request)
        move = event
        if event == "mark":
            state = params.string("state", max_len=20)
            if state not in MARKS:
                raise HTTPError(422, "Validation failed: state must be paid, shipped or delivered")
            move = MARKS[state]
        reason = params.string("reason", max_len=1000) or ""
        if move in ("reject", "cancel") and not reason.strip():
            raise HTTPError(422, "Validation failed: reason is required")
        try:
            moved = await actions.move_order(request.config_dict[POOL], request.config_dict[PUBLISHER], order.uri,
                                             move, reason=reason, username=caller.username)
        except (OrderError, MoveRefused) as exc:
            raise _refused(exc) from None
        return web.json_response(actions.order_json(moved))

    order_move_post.__doc__ = f"POST /api/v1/storefront/orders/:id/{event}"
    return order_move_post


def _path_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not _WHOLE.fullmatch(raw):
        raise HTTPError(404, NOT_FOUND)
    return int(raw)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/storefront/products", products_get)
    api.router.add_post("/v1/storefront/products", products_post)
    api.router.add_get("/v1/storefront/products/{id}", product_get)
    api.router.add_patch("/v1/storefront/products/{id}", product_patch)
    api.router.add_delete("/v1/storefront/products/{id}", product_delete)
    api.router.add_get("/v1/storefront/orders", orders_get)
    api.router.add_post("/v1/storefront/orders", orders_post)
    api.router.add_get("/v1/storefront/orders/{id}", order_get)
    for event in ("accept", "reject", "mark", "cancel", "complete"):
        api.router.add_post(f"/v1/storefront/orders/{{id}}/{event}", _mover(event))
