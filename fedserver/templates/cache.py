"""A few seconds of memory for public pages: what a visitor without a session was shown is shown again.

A link to a listing pasted into a busy group chat brings hundreds of readers within seconds;
each rendering costs a few milliseconds of the one small machine's CPU and a few database
round trips. For `[server] page_cache_seconds` (default 5) a public page rendered for a
visitor (no site session) is kept, per path and query and per language, and served as is.

Only complete `200 text/html` answers to browsers are kept, never one that sets a cookie or
says `private`/`no-store`; a logged-in person (whose pages carry forms with their CSRF token)
always gets a fresh page. At most `MAX_ENTRIES` pages are kept, the least recently used
dropped first; each process keeps its own.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ..app_keys import SETTINGS, VIEWER
from .negotiation import pick_language, prefers_html

MAX_ENTRIES = 512
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _Page:
    body: bytes
    headers: tuple[tuple[str, str], ...]
    expires: float

    def response(self) -> web.Response:
        return web.Response(body=self.body, headers=self.headers)


class PageCache:
    """Rendered pages by (path and query, language), each until it expires.

    One rendering per page at a time: readers arriving while a page is rendered wait for that
    rendering, and once a kept page expires, the first reader renders it again while the others
    are still served the expired copy (for at most `STALE_SECONDS` more), so a popular page never
    sends a crowd of renderings to the database at once.
    """

    STALE_SECONDS = 30.0

    def __init__(self, seconds: float, max_entries: int = MAX_ENTRIES):
        self.seconds = seconds
        self.max_entries = max_entries
        self._pages: OrderedDict[tuple[str, str], _Page] = OrderedDict()
        self._rendering: dict[tuple[str, str], asyncio.Future[_Page | None]] = {}

    def _put(self, key: tuple[str, str], response: web.Response) -> _Page:
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() != "content-length")
        page = _Page(response.body, headers, time.monotonic() + self.seconds)  # type: ignore[arg-type]
        self._pages[key] = page
        self._pages.move_to_end(key)
        while len(self._pages) > self.max_entries:
            self._pages.popitem(last=False)
        return page

    async def serve(self, key: tuple[str, str], render: Callable[[], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        """The kept page, or one rendering of it shared by everyone asking meanwhile."""
        now = time.monotonic()
        page = self._pages.get(key)
        if page is not None and page.expires >= now:
            self._pages.move_to_end(key)
            return page.response()
        rendering = self._rendering.get(key)
        if rendering is not None:
            if page is not None and page.expires + self.STALE_SECONDS >= now:
                return page.response()  # being rendered again: the expired copy meanwhile
            shared = await asyncio.shield(rendering)
            if shared is not None:
                return shared.response()
            return await render()  # that rendering was not one to keep (an error, a cookie): render our own
        future: asyncio.Future[_Page | None] = asyncio.get_running_loop().create_future()
        self._rendering[key] = future
        kept: _Page | None = None
        try:
            response = await render()
            if _keepable(response):
                kept = self._put(key, response)  # type: ignore[arg-type]
            elif page is not None:
                del self._pages[key]
            return response
        finally:
            del self._rendering[key]
            future.set_result(kept)


PAGE_CACHE = web.AppKey("fedserver.page_cache", PageCache)


def _keepable(response: web.StreamResponse) -> bool:
    cache_control = response.headers.get("Cache-Control", "")
    return (isinstance(response, web.Response) and response.status == 200 and response.content_type == "text/html"
            and not response.cookies and isinstance(response.body, bytes)
            and "private" not in cache_control and "no-store" not in cache_control)


def cached_page(handler: Handler) -> Handler:
    """Serve a visitor's browser the page rendered for the same URL and language in the last few seconds."""
    @functools.wraps(handler)
    async def served(request: web.Request) -> web.StreamResponse:
        cache = request.config_dict.get(PAGE_CACHE)
        if cache is None or request.get(VIEWER) is not None or not prefers_html(request):
            return await handler(request)
        return await cache.serve((request.path_qs, pick_language(request)), lambda: handler(request))
    return served


def setup_page_cache(app: web.Application) -> None:
    """Keep public pages for `[server] page_cache_seconds` (nothing when 0)."""
    seconds = app[SETTINGS].server.page_cache_seconds
    if seconds > 0:
        app[PAGE_CACHE] = PageCache(seconds)
