"""Direct-message conversations, grouped notifications (v2) and account search (v1), over real HTTP."""

from __future__ import annotations

import asyncio

from fedserver.accounts import create_account, validate_new_account
from tests.api import status_support
from tests.api.conftest import mint_token
from tests.api.schemas import ACCOUNT, check, check_status
from tests.api.status_support import act, follow, get_json, link_cursors, post

NOT_FOUND = {"error": "Record not found"}
CUP = {"title": "청자 찻잔", "price": 38000, "stock": 2, "shipping": 3000, "tags": ["수공예"]}
bob_auth = status_support.bob_auth  # the fixture, shared
GROUP_FIELDS = {"group_key", "notifications_count", "type", "most_recent_notification_id", "page_min_id",
                "page_max_id", "latest_page_notification_at", "sample_account_ids"}


def check_conversation(body: dict) -> None:
    assert set(body) == {"id", "unread", "accounts", "last_status"}, body
    assert body["id"].isdigit() and isinstance(body["unread"], bool)
    for account in body["accounts"]:
        check(account, ACCOUNT)
    check_status(body["last_status"])
    assert body["last_status"]["visibility"] == "direct"


async def conversations(client, auth: dict, **params) -> list[dict]:
    found = await get_json(client, "/api/v1/conversations", auth, **params)
    for item in found:
        check_conversation(item)
    return found


async def other_account(pool, settings, oauth_app, name: str, display_name: str) -> tuple[object, dict]:
    actor = await create_account(pool, settings, validate_new_account(username=name, display_name=display_name))
    return actor, {"Authorization": f"Bearer {await mint_token(pool, oauth_app, actor.id)}"}


async def test_direct_messages_group_by_thread_newest_first(client, auth, bob_auth, alice, bob):
    first = await post(client, auth, "@bob 안녕하세요", visibility="direct")
    reply = await post(client, bob_auth, "@alice 반가워요", visibility="direct", in_reply_to_id=first["id"])
    other = await post(client, auth, "@bob 다른 이야기", visibility="direct")
    await post(client, auth, "public, not a conversation")
    mine = await conversations(client, auth)
    assert [c["last_status"]["id"] for c in mine] == [other["id"], reply["id"]]
    assert [[a["id"] for a in c["accounts"]] for c in mine] == [[str(bob.id)], [str(bob.id)]]
    assert [c["unread"] for c in mine] == [False, True]  # bob's reply is unread; alice's own post is not
    theirs = await conversations(client, bob_auth)
    assert [c["id"] for c in theirs] == [c["id"] for c in mine]  # one id per thread, for every participant
    assert [c["unread"] for c in theirs] == [True, True]
    assert [a["id"] for a in theirs[0]["accounts"]] == [str(alice.id)]


async def test_read_marks_and_delete_hides_until_a_newer_post(client, auth, bob_auth, alice, bob):
    first = await post(client, auth, "@bob 주문 문의", visibility="direct")
    reply = await post(client, bob_auth, "@alice 네", visibility="direct", in_reply_to_id=first["id"])
    [conversation] = await conversations(client, auth)
    assert conversation["unread"] is True
    response = await client.post(f"/api/v1/conversations/{conversation['id']}/read", headers=auth)
    body = await response.json()
    assert response.status == 200, body
    check_conversation(body)
    assert body["unread"] is False and body["last_status"]["id"] == reply["id"]
    assert [c["unread"] for c in await conversations(client, auth)] == [False]

    response = await client.delete(f"/api/v1/conversations/{conversation['id']}", headers=auth)
    assert response.status == 200 and await response.json() == {}
    assert await conversations(client, auth) == []
    assert len(await conversations(client, bob_auth)) == 1  # hidden for alice only
    newer = await post(client, bob_auth, "@alice 하나 더", visibility="direct", in_reply_to_id=reply["id"])
    [back] = await conversations(client, auth)
    assert back["id"] == conversation["id"] and back["last_status"]["id"] == newer["id"] and back["unread"] is True


async def test_conversations_page_by_last_status_with_link_headers(client, auth, bob_auth, bob):
    posted = [await post(client, auth, f"@bob 대화 {n}", visibility="direct") for n in range(3)]
    response = await client.get("/api/v1/conversations", headers=auth, params={"limit": "2"})
    page = await response.json()
    assert [c["last_status"]["id"] for c in page] == [posted[2]["id"], posted[1]["id"]]
    cursors = link_cursors(response)
    assert cursors == {"next": posted[1]["id"], "prev": posted[2]["id"]}
    rest = await conversations(client, auth, limit="2", max_id=cursors["next"])
    assert [c["last_status"]["id"] for c in rest] == [posted[0]["id"]]
    newer = await conversations(client, auth, min_id=posted[0]["id"])
    assert [c["last_status"]["id"] for c in newer] == [posted[2]["id"], posted[1]["id"]]


