"""The selling pages over real HTTP on real PostgreSQL with odd input: the order form, the order moves, the
dashboard's product forms, the shop tab and the login form refuse superscript digits and NUL characters with a
clear 4xx (never a 500) and keep what a form leaves out; a suspended maker's listing is hidden and takes no order."""

from __future__ import annotations

import pytest

from fedserver.accounts import create_account, validate_new_account
from fedserver.app import build_publisher
from storefront import actions
from storefront.products import ProductDraft
from tests.api.conftest import PASSWORD
from tests.api.forms import hidden_fields


@pytest.fixture
async def bob(pool, settings, alice):
    """A buyer who logs in (the shared bob has no password)."""
    return await create_account(pool, settings, validate_new_account(
        username="bob", display_name="Bob", password=PASSWORD))


@pytest.fixture
async def cup(pool, settings, alice):
    """alice's listing: three cups that she accepts automatically, shipping 3,000 won."""
    return await actions.create_product(pool, build_publisher(settings), "alice", ProductDraft(
        title="청자 찻잔", price=25_000, stock=3, shipping_krw=3_000))


async def login(client, username: str, next_path: str = ""):
    form_page = await client.get(f"/login?next={next_path}" if next_path else "/login")
    form = {**hidden_fields(await form_page.text()), "username": username, "password": PASSWORD}
    return await client.post("/login", data=form, allow_redirects=False)


async def csrf_of(client, path: str = "/") -> str:
    return hidden_fields(await (await client.get(path)).text())["csrf_token"]


async def order_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM orders")


async def no_500(response, *allowed: int) -> None:
    text = await response.text()
    assert response.status in allowed, (response.status, text[:300])


@pytest.mark.parametrize("quantity", ["²", "¹"])
async def test_a_superscript_quantity_on_the_order_form_is_refused_with_422_not_500(client, pool, alice, bob, cup,
                                                                                  quantity):
    """`str.isdigit()` takes "²", and `int("²")` raises: the order form answered 500 instead of its 422 page."""
    assert (await login(client, "bob")).status == 303
    token = await csrf_of(client, f"/listings/{cup.id}")
    response = await client.post(f"/listings/{cup.id}/order", data={"quantity": quantity, "csrf_token": token},
                                 allow_redirects=False)
    await no_500(response, 422)
    assert await order_count(pool) == 0


async def test_an_order_message_with_a_nul_character_is_refused_or_cleaned_not_a_500(client, pool, alice, bob, cup):
    """PostgreSQL text cannot hold U+0000: the INSERT of the order failed and the buyer got a 500."""
    assert (await login(client, "bob")).status == 303
    token = await csrf_of(client, f"/listings/{cup.id}")
    response = await client.post(f"/listings/{cup.id}/order", data={"quantity": "1", "csrf_token": token,
                                                                   "message": "선물\x00포장"}, allow_redirects=False)
    await no_500(response, 303, 422)
    assert await pool.fetchval("SELECT stock FROM listings WHERE id = $1", cup.id) == 3 - await order_count(pool)


@pytest.mark.parametrize("action", ["cancel", "reject"])
async def test_a_reason_with_a_nul_character_is_refused_or_cleaned_not_a_500(client, pool, settings, alice, bob,
                                                                             action):
    """The maker's cancel/reject reason went to the database as typed: a NUL in it was a 500."""
    listing = await actions.create_product(pool, build_publisher(settings), "alice", ProductDraft(
        title="주문 제작 찻잔", price=25_000))  # made to order: the order waits for accept/reject
    await actions.place_order(pool, build_publisher(settings), None, "bob", str(listing.id), 1)
    order_id = await pool.fetchval("SELECT id FROM orders")
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post(f"/orders/{order_id}/move", data={"action": action, "reason": "품절\x00",
                                                                  "csrf_token": token, "next": "/dashboard"},
                                 allow_redirects=False)
    await no_500(response, 303, 422)


@pytest.mark.parametrize("field", ["price", "stock", "shipping"])
async def test_a_superscript_number_in_the_new_product_form_is_a_422_not_a_500(client, pool, alice, field):
    """The dashboard's `_whole` checked `isdigit()` then called `int()`: "²" raised ValueError, a 500."""
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post("/dashboard/products", data={"csrf_token": token, "title": "달항아리",
                                                               "price": "1000", field: "²"}, allow_redirects=False)
    await no_500(response, 422)
    assert await pool.fetchval("SELECT count(*) FROM listings") == 0


