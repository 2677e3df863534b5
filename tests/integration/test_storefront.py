"""The storefront on real PostgreSQL and real HTTP: products, their Notes, orders, stock, and hostile peers."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import pytest

from activities.listing import ListingText, build_listing, parse_listing
from activities.parse import parse_actor
from activities.trade import (
    build_accept_offer, build_agreement, build_agreement_update, build_offer, build_receipt, build_reject_offer,
)
from fedserver.accounts import create_account, validate_new_account
from fedserver.app import build_publisher
from fedserver.federation import outbox
from fedserver.net.http import HttpClient
from fedserver.repo.actors import get_actor_by_uri
from fedserver.repo.remote_actors import upsert_remote_actor
from storefront import actions, store
from storefront.orders import OrderError
from storefront.products import ProductDraft, ProductError
from storefront.rules import MoveRefused
from tests.conftest import TEST_DOMAIN
from tests.support.database import DELIVERED
from tests.support.processing import process_all, process_as_one_batch
from tests.support.remote import RemoteServer, signed_post

AS = "https://www.w3.org/ns/activitystreams"
BASE = f"https://{TEST_DOMAIN}"
AP = {"Accept": "application/activity+json"}
CUP = ProductDraft(title="청자 찻잔", price=38_000, stock=3, description="물레로 빚은 찻잔", tags=("수공예",),
                   shipping_krw=3_000, free_shipping_over=50_000)


@pytest.fixture
async def shop(fed_client, fed_settings, pool):
    """alice (the maker, from fed_client) and bob (a local buyer) on an instance that federates on loopback."""
    await create_account(pool, fed_settings, validate_new_account(username="bob"))
    return Shop(fed_client, fed_settings, pool)


@pytest.fixture
async def remote():
    server = await RemoteServer().start()
    server.add_actor("carol")
    server.add_actor("mallory")
    yield server
    await server.close()


class Shop:
    def __init__(self, client, settings, pool):
        self.client, self.settings, self.pool = client, settings, pool
        self.publisher = build_publisher(settings)

    async def list(self, draft: ProductDraft = CUP, who: str = "alice") -> store.ListingRow:
        return await actions.create_product(self.pool, self.publisher, who, draft)

    async def order(self, listing, quantity=1, who="bob", message="") -> store.OrderRow:
        return await actions.place_order(self.pool, self.publisher, None, who, str(listing.id), quantity, message)

    async def move(self, order, event, **kwargs) -> store.OrderRow:
        return await actions.move_order(self.pool, self.publisher, order.uri, event, **kwargs)

    async def listing(self, listing_id: int) -> store.ListingRow:
        async with self.pool.acquire() as conn:
            return await store.get_listing(conn, listing_id)

    async def order_now(self, order) -> store.OrderRow:
        async with self.pool.acquire() as conn:
            return await store.get_order_by_uri(conn, order.uri)

    async def val(self, sql, *args):
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def send(self, keys, activity: dict, path: str = "/inbox") -> int:
        activity.setdefault("@context", AS)
        activity.setdefault("actor", keys.uri)
        body = json.dumps(activity).encode()
        headers = signed_post(keys, path, f"127.0.0.1:{self.client.port}", body)
        response = await self.client.post(path, data=body, headers=headers)
        return response.status

    async def process(self) -> list[str]:
        return await process_all(self.pool, self.settings)

    async def mentions_of(self, name: str) -> list[str]:
        """The texts of direct statuses that mention a local account in its notifications."""
        rows = await self.pool.fetch(
            """SELECT o.content FROM notifications n JOIN objects o ON o.id = n.object_id
               JOIN actors a ON a.id = n.account_id WHERE a.username = $1 AND n.type = 'mention' ORDER BY n.id""",
            name)
        return [r["content"] for r in rows]


def _new_id(remote, kind: str) -> str:
    return f"{remote.base}/{kind}/{time.time_ns()}"


# Products


async def test_a_product_is_a_note_with_fep_0837_fields_sent_to_followers(shop, remote):
    async with shop.pool.acquire() as conn:
        carol = remote.actors["carol"]
        await conn.execute(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, shared_inbox_uri, key_id,
                                   public_key_pem)
               VALUES ($1, false, 'carol', $2, 'Person', $3, $4, $5, 'pem')""",
            carol.uri, f"127.0.0.1:{remote.server.port}", f"{carol.uri}/inbox", f"{remote.base}/inbox", "k")
        await conn.execute("""INSERT INTO follows (follower_id, followee_id, state)
                              SELECT a.id, b.id, 'accepted' FROM actors a, actors b
                              WHERE a.uri = $1 AND b.username = 'alice' AND b.is_local""", carol.uri)
    listing = await shop.list()
    assert listing.uri == f"{BASE}/listings/{listing.id}" and listing.auto_accept  # counted stock: automatic
    body = await shop.val(f"SELECT body FROM {DELIVERED} WHERE inbox_uri = $1", f"{remote.base}/inbox")
    assert body["type"] == "Create" and body["object"]["id"] == listing.uri
    parsed = parse_listing(body["object"])
    assert parsed is not None and (parsed.price, parsed.available, parsed.title) == (38_000, 3, "청자 찻잔")
    assert "₩38,000" in body["object"]["content"] and "3개 남음" in body["object"]["content"]
    served = await shop.client.get(f"/listings/{listing.id}", headers=AP)
    assert served.status == 200 and (await served.json())["publishes"]["availableQuantity"]["hasNumericalValue"] == "3"
    page = await shop.client.get(f"/listings/{listing.id}", headers={"Accept": "text/html"})
    text = await page.text()
    assert page.status == 200 and "청자 찻잔" in text and "₩38,000" in text and "개인 판매자" in text


