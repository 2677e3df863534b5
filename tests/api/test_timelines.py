"""Home, public, hashtag and account timelines, favourites and bookmarks: content, visibility and paging."""

from __future__ import annotations

import pytest

from fedserver.federation import commands
from tests.api.inbound import PUBLIC, carol, fed_api  # noqa: F401 (fixtures)
from tests.api.schemas import check_status
from tests.api.status_support import (  # noqa: F401 (fixtures)
    act, bob_auth, count, follow, get_json, link_cursors, post, remote_actor,
)


def ids(statuses: list[dict]) -> list[str]:
    return [s["id"] for s in statuses]


# Home


async def test_home_has_own_posts_and_followed_posts_and_boosts_newest_first(client, auth, bob_auth, alice, bob,
                                                                               pool, publisher):
    await commands.follow(pool, publisher, None, "alice", bob.uri)  # local follow: accepted at once
    mine = await post(client, auth, "mine")
    theirs = await post(client, bob_auth, "bob's")
    unrelated = await post(client, auth, "to boost")
    boost = await act(client, bob_auth, unrelated["id"], "reblog")  # alice's own post: not shown twice
    dm = await post(client, bob_auth, "dm to someone else", visibility="direct")
    home = await get_json(client, "/api/v1/timelines/home", auth)
    for status in home:
        check_status(status)
    assert ids(home) == [unrelated["id"], theirs["id"], mine["id"]]
    assert boost["id"] not in ids(home) and dm["id"] not in ids(home)
    other = await post(client, bob_auth, "bob again")
    boosted = await act(client, bob_auth, other["id"], "reblog")
    assert (await get_json(client, "/api/v1/timelines/home", auth))[0]["id"] == other["id"]
    bobs_view = await get_json(client, "/api/v1/timelines/home", bob_auth)
    assert boosted["id"] not in ids(bobs_view)  # bob's own post is already there
    mine_boosted = await act(client, auth, theirs["id"], "reblog")
    assert (await get_json(client, "/api/v1/timelines/home", auth))[0]["id"] != mine_boosted["id"]


async def test_following_backfills_and_unfollowing_clears_the_home_timeline(client, auth, bob_auth, bob, pool,
                                                                           publisher):
    old = [await post(client, bob_auth, f"old {n}") for n in range(3)]
    await post(client, bob_auth, "private one", visibility="private")
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    home = await get_json(client, "/api/v1/timelines/home", auth)
    assert len(home) == 4 and set(ids(old)) <= set(ids(home))
    await commands.unfollow(pool, publisher, "alice", bob.uri)
    assert await get_json(client, "/api/v1/timelines/home", auth) == []


async def test_replies_reach_followers_only_when_they_follow_both_sides(client, auth, bob_auth, pool, settings,
                                                                       publisher, bob):
    from fedserver.accounts import create_account, validate_new_account

    dave = await create_account(pool, settings, validate_new_account(username="dave"))
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    dave_post_uri = await commands.create_post(pool, publisher, "dave", "dave's post")
    async with pool.acquire() as conn:
        dave_post = await conn.fetchval("SELECT id FROM objects WHERE uri = $1", dave_post_uri)
    reply_to_stranger = await post(client, bob_auth, "reply to dave", in_reply_to_id=str(dave_post))
    self_thread = await post(client, bob_auth, "thread", in_reply_to_id=reply_to_stranger["id"])
    home = ids(await get_json(client, "/api/v1/timelines/home", auth))
    assert reply_to_stranger["id"] not in home
    assert self_thread["id"] in home  # a reply to one's own post is a thread, shown as on Mastodon
    await commands.follow(pool, publisher, None, "alice", dave.uri)
    later = await post(client, bob_auth, "another reply to dave", in_reply_to_id=str(dave_post))
    assert later["id"] in ids(await get_json(client, "/api/v1/timelines/home", auth))


