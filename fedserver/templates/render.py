"""Rendering pages: one Jinja2 environment per language, the headers every page sends, the stylesheet.

Autoescape is on for every `.html` template: a value from the database or the request
is text, never markup. HTML we stored ourselves (a bio, a post) goes through
`|stored_html`, which sanitizes it again to the allow-list of `activities.sanitize`.
"""

from __future__ import annotations

import functools
import hashlib
from http import HTTPStatus
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from activities.sanitize import html_to_text, sanitize_html

from ..app_keys import SETTINGS, VIEWER
from .cache import setup_page_cache
from .catalogs import load_translations
from .formatting import format_datetime, format_money, format_number
from .negotiation import LANGUAGE_COOKIE, LANGUAGE_NAMES, LANGUAGES, chosen_language, pick_language

STYLESHEET_PATH = "/static/site.css"
ICON_PATH = "/static/icon.svg"
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # No script source at all, so inline scripts stay forbidden; styles only from our stylesheet; images
    # from our media and from other servers over https (remote avatars and listing photos). No form-action
    # here: the OAuth form's answer redirects to the app, which form-action would block.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' https:; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
# Public pages (profile, posts, errors) vary with the representation and the language (header or switch).
PUBLIC_HEADERS = {**_SECURITY_HEADERS, "Vary": "Accept, Accept-Language, Cookie"}
# Pages with a form or a session: never cached.
FORM_HEADERS = {**_SECURITY_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Language, Cookie"}
# Pages whose forms post to this site only (the logins, the dashboard, the admin pages; not the OAuth
# consent page, whose answer redirects to the app).
SITE_FORM_HEADERS = {**FORM_HEADERS,
                     "Content-Security-Policy": FORM_HEADERS["Content-Security-Policy"] + "; form-action 'self'"}


def see_other(location: str) -> web.Response:
    """After a form: on to `location` with a GET (303)."""
    return web.Response(status=303, headers={**SITE_FORM_HEADERS, "Location": location})


def stored_html(html: str) -> Markup:
    """HTML we stored (bios, posts), sanitized again before it is shown."""
    return Markup(sanitize_html(html, max_chars=None))


def excerpt(html: str, length: int = 160) -> str:
    """The plain text of stored HTML on one line, cut to `length` characters (a meta description, a preview)."""
    text = " ".join(html_to_text(html or "", max_chars=None).split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


class Pages:
    """The templates, compiled for each language, and the stylesheet of one time zone."""

    def __init__(self, timezone: str):
        self.stylesheet = resources.files(__package__).joinpath("static", "site.css").read_bytes()
        self.stylesheet_version = hashlib.sha256(self.stylesheet).hexdigest()[:12]
        self.icon = resources.files(__package__).joinpath("static", "icon.svg").read_bytes()
        zone = ZoneInfo(timezone)
        self._environments = {lang: self._environment(lang, zone) for lang in LANGUAGES}

    def _environment(self, lang: str, zone: ZoneInfo) -> Environment:
        env = Environment(loader=PackageLoader(__package__, "pages"), autoescape=select_autoescape(("html",)),
                          undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                          lstrip_blocks=True, auto_reload=False)
        env.policies["ext.i18n.trimmed"] = True
        env.install_gettext_translations(load_translations(lang), newstyle=True)  # type: ignore[attr-defined]
        env.filters.update(number=functools.partial(format_number, lang=lang),
                           money=functools.partial(format_money, lang=lang),
                           datetime=functools.partial(format_datetime, lang=lang, zone=zone),
                           stored_html=stored_html, excerpt=excerpt)
        env.globals.update(lang=lang, language_names=LANGUAGE_NAMES,
                           stylesheet_url=f"{STYLESHEET_PATH}?v={self.stylesheet_version}", icon_url=ICON_PATH)
        return env

    def render(self, lang: str, template: str, **context: Any) -> str:
        """A template rendered in a language (without a request: no language switch, the default site name)."""
        context.setdefault("site_name", "fedserver")
        context.setdefault("language_links", {})
        context.setdefault("viewer", None)
        context.setdefault("signups_open", False)
        return self._environments[lang].get_template(template).render(**context)


@functools.cache
def _pages(timezone: str) -> Pages:
    return Pages(timezone)


PAGES = web.AppKey("fedserver.pages", Pages)


def setup_pages(app: web.Application) -> None:
    """Compile the catalogs and templates for the app's settings; serve the stylesheet."""
    app[PAGES] = _pages(app[SETTINGS].instance.timezone)
    setup_page_cache(app)
    app.router.add_get(STYLESHEET_PATH, stylesheet_get)
    app.router.add_get(ICON_PATH, icon_get)
    app.router.add_get("/favicon.ico", icon_get)  # browsers ask for it even on pages that name the icon


async def icon_get(request: web.Request) -> web.Response:
    """The site icon (SVG, which every current browser takes as a favicon)."""
    return web.Response(body=request.config_dict[PAGES].icon, content_type="image/svg+xml", headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


async def stylesheet_get(request: web.Request) -> web.Response:
    """The stylesheet; immutable under its versioned URL, since a new version gets a new URL."""
    pages = request.config_dict[PAGES]
    current = request.query.get("v") == pages.stylesheet_version
    return web.Response(body=pages.stylesheet, content_type="text/css", charset="utf-8", headers={
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
    })


def language_links(request: web.Request) -> dict[str, str]:
    """This page's URL in each language (the switch): the same path and query with `lang` set."""
    return {lang: str(request.rel_url.update_query(lang=lang)) for lang in LANGUAGES}


def render_page(request: web.Request, template: str, *, status: int = 200,
                headers: dict[str, str] = PUBLIC_HEADERS, lang: str | None = None, **context: Any) -> web.Response:
    """A page as a response, in `lang` or the reader's language, with the HTML security headers.

    Every page knows the instance (`site_name`, `base_url`) and its own URL in each language; a
    language picked with the switch (`?lang=`) is remembered in a cookie for the next pages.
    """
    settings = request.config_dict[SETTINGS]
    context.setdefault("site_name", settings.instance.name)
    context.setdefault("viewer", request.get(VIEWER))
    context.setdefault("signups_open", settings.instance.registrations != "closed")
    context.setdefault("base_url", settings.base_url)
    html = request.config_dict[PAGES].render(lang or pick_language(request), template,
                                             language_links=language_links(request), **context)
    response = web.Response(text=html, status=status, content_type="text/html", headers=headers)
    switched = request.query.get("lang")
    if switched in LANGUAGES and switched == chosen_language(request) and request.cookies.get(LANGUAGE_COOKIE) != switched:
        response.set_cookie(LANGUAGE_COOKIE, switched, max_age=365 * 24 * 3600, path="/", httponly=True,
                            samesite="Lax", secure=request.secure)
    return response


def _says_more_than_the_status(status: int, detail: str) -> bool:
    try:
        return detail.lower() != HTTPStatus(status).phrase.lower()
    except ValueError:
        return bool(detail)


def error_page(request: web.Request, status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """The error page for a browser: a title for the status in its language, and the technical detail if any."""
    merged = {**PUBLIC_HEADERS, "Cache-Control": "no-store", **(headers or {})}
    shown = detail if _says_more_than_the_status(status, detail) else ""
    return render_page(request, "error.html", status=status, headers=merged, status_code=status, detail=shown)
