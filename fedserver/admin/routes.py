"""`/admin`: log in and out, the rewards alerts page and resolving an alert, the sign-ups waiting for approval.

The login form checks a double-submit CSRF cookie, then the password with
`fedserver.auth` (the same failed-login limits as the OAuth login). An administrator
gets a session of the admin area (cookie HttpOnly, SameSite=Strict, Path=/admin, Secure
on https); anyone else a 403 and no session. Every logged-in request re-reads the
account's role, and taking the role away (`fedserver account role NAME user`) also
ends the account's admin sessions.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rewards.store import count_open_alerts, list_alerts, resolve_alert

from ..accounts import AccountError, approve_signup, reject_signup
from ..app_keys import MODERATION, POOL, SETTINGS
from ..auth import (
    ADMIN_AREA,
    CsrfCookie,
    LoginRefused,
    Session,
    check_login_form,
    current_session,
    log_in,
    log_out,
)
from ..moderation import ModerationError, act_on_account, act_on_domain, find_account, resolve_report
from ..repo import actors as actors_repo
from ..repo import moderation as moderation_repo
from ..templates import SITE_FORM_HEADERS, render_page, see_other

log = logging.getLogger("fedserver.admin")

LOGIN_PATH = "/admin/login"
LOGOUT_PATH = "/admin/logout"
ALERTS_PATH = "/admin/rewards/alerts"
SIGNUPS_PATH = "/admin/signups"
MODERATION_PATH = "/admin/moderation"
CSRF = CsrfCookie("fedserver_admin_csrf", "/admin", "Strict")
SESSION = web.RequestKey("fedserver.admin.session", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return render_page(request, template, status=status, headers=SITE_FORM_HEADERS, **context)


def _forged(request: web.Request) -> web.Response:
    """The answer to a form without the right CSRF token."""
    return _page(request, "forged.html", 403, login_url=LOGIN_PATH)


def _not_admin(request: web.Request, username: str) -> web.Response:
    return _page(request, "admin/not_admin.html", 403, username=username, login_url=LOGIN_PATH)


def admin_only(handler: Handler) -> Handler:
    """Let in a live administrator's session; GETs without one go to the login form."""
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        session = await current_session(request, ADMIN_AREA)
        if session is None:
            if request.method == "GET":
                return see_other(LOGIN_PATH)
            return _page(request, "admin/session_ended.html", 401, login_url=LOGIN_PATH)
        if not session.is_admin:
            return _not_admin(request, session.username)
        request[SESSION] = session
        return await handler(request)
    return checked


def _login_form(request: web.Request, *, error: str | None = None, username: str = "",
                status: int = 200) -> web.Response:
    token = CSRF.token(request)
    page = _page(request, "admin/login.html", status, csrf_token=token, error=error, username=username)
    return CSRF.attach(request, page, token)


async def login_get(request: web.Request) -> web.Response:
    """The login form, or straight to the alerts for a live administrator."""
    session = await current_session(request, ADMIN_AREA)
    if session is not None and session.is_admin:
        return see_other(ALERTS_PATH)
    return _login_form(request)


async def login_post(request: web.Request) -> web.Response:
    """Check the form and the password; open a session for an administrator."""
    form = await request.post()
    if not CSRF.matches(request, form):
        return _forged(request)
    try:
        account = await check_login_form(request, form)
    except LoginRefused as refused:
        return _login_form(request, error=refused.reason, username=refused.username, status=refused.status)
    if account.role != "admin":
        log.warning("admin login refused: not an administrator", extra={"account": account.username})
        return _not_admin(request, account.username)
    response = see_other(ALERTS_PATH)
    await log_in(request, response, ADMIN_AREA, account.id)
    log.info("admin logged in", extra={"account": account.username})
    return response


async def logout_post(request: web.Request) -> web.Response:
    """End the session (its form's CSRF token required) and forget the cookie."""
    form = await request.post()
    session = await current_session(request, ADMIN_AREA)
    if session is not None and not session.form_matches(form):
        return _forged(request)
    response = see_other(LOGIN_PATH)
    await log_out(request, response, ADMIN_AREA, session)
    if session is not None:
        log.info("admin logged out", extra={"account": session.username})
    return response


@admin_only
async def alerts_get(request: web.Request) -> web.Response:
    """Rewards alerts, newest first."""
    session = request[SESSION]
    async with request.config_dict[POOL].acquire() as conn:
        alerts = await list_alerts(conn)
        unresolved = await count_open_alerts(conn)
    return _page(request, "admin/alerts.html", username=session.username, csrf_token=session.csrf_token,
                 alerts=alerts, unresolved=unresolved)


