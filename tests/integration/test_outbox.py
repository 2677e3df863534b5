"""Publishing: posts, follows, likes, shares and deletes, what they store and queue, and how posts are served."""

from __future__ import annotations

import json

import pytest

from activities.context import PUBLIC
from fedserver.app import build_publisher
from fedserver.accounts import (
    create_account,
    ensure_instance_actor,
    validate_new_account,
)
from fedserver.federation import commands
from fedserver.federation.outbox import OutboxError
from fedserver.federation.targets import TargetError
from fedserver.net.http import HttpClient
from fedserver.signatures import generate_rsa_keypair, sign_request
from tests.support.instance import fedserver, free_port, instance_env
from tests.support.receivers import Receiver, add_remote_followers

AP = {"Accept": "application/activity+json"}


@pytest.fixture
async def alice(pool, settings):
    await ensure_instance_actor(pool, settings)
    return await create_account(pool, settings, validate_new_account(username="alice", display_name="앨리스"))


@pytest.fixture
async def peer():
    receiver = await Receiver().start()
    yield receiver
    await receiver.close()


@pytest.fixture
def http_settings(settings):
    """Test settings whose WebFinger lookups use http (loopback peers have no TLS)."""
    return settings.model_copy(update={"instance": settings.instance.model_copy(update={"scheme": "http"})})


async def _deliveries(pool) -> list[dict]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(
            """SELECT d.activity_uri, d.inbox_uri, b.body FROM deliveries d JOIN delivery_bodies b ON b.id = d.body_id
               ORDER BY d.id""")]


