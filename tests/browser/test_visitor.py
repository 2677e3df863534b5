"""A visitor reads a workshop's pages in a real Chromium (Playwright), on a phone and on a desktop.

A live `fedserver run` process serves a profile, an article and a listing with an image; the
browser must load every page and every resource without a console error or a failed request,
with JavaScript off (the pages need none) and at 360 px with no text wider than the screen.
Screenshots go to the test's directory, and to `FEDSERVER_SCREENSHOTS` (the README's images)
when that is set.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.support.instance import Instance, free_port, instance_env

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("FEDSERVER_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
async def browser():
    """Debian's Chromium driven by Playwright (its own browser download is not needed)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium fonts-noto-cjk (.ci/run does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        await browser.close()


@pytest.fixture
async def workshop(pg_cluster, tmp_path):
    """A running instance with a maker, a short post, an article and a listing with a photo."""
    url = await pg_cluster.create_database()
    port = free_port()
    instance = Instance(port=port, env=instance_env(database_url=url, data_dir=tmp_path / "data", port=port),
                        cwd=tmp_path, log_path=tmp_path / "server.log")
    instance.start()
    try:
        def run(*args: str) -> str:
            result = instance.command(*args)
            assert result.returncode == 0, result.stderr
            return result.stdout.strip().splitlines()[-1]

        run("account", "create", "potter", "--display-name", "달빛 도예 공방")
        run("account", "update", "potter", "--summary", "경기도 이천에서 20년째 백자와 청자를 빚습니다. 주문 제작 환영합니다.")
        run("post", "potter", "오늘 가마를 열었습니다. 달항아리 세 점이 잘 나왔어요! #도예")
        article = run("post", "potter", "1250도에서 열두 시간을 구웠습니다. 유약이 고르게 녹아 맑은 비색이 나왔습니다.",
                      "--article", "--title", "청자 가마 온도 기록", "--summary", "소성 온도와 시간을 기록합니다")
        photo = tmp_path / "jar.png"
        image = Image.new("RGB", (480, 480), (236, 232, 222))
        image.paste((196, 170, 120), (140, 100, 340, 380))
        out = io.BytesIO()
        image.save(out, "PNG")
        photo.write_bytes(out.getvalue())
        listing = run("product", "create", "potter", "--title", "백자 달항아리 (소)", "--price", "38000", "--stock", "3",
                      "--shipping", "4000", "--free-shipping-over", "100000", "--image", str(photo),
                      "--description", "손으로 빚고 장작 가마에서 구운 백자 달항아리입니다. 높이 약 20cm.")
        yield instance, {"profile": "/@potter", "article": article.removeprefix(instance.base_url),
                         "listing": listing.removeprefix(instance.base_url), "shop": "/@potter/shop",
                         "blog": "/@potter/blog", "home": "/", "discover": "/discover"}
    finally:
        instance.terminate()
        await pg_cluster.drop_database(url)


async def visit(browser, base_url: str, path: str, viewport: dict, shot: Path) -> dict:
    """Open one page with JavaScript off; return what the browser saw, failing on any error."""
    context = await browser.new_context(viewport=viewport, java_script_enabled=False, locale="ko-KR")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400 else None)
    response = await page.goto(base_url + path, wait_until="load")
    assert response is not None and response.status == 200, path
    # Playwright's own evaluation still runs with the page's JavaScript off.
    seen = {
        "title": await page.title(),
        "h1": await page.locator("h1").first.inner_text(),
        "overflow": await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
        "broken_images": await page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"),
        "images_without_alt": await page.evaluate("[...document.images].filter(i => !i.hasAttribute('alt')).length"),
    }
    await page.screenshot(path=str(shot), full_page=True)
    await context.close()
    assert problems == [], (path, problems)
    return seen


async def test_a_visitor_reads_a_profile_an_article_and_a_listing_on_a_phone_and_a_desktop(browser, workshop,
                                                                                          tmp_path):
    instance, paths = workshop
    keep = os.environ.get("FEDSERVER_SCREENSHOTS")
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        for what in ("home", "profile", "blog", "article", "shop", "listing", "discover"):
            shot = tmp_path / f"{what}-{name}.png"
            seen = await visit(browser, instance.base_url, paths[what], viewport, shot)
            assert seen["overflow"] <= 0, (what, name, seen["overflow"])
            assert seen["broken_images"] == [] and seen["images_without_alt"] == 0, (what, seen)
            assert seen["title"] and seen["h1"], (what, seen)
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(keep) / shot.name)
    article = await visit(browser, instance.base_url, paths["article"], PHONE, tmp_path / "article.png")
    assert article["h1"] == "청자 가마 온도 기록" and article["title"] == "청자 가마 온도 기록"
    listing = await visit(browser, instance.base_url, paths["listing"], PHONE, tmp_path / "listing.png")
    assert listing["title"] == "백자 달항아리 (소) · 달빛 도예 공방"
