"""`fedserver product …`, `fedserver order …` and `fedserver account seller …`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from fedserver.config import Settings
from fedserver.db import open_database
from fedserver.federation import outbox
from fedserver.media.service import MediaRefused, Upload, upload_media
from fedserver.moderation import Moderation
from fedserver.net.http import HttpClient
from fedserver.publish import Publisher

from . import actions, store
from .actions import MARKS
from .orders import OrderError
from .products import ProductDraft, ProductError
from .rules import MoveRefused

ERRORS = (ProductError, OrderError, MoveRefused, MediaRefused)
SELLER_FIELDS = {
    "business_name": "상호 (business name)", "representative": "대표자 (representative)",
    "address": "사업장 주소 (business address)", "phone": "연락처 (phone)", "email": "email",
    "registration_number": "사업자등록번호 (business registration number)",
    "mail_order_number": "통신판매업 신고번호 (mail-order business number)",
    "payment_text": "payment instructions sent with every acceptance (bank transfer text)",
    "payto": "a payto: URI sent with every acceptance",
}


def add_parsers(commands: argparse._SubParsersAction, account_cmds: argparse._SubParsersAction) -> None:
    """Add `product`, `order` and `account seller` to the top-level parser."""
    product = commands.add_parser("product", help="list, change and delist products")
    verbs = product.add_subparsers(dest="product_command", required=True, metavar="ACTION")
    create = verbs.add_parser("create", help="list a product (prints its URL last)")
    create.add_argument("account")
    create.add_argument("--title", required=True)
    create.add_argument("--price", type=int, required=True, metavar="WON")
    stock = create.add_mutually_exclusive_group()
    stock.add_argument("--stock", type=int, metavar="N")
    stock.add_argument("--made-to-order", action="store_true", help="no stock count: made when ordered (default)")
    create.add_argument("--description", default="", metavar="TEXT")
    create.add_argument("--image", action="append", default=[], metavar="PATH")
    create.add_argument("--tag", action="append", default=[], metavar="TAG")
    create.add_argument("--token-price", type=int, metavar="N")
    create.add_argument("--shipping", type=int, default=0, metavar="WON", help="shipping fee (0: included)")
    create.add_argument("--free-shipping-over", type=int, metavar="WON")
    create.add_argument("--no-auto-accept", action="store_true", help="accept each order by hand")
    listing = verbs.add_parser("list", help="an account's listings")
    listing.add_argument("account")
    listing.add_argument("--json", action="store_true")
    update = verbs.add_parser("update", help="change a listing (LISTING: its URL or id)")
    update.add_argument("listing")
    update.add_argument("--title")
    update.add_argument("--price", type=int, metavar="WON")
    update.add_argument("--stock", type=int, metavar="N")
    update.add_argument("--description", metavar="TEXT")
    update.add_argument("--status", choices=("active", "paused"))
    update.add_argument("--token-price", type=int, metavar="N", help="whole tokens for one (0: no longer for tokens)")
    delete = verbs.add_parser("delete", help="delist a product (its page answers 410 Gone)")
    delete.add_argument("listing")

    order = commands.add_parser("order", help="place and handle orders")
    verbs = order.add_subparsers(dest="order_command", required=True, metavar="ACTION")
    place = verbs.add_parser("create", help="order as a local account (prints the order URL last)")
    place.add_argument("buyer")
    place.add_argument("listing_url", metavar="LISTING_URL")
    place.add_argument("--quantity", type=int, default=1, metavar="N")
    place.add_argument("--pay", choices=("krw", "tokens"), default="krw",
                       help="krw (default: paid in won, outside fedserver) or tokens (the buyer's reward tokens, "
                            "debited at once)")
    place.add_argument("--message", default="", metavar="TEXT")
    orders = verbs.add_parser("list", help="an account's orders")
    orders.add_argument("account")
    orders.add_argument("--role", choices=("buyer", "seller"))
    orders.add_argument("--json", action="store_true")
    for verb, what in (("accept", "accept an order (the seller)"), ("complete", "confirm receipt (the buyer)")):
        verbs.add_parser(verb, help=what).add_argument("order")
    reject = verbs.add_parser("reject", help="refuse an order (the seller)")
    reject.add_argument("order")
    reject.add_argument("--reason", required=True)
    mark = verbs.add_parser("mark", help="mark an order paid, shipped or delivered (the seller)")
    mark.add_argument("order")
    mark.add_argument("state", choices=tuple(MARKS))
    cancel = verbs.add_parser("cancel", help="cancel an order")
    cancel.add_argument("order")
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--as", dest="party", choices=("buyer", "seller"),
                        help="which party cancels (default: the seller when local)")

    seller = account_cmds.add_parser("seller", help="business information and payment instructions buyers see")
    seller.add_argument("name")
    for field, what in SELLER_FIELDS.items():
        seller.add_argument(f"--{field.replace('_', '-')}", dest=field, metavar="TEXT", help=what)
    seller.add_argument("--json", action="store_true")


async def _uploads(pool, settings: Settings, username: str, paths: list[str]) -> tuple[int, ...]:
    if not paths:
        return ()
    async with pool.acquire() as conn:
        actor = await outbox.author(conn, username)
    slots = asyncio.Semaphore(1)
    ids = []
    for name in paths:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ProductError(f"cannot read the image {name}: {exc.strerror}") from None
        ids.append((await upload_media(pool, settings, slots, actor.id, Upload(data, path.name))).id)
    return tuple(ids)


async def product(settings: Settings, args: argparse.Namespace, publisher: Publisher) -> int:
    """`fedserver product create|list|update|delete`."""
    async with open_database(settings) as pool:
        if args.product_command == "create":
            draft = ProductDraft(
                title=args.title, price=args.price, stock=None if args.made_to_order else args.stock,
                description=args.description, tags=tuple(args.tag), token_price=args.token_price,
                shipping_krw=args.shipping, free_shipping_over=args.free_shipping_over,
                auto_accept=False if args.no_auto_accept else None)
            draft = ProductDraft(**{**draft.__dict__, "media_ids": await _uploads(pool, settings, args.account,
                                                                                 args.image)})
            listing = await actions.create_product(pool, publisher, args.account, draft)
            print(f"listed {listing.title}: {listing.price:,} won, "
                  + ("made to order" if listing.stock is None else f"{listing.stock} in stock"))
            print(listing.uri)
        elif args.product_command == "list":
            async with pool.acquire() as conn:
                actor = await outbox.author(conn, args.account)
                listings = await store.list_listings(conn, actor.id)
            _print_listings(listings, args.json)
        elif args.product_command == "update":
            changes = {"title": args.title, "price": args.price, "description": args.description,
                       "status": args.status}
            changes = {k: v for k, v in changes.items() if v is not None}
            if args.stock is not None:
                changes["stock"] = args.stock
            if args.token_price is not None:
                changes["token_price"] = args.token_price or None
            listing = await actions.update_product(pool, publisher, args.listing, changes)
            print(listing.uri)
        else:
            print(await actions.delete_product(pool, publisher, args.listing))
    return 0


def _print_listings(listings: list[store.ListingRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([actions.listing_json(listing) for listing in listings], ensure_ascii=False, indent=2))
        return
    if not listings:
        print("no listings yet: list one with `fedserver product create ACCOUNT --title … --price …`")
    for listing in listings:
        stock = "made to order" if listing.stock is None else f"{listing.stock} left"
        print(f"{listing.id:>6} {listing.status:<9} {listing.price:>12,} won  {stock:<14} {listing.title}")


async def order(settings: Settings, args: argparse.Namespace, publisher: Publisher) -> int:
    """`fedserver order create|list|accept|reject|mark|cancel|complete`."""
    async with open_database(settings) as pool:
        if args.order_command == "create":
            async with HttpClient(settings) as http:
                http.host_policy = Moderation(pool).refusal
                placed = await actions.place_order(pool, publisher, http, args.buyer, args.listing_url,
                                                   args.quantity, args.message, args.pay)
            if placed.total_tokens is not None:
                print(f"ordered {placed.quantity} for {placed.total_tokens:,} tokens: {placed.state}")
            else:
                print(f"ordered {placed.quantity} for {placed.total_krw:,} won (shipping {placed.shipping_krw:,}): "
                      f"{placed.state}")
            print(placed.uri)
            return 0
        if args.order_command == "list":
            async with pool.acquire() as conn:
                actor = await outbox.author(conn, args.account)
                found = await store.list_orders(conn, actor.id, args.role)
            _print_orders(found, args.json)
            return 0
        event = {"accept": "accept", "reject": "reject", "cancel": "cancel", "complete": "complete"}.get(
            args.order_command) or MARKS[args.state]
        moved = await actions.move_order(pool, publisher, args.order, event, reason=getattr(args, "reason", "") or "",
                                         party=getattr(args, "party", None))
        print(f"{moved.uri} is now {moved.state}")
    return 0


def _print_orders(found: list[store.OrderRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([actions.order_json(o) for o in found], ensure_ascii=False, indent=2))
        return
    if not found:
        print("no orders")
    for o in found:
        print(f"{o.state:<10} {o.quantity:>4} × {o.unit_price:>10,} = {o.total_krw:>12,} won  {o.uri}  {o.listing_uri}")


async def seller(settings: Settings, args: argparse.Namespace) -> int:
    """`fedserver account seller NAME [--business-name …] …`: show or change what buyers see."""
    changes = {field: getattr(args, field) for field in SELLER_FIELDS if getattr(args, field) is not None}
    async with open_database(settings) as pool:
        if changes:
            profile = await actions.update_seller(pool, args.name, changes)
        else:
            async with pool.acquire() as conn:
                profile = await store.get_seller_profile(conn, (await outbox.author(conn, args.name)).id)
    shown = {field: getattr(profile, field) for field in SELLER_FIELDS}
    if args.json:
        print(json.dumps({**shown, "discloses_business": profile.discloses_business}, ensure_ascii=False, indent=2))
    else:
        for field, value in shown.items():
            print(f"{field:<20} {value}")
        if not profile.discloses_business:
            print("no business name, address and phone: listings say this is a private seller", file=sys.stderr)
    return 0
