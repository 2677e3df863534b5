"""`/login` and `/logout` for every local account: the site area's session (the dashboard, orders, order forms).

The login form checks a double-submit CSRF cookie, then the name and password with
`fedserver.auth` (the same failed-login limits as the OAuth and admin logins), and opens a
session of the site area (cookie HttpOnly, SameSite=Lax, Path=/, Secure on https). Pages
that need a login send visitors here with `?next=` (a path on this site only) and come back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..auth import SITE_AREA, CsrfCookie, LoginRefused, check_login_form, log_in, log_out, viewer
from ..templates import SITE_FORM_HEADERS, render_page, see_other

log = logging.getLogger("fedserver.web")

LOGIN_PATH = "/login"
CSRF = CsrfCookie("fedserver_csrf", "/", "Lax")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page with a form or a session: never cached, its forms post only here."""
    return render_page(request, template, status=status, headers=SITE_FORM_HEADERS, **context)


def forged(request: web.Request) -> web.Response:
    """The answer to a form without the right CSRF token: 403, nothing changed."""
    return page(request, "forged.html", 403, login_url=LOGIN_PATH)


def local_path(value: object, default: str = "/dashboard") -> str:
    """A path on this site to go back to (never another site: `//host` and `/\\host` are refused)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")) \
            and len(value) <= 2000 and value.isprintable():
        return value
    return default


def login_required(handler: Handler) -> Handler:
    """Let in a logged-in local account: a visitor's GET goes to the login form and comes back; a POST is 401."""
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if viewer(request) is None:
            if request.method == "GET":
                return see_other(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='/?=&')}")
            return page(request, "session_ended.html", 401, login_url=LOGIN_PATH)
        return await handler(request)
    return checked


def _login_form(request: web.Request, *, error: str | None = None, username: str = "", next_path: str = "",
                status: int = 200) -> web.Response:
    token = CSRF.token(request)
    response = page(request, "login.html", status, csrf_token=token, error=error, username=username,
                    next_path=local_path(next_path or request.query.get("next")))
    return CSRF.attach(request, response, token)


async def login_get(request: web.Request) -> web.Response:
    """The login form, or straight on for someone already logged in."""
    if viewer(request) is not None:
        return see_other(local_path(request.query.get("next")))
    return _login_form(request)


async def login_post(request: web.Request) -> web.Response:
    """Check the form and the password; open a session and go where the visitor was going."""
    form = await request.post()
    if not CSRF.matches(request, form):
        return forged(request)
    next_path = local_path(form.get("next"))
    try:
        account = await check_login_form(request, form)
    except LoginRefused as refused:
        return _login_form(request, error=refused.reason, username=refused.username, next_path=next_path,
                           status=refused.status)
    response = see_other(next_path)
    await log_in(request, response, SITE_AREA, account.id)
    log.info("logged in", extra={"account": account.username})
    return response


async def logout_post(request: web.Request) -> web.Response:
    """End the session (its form's CSRF token required) and forget the cookie."""
    form = await request.post()
    session = viewer(request)
    if session is not None and not session.form_matches(form):
        return forged(request)
    response = see_other("/")
    await log_out(request, response, SITE_AREA, session)
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN_PATH, login_get)
    app.router.add_post(LOGIN_PATH, login_post)
    app.router.add_post("/logout", logout_post)
