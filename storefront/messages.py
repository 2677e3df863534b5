"""What people read about an order: direct messages in any Mastodon app, and the Agreement's text.

Each move reaches the other party as a direct Note mentioning them: from the local party who
moved (to a local counterparty, or to a Mastodon buyer who cannot read FEP-0837 activities),
or from this instance's own actor when the move came from another server, so the local party
sees it in their notifications. Every such Note names the order's Agreement in `context`, so
it is never taken for a new order.
"""

from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from activities.actor import Actor
from activities.build import Mention, NoteExtras, build_note, new_object_id, status_uri
from activities.listing import won
from activities.text import compose_html
from fedserver.federation import outbox
from fedserver.federation.posting import PostOptions
from fedserver.publish import Publisher
from fedserver.repo import statuses as statuses_repo

from .store import ListingRow, OrderRow, SellerProfile

_DONE = {
    "accepted": "주문이 접수되었습니다",
    "rejected": "주문을 받을 수 없습니다",
    "paid": "입금이 확인되었습니다",
    "shipped": "상품을 발송했습니다",
    "delivered": "배송이 완료되었습니다",
    "completed": "구매가 확정되었습니다",
    "cancelled": "주문이 취소되었습니다",
}


def summary(order: OrderRow, title: str) -> str:
    """One line about what was ordered and what it costs."""
    shipping = f" (배송비 {won(order.shipping_krw)} 포함)" if order.shipping_krw else ""
    return f"{title} {order.quantity}개, 합계 {won(order.total_krw)}{shipping}"


def new_order_text(order: OrderRow, title: str) -> str:
    """What the seller reads about a new order."""
    message = f" 메시지: {order.message}" if order.message else ""
    return f"새 주문: {summary(order, title)}.{message} 주문: {order.uri}"


def business_text(profile: SellerProfile) -> str:
    """The seller's information a Korean online shop discloses (or that it is a private seller)."""
    if not profile.discloses_business:
        return "판매자 정보: 개인 판매자(사업자 정보를 등록하지 않았습니다)."
    parts = [("상호", profile.business_name), ("대표자", profile.representative), ("주소", profile.address),
             ("연락처", profile.phone), ("이메일", profile.email), ("사업자등록번호", profile.registration_number),
             ("통신판매업 신고번호", profile.mail_order_number)]
    return "판매자 정보: " + ", ".join(f"{name} {value}" for name, value in parts if value) + "."


def payment_text(profile: SellerProfile) -> str:
    """How to pay the seller in won (outside fedserver)."""
    ways = " ".join(way for way in (profile.payment_text, profile.payto) if way)
    return f"결제 방법: {ways}." if ways else "결제 방법은 판매자가 따로 알려 드립니다."


def move_text(order: OrderRow, title: str, *, reason: str = "", details: str = "") -> str:
    """What the other party reads about a move (the order's new state)."""
    line = f"{_DONE[order.state]}: {summary(order, title)}."
    if reason:
        line += f" 사유: {reason}"
    if details:
        line += f" {details}"
    return f"{line} 주문: {order.uri}"


async def tell(conn: asyncpg.Connection, publisher: Publisher, author: Actor, to: Actor, text: str, *,
               order_uri: str, in_reply_to: str | None = None) -> str:
    """A direct Note from `author` to `to` about an order (delivered when `to` is on another server)."""
    handle = f"@{to.username}" if to.is_local else f"@{to.username}@{to.domain}"
    return await outbox.create_post(conn, publisher, author, f"{handle} {text}", visibility="direct",
                                    in_reply_to=in_reply_to, options=PostOptions(context=order_uri))


async def notify_local(conn: asyncpg.Connection, publisher: Publisher, to: Actor, text: str, order_uri: str) -> str:
    """A move made on another server, told to the local party by this instance's actor.

    A notice stays on this server (its only reader is local), so it is written in one statement
    rather than published: a direct Note in the reader's home timeline and notifications.
    """
    author = await publisher.instance_actor(conn)
    uri = status_uri(author.uri, new_object_id())
    mention = Mention(to.uri, f"@{to.username}")
    html = compose_html(f"@{to.username} {text}", {f"@{to.username}".lower(): (mention, to.url or to.uri)})
    published = datetime.now(timezone.utc)
    note = build_note(author, id=uri, content_html=html, published=published, to=[to.uri], cc=[], mentions=[mention],
                      extras=NoteExtras(context=order_uri))
    await statuses_repo.insert_direct_notice(conn, uri=uri, author_id=author.id, recipient_id=to.id, content=html,
                                             data=note, published_at=published)
    return uri


def listing_title(listing: ListingRow) -> str:
    """The name an order message gives the product."""
    return listing.title
