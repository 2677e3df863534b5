"""Favourite, reblog, bookmark, pin and their undos: the answer, the stored state, and what federates."""

from __future__ import annotations

import pytest

from tests.api.conftest import mint_token
from tests.api.schemas import check_status
from tests.api.status_support import (  # noqa: F401 (fixtures)
    act,
    bob_auth,
    count,
    follow,
    get_json,
    post,
    remote_actor,
)
from tests.support.database import DELIVERED

NOT_FOUND = {"error": "Record not found"}


async def _remote_post(pool, author_id: int, uri: str = "https://remote.example/notes/1",
                       visibility: str = "public") -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """INSERT INTO objects (uri, object_type, actor_id, is_local, content, url, visibility, data)
               VALUES ($1, 'Note', $2, false, '<p>remote</p>', $1, $3, '{}'::jsonb) RETURNING id""",
            uri, author_id, visibility)


async def test_favourite_and_unfavourite(client, auth, bob_auth, pool):
    body = await post(client, auth, "like me")
    liked = await act(client, bob_auth, body["id"], "favourite")
    check_status(liked)
    assert liked["favourited"] is True and liked["favourites_count"] == 1
    again = await act(client, bob_auth, body["id"], "favourite")
    assert again["favourites_count"] == 1
    assert await count(pool, "SELECT count(*) FROM notifications WHERE type = 'favourite'") == 1
    undone = await act(client, bob_auth, body["id"], "unfavourite")
    assert undone["favourited"] is False and undone["favourites_count"] == 0
    assert await count(pool, "SELECT count(*) FROM notifications") == 0  # the notification went with the like
    assert (await act(client, bob_auth, body["id"], "unfavourite"))["favourited"] is False


async def test_favourite_of_a_remote_post_reaches_its_author(client, auth, pool):
    carol = await remote_actor(pool)
    object_id = await _remote_post(pool, carol)
    await act(client, auth, str(object_id), "favourite")
    async with pool.acquire() as conn:
        like = await conn.fetchrow(f"SELECT inbox_uri, body FROM {DELIVERED} WHERE body->>'type' = 'Like'")
    assert like["inbox_uri"] == "https://remote.example/inbox"
    assert like["body"]["object"] == "https://remote.example/notes/1"
    await act(client, auth, str(object_id), "unfavourite")
    assert await count(pool, f"SELECT count(*) FROM {DELIVERED} WHERE body->>'type' = 'Undo'") == 1


async def test_reblog_answers_the_boost_wrapping_the_post(client, auth, bob_auth, bob, pool):
    body = await post(client, auth, "boost me")
    boost = await act(client, bob_auth, body["id"], "reblog")
    check_status(boost)
    assert boost["id"] != body["id"] and int(boost["id"]) > int(body["id"])
    assert boost["account"]["id"] == str(bob.id) and boost["reblog"]["id"] == body["id"]
    assert boost["reblog"]["reblogged"] is True and boost["reblog"]["reblogs_count"] == 1
    assert (await act(client, bob_auth, body["id"], "reblog"))["id"] == boost["id"]
    fetched = await get_json(client, f"/api/v1/statuses/{boost['id']}")
    assert fetched["reblog"]["id"] == body["id"]
    # Acting on the boost's id acts on the post.
    assert (await act(client, auth, boost["id"], "favourite"))["id"] == body["id"]
    unboosted = await act(client, bob_auth, boost["id"], "unreblog")
    assert unboosted["id"] == body["id"] and unboosted["reblogged"] is False
    assert (await client.get(f"/api/v1/statuses/{boost['id']}")).status == 404


async def test_boost_of_a_remote_post_reaches_its_author_and_followers(client, auth, alice, pool):
    carol = await remote_actor(pool)
    dave = await remote_actor(pool, "dave", "other.example")
    await follow(pool, dave, alice.id)
    object_id = await _remote_post(pool, carol)
    await act(client, auth, str(object_id), "reblog")
    async with pool.acquire() as conn:
        inboxes = {r["inbox_uri"] for r in await conn.fetch(
            f"SELECT inbox_uri FROM {DELIVERED} WHERE body->>'type' = 'Announce'")}
    assert inboxes == {"https://remote.example/inbox", "https://other.example/inbox"}


@pytest.mark.parametrize("visibility", ["private", "direct"])
async def test_boosting_a_private_or_direct_post_one_can_see_is_403(client, auth, bob_auth, pool, alice, bob,
                                                                     visibility):
    await follow(pool, bob.id, alice.id)
    body = await post(client, auth, "no boosts @bob", visibility=visibility)
    response = await client.post(f"/api/v1/statuses/{body['id']}/reblog", headers=bob_auth)
    assert response.status == 403 and (await response.json())["error"] == "This action is not allowed"
    assert await count(pool, "SELECT count(*) FROM announces") == 0


