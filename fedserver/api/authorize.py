"""`/oauth/authorize` (with and without the trailing slash toot uses): log in, consent, get a code.

GET shows the form; POST checks the CSRF token (double-submit cookie, SameSite=Lax), the
password (rate-limited), then redirects to the app with `?code=&state=` (custom schemes such
as `myapp://cb` included) or, for `urn:ietf:wg:oauth:2.0:oob`, shows the code. The pages
are in Korean or English: the browser's language, or the form's explicit `lang` switch.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..app_keys import POOL
from ..auth import CsrfCookie, LoginRefused, check_login_form
from ..templates import FORM_HEADERS, LANGUAGES, pick_language, render_page
from .oauth_service import (
    OOB,
    AuthorizationRequest,
    OAuthError,
    check_authorization_request,
    create_code,
    redirect_with,
)

CSRF = CsrfCookie("fedserver_oauth_csrf", "/oauth", "Lax")
FORM_FIELDS = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
               "code_challenge_method", "lang")


def _lang(request: web.Request, asked: str | None) -> str:
    return asked if asked in LANGUAGES else pick_language(request)


def _fields(source) -> dict[str, str]:
    return {name: source[name] for name in FORM_FIELDS if source.get(name) is not None}


def _page(request: web.Request, lang: str, template: str, status: int = 200, **context: Any) -> web.Response:
    return render_page(request, template, status=status, headers=FORM_HEADERS, lang=lang, **context)


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={**FORM_HEADERS, "Location": location})


def _form_page(request: web.Request, lang: str, areq: AuthorizationRequest, fields: dict[str, str], *,
               error: str | None = None, username: str = "", status: int = 200) -> web.Response:
    token = CSRF.token(request)
    other = next(code for code in LANGUAGES if code != lang)
    page = _page(request, lang, "oauth/authorize.html", status, app_name=areq.app.name,
                 website=areq.app.website or "", scopes=areq.scopes, csrf_token=token, error=error,
                 username=username, other_lang=other, switch_query=urlencode({**fields, "lang": other}),
                 hidden_fields=[(name, value) for name, value in fields.items() if name != "lang"])
    return CSRF.attach(request, page, token)


def _refused(request: web.Request, lang: str, exc: OAuthError) -> web.Response:
    return _page(request, lang, "oauth/error.html", exc.status, status_code=exc.status, detail=exc.description)


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
        return _refused(request, lang, exc)
    return _form_page(request, lang, areq, fields)


def _denied(request: web.Request, areq: AuthorizationRequest, lang: str) -> web.Response:
    if areq.redirect_uri == OOB:
        return _page(request, lang, "oauth/denied.html")
    return _redirect(redirect_with(areq.redirect_uri, {"error": "access_denied", "state": areq.state}))


async def _approved(request: web.Request, areq: AuthorizationRequest, lang: str, account_id: int) -> web.Response:
    async with request.config_dict[POOL].acquire() as conn:
        code = await create_code(conn, areq, account_id)
    if areq.redirect_uri == OOB:
        return _page(request, lang, "oauth/code.html", code=code)
    return _redirect(redirect_with(areq.redirect_uri, {"code": code, "state": areq.state}))


async def authorize_post(request: web.Request) -> web.Response:
    """Check the form, the password, then hand out a code (or the refusal)."""
    form = await request.post()
    fields = _fields(form)
    lang = _lang(request, fields.get("lang"))
    if not CSRF.matches(request, form):
        return _page(request, lang, "forged.html", 403)
    try:
        areq = await _checked_request(request, fields)
    except OAuthError as exc:
        return _refused(request, lang, exc)
    if form.get("decision") == "deny":
        return _denied(request, areq, lang)
    try:
        account = await check_login_form(request, form)
    except LoginRefused as refused:
        return _form_page(request, lang, areq, fields, error=refused.reason, username=refused.username,
                          status=refused.status)
    return await _approved(request, areq, lang, account.id)
