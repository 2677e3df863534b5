"""The planner-stats worker on real PostgreSQL: a table a burst has outgrown is analyzed at once,
one that changed a little is left to autovacuum, and one this role may not analyze is not named."""

from __future__ import annotations

import uuid

import asyncpg

from fedserver.jobs.planner_stats import refresh_outgrown
from tests.support.receivers import wait_for

ANALYZED = """SELECT s.n_mod_since_analyze, s.last_analyze IS NOT NULL AS analyzed, c.reltuples
              FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
              WHERE s.relname = $1 AND s.schemaname = current_schema()"""


async def _posts(pool, first: int, count: int) -> None:
    """`count` remote posts of one actor, committed, with their changes flushed to the statistics."""
    async with pool.acquire() as conn:
        actor = await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
               VALUES ('https://burst.example/u/kim', false, 'kim', 'burst.example', 'Person',
                       'https://burst.example/inbox', 'https://burst.example/u/kim#key', 'pem')
               ON CONFLICT (uri) DO UPDATE SET username = EXCLUDED.username RETURNING id""")
        await conn.execute(
            """INSERT INTO objects (uri, object_type, actor_id, is_local, content)
               SELECT 'https://burst.example/n/' || g, 'Note', $1, false, 'note ' || g
               FROM generate_series($2::int, $2::int + $3::int - 1) g""", actor, first, count)
        await conn.execute("SELECT pg_stat_force_next_flush()")


async def test_a_table_a_burst_outgrew_is_analyzed_and_only_once(pool):
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE objects")  # the planner's count before the burst: next to nothing
    await _posts(pool, 0, 5000)
    await wait_for(lambda: pool.fetchval("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                         "WHERE relname = 'objects' AND schemaname = current_schema()"),
                   10, "the burst in the statistics")
    before = await pool.fetchrow(ANALYZED, "objects")
    assert before["n_mod_since_analyze"] >= 5000 and before["reltuples"] < 100

    analyzed = await refresh_outgrown(pool)

    assert "objects" in analyzed
    after = await pool.fetchrow(ANALYZED, "objects")
    assert after["analyzed"] and after["n_mod_since_analyze"] == 0 and after["reltuples"] >= 5000
    assert "objects" not in await refresh_outgrown(pool)  # nothing changed since: left alone


async def test_a_table_that_changed_by_less_than_half_is_left_to_autovacuum(pool):
    await _posts(pool, 0, 4000)
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE objects")
    await _posts(pool, 4000, 1500)  # more than the minimum of 1,000 rows, less than half of 4,000 + 1,000
    await wait_for(lambda: pool.fetchval("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                         "WHERE relname = 'objects' AND schemaname = current_schema()"),
                   10, "the change in the statistics")

    assert "objects" not in await refresh_outgrown(pool)
    assert (await pool.fetchrow(ANALYZED, "objects"))["n_mod_since_analyze"] >= 1500
    assert "objects" in await refresh_outgrown(pool, share=0.1)  # a smaller share takes it


async def test_only_tables_this_role_may_analyze_are_named(db_url, pool):
    """PostgreSQL would only warn and skip another role's table, every 5 s, for as long as it stays changed."""
    role = f"fedserver_plain_{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as admin:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        plain = await asyncpg.create_pool(db_url, user=role, min_size=1, max_size=1)
        try:
            await plain.execute("CREATE TABLE own_rows (n int)")
            await admin.execute("CREATE TABLE strange_rows (n int)")  # the superuser's, as the migrated tables
            for table, conn in (("own_rows", plain), ("strange_rows", admin)):
                await conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 3000)")
                await conn.execute("SELECT pg_stat_force_next_flush()")
            await wait_for(lambda: admin.fetchval("SELECT count(*) = 2 FROM pg_stat_user_tables WHERE relname IN "
                                                  "('own_rows', 'strange_rows') AND n_mod_since_analyze >= 3000"),
                           10, "the rows in the statistics")

            assert await refresh_outgrown(plain) == ["own_rows"]  # not strange_rows, nor any migrated table
            assert "strange_rows" in await refresh_outgrown(pool)  # the owner (here a superuser) takes it
        finally:
            await plain.close()
            await admin.execute("DROP TABLE IF EXISTS own_rows, strange_rows")
            await admin.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
            await admin.execute(f"DROP ROLE {role}")