async def test_blocked_and_muted_senders_do_not_start_conversations(client, auth, bob_auth, bob, alice):
    await post(client, bob_auth, "@alice 스팸", visibility="direct")
    assert len(await conversations(client, auth)) == 1
    response = await client.post(f"/api/v1/accounts/{bob.id}/mute", headers=auth)
    assert response.status == 200
    assert await conversations(client, auth) == []


async def test_a_storefront_order_is_one_conversation_for_buyer_and_maker(client, auth, bob_auth, alice, bob):
    response = await client.post("/api/v1/storefront/products", json=CUP, headers=auth)
    product = await response.json()
    assert response.status == 200, product
    response = await client.post("/api/v1/storefront/orders", json={"listing": str(product["id"])}, headers=bob_auth)
    assert response.status == 200, await response.json()
    [maker] = await conversations(client, auth)
    [buyer] = await conversations(client, bob_auth)
    assert maker["id"] == buyer["id"]  # every message about the order names it as `context`
    assert [a["id"] for a in maker["accounts"]] == [str(bob.id)]
    assert [a["id"] for a in buyer["accounts"]] == [str(alice.id)]
    assert "주문" in maker["last_status"]["content"]


async def test_conversation_errors(client, auth, pool, oauth_app, alice):
    assert (await client.get("/api/v1/conversations")).status == 401
    assert (await client.delete("/api/v1/conversations/1")).status == 401
    reader = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, ('read:accounts',))}"}
    assert (await client.get("/api/v1/conversations", headers=reader)).status == 403
    only_read = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, ('read:statuses',))}"}
    assert (await client.get("/api/v1/conversations", headers=only_read)).status == 200
    assert (await client.post("/api/v1/conversations/1/read", headers=only_read)).status == 403
    for path in ("/api/v1/conversations/12345", "/api/v1/conversations/abc"):
        response = await client.delete(path, headers=auth)
        assert response.status == 404 and await response.json() == NOT_FOUND
        response = await client.post(f"{path}/read", headers=auth)
        assert response.status == 404 and await response.json() == NOT_FOUND
    assert (await client.get("/api/v1/conversations", headers=auth, params={"max_id": "abc"})).status == 400
    assert await get_json(client, "/api/v1/conversations", auth, limit="lots") == []  # as the other lists


async def test_mastodon_py_lists_conversations(client, auth, bob_auth, pool, oauth_app, alice):
    from mastodon import Mastodon

    await post(client, bob_auth, "@alice Mastodon.py에서 보이나요", visibility="direct")
    token = await mint_token(pool, oauth_app, alice.id)
    base = str(client.make_url("")).rstrip("/")

    def listed():
        api = Mastodon(access_token=token, api_base_url=base, version_check_mode="none")
        return api.conversations()

    [conversation] = await asyncio.to_thread(listed)
    assert conversation.unread is True and "Mastodon.py" in conversation.last_status.content
    assert [a.acct for a in conversation.accounts] == ["bob"]


# Grouped notifications (GET /api/v2/notifications)

