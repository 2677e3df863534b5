"""A sender's run of Creates is processed as one batch: in order, one bad activity failing alone,
and nothing lost or doubled when the server is killed with -9 in the middle of a batch.

Activities arrive over real HTTP with real signatures and are processed by the inbox worker's
own loop (`InboxWorker.run`), or by a real `fedserver run` process for the kill.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import aiohttp
import pytest

from fedserver.app import build_dispatcher, build_publisher
from fedserver.federation.keys import instance_signer
from fedserver.federation.processing import InboxWorker
from fedserver.net.http import HttpClient
from fedserver.runtime import Runtime
from tests.conftest import TEST_DOMAIN
from tests.support.instance import Instance, free_port, instance_env
from tests.support.receivers import wait_for
from tests.support.remote import RemoteServer, signed_post

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"
ALICE = f"https://{TEST_DOMAIN}/users/alice"


@pytest.fixture
async def remote():
    server = await RemoteServer().start()
    server.add_actor("bob")
    yield server
    await server.close()


def _create(keys, n: int, **note) -> dict:
    note_id = f"{keys.uri}/notes/{n}"
    return {"@context": AS, "id": f"{keys.uri}/creates/{n}", "type": "Create", "actor": keys.uri, "to": [PUBLIC],
            "object": {"id": note_id, "type": "Note", "attributedTo": keys.uri, "to": [PUBLIC],
                       "content": f"<p>note {n}</p>", **note}}


async def _send(client, keys, activities: list[dict]) -> None:
    for activity in activities:
        body = json.dumps(activity).encode()
        response = await client.post("/inbox", data=body,
                                     headers=signed_post(keys, "/inbox", f"127.0.0.1:{client.port}", body))
        assert response.status == 202, await response.text()


async def _alice_follows(pool, actor_uri: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, state)
               SELECT (SELECT id FROM actors WHERE uri = $1), id, 'accepted' FROM actors WHERE uri = $2""",
            ALICE, actor_uri)


async def _work(pool, settings, expected: int) -> list[list[int]]:
    """Run the inbox worker's loop until `expected` rows are finished; the ids of each batch it ran."""
    batches: list[list[int]] = []
    async with HttpClient(settings) as http:
        runtime = Runtime(settings, pool, http, await instance_signer(pool, settings), build_publisher(settings),
                          build_dispatcher())
        worker = InboxWorker(runtime)

        async def spy(items, prepared):
            batches.append([item.id for item in items])
            return await worker.process_batch(items, prepared)

        worker.jobs.options = replace(worker.jobs.options, run_batch=spy)

        async def finished() -> bool:
            return await pool.fetchval("SELECT count(*) FROM inbox_items WHERE state <> 'queued'") >= expected

        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await wait_for(finished, 30, f"{expected} inbox rows to be finished", interval=0.05)
        finally:
            stop.set()
            await task
    return batches


async def _states(pool) -> list[tuple[str, str]]:
    return [(r["activity_uri"], r["state"]) for r in await pool.fetch(
        "SELECT activity_uri, state FROM inbox_items ORDER BY id")]


async def _bob_known_and_followed(fed_client, pool, bob) -> None:
    """Bob's first activity (a Like of nothing here) stores him, with his key; alice follows him."""
    await _send(fed_client, bob, [{"@context": AS, "id": f"{bob.uri}/likes/0", "type": "Like", "actor": bob.uri,
                                   "object": f"{bob.uri}/notes/elsewhere"}])
    await _alice_follows(pool, bob.uri)


async def _home(pool) -> list[str]:
    return [r["uri"] for r in await pool.fetch(
        """SELECT o.uri FROM home_feed h JOIN objects o ON o.id = h.object_id
           WHERE h.account_id = (SELECT id FROM actors WHERE uri = $1) ORDER BY h.entry_id""", ALICE)]


