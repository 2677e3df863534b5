"""Notifications from local and remote interactions, their filters and paging, and follow requests."""

from __future__ import annotations

from fedserver.accounts import create_account, validate_new_account
from fedserver.federation import commands
from tests.api.conftest import mint_token
from tests.api.inbound import PUBLIC, carol, fed_api  # noqa: F401 (fixtures)
from tests.api.schemas import RELATIONSHIP, check, check_notification
from tests.api.status_support import (  # noqa: F401 (fixtures)
    act,
    bob_auth,
    count,
    get_json,
    link_cursors,
    post,
)
from tests.support.database import DELIVERED

NOT_FOUND = {"error": "Record not found"}


def kinds(notifications: list[dict]) -> list[str]:
    return [n["type"] for n in notifications]


async def test_local_interactions_notify_the_author(client, auth, bob_auth, pool, publisher, alice, bob):
    mine = await post(client, auth, "hello")
    await act(client, bob_auth, mine["id"], "favourite")
    await act(client, bob_auth, mine["id"], "reblog")
    reply = await post(client, bob_auth, "nice", in_reply_to_id=mine["id"])
    mention = await post(client, bob_auth, "hey @alice")
    await commands.follow(pool, publisher, None, "bob", alice.uri)
    found = await get_json(client, "/api/v1/notifications", auth)
    for item in found:
        check_notification(item)
        assert item["account"]["id"] == str(bob.id)
    assert kinds(found) == ["follow", "mention", "mention", "reblog", "favourite"]
    assert [n["status"]["id"] for n in found[1:]] == [mention["id"], reply["id"], mine["id"], mine["id"]]
    assert await get_json(client, "/api/v1/notifications", bob_auth) == []  # nothing for one's own actions


async def test_follow_request_of_a_locked_account_and_its_endpoints(client, auth, bob_auth, pool, publisher, alice,
                                                                     bob):
    await client.patch("/api/v1/accounts/update_credentials", headers=auth, json={"locked": True})
    await commands.follow(pool, publisher, None, "bob", alice.uri)
    assert kinds(await get_json(client, "/api/v1/notifications", auth)) == ["follow_request"]
    [requester] = await get_json(client, "/api/v1/follow_requests", auth)
    assert requester["id"] == str(bob.id)
    response = await client.post(f"/api/v1/follow_requests/{bob.id}/authorize", headers=auth)
    relationship = await response.json()
    assert response.status == 200, relationship
    check(relationship, RELATIONSHIP)
    assert relationship["followed_by"] is True and relationship["requested_by"] is False
    assert await get_json(client, "/api/v1/notifications", auth) == []  # the request was answered
    assert await get_json(client, "/api/v1/follow_requests", auth) == []
    response = await client.post(f"/api/v1/follow_requests/{bob.id}/authorize", headers=auth)
    assert response.status == 404 and await response.json() == NOT_FOUND


async def test_rejecting_a_remote_follow_request_sends_a_reject(fed_api, carol, pool, settings, oauth_app):
    locked = await create_account(pool, settings, validate_new_account(username="locked", locked=True))
    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, locked.id)}"}
    await carol.send({"type": "Follow", "object": locked.uri})
    [note] = await get_json(fed_api, "/api/v1/notifications", headers)
    assert note["type"] == "follow_request" and note["account"]["username"] == "carol"
    carol_id = await carol.actor_id()
    response = await fed_api.post(f"/api/v1/follow_requests/{carol_id}/reject", headers=headers)
    body = await response.json()
    assert response.status == 200 and body["requested_by"] is False and body["followed_by"] is False
    assert await count(pool, f"SELECT count(*) FROM {DELIVERED} WHERE body->>'type' = 'Reject'") == 1
    assert await get_json(fed_api, "/api/v1/notifications", headers) == []
    assert (await fed_api.post("/api/v1/follow_requests/1/reject")).status == 401


