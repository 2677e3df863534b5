"""Using the admin pages as a browser without JavaScript would."""

from __future__ import annotations

import re

from tests.api.forms import hidden_fields

SESSION_COOKIE = "fedserver_admin_session"
CSRF_COOKIE = "fedserver_admin_csrf"
_RESOLVE = re.compile(r'action="/admin/rewards/alerts/([0-9]+)/resolve"')


async def admin_login(client, username: str, password: str):
    """GET the login form, then POST it with a name and password; returns the POST's response."""
    page = await client.get("/admin/login")
    form = {**hidden_fields(await page.text()), "username": username, "password": password}
    return await client.post("/admin/login", data=form, allow_redirects=False)


def resolvable(html: str) -> list[int]:
    """The ids of the alerts the page offers to resolve, in page order."""
    return [int(found) for found in _RESOLVE.findall(html)]