async def test_a_text_change_sends_an_update_and_a_stock_change_only_changes_the_served_note(shop):
    listing = await shop.list()
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"stock": 7})
    assert await shop.val("SELECT count(*) FROM activities WHERE activity_type = 'Update'") == 0
    served = await (await shop.client.get(f"/listings/{listing.id}", headers=AP)).json()
    assert served["publishes"]["availableQuantity"]["hasNumericalValue"] == "7"
    await actions.update_product(shop.pool, shop.publisher, listing.uri, {"price": 42_000})
    assert await shop.val("SELECT count(*) FROM activities WHERE activity_type = 'Update'") == 1
    served = await (await shop.client.get(f"/listings/{listing.id}", headers=AP)).json()
    assert "₩42,000" in served["content"] and served["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "42000"


async def test_a_deleted_listing_is_a_tombstone_and_takes_no_orders(shop):
    listing = await shop.list()
    await actions.delete_product(shop.pool, shop.publisher, str(listing.id))
    gone = await shop.client.get(f"/listings/{listing.id}", headers=AP)
    assert gone.status == 410 and (await gone.json())["type"] == "Tombstone"
    assert await shop.val("SELECT count(*) FROM activities WHERE activity_type = 'Delete'") == 1
    with pytest.raises(OrderError, match="deleted"):
        await shop.order(listing)


@pytest.mark.parametrize("change, message", [
    ({"price": 0}, "price"), ({"price": -5}, "price"), ({"price": 100_000_001}, "price"), ({"price": 12.5}, "whole"),
    ({"stock": -1}, "stock"), ({"title": ""}, "title"), ({"tags": ("bad tag!",)}, "hashtags"),
    ({"shipping_krw": -1}, "shipping"),
])
async def test_bad_products_are_refused_and_leave_no_row(shop, change, message):
    draft = ProductDraft(**{**CUP.__dict__, **change})
    with pytest.raises(ProductError, match=message):
        await shop.list(draft)
    assert await shop.val("SELECT count(*) FROM listings") == 0
    assert await shop.val("SELECT count(*) FROM objects") == 0


# Orders on one instance


async def test_a_local_order_runs_to_completion_and_both_parties_hear_of_every_move(shop):
    listing = await shop.list(ProductDraft(**{**CUP.__dict__, "auto_accept": False}))
    await actions.update_seller(shop.pool, "alice", {"business_name": "앨리스 도예", "address": "서울시 종로구 1",
                                                      "phone": "02-123-4567", "payment_text": "국민은행 123-45"})
    order = await shop.order(listing, 2, message="선물 포장 부탁해요")
    assert (order.state, order.quantity, order.shipping_krw, order.total_krw) == ("requested", 2, 0, 76_000)
    assert "새 주문" in (await shop.mentions_of("alice"))[-1]
    order = await shop.move(order, "accept")
    assert order.state == "accepted" and (await shop.listing(listing.id)).stock == 1
    accepted = (await shop.mentions_of("bob"))[-1]
    assert "주문이 접수되었습니다" in accepted and "국민은행 123-45" in accepted and "앨리스 도예" in accepted
    for event, state in (("pay", "paid"), ("ship", "shipped"), ("deliver", "delivered")):
        order = await shop.move(order, event)
        assert order.state == state
    with pytest.raises(MoveRefused, match="the order is delivered"):
        await shop.move(order, "cancel")
    order = await shop.move(order, "complete")
    assert order.state == "completed"
    assert len(await shop.mentions_of("bob")) == 4 and len(await shop.mentions_of("alice")) == 2
    events = await shop.pool.fetch("SELECT event, party FROM order_events WHERE order_id = $1 ORDER BY id", order.id)
    assert [(e["event"], e["party"]) for e in events] == [
        ("order", "buyer"), ("accept", "seller"), ("pay", "seller"), ("ship", "seller"), ("deliver", "seller"),
        ("complete", "buyer")]


async def test_cancelling_an_accepted_order_returns_its_stock(shop):
    listing = await shop.list()
    order = await shop.order(listing, 3)
    assert order.state == "accepted"
    assert (await shop.listing(listing.id)).status == "sold_out"
    with pytest.raises(OrderError, match="sold out"):
        await shop.order(listing, 1)
    order = await shop.move(order, "cancel", reason="마음이 바뀌었어요", party="buyer")
    after = await shop.listing(listing.id)
    assert (order.state, order.reserved, after.stock, after.status) == ("cancelled", 0, 3, "active")


async def test_stock_given_to_a_made_to_order_listing_is_not_raised_by_cancelling_an_order_accepted_before(shop):
    listing = await shop.list(ProductDraft(title="맞춤 찻잔", price=38_000))  # made to order: no count
    order = await shop.order(listing, 2)
    order = await shop.move(order, "accept")
    assert order.state == "accepted"
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"stock": 5})
    await shop.move(order, "cancel", reason="취소", party="buyer")
    assert (await shop.listing(listing.id)).stock == 5  # nothing was taken from the count: nothing comes back


