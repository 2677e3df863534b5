"""What a new post or boost streams, read off real PostgreSQL NOTIFY: the `home` events name exactly the
timelines the fan-out wrote (split so no payload passes PostgreSQL's 8,000-byte limit), a public post also
streams `public`, a direct one is marked direct, and nothing is sent when the transaction rolls back."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from fedserver.federation import feeds
from fedserver.repo.stream_events import CHANNEL

FOLLOWERS = 3000  # ids of four digits: 1,400 to an event, so three events for one post


async def _actors(conn: asyncpg.Connection, prefix: str, count: int, *, local: bool) -> list[int]:
    host = "localhost" if local else "remote.example"
    rows = await conn.fetch(
        """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
           SELECT 'https://' || $3 || '/users/' || $1 || n, $4, $1 || n, $3, 'Person',
                  'https://' || $3 || '/users/' || $1 || n || '/inbox',
                  'https://' || $3 || '/users/' || $1 || n || '#k', 'pem'
           FROM generate_series(1, $2) AS n ORDER BY n RETURNING id""",
        prefix, count, host, local)
    return [row["id"] for row in rows]


async def _follow(conn: asyncpg.Connection, followers: list[int], followee: int) -> None:
    await conn.execute("""INSERT INTO follows (follower_id, followee_id, state)
                          SELECT f, $2, 'accepted' FROM unnest($1::bigint[]) AS f""", followers, followee)


async def _post(conn: asyncpg.Connection, author: int, uri: str, visibility: str = "public") -> int:
    return await conn.fetchval("""INSERT INTO objects (uri, object_type, actor_id, is_local, content, visibility)
                                  VALUES ($1, 'Note', $2, false, '<p>hi</p>', $3) RETURNING id""",
                               uri, author, visibility)


async def _events(pool: asyncpg.Pool, write) -> list[dict]:
    """The stream events sent while `write(conn)` runs in a transaction that commits (or raises)."""
    events: list[dict] = []

    def heard(*args: object) -> None:
        events.append(json.loads(str(args[3])))

    listener = await pool.acquire()
    await listener.add_listener(CHANNEL, heard)
    try:
        try:
            async with pool.acquire() as conn, conn.transaction():
                await write(conn)
        except RuntimeError:
            pass
        for _ in range(20):  # notifications arrive right after the commit
            count = len(events)
            await asyncio.sleep(0.05)
            if count and len(events) == count:
                break
    finally:
        await listener.remove_listener(CHANNEL, heard)
        await pool.release(listener)
    return events


async def test_a_post_with_thousands_of_followers_streams_home_events_that_fit_and_cover_them(pool):
    async with pool.acquire() as conn:
        (author,) = await _actors(conn, "author", 1, local=False)
        followers = await _actors(conn, "reader", FOLLOWERS, local=True)
        await _follow(conn, followers, author)
        post = await _post(conn, author, "https://remote.example/notes/1")

    events = await _events(pool, lambda conn: feeds.posts_stored(conn, [(post, [], [])]))

    home = [e for e in events if e["k"] == "home"]
    assert len(home) == 3, [len(e["a"]) for e in home]
    assert all(e["e"] == post and e["o"] == post and e["d"] is False for e in home)
    assert sorted(a for e in home for a in e["a"]) == sorted(followers)
    assert max(len(json.dumps(e, separators=(",", ":"))) for e in home) < 8000
    assert [e for e in events if e["k"] == "public"] == [{"k": "public", "o": post, "l": False}]


async def test_a_direct_post_streams_only_to_the_mentioned_and_is_marked_direct(pool):
    async with pool.acquire() as conn:
        (author,) = await _actors(conn, "dm-author", 1, local=False)
        reader, other = await _actors(conn, "dm-reader", 2, local=True)
        await _follow(conn, [reader, other], author)
        post = await _post(conn, author, "https://remote.example/notes/dm", "direct")
        uri = await conn.fetchval("SELECT uri FROM actors WHERE id = $1", reader)

    events = await _events(pool, lambda conn: feeds.posts_stored(conn, [(post, [uri], [])]))

    assert [e for e in events if e["k"] == "home"] == [{"k": "home", "e": post, "o": post, "a": [reader], "d": True}]
    assert not [e for e in events if e["k"] == "public"]


async def test_a_boost_streams_to_the_boosters_followers_only(pool):
    async with pool.acquire() as conn:
        author, booster = await _actors(conn, "boost-actor", 2, local=False)
        readers = await _actors(conn, "boost-reader", 2, local=True)
        await _follow(conn, readers, booster)
        (bystander,) = await _actors(conn, "boost-author-fan", 1, local=True)
        await _follow(conn, [bystander], author)
        post = await _post(conn, author, "https://remote.example/notes/boosted")
        announce = await conn.fetchval(
            """INSERT INTO announces (actor_id, object_uri, activity_uri)
               VALUES ($1, 'https://remote.example/notes/boosted', 'https://remote.example/boosts/1') RETURNING id""",
            booster)

    events = await _events(pool, lambda conn: feeds.announce_stored(conn, "https://remote.example/boosts/1"))

    assert [e for e in events if e["k"] == "home"] == [
        {"k": "home", "e": announce, "o": post, "a": sorted(readers), "d": False}]


async def test_nothing_is_streamed_when_the_transaction_rolls_back(pool):
    async with pool.acquire() as conn:
        (author,) = await _actors(conn, "rb-author", 1, local=False)
        readers = await _actors(conn, "rb-reader", 2, local=True)
        await _follow(conn, readers, author)
        post = await _post(conn, author, "https://remote.example/notes/rolled-back")

    async def write_then_fail(conn: asyncpg.Connection) -> None:
        await feeds.posts_stored(conn, [(post, [], [])])
        assert await conn.fetchval("SELECT count(*) FROM home_feed WHERE entry_id = $1", post) == 2
        raise RuntimeError("the transaction fails after the fan-out")

    assert await _events(pool, write_then_fail) == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM home_feed WHERE entry_id = $1", post) == 0
