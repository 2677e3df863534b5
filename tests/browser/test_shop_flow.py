"""Buying and running a shop in a real Chromium (Playwright, JavaScript off) against live instances.

A buyer logs in and orders from a listing page; the maker logs in, finds the order on the
dashboard, accepts it and marks it shipped; the buyer sees the new state on /orders. The maker
writes an article and lists a product with a photo from the dashboard; both appear on the
public pages and reach a follower on a second instance. A form posted from another site
changes nothing. Any console error or failed request fails the test.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from tests.browser.test_visitor import DESKTOP, PHONE, browser  # noqa: F401 (the fixture)
from tests.support.instance import Instance, fetchval, free_port, running_instances

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
FAST = {"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.001"}


async def _run(x: Instance, *args: str, stdin: str | None = None) -> str:
    result = await asyncio.to_thread(x.command, *args, stdin=stdin)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


async def _until(what: str, check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def pair(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "ab", FAST) as instances:
        yield instances


class Browser:
    """One person's browser: its own cookies, JavaScript off, every error collected."""

    def __init__(self, context, base_url: str):
        self.context, self.base_url, self.problems = context, base_url, []

    @classmethod
    async def open(cls, browser, base_url: str) -> Browser:  # noqa: F811
        context = await browser.new_context(viewport=PHONE, java_script_enabled=False, locale="ko-KR")
        person = cls(context, base_url)
        person.page = await context.new_page()
        person.page.on("console", lambda m: person.problems.append(f"console {m.type}: {m.text}")
                       if m.type == "error" else None)
        # A request the next navigation cancelled (the icon of a page left at once) is not a failure.
        person.page.on("requestfailed", lambda r: person.problems.append(f"failed: {r.url} {r.failure}")
                       if "ERR_ABORTED" not in (r.failure or "") else None)
        person.page.on("response", lambda r: person.problems.append(f"HTTP {r.status}: {r.url}")
                       if r.status >= 400 else None)
        return person

    async def go(self, path: str) -> None:
        response = await self.page.goto(self.base_url + path)
        assert response is not None and response.status == 200, (path, response and response.status)

    async def log_in(self, name: str) -> None:
        await self.go("/login")
        await self.page.fill("#username", name)
        await self.page.fill("#password", PASSWORD)
        await self.page.click("form[action='/login'] button[type=submit]")
        assert "/login" not in self.page.url, await self.page.content()

    async def text(self) -> str:
        return await self.page.inner_text("main")

    async def check_layout(self) -> None:
        """Nothing wider than the screen, every image loaded."""
        assert await self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, self.page.url
        assert await self.page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")

    async def shot(self, name: str, viewports=(PHONE,)) -> None:
        """Screenshots of the page for the README when FEDSERVER_SCREENSHOTS names a directory."""
        keep = os.environ.get("FEDSERVER_SCREENSHOTS")
        if not keep:
            return
        for viewport, label in zip(viewports, ("phone", "desktop")):
            await self.page.set_viewport_size(viewport)
            await self.page.screenshot(path=str(Path(keep) / f"{name}-{label}.png"), full_page=True)
        await self.page.set_viewport_size(PHONE)


async def test_a_buyer_orders_and_the_maker_accepts_and_ships_from_the_dashboard(browser, pair):  # noqa: F811
    a, _ = pair
    await _run(a, "account", "create", "potter", "--display-name", "달빛 도예 공방", "--password-stdin", stdin=PASSWORD)
    await _run(a, "account", "create", "buyer", "--display-name", "김민지", "--password-stdin", stdin=PASSWORD)
    listing = await _run(a, "product", "create", "potter", "--title", "청자 찻잔", "--price", "38000", "--stock", "3",
                         "--shipping", "3000", "--no-auto-accept")
    path = listing.removeprefix(a.base_url)

    buyer = await Browser.open(browser, a.base_url)
    await buyer.log_in("buyer")
    await buyer.go(path)
    await buyer.page.fill("#quantity", "2")
    await buyer.page.fill("#message", "선물 포장 부탁드립니다")
    await buyer.page.click("form.order button[type=submit]")
    assert buyer.page.url.startswith(f"{a.base_url}/orders")
    orders = await buyer.text()
    assert "청자 찻잔 × 2" in orders and "₩79,000" in orders and "주문 접수" in orders

    maker = await Browser.open(browser, a.base_url)
    await maker.log_in("potter")
    await maker.go("/dashboard")
    assert "김민지" in await maker.text() and "선물 포장 부탁드립니다" in await maker.text()
    await maker.check_layout()
    await maker.page.click("button[name=action][value=accept]")
    assert "수락됨: 입금 대기" in await maker.text()
    await maker.shot("dashboard", (PHONE, DESKTOP))
    await maker.page.click("button[name=action][value=mark-paid]")
    await maker.page.click("button[name=action][value=mark-shipped]")
    assert "발송됨" in await maker.text()

    await buyer.go("/orders")
    assert "발송됨" in await buyer.text()
    await buyer.check_layout()
    assert await fetchval(a, "SELECT state FROM orders") == "shipped"
    assert await fetchval(a, "SELECT stock FROM listings") == 1
    # Each move was told to the buyer as a direct message, in the Mastodon notifications.
    assert await fetchval(a, """SELECT count(*) FROM notifications n JOIN actors x ON x.id = n.account_id
                            WHERE x.username = 'buyer' AND n.type = 'mention'""") >= 3
    assert buyer.problems == [] and maker.problems == []


