"""Accounts and migrations against real PostgreSQL: no half-created state on any refusal."""

from __future__ import annotations

import asyncpg
import pytest

from fedserver.accounts import (
    AccountError, create_account, delete_account, ensure_instance_actor, set_role, validate_new_account,
)
from fedserver.db import DatabaseError, load_migrations, migrate
from fedserver.passwords import verify_password


async def _counts(pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM actors"), await conn.fetchval("SELECT count(*) FROM local_accounts")


async def test_create_account_stores_keys_and_password_hash(pool, settings):
    actor = await create_account(pool, settings, validate_new_account(
        username="potter", display_name="도자기 공방", kind="organization", password="a long password"))
    assert actor.actor_type == "Organization"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT private_key_pem, password_hash FROM local_accounts WHERE actor_id = $1",
                                  actor.id)
    assert row["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
    assert verify_password("a long password", row["password_hash"])


@pytest.mark.parametrize("name", ["Alice", "ALICE", "alice"])
async def test_duplicate_names_are_refused_case_insensitively(pool, settings, name):
    await create_account(pool, settings, validate_new_account(username="alice"))
    before = await _counts(pool)
    with pytest.raises(AccountError, match="already taken"):
        await create_account(pool, settings, validate_new_account(username=name))
    assert await _counts(pool) == before


@pytest.mark.parametrize("name", ["", "a b", "alice!", "x" * 31, "한글", "inbox", "actor", "../etc"])
def test_invalid_names_are_refused_before_anything_is_written(name):
    with pytest.raises(AccountError, match="invalid account"):
        validate_new_account(username=name)


def test_short_password_is_refused():
    with pytest.raises(AccountError, match="password"):
        validate_new_account(username="alice", password="short")


async def test_name_of_the_instance_actor_is_reserved(pool, settings):
    """On a host without dots (e.g. `workshop:8000`) the instance actor's name is a valid user name."""
    local = settings.model_copy(update={"instance": settings.instance.model_copy(update={"domain": "workshop:8000"})})
    await ensure_instance_actor(pool, local)
    before = await _counts(pool)
    with pytest.raises(AccountError, match="reserved for the instance actor"):
        await create_account(pool, local, validate_new_account(username="Workshop"))
    assert await _counts(pool) == before


async def test_deleted_name_stays_reserved(pool, settings, publisher):
    await create_account(pool, settings, validate_new_account(username="gone"))
    await delete_account(pool, publisher, "gone")
    with pytest.raises(AccountError, match="deleted account"):
        await create_account(pool, settings, validate_new_account(username="gone"))
    with pytest.raises(AccountError, match="already deleted"):
        await delete_account(pool, publisher, "gone")
    with pytest.raises(AccountError, match="no account"):
        await delete_account(pool, publisher, "never")


async def _role(pool, actor_id: int) -> str:
    return await pool.fetchval("SELECT role FROM local_accounts WHERE actor_id = $1", actor_id)


async def test_accounts_are_made_administrators_and_back(pool, settings):
    mira = await create_account(pool, settings, validate_new_account(username="mira", role="admin"))
    bob = await create_account(pool, settings, validate_new_account(username="bob"))
    assert (await _role(pool, mira.id), await _role(pool, bob.id)) == ("admin", "user")
    await set_role(pool, "BOB", "admin")
    await set_role(pool, "mira", "user")
    assert (await _role(pool, mira.id), await _role(pool, bob.id)) == ("user", "admin")


async def test_role_changes_are_refused_for_unknown_deleted_or_instance_accounts(pool, settings, publisher):
    with pytest.raises(AccountError, match="invalid account: role"):
        validate_new_account(username="eve", role="instance")
    instance = await ensure_instance_actor(pool, settings)
    await create_account(pool, settings, validate_new_account(username="gone"))
    await delete_account(pool, publisher, "gone")
    with pytest.raises(AccountError, match="no account named 'never'"):
        await set_role(pool, "never", "admin")
    with pytest.raises(AccountError, match="the account 'gone' is deleted"):
        await set_role(pool, "gone", "admin")
    with pytest.raises(AccountError, match="no account named"):
        await set_role(pool, instance.username, "admin")
    with pytest.raises(AccountError, match="must be one of user, admin"):
        await set_role(pool, "gone", "instance")
    assert await _role(pool, instance.id) == "instance"
    assert await pool.fetchval("SELECT count(*) FROM local_accounts WHERE role = 'admin'") == 0


async def test_instance_actor_is_created_once_and_follows_the_domain(pool, settings):
    first = await ensure_instance_actor(pool, settings)
    again = await ensure_instance_actor(pool, settings)
    assert first.id == again.id and first.actor_type == "Application"
    moved = settings.model_copy(update={"instance": settings.instance.model_copy(update={"domain": "new.test"})})
    renamed = await ensure_instance_actor(pool, moved)
    assert renamed.id == first.id
    assert renamed.uri == "https://new.test/actor" and renamed.username == "new.test"


async def test_migrations_are_recorded_and_a_second_run_applies_nothing(pg_cluster):
    url = await pg_cluster.create_empty_database()
    try:
        conn = await asyncpg.connect(url)
        try:
            applied = await migrate(conn)
            assert [m.version for m in applied] == [m.version for m in load_migrations()]
            assert await migrate(conn) == []
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
            assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in load_migrations()]
        finally:
            await conn.close()
    finally:
        await pg_cluster.drop_database(url)


async def test_an_edited_applied_migration_is_refused(pool):
    async with pool.acquire() as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1")
        with pytest.raises(DatabaseError, match="0001_initial.sql was edited after it was applied"):
            await migrate(conn)


async def test_a_migration_unknown_to_this_release_is_refused(pool):
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
        with pytest.raises(DatabaseError, match="newer release"):
            await migrate(conn)
