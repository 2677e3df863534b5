"""Blocks, mutes and domain blocks over the API: what they hide, what they refuse, what other servers are told."""

from __future__ import annotations

from fedserver.accounts import create_account, validate_new_account
from tests.api.conftest import mint_token
from tests.api.inbound import PUBLIC, carol, fed_api  # noqa: F401 (fixtures)
from tests.api.schemas import ACCOUNT, RELATIONSHIP, check
from tests.api.status_support import act, bob_auth, count, follow, get_json, post, remote_actor  # noqa: F401
from tests.support.database import DELIVERED


async def rel(client, auth: dict, path: str, expect: int = 200, **body) -> dict:
    response = await client.post(path, headers=auth, json=body)
    answer = await response.json()
    assert response.status == expect, answer
    if expect == 200:
        check(answer, RELATIONSHIP)
    return answer


def ids(statuses: list[dict]) -> list[str]:
    return [s["id"] for s in statuses]


# Blocks


async def test_a_block_ends_follows_both_ways_hides_posts_and_is_listed(client, auth, bob_auth, pool, alice, bob):
    await follow(pool, alice.id, bob.id)
    await follow(pool, bob.id, alice.id)
    hers = await post(client, auth, "from alice")
    his = await post(client, bob_auth, "from bob")
    assert his["id"] in ids(await get_json(client, "/api/v1/timelines/home", auth))
    body = await rel(client, auth, f"/api/v1/accounts/{bob.id}/block")
    assert body["blocking"] is True and body["following"] is False and body["followed_by"] is False
    assert await count(pool, "SELECT count(*) FROM follows") == 0
    assert await count(pool, "SELECT count(*) FROM activities WHERE activity_type = 'Block'") == 1
    # Hidden from the blocker everywhere, and the blocker's posts from the blocked.
    assert his["id"] not in ids(await get_json(client, "/api/v1/timelines/home", auth))
    assert his["id"] not in ids(await get_json(client, "/api/v1/timelines/public", auth))
    await get_json(client, f"/api/v1/statuses/{his['id']}", auth, expect=404)
    await get_json(client, f"/api/v1/statuses/{hers['id']}", bob_auth, expect=404)
    # The blocked cannot follow back, nor like or reply to a post it cannot see.
    refused = await rel(client, bob_auth, f"/api/v1/accounts/{alice.id}/follow", expect=422)
    assert "blocks" in refused["error"]
    assert await count(pool, "SELECT count(*) FROM follows") == 0
    await act(client, bob_auth, hers["id"], "favourite", expect=404)
    # Idempotent, listed, and lifted by unblock (Undo{Block}).
    assert (await rel(client, auth, f"/api/v1/accounts/{bob.id}/block"))["blocking"] is True
    response = await client.get("/api/v1/blocks", headers=auth)
    blocked = await response.json()
    assert response.status == 200 and [a["id"] for a in blocked] == [str(bob.id)]
    check(blocked[0], ACCOUNT)
    assert (await rel(client, auth, f"/api/v1/accounts/{bob.id}/unblock"))["blocking"] is False
    undone = "SELECT array_agg(data->'object'->>'type' ORDER BY id) FROM activities WHERE activity_type = 'Undo'"
    assert await count(pool, undone) == ["Follow", "Block"]  # alice's follow of bob ended by the block
    assert (await rel(client, auth, f"/api/v1/accounts/{bob.id}/unblock"))["blocking"] is False
    assert await get_json(client, "/api/v1/blocks", auth) == []
    assert his["id"] in ids(await get_json(client, "/api/v1/timelines/public", auth))


async def test_a_local_follow_of_someone_who_blocks_you_is_refused(client, auth, bob_auth, pool, alice, bob):
    await rel(client, auth, f"/api/v1/accounts/{bob.id}/block")
    response = await client.post(f"/api/v1/accounts/{alice.id}/follow", headers=bob_auth)
    assert response.status == 422, await response.json()
    assert await count(pool, "SELECT count(*) FROM follows") == 0


async def test_blocking_oneself_unknown_accounts_and_scopes(client, auth, pool, oauth_app, alice, bob):
    body = await rel(client, auth, f"/api/v1/accounts/{alice.id}/block", expect=422)
    assert "yourself" in body["error"]
    assert (await rel(client, auth, f"/api/v1/accounts/{alice.id}/mute", expect=422))["error"]
    for bad in ("999999", "abc"):
        assert (await rel(client, auth, f"/api/v1/accounts/{bad}/block", expect=404)) == {"error": "Record not found"}
    assert await count(pool, "SELECT count(*) FROM blocks") + await count(pool, "SELECT count(*) FROM mutes") == 0
    url = f"/api/v1/accounts/{bob.id}/block"
    assert (await client.post(url)).status == 401
    read_only = await mint_token(pool, oauth_app, alice.id, ("read",))
    assert (await client.post(url, headers={"Authorization": f"Bearer {read_only}"})).status == 403
    assert (await client.get("/api/v1/blocks", headers={"Authorization": f"Bearer {read_only}"})).status == 200
    for scopes in (("write:blocks",), ("follow",), ("write",)):
        token = await mint_token(pool, oauth_app, alice.id, scopes)
        await rel(client, {"Authorization": f"Bearer {token}"}, url)