async def test_remote_follows_likes_boosts_replies_and_mentions_notify(fed_api, carol, alice, pool, oauth_app):
    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id)}"}
    assert await carol.send({"type": "Follow", "object": alice.uri}) == ["done"]
    mine = await post(fed_api, headers, "local post")
    assert await carol.send({"type": "Like", "object": mine["uri"]}) == ["done"]
    announce = {"type": "Announce", "object": mine["uri"], "to": [PUBLIC]}
    assert await carol.send(announce) == ["done"]
    mention_tag = [{"type": "Mention", "href": alice.uri, "name": "@alice"}]
    reply = await carol.create(carol.note("<p>reply</p>", in_reply_to=mine["uri"]))
    mention = await carol.create(carol.note("<p>@alice hi</p>", tags=mention_tag, cc=[alice.uri]))
    dm = await carol.create(carol.note("<p>@alice secret</p>", to=[alice.uri], cc=[], tags=mention_tag))
    found = await get_json(fed_api, "/api/v1/notifications", headers)
    for item in found:
        check_notification(item)
        assert item["account"]["username"] == "carol"
    assert kinds(found) == ["mention", "mention", "mention", "reblog", "favourite", "follow"]
    assert [n["status"]["uri"] for n in found[:3]] == [dm["id"], mention["id"], reply["id"]]
    assert found[0]["status"]["visibility"] == "direct"
    home = await get_json(fed_api, "/api/v1/timelines/home", headers)
    assert dm["id"] in [s["uri"] for s in home]  # carol is not followed, but the direct message is for alice
    mine_now = await get_json(fed_api, f"/api/v1/statuses/{mine['id']}", headers)
    assert (mine_now["favourites_count"], mine_now["reblogs_count"], mine_now["replies_count"]) == (1, 1, 1)
    await carol.send({"type": "Undo", "object": {"type": "Like", "object": mine["uri"], "actor": carol.uri}})
    assert "favourite" not in kinds(await get_json(fed_api, "/api/v1/notifications", headers))


async def test_type_filters_paging_get_dismiss_and_clear(client, auth, bob_auth, pool, alice, bob):
    mine = await post(client, auth, "hello")
    await act(client, bob_auth, mine["id"], "favourite")
    await act(client, bob_auth, mine["id"], "reblog")
    await post(client, bob_auth, "@alice one")
    await post(client, bob_auth, "@alice two")
    assert kinds(await get_json(client, "/api/v1/notifications", auth, **{"types[]": "mention"})) == ["mention"] * 2
    response = await client.get("/api/v1/notifications?types[]=favourite&types[]=reblog", headers=auth)
    assert kinds(await response.json()) == ["reblog", "favourite"]
    excluded = await client.get("/api/v1/notifications?exclude_types[]=mention&exclude_types[]=reblog", headers=auth)
    assert kinds(await excluded.json()) == ["favourite"]
    assert await get_json(client, "/api/v1/notifications", auth, **{"types[]": "no-such-type"}) == []
    assert len(await get_json(client, "/api/v1/notifications", auth, account_id=str(bob.id))) == 4
    response = await client.get("/api/v1/notifications", headers=auth, params={"limit": "3"})
    first = await response.json()
    assert kinds(first) == ["mention", "mention", "reblog"]
    rest = await get_json(client, "/api/v1/notifications", auth, max_id=link_cursors(response)["next"])
    assert kinds(rest) == ["favourite"]
    one = await get_json(client, f"/api/v1/notifications/{first[0]['id']}", auth)
    check_notification(one)
    assert one == first[0]
    stranger = await client.get(f"/api/v1/notifications/{first[0]['id']}", headers=bob_auth)
    assert stranger.status == 404 and await stranger.json() == NOT_FOUND
    stranger = await client.post(f"/api/v1/notifications/{first[0]['id']}/dismiss", headers=bob_auth)
    assert stranger.status == 404
    dismissed = await client.post(f"/api/v1/notifications/{first[0]['id']}/dismiss", headers=auth)
    assert dismissed.status == 200 and await dismissed.json() == {}
    assert len(await get_json(client, "/api/v1/notifications", auth)) == 3
    cleared = await client.post("/api/v1/notifications/clear", headers=auth)
    assert cleared.status == 200 and await cleared.json() == {}
    assert await get_json(client, "/api/v1/notifications", auth) == []


async def test_notifications_of_a_deleted_post_disappear(client, auth, bob_auth):
    mention = await post(client, bob_auth, "@alice soon deleted")
    assert len(await get_json(client, "/api/v1/notifications", auth)) == 1
    await client.delete(f"/api/v1/statuses/{mention['id']}", headers=bob_auth)
    assert await get_json(client, "/api/v1/notifications", auth) == []


async def test_notification_endpoints_demand_their_scopes(client, pool, oauth_app, alice):
    reader = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, scopes=('read:statuses',))}"}
    assert (await client.get("/api/v1/notifications", headers=reader)).status == 403
    assert (await client.post("/api/v1/notifications/clear", headers=reader)).status == 403
    assert (await client.get("/api/v1/follow_requests", headers=reader)).status == 403
    assert (await client.get("/api/v1/notifications")).status == 401
