"""Shared by the status, timeline and notification handlers: who is reading, which page, and the answer
with its `Link` header."""

from __future__ import annotations

from typing import Sequence, TypeVar

from aiohttp import web

from ..app_keys import SETTINGS
from ..errors import HTTPError
from ..repo.status_views import MAX_ID, Window
from .auth import OUTSIDE_SCOPES, current_auth
from .pagination import Page, link_header, parse_page
from .scopes import grants
from .wire import id_or_none

NOT_FOUND = "Record not found"
T = TypeVar("T")


def optional_viewer(request: web.Request, *scopes: str) -> int | None:
    """The signed-in account, if a token was sent (403 when it lacks `scopes`); None for anonymous readers."""
    caller = current_auth(request)
    if caller is None:
        return None
    if not grants(caller.scopes, scopes):
        raise HTTPError(403, OUTSIDE_SCOPES)
    return caller.account_id


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path; 404 (as for a missing record) when it cannot name anything."""
    value = id_or_none(request.match_info[name])
    if not value:
        raise HTTPError(404, NOT_FOUND)
    return value


def page_of(request: web.Request, *, default: int = 20, maximum: int = 40) -> Page:
    """The cursors and limit of a list request."""
    return parse_page(request.query, default=default, maximum=maximum)


def window(page: Page) -> Window:
    """The repository form of a page: exclusive bounds, and ascending when paging forward from `min_id`."""
    lower = max(page.since_id or 0, page.min_id or 0)
    return Window(lower=lower, upper=page.max_id or MAX_ID, limit=page.limit, ascending=page.min_id is not None)


def newest_first(items: Sequence[T], page: Page) -> list[T]:
    """Rows read upwards from `min_id` come back oldest first; lists are shown newest first."""
    return list(reversed(items)) if page.ascending else list(items)


def page_response(request: web.Request, body: list, cursors: list[int], page: Page) -> web.Response:
    """A JSON list with the `Link` header for its cursors (`next` first)."""
    settings = request.config_dict[SETTINGS]
    link = link_header(settings.base_url, request.path, request.query, cursors, page.limit)
    return web.json_response(body, headers={"Link": link} if link else None)
