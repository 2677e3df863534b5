"""Joining an instance from the browser (`/signup`) and from apps (`POST /api/v1/accounts`), as
`[instance] registrations` says: closed, approval (approved on the admin page or the command line), open."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiohttp.test_utils import TestClient

from fedserver.accounts import create_account, ensure_instance_actor, validate_new_account
from tests.api.conftest import PASSWORD, mint_token
from tests.api.forms import hidden_fields
from tests.support.admin import admin_login
from tests.support.instance import fedserver


def with_registrations(settings, mode: str, **api):
    instance = settings.instance.model_copy(update={"registrations": mode})
    return settings.model_copy(update={"instance": instance, "api": settings.api.model_copy(update=api)})


@pytest.fixture
def site(settings, pool, make_client):
    """Clients of the instance under a given registrations mode (each with its own cookies)."""
    async def make(mode: str, **api) -> TestClient:
        await ensure_instance_actor(pool, settings)
        return await make_client(with_registrations(settings, mode, **api))
    return make


async def signup(client, **fields):
    page = await client.get("/signup")
    form = {**hidden_fields(await page.text()), **fields}
    return await client.post("/signup", data=form, allow_redirects=False)


async def accounts(pool) -> list[str]:
    return [r["username"] for r in await pool.fetch(
        "SELECT a.username FROM actors a JOIN local_accounts l ON l.actor_id = a.id WHERE l.role <> 'instance' "
        "ORDER BY a.id")]


async def test_closed_registrations_show_no_form_and_refuse_a_post(site, pool):
    client = await site("closed")
    html = await (await client.get("/signup")).text()
    assert "가입을 받지 않습니다" in html and 'name="password"' not in html
    assert 'href="/signup"' not in await (await client.get("/")).text()
    token = hidden_fields(html).get("csrf_token", "")
    response = await client.post("/signup", data={"csrf_token": token, "username": "mallory", "password": PASSWORD})
    assert response.status in (403,) and await accounts(pool) == []


async def test_open_registrations_make_the_account_and_log_it_in(site, pool):
    client = await site("open")
    assert 'href="/signup"' in await (await client.get("/")).text()
    bad_name = await signup(client, username="no spaces!", password=PASSWORD)
    assert bad_name.status == 422 and "letters (a-z), digits and underscores" in await bad_name.text()
    short = await signup(client, username="minji", password="short")
    assert short.status == 422 and 'value="minji"' in await short.text()
    reserved = await signup(client, username="admin", password=PASSWORD)
    assert reserved.status == 422 and "reserved" in await reserved.text()
    assert await accounts(pool) == []
    made = await signup(client, username="minji", password=PASSWORD, email="minji@example.com")
    assert made.status == 303 and made.headers["Location"] == "/dashboard"
    assert (await client.get("/dashboard", allow_redirects=False)).status == 200  # logged in at once
    second = await site("open")
    again = await signup(second, username="MINJI", password=PASSWORD)
    assert again.status == 422 and "already taken" in await again.text()
    same_email = await signup(second, username="other", password=PASSWORD, email="MINJI@example.com")
    assert same_email.status == 422 and "email address is already used" in await same_email.text()
    assert await accounts(pool) == ["minji"]


async def test_approval_waits_for_an_administrator_and_the_account_cannot_log_in_before(site, pool, settings):
    client = await site("approval")
    no_reason = await signup(client, username="weaver", password=PASSWORD)
    assert no_reason.status == 422 and await accounts(pool) == []
    asked = await signup(client, username="weaver", password=PASSWORD, reason="직조 공방을 운영합니다")
    assert asked.status == 202 and "@weaver" in await asked.text()
    assert (await client.get("/@weaver", headers={"Accept": "text/html"})).status == 404
    assert "@weaver" not in await (await client.get("/")).text()
    domain = settings.instance.domain
    assert (await client.get(f"/.well-known/webfinger?resource=acct:weaver@{domain}")).status == 404
    assert (await client.get("/users/weaver", headers={"Accept": "application/activity+json"})).status == 404
    page = await client.get("/login")
    refused = await client.post("/login", allow_redirects=False, data={**hidden_fields(await page.text()),
                                                                       "username": "weaver", "password": PASSWORD})
    assert refused.status == 403 and "승인을 기다리고" in await refused.text()

    # The command line lists and approves it; then the same login works.
    env = {**os.environ, "FEDSERVER_DATABASE__URL": settings.database.url,
           "FEDSERVER_INSTANCE__DOMAIN": settings.instance.domain, "FEDSERVER_INSTANCE__SCHEME": "http",
           "FEDSERVER_STORAGE__DATA_DIR": str(settings.storage.data_dir)}
    listed = await asyncio.to_thread(fedserver, "account", "pending", env=env)
    assert listed.returncode == 0 and "직조 공방을 운영합니다" in listed.stdout
    approved = await asyncio.to_thread(fedserver, "account", "approve", "weaver", env=env)
    assert approved.returncode == 0 and "approved" in approved.stdout
    again = await asyncio.to_thread(fedserver, "account", "approve", "weaver", env=env)
    assert again.returncode == 1 and "no sign-up of 'weaver' waits for approval" in again.stderr
    page = await client.get("/login")
    logged_in = await client.post("/login", allow_redirects=False, data={**hidden_fields(await page.text()),
                                                                         "username": "weaver", "password": PASSWORD})
    assert logged_in.status == 303
    assert (await client.get("/@weaver", headers={"Accept": "text/html"})).status == 200
    assert (await client.get(f"/.well-known/webfinger?resource=acct:weaver@{domain}")).status == 200


async def test_an_administrator_approves_and_rejects_on_the_admin_page(site, pool, settings):
    client = await site("approval")
    await create_account(pool, settings, validate_new_account(username="mira", password=PASSWORD, role="admin"))
    for name in ("potter", "spammer"):
        other = await site("approval")
        assert (await signup(other, username=name, password=PASSWORD, reason=f"{name} 입니다")).status == 202
        await other.close()
    assert (await admin_login(client, "mira", PASSWORD)).status == 303
    html = await (await client.get("/admin/signups")).text()
    assert "potter 입니다" in html and "spammer 입니다" in html
    token = hidden_fields(html)["csrf_token"]
    forged = await client.post("/admin/signups/spammer", data={"decision": "reject", "csrf_token": "x"})
    assert forged.status == 403 and "spammer" in await accounts(pool)
    await client.post("/admin/signups/potter", data={"decision": "approve", "csrf_token": token})
    await client.post("/admin/signups/spammer", data={"decision": "reject", "csrf_token": token})
    assert await accounts(pool) == ["mira", "potter"]
    assert await pool.fetchval("SELECT approved FROM local_accounts l JOIN actors a ON a.id = l.actor_id "
                               "WHERE a.username = 'potter'")


async def test_sign_ups_from_one_address_are_limited(site, pool):
    client = await site("open", signups_per_hour=2)
    for name in ("one", "two"):
        fresh = await site("open", signups_per_hour=2)
        assert (await signup(fresh, username=name, password=PASSWORD)).status == 303
        await fresh.close()
    third = await signup(client, username="three", password=PASSWORD)
    assert third.status == 429 and await accounts(pool) == ["one", "two"]


async def test_an_app_signs_a_person_up_with_its_own_token(site, pool, oauth_app):
    client = await site("approval")
    app_token = await mint_token(pool, oauth_app, None, ("read", "write", "follow"))
    headers = {"Authorization": f"Bearer {app_token}"}
    no_agreement = await client.post("/api/v1/accounts", headers=headers,
                                     json={"username": "dana", "password": PASSWORD, "reason": "hi"})
    assert no_agreement.status == 422
    response = await client.post("/api/v1/accounts", headers=headers, json={
        "username": "dana", "password": PASSWORD, "email": "dana@example.com", "agreement": True, "locale": "ko",
        "reason": "도자기를 팔고 싶습니다"})
    body = await response.json()
    assert response.status == 200 and body["token_type"] == "Bearer" and body["access_token"]
    user = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=user)).status == 401  # waiting
    await pool.execute("UPDATE local_accounts SET approved = true")
    me = await client.get("/api/v1/accounts/verify_credentials", headers=user)
    assert me.status == 200 and (await me.json())["username"] == "dana"
    as_user = await client.post("/api/v1/accounts", headers=user,
                                json={"username": "eve", "password": PASSWORD, "agreement": True, "reason": "x"})
    assert as_user.status == 403
    closed = await site("closed")
    refused = await closed.post("/api/v1/accounts", headers=headers,
                                json={"username": "eve", "password": PASSWORD, "agreement": True})
    assert refused.status == 403 and "closed" in (await refused.json())["error"]
    assert "eve" not in await accounts(pool)