async def _insert_remote_post(pool, author_id: int, uri: str, visibility: str = "public") -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO objects (uri, object_type, actor_id, is_local, visibility, data)
               VALUES ($1, 'Note', $2, false, $3, $4::jsonb)""",
            uri, author_id, visibility, {"id": uri, "type": "Note"})


async def test_a_post_is_stored_with_its_create_and_queued_once_per_follower_inbox(pool, publisher, alice, peer):
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 3)
        await add_remote_followers(conn, alice.id, peer, 2, shared_inbox=False, prefix="p")
    uri = await commands.create_post(pool, publisher, "alice", "도자기 굽는 날\n\n가마 온도 1250도")
    assert uri.startswith(f"{alice.uri}/statuses/")
    async with pool.acquire() as conn:
        obj = await conn.fetchrow("SELECT * FROM objects WHERE uri = $1", uri)
        act = await conn.fetchrow("SELECT * FROM activities WHERE object_uri = $1", uri)
    assert obj["is_local"] and obj["visibility"] == "public" and obj["object_type"] == "Note"
    assert obj["data"]["content"] == "<p>도자기 굽는 날</p><p>가마 온도 1250도</p>"
    assert act["activity_type"] == "Create" and act["data"]["object"]["id"] == uri
    rows = await _deliveries(pool)
    assert sorted(r["inbox_uri"] for r in rows) == sorted(
        [f"{peer.base}/inbox", f"{peer.base}/users/p0/inbox", f"{peer.base}/users/p1/inbox"])
    assert {r["activity_uri"] for r in rows} == {act["uri"]}
    assert rows[0]["body"]["to"] == [PUBLIC] and rows[0]["body"]["cc"] == [alice.followers_uri]


async def test_a_reply_with_a_mention_reaches_the_mentioned_and_replied_to_authors(pool, publisher, alice, peer):
    other = await Receiver().start()
    try:
        async with pool.acquire() as conn:
            (bob,) = await add_remote_followers(conn, alice.id, peer, 1, prefix="bob")
            (carol,) = await add_remote_followers(conn, alice.id, other, 1, shared_inbox=False, prefix="carol")
            await conn.execute("DELETE FROM follows")  # neither follows alice: only addressing reaches them
        parent = f"{peer.base}/users/bob0/statuses/1"
        await _insert_remote_post(pool, bob, parent)
        uri = await commands.create_post(pool, publisher, "alice", f"@carol0@{other.domain} 보세요", in_reply_to=parent,
                                       visibility="unlisted")
        (row,) = [r for r in await _deliveries(pool) if r["inbox_uri"] == f"{other.base}/users/carol0/inbox"]
        note = row["body"]["object"]
        assert note["id"] == uri and note["inReplyTo"] == parent
        assert note["tag"] == [{"type": "Mention", "href": f"{other.base}/users/carol0",
                                "name": f"@carol0@{other.domain}"}]
        assert note["to"] == [alice.followers_uri]
        assert note["cc"] == [PUBLIC, f"{other.base}/users/carol0", f"{peer.base}/users/bob0"]
        assert 'class="u-url mention"' in note["content"]
        assert {r["inbox_uri"] for r in await _deliveries(pool)} == {
            f"{peer.base}/inbox", f"{other.base}/users/carol0/inbox"}
    finally:
        await other.close()


async def test_a_direct_post_goes_only_to_the_mentioned(pool, publisher, alice, peer):
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 3)
        await add_remote_followers(conn, alice.id, peer, 1, shared_inbox=False, prefix="dm")
    await commands.create_post(pool, publisher, "alice", f"비밀 @dm0@{peer.domain}", visibility="direct")
    (row,) = await _deliveries(pool)
    assert row["inbox_uri"] == f"{peer.base}/users/dm0/inbox"  # not the followers' shared inbox
    assert row["body"]["to"] == [f"{peer.base}/users/dm0"] and "cc" not in row["body"]


async def test_an_article_keeps_title_and_summary(pool, publisher, alice):
    uri = await commands.create_post(pool, publisher, "alice", "<p>긴 글</p>", article=True, title="봄 전시",
                                   summary="작품 열두 점")
    async with pool.acquire() as conn:
        data = await conn.fetchval("SELECT data FROM objects WHERE uri = $1", uri)
    assert (data["type"], data["name"], data["summary"], data["url"]) == ("Article", "봄 전시", "작품 열두 점", uri)
    with pytest.raises(OutboxError, match="title"):
        await commands.create_post(pool, publisher, "alice", "no title", article=True)


async def test_bad_post_input_is_refused_and_nothing_is_stored(pool, publisher, alice):
    for kwargs, message in (({"visibility": "friends"}, "visibility"), ({}, "empty")):
        with pytest.raises(OutboxError, match=message):
            await commands.create_post(pool, publisher, "alice", "  " if message == "empty" else "x", **kwargs)
    with pytest.raises(OutboxError, match="no account"):
        await commands.create_post(pool, publisher, "nobody", "x")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM objects") == 0


async def test_follow_by_handle_fetches_the_actor_and_sends_follow_to_its_personal_inbox(
        pool, http_settings, alice, peer):
    bob = peer.add_actor("bob")
    async with HttpClient(http_settings, allow_private=True) as http:
        follow_id = await commands.follow(pool, build_publisher(http_settings), http, "alice", f"@bob@{peer.domain}")
        # Still pending: sent again.
        again = await commands.follow(pool, build_publisher(http_settings), http, "alice", bob["id"])
    assert follow_id.startswith(f"{alice.uri}/activities/follow/") and again != follow_id
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT f.state, f.activity_uri FROM follows f JOIN actors a ON a.id = f.followee_id WHERE a.uri = $1",
            bob["id"])
    assert (row["state"], row["activity_uri"]) == ("pending", again)
    rows = await _deliveries(pool)
    assert [r["inbox_uri"] for r in rows] == [bob["inbox"], bob["inbox"]]
    assert rows[0]["body"] == {"@context": "https://www.w3.org/ns/activitystreams", "id": follow_id,
                               "type": "Follow", "actor": alice.uri, "object": bob["id"], "to": [bob["id"]]}

    undo_id = await commands.unfollow(pool, build_publisher(http_settings), "alice", bob["id"])
    undo = (await _deliveries(pool))[-1]["body"]
    assert undo["id"] == undo_id and undo["type"] == "Undo"
    assert undo["object"]["type"] == "Follow" and undo["object"]["id"] == again
    with pytest.raises(OutboxError, match="does not follow"):
        await commands.unfollow(pool, build_publisher(http_settings), "alice", bob["id"])


async def test_follow_of_an_unknown_handle_is_a_clear_error(pool, http_settings, alice, peer):
    async with HttpClient(http_settings, allow_private=True) as http:
        with pytest.raises(TargetError, match="cannot resolve"):
            await commands.follow(pool, build_publisher(http_settings), http, "alice", f"@ghost@{peer.domain}")
        with pytest.raises(TargetError, match="no account"):
            await commands.follow(pool, build_publisher(http_settings), http, "alice", "@ghost@shop.test")


async def test_like_fetches_an_unknown_post_and_unlike_embeds_the_like(pool, http_settings, alice, peer):
    bob = peer.add_actor("bob", shared_inbox=False)
    note_id = f"{peer.base}/users/bob/statuses/9"
    peer.documents["/users/bob/statuses/9"] = {
        "@context": "https://www.w3.org/ns/activitystreams", "id": note_id, "type": "Note",
        "attributedTo": bob["id"], "content": "<p>hi</p>", "to": [PUBLIC], "cc": [bob["followers"]]}
    async with HttpClient(http_settings, allow_private=True) as http:
        like_id = await commands.like(pool, build_publisher(http_settings), http, "alice", note_id)
        with pytest.raises(OutboxError, match="already likes"):
            await commands.like(pool, build_publisher(http_settings), http, "alice", note_id)
    (row,) = await _deliveries(pool)
    assert row["inbox_uri"] == bob["inbox"]
    assert (row["body"]["type"], row["body"]["object"], row["body"]["to"]) == ("Like", note_id, [bob["id"]])
    undo_id = await commands.unlike(pool, build_publisher(http_settings), "alice", note_id)
    undo = (await _deliveries(pool))[-1]
    assert undo["body"]["id"] == undo_id and undo["inbox_uri"] == bob["inbox"]
    assert undo["body"]["object"]["id"] == like_id and undo["body"]["object"]["type"] == "Like"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM likes") == 0


async def test_announce_goes_to_followers_and_the_author_and_can_be_undone(pool, publisher, alice, peer):
    async with pool.acquire() as conn:
        (bob,) = await add_remote_followers(conn, alice.id, peer, 1, shared_inbox=False, prefix="bob")
        await conn.execute("DELETE FROM follows")
        await add_remote_followers(conn, alice.id, peer, 2, prefix="fan")
    note_id = f"{peer.base}/users/bob0/statuses/5"
    await _insert_remote_post(pool, bob, note_id)
    announce_id = await commands.announce(pool, publisher, None, "alice", note_id)
    rows = await _deliveries(pool)
    assert {r["inbox_uri"] for r in rows} == {f"{peer.base}/inbox", f"{peer.base}/users/bob0/inbox"}
    assert rows[0]["body"]["cc"] == [alice.followers_uri, f"{peer.base}/users/bob0"]
    await commands.unannounce(pool, publisher, "alice", note_id)
    undo = (await _deliveries(pool))[-1]["body"]
    assert undo["object"]["id"] == announce_id and undo["to"] == [PUBLIC]

    await _insert_remote_post(pool, bob, f"{note_id}0", visibility="private")
    with pytest.raises(OutboxError, match="public and unlisted"):
        await commands.announce(pool, publisher, None, "alice", f"{note_id}0")


async def test_delete_reaches_followers_and_everyone_who_received_the_post(pool, settings, publisher, alice, peer):
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 1, shared_inbox=False, prefix="dm")
        await conn.execute("DELETE FROM follows")
    uri = await commands.create_post(pool, publisher, "alice", f"hi @dm0@{peer.domain}", visibility="direct")
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 2)  # follow after the post
    delete_id = await commands.delete_object(pool, publisher, "alice", uri)
    rows = [r for r in await _deliveries(pool) if r["activity_uri"] == delete_id]
    assert [r["inbox_uri"] for r in rows] == [f"{peer.base}/users/dm0/inbox"]  # a direct post: no followers
    assert rows[0]["body"]["object"] == {"id": uri, "type": "Tombstone", "formerType": "Note"}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT deleted_at IS NOT NULL FROM objects WHERE uri = $1", uri)
        assert await conn.fetchval("SELECT count(*) FROM tombstones WHERE uri = $1", uri) == 1
    with pytest.raises(OutboxError, match="already deleted"):
        await commands.delete_object(pool, publisher, "alice", uri)
    public = await commands.create_post(pool, publisher, "alice", "public one")
    await create_account(pool, settings, validate_new_account(username="mallory"))
    with pytest.raises(OutboxError, match="has no post"):
        await commands.delete_object(pool, publisher, "mallory", public)
    delete_id = await commands.delete_object(pool, publisher, "alice", public)
    assert {r["inbox_uri"] for r in await _deliveries(pool) if r["activity_uri"] == delete_id} == {
        f"{peer.base}/inbox"}


async def test_profile_update_sends_update_person_to_followers(pool, publisher, alice, peer):
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, peer, 2)
    await commands.update_profile(pool, publisher, "alice", display_name="앨리스 도예", summary="물레 10년")
    (row,) = await _deliveries(pool)
    assert row["body"]["type"] == "Update" and row["body"]["object"]["type"] == "Person"
    assert row["body"]["object"]["name"] == "앨리스 도예" and row["body"]["object"]["summary"] == "<p>물레 10년</p>"


async def test_posts_are_served_by_content_negotiation_and_410_once_deleted(client, pool, settings, publisher, alice):
    uri = await commands.create_post(pool, publisher, "alice", "보이나요?")
    path = uri.removeprefix(settings.base_url)
    response = await client.get(path, headers=AP)
    assert response.status == 200 and response.content_type == "application/activity+json"
    assert (await response.json())["id"] == uri
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status == 200 and "보이나요?" in await page.text()
    create = await client.get(path.replace("/statuses/", "/activities/create/"), headers=AP)
    assert create.status == 200 and (await create.json())["type"] == "Create"

    outbox_page = await (await client.get("/users/alice/outbox?page=1", headers=AP)).json()
    assert [item["object"]["id"] for item in outbox_page["orderedItems"]] == [uri]
    await commands.delete_object(pool, publisher, "alice", uri)
    gone = await client.get(path, headers=AP)
    assert gone.status == 410 and (await gone.json())["type"] == "Tombstone"
    assert (await (await client.get("/users/alice/outbox", headers=AP)).json())["totalItems"] == 0
    assert (await client.get("/users/alice/statuses/123", headers=AP)).status == 404


async def test_outbox_lists_creates_and_announces_newest_first(client, pool, publisher, alice):
    first = await commands.create_post(pool, publisher, "alice", "one")
    await commands.create_post(pool, publisher, "alice", "hidden", visibility="private")
    second = await commands.create_post(pool, publisher, "alice", "two", visibility="unlisted")
    announce_id = await commands.announce(pool, publisher, None, "alice", first)
    page = await (await client.get("/users/alice/outbox?page=1", headers=AP)).json()
    assert [item["id"] for item in page["orderedItems"]][0] == announce_id
    assert [item["object"]["id"] for item in page["orderedItems"][1:]] == [second, first]
    assert page["totalItems"] == 3 and all("@context" not in item for item in page["orderedItems"])


async def test_a_private_post_is_404_unsigned_and_served_to_a_signed_follower(client, pool, settings, publisher, alice):
    uri = await commands.create_post(pool, publisher, "alice", "팔로워만", visibility="private")
    path = uri.removeprefix(settings.base_url)
    assert (await client.get(path, headers=AP)).status == 404
    private_pem, public_pem = generate_rsa_keypair()
    async with pool.acquire() as conn:
        reader = await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
               VALUES ('https://r.example/users/r', false, 'r', 'r.example', 'Person',
                       'https://r.example/users/r/inbox', 'https://r.example/users/r#main-key', $1) RETURNING id""",
            public_pem)
    host = f"127.0.0.1:{client.port}"

    def signed() -> dict:
        headers = {"Accept": "application/activity+json"}
        headers.update(sign_request("GET", path, headers, key_id="https://r.example/users/r#main-key",
                                    private_key=private_pem, host=host))
        return headers

    assert (await client.get(path, headers=signed())).status == 404  # signed, but not a follower
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, 'accepted')",
                           reader, alice.id)
    response = await client.get(path, headers=signed())
    assert response.status == 200 and (await response.json())["id"] == uri
    assert "no-store" in response.headers["Cache-Control"]