async def test_a_paused_listing_stays_paused_when_its_last_piece_is_accepted_and_then_cancelled(shop):
    listing = await shop.list(ProductDraft(**{**CUP.__dict__, "stock": 1, "auto_accept": False}))
    order = await shop.order(listing, 1)
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"status": "paused"})
    order = await shop.move(order, "accept")
    assert order.state == "accepted"
    await shop.move(order, "cancel", reason="취소", party="buyer")
    after = await shop.listing(listing.id)
    assert (after.stock, after.status) == (1, "paused")


async def test_a_paused_listing_stays_paused_when_restocked_after_its_last_piece_was_accepted(shop):
    listing = await shop.list(ProductDraft(**{**CUP.__dict__, "stock": 1, "auto_accept": False}))
    order = await shop.order(listing, 1)
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"status": "paused"})
    await shop.move(order, "accept")
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"stock": 5})
    after = await shop.listing(listing.id)
    assert (after.stock, after.status) == (5, "paused")


@pytest.mark.parametrize("quantity, message", [(0, "quantity"), (-1, "quantity"), (1.5, "quantity"),
                                               (1001, "quantity"), (4, "only 3 left")])
async def test_bad_orders_are_refused_and_leave_no_row(shop, quantity, message):
    listing = await shop.list()
    with pytest.raises(OrderError, match=message):
        await shop.order(listing, quantity)
    with pytest.raises(OrderError, match="your own"):
        await shop.order(listing, 1, who="alice")
    await actions.update_product(shop.pool, shop.publisher, str(listing.id), {"status": "paused"})
    with pytest.raises(OrderError, match="paused"):
        await shop.order(listing, 1)
    assert await shop.val("SELECT count(*) FROM orders") == 0


async def test_thirty_concurrent_orders_for_the_last_three_accept_exactly_three(shop):
    listing = await shop.list()
    buyers = [f"buyer{i}" for i in range(30)]
    for name in buyers:
        await create_account(shop.pool, shop.settings, validate_new_account(username=name))
    results = await asyncio.gather(*(shop.order(listing, 1, who=name) for name in buyers), return_exceptions=True)
    placed = [r for r in results if isinstance(r, store.OrderRow)]
    refused = [r for r in results if isinstance(r, OrderError)]
    states = sorted(o.state for o in placed)
    assert len(placed) + len(refused) == 30 and states.count("accepted") == 3
    assert all(s == "rejected" for s in states if s != "accepted")  # reserved too late: rejected, sold out
    assert all("sold out" in str(e) or "left" in str(e) for e in refused)  # seen sold out before ordering
    after = await shop.listing(listing.id)
    assert (after.stock, after.status) == (0, "sold_out")
    assert await shop.val("SELECT sum(reserved) FROM orders") == 3


# Orders from other servers


async def _remote_order_setup(shop, remote, listing, quantity=1, buyer="carol", agreement_id=None):
    keys = remote.actors[buyer]
    agreement_id = agreement_id or _new_id(remote, "orders")
    offer = build_offer(keys.uri, _new_id(remote, "offers"),
                        build_agreement(agreement_id, listing.uri, quantity, None or listing.price * quantity +
                                        (0 if listing.price * quantity >= 50_000 else 3_000)), f"{BASE}/users/alice")
    return keys, offer


async def _known_remote(shop, remote, name="carol"):
    """A remote actor stored here, as a first contact would store it."""
    keys = remote.actors[name]
    async with shop.pool.acquire() as conn:
        await upsert_remote_actor(conn, parse_actor(remote.actor_document(keys)))
        return await get_actor_by_uri(conn, keys.uri)


async def _remote_listing(shop, remote, number: int, title: str, price: int, available: int) -> dict:
    """carol's listing Note, served by the remote server at /listings/NUMBER."""
    carol = await _known_remote(shop, remote)
    note = build_listing(carol, id=f"{remote.base}/listings/{number}", published=datetime.now(timezone.utc),
                         text=ListingText(title=title, price=price, available=available))
    remote.extra_routes[f"/listings/{number}"] = {"@context": AS, **{k: v for k, v in note.items() if k != "@context"}}
    return note


async def _order_remote(shop, note: dict, quantity: int = 1) -> store.OrderRow:
    """bob orders from a remote listing (its Offer queued for the remote maker)."""
    async with HttpClient(shop.settings, allow_private=True) as http:
        return await actions.place_order(shop.pool, shop.publisher, http, "bob", note["id"], quantity)


async def test_an_offer_becomes_one_order_accepted_automatically_even_when_delivered_twice(shop, remote):
    listing = await shop.list()
    keys, offer = await _remote_order_setup(shop, remote, listing)
    assert await shop.send(keys, dict(offer)) == 202
    assert await shop.process() == ["done"]
    order = await shop.val("SELECT uri FROM orders")
    assert order == offer["object"]["id"]
    accept = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Accept'")
    assert accept["object"]["id"] == offer["id"] and accept["result"]["id"] == order
    assert accept["to"] == [keys.uri] and "판매자 정보" in accept["result"]["content"]
    again = {**offer, "id": offer["id"]}
    await shop.send(keys, again)  # the same activity id: stored once
    await shop.send(keys, {**offer, "id": _new_id(remote, "offers")})  # a new Offer of the same Agreement
    assert await shop.process() == ["ignored"]
    assert await shop.val("SELECT count(*) FROM orders") == 1 and (await shop.listing(listing.id)).stock == 2
    assert "새 주문" in (await shop.mentions_of("alice"))[-1]


