"""The admin pages over real HTTP: login, sessions, the rewards alerts, resolving, logout, refusals."""

from __future__ import annotations

import pytest

from fedserver.accounts import create_account, set_role, validate_new_account
from fedserver.auth import ADMIN_AREA, hash_secret, start_session
from fedserver.config import load_settings
from rewards.store import insert_alert
from tests.api.conftest import PASSWORD, mint_token, with_api
from tests.api.forms import hidden_fields
from tests.support.admin import CSRF_COOKIE, SESSION_COOKIE, admin_login, resolvable

ALERTS = "/admin/rewards/alerts"
EN = {"Accept-Language": "en"}


@pytest.fixture
async def mira(pool, settings, alice):
    """An administrator (alice, from the API fixtures, is a regular user)."""
    return await create_account(pool, settings, validate_new_account(username="mira", password=PASSWORD,
                                                                     role="admin"))


async def _sessions(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM sessions")


async def _logged_in(client, name: str = "mira") -> str:
    response = await admin_login(client, name, PASSWORD)
    assert response.status == 303 and response.headers["Location"] == ALERTS, await response.text()
    return response.cookies[SESSION_COOKIE].value


async def test_the_login_form_works_without_javascript_behind_a_strict_csrf_cookie(client):
    assert (await client.get(ALERTS, allow_redirects=False)).headers["Location"] == "/admin/login"
    assert (await client.get("/admin", allow_redirects=False)).headers["Location"] == ALERTS
    response = await client.get("/admin/login")
    html = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert '<form method="post" action="/admin/login">' in html and "<script" not in html
    cookie = response.cookies[CSRF_COOKIE]
    assert hidden_fields(html)["csrf_token"] == cookie.value
    assert (cookie["httponly"], cookie["samesite"], cookie["path"], cookie["secure"]) == (True, "Strict", "/admin", "")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Frame-Options"] == "DENY"
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]


async def test_an_administrator_sees_the_alerts_newest_first_and_escaped(client, pool, mira):
    await insert_alert(pool, "peer.test/rewards/v1", "fork", "log forked: two checkpoints of size 4")
    await insert_alert(pool, "evil.test/rewards/v1", "rewrite", "<script>alert(1)</script> & <b>bold</b>")
    response = await admin_login(client, "mira", PASSWORD)
    assert response.status == 303 and response.headers["Location"] == ALERTS
    cookie = response.cookies[SESSION_COOKIE]
    assert (cookie["httponly"], cookie["samesite"], cookie["path"], cookie["max-age"]) == (True, "Strict", "/admin",
                                                                                          "43200")
    stored = await pool.fetchval("SELECT token_hash FROM sessions")
    assert bytes(stored) == hash_secret(cookie.value) and cookie.value.encode() not in bytes(stored)

    page = await client.get(ALERTS, headers=EN)
    html = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert html.index("evil.test/rewards/v1") < html.index("peer.test/rewards/v1")  # newest first
    assert "2 unresolved" in html and html.count("Unresolved") == 2 and "@mira" in html
    assert len(resolvable(html)) == 2


async def test_a_wrong_password_or_a_regular_user_gets_no_session(client, pool, mira, alice):
    for name, password in (("mira", "wrong password"), ("nobody", PASSWORD)):
        response = await admin_login(client, name, password)
        assert response.status == 422 and "비밀번호가 올바르지 않습니다" in await response.text()
        assert SESSION_COOKIE not in response.cookies
    response = await admin_login(client, "alice", PASSWORD)
    html = await response.text()
    assert response.status == 403 and SESSION_COOKIE not in response.cookies
    assert "@alice 계정은 이 인스턴스의 관리자가 아닙니다" in html
    assert "<code>fedserver account role alice admin</code>" in html
    page = await client.get("/admin/login")
    form = {**hidden_fields(await page.text()), "username": "mira", "password": PASSWORD}
    forged = {**form, "csrf_token": "x" * 43}
    assert (await client.post("/admin/login", data=forged, allow_redirects=False)).status == 403
    client.session.cookie_jar.clear()
    assert (await client.post("/admin/login", data=form, allow_redirects=False)).status == 403  # without its cookie
    assert await _sessions(pool) == 0
    assert (await client.get(ALERTS, allow_redirects=False)).status == 303


