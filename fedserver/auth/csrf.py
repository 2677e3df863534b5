"""The double-submit CSRF cookie of forms shown before login (the OAuth page, the admin login).

A form carries a random token that must equal an HttpOnly cookie only this site can
set, scoped to its area's path and Secure on https. Once logged in, forms carry the
session's own CSRF token instead (`Session.csrf_token`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .cookies import set_auth_cookie
from .tokens import new_token, same_secret


@dataclass(frozen=True)
class CsrfCookie:
    """The double-submit CSRF cookie of one area of the site (its name, path and SameSite mode)."""

    name: str
    path: str
    samesite: str

    def token(self, request: web.Request) -> str:
        """The token to put in a form: the cookie's, or a new one."""
        existing = request.cookies.get(self.name, "")
        return existing if 40 <= len(existing) <= 64 and existing.isascii() else new_token()

    def attach(self, request: web.Request, response: web.Response, token: str) -> web.Response:
        """Set the cookie that the form's token must match."""
        set_auth_cookie(request, response, self.name, token, path=self.path, samesite=self.samesite)
        return response

    def matches(self, request: web.Request, form) -> bool:
        """True when the form's `csrf_token` equals the cookie."""
        return same_secret(request.cookies.get(self.name, ""), form.get("csrf_token", ""))
