"""The one way an auth cookie is set: HttpOnly, scoped to its area's path, SameSite, Secure on https."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import SETTINGS


def secure_cookies(request: web.Request) -> bool:
    """Cookies are Secure when the instance is served over https."""
    return request.config_dict[SETTINGS].instance.scheme == "https"


def set_auth_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, *, path: str,
                    samesite: str, max_age: int | None = None) -> None:
    """Set a cookie that scripts cannot read and other sites' requests do not carry."""
    response.set_cookie(name, value, path=path, httponly=True, samesite=samesite, secure=secure_cookies(request),
                        max_age=max_age)
