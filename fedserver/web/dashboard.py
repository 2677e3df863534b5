"""`/dashboard`: the owner's room. Orders to handle, a post or an article to write, a product to list, the points.

Each form posts here with the session's CSRF token. A form that is refused (a price that is
not a whole number, an image that is not one) is shown again with what was typed and the
reason, with status 422, and no post or product is stored. (The product's fields are checked
before its image is processed; an image that was stored for a post refused afterwards stays
unattached, as an API upload that no post uses.) Posting and listing go through the same services as
the command line and the API, so followers receive them the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from rewards import web as rewards_web
from rewards.logstore import get_state
from rewards.store import recent_receipts, unpublished_points
from storefront import actions
from storefront import store as shop_store
from storefront.products import ProductDraft, ProductError, check_draft

from ..app_keys import MEDIA_SLOTS, POOL, PUBLISHER, SETTINGS
from ..auth import Session, viewer
from ..errors import HTTPError
from ..federation import commands
from ..federation.outbox import OutboxError
from ..federation.posting import PostOptions
from ..media.service import MediaRefused, Upload, upload_media
from ..multipart import read_form
from ..repo import actors as actors_repo
from .orders import buttons
from .session import forged, login_required, page, see_other

log = logging.getLogger("fedserver.web")

POST_FIELDS = ("csrf_token", "text", "title", "image_description")
PRODUCT_FIELDS = ("csrf_token", "title", "price", "stock", "description", "shipping", "image_description")


async def _dashboard(request: web.Request, session: Session, *, status: int = 200, **forms: Any) -> web.Response:
    async with request.config_dict[POOL].acquire() as conn:
        me = await actors_repo.get_actor_by_id(conn, session.account_id)
        if me is None:
            raise HTTPError(404, "no such account")
        orders = await shop_store.order_lines(conn, session.account_id, "seller")
        products = await shop_store.shop_items(conn, seller_id=session.account_id, limit=100)
        published_size = (await get_state(conn)).published_size or 0
        pending = await unpublished_points(conn, me.uri, published_size)  # not yet in a witnessed checkpoint
        standing = await rewards_web.published_balance(conn, request.config_dict[SETTINGS], me.uri)
        receipts = await recent_receipts(conn, me.uri)
    forms.setdefault("post_form", {})
    forms.setdefault("product_form", {})
    return page(request, "dashboard.html", status, me=me, orders=orders, products=products, points=standing.points,
                pending=pending, settling=standing.pending, tokens=standing.tokens, receipts=receipts, published_size=published_size,
                buttons=buttons, csrf_token=session.csrf_token, **forms)


@login_required
async def dashboard_get(request: web.Request) -> web.Response:
    return await _dashboard(request, viewer(request))


async def _form(request: web.Request, fields: tuple[str, ...]) -> tuple[dict[str, str], tuple[bytes, str | None]]:
    """The text fields and the `image` of a multipart form (a form without a file may come url-encoded)."""
    settings = request.config_dict[SETTINGS]
    if request.content_type == "multipart/form-data":
        texts, files = await read_form(request, text_fields=fields, file_fields=("image",),
                                       max_file_bytes=settings.media.max_image_bytes)
        return texts, files.get("image", (b"", None))
    form = await request.post()
    return {k: v for k, v in form.items() if k in fields and isinstance(v, str)}, (b"", None)


async def _image(request: web.Request, session: Session, image: tuple[bytes, str | None],
                 description: str) -> tuple[int, ...]:
    data, filename = image
    if not data:
        return ()
    stored = await upload_media(request.config_dict[POOL], request.config_dict[SETTINGS],
                                request.config_dict[MEDIA_SLOTS], session.account_id,
                                Upload(data, filename or "image", description=description.strip() or None))
    return (stored.id,)


@login_required
async def post_post(request: web.Request) -> web.Response:
    """`POST /dashboard/post`: a short post (`text`), or an article when `title` is given, with an optional image."""
    session = viewer(request)
    texts, image = await _form(request, POST_FIELDS)
    if not session.form_matches(texts):
        return forged(request)
    text, title = texts.get("text", "").strip(), texts.get("title", "").strip()
    try:
        if not text:
            raise OutboxError("write something first")
        media = await _image(request, session, image, texts.get("image_description", ""))
        uri = await commands.create_post(request.config_dict[POOL], request.config_dict[PUBLISHER], session.username,
                                         text, article=bool(title), title=title or None,
                                         options=PostOptions(media_ids=media))
    except (OutboxError, MediaRefused) as exc:
        return await _dashboard(request, session, status=422, post_form=texts, post_error=_message(exc))
    log.info("posted from the dashboard", extra={"account": session.username, "post": uri})
    return see_other(uri.removeprefix(request.config_dict[SETTINGS].base_url))


def _whole(name: str, raw: str, *, required: bool) -> int | None:
    raw = raw.strip().replace(",", "")
    if not raw:
        if required:
            raise ProductError(f"{name} is required")
        return None
    if not raw.isdecimal() or len(raw) > 12:  # isdecimal(), not isdigit(): int("²") raises
        raise ProductError(f"{name} must be a whole number")
    return int(raw)


@login_required
async def product_post(request: web.Request) -> web.Response:
    """`POST /dashboard/products`: list a product (`title`, `price`, `stock` or none for made to order, `image`)."""
    session = viewer(request)
    texts, image = await _form(request, PRODUCT_FIELDS)
    if not session.form_matches(texts):
        return forged(request)
    try:
        draft = ProductDraft(title=texts.get("title", "").strip(), price=_whole("price", texts.get("price", ""),
                                                                               required=True),
                             stock=_whole("stock", texts.get("stock", ""), required=False),
                             description=texts.get("description", ""),
                             shipping_krw=_whole("shipping", texts.get("shipping", ""), required=False) or 0)
        draft = check_draft(draft)  # before the image is processed and stored
        media = await _image(request, session, image, texts.get("image_description", "") or draft.title)
        listing = await actions.create_product(request.config_dict[POOL], request.config_dict[PUBLISHER],
                                               session.username, ProductDraft(**{**draft.__dict__,
                                                                                 "media_ids": media}))
    except (ProductError, MediaRefused) as exc:
        return await _dashboard(request, session, status=422, product_form=texts, product_error=_message(exc))
    log.info("listed from the dashboard", extra={"account": session.username, "listing": listing.uri})
    return see_other(f"/listings/{listing.id}")


EDIT_FIELDS = ("csrf_token", "price", "stock", "status", "action")


@login_required
async def product_edit_post(request: web.Request) -> web.Response:
    """`POST /dashboard/products/{id}`: a maker changes `price`, `stock` (empty: made to order) or `status`
    (active or paused) of one of her listings, or with `action=delete` delists it."""
    session = viewer(request)
    form = await request.post()
    if not session.form_matches(form):
        return forged(request)
    ref, pool, publisher = request.match_info["id"], request.config_dict[POOL], request.config_dict[PUBLISHER]
    try:
        if form.get("action") == "delete":
            await actions.delete_product(pool, publisher, ref, username=session.username)
        else:
            changes: dict[str, object] = {"price": _whole("price", str(form.get("price", "")), required=True)}
            if "stock" in form:  # an empty field: made to order; no field at all (a script, an old form): unchanged
                changes["stock"] = _whole("stock", str(form["stock"]), required=False)
            async with pool.acquire() as conn:
                current = await shop_store.get_listing(conn, int(ref))
            # "Taking orders: yes" resumes a paused listing; a sold-out one becomes active by its new stock.
            if form.get("status") == "paused" or (form.get("status") == "active" and current is not None
                                                  and current.status == "paused"):
                changes["status"] = form["status"]
            await actions.update_product(pool, publisher, ref, changes, username=session.username)
    except ProductError as exc:
        return await _dashboard(request, session, status=422, edit_error=(int(ref), str(exc)))
    return see_other(f"/dashboard#product-{ref}")


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, MediaRefused) else str(exc)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", dashboard_get)
    app.router.add_post("/dashboard/post", post_post)
    app.router.add_post("/dashboard/products", product_post)
    app.router.add_post("/dashboard/products/{id:[0-9]{1,18}}", product_edit_post)