async def test_acting_on_a_post_one_cannot_see_is_404_like_a_missing_one(client, auth, bob_auth, pool):
    body = await post(client, auth, "private", visibility="private")
    for action in ("favourite", "reblog", "bookmark", "pin", "unfavourite", "unreblog"):
        for status_id in (body["id"], "987654321"):
            response = await client.post(f"/api/v1/statuses/{status_id}/{action}", headers=bob_auth)
            assert response.status == 404 and await response.json() == NOT_FOUND, action
    assert await count(pool, "SELECT count(*) FROM likes") == 0


async def test_bookmark_and_unbookmark(client, auth, bob_auth):
    body = await post(client, auth, "keep")
    marked = await act(client, bob_auth, body["id"], "bookmark")
    assert marked["bookmarked"] is True
    assert [s["id"] for s in await get_json(client, "/api/v1/bookmarks", bob_auth)] == [body["id"]]
    assert (await act(client, bob_auth, body["id"], "unbookmark"))["bookmarked"] is False
    assert await get_json(client, "/api/v1/bookmarks", bob_auth) == []


async def test_pin_feeds_the_featured_collection_and_pinned_statuses(client, auth, alice, pool):
    body = await post(client, auth, "pinned post")
    pinned = await act(client, auth, body["id"], "pin")
    assert pinned["pinned"] is True
    listed = await get_json(client, f"/api/v1/accounts/{alice.id}/statuses", pinned="true")
    assert [s["id"] for s in listed] == [body["id"]]
    featured = await client.get("/users/alice/collections/featured", headers={"Accept": "application/activity+json"})
    document = await featured.json(content_type=None)
    assert document["totalItems"] == 1 and document["orderedItems"][0]["id"] == body["uri"]
    assert (await act(client, auth, body["id"], "unpin"))["pinned"] is False
    assert await get_json(client, f"/api/v1/accounts/{alice.id}/statuses", pinned="true") == []


async def test_pinning_others_posts_direct_posts_or_too_many_is_422(client, auth, bob_auth, pool):
    theirs = await post(client, bob_auth, "bob's")
    response = await client.post(f"/api/v1/statuses/{theirs['id']}/pin", headers=auth)
    assert response.status == 422 and "own posts" in (await response.json())["error"]
    direct = await post(client, auth, "dm", visibility="direct")
    assert (await client.post(f"/api/v1/statuses/{direct['id']}/pin", headers=auth)).status == 422
    for n in range(5):
        await act(client, auth, (await post(client, auth, f"p{n}"))["id"], "pin")
    extra = await post(client, auth, "one too many")
    response = await client.post(f"/api/v1/statuses/{extra['id']}/pin", headers=auth)
    assert response.status == 422 and "maximum" in (await response.json())["error"]
    assert await count(pool, "SELECT count(*) FROM pins") == 5


@pytest.mark.parametrize(("action", "scope"), [
    ("favourite", "write:statuses"), ("reblog", "write:favourites"), ("bookmark", "write:statuses"),
    ("pin", "write:statuses"),
])
async def test_actions_demand_their_scope(client, auth, pool, oauth_app, alice, action, scope):
    body = await post(client, auth, "scoped")
    token = await mint_token(pool, oauth_app, alice.id, scopes=(scope, "read"))
    response = await client.post(f"/api/v1/statuses/{body['id']}/{action}",
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status == 403 and "error" in await response.json()
    assert (await client.post(f"/api/v1/statuses/{body['id']}/{action}")).status == 401


async def test_a_refusal_other_than_already_done_is_not_a_silent_success(client, auth, pool, publisher, bob):
    """The caller's token was checked, then the account was deleted before the like was written."""
    from fedserver.accounts import delete_account
    from fedserver.api.auth import Auth
    from fedserver.api.status_service import favourite, reblog
    from fedserver.errors import HTTPError

    body = await post(client, auth, "like me")
    caller = Auth(token_id=0, app_id=0, account_id=bob.id, username="bob", scopes=("write",))
    await delete_account(pool, publisher, "bob")
    for action in (favourite, reblog):
        with pytest.raises(HTTPError) as refused:
            await action(pool, publisher, caller, int(body["id"]))
        assert refused.value.status == 422 and "deleted" in refused.value.message
    assert await count(pool, "SELECT count(*) FROM likes") == 0
    assert await count(pool, "SELECT count(*) FROM announces") == 0
