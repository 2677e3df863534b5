"""What the server-rendered form pages share (the OAuth login page, the admin pages).

The HTML shell, the headers that keep the pages out of caches and frames, and the
double-submit CSRF cookie: a form carries a random token that must equal an HttpOnly
cookie only this site can set, scoped to its area's path and Secure on https.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from html import escape

from aiohttp import web

from ..app_keys import SETTINGS

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


def secure_cookies(request: web.Request) -> bool:
    """Cookies are Secure when the instance is served over https."""
    return request.config_dict[SETTINGS].instance.scheme == "https"


def same_secret(expected: str, sent: object) -> bool:
    """Constant-time comparison of a secret with a form value (False for anything but a non-empty string)."""
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected.encode(), sent.encode())


@dataclass(frozen=True)
class CsrfCookie:
    """The double-submit CSRF cookie of one area of the site (its name, path and SameSite mode)."""

    name: str
    path: str
    samesite: str

    def token(self, request: web.Request) -> str:
        """The token to put in a form: the cookie's, or a new one."""
        existing = request.cookies.get(self.name, "")
        return existing if 40 <= len(existing) <= 64 and existing.isascii() else secrets.token_urlsafe(32)

    def attach(self, request: web.Request, response: web.Response, token: str) -> web.Response:
        """Set the cookie that the form's token must match."""
        response.set_cookie(self.name, token, path=self.path, httponly=True, samesite=self.samesite,
                            secure=secure_cookies(request))
        return response

    def matches(self, request: web.Request, form) -> bool:
        """True when the form's `csrf_token` equals the cookie."""
        return same_secret(request.cookies.get(self.name, ""), form.get("csrf_token", ""))