async def test_a_senders_run_is_stored_in_batches_in_arrival_order(fed_client, fed_settings, pool, remote):
    bob = remote.actors["bob"]
    await _bob_known_and_followed(fed_client, pool, bob)
    run = [_create(bob, n) for n in range(1, 11)]
    run[6]["object"]["inReplyTo"] = f"{bob.uri}/notes/5"  # a reply to a post of the same batch
    run[8]["object"]["to"] = [f"{bob.uri}/followers"]  # followers-only: stored, never searchable
    edit = {"@context": AS, "id": f"{bob.uri}/updates/3", "type": "Update", "actor": bob.uri, "to": [PUBLIC],
            "object": {**run[2]["object"], "content": "<p>note 3, edited</p>"}}
    again = {**_create(bob, 3), "id": f"{bob.uri}/creates/3-again"}  # the same note once more: stored once
    later = [_create(bob, n) for n in range(11, 16)]
    await _send(fed_client, bob, [*run, edit, again, *later])
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM inbox_items ORDER BY id")]

    batches = await _work(pool, fed_settings, expected=len(ids))

    # Creates 1-10 are one batch; the Update (no batch handler) runs alone after them, so it
    # finds note 3 stored; the Creates after it are a second batch.
    assert batches == [ids[1:11], ids[12:18]]
    assert [s for _, s in await _states(pool)] == ["ignored"] + ["done"] * 17
    rows = await pool.fetch("""SELECT uri, content, in_reply_to_uri, visibility FROM objects
                               WHERE actor_id = (SELECT id FROM actors WHERE uri = $1) ORDER BY id""", bob.uri)
    expected = [f"{bob.uri}/notes/{n}" for n in range(1, 16)]
    assert [r["uri"] for r in rows] == expected  # stored once each, ids in arrival order
    by_uri = {r["uri"]: r for r in rows}
    assert by_uri[f"{bob.uri}/notes/3"]["content"] == "<p>note 3, edited</p>"
    assert by_uri[f"{bob.uri}/notes/7"]["in_reply_to_uri"] == f"{bob.uri}/notes/5"
    assert await _home(pool) == expected
    assert by_uri[f"{bob.uri}/notes/9"]["visibility"] == "private"
    indexed = {r["uri"] for r in await pool.fetch("SELECT o.uri FROM post_search s JOIN objects o ON o.id = s.object_id "
                                                  "WHERE o.uri LIKE $1", f"{bob.uri}/notes/%")}
    assert indexed == set(expected) - {f"{bob.uri}/notes/9"}


async def test_posts_of_a_sender_nobody_follows_are_kept_in_a_batch_only_when_they_concern_someone_here(
        fed_client, fed_settings, pool, remote):
    bob = remote.actors["bob"]
    await _send(fed_client, bob, [{"@context": AS, "id": f"{bob.uri}/likes/0", "type": "Like", "actor": bob.uri,
                                   "object": f"{bob.uri}/notes/elsewhere"}])  # bob known, and followed by nobody
    local_post = f"https://{TEST_DOMAIN}/users/alice/statuses/1"
    await pool.execute("""INSERT INTO objects (uri, object_type, actor_id, is_local, content, visibility)
                          SELECT $1, 'Note', id, true, '<p>hi</p>', 'public' FROM actors WHERE uri = $2""",
                       local_post, ALICE)
    run = [_create(bob, 1), _create(bob, 2, tag=[{"type": "Mention", "href": ALICE}]), _create(bob, 3, cc=[ALICE]),
           _create(bob, 4, inReplyTo=local_post), _create(bob, 5, inReplyTo=f"{bob.uri}/notes/1"),
           _create(bob, 6, cc=[f"https://{TEST_DOMAIN}/users/nobody"])]
    await _send(fed_client, bob, run)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM inbox_items ORDER BY id")]

    batches = await _work(pool, fed_settings, expected=len(ids))

    assert batches == [ids[1:]]
    states = await pool.fetch("SELECT state, last_error FROM inbox_items ORDER BY id")
    assert [r["state"] for r in states[1:]] == ["ignored", "done", "done", "done", "ignored", "ignored"]
    assert states[1]["last_error"] == "nobody here follows or is addressed"
    stored = {r["uri"] for r in await pool.fetch("SELECT uri FROM objects WHERE NOT is_local")}
    assert stored == {f"{bob.uri}/notes/{n}" for n in (2, 3, 4)}


async def test_likes_of_several_senders_are_one_batch_counted_once_each_and_notified(fed_client, fed_settings, pool,
                                                                                   remote):
    bob, carol = remote.actors["bob"], remote.add_actor("carol")
    local_post = f"https://{TEST_DOMAIN}/users/alice/statuses/1"
    await pool.execute("""INSERT INTO objects (uri, object_type, actor_id, is_local, content, visibility)
                          SELECT $1, 'Note', id, true, '<p>hi</p>', 'public' FROM actors WHERE uri = $2""",
                       local_post, ALICE)

    def like(keys, n: int, obj: str) -> dict:
        return {"@context": AS, "id": f"{keys.uri}/likes/{n}", "type": "Like", "actor": keys.uri, "object": obj}

    await _send(fed_client, bob, [like(bob, 1, local_post), like(bob, 2, f"{bob.uri}/notes/elsewhere")])
    await _send(fed_client, carol, [like(carol, 1, local_post)])
    await _send(fed_client, bob, [like(bob, 3, local_post)])  # bob likes it again: counted once
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM inbox_items ORDER BY id")]

    batches = await _work(pool, fed_settings, expected=len(ids))

    assert batches == [ids]
    states = await pool.fetch("SELECT state, last_error FROM inbox_items ORDER BY id")
    assert [r["state"] for r in states] == ["done", "ignored", "done", "done"]
    assert states[1]["last_error"] == "likes count only on local posts"
    likes = await pool.fetch("SELECT activity_uri FROM likes WHERE object_uri = $1 ORDER BY id", local_post)
    assert [r["activity_uri"] for r in likes] == [f"{bob.uri}/likes/1", f"{carol.uri}/likes/1"]
    notified = await pool.fetch(
        """SELECT a.uri FROM notifications n JOIN actors a ON a.id = n.from_id
           WHERE n.type = 'favourite' AND n.account_id = (SELECT id FROM actors WHERE uri = $1) ORDER BY n.id""", ALICE)
    assert [r["uri"] for r in notified] == [bob.uri, carol.uri]


