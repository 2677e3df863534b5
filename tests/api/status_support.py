"""Helpers for the status, timeline and notification tests: tokens for bob, posting, row counts, remote actors."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import mint_token
from tests.api.schemas import check_status


@pytest.fixture
async def bob_auth(pool, oauth_app, bob) -> dict:
    """bob's headers with read, write, follow and push."""
    return {"Authorization": f"Bearer {await mint_token(pool, oauth_app, bob.id)}"}


async def post(client, auth: dict, text: str = "hello", *, expect: int = 200, headers: dict | None = None,
               **fields) -> dict:
    """POST /api/v1/statuses as JSON; returns the (schema-checked) Status or the error body."""
    response = await client.post("/api/v1/statuses", headers={**auth, **(headers or {})},
                                 json={"status": text, **fields})
    body = await response.json()
    assert response.status == expect, body
    if expect == 200:
        check_status(body)
    return body


async def get_json(client, path: str, auth: dict | None = None, *, expect: int = 200, **params):
    """GET a JSON answer, asserting its status."""
    response = await client.get(path, headers=auth or {}, params=params)
    body = await response.json()
    assert response.status == expect, body
    return body


async def act(client, auth: dict, status_id: str, action: str, *, expect: int = 200) -> dict:
    """POST /api/v1/statuses/:id/<action>."""
    response = await client.post(f"/api/v1/statuses/{status_id}/{action}", headers=auth)
    body = await response.json()
    assert response.status == expect, body
    return body


def link_cursors(response) -> dict[str, str]:
    """rel → the max_id/min_id value of a Link header."""
    found = {}
    for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("Link", "")):
        found[rel] = re.search(r"(?:max_id|min_id)=(\d+)", url).group(1)
    return found


async def count(pool, sql: str, *args) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def remote_actor(pool, name: str = "carol", domain: str = "remote.example") -> int:
    """A remote actor row (no server behind it)."""
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, url, inbox_uri,
                                   shared_inbox_uri, followers_uri, key_id, public_key_pem)
               VALUES ($1, false, $2, $3, 'Person', $2, $1, $1 || '/inbox', 'https://' || $3 || '/inbox',
                       $1 || '/followers', $1 || '#main-key', 'PEM') RETURNING id""",
            f"https://{domain}/users/{name}", name, domain)


async def follow(pool, follower: int, followee: int, state: str = "accepted") -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, $3)",
                           follower, followee, state)