async def test_an_alert_raised_again_shows_once_with_its_count(client, pool, mira):
    for _ in range(3):
        await insert_alert(pool, "peer.test/rewards/v1", "fork", "log forked")
    await _logged_in(client)
    html = await (await client.get(ALERTS, headers=EN)).text()
    assert "1 unresolved" in html and "seen 3 times, last" in html and len(resolvable(html)) == 1


async def test_resolving_an_alert_takes_the_session_forms_csrf_token(client, pool, mira):
    await insert_alert(pool, "peer.test/rewards/v1", "fork", "log forked")
    await _logged_in(client)
    html = await (await client.get(ALERTS, headers=EN)).text()
    [alert_id] = resolvable(html)
    token = hidden_fields(html)["csrf_token"]
    resolve = f"{ALERTS}/{alert_id}/resolve"
    login_token = client.session.cookie_jar.filter_cookies(client.make_url("/admin/login"))[CSRF_COOKIE].value
    for forged in ({}, {"csrf_token": "x" * 64}, {"csrf_token": login_token}):
        response = await client.post(resolve, data=forged, allow_redirects=False)
        assert response.status == 403, forged
    assert await pool.fetchval("SELECT resolved_at FROM rewards_alerts") is None

    response = await client.post(resolve, data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"{ALERTS}#alert-{alert_id}"
    row = await pool.fetchrow("SELECT resolved_at, resolved_by FROM rewards_alerts")
    assert row["resolved_at"] is not None and row["resolved_by"] == mira.id
    html = await (await client.get(ALERTS, headers=EN)).text()
    assert "0 unresolved" in html and "by @mira" in html and resolvable(html) == []
    assert (await client.post(resolve, data={"csrf_token": token}, allow_redirects=False)).status == 303
    assert await pool.fetchval("SELECT resolved_at FROM rewards_alerts") == row["resolved_at"]
    assert (await client.post(f"{ALERTS}/999/resolve", data={"csrf_token": token})).status == 404


async def test_logout_ends_the_session_for_good(client, pool, mira):
    session = await _logged_in(client)
    html = await (await client.get(ALERTS)).text()
    assert (await client.post("/admin/logout", data={}, allow_redirects=False)).status == 403
    assert (await client.get(ALERTS)).status == 200  # a forged logout does nothing
    response = await client.post("/admin/logout", data={"csrf_token": hidden_fields(html)["csrf_token"]},
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    assert response.cookies[SESSION_COOKIE]["max-age"] == "0"
    assert await pool.fetchval("SELECT ended_at FROM sessions") is not None
    client.session.cookie_jar.clear()
    replayed = await client.get(ALERTS, headers={"Cookie": f"{SESSION_COOKIE}={session}"}, allow_redirects=False)
    assert replayed.status == 303 and replayed.headers["Location"] == "/admin/login"
    after = await client.post(f"{ALERTS}/1/resolve", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    assert after.status == 401


async def test_only_a_live_administrators_session_opens_the_page(client, pool, oauth_app, mira, alice):
    async def page(cookie: str) -> tuple[int, str]:
        client.session.cookie_jar.clear()
        response = await client.get(ALERTS, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, allow_redirects=False)
        return response.status, await response.text()

    users_session = await start_session(pool, ADMIN_AREA, alice.id)  # however it was made, it is not an admin's
    status, html = await page(users_session)
    assert status == 403 and "@alice 계정은 이 인스턴스의 관리자가 아닙니다" in html
    assert (await page(await mint_token(pool, oauth_app, alice.id)))[0] == 303  # an API token is no session
    assert (await page("x" * 5000))[0] == 303

    session = await _logged_in(client)
    assert (await page(session))[0] == 200
    await set_role(pool, "mira", "user")  # demoted: the session ends at once
    assert (await page(session))[0] == 303
    await set_role(pool, "mira", "admin")
    assert (await page(session))[0] == 303  # and stays ended
    session = await _logged_in(client)
    await pool.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    assert (await page(session))[0] == 303


async def test_failed_logins_are_limited_as_on_the_oauth_page(make_client, settings, pool, mira):
    client = await make_client(with_api(settings, login_failures_per_15min=1))
    assert (await admin_login(client, "mira", "guess")).status == 422
    response = await admin_login(client, "mira", PASSWORD)
    assert response.status == 429 and "15분" in await response.text()
    assert await _sessions(pool) == 0


async def test_cookies_are_secure_on_https(make_client, db_url, tmp_path, pool, mira):
    https = load_settings(environ={"FEDSERVER_INSTANCE__DOMAIN": "shop.test", "FEDSERVER_DATABASE__URL": db_url,
                                   "FEDSERVER_STORAGE__DATA_DIR": str(tmp_path / "data")})
    client = await make_client(https)
    page = await client.get("/admin/login")
    csrf = page.cookies[CSRF_COOKIE]
    assert csrf["secure"] is True
    form = {**hidden_fields(await page.text()), "username": "mira", "password": PASSWORD}
    response = await client.post("/admin/login", data=form, allow_redirects=False,
                                 headers={"Cookie": f"{CSRF_COOKIE}={csrf.value}"})  # http here: sent by hand
    assert response.status == 303 and response.cookies[SESSION_COOKIE]["secure"] is True


MODERATION = "/admin/moderation"


async def test_moderation_page_acts_on_domains_accounts_and_reports_with_the_csrf_token(client, pool, settings,
                                                                                        mira, alice):
    from fedserver.repo import moderation as moderation_repo

    async with pool.acquire() as conn:
        await moderation_repo.insert_report(conn, reporter_id=mira.id, target_id=alice.id, status_ids=[],
                                            comment="<b>rude</b>", category="other", rule_ids=[], forwarded=False,
                                            is_remote=False, flag_uri=None)
    assert (await client.get(MODERATION, allow_redirects=False)).headers["Location"] == "/admin/login"
    await _logged_in(client)
    html = await (await client.get(MODERATION, headers=EN)).text()
    assert "Open reports" in html and "&lt;b&gt;rude&lt;/b&gt;" in html and "<b>rude" not in html
    token = hidden_fields(html)["csrf_token"]
    forged = await client.post(f"{MODERATION}/domain", data={"domain": "spam.example", "action": "block"})
    assert forged.status == 403
    assert await pool.fetchval("SELECT count(*) FROM domain_moderation") == 0
    done = await client.post(f"{MODERATION}/domain", headers=EN, data={
        "csrf_token": token, "domain": "Spam.Example", "action": "block", "reason": "스팸"})
    assert done.status == 200 and "blocked spam.example" in await done.text()
    bad = await client.post(f"{MODERATION}/domain", headers=EN, data={
        "csrf_token": token, "domain": settings.instance.domain, "action": "block"})
    assert bad.status == 422 and "own domain" in await bad.text()
    silenced = await client.post(f"{MODERATION}/account", headers=EN, data={
        "csrf_token": token, "acct": "alice", "action": "silence", "reason": "noisy"})
    assert silenced.status == 200 and f"silenced alice@{settings.instance.domain}" in await silenced.text()
    unknown = await client.post(f"{MODERATION}/account", headers=EN, data={
        "csrf_token": token, "acct": "nobody@nowhere.example", "action": "suspend"})
    assert unknown.status == 422 and "no known account" in await unknown.text()
    report_id = await pool.fetchval("SELECT id FROM reports")
    resolved = await client.post(f"{MODERATION}/reports/{report_id}/resolve", headers=EN,
                                 data={"csrf_token": token, "reason": "talked"})
    assert resolved.status == 200 and "No open reports." in await resolved.text()
    log = await pool.fetch("SELECT moderator, action, target, reason FROM moderation_log ORDER BY id")
    assert [tuple(r) for r in log] == [
        ("admin:mira", "domain.block", "spam.example", "스팸"),
        ("admin:mira", "account.silence", alice.uri, "noisy"),
        ("admin:mira", "report.resolve", str(report_id), "talked")]
    # The about page publishes the block and its reason, in Korean by default.
    about = await (await client.get("/about")).text()
    assert "spam.example" in about and "차단됨" in about and "스팸" in about
