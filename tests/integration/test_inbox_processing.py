"""Inbound handlers: what each activity does to the database, processed by the real worker code."""

from __future__ import annotations

import json
import time

import pytest

from fedserver.accounts import create_account, validate_new_account
from tests.conftest import TEST_DOMAIN
from tests.support.database import DELIVERED
from tests.support.processing import process_all
from tests.support.remote import RemoteServer, signed_post

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"
ALICE = f"https://{TEST_DOMAIN}/users/alice"
CAROL = f"https://{TEST_DOMAIN}/users/carol"


@pytest.fixture
async def app_client(fed_client, fed_settings, pool):
    """The instance of fed_client (alice) plus carol, who approves followers by hand."""
    await create_account(pool, fed_settings, validate_new_account(username="carol", locked=True))
    return fed_client


@pytest.fixture
async def remote():
    server = await RemoteServer().start()
    server.add_actor("bob")
    yield server
    await server.close()


class Sender:
    def __init__(self, client, remote: RemoteServer, pool, settings):
        self.client, self.remote, self.pool, self.settings = client, remote, pool, settings
        self.keys = remote.actors["bob"]

    def new_id(self, kind: str) -> str:
        return f"{self.remote.base}/{kind}/{time.time_ns()}"

    async def send(self, activity: dict, path: str = "/inbox") -> None:
        activity.setdefault("@context", AS)
        activity.setdefault("actor", self.keys.uri)
        body = json.dumps(activity).encode()
        headers = signed_post(self.keys, path, f"127.0.0.1:{self.client.port}", body)
        response = await self.client.post(path, data=body, headers=headers)
        assert response.status == 202, await response.text()

    async def process(self) -> list[str]:
        return await process_all(self.pool, self.settings)

    async def val(self, sql: str, *args):
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)


@pytest.fixture
def bob(app_client, remote, pool, fed_settings):
    return Sender(app_client, remote, pool, fed_settings)


FOLLOWS = "SELECT state FROM follows f JOIN actors a ON a.id = f.follower_id JOIN actors b ON b.id = f.followee_id " \
          "WHERE a.uri = $1 AND b.uri = $2"


async def test_follow_of_an_open_account_is_accepted_and_an_accept_queued(bob):
    follow = {"id": bob.new_id("follows"), "type": "Follow", "object": ALICE}
    await bob.send(follow)
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, bob.keys.uri, ALICE) == "accepted"
    body = await bob.val(f"SELECT body FROM {DELIVERED} WHERE inbox_uri = $1", f"{bob.keys.uri}/inbox")
    assert body["type"] == "Accept" and body["object"]["id"] == follow["id"] and body["actor"] == ALICE


async def test_follow_of_a_locked_account_waits_for_approval(bob):
    await bob.send({"id": bob.new_id("follows"), "type": "Follow", "object": CAROL})
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, bob.keys.uri, CAROL) == "pending"
    assert await bob.val("SELECT count(*) FROM deliveries") == 0


async def test_follow_then_undo_in_one_batch_is_applied_in_order(bob):
    follow = {"id": bob.new_id("follows"), "type": "Follow", "object": ALICE, "actor": bob.keys.uri}
    await bob.send(dict(follow))
    await bob.send({"id": bob.new_id("undos"), "type": "Undo", "object": follow})
    assert await bob.process() == ["done", "done"]
    assert await bob.val(FOLLOWS, bob.keys.uri, ALICE) is None


async def test_posts_are_kept_only_when_they_concern_someone_here(bob, pool):
    note = {"id": bob.new_id("notes"), "type": "Note", "attributedTo": bob.keys.uri, "content": "<p>x</p>",
            "to": [PUBLIC]}
    await bob.send({"id": bob.new_id("creates"), "type": "Create", "object": note, "to": [PUBLIC]})
    assert await bob.process() == ["ignored"]
    async with pool.acquire() as conn:
        alice_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", ALICE)
        bob_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", bob.keys.uri)
        await conn.execute("INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, 'accepted')",
                           alice_id, bob_id)
    note2 = {**note, "id": bob.new_id("notes")}
    await bob.send({"id": bob.new_id("creates"), "type": "Create", "object": note2, "to": [PUBLIC]})
    assert await bob.process() == ["done"]
    assert await bob.val("SELECT visibility FROM objects WHERE uri = $1", note2["id"]) == "public"