POISON = """CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.content LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned post %', NEW.uri; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER poison BEFORE INSERT ON objects FOR EACH ROW EXECUTE FUNCTION poison();"""


async def test_a_poisoned_activity_fails_alone_and_the_rest_of_its_batch_is_stored(fed_client, fed_settings, pool,
                                                                                   remote):
    bob = remote.actors["bob"]
    await _bob_known_and_followed(fed_client, pool, bob)
    await pool.execute(POISON)  # the database refuses one post: the batch's one transaction fails as a whole
    run = [_create(bob, n) for n in range(1, 9)]
    run[4]["object"]["content"] = "<p>poison</p>"
    await _send(fed_client, bob, run)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM inbox_items ORDER BY id")]

    batches = await _work(pool, fed_settings, expected=len(ids))

    assert batches == [ids[1:9]]  # tried once as a batch, then each activity alone
    states = await pool.fetch("SELECT state, last_error FROM inbox_items ORDER BY id")
    assert [r["state"] for r in states[1:]] == ["done"] * 4 + ["failed"] + ["done"] * 3
    assert "internal error" in states[5]["last_error"]
    assert await _home(pool) == [f"{bob.uri}/notes/{n}" for n in (1, 2, 3, 4, 6, 7, 8)]


BURST = 3000


@pytest.fixture
def instance(db_url, tmp_path) -> Instance:
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port, extra={
        "FEDSERVER_FEDERATION__INBOX_LEASE_SECONDS": "3", "FEDSERVER_LOGGING__LEVEL": "warning"})
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    yield inst
    inst.kill()


async def _deliver(session: aiohttp.ClientSession, url: str, keys, activity: dict) -> None:
    """POST until answered 202, as a remote server retries while this one is down."""
    body = json.dumps(activity).encode()
    host = url.split("/")[2]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            async with session.post(url, data=body, headers=signed_post(keys, "/inbox", host, body)) as response:
                if response.status == 202:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{activity['id']} was never accepted")


