"""What the server-rendered form pages share (the OAuth login page, the admin pages).

The HTML shell and the headers that keep the pages out of caches and frames.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept-Language, Cookie",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;"
    "box-sizing:border-box}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}.error{background:#fde8e8;"
    "padding:.6rem;border-radius:4px}code{font-size:1.2rem;word-break:break-all}nav{text-align:right}"
)
_WIDE = (
    "body{max-width:72rem}table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;"
    "padding:.4rem;border-bottom:1px solid #ddd}td code{font-size:.9rem}td button{margin:0}"
    "tr.open{background:#fff8e1}nav form{display:inline}"
)


def render_page(lang: str, title: str, body: str, *, wide: bool = False) -> str:
    """A complete HTML document; `wide` for pages with tables."""
    style = _STYLE + (_WIDE if wide else "")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{style}</style></head><body><main>{body}</main></body></html>\n"
    )


def html_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An HTML page with the form pages' headers."""
    return web.Response(text=text, status=status, content_type="text/html", headers={**PAGE_HEADERS, **(headers or {})})


def hidden_input(name: str, value: str | None) -> str:
    """A hidden form field (nothing for None)."""
    return "" if value is None else f'<input type="hidden" name="{name}" value="{escape(value)}">'