def test_commands_print_the_id_and_fail_with_one_line(db_url, tmp_path):
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=free_port())
    assert fedserver("account", "create", "alice", env=env).returncode == 0
    posted = fedserver("post", "alice", "명령줄에서", "--visibility", "unlisted", env=env)
    assert posted.returncode == 0, posted.stderr
    uri = posted.stdout.strip()
    assert uri.startswith("http://127.0.0.1:") and "/users/alice/statuses/" in uri
    liked = fedserver("like", "alice", uri, env=env)
    assert liked.returncode == 0 and "/activities/like/" in liked.stdout
    for args, message in ((("post", "nobody", "x"), "no account named 'nobody'"),
                          (("like", "alice", uri), "already likes"),
                          (("follow", "alice", "not a handle"), "not a handle"),
                          (("delete", "alice", "http://127.0.0.1:1/users/alice/statuses/1"), "has no post")):
        result = fedserver(*args, env=env)
        assert result.returncode == 1, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    deleted = fedserver("delete", "alice", uri, env=env)
    assert deleted.returncode == 0 and "/activities/delete/" in deleted.stdout
    listing = fedserver("deliveries", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)["counts"] == {"queued": 0, "delivered": 0, "failed": 0, "gone": 0}
    assert fedserver("deliveries", env=env).stdout.startswith("queued 0  delivered 0")


