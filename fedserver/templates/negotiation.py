"""What a client asked for: the language of a page, and whether it wants a page at all. Pure header parsing."""

from __future__ import annotations

from aiohttp import web

LANGUAGES = ("ko", "en")  # the first is the default
LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}
HTML_TYPES = ("text/html", "application/xhtml+xml")
JSON_TYPES = ("application/json", "application/activity+json", "application/ld+json")


def accept_entries(header: str) -> list[tuple[str, float]]:
    """`Accept`-style header values with their quality, in header order (a bad `q` counts as 0)."""
    entries = []
    for part in header.split(","):
        value, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if value:
            entries.append((value.lower(), quality))
    return entries


LANGUAGE_COOKIE = "lang"


def chosen_language(request: web.Request) -> str | None:
    """The language picked with the page's switch: `?lang=` now, else the cookie it left; None if neither."""
    for value in (request.query.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if value in LANGUAGES:
            return value
    return None


def pick_language(request: web.Request) -> str:
    """The language picked with the switch; else `ko` unless the browser prefers English (`Accept-Language`)."""
    chosen = chosen_language(request)
    if chosen is not None:
        return chosen
    ranked = sorted(accept_entries(request.headers.get("Accept-Language", "")), key=lambda entry: -entry[1])
    for tag, quality in ranked:
        lang = tag.split("-")[0]
        if quality > 0 and lang in LANGUAGES:
            return lang
    return LANGUAGES[0]


def prefers_html(request: web.Request) -> bool:
    """True when `Accept` ranks a web page above JSON (a browser); False without an Accept header."""
    entries = accept_entries(request.headers.get("Accept", ""))
    html = max((q for media, q in entries if media in HTML_TYPES), default=0.0)
    json = max((q for media, q in entries if media in JSON_TYPES), default=0.0)
    return html > 0 and html > json
