"""OAuth 2: app registration, the login page, codes with PKCE, the grants, revocation, metadata, login limits."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from fedserver.auth import hash_secret
from fedserver.auth.limits import ACCOUNT_DELAY_STEP
from tests.api.conftest import PASSWORD, mint_token, with_api
from tests.api.forms import hidden_fields, shown_code
from tests.api.schemas import APPLICATION, OAUTH_METADATA, REGISTERED_APPLICATION, TOKEN, check

OOB = "urn:ietf:wg:oauth:2.0:oob"


def pkce_pair(verifier: str = "v" * 20 + "-._~" + "x" * 30) -> tuple[str, str]:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def authorize(client, oauth_app, *, username="alice", password=PASSWORD, redirect_uri=OOB, decision="allow",
                    **extra):
    """GET the login page, then POST its form as a browser would; returns the POST response."""
    query = {"client_id": oauth_app.client_id, "redirect_uri": redirect_uri, "response_type": "code",
             "scope": "read write follow push", **extra}
    page = await client.get("/oauth/authorize", params=query)
    assert page.status == 200, await page.text()
    form = hidden_fields(await page.text())
    form.update(username=username, password=password, decision=decision)
    return await client.post("/oauth/authorize", data=form, allow_redirects=False)


async def code_for(client, oauth_app, **extra) -> str:
    response = await authorize(client, oauth_app, **extra)
    assert response.status == 200, await response.text()
    code = shown_code(await response.text())
    assert code
    return code


# App registration


async def test_register_app_with_json_as_toot_does(client):
    response = await client.post("/api/v1/apps", json={
        "client_name": "toot", "redirect_uris": OOB, "scopes": "read write follow",
        "website": "https://github.com/ihabunek/toot"})
    assert response.status == 200
    body = await response.json()
    check(body, REGISTERED_APPLICATION)
    assert body["scopes"] == ["read", "write", "follow"] and body["redirect_uris"] == [OOB]
    assert body["client_secret_expires_at"] == 0


async def test_register_app_with_a_form_and_several_redirect_uris(client, pool):
    response = await client.post("/api/v1/apps", data={
        "client_name": "Mastodon.py", "scopes": "read write follow push",
        "redirect_uris": f"{OOB}\nmyapp://cb\nhttps://app.example/callback"})
    body = await response.json()
    check(body, REGISTERED_APPLICATION)
    assert body["redirect_uris"] == [OOB, "myapp://cb", "https://app.example/callback"]
    assert body["redirect_uri"] == f"{OOB}\nmyapp://cb\nhttps://app.example/callback"
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT secret_hash FROM oauth_apps WHERE client_id = $1", body["client_id"])
    assert bytes(stored["secret_hash"]) == hash_secret(body["client_secret"])  # only the digest is kept


async def test_register_app_accepts_redirect_uris_as_an_array(client):
    response = await client.post("/api/v1/apps", json={"client_name": "x", "redirect_uris": [OOB, "app:/cb"]})
    assert (await response.json())["redirect_uris"] == [OOB, "app:/cb"]
    response = await client.post("/api/v1/apps", data=[("client_name", "y"), ("redirect_uris[]", "a:/1"),
                                                       ("redirect_uris[]", "b:/2")])
    assert (await response.json())["redirect_uris"] == ["a:/1", "b:/2"]


@pytest.mark.parametrize(("body", "message"), [
    ({"redirect_uris": OOB}, "client_name is required"),
    ({"client_name": "x"}, "redirect_uris can't be blank"),
    ({"client_name": "x", "redirect_uris": "javascript:alert(1)"}, "needs a scheme"),
    ({"client_name": "x", "redirect_uris": "https://a.example/cb#frag"}, "fragment"),
    ({"client_name": "x", "redirect_uris": OOB, "scopes": "read admin:everything"}, "unknown scope"),
    ({"client_name": "x" * 61, "redirect_uris": OOB}, "too long"),
    ({"client_name": "x", "redirect_uris": OOB, "website": "ftp://a"}, "website"),
    ({"client_name": ["x"], "redirect_uris": OOB}, "client_name must be a string"),
])
async def test_register_app_refuses_bad_input_with_422(client, pool, body, message):
    response = await client.post("/api/v1/apps", json=body)
    assert response.status == 422
    assert message in (await response.json())["error"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM oauth_apps") == 0


async def test_app_verify_credentials_needs_a_token_and_hides_the_secret(client, pool, oauth_app):
    token = await mint_token(pool, oauth_app, None, ("read",))
    response = await client.get("/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"})
    body = await response.json()
    check(body, APPLICATION)
    assert "client_secret" not in body and body["name"] == "Test app"
    assert (await client.get("/api/v1/apps/verify_credentials")).status == 401


# Metadata


async def test_metadata_lists_endpoints_s256_and_the_enabled_grants(client, settings, make_client):
    response = await client.get("/.well-known/oauth-authorization-server")
    body = await response.json()
    check(body, OAUTH_METADATA)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["token_endpoint"] == "http://shop.test/oauth/token"
    assert set(body["grant_types_supported"]) == {"authorization_code", "client_credentials", "password"}
    assert {"read", "write", "follow", "push", "read:accounts", "write:statuses"} <= set(body["scopes_supported"])
    off = await make_client(with_api(settings, password_grant=False))
    body = await (await off.get("/.well-known/oauth-authorization-server")).json()
    assert "password" not in body["grant_types_supported"]  # Mastodon.py then refuses the password flow itself


# The login page


@pytest.mark.parametrize("path", ["/oauth/authorize", "/oauth/authorize/"])
async def test_login_page_is_html_with_a_csrf_protected_form(client, oauth_app, alice, path):
    response = await client.get(path, params={"client_id": oauth_app.client_id, "redirect_uri": OOB,
                                              "response_type": "code", "scope": "read write"})
    assert response.status == 200 and response.content_type == "text/html"
    html = await response.text()
    assert '<form method="post" action="/oauth/authorize">' in html and "Test app" in html
    assert "계정 이름 또는 이메일" in html and "<script" not in html
    fields = hidden_fields(html)
    assert fields["csrf_token"] == response.cookies["fedserver_oauth_csrf"].value
    assert fields["client_id"] == oauth_app.client_id and fields["scope"] == "read write"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


async def test_login_page_speaks_english_when_asked(client, oauth_app):
    query = {"client_id": oauth_app.client_id, "redirect_uri": OOB}
    html = await (await client.get("/oauth/authorize", params=query, headers={"Accept-Language": "en-US"})).text()
    assert "Account name or email" in html and 'lang="en"' in html
    html = await (await client.get("/oauth/authorize", params={**query, "lang": "ko"})).text()
    assert "비밀번호" in html


@pytest.mark.parametrize(("change", "message"), [
    ({"client_id": "nope"}, "unknown client_id"),
    ({"redirect_uri": "https://evil.example/cb"}, "registered redirect URIs"),
    ({"response_type": "token"}, "response_type=code"),
    ({"scope": "read admin:read"}, "did not register the scope admin:read"),
    ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "plain is not accepted"),
    ({"code_challenge": "a" * 43}, "plain is not accepted"),
])
async def test_login_page_refuses_bad_requests_without_redirecting(client, oauth_app, change, message):
    query = {"client_id": oauth_app.client_id, "redirect_uri": "myapp://cb", "response_type": "code", **change}
    response = await client.get("/oauth/authorize", params=query, allow_redirects=False)
    assert response.status in (400, 401) and response.content_type == "text/html"
    assert message in await response.text()
    assert "Location" not in response.headers


async def test_out_of_band_login_shows_a_code_that_buys_a_token(client, oauth_app, alice, pool):
    code = await code_for(client, oauth_app)
    response = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "client_secret": oauth_app.secret, "redirect_uri": OOB})
    assert response.status == 200
    body = await response.json()
    check(body, TOKEN)
    assert body["token_type"] == "Bearer" and body["scope"] == "read write follow push"
    assert response.headers["Cache-Control"] == "no-store"
    me = await client.get("/api/v1/accounts/verify_credentials",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (await me.json())["username"] == "alice"
    async with pool.acquire() as conn:  # stored hashed, never in clear
        rows = await conn.fetch("SELECT token_hash FROM oauth_tokens")
    assert [bytes(r["token_hash"]) for r in rows] == [hash_secret(body["access_token"])]


async def test_login_redirects_to_a_custom_scheme_with_code_and_state(client, oauth_app, alice):
    response = await authorize(client, oauth_app, redirect_uri="myapp://cb", state="xyz 1")
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc) == ("myapp", "cb")
    query = parse_qs(location.query)
    assert query["state"] == ["xyz 1"] and len(query["code"][0]) == 43


async def test_deny_redirects_with_access_denied(client, oauth_app, alice, pool):
    response = await authorize(client, oauth_app, redirect_uri="myapp://cb", state="s", decision="deny",
                               password="")
    assert response.status == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s"]}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM oauth_codes") == 0


async def test_login_with_email_works_and_a_wrong_password_shows_the_form_again(client, oauth_app, alice):
    response = await authorize(client, oauth_app, username="alice@example.com", password="wrong password")
    assert response.status == 422
    html = await response.text()
    assert "비밀번호가 올바르지 않습니다" in html and 'value="alice@example.com"' in html
    assert shown_code(await (await authorize(client, oauth_app, username="ALICE@example.com")).text())


async def test_form_post_without_the_csrf_cookie_is_refused(client, oauth_app, alice, pool):
    page = await client.get("/oauth/authorize", params={"client_id": oauth_app.client_id, "redirect_uri": OOB})
    form = {**hidden_fields(await page.text()), "username": "alice", "password": PASSWORD, "decision": "allow"}
    client.session.cookie_jar.clear()
    response = await client.post("/oauth/authorize", data=form)
    assert response.status == 403 and "다른 사이트" in await response.text()
    forged = {**form, "csrf_token": "x" * 43}
    await client.get("/oauth/authorize", params={"client_id": oauth_app.client_id, "redirect_uri": OOB})
    assert (await client.post("/oauth/authorize", data=forged)).status == 403
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM oauth_codes") == 0


# Codes


async def test_a_code_works_once_and_its_second_use_revokes_the_token_it_bought(client, oauth_app, alice):
    code = await code_for(client, oauth_app)
    form = {"grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
            "client_secret": oauth_app.secret, "redirect_uri": OOB}
    first = await client.post("/oauth/token", data=form)
    assert first.status == 200
    token = {"Authorization": f"Bearer {(await first.json())['access_token']}"}
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=token)).status == 200
    again = await client.post("/oauth/token", data=form)  # a stolen code replayed (RFC 6749 section 4.1.2)
    assert again.status == 400 and (await again.json())["error"] == "invalid_grant"
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=token)).status == 401


async def test_a_code_asked_for_with_a_redirect_uri_needs_it_at_the_exchange(client, oauth_app, alice):
    code = await code_for(client, oauth_app)  # the authorization request named redirect_uri (RFC 6749 4.1.3)
    response = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "client_secret": oauth_app.secret})
    assert response.status == 400 and "redirect_uri" in (await response.json())["error_description"]


async def test_an_expired_code_is_refused(client, oauth_app, alice, pool):
    code = await code_for(client, oauth_app)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE oauth_codes SET expires_at = now() - interval '1 second'")
    response = await client.post("/oauth/token", json={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "client_secret": oauth_app.secret, "redirect_uri": OOB})
    assert response.status == 400 and "expired" in (await response.json())["error_description"]


async def test_codes_expire_after_ten_minutes(client, oauth_app, alice, pool):
    await code_for(client, oauth_app)
    async with pool.acquire() as conn:
        ttl = await conn.fetchval("SELECT extract(epoch FROM expires_at - created_at) FROM oauth_codes")
    assert 599 <= float(ttl) <= 601


async def test_pkce_s256_lets_a_public_client_in_and_a_wrong_verifier_out(client, oauth_app, alice):
    verifier, challenge = pkce_pair()
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = await code_for(client, oauth_app, **extra)
    wrong = await client.post("/oauth/token", json={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "redirect_uri": OOB, "code_verifier": "w" * 43})
    assert wrong.status == 400 and "code_verifier" in (await wrong.json())["error_description"]
    # The failed attempt spent the code: start again, this time with the right verifier and no secret.
    code = await code_for(client, oauth_app, **extra)
    right = await client.post("/oauth/token", json={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "redirect_uri": OOB, "code_verifier": verifier})
    assert right.status == 200, await right.text()
    check(await right.json(), TOKEN)


async def test_pkce_code_without_its_verifier_is_refused(client, oauth_app, alice):
    _, challenge = pkce_pair()
    code = await code_for(client, oauth_app, code_challenge=challenge, code_challenge_method="S256")
    response = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "client_secret": oauth_app.secret, "redirect_uri": OOB})
    assert response.status == 400 and (await response.json())["error"] == "invalid_grant"


async def test_code_exchange_needs_the_secret_without_pkce(client, oauth_app, alice):
    code = await code_for(client, oauth_app)
    response = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id, "redirect_uri": OOB})
    assert response.status == 401 and (await response.json())["error"] == "invalid_client"


async def test_code_exchange_checks_the_redirect_uri_and_the_app(client, pool, oauth_app, alice):
    code = await code_for(client, oauth_app)
    other = await (await client.post("/api/v1/apps", json={"client_name": "other", "redirect_uris": OOB})).json()
    stolen = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": other["client_id"],
        "client_secret": other["client_secret"], "redirect_uri": OOB})
    assert stolen.status == 400
    code = await code_for(client, oauth_app)
    response = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": oauth_app.client_id,
        "client_secret": oauth_app.secret, "redirect_uri": "myapp://cb"})
    assert response.status == 400 and "redirect_uri" in (await response.json())["error_description"]


# Other grants


async def test_client_credentials_token_has_no_account(client, oauth_app):
    response = await client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
        "scope": "read"})
    body = await response.json()
    check(body, TOKEN)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/api/v1/accounts/verify_credentials", headers=headers)
    assert me.status == 422 and (await me.json())["error"] == "This method requires an authenticated user"


async def test_client_secret_in_http_basic_works(client, oauth_app):
    basic = base64.b64encode(f"{oauth_app.client_id}:{oauth_app.secret}".encode()).decode()
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 headers={"Authorization": f"Basic {basic}"})
    assert response.status == 200 and (await response.json())["scope"] == "read"


@pytest.mark.parametrize("username", ["alice", "ALICE", "@alice", "alice@shop.test", "alice@example.com"])
async def test_password_grant_accepts_name_or_email(client, oauth_app, alice, username):
    response = await client.post("/oauth/token", data={
        "grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
        "username": username, "password": PASSWORD, "scope": "read write follow"})
    assert response.status == 200, await response.text()
    body = await response.json()
    check(body, TOKEN)
    assert body["scope"] == "read write follow"


async def test_password_grant_with_json_body_and_wrong_password(client, oauth_app, alice):
    response = await client.post("/oauth/token", json={
        "grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
        "username": "alice", "password": "nope", "scope": "read"})
    assert response.status == 400
    assert await response.json() == {"error": "invalid_grant",
                                     "error_description": "Invalid account name, email or password"}


async def test_password_grant_can_be_switched_off(make_client, settings, pool, oauth_app, alice):
    off = await make_client(with_api(settings, password_grant=False))
    response = await off.post("/oauth/token", data={
        "grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
        "username": "alice", "password": PASSWORD})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "unsupported_grant_type"
    assert "password grant is switched off" in body["error_description"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM oauth_tokens") == 0


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "client_credentials", "client_secret": "wrong"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials", "scope": "read admin:read"}, 400, "invalid_scope"),
    ({"grant_type": "client_credentials", "scope": "read:nonsense"}, 400, "invalid_scope"),
    ({"grant_type": "refresh_token"}, 400, "unsupported_grant_type"),
    ({"grant_type": "password", "username": "alice"}, 400, "invalid_request"),
    ({}, 400, "unsupported_grant_type"),
])
async def test_token_endpoint_errors_are_oauth_json(client, oauth_app, form, status, error):
    form = {"client_id": oauth_app.client_id, "client_secret": oauth_app.secret, **form}
    response = await client.post("/oauth/token", data=form)
    assert response.status == status
    assert (await response.json())["error"] == error


async def test_token_endpoint_refuses_malformed_json(client):
    response = await client.post("/oauth/token", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"] == "invalid_request"


async def test_sub_scopes_are_granted_exactly(client, pool, oauth_app, alice):
    response = await client.post("/oauth/token", data={
        "grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
        "username": "alice", "password": PASSWORD, "scope": "read:accounts write:statuses"})
    assert (await response.json())["scope"] == "read:accounts write:statuses"


# Revocation


async def test_revoke_makes_the_token_invalid(client, pool, oauth_app, alice):
    token = await mint_token(pool, oauth_app, alice.id)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=headers)).status == 200
    wrong = await client.post("/oauth/revoke", data={"client_id": oauth_app.client_id, "client_secret": "x",
                                                     "token": token})
    assert wrong.status == 403
    response = await client.post("/oauth/revoke", data={"client_id": oauth_app.client_id,
                                                        "client_secret": oauth_app.secret, "token": token})
    assert response.status == 200 and await response.json() == {}
    after = await client.get("/api/v1/accounts/verify_credentials", headers=headers)
    assert after.status == 401 and await after.json() == {"error": "The access token is invalid"}


# Login rate limits


async def test_sixth_failed_login_in_15_minutes_is_refused_even_with_the_right_password(client, oauth_app, alice):
    form = {"grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
            "username": "alice", "scope": "read"}
    for _ in range(5):
        assert (await client.post("/oauth/token", data={**form, "password": "guess"})).status == 400
    response = await client.post("/oauth/token", data={**form, "password": PASSWORD})
    assert response.status == 429
    assert "Too many failed login attempts" in (await response.json())["error"]
    assert response.headers["Retry-After"] == "900"


async def test_an_attacker_at_one_address_cannot_lock_the_owner_out_at_another(make_client, settings, oauth_app,
                                                                               alice):
    client = await make_client(with_api(settings, trust_forwarded_for=True, login_failures_per_15min=2))
    form = {"grant_type": "password", "client_id": oauth_app.client_id, "client_secret": oauth_app.secret,
            "scope": "read", "password": "guess"}

    async def attempt(address: str, username: str, password: str = "guess") -> tuple[int, float]:
        started = time.monotonic()
        response = await client.post("/oauth/token", data={**form, "username": username, "password": password},
                                     headers={"X-Forwarded-For": address})
        return response.status, time.monotonic() - started

    assert [(await attempt("10.0.0.1", "alice"))[0] for _ in range(3)] == [400, 400, 429]  # one address
    assert (await attempt("10.0.0.1", "alice", PASSWORD))[0] == 429  # stays locked there
    assert (await attempt("10.0.9.9", "alice", PASSWORD))[0] == 200  # the owner, elsewhere, gets in
    assert [(await attempt("10.0.1.1", name))[0] for name in ("x1", "x2", "x3")] == [400, 400, 429]  # names
    # Many addresses against one account: never locked, but each further try waits longer.
    spread = [await attempt(f"10.0.2.{i}", "alice") for i in range(6)]
    assert [status for status, _ in spread] == [400] * 6
    assert spread[-1][1] >= 4 * ACCOUNT_DELAY_STEP  # the sixth: 6 failures for the account, 4 past the limit
    assert (await attempt("10.0.3.1", "alice", PASSWORD))[0] == 200


async def test_login_page_shows_the_throttle_message(make_client, settings, oauth_app, alice):
    client = await make_client(with_api(settings, login_failures_per_15min=1))
    assert (await authorize(client, oauth_app, password="guess")).status == 422
    response = await authorize(client, oauth_app)
    assert response.status == 429 and "15분" in await response.text()
