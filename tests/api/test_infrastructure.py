"""API plumbing on real HTTP and PostgreSQL: tokens, scopes, CORS, rate limits, body formats, errors."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.api.conftest import mint_token, with_api

BAD_TOKEN = {"error": "The access token is invalid"}
OUTSIDE = {"error": "This action is outside the authorized scopes"}


# Tokens and scopes


async def test_missing_token_is_401_json(client, alice):
    response = await client.get("/api/v1/accounts/verify_credentials")
    assert response.status == 401 and response.content_type == "application/json"
    assert await response.json() == BAD_TOKEN


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer " + "x" * 2000, "Basic YTpi", "Bearer"])
async def test_bad_token_is_401(client, alice, header):
    response = await client.get("/api/v1/accounts/verify_credentials", headers={"Authorization": header})
    assert response.status == 401 and await response.json() == BAD_TOKEN


async def test_revoked_token_is_401(client, pool, oauth_app, alice):
    token = await mint_token(pool, oauth_app, alice.id)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE oauth_tokens SET revoked_at = now()")
    response = await client.get("/api/v1/preferences", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401 and await response.json() == BAD_TOKEN


async def test_token_of_a_deleted_account_is_401(client, pool, publisher, oauth_app, alice):
    from fedserver.accounts import delete_account

    token = await mint_token(pool, oauth_app, alice.id)
    await delete_account(pool, publisher, "alice")
    response = await client.get("/api/v1/preferences", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401


@pytest.mark.parametrize(("scopes", "path", "status"), [
    (("write",), "/api/v1/accounts/verify_credentials", 403),
    (("read:statuses",), "/api/v1/accounts/verify_credentials", 403),
    (("read:accounts",), "/api/v1/accounts/verify_credentials", 200),
    (("profile",), "/api/v1/accounts/verify_credentials", 200),
    (("read",), "/api/v1/accounts/verify_credentials", 200),
    (("write",), "/api/v1/accounts/relationships?id[]=1", 403),
    (("follow",), "/api/v1/accounts/relationships?id[]=1", 200),  # the legacy scope implies read:follows
    (("read:follows",), "/api/v1/accounts/relationships?id[]=1", 200),
    (("read:accounts",), "/api/v1/lists", 403),
    (("read:lists",), "/api/v1/lists", 200),
    (("read:accounts",), "/api/v1/filters", 403),
    (("read:filters",), "/api/v2/filters", 200),
    (("read:accounts",), "/api/v1/markers", 403),
    (("read:accounts",), "/api/v1/preferences", 200),
])
async def test_each_endpoint_enforces_its_scopes(client, pool, oauth_app, alice, scopes, path, status):
    token = await mint_token(pool, oauth_app, alice.id, scopes)
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status == status
    if status == 403:
        assert await response.json() == OUTSIDE


async def test_write_endpoints_enforce_scopes(client, pool, oauth_app, alice):
    token = await mint_token(pool, oauth_app, alice.id, ("read",))
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.patch("/api/v1/accounts/update_credentials", data={"display_name": "x"}, headers=headers)
    assert response.status == 403 and await response.json() == OUTSIDE
    response = await client.post("/api/v1/markers", data={"home[last_read_id]": "1"}, headers=headers)
    assert response.status == 403
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT display_name FROM actors WHERE id = $1", alice.id) == "앨리스 공방"


async def test_public_endpoints_ignore_a_bad_token_as_mastodon_does(client, alice):
    response = await client.get("/api/v1/instance", headers={"Authorization": "Bearer nope"})
    assert response.status == 200


# Errors


async def test_unknown_api_path_is_404_json_with_cors(client):
    response = await client.get("/api/v1/nothing/here")
    assert response.status == 404 and response.content_type == "application/json"
    assert "error" in await response.json()
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_wrong_method_is_405_json(client):
    response = await client.delete("/api/v1/instance")
    assert response.status == 405 and "error" in await response.json()


@pytest.mark.parametrize(("body", "ctype", "status", "message"), [
    (b'{"display_name": ', "application/json", 400, "not valid JSON"),
    (b'["a"]', "application/json", 422, "must be a JSON object"),
    (b'{"display_name": 5}', "application/json", 200, None),
    (b'{"display_name": {"a": 1}}', "application/json", 422, "display_name must be a string"),
    (b'{"locked": "maybe"}', "application/json", 422, "locked must be a boolean"),
    (b"<xml/>", "application/xml", 415, "JSON"),
    (b'{"source": "public"}', "application/json", 422, "source must be an object"),
])
async def test_malformed_bodies_get_clear_errors(client, auth, body, ctype, status, message):
    response = await client.patch("/api/v1/accounts/update_credentials", data=body,
                                  headers={**auth, "Content-Type": ctype})
    assert response.status == status
    if message:
        assert message in (await response.json())["error"]


async def test_too_large_body_is_413_json(client, auth):
    response = await client.patch("/api/v1/accounts/update_credentials", data=b"x" * 2_000_000,
                                  headers={**auth, "Content-Type": "application/json"})
    assert response.status == 413 and "error" in await response.json()


# CORS


async def test_cors_headers_and_preflight(client, auth):
    response = await client.get("/api/v1/instance", headers={"Origin": "https://elk.zone"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "Link" in exposed and "X-RateLimit-Remaining" in exposed
    preflight = await client.options("/api/v1/statuses", headers={
        "Origin": "https://phanpy.social", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, idempotency-key"})
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, idempotency-key"
    token_preflight = await client.options("/oauth/token", headers={"Access-Control-Request-Method": "POST"})
    assert token_preflight.status == 200 and token_preflight.headers["Access-Control-Allow-Origin"] == "*"
    error = await client.get("/api/v1/preferences", headers={"Origin": "https://elk.zone"})
    assert error.status == 401 and error.headers["Access-Control-Allow-Origin"] == "*"


async def test_login_page_is_not_cors_enabled(client, oauth_app):
    response = await client.get("/oauth/authorize", params={"client_id": oauth_app.client_id})
    assert "Access-Control-Allow-Origin" not in response.headers


# Rate limits


async def test_every_api_answer_carries_the_three_rate_limit_headers(client, auth):
    for path in ("/api/v1/instance", "/api/v1/accounts/verify_credentials", "/api/v1/missing"):
        response = await client.get(path, headers=auth)
        assert response.headers["X-RateLimit-Limit"] == "300"
        assert int(response.headers["X-RateLimit-Remaining"]) < 300
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", response.headers["X-RateLimit-Reset"])


async def test_request_past_the_limit_gets_429_with_headers(make_client, settings, auth):
    client = await make_client(with_api(settings, rate_limit_per_5min=5))
    remaining = []
    for _ in range(5):
        response = await client.get("/api/v1/accounts/verify_credentials", headers=auth)
        assert response.status == 200
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    response = await client.get("/api/v1/accounts/verify_credentials", headers=auth)
    assert response.status == 429 and await response.json() == {"error": "Too many requests"}
    assert response.headers["X-RateLimit-Limit"] == "5" and response.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(response.headers["Retry-After"]) <= 301
    # Another caller (no token: counted by address) still gets through.
    assert (await client.get("/api/v1/instance")).status == 200


async def test_the_limit_is_shared_by_several_web_processes(make_client, settings, auth):
    limited = with_api(settings, rate_limit_per_5min=6)
    first, second = await make_client(limited), await make_client(limited)
    statuses = await asyncio.gather(*[
        (first if i % 2 else second).get("/api/v1/accounts/verify_credentials", headers=auth) for i in range(10)])
    assert sorted(r.status for r in statuses) == [200] * 6 + [429] * 4


async def test_rate_limit_zero_switches_it_off(make_client, settings):
    client = await make_client(with_api(settings, rate_limit_per_5min=0))
    response = await client.get("/api/v1/instance")
    assert response.status == 200 and "X-RateLimit-Limit" not in response.headers
