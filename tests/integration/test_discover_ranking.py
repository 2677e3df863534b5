"""`/discover` in the open ranking's order: two live instances whose receipts lift an older post and an older
product above newer ones, with the formula and the checkpoints it was computed at shown on the page."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from tests.support.instance import Instance, running_instances

pytestmark = pytest.mark.slow

FAST = {"FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3", "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1",
        "FEDSERVER_SERVER__PAGE_CACHE_SECONDS": "0", "FEDSERVER_LOGGING__LEVEL": "warning"}


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}\n{x.log()}"
    return result.stdout.strip().splitlines()[-1]


def _get(url: str, accept: str = "text/html") -> str:
    request = urllib.request.Request(url, headers={"Accept": accept, "Accept-Language": "ko"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


async def test_discover_puts_what_the_witnessed_logs_rank_first_and_says_how(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "ab", FAST) as (a, b):
        for x, y in ((a, b), (b, a)):
            await _run(x, "rewards", "peer", "add", y.base_url)
        await _run(a, "account", "create", "potter")
        await _run(b, "account", "create", "fan")
        older_post = await _run(a, "post", "potter", "가마 첫 불 (오래된 글)")
        older_product = await _run(a, "product", "create", "potter", "--title", "오래된 찻잔", "--price", "20000")
        await _run(a, "post", "potter", "새 소식 (최근 글)")
        await _run(a, "product", "create", "potter", "--title", "새 접시", "--price", "30000")
        before = await asyncio.to_thread(_get, f"{a.base_url}/discover")
        assert before.index("새 소식 (최근 글)") < before.index("가마 첫 불 (오래된 글)")  # no receipts: newest first
        assert "최신순입니다." in before

        # A fan on the other instance likes and shares the older ones: receipts in both logs.
        for verb in ("like", "announce"):
            await _run(b, verb, "fan", older_post)
            await _run(b, verb, "fan", older_product)
        deadline = time.monotonic() + 60
        while True:
            ranked = json.loads(await asyncio.to_thread(
                _get, f"{a.base_url}/rewards/ranking?kind=posts&window=7d", "application/json"))
            if [e["object"] for e in ranked["ranking"]] == [older_post] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert [e["object"] for e in ranked["ranking"]] == [older_post], ranked

        html = await asyncio.to_thread(_get, f"{a.base_url}/discover")
        assert "공개 순위의 순서대로" in html
        assert html.index("가마 첫 불 (오래된 글)") < html.index("새 소식 (최근 글)")
        assert html.index("오래된 찻잔") < html.index("새 접시")
        assert html.count("가마 첫 불 (오래된 글)") == 1  # a ranked post is not listed again among the newest
        # The page names the formula and every checkpoint it used, and links the JSON it came from.
        assert f"{ranked['formula']['name']}" in html and "/rewards/ranking?kind=posts&amp;window=7d" in html
        for log in ranked["logs"]:
            assert f"<code>{log['origin']}</code>" in html
        assert "/listings/" in older_product