async def test_blocking_a_remote_account_tells_its_server(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, alice.id, carol)
    await follow(pool, carol, alice.id)
    await rel(client, auth, f"/api/v1/accounts/{carol}/block")
    sent = {r["type"]: r["inbox"] for r in await _deliveries(pool)}
    assert sent == {"Undo": "https://remote.example/users/carol/inbox",
                    "Reject": "https://remote.example/users/carol/inbox",
                    "Block": "https://remote.example/users/carol/inbox"}
    await rel(client, auth, f"/api/v1/accounts/{carol}/unblock")
    undo = [r for r in await _deliveries(pool) if r["type"] == "Undo" and r["object_type"] == "Block"]
    assert len(undo) == 1


async def _deliveries(pool) -> list:
    async with pool.acquire() as conn:
        return await conn.fetch(f"""SELECT b.body->>'type' AS type, b.body->'object'->>'type' AS object_type,
                                            inbox_uri AS inbox FROM {DELIVERED} ORDER BY deliveries.id""")


async def test_a_remote_block_holds_back_its_likes_and_follows(fed_api, carol, pool, alice, oauth_app):
    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id)}"}
    mine = await post(fed_api, headers, "local post")
    assert await carol.send({"type": "Like", "object": mine["uri"]}) == ["done"]  # carol becomes known here
    assert await carol.send({"type": "Undo", "object": {"type": "Like", "object": mine["uri"]}}) == ["done"]
    carol_id = await carol.actor_id()
    await rel(fed_api, headers, f"/api/v1/accounts/{carol_id}/block")
    assert await carol.send({"type": "Like", "object": mine["uri"]}) == ["done"]
    assert await count(pool, "SELECT count(*) FROM likes") == 0
    assert await carol.send({"type": "Follow", "object": alice.uri}) == ["done"]
    assert await count(pool, "SELECT count(*) FROM follows") == 0
    assert await count(pool, f"SELECT count(*) FROM {DELIVERED} WHERE b.body->>'type' = 'Reject'") == 1
    reply = carol.note(f"@alice hi", in_reply_to=mine["uri"], tags=[{"type": "Mention", "href": alice.uri}])
    await carol.create(reply)
    assert await get_json(fed_api, "/api/v1/notifications", headers) == []
    public = ids(await get_json(fed_api, "/api/v1/timelines/public", headers))
    assert public == [mine["id"]]


async def test_an_order_from_a_blocked_buyer_is_refused(client, auth, bob_auth, pool, alice, bob):
    product = await (await client.post("/api/v1/storefront/products", headers=auth,
                                       json={"title": "찻잔", "price": 38000, "stock": 2})).json()
    await rel(client, auth, f"/api/v1/accounts/{bob.id}/block")
    response = await client.post("/api/v1/storefront/orders", headers=bob_auth,
                                 json={"listing": product["url"], "quantity": 1})
    assert response.status == 422, await response.json()
    assert "does not take orders" in (await response.json())["error"]
    assert await count(pool, "SELECT count(*) FROM orders") == 0


# Mutes


async def test_a_mute_hides_posts_and_notifications_without_telling(client, auth, bob_auth, pool, alice, bob):
    await follow(pool, alice.id, bob.id)
    body = await rel(client, auth, f"/api/v1/accounts/{bob.id}/mute")
    assert body["muting"] is True and body["muting_notifications"] is True and body["following"] is True
    his = await post(client, bob_auth, "from bob")
    mine = await post(client, auth, "from alice")
    await act(client, bob_auth, mine["id"], "favourite")
    assert his["id"] not in ids(await get_json(client, "/api/v1/timelines/home", auth))
    assert his["id"] not in ids(await get_json(client, "/api/v1/timelines/public", auth))
    assert await get_json(client, "/api/v1/notifications", auth) == []
    # Still there when asked for directly, and for everyone else.
    await get_json(client, f"/api/v1/statuses/{his['id']}", auth)
    assert his["id"] in ids(await get_json(client, "/api/v1/timelines/public"))
    assert await count(pool, "SELECT count(*) FROM activities WHERE activity_type IN ('Block', 'Undo')") == 0
    [listed] = await get_json(client, "/api/v1/mutes", auth)
    assert listed["id"] == str(bob.id) and listed["mute_expires_at"] is None
    # Muting again with notifications=false changes the mute: the favourite shows.
    body = await rel(client, auth, f"/api/v1/accounts/{bob.id}/mute", notifications=False, duration=3600)
    assert body["muting"] is True and body["muting_notifications"] is False
    assert [n["type"] for n in await get_json(client, "/api/v1/notifications", auth)] == ["favourite"]
    [listed] = await get_json(client, "/api/v1/mutes", auth)
    assert listed["mute_expires_at"] is not None
    assert (await rel(client, auth, f"/api/v1/accounts/{bob.id}/unmute"))["muting"] is False
    assert his["id"] in ids(await get_json(client, "/api/v1/timelines/home", auth))


