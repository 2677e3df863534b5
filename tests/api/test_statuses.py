"""POST/GET/PUT/DELETE /api/v1/statuses, source, history, context, favourited_by and reblogged_by."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.api.conftest import mint_token
from tests.api.schemas import CONTEXT, STATUS_SOURCE, check, check_status
from tests.api.status_support import (  # noqa: F401 (fixtures)
    act,
    bob_auth,
    count,
    follow,
    get_json,
    link_cursors,
    post,
    remote_actor,
)
from tests.support.database import DELIVERED

NOT_FOUND = {"error": "Record not found"}
POSTS = "SELECT count(*) FROM objects"


# Creating


async def test_post_with_every_option_as_json(client, auth, alice, bob):
    body = await post(client, auth, "봄 가마 #도자기 #Pottery @bob https://example.com/x", visibility="unlisted",
                      spoiler_text="새 작품", sensitive=False, language="ko")
    assert body["account"]["id"] == str(alice.id) and body["visibility"] == "unlisted"
    assert body["spoiler_text"] == "새 작품" and body["sensitive"] is True and body["language"] == "ko"
    assert {t["name"] for t in body["tags"]} == {"도자기", "pottery"}
    assert body["mentions"] == [{"id": str(bob.id), "username": "bob", "url": "http://shop.test/@bob", "acct": "bob"}]
    assert 'class="mention hashtag"' in body["content"] and 'href="https://example.com/x"' in body["content"]
    assert body["application"] == {"name": "Test app", "website": "https://app.example"}
    assert body["created_at"].endswith("Z") and body["edited_at"] is None and body["text"] is None
    assert (body["favourited"], body["reblogged"], body["bookmarked"], body["pinned"]) == (False,) * 4


async def test_post_as_a_form_the_way_mastodon_py_sends_it(client, auth):
    response = await client.post("/api/v1/statuses", headers=auth, data={
        "status": "form post", "visibility": "private", "sensitive": "1", "spoiler_text": ""})
    body = await response.json()
    assert response.status == 200, body
    check_status(body)
    assert body["visibility"] == "private" and body["sensitive"] is True and body["content"] == "<p>form post</p>"


async def test_post_as_multipart(client, auth):
    form = aiohttp.FormData()
    form.add_field("status", "multipart")
    form.add_field("visibility", "direct")
    response = await client.post("/api/v1/statuses", headers=auth, data=form)
    assert response.status == 200 and (await response.json())["visibility"] == "direct"


async def test_default_visibility_comes_from_the_posting_preference(client, auth):
    await client.patch("/api/v1/accounts/update_credentials", headers=auth, json={"source": {"privacy": "private"}})
    assert (await post(client, auth, "default"))["visibility"] == "private"


async def test_a_post_reaches_remote_followers_through_the_delivery_queue(client, auth, alice, pool):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    body = await post(client, auth, "for my followers")
    async with pool.acquire() as conn:
        delivery = await conn.fetchrow(f"SELECT inbox_uri, body FROM {DELIVERED}")
    assert delivery["inbox_uri"] == "https://remote.example/inbox"
    assert delivery["body"]["type"] == "Create" and delivery["body"]["object"]["id"] == body["uri"]


async def test_a_reply_threads_and_reaches_the_replied_to_author(client, auth, bob_auth, bob):
    parent = await post(client, bob_auth, "parent")
    reply = await post(client, auth, "@bob reply", in_reply_to_id=parent["id"])
    assert reply["in_reply_to_id"] == parent["id"] and reply["in_reply_to_account_id"] == str(bob.id)
    assert (await get_json(client, f"/api/v1/statuses/{parent['id']}", auth))["replies_count"] == 1


# Idempotency-Key


async def test_the_same_idempotency_key_returns_the_same_status_and_posts_once(client, auth, pool):
    key = {"Idempotency-Key": "k-1"}
    first = await post(client, auth, "only once", headers=key)
    again = await post(client, auth, "only once", headers=key)
    assert again["id"] == first["id"] and await count(pool, POSTS) == 1
    other = await post(client, auth, "another", headers={"Idempotency-Key": "k-2"})
    assert other["id"] != first["id"] and await count(pool, POSTS) == 2


async def test_concurrent_requests_with_one_key_make_one_post(client, auth, pool):
    results = await asyncio.gather(*[post(client, auth, "race", headers={"Idempotency-Key": "same"})
                                     for _ in range(6)])
    assert len({r["id"] for r in results}) == 1
    assert await count(pool, POSTS) == 1 and await count(pool, "SELECT count(*) FROM deliveries") == 0


async def test_idempotency_keys_are_per_account_and_last_an_hour(client, auth, bob_auth, pool):
    key = {"Idempotency-Key": "shared"}
    mine = await post(client, auth, "a", headers=key)
    theirs = await post(client, bob_auth, "b", headers=key)
    assert mine["id"] != theirs["id"]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '61 minutes'")
    later = await post(client, auth, "a", headers=key)
    assert later["id"] != mine["id"] and await count(pool, POSTS) == 3


# Refusals: nothing is written


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"status": "x" * 5001}, 422, "character limit of 5000"),
    ({"status": "x" * 4990, "spoiler_text": "y" * 11}, 422, "character limit"),
    ({"status": "   "}, 422, "can't be blank"),
    ({"status": "hi", "visibility": "friends"}, 422, "visibility must be one of"),
    ({"status": "hi", "language": "Korean!"}, 422, "language"),
    ({"status": "hi", "poll": {"options": ["a", "b"], "expires_in": 600}}, 422, "polls"),
    ({"status": "hi", "scheduled_at": "2020-01-01T00:00:00Z"}, 422, "at least 5 minutes"),
    ({"status": ["not", "a", "string"]}, 422, "must be a string"),
    ({"status": "hi", "media_ids": ["1", "2", "3", "4", "5"]}, 422, "at most 4"),
    ({"status": "hi", "media_ids": ["abc"]}, 422, "media_ids"),
    ({"status": "hi", "media_ids": ["999"]}, 422, "not found"),
    ({"status": "hi", "in_reply_to_id": "999999"}, 404, "Record not found"),
])
async def test_bad_posts_are_refused_and_nothing_is_written(client, auth, pool, fields, status, message):
    response = await client.post("/api/v1/statuses", headers={**auth, "Idempotency-Key": "k"}, json=fields)
    body = await response.json()
    assert response.status == status and message in body["error"], body
    assert response.content_type == "application/json"
    for table in ("objects", "activities", "deliveries", "idempotency_keys", "home_feed", "status_sources"):
        assert await count(pool, f"SELECT count(*) FROM {table}") == 0, table


async def test_urls_count_as_23_characters(client, auth):
    await post(client, auth, "x" * 4970 + " https://example.com/" + "a" * 200)


async def test_malformed_json_is_400(client, auth, pool):
    response = await client.post("/api/v1/statuses", headers={**auth, "Content-Type": "application/json"},
                                 data=b'{"status": ')
    assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
    assert await count(pool, POSTS) == 0


async def test_posting_needs_a_token_with_write_statuses(client, pool, oauth_app, alice):
    response = await client.post("/api/v1/statuses", json={"status": "x"})
    assert response.status == 401 and "error" in await response.json()
    reader = await mint_token(pool, oauth_app, alice.id, scopes=("read",))
    response = await client.post("/api/v1/statuses", json={"status": "x"},
                                 headers={"Authorization": f"Bearer {reader}"})
    assert response.status == 403 and await count(pool, POSTS) == 0
    response = await client.post("/api/v1/statuses", json={"status": "x"}, headers={"Authorization": "Bearer bad"})
    assert response.status == 401


# Reading: private posts look exactly like missing ones (checklist #42)


async def test_public_post_is_readable_without_a_token(client, auth):
    body = await post(client, auth, "public")
    anonymous = await get_json(client, f"/api/v1/statuses/{body['id']}")
    check_status(anonymous, signed_in=False)


async def test_private_and_direct_posts_are_404_like_missing_ones(client, auth, bob_auth, pool, oauth_app, alice,
                                                                   bob):
    private = await post(client, auth, "followers only", visibility="private")
    direct = await post(client, auth, "just us @bob", visibility="direct")
    missing = await client.get("/api/v1/statuses/987654321", headers=bob_auth)
    assert missing.status == 404 and await missing.json() == NOT_FOUND
    for path, headers in ((f"/api/v1/statuses/{private['id']}", bob_auth), (f"/api/v1/statuses/{private['id']}", {}),
                          (f"/api/v1/statuses/{direct['id']}", {}), ("/api/v1/statuses/not-a-number", bob_auth)):
        response = await client.get(path, headers=headers)
        assert response.status == 404 and await response.json() == NOT_FOUND, path
    assert (await get_json(client, f"/api/v1/statuses/{direct['id']}", bob_auth))["visibility"] == "direct"
    await follow(pool, bob.id, alice.id)
    assert (await get_json(client, f"/api/v1/statuses/{private['id']}", bob_auth))["id"] == private["id"]


async def test_reading_with_a_token_lacking_read_scope_is_403(client, auth, pool, oauth_app, alice):
    body = await post(client, auth, "x")
    writer = await mint_token(pool, oauth_app, alice.id, scopes=("write",))
    response = await client.get(f"/api/v1/statuses/{body['id']}", headers={"Authorization": f"Bearer {writer}"})
    assert response.status == 403 and "error" in await response.json()


# Editing and deleting


async def test_edit_changes_the_post_and_federates_an_update(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    body = await post(client, auth, "first version")
    response = await client.put(f"/api/v1/statuses/{body['id']}", headers=auth,
                                json={"status": "second #version", "spoiler_text": "cw", "language": "en"})
    edited = await response.json()
    assert response.status == 200, edited
    check_status(edited)
    assert edited["id"] == body["id"] and edited["content"].startswith("<p>second")
    assert edited["edited_at"] is not None and edited["spoiler_text"] == "cw" and edited["tags"][0]["name"] == "version"
    async with pool.acquire() as conn:
        update = await conn.fetchval(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Update'")
    assert update["object"]["id"] == body["uri"] and update["object"]["updated"]
    source = await get_json(client, f"/api/v1/statuses/{body['id']}/source", auth)
    check(source, STATUS_SOURCE)
    assert source == {"id": body["id"], "text": "second #version", "spoiler_text": "cw"}
    history = await get_json(client, f"/api/v1/statuses/{body['id']}/history", auth)
    assert history[0]["content"] == edited["content"]


async def test_editing_or_deleting_another_users_post_is_404(client, auth, bob_auth, pool):
    body = await post(client, auth, "mine")
    for method in ("put", "delete"):
        response = await getattr(client, method)(f"/api/v1/statuses/{body['id']}", headers=bob_auth,
                                                 json={"status": "hijack"})
        assert response.status == 404 and await response.json() == NOT_FOUND
    assert (await get_json(client, f"/api/v1/statuses/{body['id']}"))["content"] == "<p>mine</p>"
    response = await client.get(f"/api/v1/statuses/{body['id']}/source", headers=bob_auth)
    assert response.status == 404


async def test_an_over_long_edit_is_422_and_changes_nothing(client, auth, pool):
    body = await post(client, auth, "short")
    response = await client.put(f"/api/v1/statuses/{body['id']}", headers=auth, json={"status": "x" * 6000})
    assert response.status == 422 and "character limit" in (await response.json())["error"]
    assert (await get_json(client, f"/api/v1/statuses/{body['id']}"))["content"] == "<p>short</p>"
    assert await count(pool, "SELECT count(*) FROM activities WHERE activity_type = 'Update'") == 0


async def test_a_direct_post_is_not_counted_in_statuses_count(client, auth, pool, alice):
    public = await post(client, auth, "hello everyone")
    private = await post(client, auth, "a note to myself", visibility="direct")
    assert private["visibility"] == "direct" and private["account"]["statuses_count"] == 1
    assert private["account"]["last_status_at"] == public["account"]["last_status_at"]
    assert (await client.delete(f"/api/v1/statuses/{private['id']}", headers=auth)).status == 200
    assert (await get_json(client, "/api/v1/accounts/verify_credentials", auth))["statuses_count"] == 1


async def test_delete_answers_the_status_with_its_text_and_federates(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    body = await post(client, auth, "soon *gone* #bye")
    assert body["account"]["statuses_count"] == 1 and body["account"]["last_status_at"] is not None
    response = await client.delete(f"/api/v1/statuses/{body['id']}", headers=auth)
    deleted = await response.json()
    assert response.status == 200
    check_status(deleted)
    assert deleted["text"] == "soon *gone* #bye" and deleted["id"] == body["id"]
    assert (await client.get(f"/api/v1/statuses/{body['id']}", headers=auth)).status == 404
    assert await count(pool, f"SELECT count(*) FROM {DELIVERED} WHERE body->>'type' = 'Delete'") == 1
    assert await get_json(client, "/api/v1/timelines/home", auth) == []
    assert (await client.delete(f"/api/v1/statuses/{body['id']}", headers=auth)).status == 404
    assert (await get_json(client, "/api/v1/accounts/verify_credentials", auth))["statuses_count"] == 0


# Threads and reactions


async def test_context_lists_ancestors_and_descendants_the_reader_may_see(client, auth, bob_auth):
    root = await post(client, auth, "root")
    middle = await post(client, bob_auth, "middle", in_reply_to_id=root["id"])
    leaf = await post(client, auth, "leaf", in_reply_to_id=middle["id"])
    hidden = await post(client, auth, "hidden", in_reply_to_id=middle["id"], visibility="direct")
    body = await get_json(client, f"/api/v1/statuses/{middle['id']}/context")
    check(body, CONTEXT)
    for item in body["ancestors"] + body["descendants"]:
        check_status(item, signed_in=False)
    assert [s["id"] for s in body["ancestors"]] == [root["id"]]
    assert [s["id"] for s in body["descendants"]] == [leaf["id"]]
    mine = await get_json(client, f"/api/v1/statuses/{root['id']}/context", auth)
    assert [s["id"] for s in mine["descendants"]] == [middle["id"], leaf["id"], hidden["id"]]


async def test_favourited_by_and_reblogged_by_page_with_link_headers(client, auth, pool, oauth_app, alice,
                                                                      settings):
    from fedserver.accounts import create_account, validate_new_account

    body = await post(client, auth, "popular")
    fans = []
    for name in ("f1", "f2", "f3"):
        actor = await create_account(pool, settings, validate_new_account(username=name))
        headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, actor.id)}"}
        await act(client, headers, body["id"], "favourite")
        await act(client, headers, body["id"], "reblog")
        fans.append(str(actor.id))
    for endpoint in ("favourited_by", "reblogged_by"):
        response = await client.get(f"/api/v1/statuses/{body['id']}/{endpoint}", params={"limit": "2"})
        first = await response.json()
        assert [a["id"] for a in first] == fans[:0:-1]
        cursors = link_cursors(response)
        assert response.headers["Link"].index('rel="next"') < response.headers["Link"].index('rel="prev"')
        rest = await get_json(client, f"/api/v1/statuses/{body['id']}/{endpoint}", max_id=cursors["next"])
        assert [a["id"] for a in rest] == fans[:1]


async def _upload(client, headers) -> str:
    from tests.api.test_media import image_bytes

    form = aiohttp.FormData()
    form.add_field("file", image_bytes(), filename="cup.png", content_type="image/png")
    form.add_field("description", "찻잔")
    response = await client.post("/api/v2/media", headers=headers, data=form)
    assert response.status in (200, 202), await response.text()
    return (await response.json())["id"]


async def test_a_post_with_media_carries_the_attachments_and_federates_them(client, auth, bob_auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    media_id = await _upload(client, auth)
    body = await post(client, auth, "", media_ids=[media_id])
    [attachment] = body["media_attachments"]
    assert attachment["id"] == media_id and attachment["description"] == "찻잔"
    async with pool.acquire() as conn:
        create = await conn.fetchval(f"SELECT body FROM {DELIVERED} WHERE body->>'type' = 'Create'")
    assert create["object"]["attachment"][0]["url"] == attachment["url"]
    assert ids_of(await get_json(client, "/api/v1/timelines/public", only_media="true")) == [body["id"]]
    again = await client.post("/api/v1/statuses", headers=auth, json={"status": "x", "media_ids": [media_id]})
    assert again.status == 422 and "already attached" in (await again.json())["error"]
    theirs = await _upload(client, bob_auth)
    stolen = await client.post("/api/v1/statuses", headers=auth, json={"status": "x", "media_ids": [theirs]})
    assert stolen.status == 422 and "not found" in (await stolen.json())["error"]
    assert await count(pool, POSTS) == 1


def ids_of(statuses: list[dict]) -> list[str]:
    return [s["id"] for s in statuses]
