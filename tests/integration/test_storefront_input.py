"""The storefront's API and command line refuse bad input clearly and leave nothing behind: numbers that are
no whole numbers (or too long to be ids), fields the API does not take, and the free-shipping threshold kept."""

from __future__ import annotations

import asyncio

import pytest

from fedserver.accounts import create_account, validate_new_account
from fedserver.api.oauth_service import OOB, issue_token, register_app
from tests.integration.test_storefront import Shop
from tests.support.instance import fedserver, instance_env

API = "/api/v1/storefront"
ALL = ("read", "write", "follow", "push")


@pytest.fixture
async def shop(fed_client, fed_settings, pool):
    """alice (the maker) and bob (a buyer), as in test_storefront."""
    await create_account(pool, fed_settings, validate_new_account(username="bob"))
    return Shop(fed_client, fed_settings, pool)


async def _token(shop, username: str, scopes=ALL) -> dict:
    app, _ = await register_app(shop.pool, name="input", website=None, redirect_uris=[OOB], scopes=ALL)
    async with shop.pool.acquire() as conn:
        account_id = await conn.fetchval("SELECT id FROM actors WHERE username = $1 AND is_local", username)
        grant = await issue_token(conn, app, account_id, tuple(scopes))
    return {"Authorization": f"Bearer {grant.access_token}"}


async def _json(response, status: int = 200):
    body = await response.json()
    assert response.status == status, body
    return body


# The JSON API


async def test_api_product_create_keeps_the_free_shipping_threshold(shop):
    alice, bob = await _token(shop, "alice"), await _token(shop, "bob")
    body = {"title": "청자 찻잔", "price": 38_000, "stock": 3, "shipping": 3_000, "free_shipping_over": 50_000}
    product = await _json(await shop.client.post(f"{API}/products", json=body, headers=alice))
    order = await _json(await shop.client.post(f"{API}/orders", json={"listing": str(product["id"]), "quantity": 2},
                                               headers=bob))
    assert (product["free_shipping_over"], order["shipping_krw"], order["total_krw"]) == (50_000, 0, 76_000)


@pytest.mark.parametrize("body", [{"stock": None}, {"stock": ""}])
async def test_api_patch_with_an_empty_stock_does_not_turn_counted_stock_into_made_to_order(shop, body):
    listing = await shop.list()
    alice = await _token(shop, "alice")
    response = await shop.client.patch(f"{API}/products/{listing.id}", json=body, headers=alice)
    after = await shop.listing(listing.id)
    assert response.status == 422 and after.stock == 3, (response.status, after.stock)


@pytest.mark.parametrize("field", ["stok", "tags", "url"])
async def test_api_patch_with_an_unknown_field_is_refused_and_changes_nothing(shop, field):
    listing = await shop.list()
    alice = await _token(shop, "alice")
    response = await shop.client.patch(f"{API}/products/{listing.id}", json={"title": "새 이름", field: 0},
                                       headers=alice)
    after = await shop.listing(listing.id)
    assert response.status == 422 and after.title == "청자 찻잔", (response.status, after.title)
    assert field in (await response.json())["error"]


async def test_api_product_fields_are_taken_under_the_names_the_api_answers_with(shop):
    alice = await _token(shop, "alice")
    created = await _json(await shop.client.post(f"{API}/products", headers=alice, json={
        "title": "찻잔", "price_krw": 38_000, "stock": 3, "shipping_krw": 3_000}))
    assert (created["price_krw"], created["shipping_krw"]) == (38_000, 3_000)
    changed = await _json(await shop.client.patch(f"{API}/products/{created['id']}", headers=alice,
                                                  json={"title": "새 이름", "shipping_krw": 0, "price_krw": 40_000}))
    assert (changed["title"], changed["shipping_krw"], changed["price_krw"]) == ("새 이름", 0, 40_000)
    both = await shop.client.patch(f"{API}/products/{created['id']}", headers=alice,
                                   json={"price": 1_000, "price_krw": 2_000})
    assert both.status == 422 and (await shop.listing(created["id"])).price == 40_000


@pytest.mark.parametrize("body", [
    {"quantity": "²"}, {"quantity": "1" * 5000}, {"listing": "99999999999999999999"}, {"listing": "²"},
])
async def test_api_order_with_a_bad_number_is_a_json_refusal_and_leaves_no_row(shop, body):
    listing = await shop.list()
    bob = await _token(shop, "bob")
    response = await shop.client.post(f"{API}/orders", json={"listing": str(listing.id), **body}, headers=bob)
    assert response.status in (404, 422), await response.text()
    assert "error" in await response.json()
    assert await shop.val("SELECT count(*) FROM orders") == 0


@pytest.mark.parametrize("body", [{"price": "²"}, {"price": "1" * 5000}, {"stock": "³"}, {"shipping": "1" * 5000}])
async def test_api_product_with_a_bad_number_is_a_json_refusal_and_leaves_no_row(shop, body):
    alice = await _token(shop, "alice")
    response = await shop.client.post(f"{API}/products", json={"title": "찻잔", "price": 1000, "stock": 1, **body},
                                      headers=alice)
    assert response.status == 422, await response.text()
    assert "error" in await response.json()
    assert await shop.val("SELECT count(*) FROM listings") == 0


async def test_api_products_of_a_huge_account_id_is_a_json_refusal(shop):
    alice = await _token(shop, "alice")
    response = await shop.client.get(f"{API}/products?account_id=99999999999999999999", headers=alice)
    assert response.status in (404, 422), await response.text()


async def test_api_order_get_with_an_odd_digit_id_is_404(shop):
    alice = await _token(shop, "alice")
    response = await shop.client.get(f"{API}/orders/%C2%B2", headers=alice)
    assert response.status == 404, await response.text()


# The command line


@pytest.fixture
def cli_env(db_url, tmp_path):
    return instance_env(database_url=db_url, data_dir=tmp_path / "data", port=8998)


def _cli(env, *args):
    return fedserver(*args, env=env)


async def test_cli_huge_or_odd_listing_refs_are_one_line_refusals(shop, cli_env):
    for ref in ("99999999999999999999", "²"):
        result = await asyncio.to_thread(_cli, cli_env, "product", "update", ref, "--price", "5000")
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        result = await asyncio.to_thread(_cli, cli_env, "order", "create", "bob", ref)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        result = await asyncio.to_thread(_cli, cli_env, "order", "accept", ref)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr


async def test_a_nul_character_anywhere_in_a_request_is_a_clear_refusal_and_leaves_no_row(shop):
    # PostgreSQL stores no U+0000: it used to reach a statement and fail there as a 500.
    listing = await shop.list()
    bob = await _token(shop, "bob")
    for body in ({"listing": str(listing.id), "message": "선물\x00포장"}, {"listing": str(listing.id), "x\x00": "1"}):
        response = await shop.client.post(f"{API}/orders", json=body, headers=bob)
        assert response.status == 422 and "NUL" in (await response.json())["error"]
    form = await shop.client.post(f"{API}/orders", data={"listing": str(listing.id), "message": "a\x00b"}, headers=bob)
    assert form.status == 422
    assert (await shop.client.get(f"{API}/products?account_id=1%00", headers=bob)).status == 400
    assert (await shop.client.get("/@alice%00")).status == 400
    assert await shop.val("SELECT count(*) FROM orders") == 0
