"""Server-rendered pages: Jinja2 templates with autoescape, one base layout, Korean and English catalogs.

A shared layer below the features (public pages, the OAuth login page, the admin
pages, the error pages of `fedserver.errors`). It imports only shared and lower
modules, never a feature package.

- `negotiation`: what the client asked for: Korean or English, a page or JSON.
- `formatting`: numbers, money and dates through Babel, dates in `[instance] timezone`.
- `catalogs`: the gettext catalogs; the `.po` files under `locale/` are the source,
  compiled in memory at start-up (no `.mo` file is kept).
- `render`: the Jinja2 environments, the HTML headers every page sends, the stylesheet.
- `cache`: a few seconds of memory for the public pages visitors without a session see.

Templates live in `pages/`, the stylesheet in `static/`. After adding or changing a
text in a template, from the repository root:

    pybabel extract -F fedserver/templates/babel.cfg --no-location -o /tmp/messages.pot fedserver/templates
    pybabel update -i /tmp/messages.pot -d fedserver/templates/locale -w 100 --no-fuzzy-matching

then translate the new Korean entries (the English catalog may leave them empty: the
source texts are English). A test fails while a Korean text is missing.
"""

from __future__ import annotations

from .cache import cached_page
from .negotiation import LANGUAGES, pick_language, prefers_html
from .render import (
    FORM_HEADERS,
    PAGES,
    PUBLIC_HEADERS,
    SITE_FORM_HEADERS,
    Pages,
    error_page,
    render_page,
    see_other,
    setup_pages,
)

__all__ = [
    "FORM_HEADERS",
    "LANGUAGES",
    "PAGES",
    "PUBLIC_HEADERS",
    "SITE_FORM_HEADERS",
    "Pages",
    "cached_page",
    "error_page",
    "pick_language",
    "prefers_html",
    "render_page",
    "see_other",
    "setup_pages",
]
