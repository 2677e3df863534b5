"""Sessions of `fedserver.auth`: one table for every area, and a session opens only its own area."""

from __future__ import annotations

import asyncpg
import pytest

from fedserver.accounts import create_account, set_role, validate_new_account
from fedserver.auth import (
    ADMIN_AREA,
    SITE_AREA,
    Session,
    end_session,
    find_session,
    hash_secret,
    start_session,
)
from fedserver.db import load_migrations
from fedserver.repo import sessions as sessions_repo
from tests.api.conftest import PASSWORD
from tests.support.admin import SESSION_COOKIE
from tests.support.database import just_before

ALERTS = "/admin/rewards/alerts"


@pytest.fixture
async def mira(pool, settings):
    """An administrator."""
    return await create_account(pool, settings, validate_new_account(username="mira", password=PASSWORD,
                                                                     role="admin"))


async def test_a_session_opens_only_the_area_it_was_started_in(pool, mira):
    admin_token = await start_session(pool, ADMIN_AREA, mira.id)
    site_token = await start_session(pool, SITE_AREA, mira.id)
    assert (await find_session(pool, ADMIN_AREA, admin_token)).area == "admin"
    assert (await find_session(pool, SITE_AREA, site_token)).area == "site"
    assert await find_session(pool, SITE_AREA, admin_token) is None
    assert await find_session(pool, ADMIN_AREA, site_token) is None
    await end_session(pool, SITE_AREA, admin_token)  # a logout in another area ends nothing here
    assert await find_session(pool, ADMIN_AREA, admin_token) is not None
    rows = await pool.fetch("SELECT area, token_hash FROM sessions ORDER BY id")
    assert [(r["area"], bytes(r["token_hash"])) for r in rows] == [
        ("admin", hash_secret(admin_token)), ("site", hash_secret(site_token))]


async def test_forms_of_two_areas_carry_different_csrf_tokens(pool, mira):
    token = await start_session(pool, ADMIN_AREA, mira.id)
    admin = await find_session(pool, ADMIN_AREA, token)
    site = Session(admin.token, "site", admin.account_id, admin.username, admin.role)
    assert admin.csrf_token != site.csrf_token and len(admin.csrf_token) == 64
    assert admin.form_matches({"csrf_token": admin.csrf_token})
    assert not admin.form_matches({"csrf_token": site.csrf_token}) and not admin.form_matches({})


async def test_a_site_session_of_an_administrator_does_not_open_the_admin_pages(client, pool, mira):
    site_token = await start_session(pool, SITE_AREA, mira.id)
    response = await client.get(ALERTS, headers={"Cookie": f"{SESSION_COOKIE}={site_token}"}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    client.session.cookie_jar.clear()
    admin_token = await start_session(pool, ADMIN_AREA, mira.id)
    response = await client.get(ALERTS, headers={"Cookie": f"{SESSION_COOKIE}={admin_token}"}, allow_redirects=False)
    assert response.status == 200


async def test_demoting_an_administrator_ends_only_the_admin_sessions(pool, mira):
    admin_token = await start_session(pool, ADMIN_AREA, mira.id)
    site_token = await start_session(pool, SITE_AREA, mira.id)
    await set_role(pool, "mira", "user")
    assert await find_session(pool, ADMIN_AREA, admin_token) is None
    site = await find_session(pool, SITE_AREA, site_token)
    assert site is not None and not site.is_admin


async def test_the_migration_keeps_admin_sessions_as_sessions_of_the_admin_area(pg_cluster):
    async with just_before(pg_cluster, "sessions") as (conn, sessions):
        actor_id = await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
               VALUES ('https://shop.test/users/mira', true, 'mira', 'shop.test', 'Person',
                       'https://shop.test/users/mira/inbox', 'https://shop.test/users/mira#main-key', 'pem')
               RETURNING id""")
        await conn.execute("INSERT INTO local_accounts (actor_id, private_key_pem, role) VALUES ($1, 'pem', 'admin')",
                           actor_id)
        await conn.execute("""INSERT INTO admin_sessions (token_hash, account_id, expires_at)
                              VALUES ($1, $2, now() + interval '1 hour')""", hash_secret("old"), actor_id)
        await conn.execute(sessions.sql)
        assert await conn.fetchval("SELECT area FROM sessions") == "admin"
        for later in (m for m in load_migrations() if m.version > sessions.version):  # today's code, today's schema
            await conn.execute(later.sql)
        assert await sessions_repo.get_live_session(conn, hash_secret("old"), "admin") is not None
        assert await sessions_repo.get_live_session(conn, hash_secret("old"), "site") is None
        with pytest.raises(asyncpg.NotNullViolationError, match="area"):  # every new session names its area
            await conn.execute("INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, now())",
                               hash_secret("new"), actor_id)
