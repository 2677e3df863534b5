"""Mastodon's id-cursor pagination: `max_id`/`since_id`/`min_id`/`limit` in, a `Link` header out. Pure.

`next` (older: `max_id` = the last id of the page) comes first, as Mastodon writes it, because
toot's legacy reader only finds `rel="next"` at the start of the header. `prev` (newer:
`min_id` = the first id of the page) is only sent for a non-empty page, so a client never
loops on the same page (takahe#361).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import urlencode

from .wire import parse_id

CURSORS = ("max_id", "since_id", "min_id")


@dataclass(frozen=True)
class Page:
    """What a list endpoint was asked for. Ids are exclusive bounds; `min_id` pages forward from the cursor."""

    limit: int
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None

    @property
    def ascending(self) -> bool:
        """True when the query must walk up from `min_id` (then reverse the rows for display)."""
        return self.min_id is not None


def parse_page(query: Mapping[str, str], *, default: int = 20, maximum: int = 40) -> Page:
    """Read the cursors (400 for a non-numeric one) and clamp `limit` to 1..maximum."""
    raw = query.get("limit", "")
    try:
        limit = int(raw) if raw != "" else default
    except ValueError:
        limit = default
    limit = max(1, min(limit, maximum))
    return Page(limit=limit, **{name: parse_id(query.get(name), name) for name in CURSORS})


def link_header(base_url: str, path: str, query: Mapping[str, str], ids: Sequence[int], limit: int) -> str | None:
    """The `Link` value for a page whose items have `ids` (newest first); None for an empty page."""
    if not ids:
        return None
    kept = [(k, v) for k, v in _pairs(query) if k not in CURSORS and k != "limit"]
    links = []
    if len(ids) >= limit:
        links.append(f'<{_url(base_url, path, kept, limit, "max_id", min(ids))}>; rel="next"')
    links.append(f'<{_url(base_url, path, kept, limit, "min_id", max(ids))}>; rel="prev"')
    return ", ".join(links)


def _pairs(query: Mapping[str, str]) -> list[tuple[str, str]]:
    items = getattr(query, "items", None)
    return list(items()) if items else []


def _url(base_url: str, path: str, kept: list[tuple[str, str]], limit: int, cursor: str, value: int) -> str:
    return f"{base_url}{path}?{urlencode([*kept, ('limit', str(limit)), (cursor, str(value))])}"