@admin_only
async def alert_resolve_post(request: web.Request) -> web.Response:
    """Mark one alert resolved (the form's CSRF token required), then back to the list."""
    session = request[SESSION]
    form = await request.post()
    if not session.form_matches(form):
        return _forged(request)
    alert_id = int(request.match_info["id"])
    changed = await resolve_alert(request.config_dict[POOL], alert_id, session.account_id)
    if changed is None:
        return _page(request, "admin/no_alert.html", 404)
    if changed:
        log.info("rewards alert resolved", extra={"alert": alert_id, "account": session.username})
    return see_other(f"{ALERTS_PATH}#alert-{alert_id}")


@admin_only
async def signups_get(request: web.Request) -> web.Response:
    """Sign-ups waiting for approval, oldest first, each with its reason and the two buttons."""
    session = request[SESSION]
    async with request.config_dict[POOL].acquire() as conn:
        pending = await actors_repo.list_pending_signups(conn)
    return _page(request, "admin/signups.html", username=session.username, csrf_token=session.csrf_token,
                 pending=pending)


@admin_only
async def signup_decide_post(request: web.Request) -> web.Response:
    """Approve or reject one waiting sign-up (`decision`), then back to the list."""
    session = request[SESSION]
    form = await request.post()
    if not session.form_matches(form):
        return _forged(request)
    name, decision = request.match_info["name"], form.get("decision")
    decide = {"approve": approve_signup, "reject": reject_signup}.get(decision)  # type: ignore[arg-type]
    if decide is None:
        return _page(request, "message_only.html", 422, heading="?", text=f"unknown decision: {decision}")
    try:
        await decide(request.config_dict[POOL], name)
    except AccountError as exc:
        return _page(request, "message_only.html", 404, heading="?", text=str(exc))
    log.info("sign-up decided", extra={"account": name, "decision": decision, "by": session.username})
    return see_other(SIGNUPS_PATH)


async def _moderation_page(request: web.Request, status: int = 200, **notice: str) -> web.Response:
    session = request[SESSION]
    async with request.config_dict[POOL].acquire() as conn:
        reports = await moderation_repo.list_reports(conn, resolved=False)
        domains = await moderation_repo.list_domains(conn)
        entries = await moderation_repo.read_log(conn, 30)
    return _page(request, "admin/moderation.html", status, username=session.username,
                 csrf_token=session.csrf_token, reports=reports, domains=domains, log=entries,
                 done=notice.get("done"), error=notice.get("error"))


@admin_only
async def moderation_get(request: web.Request) -> web.Response:
    """Open reports, the account and domain forms, the moderated domains and the latest log entries."""
    return await _moderation_page(request)


@admin_only
async def moderation_post(request: web.Request) -> web.Response:
    """An account or domain action, or resolving a report (the form's CSRF token required); the page again
    with what was done, or why not (422)."""
    session = request[SESSION]
    form = await request.post()
    if not session.form_matches(form):
        return _forged(request)
    pool, settings = request.config_dict[POOL], request.config_dict[SETTINGS]
    moderator, reason = f"admin:{session.username}", str(form.get("reason") or "")
    what = request.match_info["what"]
    try:
        if what == "account":
            actor = await find_account(pool, str(form.get("acct") or ""), settings.instance.domain)
            done = await act_on_account(pool, actor, str(form.get("action")), moderator, reason,
                                        settings.instance.domain)
        elif what == "domain":
            done = await act_on_domain(pool, str(form.get("domain") or ""), str(form.get("action")), moderator,
                                       reason, settings.instance.domain)
        else:
            done = await resolve_report(pool, int(request.match_info["id"]), moderator, reason)
    except ModerationError as exc:
        return await _moderation_page(request, 422, error=str(exc))
    request.config_dict[MODERATION].invalidate()
    return await _moderation_page(request, done=done)


async def admin_get(request: web.Request) -> web.Response:
    """`/admin`: the alerts page is the admin home."""
    return see_other(ALERTS_PATH)


def setup_routes(app: web.Application) -> None:
    """Register the admin pages on the main application."""
    app.router.add_get("/admin", admin_get)
    app.router.add_get(LOGIN_PATH, login_get)
    app.router.add_post(LOGIN_PATH, login_post)
    app.router.add_post(LOGOUT_PATH, logout_post)
    app.router.add_get(ALERTS_PATH, alerts_get)
    app.router.add_get(SIGNUPS_PATH, signups_get)
    app.router.add_post(SIGNUPS_PATH + "/{name:[A-Za-z0-9_]{1,30}}", signup_decide_post)
    app.router.add_post(ALERTS_PATH + "/{id:[0-9]{1,18}}/resolve", alert_resolve_post)
    app.router.add_get(MODERATION_PATH, moderation_get)
    app.router.add_post(MODERATION_PATH + "/{what:account|domain}", moderation_post)
    app.router.add_post(MODERATION_PATH + "/{what:reports}/{id:[0-9]{1,18}}/resolve", moderation_post)
