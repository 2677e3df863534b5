"""The storefront JSON API: products and orders over real HTTP with OAuth tokens."""

from __future__ import annotations

from tests.api.conftest import mint_token
from tests.api.status_support import bob_auth  # noqa: F401 (fixture)

CUP = {"title": "청자 찻잔", "price": 38000, "stock": 2, "shipping": 3000, "tags": ["수공예"]}


async def _json(response, status: int = 200):
    body = await response.json()
    assert response.status == status, body
    return body


async def test_a_product_is_listed_changed_ordered_and_its_order_moved(client, auth, bob_auth, pool):
    product = await _json(await client.post("/api/v1/storefront/products", json=CUP, headers=auth))
    assert (product["price_krw"], product["stock"], product["auto_accept"], product["status"]) == (
        38000, 2, True, "active")
    assert (await _json(await client.get(f"/api/v1/storefront/products/{product['id']}")))["title"] == "청자 찻잔"
    changed = await _json(await client.patch(f"/api/v1/storefront/products/{product['id']}",
                                             json={"price": 40000, "auto_accept": False}, headers=auth))
    assert (changed["price_krw"], changed["auto_accept"]) == (40000, False)
    order = await _json(await client.post("/api/v1/storefront/orders", headers=bob_auth,
                                          json={"listing": product["url"], "quantity": 2, "message": "포장해 주세요"}))
    assert (order["state"], order["total_krw"], order["shipping_krw"]) == ("requested", 83000, 3000)
    order_id = order["id"].rsplit("/", 1)[1]
    assert [o["id"] for o in await _json(await client.get("/api/v1/storefront/orders?role=seller",
                                                           headers=auth))] == [order["id"]]
    assert await _json(await client.get("/api/v1/storefront/orders?role=seller", headers=bob_auth)) == []
    # The buyer may not accept; the seller may; then marks it.
    refused = await client.post(f"/api/v1/storefront/orders/{order_id}/accept", headers=bob_auth)
    assert refused.status == 409 and "only the seller" in (await refused.json())["error"]
    assert (await _json(await client.post(f"/api/v1/storefront/orders/{order_id}/accept", headers=auth)))["state"] \
        == "accepted"
    bad = await client.post(f"/api/v1/storefront/orders/{order_id}/mark", json={"state": "lost"}, headers=auth)
    assert bad.status == 422
    paid = await _json(await client.post(f"/api/v1/storefront/orders/{order_id}/mark", json={"state": "paid"},
                                         headers=auth))
    assert paid["state"] == "paid"
    early = await client.post(f"/api/v1/storefront/orders/{order_id}/complete", headers=bob_auth)
    assert early.status == 409 and "the order is paid" in (await early.json())["error"]
    assert (await _json(await client.get(f"/api/v1/storefront/orders/{order_id}", headers=bob_auth)))["state"] == \
        "paid"
    deleted = await _json(await client.delete(f"/api/v1/storefront/products/{product['id']}", headers=auth))
    assert deleted["status"] == "deleted"


async def test_refusals_are_json_errors_and_change_nothing(client, auth, bob_auth, pool, oauth_app, bob):
    for body, field in (({**CUP, "price": 0}, "price"), ({**CUP, "price": "12.5"}, "price"),
                        ({**CUP, "price": 100000001}, "price"), ({**CUP, "stock": -1}, "stock"),
                        ({"price": 100}, "title")):
        response = await client.post("/api/v1/storefront/products", json=body, headers=auth)
        assert response.status == 422 and field in (await response.json())["error"]
    assert await pool.fetchval("SELECT count(*) FROM listings") == 0
    product = await _json(await client.post("/api/v1/storefront/products", json=CUP, headers=auth))
    for quantity in (0, 3, "two"):
        response = await client.post("/api/v1/storefront/orders", json={"listing": str(product["id"]),
                                                                      "quantity": quantity}, headers=bob_auth)
        assert response.status == 422, await response.text()
    own = await client.post("/api/v1/storefront/orders", json={"listing": str(product["id"])}, headers=auth)
    assert own.status == 422 and "own product" in (await own.json())["error"]
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0
    read_only = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, bob.id, scopes=('read',))}"}
    assert (await client.post("/api/v1/storefront/orders", json={"listing": str(product["id"])},
                              headers=read_only)).status == 403
    assert (await client.get("/api/v1/storefront/orders")).status == 401
    other = await client.patch(f"/api/v1/storefront/products/{product['id']}", json={"price": 1}, headers=bob_auth)
    assert other.status == 404
    assert (await client.get("/api/v1/storefront/orders/99999", headers=bob_auth)).status == 404


async def test_a_move_made_on_another_server_shows_in_the_notifications_api(client, auth, pool, settings, alice):
    from fedserver.app import build_publisher
    from storefront import messages

    async with pool.acquire() as conn, conn.transaction():
        await messages.notify_local(conn, build_publisher(settings), alice, "새 주문: 청자 찻잔 1개, 합계 ₩41,000.",
                                    "https://b.example/orders/1")
    notices = await _json(await client.get("/api/v1/notifications", headers=auth))
    assert [n["type"] for n in notices] == ["mention"]
    status = notices[0]["status"]
    assert status["visibility"] == "direct" and "새 주문" in status["content"]
    assert notices[0]["account"]["acct"] == status["account"]["acct"]  # this instance's own actor