async def test_a_create_after_its_delete_is_ignored(bob):
    note_id = bob.new_id("notes")
    await bob.send({"id": bob.new_id("deletes"), "type": "Delete", "object": {"id": note_id, "type": "Tombstone"}})
    assert await bob.process() == ["done"]
    note = {"id": note_id, "type": "Note", "attributedTo": bob.keys.uri, "content": "<p>late</p>", "to": [ALICE]}
    await bob.send({"id": bob.new_id("creates"), "type": "Create", "object": note, "to": [ALICE]},
                   path="/users/alice/inbox")
    assert await bob.process() == ["ignored"]
    assert await bob.val("SELECT count(*) FROM objects WHERE uri = $1", note_id) == 0


async def test_a_delete_by_another_actor_of_the_same_server_tombstones_nothing_of_others(bob, remote):
    remote.add_actor("mallory")
    mallory = Sender(bob.client, remote, bob.pool, bob.settings)
    mallory.keys = remote.actors["mallory"]
    stored, future = bob.new_id("notes"), bob.new_id("notes")

    def create(note_id: str) -> dict:
        note = {"id": note_id, "type": "Note", "attributedTo": bob.keys.uri, "content": "<p>mine</p>", "to": [ALICE]}
        return {"id": bob.new_id("creates"), "type": "Create", "object": note, "to": [ALICE]}

    await bob.send(create(stored), path="/users/alice/inbox")
    assert await bob.process() == ["done"]
    for target in (stored, future):  # same host, so the origin rules let it through
        await mallory.send({"id": mallory.new_id("deletes"), "type": "Delete",
                            "object": {"id": target, "type": "Tombstone"}})
    assert await bob.process() == ["ignored", "done"]
    await bob.send(create(future), path="/users/alice/inbox")
    assert await bob.process() == ["done"]
    assert await bob.val("SELECT count(*) FROM objects WHERE uri = ANY($1::text[]) AND deleted_at IS NULL",
                         [stored, future]) == 2
    assert await bob.val("SELECT count(*) FROM tombstones WHERE uri = $1", stored) == 0


async def test_likes_count_on_local_posts_only_and_undo_removes_them(bob, pool):
    async with pool.acquire() as conn:
        alice_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", ALICE)
        await conn.execute("INSERT INTO objects (uri, object_type, actor_id, is_local) VALUES ($1, 'Note', $2, true)",
                           f"{ALICE}/statuses/1", alice_id)
    like = {"id": bob.new_id("likes"), "type": "Like", "object": f"{ALICE}/statuses/1", "actor": bob.keys.uri}
    await bob.send(dict(like))
    await bob.send({"id": bob.new_id("likes"), "type": "Like", "object": "https://elsewhere.example/n/1"})
    assert await bob.process() == ["done", "ignored"]
    assert await bob.val("SELECT count(*) FROM likes") == 1
    await bob.send({"id": bob.new_id("undos"), "type": "Undo", "object": like})
    assert await bob.process() == ["done"]
    assert await bob.val("SELECT count(*) FROM likes") == 0


async def test_block_removes_follows_both_ways(bob, pool):
    await bob.send({"id": bob.new_id("follows"), "type": "Follow", "object": ALICE})
    await bob.process()
    await bob.send({"id": bob.new_id("blocks"), "type": "Block", "object": ALICE})
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, bob.keys.uri, ALICE) is None
    assert await bob.val("SELECT count(*) FROM blocks") == 1
    await bob.send({"id": bob.new_id("follows"), "type": "Follow", "object": ALICE})
    await bob.process()
    assert await bob.val(FOLLOWS, bob.keys.uri, ALICE) == "accepted"  # a block by them does not stop their follow


async def test_accept_of_our_follow_with_the_follow_embedded(bob, pool):
    async with pool.acquire() as conn:
        alice_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", ALICE)
    await bob.send({"id": bob.new_id("notes"), "type": "Listen", "object": ALICE})  # makes bob known; ignored
    assert await bob.process() == ["ignored"]
    follow_id = f"{ALICE}/activities/follow/1"
    async with pool.acquire() as conn:
        bob_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", bob.keys.uri)
        await conn.execute(
            "INSERT INTO follows (follower_id, followee_id, activity_uri) VALUES ($1, $2, $3)", alice_id, bob_id,
            follow_id)
    # Fedify embeds the whole Follow, with its actor embedded too.
    await bob.send({"id": bob.new_id("accepts"), "type": "Accept",
                    "object": {"id": follow_id, "type": "Follow", "actor": {"id": ALICE, "type": "Person"},
                               "object": bob.keys.uri}})
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, ALICE, bob.keys.uri) == "accepted"


