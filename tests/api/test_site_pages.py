"""The logged-in web over real HTTP: login and logout, ordering from a listing page, the buyer's `/orders`,
the maker's `/dashboard` (order buttons, writing, listing with a photo), and CSRF on every form."""

from __future__ import annotations

import io
import re

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from fedserver.app import build_publisher, create_app
from fedserver.federation import commands
from fedserver.web.session import local_path
from storefront import actions
from storefront.products import ProductDraft
from tests.api.conftest import PASSWORD
from tests.api.forms import hidden_fields

SESSION_COOKIE = "fedserver_session"
EN = {"Accept-Language": "en"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 120, 90)).save(out, "PNG")
    return out.getvalue()


async def login(client, username: str, password: str = PASSWORD, next_path: str = ""):
    form_page = await client.get(f"/login?next={next_path}" if next_path else "/login")
    form = {**hidden_fields(await form_page.text()), "username": username, "password": password}
    return await client.post("/login", data=form, allow_redirects=False)


async def csrf_of(client, path: str) -> str:
    """The session's CSRF token, as the page's logout form carries it."""
    return hidden_fields(await (await client.get(path)).text())["csrf_token"]


async def same_password(pool, account, like):
    """Give `account` (the API fixtures' bob has none) the password of `like`."""
    await pool.execute("UPDATE local_accounts SET password_hash = (SELECT password_hash FROM local_accounts "
                       "WHERE actor_id = $2) WHERE actor_id = $1", account.id, like.id)


@pytest.fixture
async def other_client(settings, pool):
    """A second browser (its own cookie jar)."""
    async with TestClient(TestServer(create_app(settings, pool), host="127.0.0.1")) as second:
        yield second


@pytest.fixture
async def cup(pool, settings, alice):
    """alice's listing: two cups that she accepts automatically, shipping 3,000 won."""
    return await actions.create_product(pool, build_publisher(settings), "alice", ProductDraft(
        title="청자 찻잔", price=25_000, stock=2, shipping_krw=3_000))


async def test_login_opens_a_site_session_and_logout_ends_it(client, pool, alice):
    assert (await client.get("/dashboard", allow_redirects=False)).headers["Location"] == "/login?next=/dashboard"
    response = await login(client, "alice", next_path="/dashboard")
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    cookie = response.cookies[SESSION_COOKIE]
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Lax", "/")
    home = await (await client.get("/", headers=EN)).text()
    assert 'href="/dashboard"' in home and "@alice" in home and 'action="/logout"' in home
    token = hidden_fields(home)["csrf_token"]
    assert (await client.post("/logout", data={"csrf_token": "wrong"}, allow_redirects=False)).status == 403
    assert (await client.get("/dashboard", allow_redirects=False)).status == 200  # a forged logout changed nothing
    out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303 and out.cookies[SESSION_COOKIE].value == ""
    # The old cookie opens nothing any more, even sent again by hand.
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie.value})
    assert (await client.get("/dashboard", allow_redirects=False)).status == 303
    assert 'href="/login"' in await (await client.get("/")).text()


async def test_a_wrong_password_or_a_foreign_next_logs_nobody_in(client, pool, alice):
    refused = await login(client, "alice", "wrong password")
    assert refused.status == 422 and SESSION_COOKIE not in refused.cookies
    assert "비밀번호가 올바르지 않습니다" in await refused.text()
    response = await login(client, "alice", next_path="//evil.example/")
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/ok\nSet-Cookie: x", ""):
        assert local_path(target) == "/dashboard", target
    assert local_path("/listings/3?x=1") == "/listings/3?x=1"
    no_cookie = await client.post("/login", data={"csrf_token": "x" * 43, "username": "alice", "password": PASSWORD},
                                  allow_redirects=False)
    assert no_cookie.status == 403  # the form's token is not the CSRF cookie's