async def test_the_maker_writes_and_lists_from_the_dashboard_and_a_follower_elsewhere_receives_both(
        browser, pair, tmp_path):  # noqa: F811
    a, b = pair
    await _run(a, "account", "create", "potter", "--display-name", "달빛 도예 공방", "--password-stdin", stdin=PASSWORD)
    await _run(b, "account", "create", "reader")
    await _run(b, "follow", "reader", f"{a.base_url}/users/potter")
    await _until("the follow", lambda: fetchval(b, "SELECT state = 'accepted' FROM follows"))

    photo = tmp_path / "bowl.png"
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (120, 160, 150)).save(out, "PNG")
    photo.write_bytes(out.getvalue())

    maker = await Browser.open(browser, a.base_url)
    await maker.log_in("potter")
    await maker.go("/dashboard")
    await maker.page.fill("#post-title", "청자 유약 이야기")
    await maker.page.fill("#post-text", "비색을 내는 유약은 철분이 1~3% 들어갑니다.")
    await maker.page.set_input_files("#post-image", str(photo))
    await maker.page.fill("#post-image-description", "청자 유약 시편")
    await maker.page.click("form[action='/dashboard/post'] button[type=submit]")
    assert "청자 유약 이야기" == await maker.page.inner_text("h1")
    article_url = maker.page.url

    await maker.go("/dashboard")
    await maker.page.fill("#product-title", "청자 사발")
    await maker.page.fill("#product-price", "45000")
    await maker.page.fill("#product-stock", "2")
    await maker.page.fill("#product-description", "밥그릇으로 쓰기 좋은 크기입니다.")
    await maker.page.set_input_files("#product-image", str(photo))
    await maker.page.click("form[action='/dashboard/products'] button[type=submit]")
    assert "청자 사발" == await maker.page.inner_text("h1")
    assert await maker.page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    listing_url = maker.page.url

    visitor = await Browser.open(browser, a.base_url)
    await visitor.go("/@potter/blog")
    assert "청자 유약 이야기" in await visitor.text()
    await visitor.go("/@potter/shop")
    assert "청자 사발" in await visitor.text() and "₩45,000" in await visitor.text()

    async def received(uri: str):
        return await fetchval(b, "SELECT count(*) FROM objects WHERE uri = $1", uri)

    await _until("the article on the follower's server", lambda: received(article_url))
    await _until("the listing on the follower's server", lambda: received(listing_url))
    assert await fetchval(b, "SELECT price FROM listings l JOIN objects o ON o.id = l.object_id WHERE o.uri = $1",
                      listing_url) == 45_000
    assert maker.problems == [] and visitor.problems == []


async def test_a_form_posted_from_another_site_changes_nothing(browser, pg_cluster, tmp_path):  # noqa: F811
    async with running_instances(pg_cluster, tmp_path, "a", FAST) as (a,):
        await _cross_site_forms_refused(browser, a)


