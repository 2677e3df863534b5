"""`/oauth/authorize` (with and without the trailing slash toot uses): log in, consent, get a code.

GET shows the form; POST checks the CSRF token (double-submit cookie, SameSite=Lax), the
password (rate-limited), then redirects to the app with `?code=&state=` (custom schemes such
as `myapp://cb` included) or, for `urn:ietf:wg:oauth:2.0:oob`, shows the code.
"""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL
from ..auth import CsrfCookie, LoginRefused, check_login_form
from ..web.form_pages import PAGE_HEADERS, html_response
from ..web.pages import pick_language
from . import login_page
from .oauth_service import (
    OOB,
    AuthorizationRequest,
    OAuthError,
    check_authorization_request,
    create_code,
    redirect_with,
)

CSRF = CsrfCookie("fedserver_oauth_csrf", "/oauth", "Lax")


def _lang(request: web.Request, asked: str | None) -> str:
    return asked if asked in login_page.TEXT else pick_language(request)


def _fields(source) -> dict[str, str]:
    return {name: source[name] for name in login_page.FORM_FIELDS if source.get(name) is not None}


def _form_page(request: web.Request, lang: str, areq: AuthorizationRequest, fields: dict[str, str], *,
               error: str | None = None, username: str = "", status: int = 200) -> web.Response:
    token = CSRF.token(request)
    html = login_page.login_form(lang, app_name=areq.app.name, website=areq.app.website, scopes=areq.scopes,
                                 fields=fields, csrf_token=token, error=error, username=username)
    return CSRF.attach(request, html_response(html, status), token)


async def _checked_request(request: web.Request, fields: dict[str, str]) -> AuthorizationRequest:
    async with request.config_dict[POOL].acquire() as conn:
        return await check_authorization_request(conn, fields)


async def authorize_get(request: web.Request) -> web.Response:
    """The login and consent form."""
    fields = _fields(request.query)
    lang = _lang(request, fields.get("lang"))
    try:
        areq = await _checked_request(request, fields)
    except OAuthError as exc:
        return html_response(login_page.error_page(lang, exc.description), exc.status)
    return _form_page(request, lang, areq, fields)


def _denied(areq: AuthorizationRequest, lang: str) -> web.Response:
    if areq.redirect_uri == OOB:
        return html_response(login_page.denied_page(lang))
    location = redirect_with(areq.redirect_uri, {"error": "access_denied", "state": areq.state})
    return web.Response(status=302, headers={**PAGE_HEADERS, "Location": location})


async def _approved(request: web.Request, areq: AuthorizationRequest, lang: str, account_id: int) -> web.Response:
    async with request.config_dict[POOL].acquire() as conn:
        code = await create_code(conn, areq, account_id)
    if areq.redirect_uri == OOB:
        return html_response(login_page.code_page(lang, code))
    location = redirect_with(areq.redirect_uri, {"code": code, "state": areq.state})
    return web.Response(status=302, headers={**PAGE_HEADERS, "Location": location})


async def authorize_post(request: web.Request) -> web.Response:
    """Check the form, the password, then hand out a code (or the refusal)."""
    form = await request.post()
    fields = _fields(form)
    lang = _lang(request, fields.get("lang"))
    if not CSRF.matches(request, form):
        return html_response(login_page.error_page(lang, login_page.TEXT[lang]["csrf"]), 403)
    try:
        areq = await _checked_request(request, fields)
    except OAuthError as exc:
        return html_response(login_page.error_page(lang, exc.description), exc.status)
    if form.get("decision") == "deny":
        return _denied(areq, lang)
    try:
        account = await check_login_form(request, form)
    except LoginRefused as refused:
        return _form_page(request, lang, areq, fields, error=login_page.TEXT[lang][refused.reason],
                          username=refused.username, status=refused.status)
    return await _approved(request, areq, lang, account.id)
