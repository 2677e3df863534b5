"""The public web of a workshop over real HTTP on real PostgreSQL: front page, profile tabs, articles, listings, feed.

Every page is parsed by html5lib in strict mode (a parse error fails the test), and carries
`lang`, a title, a meta description and its link preview (OpenGraph and Twitter-card tags).
"""

from __future__ import annotations

import asyncio
import io
import re
from xml.etree import ElementTree as ET

import html5lib
import pytest
from PIL import Image

from fedserver.accounts import create_account, ensure_instance_actor, validate_new_account
from fedserver.app import build_publisher
from fedserver.federation import commands
from fedserver.federation.posting import PostOptions
from fedserver.media.service import Upload, upload_media
from fedserver.web.profiles import PAGE_SIZE
from storefront import actions
from storefront.products import ProductDraft

HTML = {"Accept": "text/html"}
SCRIPT = "<script>alert(1)</script>"
ATOM = "{http://www.w3.org/2005/Atom}"


def png(color=(180, 90, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "PNG")
    return out.getvalue()


def parse_strict(html: str):
    """The document, or html5lib's first parse error (an invalid page fails here)."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)


def meta(html: str) -> dict[str, str]:
    """The page's meta tags by name or property (html5lib reads them, so attribute order does not matter)."""
    document = parse_strict(html)
    found = {}
    for element in document.iter("meta"):
        key = element.get("property") or element.get("name")
        if key:
            found[key] = element.get("content")
    return found


async def page(client, path: str, status: int = 200, **headers) -> str:
    response = await client.get(path, headers={**HTML, **headers})
    text = await response.text()
    assert response.status == status, (path, response.status, text[:300])
    assert response.content_type == "text/html"
    document = parse_strict(text)
    assert document.get("lang") in ("ko", "en")
    assert document.find("head/title").text.strip()
    return text


@pytest.fixture
async def maker(pool, settings):
    await ensure_instance_actor(pool, settings)
    return await create_account(pool, settings, validate_new_account(username="potter", display_name="도예 공방"))


async def image_id(pool, settings, account_id: int, description: str) -> int:
    return (await upload_media(pool, settings, asyncio.Semaphore(1), account_id,
                               Upload(png(), "cup.png", description=description))).id


async def test_a_profile_shows_its_short_posts_only_and_pages_them(client, pool, settings, maker):
    publisher = build_publisher(settings)
    for i in range(PAGE_SIZE + 1):
        await commands.create_post(pool, publisher, "potter", f"가마 일지 {i}번")
    await commands.create_post(pool, publisher, "potter", "팔로워에게만 보이는 글", visibility="private")
    await commands.create_post(pool, publisher, "potter", "조용히 공개한 글", visibility="unlisted")
    first = await commands.create_post(pool, publisher, "potter", "첫 글에 다는 답글")
    await commands.create_post(pool, publisher, "potter", "답글입니다", in_reply_to=first)
    await commands.create_post(pool, publisher, "potter", "긴 글 본문", article=True, title="유약 이야기")
    await actions.create_product(pool, publisher, "potter", ProductDraft(title="달항아리", price=120_000))

    html = await page(client, "/@potter")
    assert "조용히 공개한 글" in html and "첫 글에 다는 답글" in html
    for hidden in ("팔로워에게만 보이는 글", "답글입니다", "유약 이야기", "달항아리"):
        assert hidden not in html, hidden
    assert html.count('<article class="post">') == PAGE_SIZE
    assert 'rel="next" href="?page=2"' in html and 'rel="prev"' not in html
    second = await page(client, "/@potter?page=2")
    assert 'rel="prev" href="?page=1"' in second and 'rel="next"' not in second
    assert second.count('<article class="post">') == 3  # 23 shown (21 + unlisted + the replied-to), 20 on page 1
    assert "가마 일지 0번" in second
    for bad in ("0", "x", "501"):
        assert (await client.get(f"/@potter?page={bad}", headers=HTML)).status == 400


async def test_the_blog_tab_lists_articles_and_an_article_is_a_page_and_a_document_at_one_url(
        client, pool, settings, maker):
    publisher = build_publisher(settings)
    media = await image_id(pool, settings, maker.id, "청자 찻잔을 위에서 본 모습")
    uri = await commands.create_post(pool, publisher, "potter", "<p>1250도에서 구운 <b>청자</b> 이야기</p>",
                                     article=True, title="가마 온도 기록", summary="소성 온도를 기록합니다",
                                     options=PostOptions(media_ids=(media,)))
    await commands.create_post(pool, publisher, "potter", "짧은 글")
    blog = await page(client, "/@potter/blog")
    assert "가마 온도 기록" in blog and "짧은 글" not in blog and 'aria-current="page">블로그' in blog
    path = uri.removeprefix(settings.base_url)
    article = await page(client, path)
    assert "<h1>가마 온도 기록</h1>" in article and "<b>청자</b>" in article
    assert re.search(r'<img src="[^"]+" alt="청자 찻잔을 위에서 본 모습"', article)
    tags = meta(article)
    assert tags["og:type"] == "article" and tags["og:title"] == "가마 온도 기록"
    assert tags["og:url"] == uri and tags["description"] == "소성 온도를 기록합니다"
    assert tags["og:image"].startswith(settings.base_url) and tags["twitter:card"] == "summary_large_image"
    assert tags["article:published_time"]
    document = await client.get(path, headers={"Accept": "application/activity+json"})
    assert (await document.json())["type"] == "Article"


async def test_the_shop_tab_and_a_listing_page_show_price_state_and_preview(client, pool, settings, maker):
    publisher = build_publisher(settings)
    media = await image_id(pool, settings, maker.id, "백자 달항아리")
    jar = await actions.create_product(pool, publisher, "potter", ProductDraft(
        title="달항아리", price=38_000, stock=2, shipping_krw=3_000, media_ids=(media,),
        description="손으로 빚은 백자"))
    gone = await actions.create_product(pool, publisher, "potter", ProductDraft(title="지운 상품", price=1_000))
    await actions.delete_product(pool, publisher, str(gone.id))
    await actions.create_product(pool, publisher, "potter", ProductDraft(title="품절 접시", price=9_000, stock=0))
    shop = await page(client, "/@potter/shop")
    assert "달항아리" in shop and "₩38,000" in shop and "2개 남음" in shop
    assert "품절 접시" in shop and "품절" in shop and "지운 상품" not in shop
    assert f'href="/listings/{jar.id}"' in shop

    listing = await page(client, f"/listings/{jar.id}")
    assert "<h1>달항아리</h1>" in listing and "₩38,000" in listing and "₩3,000" in listing
    assert 'href="/@potter/shop"' in listing
    tags = meta(listing)
    assert tags["og:title"] == "달항아리 · ₩38,000" and tags["og:type"] == "product"
    assert tags["og:url"] == jar.uri and tags["og:image:alt"] == "백자 달항아리"
    assert tags["description"] == "손으로 빚은 백자" and tags["product:price:amount"] == "38000"
    english = await page(client, f"/listings/{jar.id}", **{"Accept-Language": "en"})
    assert "2 left" in english and "Shipping ₩3,000" in english


async def test_the_front_page_lists_makers_products_and_posts(client, pool, settings, maker):
    publisher = build_publisher(settings)
    await create_account(pool, settings, validate_new_account(username="weaver", display_name="직조 공방"))
    await commands.create_post(pool, publisher, "weaver", "새 천을 짰습니다")
    await commands.create_post(pool, publisher, "potter", "비공개 메모", visibility="private")
    await actions.create_product(pool, publisher, "potter", ProductDraft(title="찻사발", price=45_000, stock=1))
    home = await page(client, "/")
    assert 'href="/@potter"' in home and 'href="/@weaver"' in home
    assert "직조 공방" in home and "도예 공방" in home and "찻사발" in home and "₩45,000" in home
    assert "새 천을 짰습니다" in home and "비공개 메모" not in home
    assert 'href="/@instance.actor"' not in home and "/actor" not in re.findall(r'href="([^"]+)"', home)
    tags = meta(home)
    assert tags["og:title"] == settings.instance.name and tags["og:url"] == f"{settings.base_url}/"


async def test_every_public_page_has_a_description_and_a_link_preview(client, pool, settings, maker):
    publisher = build_publisher(settings)
    post = await commands.create_post(pool, publisher, "potter", "오늘은 물레를 찼습니다")
    listing = await actions.create_product(pool, publisher, "potter", ProductDraft(title="컵", price=10_000))
    for path in ("/", "/@potter", "/@potter/blog", "/@potter/shop", post.removeprefix(settings.base_url),
                 f"/listings/{listing.id}"):
        tags = meta(await page(client, path))
        for key in ("description", "og:title", "og:description", "og:url", "og:type", "og:site_name",
                    "twitter:card", "twitter:title"):
            assert tags.get(key), (path, key)
    profile = await page(client, "/@potter")
    assert f'<link rel="alternate" type="application/atom+xml" title="도예 공방" href="{settings.base_url}/@potter.atom">' \
        in profile


async def test_the_atom_feed_has_the_public_posts_and_escapes_what_they_say(client, pool, settings, maker):
    publisher = build_publisher(settings)
    await commands.create_post(pool, publisher, "potter", f"{SCRIPT} 그리고 <b>굵게</b> & 끝", article=True,
                               title=f"제목 {SCRIPT}")
    await commands.create_post(pool, publisher, "potter", "공개 짧은 글")
    await commands.create_post(pool, publisher, "potter", "팔로워 전용", visibility="private")
    response = await client.get("/@potter.atom")
    assert response.status == 200 and response.content_type == "application/atom+xml"
    feed = ET.fromstring(await response.read())
    assert feed.tag == f"{ATOM}feed" and feed.find(f"{ATOM}title").text == "도예 공방"
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == f"{settings.base_url}/@potter.atom"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["공개 짧은 글", f"제목 {SCRIPT}"]
    content = entries[1].find(f"{ATOM}content")
    # The post was plain text: its markup-looking words stay text in the entry's HTML.
    assert content.get("type") == "html" and "&lt;b&gt;굵게&lt;/b&gt; &amp; 끝" in content.text
    assert "<script" not in content.text
    assert (await client.get("/@nobody.atom")).status == 404


async def test_script_in_titles_and_descriptions_renders_as_text(client, pool, settings, maker):
    publisher = build_publisher(settings)
    uri = await commands.create_post(pool, publisher, "potter", f"본문 {SCRIPT}", article=True, title=SCRIPT,
                                     summary=SCRIPT)
    listing = await actions.create_product(pool, publisher, "potter", ProductDraft(
        title=f"컵 {SCRIPT}", price=1_000, description=f"설명 {SCRIPT}<img src=x onerror=alert(2)>"))
    for path in (uri.removeprefix(settings.base_url), "/@potter/blog", "/@potter/shop", f"/listings/{listing.id}",
                 "/", "/@potter"):
        html = await page(client, path)
        assert "<script" not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in await page(client, uri.removeprefix(settings.base_url))


async def test_the_language_switch_is_remembered_over_the_browser_language(client, pool, settings, maker):
    korean = await page(client, "/@potter")
    assert 'href="/@potter?lang=en"' in korean and "팔로워" in korean
    switched = await client.get("/@potter?lang=en", headers={**HTML, "Accept-Language": "ko"})
    assert '<html lang="en">' in await switched.text()
    cookie = switched.cookies["lang"]
    assert cookie.value == "en" and cookie["httponly"] and cookie["samesite"] == "Lax"
    later = await page(client, "/@potter/blog", **{"Accept-Language": "ko"})  # the client keeps the cookie
    assert '<html lang="en">' in later and "Blog" in later
    assert "Cookie" in switched.headers["Vary"]


async def test_a_deleted_or_unknown_account_has_no_tabs(client, pool, settings, maker):
    for path in ("/@nobody", "/@nobody/blog", "/@nobody/shop"):
        await page(client, path, status=404)


async def test_discover_lists_products_and_posts_of_the_whole_network_newest_first(client, pool, settings, maker):
    from activities.listing import parse_listing
    from activities.parse import parse_post
    from fedserver.repo import interactions
    from storefront import store
    from tests.api.status_support import remote_actor

    publisher = build_publisher(settings)
    await actions.create_product(pool, publisher, "potter", ProductDraft(title="우리 찻잔", price=20_000, stock=3))
    await commands.create_post(pool, publisher, "potter", "우리 공방 소식")
    carol = await remote_actor(pool, "carol", "weave.example")
    note = {"id": "https://weave.example/notes/1", "type": "Note", "attributedTo": "https://weave.example/users/carol",
            "content": f"<p>직조 수업 모집 {SCRIPT}</p>", "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "published": "2030-01-01T10:00:00Z"}
    listing_doc = {**note, "id": "https://weave.example/listings/7", "content": "<p>손으로 짠 목도리</p>",
                   "name": f"목도리 {SCRIPT}", "purpose": "offer",
                   "publishes": {"type": "Intent", "action": "deliver", "resourceQuantity": {"hasUnit": "one",
                                                                                          "hasNumericalValue": "1"}},
                   "reciprocal": {"type": "Intent", "action": "transfer",
                                  "resourceConformsTo": "https://www.wikidata.org/wiki/Q202040",
                                  "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "45000"}}}
    async with pool.acquire() as conn:
        await interactions.insert_remote_post(conn, parse_post(note), carol)
        await interactions.insert_remote_post(conn, parse_post(listing_doc), carol)
        parsed = parse_listing(listing_doc)
        assert parsed is not None and parsed.price == 45_000
        object_id = await conn.fetchval("SELECT id FROM objects WHERE uri = $1", listing_doc["id"])
        await store.upsert_remote_listing(conn, object_id, carol, parsed)
    html = await page(client, "/discover")
    assert "우리 찻잔" in html and "우리 공방 소식" in html and "직조 수업 모집" in html
    assert "<script" not in html and "@carol@weave.example" in html  # a remote title and post stay text
    assert html.index("직조 수업 모집") < html.index("우리 공방 소식")  # newest first (2030 is later)
    assert 'href="#why"' in html and 'id="why"' in html
    assert "목도리" in html and "₩45,000" in html and 'href="https://weave.example/listings/7"' in html
    assert "손으로 짠 목도리" not in html  # the listing's Note is a product here, not a post


async def test_the_transparency_page_shows_the_log_and_its_witnesses(client, pool, settings, maker):
    html = await page(client, "/rewards")
    assert "보상 투명성" in html and "/rewards/log/checkpoint" in html
    tags = meta(html)
    assert tags["og:url"] == f"{settings.base_url}/rewards"


async def test_a_visitor_is_served_the_page_of_the_last_seconds_and_a_logged_in_maker_a_fresh_one(
        client, pool, settings, maker):
    from aiohttp.test_utils import TestClient, TestServer

    from fedserver.app import create_app
    from fedserver.auth import SITE_AREA, start_session

    publisher = build_publisher(settings)
    await commands.create_post(pool, publisher, "potter", "첫 번째 글")
    assert "첫 번째 글" in await page(client, "/@potter")
    await pool.execute("UPDATE actors SET display_name = '바뀐 이름' WHERE username = 'potter'")
    cached = await page(client, "/@potter")
    assert "도예 공방" in cached and "바뀐 이름" not in cached  # within page_cache_seconds: the same page
    english = await page(client, "/@potter", **{"Accept-Language": "en"})
    assert "바뀐 이름" in english  # another language is another page
    token = await start_session(pool, SITE_AREA, maker.id)
    client.session.cookie_jar.update_cookies({SITE_AREA.cookie: token})
    assert "바뀐 이름" in await page(client, "/@potter")  # the maker sees her change at once
    client.session.cookie_jar.clear()
    server = settings.server.model_copy(update={"page_cache_seconds": 0})
    async with TestClient(TestServer(create_app(settings.model_copy(update={"server": server}), pool),
                                     host="127.0.0.1")) as uncached:
        assert "바뀐 이름" in await page(uncached, "/@potter")
    json = await client.get("/@potter", headers={"Accept": "application/activity+json"}, allow_redirects=False)
    assert json.status == 302  # ActivityPub clients are never served a cached page


async def test_the_dashboard_shows_points_pending_and_what_earned_them(client, pool, settings, maker):
    from fedserver.auth import SITE_AREA, start_session
    from tests.support.rewards import FakeMember, context, pin, publish_now

    peer = FakeMember.create("peer.test")
    await pin(pool, peer)
    ctx = await context(pool, settings)
    post = f"{maker.uri}/statuses/1"
    await pool.execute("INSERT INTO objects (uri, object_type, actor_id, is_local, content) "
                       "VALUES ($1, 'Note', $2, true, 'hi')", post, maker.id)
    signed = peer.sign(peer.receipt(obj=post, beneficiary=maker.uri))
    answer = await client.post("/rewards/receipts", data=signed, headers={"Content-Type": "text/plain"})
    assert answer.status == 200, await answer.text()
    client.session.cookie_jar.update_cookies({SITE_AREA.cookie: await start_session(pool, SITE_AREA, maker.id)})
    waiting = await (await client.get("/dashboard", headers={**HTML, "Accept-Language": "en"})).text()
    assert "Points <strong>0</strong>" in waiting and "more waiting for the next witnessed checkpoint" in waiting
    assert "What earned your points" in waiting and f'href="{post}"' in waiting and "peer.test" in waiting
    await publish_now(pool, ctx)
    published = await (await client.get("/dashboard", headers={**HTML, "Accept-Language": "en"})).text()
    points = await pool.fetchval("SELECT points FROM rewards_receipts")
    assert "waiting for the next" not in published and "Tokens <strong>0</strong>" in published
    # Published, the points are in the settlement window (7 days by default): not yet settled points.
    assert "Points <strong>0</strong>" in published
    assert f"{points} points settle when the settlement window ends" in published


async def test_the_profile_and_dashboard_show_the_tokens_minted_from_settled_points(pool, settings, maker):
    """Points settle, a mint turns them into tokens in the log, and the pages show the balance /rewards/balance
    serves: tokens, and the settled points left over."""
    import time

    from aiohttp.test_utils import TestClient, TestServer

    from fedserver.app import create_app
    from fedserver.auth import SITE_AREA, start_session
    from rewards.minting import mint_if_due
    from tests.support.rewards import FakeMember, context, pin, publish_now

    rewards = settings.rewards.model_copy(update={"settlement_seconds": 1, "points_per_token": 2, "mint_threshold": 2})
    server = settings.server.model_copy(update={"page_cache_seconds": 0})
    quick = settings.model_copy(update={"rewards": rewards, "server": server})
    peer = FakeMember.create("peer.test")
    await pin(pool, peer)
    ctx = await context(pool, quick)
    post = f"{maker.uri}/statuses/1"
    await pool.execute("INSERT INTO objects (uri, object_type, actor_id, is_local, content) "
                       "VALUES ($1, 'Note', $2, true, 'hi')", post, maker.id)
    async with TestClient(TestServer(create_app(quick, pool), host="127.0.0.1")) as client:
        for kind, points in (("reply", 3), ("announce", 2)):  # 5 points, settled: 2 tokens for 4, 1 point left
            signed = peer.sign(peer.receipt(obj=post, beneficiary=maker.uri, kind=kind, points=points,
                                            when=int(time.time()) - 5))
            answer = await client.post("/rewards/receipts", data=signed, headers={"Content-Type": "text/plain"})
            assert answer.status == 200, await answer.text()
        await publish_now(pool, ctx)
        async with pool.acquire() as conn:
            minted = await mint_if_due(conn, ctx, maker.uri)
        assert minted is not None and (minted.tokens, minted.points) == (2, 4)
        await publish_now(pool, ctx)
        served = await (await client.get("/rewards/balance/potter")).json()
        assert (served["tokens"], served["points"], served["pending"]) == (2, 1, 0)
        profile = await page(client, "/@potter", **{"Accept-Language": "en"})
        assert "<li>Tokens 2</li>" in profile and "<li>Points 1</li>" in profile
        client.session.cookie_jar.update_cookies({SITE_AREA.cookie: await start_session(pool, SITE_AREA, maker.id)})
        dashboard = await page(client, "/dashboard", **{"Accept-Language": "en"})
        assert "Tokens <strong>2</strong>" in dashboard and "Points <strong>1</strong>" in dashboard