async def test_favourites_of_one_status_make_one_group_and_mentions_stay_apart(client, auth, bob_auth, pool,
                                                                               settings, oauth_app, alice, bob):
    mine = await post(client, auth, "새 찻잔")
    carol, carol_auth = await other_account(pool, settings, oauth_app, "carol", "캐럴")
    dave, dave_auth = await other_account(pool, settings, oauth_app, "dave", "Dave")
    for who in (bob_auth, carol_auth, dave_auth):
        await act(client, who, mine["id"], "favourite")
    mention = await post(client, bob_auth, "@alice 예뻐요")
    response = await client.get("/api/v2/notifications", headers=auth)
    body = await response.json()
    assert response.status == 200, body
    assert set(body) == {"accounts", "statuses", "notification_groups"}
    mentioned, liked = body["notification_groups"]
    assert set(liked) == GROUP_FIELDS | {"status_id"}
    assert liked["type"] == "favourite" and liked["notifications_count"] == 3
    assert liked["group_key"].startswith(f"favourite-{mine['id']}-") and liked["status_id"] == mine["id"]
    assert liked["sample_account_ids"] == [str(dave.id), str(carol.id), str(bob.id)]
    assert int(liked["page_min_id"]) < int(liked["page_max_id"]) == int(liked["most_recent_notification_id"])
    assert mentioned["type"] == "mention" and mentioned["notifications_count"] == 1
    assert mentioned["group_key"] == f"ungrouped-{mentioned['most_recent_notification_id']}"
    assert mentioned["status_id"] == mention["id"]
    assert sorted(a["id"] for a in body["accounts"]) == sorted(str(i) for i in (bob.id, carol.id, dave.id))
    for account in body["accounts"]:
        check(account, ACCOUNT)
    assert sorted(s["id"] for s in body["statuses"]) == sorted([mine["id"], mention["id"]])

    only = await get_json(client, "/api/v2/notifications", auth, **{"exclude_types[]": "mention"})
    assert [g["type"] for g in only["notification_groups"]] == ["favourite"]
    flat = await get_json(client, "/api/v2/notifications", auth, **{"grouped_types[]": "reblog"})
    assert [g["type"] for g in flat["notification_groups"]] == ["mention", "favourite", "favourite", "favourite"]
    partial = await get_json(client, "/api/v2/notifications", auth, expand_accounts="partial_avatars")
    assert partial["notification_groups"] == body["notification_groups"]
    count = await get_json(client, "/api/v2/notifications/unread_count", auth)
    assert count == {"count": 2}


async def test_grouped_notifications_page_with_link_headers(client, auth, bob_auth, alice, bob):
    first = await post(client, auth, "하나")
    second = await post(client, auth, "둘")
    await act(client, bob_auth, first["id"], "favourite")
    await post(client, bob_auth, "@alice 안녕")
    await act(client, bob_auth, second["id"], "favourite")
    response = await client.get("/api/v2/notifications", headers=auth, params={"limit": "2"})
    page = await response.json()
    assert [g["type"] for g in page["notification_groups"]] == ["favourite", "mention"]
    cursors = link_cursors(response)
    assert cursors["next"] == page["notification_groups"][1]["page_min_id"]
    rest = await get_json(client, "/api/v2/notifications", auth, limit="2", max_id=cursors["next"])
    assert [g["status_id"] for g in rest["notification_groups"]] == [first["id"]]
    assert (await client.get("/api/v2/notifications")).status == 401
    assert (await client.get("/api/v2/notifications", headers=auth, params={"since_id": "x"})).status == 400


# Account search (GET /api/v1/accounts/search)

async def test_account_search_finds_korean_names_and_can_keep_followed_accounts(client, auth, bob_auth, pool,
                                                                                settings, oauth_app, alice, bob):
    await other_account(pool, settings, oauth_app, "gongbang", "다른 공방")
    found = await get_json(client, "/api/v1/accounts/search", bob_auth, q="앨리스")
    assert [a["id"] for a in found] == [str(alice.id)]
    for account in found:
        check(account, ACCOUNT)
    both = await get_json(client, "/api/v1/accounts/search", bob_auth, q="공방")
    assert {a["username"] for a in both} == {"alice", "gongbang"}
    assert await get_json(client, "/api/v1/accounts/search", bob_auth, q="공방", following="true") == []
    await follow(pool, bob.id, alice.id)
    followed = await get_json(client, "/api/v1/accounts/search", bob_auth, q="공방", following="true")
    assert [a["username"] for a in followed] == ["alice"]
    assert len(await get_json(client, "/api/v1/accounts/search", None, q="공방", limit="1")) == 1  # no token
    second = await get_json(client, "/api/v1/accounts/search", None, q="공방", limit="1", offset="1")
    assert len(second) == 1 and second != await get_json(client, "/api/v1/accounts/search", None, q="공방", limit="1")


async def test_account_search_refusals(client, auth, pool, oauth_app, alice):
    assert (await client.get("/api/v1/accounts/search", headers=auth)).status == 400  # no q
    assert (await client.get("/api/v1/accounts/search", headers=auth, params={"q": "a", "limit": "x"})).status == 400
    assert (await client.get("/api/v1/accounts/search", params={"q": "a@b.example", "resolve": "true"})).status == 401
    writer = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, ('write:statuses',))}"}
    assert (await client.get("/api/v1/accounts/search", headers=writer, params={"q": "a"})).status == 403
    # the fixed path is not taken for an account id
    assert (await client.get(f"/api/v1/accounts/{alice.id}", headers=auth)).status == 200