async def _cross_site_forms_refused(browser, a: Instance) -> None:  # noqa: F811
    await _run(a, "account", "create", "potter", "--password-stdin", stdin=PASSWORD)
    listing = await _run(a, "product", "create", "potter", "--title", "컵", "--price", "1000", "--stock", "5")
    target = a.base_url  # 127.0.0.1; the attacker's page is on localhost, another site
    attack = web.Application()
    forms = f"""<!DOCTYPE html><html lang="en"><head><title>win a prize</title></head><body>
<form id="post" method="post" action="{target}/dashboard/post"><input name="text" value="hacked">
<button id="go-post">post</button></form>
<form id="order" method="post" action="{target}{listing.removeprefix(a.base_url)}/order">
<input name="quantity" value="5"><button id="go-order">order</button></form></body></html>"""

    async def attacker_page(request: web.Request) -> web.Response:
        return web.Response(text=forms, content_type="text/html")

    attack.router.add_get("/", attacker_page)
    runner = web.AppRunner(attack)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    try:
        victim = await Browser.open(browser, a.base_url)
        await victim.log_in("potter")
        statuses: list[int] = []
        victim.page.on("response", lambda r: statuses.append(r.status) if r.request.method == "POST" else None)
        for button in ("#go-post", "#go-order"):
            await victim.page.goto(f"http://localhost:{port}/")
            statuses.clear()
            await victim.page.click(button)
            assert statuses and statuses[0] in (401, 403), (button, statuses)
        assert await fetchval(a, "SELECT count(*) FROM objects WHERE content LIKE '%hacked%'") == 0
        assert await fetchval(a, "SELECT count(*) FROM orders") == 0
    finally:
        await runner.cleanup()


TOKENS = {**FAST, "FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__SETTLEMENT_SECONDS": "2",
          "FEDSERVER_REWARDS__POINTS_PER_TOKEN": "1", "FEDSERVER_REWARDS__MINT_THRESHOLD": "1"}


async def test_a_buyer_pays_with_tokens_on_the_order_form_and_the_order_is_paid_at_once(browser, pg_cluster,  # noqa: F811
                                                                                      tmp_path):
    async with running_instances(pg_cluster, tmp_path, "a", TOKENS) as (a,):
        await _run(a, "account", "create", "potter", "--display-name", "달빛 도예 공방", "--password-stdin",
                   stdin=PASSWORD)
        await _run(a, "account", "create", "buyer", "--display-name", "김민지", "--password-stdin", stdin=PASSWORD)
        post = await _run(a, "post", "buyer", "오늘 산 찻잔이 참 예뻐요")
        buyer_uri = f"{a.base_url}/users/buyer"
        # Between two accounts of one instance, a reply and a share earn too (policy 2): tokens for the buyer.
        await _run(a, "post", "potter", "고맙습니다", "--reply-to", post)
        await _run(a, "announce", "potter", post)

        async def minted():
            return (await fetchval(a, f"SELECT available FROM token_wallets WHERE account_uri = '{buyer_uri}'") or 0) >= 2

        await _until("the buyer's points settle and become tokens", minted, timeout=60)
        held = await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", buyer_uri)
        listing = await _run(a, "product", "create", "potter", "--title", "청자 찻잔", "--price", "38000",
                             "--stock", "3", "--token-price", "2")
        buyer = await Browser.open(browser, a.base_url)
        await buyer.log_in("buyer")
        await buyer.go(listing.removeprefix(a.base_url))
        page = await buyer.text()
        assert "또는 토큰 2개" in page and f"보유 {held}개" in page
        await buyer.page.check("input[name=pay][value=tokens]")
        await buyer.page.click("form.order button[type=submit]")
        assert buyer.page.url.startswith(f"{a.base_url}/orders")
        orders = await buyer.text()
        assert "청자 찻잔 × 1" in orders and "토큰 2개" in orders and "입금 확인" in orders, orders
        await buyer.check_layout()
        assert await fetchval(a, "SELECT available FROM token_wallets WHERE account_uri = $1", buyer_uri) == held - 2
        assert await fetchval(a, "SELECT state FROM orders") == "paid"
        # The maker has nothing to mark paid: the spend paid it. Shipping is next.
        maker = await Browser.open(browser, a.base_url)
        await maker.log_in("potter")
        await maker.go("/dashboard")
        assert await maker.page.locator("button[name=action][value=mark-paid]").count() == 0
        await maker.page.click("button[name=action][value=mark-shipped]")
        assert "발송됨" in await maker.text()
        # With fewer tokens than the price, the choice is there but cannot be taken.
        await fetchval(a, "UPDATE token_wallets SET available = 1 WHERE account_uri = $1", buyer_uri)
        await buyer.go(listing.removeprefix(a.base_url))
        assert await buyer.page.locator("input[name=pay][value=tokens]").is_disabled()
        assert buyer.problems == [] and maker.problems == []