async def test_a_mute_ends_by_itself_after_its_duration(client, auth, bob_auth, pool, alice, bob):
    await rel(client, auth, f"/api/v1/accounts/{bob.id}/mute", duration=60)
    his = await post(client, bob_auth, "from bob")
    assert his["id"] not in ids(await get_json(client, "/api/v1/timelines/public", auth))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE mutes SET expires_at = now() - interval '1 second'")
    assert his["id"] in ids(await get_json(client, "/api/v1/timelines/public", auth))
    assert await get_json(client, "/api/v1/mutes", auth) == []
    assert (await rel(client, auth, f"/api/v1/accounts/{bob.id}/unmute"))["muting"] is False


async def test_bad_mute_durations_are_refused_and_store_nothing(client, auth, pool, bob):
    for duration in (-1, "soon", 10 * 365 * 86400 + 1, True):
        body = await rel(client, auth, f"/api/v1/accounts/{bob.id}/mute", expect=422, duration=duration)
        assert "duration" in body["error"]
    assert await count(pool, "SELECT count(*) FROM mutes") == 0


# Domain blocks


async def test_domain_blocks_hide_the_server_and_remove_followers_there(fed_api, carol, pool, fed_settings,
                                                                         alice, oauth_app):
    headers = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id)}"}
    dave = await remote_actor(pool, "dave", "other.example")
    await follow(pool, dave, alice.id)
    assert await carol.send({"type": "Follow", "object": alice.uri}) == ["done"]
    carol_id = await carol.actor_id()
    await follow(pool, alice.id, carol_id)  # so that carol's posts come here
    await carol.create(carol.note("hi from carol's server"))
    assert len(await get_json(fed_api, "/api/v1/timelines/public", headers)) == 1
    host = carol.uri.split("/")[2]
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM deliveries")  # the Accept of carol's follow
    for raw in (host.upper(), f"http://{host}/"):
        response = await fed_api.post("/api/v1/domain_blocks", headers=headers, json={"domain": raw})
        assert response.status == 200 and await response.json() == {}
    assert await get_json(fed_api, "/api/v1/domain_blocks", headers) == [host]
    assert await get_json(fed_api, "/api/v1/timelines/public", headers) == []
    assert len(await get_json(fed_api, "/api/v1/timelines/public")) == 1  # hidden for alice only
    followers = await count(pool, "SELECT array_agg(follower_id) FROM follows WHERE followee_id = $1", alice.id)
    assert followers == [dave]  # dave, on another server, stays
    assert [(r["type"], r["inbox"]) for r in await _deliveries(pool)] == [("Reject", f"{carol.uri}/inbox")]
    relation = (await get_json(fed_api, "/api/v1/accounts/relationships", headers, **{"id[]": str(carol_id)}))[0]
    assert relation["domain_blocking"] is True
    # Refusals: no domain, a malformed one, our own.
    for bad, word in (({}, "required"), ({"domain": "not a domain"}, "domain"),
                      ({"domain": fed_settings.instance.domain}, "your own")):
        response = await fed_api.post("/api/v1/domain_blocks", headers=headers, json=bad)
        assert response.status == 422 and word in (await response.json())["error"]
    assert await count(pool, "SELECT count(*) FROM account_domain_blocks") == 1
    response = await fed_api.delete("/api/v1/domain_blocks", headers=headers, json={"domain": host})
    assert response.status == 200
    assert await get_json(fed_api, "/api/v1/domain_blocks", headers) == []
    assert len(await get_json(fed_api, "/api/v1/timelines/public", headers)) == 1


async def test_lists_page_with_link_headers(client, auth, pool, settings, alice):
    others = [await create_account(pool, settings, validate_new_account(username=f"u{i}")) for i in range(3)]
    for other in others:
        await rel(client, auth, f"/api/v1/accounts/{other.id}/block")
    response = await client.get("/api/v1/blocks", headers=auth, params={"limit": "2"})
    first = await response.json()
    assert [a["id"] for a in first] == [str(others[2].id), str(others[1].id)]
    assert 'rel="next"' in response.headers["Link"]
