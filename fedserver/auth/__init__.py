"""Who is at the keyboard: password login, login limits, sessions and CSRF, for every area of the site.

A shared layer below the features (the OAuth login page and password grant in `api`,
the admin pages, the coming owner dashboard and buyer pages). It imports only shared
and lower modules (config, repositories, passwords, errors), never a feature package.

- `tokens`: random tokens, the SHA-256 digests the database keeps, constant-time comparison.
- `limits`: the client address and the failed-login limit (kept in PostgreSQL).
- `login`: name (or email) and password to an account.
- `cookies`: the one way auth cookies are set (HttpOnly, SameSite, Path, Secure on https).
- `sessions`: login sessions per area, with their HMAC-derived CSRF token.
- `csrf`: the double-submit CSRF cookie of forms shown before login.
- `signed`: the remote actor behind a signed GET (for documents only their audience may read).
"""

from __future__ import annotations

from .csrf import CsrfCookie
from .limits import (
    LOGIN_WINDOW,
    TOO_MANY_LOGINS,
    charge_login_attempt,
    client_address,
    forgive_login_attempt,
    login_keys,
)
from .login import LoginFailed, LoginPending, LoginRefused, authenticate, check_login_form, normalize_login_name
from .sessions import (
    ADMIN_AREA,
    SESSION_SECONDS,
    SITE_AREA,
    Session,
    SessionArea,
    current_session,
    end_session,
    find_session,
    log_in,
    log_out,
    start_session,
    viewer,
    viewer_middleware,
)
from .tokens import hash_secret, new_token, same_secret

__all__ = [
    "ADMIN_AREA", "LOGIN_WINDOW", "SESSION_SECONDS", "SITE_AREA", "TOO_MANY_LOGINS", "CsrfCookie", "LoginFailed", "LoginPending",
    "LoginRefused", "Session", "SessionArea", "authenticate", "charge_login_attempt", "check_login_form",
    "client_address", "current_session", "end_session", "find_session", "forgive_login_attempt", "hash_secret",
    "log_in", "log_out", "login_keys", "new_token", "normalize_login_name", "same_secret", "start_session",
    "viewer", "viewer_middleware",
]