async def test_delete_of_the_actor_removes_it_and_its_follows(bob):
    await bob.send({"id": bob.new_id("follows"), "type": "Follow", "object": ALICE})
    await bob.process()
    await bob.send({"id": bob.new_id("deletes"), "type": "Delete", "object": bob.keys.uri})
    assert await bob.process() == ["done"]
    assert await bob.val("SELECT deleted_at IS NOT NULL FROM actors WHERE uri = $1", bob.keys.uri)
    assert await bob.val(FOLLOWS, bob.keys.uri, ALICE) is None


async def _alice_follows_bob_and_has_his_post(bob, pool) -> tuple[int, int, str]:
    """Alice follows bob (accepted) and his new post reaches her home timeline: (alice id, bob id, follow id)."""
    await bob.send({"id": bob.new_id("notes"), "type": "Listen", "object": ALICE})  # makes bob known; ignored
    assert await bob.process() == ["ignored"]
    follow_id = f"{ALICE}/activities/follow/7"
    async with pool.acquire() as conn:
        alice_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", ALICE)
        bob_id = await conn.fetchval("SELECT id FROM actors WHERE uri = $1", bob.keys.uri)
        await conn.execute("""INSERT INTO follows (follower_id, followee_id, activity_uri, state, accepted_at)
                              VALUES ($1, $2, $3, 'accepted', now())""", alice_id, bob_id, follow_id)
    note = {"id": bob.new_id("notes"), "type": "Note", "attributedTo": bob.keys.uri, "content": "<p>새 그릇</p>",
            "to": [PUBLIC]}
    await bob.send({"id": bob.new_id("creates"), "type": "Create", "object": note, "to": [PUBLIC]})
    assert await bob.process() == ["done"]
    assert await bob.val(HOME, alice_id, bob_id) == 1
    return alice_id, bob_id, follow_id


HOME = "SELECT count(*) FROM home_feed WHERE account_id = $1 AND author_id = $2"


async def test_a_reject_of_a_follow_takes_the_followees_posts_out_of_the_home_timeline(bob, pool):
    alice_id, bob_id, follow_id = await _alice_follows_bob_and_has_his_post(bob, pool)
    await bob.send({"id": bob.new_id("rejects"), "type": "Reject",
                    "object": {"id": follow_id, "type": "Follow", "actor": ALICE, "object": bob.keys.uri}})
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, ALICE, bob.keys.uri) is None
    assert await bob.val(HOME, alice_id, bob_id) == 0


async def test_a_block_takes_the_blockers_posts_out_of_the_home_timeline(bob, pool):
    alice_id, bob_id, _ = await _alice_follows_bob_and_has_his_post(bob, pool)
    await bob.send({"id": bob.new_id("blocks"), "type": "Block", "object": ALICE})
    assert await bob.process() == ["done"]
    assert await bob.val(FOLLOWS, ALICE, bob.keys.uri) is None
    assert await bob.val(HOME, alice_id, bob_id) == 0


async def test_an_activity_nobody_handles_is_ignored_with_its_pair_named(bob):
    add = {"id": bob.new_id("adds"), "type": "Add", "to": [ALICE],
           "object": {"type": "Note", "id": bob.new_id("notes")}, "target": f"{bob.keys.uri}/featured"}
    accept = {"id": bob.new_id("accepts"), "type": "Accept",
              "object": {"type": "Offer", "id": bob.new_id("offers"), "actor": ALICE}}
    await bob.send(add)
    await bob.send(accept)
    assert await bob.process() == ["ignored", "ignored"]  # the Accept of an Offer is not given to the follow handler
    assert await bob.val("SELECT last_error FROM inbox_items WHERE activity_uri = $1", add["id"]) == \
        "no handler for Add/Note"
    assert await bob.val("SELECT last_error FROM inbox_items WHERE activity_uri = $1", accept["id"]) == \
        "no such order here"