async def test_home_pages_with_max_since_and_min_id_and_link_headers(client, auth):
    posted = [(await post(client, auth, f"n{n}"))["id"] for n in range(7)]
    newest_first = posted[::-1]
    response = await client.get("/api/v1/timelines/home", headers=auth, params={"limit": "3"})
    assert ids(await response.json()) == newest_first[:3]
    link = response.headers["Link"]
    assert link.startswith("<http://shop.test/api/v1/timelines/home?limit=3&max_id=")  # next first (toot)
    cursors = link_cursors(response)
    assert cursors == {"next": newest_first[2], "prev": newest_first[0]}
    second = await get_json(client, "/api/v1/timelines/home", auth, limit="3", max_id=cursors["next"])
    assert ids(second) == newest_first[3:6]
    assert ids(await get_json(client, "/api/v1/timelines/home", auth, since_id=posted[4])) == newest_first[:2]
    assert ids(await get_json(client, "/api/v1/timelines/home", auth, min_id=posted[1], limit="2")) == [
        posted[3], posted[2]]
    last = await client.get("/api/v1/timelines/home", headers=auth, params={"max_id": posted[0]})
    assert await last.json() == [] and "Link" not in last.headers
    assert (await client.get("/api/v1/timelines/home", headers=auth, params={"max_id": "abc"})).status == 400
    assert len(await get_json(client, "/api/v1/timelines/home", auth, limit="500")) == 7


async def test_home_needs_a_user_token(client):
    response = await client.get("/api/v1/timelines/home")
    assert response.status == 401 and "error" in await response.json()


async def test_remote_posts_of_followed_accounts_reach_the_home_timeline(fed_api, carol, alice, pool, oauth_app):
    from tests.api.conftest import mint_token

    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id)}"}
    await carol.send({"type": "Follow", "object": alice.uri})  # carol becomes known (and follows alice)
    await follow(pool, alice.id, await carol.actor_id())
    note = await carol.create(carol.note("<p>remote #Kiln post</p>", tags=[
        {"type": "Hashtag", "name": "#Kiln", "href": "https://x/tags/kiln"}]))
    home = await get_json(fed_api, "/api/v1/timelines/home", headers)
    assert [s["uri"] for s in home] == [note["id"]]
    check_status(home[0])
    assert home[0]["account"]["acct"] == f"carol@127.0.0.1:{carol.server.server.port}"
    assert ids(await get_json(fed_api, "/api/v1/timelines/tag/kiln")) == ids(home)
    assert ids(await get_json(fed_api, "/api/v1/timelines/public", remote="true")) == ids(home)
    assert await get_json(fed_api, "/api/v1/timelines/public", local="true") == []


async def test_a_remote_boost_of_an_unknown_post_is_fetched_into_the_home_timeline(fed_api, carol, alice, pool,
                                                                                   oauth_app):
    from tests.api.conftest import mint_token

    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id)}"}
    await carol.send({"type": "Follow", "object": alice.uri})
    await follow(pool, alice.id, await carol.actor_id())
    erin = carol.server.add_actor("erin")
    original = {**carol.note("<p>erin's post</p>"), "attributedTo": erin.uri}
    carol.server.extra_routes[original["id"].removeprefix(carol.server.base)] = {"@context": PUBLIC[:-7], **original}
    assert await carol.send({"type": "Announce", "object": original["id"], "to": [PUBLIC]}) == ["done"]
    home = await get_json(fed_api, "/api/v1/timelines/home", headers)
    assert len(home) == 1 and home[0]["reblog"]["uri"] == original["id"]
    assert home[0]["account"]["username"] == "carol" and home[0]["reblog"]["account"]["username"] == "erin"
    check_status(home[0])


# Public and hashtag


async def test_public_timeline_shows_public_posts_without_replies_to_others(client, auth, bob_auth, pool):
    public = await post(client, auth, "hello world #Pottery")
    await post(client, auth, "unlisted", visibility="unlisted")
    await post(client, auth, "private", visibility="private")
    reply = await post(client, bob_auth, "reply", in_reply_to_id=public["id"])
    timeline = await get_json(client, "/api/v1/timelines/public")
    for status in timeline:
        check_status(status, signed_in=False)
    assert ids(timeline) == [public["id"]] and reply["id"] not in ids(timeline)
    assert ids(await get_json(client, "/api/v1/timelines/public", local="true")) == [public["id"]]
    assert await get_json(client, "/api/v1/timelines/public", remote="true") == []
    assert await get_json(client, "/api/v1/timelines/public", only_media="true") == []