async def test_a_buyer_orders_from_the_listing_page_and_sees_it_on_orders(client, other_client, pool, alice, bob,
                                                                          cup, settings):
    await same_password(pool, bob, alice)
    assert (await login(client, "bob")).status == 303
    listing = await (await client.get(f"/listings/{cup.id}")).text()
    assert f'action="/listings/{cup.id}/order"' in listing and 'name="quantity"' in listing
    token = hidden_fields(listing)["csrf_token"]
    forged = await client.post(f"/listings/{cup.id}/order", data={"quantity": "1"}, allow_redirects=False)
    assert forged.status == 403 and await pool.fetchval("SELECT count(*) FROM orders") == 0
    too_many = await client.post(f"/listings/{cup.id}/order", data={"quantity": "5", "csrf_token": token})
    assert too_many.status == 422 and "only 2 left" in await too_many.text()
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0
    placed = await client.post(f"/listings/{cup.id}/order", allow_redirects=False,
                               data={"quantity": "2", "message": "선물 포장 부탁드려요", "csrf_token": token})
    assert placed.status == 303 and placed.headers["Location"].startswith("/orders#order-")
    orders = await (await client.get("/orders")).text()
    assert "청자 찻잔" in orders and "₩53,000" in orders and "선물 포장 부탁드려요" in orders
    assert "수락됨: 입금 대기" in orders  # accepted automatically while stock lasts
    assert 'value="cancel"' in orders and 'value="mark-paid"' not in orders

    # The maker sees it on her dashboard and moves it along with the buttons.
    assert (await login(other_client, "alice")).status == 303
    dashboard = await (await other_client.get("/dashboard")).text()
    assert "청자 찻잔" in dashboard and 'value="mark-paid"' in dashboard and 'value="accept"' not in dashboard
    order_id = re.search(r'action="/orders/(\d+)/move"', dashboard).group(1)
    alice_token = hidden_fields(dashboard)["csrf_token"]
    move = f"/orders/{order_id}/move"
    assert (await other_client.post(move, data={"action": "mark-paid", "csrf_token": token},
                                    allow_redirects=False)).status == 403  # bob's token is not alice's
    for action in ("mark-paid", "mark-shipped"):
        done = await other_client.post(move, data={"action": action, "csrf_token": alice_token, "next": "/dashboard"},
                                       allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == f"/dashboard#order-{order_id}"
    refused = await other_client.post(move, data={"action": "accept", "csrf_token": alice_token})
    assert refused.status == 422 and "shipped" in await refused.text()
    assert "발송됨" in await (await client.get("/orders")).text()
    # bob may not ship his own order; he confirms receipt once delivered.
    assert (await client.post(move, data={"action": "mark-delivered", "csrf_token": token})).status == 422
    await other_client.post(move, data={"action": "mark-delivered", "csrf_token": alice_token})
    confirmed = await client.post(move, data={"action": "complete", "csrf_token": token}, allow_redirects=False)
    assert confirmed.status == 303
    assert await pool.fetchval("SELECT state FROM orders") == "completed"
    assert await pool.fetchval("SELECT stock FROM listings WHERE id = $1", cup.id) == 0


async def test_someone_elses_order_cannot_be_moved(client, pool, alice, bob, cup, settings):
    order = await actions.place_order(pool, build_publisher(settings), None, "bob", str(cup.id), 1)
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/")
    stranger = await client.post(f"/orders/{order.id + 1000}/move", data={"action": "cancel", "reason": "x",
                                                                          "csrf_token": token})
    assert stranger.status == 404
    no_reason = await client.post(f"/orders/{order.id}/move", data={"action": "cancel", "csrf_token": token})
    assert no_reason.status == 422 and await pool.fetchval("SELECT state FROM orders") == "accepted"


async def test_the_dashboard_writes_an_article_and_lists_a_product_with_a_photo(client, pool, alice, settings):
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    bad = await client.post("/dashboard/products", data={"csrf_token": token, "title": "달항아리", "price": "3만원"})
    html = await bad.text()
    assert bad.status == 422 and "price must be a whole number" in html and 'value="달항아리"' in html
    assert await pool.fetchval("SELECT count(*) FROM listings") == 0

    form = FormData()
    for key, value in {"csrf_token": token, "title": "달항아리", "price": "120,000", "stock": "1", "shipping": "5000",
                       "description": "장작 가마에서 구웠습니다", "image_description": "흰 달항아리"}.items():
        form.add_field(key, value)
    form.add_field("image", png(), filename="jar.png", content_type="image/png")
    listed = await client.post("/dashboard/products", data=form, allow_redirects=False)
    assert listed.status == 303 and listed.headers["Location"].startswith("/listings/")
    page = await (await client.get(listed.headers["Location"])).text()
    assert "₩120,000" in page and "₩5,000" in page and 'alt="흰 달항아리"' in page

    article = FormData()
    for key, value in {"csrf_token": token, "title": "가마 일지", "text": "오늘은 장작을 팼습니다"}.items():
        article.add_field(key, value)
    article.add_field("image", png(), filename="wood.png", content_type="image/png")
    posted = await client.post("/dashboard/post", data=article, allow_redirects=False)
    assert posted.status == 303
    shown = await (await client.get(posted.headers["Location"])).text()
    assert "<h1>가마 일지</h1>" in shown and "오늘은 장작을 팼습니다" in shown
    assert await pool.fetchval("SELECT object_type FROM objects WHERE name = '가마 일지'") == "Article"
    forged = await client.post("/dashboard/post", data={"csrf_token": "nope", "text": "위조"})
    assert forged.status == 403 and await pool.fetchval("SELECT count(*) FROM objects WHERE content LIKE '%위조%'") == 0
    empty = await client.post("/dashboard/post", data={"csrf_token": token, "text": "  "})
    assert empty.status == 422


async def test_a_visitor_is_asked_to_log_in_to_order(client, alice, cup):
    page = await (await client.get(f"/listings/{cup.id}")).text()
    assert f'href="/login?next=/listings/{cup.id}"' in page and 'name="quantity"' not in page
    response = await client.post(f"/listings/{cup.id}/order", data={"quantity": "1"}, allow_redirects=False)
    assert response.status == 401
    for path in ("/orders", "/dashboard"):
        assert (await client.get(path, allow_redirects=False)).headers["Location"] == f"/login?next={path}"


async def test_the_maker_sees_no_order_form_on_her_own_listing(client, alice, cup):
    assert (await login(client, "alice")).status == 303
    page = await (await client.get(f"/listings/{cup.id}")).text()
    assert 'name="quantity"' not in page


async def test_posts_from_the_dashboard_reach_followers_like_any_post(client, pool, alice, bob, settings):
    await commands.follow(pool, build_publisher(settings), None, "bob", "@alice@" + settings.instance.domain)
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    assert (await client.post("/dashboard/post", data={"csrf_token": token, "text": "새 가마 개시"},
                              allow_redirects=False)).status == 303
    assert await pool.fetchval(
        "SELECT count(*) FROM home_feed h JOIN objects o ON o.id = h.object_id "
        "WHERE h.account_id = $1 AND o.content LIKE '%새 가마 개시%'", bob.id) == 1


async def test_every_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(client, pool, alice, cup):
    assert (await login(client, "alice")).status == 303
    counts = "SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM orders), (SELECT count(*) FROM listings)"
    before = tuple(await pool.fetchrow(counts))
    forms = {
        "/dashboard/post": {"text": "위조된 글"},
        "/dashboard/products": {"title": "위조", "price": "1000"},
        f"/listings/{cup.id}/order": {"quantity": "1"},
        "/orders/1/move": {"action": "cancel", "reason": "x"},
        "/logout": {},
        "/login": {"username": "alice", "password": PASSWORD},
        "/signup": {"username": "newbie", "password": PASSWORD},
    }
    for path, fields in forms.items():
        for token in (None, "wrong-token"):
            data = {**fields, **({"csrf_token": token} if token else {})}
            response = await client.post(path, data=data, allow_redirects=False)
            assert response.status == 403, (path, token, response.status)
    assert tuple(await pool.fetchrow(counts)) == before
    assert (await client.get("/dashboard", allow_redirects=False)).status == 200  # still logged in


async def test_the_logged_in_pages_are_valid_html_with_a_label_for_every_input(client, pool, alice, bob, cup):
    import html5lib

    await same_password(pool, bob, alice)
    assert (await login(client, "bob")).status == 303
    await client.post(f"/listings/{cup.id}/order", data={"quantity": "1", "csrf_token": await csrf_of(client, "/")})
    for path in ("/dashboard", "/orders", f"/listings/{cup.id}", "/login", "/signup"):
        html = await (await client.get(path)).text()
        document = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)
        labelled = {label.get("for") for label in document.iter("label")}
        for field in [*document.iter("input"), *document.iter("textarea"), *document.iter("select")]:
            if field.get("type") not in ("hidden", "submit"):
                assert field.get("id") in labelled, (path, field.attrib)