@pytest.mark.parametrize("field", ["price", "stock"])
async def test_a_superscript_number_in_the_product_edit_form_is_a_422_not_a_500(client, pool, alice, cup, field):
    """The same `_whole` behind `POST /dashboard/products/{id}`."""
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post(f"/dashboard/products/{cup.id}", data={
        "csrf_token": token, "price": "25000", "stock": "3", "action": "save", field: "²"}, allow_redirects=False)
    await no_500(response, 422)
    row = await pool.fetchrow("SELECT price, stock FROM listings WHERE id = $1", cup.id)
    assert (row["price"], row["stock"]) == (25_000, 3)


async def test_a_product_description_with_a_nul_character_is_a_422_not_a_500(client, pool, alice):
    """`check_draft` refuses control characters in the title only; a NUL in the description reached PostgreSQL."""
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post("/dashboard/products", data={"csrf_token": token, "title": "달항아리",
                                                               "price": "1000", "description": "흰\x00항아리"},
                                 allow_redirects=False)
    await no_500(response, 303, 422)


async def test_a_dashboard_post_with_a_nul_character_is_a_422_not_a_500(client, pool, alice):
    """The dashboard's post form: a NUL in the text was a 500 from the database."""
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post("/dashboard/post", data={"csrf_token": token, "text": "가마\x00일지"},
                                 allow_redirects=False)
    await no_500(response, 303, 422)


async def test_a_suspended_makers_listing_is_not_shown_and_takes_no_order_from_the_web(client, pool, alice, bob,
                                                                                      cup):
    """A suspension hides the account's posts everywhere (README, Moderation), and `shop_items` hid its listings
    from the shop tab; but `/listings/{id}` served the page with its order form, and the order was placed and
    accepted automatically, holding stock for a maker the operator suspended."""
    from fedserver.repo import moderation as moderation_repo

    async with pool.acquire() as conn:
        await moderation_repo.set_actor_state(conn, alice.id, suspended=True)
    assert "청자 찻잔" not in await (await client.get("/@alice/shop")).text()  # hidden from the shop tab
    visitor = await client.get(f"/listings/{cup.id}", headers={"Accept": "text/html"})
    assert (await login(client, "bob")).status == 303
    token = await csrf_of(client)
    buyer = await client.get(f"/listings/{cup.id}")
    ordered = await client.post(f"/listings/{cup.id}/order", data={"quantity": "1", "csrf_token": token},
                                allow_redirects=False)
    assert (visitor.status, buyer.status, ordered.status) == (404, 404, 422)
    assert await order_count(pool) == 0
    assert await pool.fetchval("SELECT stock FROM listings WHERE id = $1", cup.id) == 3


async def test_a_login_name_with_a_nul_character_is_refused_not_a_500(client, alice):
    """`check_login_form` passes the name on to the database as typed: a NUL in it was a 500."""
    form_page = await (await client.get("/login")).text()
    form = {**hidden_fields(form_page), "username": "alice\x00", "password": PASSWORD}
    response = await client.post("/login", data=form, allow_redirects=False)
    await no_500(response, 422)


@pytest.mark.parametrize("path", ["/@alice/shop?page=²", "/@alice?page=¹", "/@alice/blog?page=³",
                                  "/discover?page=²"])
async def test_a_superscript_page_number_is_a_400_not_a_500(client, alice, cup, path):
    """`page_number` checked `isdigit()` then called `int()`: "²" raised ValueError, a 500 on the shop tab."""
    response = await client.get(path, headers={"Accept": "text/html"})
    await no_500(response, 400)


async def test_a_product_edit_without_a_stock_field_does_not_make_the_listing_made_to_order(client, pool, alice,
                                                                                           cup):
    """A `POST /dashboard/products/{id}` that sends only `price` (a script, an older form) read the missing `stock`
    as the empty field, "made to order": the count of 3 was dropped without being asked."""
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    response = await client.post(f"/dashboard/products/{cup.id}", data={"csrf_token": token, "price": "26000",
                                                                         "action": "save"}, allow_redirects=False)
    assert response.status in (303, 422)
    assert await pool.fetchval("SELECT stock FROM listings WHERE id = $1", cup.id) == 3
