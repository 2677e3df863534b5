"""Ordering from the web: the order form of a listing, a buyer's `/orders`, and the moves of an order.

Every form here needs the site session (`session.login_required`) and its CSRF token; a
refused order or move answers 422 with the reason and changes nothing (the storefront
checks it all in one transaction). The moves are the storefront's own (`storefront.actions`),
so the other party hears of them exactly as from the command line or the API.
"""

from __future__ import annotations

import logging

from aiohttp import web

from storefront import actions
from storefront import store as shop_store
from storefront.orders import OrderError, party_of
from storefront.products import ProductError
from storefront.rules import MoveRefused, moves_for

from ..app_keys import HTTP, POOL, PUBLISHER, SETTINGS
from ..auth import viewer
from ..federation.outbox import OutboxError
from ..repo import actors as actors_repo
from .session import forged, login_required, page, see_other

log = logging.getLogger("fedserver.web")

# The buttons' `action` values (names kept for scripts) and the storefront's moves they make.
ACTIONS = {"accept": "accept", "reject": "reject", "mark-paid": "pay", "mark-shipped": "ship",
           "mark-delivered": "deliver", "cancel": "cancel", "complete": "complete"}
BUTTONS = {move: action for action, move in ACTIONS.items()}
NEEDS_REASON = ("reject", "cancel")


def buttons(state: str, party: str, payment_method: str = "krw") -> list[str]:
    """The `action` values a party may press on an order in `state` (a token order is paid by its spend)."""
    return [BUTTONS[move] for move in moves_for(state, party) if not (move == "pay" and payment_method == "tokens")]


def _quantity(raw: object) -> int | None:
    text = raw.strip() if isinstance(raw, str) else ""
    return int(text) if text.isdecimal() and len(text) <= 6 else None  # isdecimal(): "²" is no quantity


@login_required
async def order_post(request: web.Request) -> web.Response:
    """`POST /listings/{id}/order`: the logged-in account orders `quantity` (and says `message`)."""
    session = viewer(request)
    form = await request.post()
    if not session.form_matches(form):
        return forged(request)
    listing_id = request.match_info["id"]
    quantity = _quantity(form.get("quantity", "1"))
    message = form.get("message") if isinstance(form.get("message"), str) else ""
    pay = form.get("pay") if form.get("pay") in ("krw", "tokens") else "krw"
    if quantity is None:
        return _refused(request, "the quantity must be a whole number from 1 to 1000", listing_id)
    try:
        order = await actions.place_order(request.config_dict[POOL], request.config_dict[PUBLISHER],
                                          request.config_dict.get(HTTP), session.username, listing_id, quantity,
                                          message.strip()[:1000], pay)
    except (ProductError, OrderError, OutboxError) as exc:
        return _refused(request, str(exc), listing_id)
    log.info("ordered from the web", extra={"account": session.username, "order": order.uri})
    return see_other(f"/orders#order-{order.id}")


def _refused(request: web.Request, reason: str, listing_id: str) -> web.Response:
    return page(request, "order_refused.html", 422, reason=reason, back=f"/listings/{listing_id}")


@login_required
async def orders_get(request: web.Request) -> web.Response:
    """`/orders`: what the logged-in account ordered, newest first, with the moves it may make."""
    session = viewer(request)
    async with request.config_dict[POOL].acquire() as conn:
        lines = await shop_store.order_lines(conn, session.account_id, "buyer")
    return page(request, "orders.html", lines=lines, buttons=buttons, csrf_token=session.csrf_token)


@login_required
async def order_move_post(request: web.Request) -> web.Response:
    """`POST /orders/{local id}/move`: one move (`action`) by the logged-in party; back to `next`."""
    session = viewer(request)
    form = await request.post()
    if not session.form_matches(form):
        return forged(request)
    action = form.get("action")
    back = "/dashboard" if form.get("next") == "/dashboard" else "/orders"
    if action not in ACTIONS:
        return page(request, "order_refused.html", 422, reason=f"unknown action: {action}", back=back)
    move = ACTIONS[action]
    reason = form.get("reason") if isinstance(form.get("reason"), str) else ""
    if move in NEEDS_REASON and not reason.strip():
        return page(request, "order_refused.html", 422, reason="say why (the other party is told)", back=back)
    pool, settings = request.config_dict[POOL], request.config_dict[SETTINGS]
    async with pool.acquire() as conn:
        try:
            order = await actions.find_order(conn, settings, request.match_info["id"])
        except OrderError:
            order = None
        me = await actors_repo.get_actor_by_id(conn, session.account_id)
    if order is None or me is None or party_of(order, me.uri) is None:
        return page(request, "order_refused.html", 404, reason="no such order of yours", back=back)
    try:
        await actions.move_order(pool, request.config_dict[PUBLISHER], order.uri, move, reason=reason.strip()[:1000],
                                 username=session.username)
    except (OrderError, MoveRefused) as exc:
        return page(request, "order_refused.html", 422, reason=str(exc), back=back)
    return see_other(f"{back}#order-{order.id}")


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/listings/{id:[0-9]{1,18}}/order", order_post)
    app.router.add_get("/orders", orders_get)
    app.router.add_post("/orders/{id:[0-9]{1,18}}/move", order_move_post)
