"""The server-rendered public pages over real HTTP: escaping, language, time zone, headers, stylesheet."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedserver.accounts import (
    create_account,
    ensure_instance_actor,
    validate_new_account,
)
from fedserver.app import build_publisher, create_app
from fedserver.federation import commands
from fedserver.templates.formatting import format_datetime
from storefront import actions
from storefront.products import ProductDraft

HTML = {"Accept": "text/html"}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
async def alice(pool, settings):
    await ensure_instance_actor(pool, settings)
    return await create_account(pool, settings, validate_new_account(username="alice", display_name="앨리스 공방"))


@pytest.fixture
async def berlin(settings, pool):
    """A client of the same instance configured with `[instance] timezone = "Europe/Berlin"`."""
    instance = settings.instance.model_copy(update={"timezone": "Europe/Berlin"})
    async with TestClient(TestServer(create_app(settings.model_copy(update={"instance": instance}), pool),
                                     host="127.0.0.1")) as client:
        yield client


async def test_a_display_name_and_a_bio_with_a_script_render_as_text(client, pool, settings, alice):
    await commands.update_profile(pool, build_publisher(settings), "alice", display_name=SCRIPT, summary=f"{SCRIPT} & <b>bold</b>")
    html = await (await client.get("/@alice", headers=HTML)).text()
    assert "<script" not in html and "<b>" not in html
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; (@alice@shop.test)</title>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


async def test_stored_html_is_sanitized_again_when_shown(client, pool, alice):
    await pool.execute("UPDATE actors SET summary = $1 WHERE id = $2",
                       '<p>물레 <a href="javascript:alert(2)">10년</a></p><script>alert(3)</script>'
                       '<img src=x onerror="alert(4)">', alice.id)
    html = await (await client.get("/@alice", headers=HTML)).text()
    assert '<div class="bio"><p>물레 10년</p></div>' in html
    assert "alert" not in html and "<img" not in html


async def test_pages_are_korean_unless_the_browser_prefers_english(client, alice):
    korean = await (await client.get("/", headers={"Accept-Language": "fr, ko;q=0.5, en;q=0.4"})).text()
    assert '<html lang="ko">' in korean and "공방, 사회적기업, 협동조합을 위한 연합 소셜 서버입니다." in korean
    english = await (await client.get("/", headers={"Accept-Language": "en-GB, ko;q=0.2"})).text()
    assert '<html lang="en">' in english and "A federated home for craft workshops" in english
    assert "팔로워 0" in await (await client.get("/@alice")).text()
    assert "Followers 0" in await (await client.get("/@alice", headers={"Accept-Language": "en"})).text()


async def test_a_post_shows_its_time_in_the_configured_time_zone(client, berlin, pool, settings, alice):
    uri = await commands.create_post(pool, build_publisher(settings), "alice", "오늘 가마를 열었습니다")
    path = uri.removeprefix(settings.base_url)
    seoul = await (await client.get(path, headers=HTML)).text()
    [(iso, shown)] = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', seoul)
    published = datetime.fromisoformat(iso)
    assert shown == format_datetime(published, lang="ko", zone=ZoneInfo("Asia/Seoul"))
    in_berlin = await (await berlin.get(path, headers={**HTML, "Accept-Language": "en"})).text()
    assert f"<time datetime=\"{iso}\">{format_datetime(published, lang='en', zone=ZoneInfo('Europe/Berlin'))}" in in_berlin
    assert shown not in in_berlin


async def test_every_page_sends_the_security_headers_and_our_stylesheet(client, pool, settings, alice):
    post = (await commands.create_post(pool, build_publisher(settings), "alice", "hello")).removeprefix(settings.base_url)
    listing = await actions.create_product(pool, build_publisher(settings), "alice", ProductDraft(title="찻잔", price=1))
    for path in ("/", "/@alice", "/users/alice", post, f"/listings/{listing.id}", "/@nobody", "/no/such/page",
                 "/admin/login"):
        response = await client.get(path, headers=HTML)
        assert response.content_type == "text/html", path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "script-src" not in policy and "unsafe-inline" not in policy
        [stylesheet] = re.findall(r'<link rel="stylesheet" href="([^"]+)">', await response.text())
    css = await client.get(stylesheet)
    assert css.status == 200 and css.content_type == "text/css"
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "@media (prefers-color-scheme: dark)" in await css.text()
    stale = await client.get("/static/site.css?v=old")
    assert stale.status == 200 and stale.headers["Cache-Control"] == "no-cache"


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_missing_url_is_a_page_for_a_browser_and_json_for_everyone_else(client):
    page = await client.get("/no/such/page", headers={**BROWSER, "Accept-Language": "en-US,en;q=0.9"})
    assert page.status == 404 and page.content_type == "text/html"
    html = await page.text()
    assert '<html lang="en">' in html and "<h1>Not found</h1>" in html and "HTTP 404" in html
    assert "Not Found" not in html  # aiohttp's reason phrase adds nothing to the heading
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Cache-Control"] == "no-store"
    korean = await client.get("/no/such/page", headers=BROWSER)
    assert korean.status == 404 and "<h1>찾을 수 없습니다</h1>" in await korean.text()
    for accept in ({}, {"Accept": "application/json"}, {"Accept": "application/activity+json"}, {"Accept": "*/*"}):
        response = await client.get("/no/such/page", headers=accept)
        assert response.status == 404 and response.content_type == "application/json", accept
        assert await response.json() == {"error": "Not Found"}


async def test_api_and_token_endpoints_answer_json_even_to_a_browser(client):
    api = await client.get("/api/v1/no-such-endpoint", headers=BROWSER)
    assert api.status == 404 and api.content_type == "application/json"
    assert api.headers["Access-Control-Allow-Origin"] == "*"
    token = await client.get("/oauth/token", headers=BROWSER)
    assert token.status == 405 and token.content_type == "application/json" and "POST" in token.headers["Allow"]


async def test_an_error_page_keeps_the_status_and_headers_of_the_json_answer(client, alice):
    as_page = await client.post("/", headers=BROWSER)
    as_json = await client.post("/")
    assert as_page.status == as_json.status == 405
    assert as_page.headers["Allow"] == as_json.headers["Allow"] and "GET" in as_page.headers["Allow"]
    assert as_page.content_type == "text/html" and "<h1>허용되지 않는 요청 방식입니다</h1>" in await as_page.text()


async def test_a_missing_post_is_a_page_for_a_browser_and_json_for_a_peer(client, alice):
    page = await client.get("/users/alice/statuses/123", headers=BROWSER)
    assert page.status == 404 and page.content_type == "text/html"
    assert "no such post" in await page.text()
    peer = await client.get("/users/alice/statuses/123", headers={"Accept": "application/activity+json"})
    assert peer.status == 404 and await peer.json() == {"error": "no such post"}