async def test_remote_follow_sends_the_visitor_to_their_own_servers_follow_page(fed_settings, pool, alice):
    from aiohttp import web

    from tests.support.instance import free_port

    port = free_port()
    asked = []

    async def webfinger(request: web.Request) -> web.Response:
        asked.append(request.query["resource"])
        if request.query["resource"] == f"acct:minji@127.0.0.1:{port}":
            return web.json_response({"subject": request.query["resource"], "links": [
                {"rel": "http://ostatus.org/schema/1.0/subscribe",
                 "template": f"http://127.0.0.1:{port}/authorize_interaction?uri={{uri}}"}]})
        return web.json_response({"subject": request.query["resource"], "links": []})

    other = web.Application()
    other.router.add_get("/.well-known/webfinger", webfinger)
    runner = web.AppRunner(other)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with TestClient(TestServer(create_app(fed_settings, pool), host="127.0.0.1")) as client:
            profile = await (await client.get("/@alice")).text()
            assert 'action="/@alice/follow"' in profile and 'name="address"' in profile
            gone = await client.get(f"/@alice/follow?address=minji@127.0.0.1:{port}", allow_redirects=False)
            assert gone.status == 303
            domain = fed_settings.instance.domain
            assert gone.headers["Location"] == \
                f"http://127.0.0.1:{port}/authorize_interaction?uri=alice@{domain.replace(':', '%3A')}"
            none = await client.get(f"/@alice/follow?address=other@127.0.0.1:{port}")
            assert none.status == 422 and "@alice@" in await none.text()
            bad = await client.get("/@alice/follow?address=not an address")
            assert bad.status == 422
            assert asked == [f"acct:minji@127.0.0.1:{port}", f"acct:other@127.0.0.1:{port}"]
    finally:
        await runner.cleanup()