async def test_follow_requests_are_accepted_with_the_follow_embedded_as_received_or_rejected(
        pool, publisher, alice, peer):
    async with pool.acquire() as conn:
        ids = await add_remote_followers(conn, alice.id, peer, 2, shared_inbox=False, prefix="req")
        await conn.execute("UPDATE follows SET state = 'pending', accepted_at = NULL")
        follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": "urn:test:follow:%d" % ids[0],
                  "type": "Follow", "actor": {"id": f"{peer.base}/users/req0", "type": "Person"},
                  "object": alice.uri}
        # The Follow as the inbox received it is kept on the follow it made.
        await conn.execute("UPDATE follows SET activity = $2::jsonb WHERE activity_uri = $1", follow["id"], follow)
    assert await commands.follow_requests(pool, "alice") == [f"{peer.base}/users/req0", f"{peer.base}/users/req1"]
    accept_id = await commands.answer_follow_request(pool, publisher, "alice", f"{peer.base}/users/req0", accept=True)
    reject_id = await commands.answer_follow_request(pool, publisher, "alice", f"@req1@{peer.domain}", accept=False)
    accept, reject = [r["body"] for r in await _deliveries(pool)]
    assert accept["id"] == accept_id and accept["object"] == {k: v for k, v in follow.items() if k != "@context"}
    assert reject["id"] == reject_id and reject["type"] == "Reject"
    assert reject["object"]["type"] == "Follow" and reject["object"]["actor"] == f"{peer.base}/users/req1"
    async with pool.acquire() as conn:
        assert [r["state"] for r in await conn.fetch("SELECT state FROM follows")] == ["accepted"]
    with pytest.raises(OutboxError, match="no pending follow request"):
        await commands.answer_follow_request(pool, publisher, "alice", f"{peer.base}/users/req0", accept=True)