@pytest.mark.slow
async def test_kill_9_in_the_middle_of_a_batch_loses_nothing_and_doubles_nothing(instance, pool, remote):
    bob = remote.actors["bob"]
    created = await asyncio.to_thread(instance.command, "account", "create", "alice")
    assert created.returncode == 0, created.stderr
    await asyncio.to_thread(instance.start)
    alice = f"{instance.base_url}/users/alice"
    mention = {"type": "Mention", "href": alice, "name": f"@alice@127.0.0.1:{instance.port}"}
    burst = [_create(bob, n, cc=[alice], tag=[mention]) for n in range(BURST)]
    for activity in burst:
        activity["cc"] = [alice]
    url = f"{instance.base_url}/inbox"

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        # bob becomes known (his key is fetched) by a Delete of a note never seen, and alice follows him
        # before his first Create arrives: a Create handled before the follow would reach no home timeline.
        unknown = {"@context": AS, "id": f"{bob.uri}/deletes/0", "type": "Delete", "actor": bob.uri, "to": [PUBLIC],
                   "object": f"{bob.uri}/notes/never"}
        await _deliver(session, url, bob, unknown)
        await wait_for(lambda: _count(pool, "SELECT count(*) FROM actors WHERE uri = $1", bob.uri), 20, "bob stored")
        await pool.execute(
            """INSERT INTO follows (follower_id, followee_id, state)
               SELECT (SELECT id FROM actors WHERE uri = $1), id, 'accepted' FROM actors WHERE uri = $2""",
            alice, bob.uri)
        queue: asyncio.Queue = asyncio.Queue()
        for activity in burst:
            queue.put_nowait(activity)

        async def sender() -> None:
            while not queue.empty():
                await _deliver(session, url, bob, queue.get_nowait())

        senders = [asyncio.create_task(sender()) for _ in range(16)]
        # Killed once the first activities are done and a batch is in hand (rows leased). The batch may
        # still commit between that look and the kill: then the kill missed it, and it is tried again.
        kills = 0
        while True:
            await wait_for(lambda: _count(pool, """SELECT count(*) FILTER (WHERE state = 'done') >= 300
                                                          AND count(*) FILTER (WHERE state = 'queued'
                                                                               AND locked_until > now()) >= 2
                                                   FROM inbox_items"""), 60,
                           "the first activities processed and a batch in hand", interval=0.01)
            instance.kill()
            kills += 1
            leased = await pool.fetchval(
                "SELECT count(*) FROM inbox_items WHERE state = 'queued' AND locked_until > now()")
            finished_at_kill = await pool.fetchval("SELECT count(*) FROM inbox_items WHERE state <> 'queued'")
            await asyncio.to_thread(instance.start)
            if leased >= 2 or kills == 3:
                break
        await asyncio.gather(*senders)

    await wait_for(lambda: _count(pool, """SELECT count(*) = $1 FROM inbox_items
                                           WHERE state = 'done' AND activity_type = 'Create'""", BURST), 90,
                   "every activity processed after the restart", interval=0.2)
    assert leased >= 2, "the kill did not land while a batch was in hand"
    assert finished_at_kill < BURST, "the kill came after the whole burst was processed"
    notes = {f"{bob.uri}/notes/{n}" for n in range(BURST)}
    counts = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM inbox_items WHERE activity_type = 'Create') AS inbox,
                  (SELECT count(*) FROM objects WHERE uri = ANY($1::text[])) AS objects,
                  (SELECT count(*) FROM home_feed h JOIN objects o ON o.id = h.object_id
                    WHERE o.uri = ANY($1::text[])) AS home,
                  (SELECT count(DISTINCT h.object_id) FROM home_feed h JOIN objects o ON o.id = h.object_id
                    WHERE o.uri = ANY($1::text[])) AS home_distinct,
                  (SELECT count(*) FROM notifications n JOIN objects o ON o.id = n.object_id
                    WHERE n.type = 'mention' AND o.uri = ANY($1::text[])) AS mentions,
                  (SELECT count(*) FROM post_search s JOIN objects o ON o.id = s.object_id
                    WHERE o.uri = ANY($1::text[])) AS indexed""", list(notes))
    assert dict(counts) == {"inbox": BURST, "objects": BURST, "home": BURST, "home_distinct": BURST,
                            "mentions": BURST, "indexed": BURST}
    assert instance.starts == kills + 1
    print(f"\nfinished at the kill: {finished_at_kill}; leased at the kill: {leased}; kills: {kills}")


async def _count(pool, sql: str, *args):
    return await pool.fetchval(sql, *args)


async def test_creates_of_several_senders_share_a_batch_and_each_sender_keeps_its_order(fed_client, fed_settings,
                                                                                       pool, remote):
    bob, carol = remote.actors["bob"], remote.add_actor("carol")
    await _bob_known_and_followed(fed_client, pool, bob)
    await _bob_known_and_followed(fed_client, pool, carol)
    edit = {"@context": AS, "id": f"{carol.uri}/updates/2", "type": "Update", "actor": carol.uri, "to": [PUBLIC],
            "object": {**_create(carol, 2)["object"], "content": "<p>carol's note 2, edited</p>"}}
    # bob and carol take turns; carol's Update comes after her Create 2 and before her Create 3.
    plan = [_create(bob, 1), _create(carol, 1), _create(bob, 2), _create(carol, 2), edit, _create(bob, 3),
            _create(carol, 3), _create(bob, 4)]
    for activity in plan:
        await _send(fed_client, bob if activity["actor"] == bob.uri else carol, [activity])
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM inbox_items ORDER BY id")]
    first = ids[2:]  # after the two Likes

    batches = await _work(pool, fed_settings, expected=len(ids))

    # The two Likes are a batch of their own. One batch holds both senders' Creates before
    # carol's Update, and bob's Create 3 after it (bob's order does not depend on carol's
    # Update); the Update runs alone after carol's Create 2 (and so finds it), and her Create 3
    # waits for it in the next batch.
    assert batches == [ids[0:2], first[0:4] + [first[5]], [first[6], first[7]]]
    assert [s for _, s in await _states(pool)][2:] == ["done"] * 8
    carol_2 = await pool.fetchval("SELECT content FROM objects WHERE uri = $1", f"{carol.uri}/notes/2")
    assert carol_2 == "<p>carol's note 2, edited</p>"
    home = await _home(pool)
    for keys, count in ((bob, 4), (carol, 3)):
        assert [u for u in home if u.startswith(keys.uri)] == [f"{keys.uri}/notes/{n}" for n in range(1, count + 1)]