async def test_the_maker_edits_pauses_and_deletes_a_product_from_the_dashboard(client, pool, alice, cup):
    assert (await login(client, "alice")).status == 303
    token = await csrf_of(client, "/dashboard")
    edit = f"/dashboard/products/{cup.id}"
    paused = await client.post(edit, data={"csrf_token": token, "price": "27,000", "stock": "0", "status": "paused",
                                           "action": "save"}, allow_redirects=False)
    assert paused.status == 303, re.findall(r'role="alert">([^<]*)<', await paused.text())
    row = await pool.fetchrow("SELECT price, stock, status FROM listings WHERE id = $1", cup.id)
    assert (row["price"], row["stock"], row["status"]) == (27_000, 0, "paused")
    restocked = await client.post(edit, data={"csrf_token": token, "price": "27000", "stock": "4", "status": "active",
                                              "action": "save"}, allow_redirects=False)
    assert restocked.status == 303
    assert await pool.fetchval("SELECT status FROM listings WHERE id = $1", cup.id) == "active"
    bad = await client.post(edit, data={"csrf_token": token, "price": "0", "stock": "1", "action": "save"})
    assert bad.status == 422 and await pool.fetchval("SELECT price FROM listings WHERE id = $1", cup.id) == 27_000
    await client.post(edit, data={"csrf_token": token, "price": "27000", "action": "delete"})
    assert await pool.fetchval("SELECT status FROM listings WHERE id = $1", cup.id) == "deleted"


async def test_another_makers_product_cannot_be_edited(client, pool, alice, bob, cup):
    await same_password(pool, bob, alice)
    assert (await login(client, "bob")).status == 303
    token = await csrf_of(client, "/dashboard")
    refused = await client.post(f"/dashboard/products/{cup.id}", data={"csrf_token": token, "price": "1",
                                                                        "action": "save"})
    assert refused.status == 422 and await pool.fetchval("SELECT price FROM listings") == 25_000
    gone = await client.post(f"/dashboard/products/{cup.id}", data={"csrf_token": token, "action": "delete"})
    assert gone.status == 422 and await pool.fetchval("SELECT status FROM listings") == "active"