async def test_hashtag_timeline_matches_korean_and_any_case(client, auth):
    first = await post(client, auth, "#도자기 전시")
    second = await post(client, auth, "more #POTTERY and #도자기")
    await post(client, auth, "#도자기 private", visibility="private")
    assert ids(await get_json(client, "/api/v1/timelines/tag/도자기")) == [second["id"], first["id"]]
    assert ids(await get_json(client, "/api/v1/timelines/tag/Pottery")) == [second["id"]]
    assert await get_json(client, "/api/v1/timelines/tag/unknown") == []
    response = await client.get("/api/v1/timelines/tag/도자기", params={"limit": "1"})
    assert link_cursors(response)["next"] == second["id"]


# Account statuses


async def test_account_statuses_filters(client, auth, bob_auth, alice, bob):
    theirs = await post(client, bob_auth, "bob")
    top = await post(client, auth, "top")
    reply = await post(client, auth, "reply", in_reply_to_id=theirs["id"])
    self_reply = await post(client, auth, "thread", in_reply_to_id=top["id"])
    boost = await act(client, auth, theirs["id"], "reblog")
    private = await post(client, auth, "private", visibility="private")
    path = f"/api/v1/accounts/{alice.id}/statuses"
    everything = await get_json(client, path, auth)
    for status in everything:
        check_status(status)
    assert ids(everything) == [private["id"], boost["id"], self_reply["id"], reply["id"], top["id"]]
    assert ids(await get_json(client, path, auth, exclude_replies="true")) == [
        private["id"], boost["id"], self_reply["id"], top["id"]]
    assert boost["id"] not in ids(await get_json(client, path, auth, exclude_reblogs="1"))
    assert private["id"] not in ids(await get_json(client, path, bob_auth))
    assert private["id"] not in ids(await get_json(client, path))
    response = await client.get(path, headers=auth, params={"limit": "2"})
    assert ids(await response.json()) == [private["id"], boost["id"]]
    rest = await get_json(client, path, auth, max_id=link_cursors(response)["next"])
    assert ids(rest) == [self_reply["id"], reply["id"], top["id"]]
    assert await get_json(client, path, auth, only_media="true") == []


async def test_account_statuses_of_an_unknown_account_is_404(client):
    response = await client.get("/api/v1/accounts/987654/statuses")
    assert response.status == 404 and await response.json() == {"error": "Record not found"}


# Favourites and bookmarks


@pytest.mark.parametrize(("action", "path"), [("favourite", "/api/v1/favourites"),
                                              ("bookmark", "/api/v1/bookmarks")])
async def test_favourites_and_bookmarks_page_by_when_they_were_made(client, auth, bob_auth, action, path):
    posts = [await post(client, bob_auth, f"p{n}") for n in range(3)]
    for status in (posts[1], posts[0], posts[2]):
        await act(client, auth, status["id"], action)
    response = await client.get(path, headers=auth, params={"limit": "2"})
    assert ids(await response.json()) == [posts[2]["id"], posts[0]["id"]]
    rest = await get_json(client, path, auth, max_id=link_cursors(response)["next"])
    assert ids(rest) == [posts[1]["id"]]
    assert (await client.get(path)).status == 401


async def test_posts_across_a_block_are_hidden_everywhere(client, auth, bob_auth, pool, alice, bob, publisher):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    theirs = await post(client, bob_auth, "#blocked post")
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO blocks (actor_id, target_id) VALUES ($1, $2)", alice.id, bob.id)
    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public", "/api/v1/timelines/tag/blocked",
                 f"/api/v1/accounts/{bob.id}/statuses"):
        assert theirs["id"] not in ids(await get_json(client, path, auth)), path
    response = await client.get(f"/api/v1/statuses/{theirs['id']}", headers=auth)
    assert response.status == 404 and await response.json() == {"error": "Record not found"}
    assert ids(await get_json(client, "/api/v1/timelines/public")) == [theirs["id"]]  # others still see it
    await post(client, bob_auth, "@alice hello?")
    assert await get_json(client, "/api/v1/notifications", auth) == []