async def test_thirty_offers_in_one_batch_for_the_last_three_accept_exactly_three_and_refuse_the_rest(shop, remote):
    listing = await shop.list()
    offers = [await _remote_order_setup(shop, remote, listing) for _ in range(30)]
    for keys, offer in offers:
        assert await shop.send(keys, dict(offer)) == 202
    keys, first = offers[0]
    assert await shop.send(keys, {**first, "id": _new_id(remote, "offers")}) == 202  # the same Agreement again
    # One batch, as the worker makes it: the listing is read again after each order, as one by one.
    assert await process_as_one_batch(shop.pool, shop.settings) == ["done"] * 3 + ["ignored"] * 28
    assert [r["state"] for r in await shop.pool.fetch("SELECT state FROM orders ORDER BY id")] == ["accepted"] * 3
    after = await shop.listing(listing.id)
    assert (after.stock, after.status) == (0, "sold_out") and await shop.val("SELECT sum(reserved) FROM orders") == 3
    reasons = [r[0] for r in await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")]
    assert all("sold out" in reason for reason in reasons[3:30]) and "already received" in reasons[30]
    kinds = await shop.pool.fetch("SELECT activity_type, count(*) AS n FROM activities GROUP BY 1 ORDER BY 1")
    assert {r["activity_type"]: r["n"] for r in kinds if r["activity_type"] in ("Accept", "Reject")} == \
        {"Accept": 3, "Reject": 27}


async def test_a_batch_whose_stock_is_taken_before_its_end_runs_again_and_takes_only_what_is_left(shop, remote):
    # A batch decides its acceptances on the stock it read and takes that stock as its last statement. Here the
    # listing's row is held while the batch runs; the holder leaves 1 of the 3 the batch read. The batch must
    # undo its work to its savepoint and run again the careful way: 1 accepted, 2 refused, no trace of the rest.
    listing = await shop.list()
    for _ in range(3):
        keys, offer = await _remote_order_setup(shop, remote, listing)
        assert await shop.send(keys, offer) == 202
    async with shop.pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM listings WHERE id = $1 FOR NO KEY UPDATE", listing.id)  # as a reservation
        batch = asyncio.create_task(process_as_one_batch(shop.pool, shop.settings))
        for _ in range(200):
            waiting = await shop.val("""SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                        AND query LIKE 'UPDATE listings SET stock = stock -%'""")
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting and not batch.done()
        # It waits for the row only once its Accepts are written (queued for delivery), not from its first order.
        assert await shop.val("""SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                                 WHERE l.pid = $1 AND c.relname = 'deliveries' AND l.mode = 'RowExclusiveLock'""",
                              waiting) == 1
        await holder.execute("UPDATE listings SET stock = 1 WHERE id = $1", listing.id)
        await transaction.commit()
    assert await batch == ["done", "ignored", "ignored"]
    assert [r["state"] for r in await shop.pool.fetch("SELECT state FROM orders")] == ["accepted"]
    after = await shop.listing(listing.id)
    assert (after.stock, after.status) == (0, "sold_out") and await shop.val("SELECT sum(reserved) FROM orders") == 1
    kinds = await shop.pool.fetch("SELECT activity_type, count(*) AS n FROM activities GROUP BY 1 ORDER BY 1")
    assert {r["activity_type"]: r["n"] for r in kinds if r["activity_type"] in ("Accept", "Reject")} == \
        {"Accept": 1, "Reject": 2}
    assert sum("새 주문" in text for text in await shop.mentions_of("alice")) == 1


async def test_a_batch_of_offers_reads_the_blocks_of_a_buyer_once_and_refuses_every_offer_of_a_blocked_one(shop, remote):
    listing = await shop.list(ProductDraft(title="찻잔", price=38_000, stock=10, shipping_krw=3_000,
                                           free_shipping_over=50_000))
    carol = await _known_remote(shop, remote)
    await shop.pool.execute("INSERT INTO blocks (actor_id, target_id, activity_uri) VALUES ($1, $2, $3)",
                            listing.seller_id, carol.id, f"{BASE}/blocks/1")
    sent = [await _remote_order_setup(shop, remote, listing, buyer=who) for who in ("carol", "mallory", "carol")]
    for keys, offer in sent:
        assert await shop.send(keys, dict(offer)) == 202
    assert await process_as_one_batch(shop.pool, shop.settings) == ["ignored", "done", "ignored"]
    reasons = [r[0] for r in await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")]
    assert "does not take orders" in reasons[0] and "does not take orders" in reasons[2]
    assert [r["buyer_uri"] for r in await shop.pool.fetch(
        "SELECT a.uri AS buyer_uri FROM orders o JOIN actors a ON a.id = o.buyer_id")] == [sent[1][0].uri]
    assert (await shop.listing(listing.id)).stock == 9


async def test_acceptances_in_one_batch_move_each_order_once_even_an_offer_answered_twice(shop, remote):
    keys, mallory = remote.actors["carol"], remote.actors["mallory"]
    note = await _remote_listing(shop, remote, 7, "나무 수저", 9_000, 10)
    placed = [await _order_remote(shop, note) for _ in range(3)]
    offers = {r["body"]["object"]["id"]: r["body"] for r in await shop.pool.fetch(
        f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Offer'")}

    def accept(signer, order):
        result = build_agreement(order.uri, note["id"], 1, 9_000, attributed_to=keys.uri, content="<p>입금: 농협 1</p>")
        return build_accept_offer(signer.uri, _new_id(remote, "accepts"), offers[order.uri], result, f"{BASE}/users/bob")

    first, second, third = placed
    for signer, order in ((mallory, first), (keys, first), (keys, second), (keys, second), (keys, third)):
        assert await shop.send(signer, accept(signer, order)) == 202
    assert await process_as_one_batch(shop.pool, shop.settings) == ["ignored", "done", "done", "ignored", "done"]
    reasons = [r[0] for r in await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")]
    assert "only the seller" in reasons[0] and "cannot be accepted" in reasons[3]
    assert [(await shop.order_now(order)).state for order in placed] == ["accepted"] * 3
    assert sum("주문이 접수되었습니다" in text for text in await shop.mentions_of("bob")) == 3


async def test_a_second_acceptance_in_a_batch_does_not_change_the_total_of_an_order_the_first_accepted(shop, remote):
    # The batch reads its orders together; the first Accept names the order by its Agreement only (an Offer id
    # this server never sent), so the second still finds the order as it was read: requested.
    keys = remote.actors["carol"]
    note = await _remote_listing(shop, remote, 8, "나무 접시", 9_000, 10)
    order = await _order_remote(shop, note)
    offer = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Offer'")
    for offer_id, total in ((_new_id(remote, "offers"), 12_000), (offer["id"], 15_000)):
        result = build_agreement(order.uri, note["id"], 1, total, attributed_to=keys.uri)
        accept = build_accept_offer(keys.uri, _new_id(remote, "accepts"), {**offer, "id": offer_id}, result,
                                    f"{BASE}/users/bob")
        assert await shop.send(keys, accept) == 202
    assert await process_as_one_batch(shop.pool, shop.settings) == ["done", "ignored"]
    now = await shop.order_now(order)
    assert (now.state, now.total_krw, now.shipping_krw) == ("accepted", 12_000, 3_000)


async def test_an_offer_seen_again_after_it_sold_the_last_piece_is_not_answered_with_a_reject(shop, remote):
    listing = await shop.list()
    keys, offer = await _remote_order_setup(shop, remote, listing, quantity=3)
    await shop.send(keys, offer)
    assert await shop.process() == ["done"] and (await shop.listing(listing.id)).stock == 0
    # Redelivered (its first processing killed before it was marked done), or re-sent under a new id.
    await shop.pool.execute("UPDATE inbox_items SET state = 'queued', attempts = 0")
    await shop.send(keys, {**offer, "id": _new_id(remote, "offers")})
    assert await shop.process() == ["ignored", "ignored"]
    assert await shop.val("SELECT count(*) FROM activities WHERE activity_type = 'Reject'") == 0
    assert await shop.val("SELECT state FROM orders") == "accepted"


async def test_hostile_offers_are_refused_and_leave_no_order(shop, remote):
    listing = await shop.list()
    keys, too_many = await _remote_order_setup(shop, remote, listing, quantity=5)
    await shop.send(keys, too_many)
    _, foreign = await _remote_order_setup(shop, remote, listing, agreement_id="https://elsewhere.example/orders/1")
    await shop.send(keys, foreign)
    _, not_ours = await _remote_order_setup(shop, remote, listing)
    not_ours["object"] = build_agreement(not_ours["object"]["id"], "https://other.example/listings/9", 1, 38_000)
    await shop.send(keys, not_ours)
    _, cheap = await _remote_order_setup(shop, remote, listing)
    cheap["object"]["stipulatesReciprocal"]["resourceQuantity"]["hasNumericalValue"] = "1"
    await shop.send(keys, cheap)
    assert await shop.process() == ["ignored"] * 4
    assert await shop.val("SELECT count(*) FROM orders") == 0 and (await shop.listing(listing.id)).stock == 3
    reasons = await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")
    assert ["only 3 left" in reasons[0][0], "buyer's server" in reasons[1][0], "not for a listing" in reasons[2][0],
            "the price of 1 is 38000 won" in reasons[3][0]] == [True] * 4
    assert await shop.val("SELECT count(*) FROM activities WHERE activity_type = 'Reject'") == 3


@pytest.mark.parametrize("value, currency", [
    ("41000.5", None), ("-41000", None), ("not a number", None),
    ("41000", "https://www.wikidata.org/wiki/Q4917"),
])
async def test_an_offer_whose_stated_price_disagrees_with_the_listing_is_refused_and_leaves_no_order(
        shop, remote, value, currency):
    listing = await shop.list()
    keys, offer = await _remote_order_setup(shop, remote, listing)
    reciprocal = offer["object"]["stipulatesReciprocal"]
    reciprocal["resourceQuantity"]["hasNumericalValue"] = value
    if currency:
        reciprocal["resourceConformsTo"] = currency
    await shop.send(keys, offer)
    results = await shop.process()
    made = [tuple(r) for r in await shop.pool.fetch("SELECT state, quantity, total_krw FROM orders")]
    assert (results, made, (await shop.listing(listing.id)).stock) == (["ignored"], [], 3)


async def test_the_makers_accept_and_reject_naming_the_offer_by_its_id_move_the_order(shop, remote):
    # FEP-0837: "The `object` of `Accept` activity MUST be the `id` of the `Offer` activity" (likewise Reject).
    keys = remote.actors["carol"]
    note = await _remote_listing(shop, remote, 9, "나무 쟁반", 9_000, 10)
    accepted, rejected = await _order_remote(shop, note), await _order_remote(shop, note)
    offers = {r["body"]["object"]["id"]: r["body"] for r in await shop.pool.fetch(
        f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Offer'")}
    result = build_agreement(accepted.uri, note["id"], 1, 12_000, attributed_to=keys.uri)
    accept = build_accept_offer(keys.uri, _new_id(remote, "accepts"), offers[accepted.uri], result,
                                f"{BASE}/users/bob")
    accept["object"] = offers[accepted.uri]["id"]
    reject = build_reject_offer(keys.uri, _new_id(remote, "rejects"), offers[rejected.uri], "품절",
                                f"{BASE}/users/bob")
    reject["object"] = offers[rejected.uri]["id"]
    assert await shop.send(keys, accept) == 202 and await shop.send(keys, reject) == 202
    results = await shop.process()
    reasons = [r[0] for r in await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")]
    states = [(await shop.order_now(o)).state for o in (accepted, rejected)]
    assert (results, states, reasons) == (["done", "done"], ["accepted", "rejected"], [None, None])


async def test_a_remote_buyers_cancel_that_loses_to_a_concurrent_move_returns_no_stock(shop, remote):
    listing = await shop.list()
    keys, offer = await _remote_order_setup(shop, remote, listing)
    await shop.send(keys, offer)
    assert await shop.process() == ["done"]
    order = await shop.val("SELECT id FROM orders")
    assert (await shop.listing(listing.id)).stock == 2
    cancelled = build_agreement(offer["object"]["id"], listing.uri, 1, 41_000, state="cancelled")
    await shop.send(keys, build_agreement_update(keys.uri, _new_id(remote, "updates"), cancelled,
                                                 f"{BASE}/users/alice"))
    async with shop.pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        # The maker marks the order paid at the same moment (not yet committed when the cancel reads the order).
        await holder.execute("UPDATE orders SET state = 'paid' WHERE id = $1", order)
        processing = asyncio.create_task(process_all(shop.pool, shop.settings))
        waiting = None
        for _ in range(200):
            waiting = await shop.val("""SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                        AND query LIKE '%UPDATE orders SET state%'""")
            if waiting or processing.done():
                break
            await asyncio.sleep(0.05)
        assert waiting and not processing.done()
        await transaction.commit()
    assert await processing == ["ignored"]
    now = await shop.pool.fetchrow("SELECT state, reserved FROM orders WHERE id = $1", order)
    after = await shop.listing(listing.id)
    assert (now["state"], now["reserved"]) == ("paid", 1)
    assert after.stock == 2, f"the refused cancel gave back its stock: {after.stock} left for 3 made, 1 sold"



async def test_moves_from_the_wrong_party_change_nothing(shop, remote):
    listing = await shop.list(ProductDraft(**{**CUP.__dict__, "auto_accept": False}))
    keys, offer = await _remote_order_setup(shop, remote, listing)
    await shop.send(keys, offer)
    await shop.process()
    agreement = offer["object"]
    mallory = remote.actors["mallory"]
    # Only the buyer completes, only after delivery; a stranger can do nothing; the buyer cannot mark it shipped.
    await shop.send(keys, build_receipt(keys.uri, _new_id(remote, "creates"), f"{agreement['id']}/r", agreement["id"],
                                        f"{BASE}/users/alice"))
    shipped = build_agreement(agreement["id"], listing.uri, 1, 41_000, state="shipped")
    await shop.send(keys, build_agreement_update(keys.uri, _new_id(remote, "updates"), shipped, f"{BASE}/users/alice"))
    cancelled = build_agreement(agreement["id"], listing.uri, 1, 41_000, state="cancelled")
    await shop.send(mallory, build_agreement_update(mallory.uri, _new_id(remote, "updates"), cancelled,
                                                    f"{BASE}/users/alice"))
    assert await shop.process() == ["ignored"] * 3
    reasons = [r[0] for r in await shop.pool.fetch("SELECT last_error FROM inbox_items ORDER BY id")][1:]
    assert "requested: it cannot be completed" in reasons[0]
    assert "cannot be marked shipped" in reasons[1] and "only the buyer or seller" in reasons[2]
    assert await shop.val("SELECT state FROM orders") == "requested"
    # The buyer may cancel before acceptance.
    await shop.send(keys, build_agreement_update(keys.uri, _new_id(remote, "updates"), cancelled, f"{BASE}/users/alice"))
    assert await shop.process() == ["done"]
    assert await shop.val("SELECT state FROM orders") == "cancelled"
    assert "취소" in (await shop.mentions_of("alice"))[-1]


async def test_a_direct_message_that_orders_becomes_an_order_answered_in_its_thread(shop, remote):
    listing = await shop.list()
    keys = remote.actors["carol"]
    note = {"id": _new_id(remote, "notes"), "type": "Note", "attributedTo": keys.uri, "content": "<p>주문 2개요</p>",
            "to": [f"{BASE}/users/alice"], "inReplyTo": listing.uri,
            "tag": [{"type": "Mention", "href": f"{BASE}/users/alice", "name": "@alice"}]}
    assert await shop.send(keys, {"id": _new_id(remote, "creates"), "type": "Create", "object": note,
                                  "to": [f"{BASE}/users/alice"]}) == 202
    assert await shop.process() == ["done"]
    order = await shop.val("SELECT row_to_json(orders) FROM orders")
    assert (order["channel"], order["state"], order["quantity"], order["thread_uri"]) == ("dm", "accepted", 2, note["id"])
    reply = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Create'"
                           " AND body->'object'->>'inReplyTo' = $1", note["id"])
    assert reply["object"]["to"] == [keys.uri] and "주문이 접수되었습니다" in reply["object"]["content"]
    assert reply["object"]["context"] == order["uri"]  # so it is never read as an order itself
    # Too many: answered with the reason, nothing stored.
    more = {**note, "id": _new_id(remote, "notes"), "content": "<p>주문 5개</p>"}
    await shop.send(keys, {"id": _new_id(remote, "creates"), "type": "Create", "object": more,
                           "to": [f"{BASE}/users/alice"]})
    await shop.process()
    assert await shop.val("SELECT count(*) FROM orders") == 1
    refusal = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->'object'->>'inReplyTo' = $1", more["id"])
    assert "주문을 받을 수 없습니다" in refusal["object"]["content"] and "only 1 left" in refusal["object"]["content"]


async def test_a_direct_message_from_a_gone_actor_orders_nothing(shop, remote):
    listing = await shop.list()
    keys = remote.actors["carol"]
    note = {"id": _new_id(remote, "notes"), "type": "Note", "attributedTo": keys.uri, "content": "<p>주문</p>",
            "to": [f"{BASE}/users/alice"], "inReplyTo": listing.uri}
    await shop.send(keys, {"id": _new_id(remote, "creates"), "type": "Create", "object": note,
                           "to": [f"{BASE}/users/alice"]})
    await shop.pool.execute("UPDATE actors SET deleted_at = now() WHERE uri = $1", keys.uri)
    await shop.process()
    assert await shop.val("SELECT count(*) FROM orders") == 0


async def test_an_order_is_served_to_its_parties_only(shop, remote):
    listing = await shop.list()
    order = await shop.order(listing)
    path = order.uri.removeprefix(BASE)
    assert (await shop.client.get(path, headers=AP)).status == 404  # unsigned
    assert order.uri.startswith(f"{BASE}/orders/")


async def test_the_seller_profile_is_checked(shop):
    with pytest.raises(ProductError, match="payto"):
        await actions.update_seller(shop.pool, "alice", {"payto": "https://bank.example"})
    profile = await actions.update_seller(shop.pool, "alice", {"payto": "payto://iban/DE75512108001245126199"})
    assert profile.payto.startswith("payto:") and not profile.discloses_business
    with pytest.raises(outbox.OutboxError):
        await actions.update_seller(shop.pool, "nobody", {"phone": "1"})


async def test_a_local_buyer_orders_from_another_server_and_only_its_maker_answers(shop, remote):
    keys, mallory = remote.actors["carol"], remote.actors["mallory"]
    note = await _remote_listing(shop, remote, 5, "나무 도마", 25_000, 2)
    order = await _order_remote(shop, note, 2)
    assert (order.channel, order.state, order.total_krw, order.seller_uri) == ("fep", "requested", 50_000, keys.uri)
    offer = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Offer'")
    assert offer["to"] == [keys.uri] and offer["object"]["id"] == order.uri
    result = build_agreement(order.uri, note["id"], 2, 50_000, attributed_to=keys.uri, content="<p>입금: 농협 1</p>")
    for signer in (mallory, keys):
        accept = build_accept_offer(signer.uri, _new_id(remote, "accepts"), offer, result, f"{BASE}/users/bob")
        assert await shop.send(signer, accept) == 202
    assert await shop.process() == ["ignored", "done"]
    assert "only the seller" in await shop.val("SELECT last_error FROM inbox_items ORDER BY id LIMIT 1")
    assert (await shop.order_now(order)).state == "accepted"
    told = (await shop.mentions_of("bob"))[-1]
    assert "주문이 접수되었습니다" in told and "입금: 농협 1" in told  # told by this instance's actor
    order = await shop.move(order, "cancel", reason="다른 걸로 할게요")
    update = await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Update'")
    assert update["object"]["preview"]["name"] == "Cancelled" and update["to"] == [keys.uri]


# Mastodon users ordering by direct message, and a local buyer's order from another server: what is no order, what
# is one order only, and an acceptance that states other terms than the order's.

ALICE = f"{BASE}/users/alice"
USD = "https://www.wikidata.org/wiki/Q4917"


def _note(remote, content, *, to, reply_to=None, mentions=(), **extra):
    keys = remote.actors["carol"]
    note = {"id": _new_id(remote, "notes"), "type": "Note", "attributedTo": keys.uri, "content": content,
            "to": list(to), "tag": [{"type": "Mention", "href": m, "name": "@" + m.rsplit("/", 1)[-1]}
                                    for m in mentions], **extra}
    if reply_to:
        note["inReplyTo"] = reply_to
    return keys, note


async def _create(shop, remote, keys, note):
    return await shop.send(keys, {"id": _new_id(remote, "creates"), "type": "Create", "object": note,
                                  "to": note["to"]})


async def test_a_direct_message_between_two_other_people_replying_to_a_listing_places_no_order(shop, remote):
    # carol writes privately to bob (a local account, not the maker) under alice's listing: "shall I order this?"
    listing = await shop.list()
    keys, note = _note(remote, "<p>@bob 이거 주문할까?</p>", to=[f"{BASE}/users/bob"], reply_to=listing.uri,
                       mentions=[f"{BASE}/users/bob"])
    assert await _create(shop, remote, keys, note) == 202
    assert await shop.process() == ["done"]
    made = [tuple(r) for r in await shop.pool.fetch("SELECT channel, state, quantity FROM orders")]
    answers = await shop.val(f"SELECT count(*) FROM {DELIVERED} WHERE body->'object'->>'inReplyTo' = $1", note["id"])
    assert (made, answers, (await shop.listing(listing.id)).stock) == ([], 0, 3)


async def test_editing_a_direct_message_that_ordered_makes_no_second_order_and_no_second_answer(shop, remote):
    listing = await shop.list()
    keys, note = _note(remote, "<p>주문 1개</p>", to=[ALICE], reply_to=listing.uri, mentions=[ALICE])
    await _create(shop, remote, keys, note)
    assert await shop.process() == ["done"]
    # Mastodon sends Update(Note) when its author fixes a typo or adds a line.
    edited = {**note, "content": "<p>주문 1개 (선물 포장 부탁드려요)</p>", "updated": "2030-01-01T00:00:00Z"}
    assert await shop.send(keys, {"id": _new_id(remote, "updates"), "type": "Update", "object": edited,
                                  "to": note["to"]}) == 202
    assert await shop.process() == ["done"]
    made = [tuple(r) for r in await shop.pool.fetch("SELECT state, quantity FROM orders ORDER BY id")]
    answers = await shop.val(f"SELECT count(*) FROM {DELIVERED} WHERE body->'object'->>'inReplyTo' = $1", note["id"])
    assert (made, answers, (await shop.listing(listing.id)).stock) == ([("accepted", 1)], 1, 2)


async def test_a_mastodon_direct_mention_that_carries_its_conversation_context_still_orders(shop, remote):
    # Mastodon's NoteSerializer sends `context` (its conversation's URL, ActivityPub::TagManager#uri_for
    # -> context_url) on statuses; a direct mention of the maker with the listing's URL is still an order.
    listing = await shop.list()
    keys, note = _note(remote, f"<p>@alice {listing.uri} 주문 2개</p>", to=[ALICE], mentions=[ALICE],
                       context=f"{remote.base}/contexts/109")
    await _create(shop, remote, keys, note)
    assert await shop.process() == ["done"]
    made = [tuple(r) for r in await shop.pool.fetch("SELECT channel, state, quantity FROM orders")]
    assert made == [("dm", "accepted", 2)]


async def _offer_of(shop, order):
    return await shop.val(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Offer' AND body->'object'->>'id' = $1",
                          order.uri)


async def test_an_accept_stating_its_total_in_another_currency_does_not_become_the_total_in_won(shop, remote):
    keys = remote.actors["carol"]
    note = await _remote_listing(shop, remote, 5, "나무 도마", 25_000, 5)
    order = await _order_remote(shop, note, 1)
    result = build_agreement(order.uri, note["id"], 1, 40_000, currency=USD, attributed_to=keys.uri)
    await shop.send(keys, build_accept_offer(keys.uri, _new_id(remote, "accepts"), await _offer_of(shop, order),
                                             result, f"{BASE}/users/bob"))
    await shop.process()
    now = await shop.order_now(order)
    assert (now.total_krw, now.shipping_krw) == (25_000, 0), \
        f"a total of 40000 USD became {now.total_krw} won with {now.shipping_krw} won shipping"


async def test_an_accept_whose_agreement_is_for_another_quantity_does_not_accept_the_order_as_placed(shop, remote):
    # bob ordered 2; carol's Accept agrees to 1 (28,000 with shipping). That is no agreement on bob's order.
    keys = remote.actors["carol"]
    note = await _remote_listing(shop, remote, 5, "나무 도마", 25_000, 5)
    order = await _order_remote(shop, note, 2)
    result = build_agreement(order.uri, note["id"], 1, 28_000, attributed_to=keys.uri)
    await shop.send(keys, build_accept_offer(keys.uri, _new_id(remote, "accepts"), await _offer_of(shop, order),
                                             result, f"{BASE}/users/bob"))
    assert await shop.process() == ["ignored"]
    now = await shop.order_now(order)
    assert (now.state, now.quantity, now.total_krw) == ("requested", 2, 50_000)
