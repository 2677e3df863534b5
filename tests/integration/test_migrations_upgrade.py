"""Upgrades: a database left at any earlier schema migrates to exactly the schema of a new one.

The project has no tagged releases yet, so every earlier schema is every prefix of the migration
list: a release can only ever have shipped one of them. For each, the schema after `migrate` must
equal, column for column, index for index and constraint for constraint, the schema migrated from
nothing; and `migrate` run again changes nothing.
"""

from __future__ import annotations

import asyncpg

from fedserver.db import load_migrations, migrate

SCHEMA = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
                  FROM information_schema.columns WHERE table_schema = 'public'""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = 'public'::regnamespace""",
    "functions": """SELECT proname, pg_get_function_identity_arguments(oid), md5(prosrc) FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace""",
    "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal",
    "sequences": "SELECT sequence_name, data_type FROM information_schema.sequences WHERE sequence_schema = 'public'",
}


async def _schema(conn: asyncpg.Connection) -> dict[str, set[tuple]]:
    return {name: {tuple(row) for row in await conn.fetch(query)} for name, query in SCHEMA.items()}


async def test_every_earlier_schema_migrates_to_the_schema_of_a_new_database(pg_cluster):
    migrations = load_migrations()
    url = await pg_cluster.create_empty_database()
    try:
        conn = await asyncpg.connect(url)
        try:
            assert len(await migrate(conn)) == len(migrations)
            head = await _schema(conn)
        finally:
            await conn.close()
    finally:
        await pg_cluster.drop_database(url)
    assert head["columns"] and head["indexes"]

    for applied in range(1, len(migrations)):
        url = await pg_cluster.create_empty_database()
        conn = await asyncpg.connect(url)
        try:
            # What an earlier release left: its migrations applied and recorded, as `migrate` records them.
            await conn.execute("""CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                                  checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
            for migration in migrations[:applied]:
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   migration.version, migration.name, migration.checksum)
            upgraded = await migrate(conn)
            assert [m.version for m in upgraded] == [m.version for m in migrations[applied:]]
            after = await _schema(conn)
            for part in SCHEMA:
                assert after[part] == head[part], (
                    f"from {migrations[applied - 1].version:04d}: {part} differ: "
                    f"missing {sorted(head[part] - after[part])[:3]}, extra {sorted(after[part] - head[part])[:3]}")
            assert await migrate(conn) == []
        finally:
            await conn.close()
            await pg_cluster.drop_database(url)
