"""Migration 0011: bodies stored once, the Follow kept on the follow, and the indexes hot queries need."""

from __future__ import annotations

import json

from tests.support.database import just_before

ACTOR_COLUMNS = "uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem"


async def _actor(conn, name: str, local: bool = False) -> int:
    host = "shop.test" if local else "remote.example"
    return await conn.fetchval(
        f"INSERT INTO actors ({ACTOR_COLUMNS}) VALUES ($1, $2, $3, $4, 'Person', $5, $6, 'pem') RETURNING id",
        f"https://{host}/users/{name}", local, name, host, f"https://{host}/users/{name}/inbox",
        f"https://{host}/users/{name}#key")


async def test_the_migration_stores_each_body_once_and_keeps_received_follows(pg_cluster):
    async with just_before(pg_cluster, "jobs_retention") as (conn, migration):
        alice, bob, carol = await _actor(conn, "alice", True), await _actor(conn, "bob"), await _actor(conn, "carol")
        create = {"id": "https://shop.test/c/1", "type": "Create", "object": {"content": "<p>도자기</p>"}}
        for inbox in ("https://remote.example/inbox", "https://elsewhere.example/inbox", "https://third.example/i"):
            await conn.execute(
                """INSERT INTO deliveries (activity_uri, sender_id, inbox_uri, body, domain)
                   VALUES ($1, $2, $3, $4::jsonb, 'x')""", create["id"], alice, inbox, json.dumps(create))
        follow = {"id": "https://remote.example/f/1", "type": "Follow",
                  "actor": {"id": "https://remote.example/users/bob"},
                  "object": "https://shop.test/users/alice"}
        await conn.execute("""INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, body, state)
                              VALUES ($1, 'Follow', $2, $3::jsonb, 'done')""",
                           follow["id"], "https://remote.example/users/bob", json.dumps(follow))
        await conn.execute("INSERT INTO follows (follower_id, followee_id, activity_uri, state) "
                           "VALUES ($1, $2, $3, 'pending'), ($4, $2, 'https://remote.example/f/2', 'pending')",
                           bob, alice, follow["id"], carol)
        await conn.execute(migration.sql)
        bodies = await conn.fetch("SELECT activity_uri, body FROM delivery_bodies")
        assert [(b["activity_uri"], json.loads(b["body"])) for b in bodies] == [(create["id"], create)]
        assert await conn.fetchval("SELECT count(DISTINCT body_id) FROM deliveries") == 1
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 3
        kept = await conn.fetch("SELECT follower_id, activity FROM follows ORDER BY follower_id")
        assert [(r["follower_id"], r["activity"] and json.loads(r["activity"])) for r in kept] == [
            (bob, follow), (carol, None)]


def _uses(plan: list[str], index: str) -> bool:
    return any(index in line for line in plan)


async def test_hot_queries_use_their_indexes(pool):
    """With sequential scans priced out, each query's plan names its index (it would scan without one)."""
    queries = {
        "notifications_like": "DELETE FROM notifications WHERE like_id = 1",  # cascades of an undone like
        "notifications_announce": "DELETE FROM notifications WHERE announce_id = 1",
        "notifications_follow": "DELETE FROM notifications WHERE follow_id = 1",
        "notifications_object": "DELETE FROM notifications WHERE object_id = 1",
        "activities_object": "SELECT uri FROM activities WHERE object_uri = 'https://shop.test/s/1'",
        "actors_inbox": "UPDATE actors SET deleted_at = now() WHERE inbox_uri = 'https://r.example/inbox' "
                        "AND NOT is_local AND deleted_at IS NULL",  # a 410 Gone marks the inbox's owners
        "inbox_items_finished": "DELETE FROM inbox_items WHERE state <> 'queued' "
                                "AND finished_at < now() - interval '14 days'",
        "deliveries_finished": "DELETE FROM deliveries WHERE state <> 'queued' "
                               "AND finished_at < now() - interval '14 days'",
        "deliveries_body": "SELECT 1 FROM deliveries WHERE body_id = 1",
    }
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        for index, sql in queries.items():
            plan = [row[0] for row in await conn.fetch(f"EXPLAIN {sql}")]
            assert _uses(plan, index), (index, plan)


async def test_migration_0016_leaves_each_key_id_to_one_actor(pg_cluster):
    async with just_before(pg_cluster, "unique_key_ids") as (conn, migration):
        victim = await _actor(conn, "victim")
        impostor = await conn.fetchval(
            f"INSERT INTO actors ({ACTOR_COLUMNS}, fetched_at) VALUES ($1, false, 'eve', 'evil.example', 'Person', "
            "$2, $3, 'pem', now()) RETURNING id",
            "https://evil.example/users/eve", "https://evil.example/users/eve/inbox",
            "https://remote.example/users/victim#key")  # claims the victim's key, and was fetched later
        await conn.execute(migration.sql)
        keys = dict(await conn.fetch("SELECT id, key_id FROM actors"))
        assert keys == {victim: "https://remote.example/users/victim#key", impostor: f"invalid:{impostor}"}
        await conn.execute(f"INSERT INTO actors ({ACTOR_COLUMNS}) VALUES ('https://x.example/u', false, 'x', "
                           "'x.example', 'Person', 'https://x.example/i', 'https://remote.example/users/victim#key', "
                           "'pem') ON CONFLICT (key_id) DO NOTHING")
        assert await conn.fetchval("SELECT count(*) FROM actors") == 2  # the unique index refuses a second claim
