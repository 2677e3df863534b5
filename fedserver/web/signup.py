"""`/signup`: joining the instance from a browser, as `[instance] registrations` allows.

`closed`: no form, a message saying how to get an account. `open`: the account is made and
logged in at once. `approval`: the request waits, with its reason, until an administrator
approves it (`/admin/signups`, or `fedserver account approve NAME`). Name and password rules
are the command line's; a few sign-ups per hour per address (`[api] signups_per_hour`). The form
carries a double-submit CSRF token like the login form.
"""

from __future__ import annotations

from aiohttp import web

from ..accounts import AccountError, SignupLimited, sign_up
from ..app_keys import POOL, SETTINGS
from ..auth import SITE_AREA, client_address, log_in, viewer
from .session import CSRF, forged, page, see_other

FIELDS = ("username", "password", "email", "reason")


def _form(request: web.Request, *, values: dict[str, str] | None = None, error: str | None = None,
          status: int = 200) -> web.Response:
    mode = request.config_dict[SETTINGS].instance.registrations
    token = CSRF.token(request)
    response = page(request, "signup.html", status, mode=mode, csrf_token=token, values=values or {}, error=error)
    return CSRF.attach(request, response, token)


async def signup_get(request: web.Request) -> web.Response:
    """The sign-up form (or why there is none)."""
    if viewer(request) is not None:
        return see_other("/dashboard")
    return _form(request)


async def signup_post(request: web.Request) -> web.Response:
    """Make the account: logged in at once when sign-ups are open, else waiting for approval."""
    form = await request.post()
    if not CSRF.matches(request, form):
        return forged(request)
    settings = request.config_dict[SETTINGS]
    if settings.instance.registrations == "closed":
        return _form(request, status=403)
    values = {name: form.get(name) if isinstance(form.get(name), str) else "" for name in FIELDS}
    try:
        actor, approved = await sign_up(request.config_dict[POOL], settings,
                                        address=client_address(request, settings), username=values["username"],
                                        password=values["password"], email=values["email"], reason=values["reason"])
    except AccountError as exc:
        values.pop("password")
        return _form(request, values=values, error=str(exc), status=429 if isinstance(exc, SignupLimited) else 422)
    if not approved:
        return page(request, "signup_pending.html", 202, username=actor.username)
    response = see_other("/dashboard")
    await log_in(request, response, SITE_AREA, actor.id)
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/signup", signup_get)
    app.router.add_post("/signup", signup_post)
