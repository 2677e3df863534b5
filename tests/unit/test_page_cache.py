"""The page cache: one rendering per page at a time, the expired copy while it is rendered again, nothing kept
that should not be (a cookie, an error, `private`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from fedserver.templates.cache import PageCache


def counted(text: str, renders: list[int], *, delay: float = 0.05, **kwargs):
    async def render() -> web.Response:
        renders.append(1)
        await asyncio.sleep(delay)
        return web.Response(text=f"{text} {len(renders)}", content_type="text/html", **kwargs)
    return render


async def test_readers_arriving_during_a_rendering_share_it():
    cache, renders = PageCache(seconds=60), []
    answers = await asyncio.gather(*(cache.serve(("/@potter", "ko"), counted("page", renders)) for _ in range(20)))
    assert len(renders) == 1 and {a.body for a in answers} == {b"page 1"}
    again = await cache.serve(("/@potter", "ko"), counted("page", renders))
    assert again.body == b"page 1" and len(renders) == 1
    other = await cache.serve(("/@potter", "en"), counted("page", renders))
    assert other.body == b"page 2"  # another language is another page


async def test_an_expired_page_is_served_while_it_is_rendered_again():
    cache, renders = PageCache(seconds=0.01), []
    await cache.serve(("/", "ko"), counted("home", renders))
    await asyncio.sleep(0.02)
    slow = asyncio.create_task(cache.serve(("/", "ko"), counted("home", renders, delay=0.2)))
    await asyncio.sleep(0.01)
    meanwhile = await cache.serve(("/", "ko"), counted("home", renders))
    assert meanwhile.body == b"home 1" and len(renders) == 2  # the old copy, no third rendering
    assert (await slow).body == b"home 2"


async def test_answers_that_must_not_be_shared_are_not_kept():
    cache, renders = PageCache(seconds=60), []
    for kwargs in ({"status": 404}, {"headers": {"Cache-Control": "private, no-store"}}):
        await cache.serve(("/x", "ko"), counted("no", renders, delay=0, **kwargs))
        await cache.serve(("/x", "ko"), counted("no", renders, delay=0, **kwargs))
    assert len(renders) == 4

    async def with_cookie() -> web.Response:
        renders.append(1)
        response = web.Response(text="lang", content_type="text/html")
        response.set_cookie("lang", "en")
        return response
    await cache.serve(("/y", "en"), with_cookie)
    await cache.serve(("/y", "en"), with_cookie)
    assert len(renders) == 6


async def test_a_failed_rendering_lets_the_waiting_readers_render_their_own():
    cache, renders = PageCache(seconds=60), []

    async def broken() -> web.Response:
        renders.append(1)
        await asyncio.sleep(0.02)
        raise web.HTTPNotFound()

    results = await asyncio.gather(*(cache.serve(("/gone", "ko"), broken) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, web.HTTPNotFound) for r in results) and len(renders) == 3
