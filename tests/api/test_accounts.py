"""Instance, account, relationship, preference and marker endpoints, each checked against its entity."""

from __future__ import annotations

import pytest
from mastodon.utility import parse_version_string

from tests.api.conftest import mint_token
from tests.api.schemas import (
    ACCOUNT,
    CREDENTIAL_ACCOUNT,
    INSTANCE_V1,
    INSTANCE_V2,
    MARKER,
    PREFERENCES,
    RELATIONSHIP,
    check,
)
from tests.support.database import DELIVERED


async def remote_actor(pool, name: str = "carol", domain: str = "remote.example") -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, summary, url,
                                   inbox_uri, shared_inbox_uri, key_id, public_key_pem)
               VALUES ($1, false, $2, $3, 'Person', 'Carol', '<p>remote bio</p>', $1, $1 || '/inbox',
                       'https://' || $3 || '/inbox', $1 || '#main-key', 'PEM') RETURNING id""",
            f"https://{domain}/users/{name}", name, domain)


async def follow(pool, follower: int, followee: int, state: str = "accepted") -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, $3)",
                           follower, followee, state)


# Instance


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v1/instance/"])
async def test_instance_v1(client, alice, path):
    response = await client.get(path)
    body = await response.json()
    check(body, INSTANCE_V1)
    assert body["uri"] == "shop.test" and body["stats"]["user_count"] == 1
    assert body["urls"]["streaming_api"] == "ws://shop.test"  # clients open a stream only when it is set


@pytest.mark.parametrize("path", ["/api/v2/instance", "/api/v2/instance/"])
async def test_instance_v2(client, alice, path):
    body = await (await client.get(path)).json()
    check(body, INSTANCE_V2)
    assert body["domain"] == "shop.test" and body["api_versions"] == {"mastodon": 2}
    assert body["usage"]["users"]["active_month"] == 1
    assert body["configuration"]["urls"]["streaming"] == "ws://shop.test"


async def test_rules_peers_and_weekly_activity_are_served_as_mastodon_serves_them(pool, settings, alice):
    from aiohttp.test_utils import TestClient, TestServer

    from fedserver.app import create_app
    from fedserver.config import load_settings

    ruled = load_settings(environ={**{f"FEDSERVER_{k}": v for k, v in {
        "INSTANCE__DOMAIN": settings.instance.domain, "INSTANCE__SCHEME": "http",
        "DATABASE__URL": settings.database.url, "STORAGE__DATA_DIR": str(settings.storage.data_dir)}.items()},
        "FEDSERVER_INSTANCE__RULES": '["서로 존중해 주세요", "광고는 올리지 마세요"]'})
    await remote_actor(pool, "carol", "remote.example")
    await remote_actor(pool, "dave", "another.example")
    await remote_actor(pool, "erin", "remote.example")
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO objects (uri, object_type, actor_id, is_local, content, data) "
                           "VALUES ('http://shop.test/users/alice/statuses/1', 'Note', $1, true, '<p>hi</p>', '{}')",
                           alice.id)
    async with TestClient(TestServer(create_app(ruled, pool))) as client:
        rules = await (await client.get("/api/v1/instance/rules")).json()
        assert rules == [{"id": "1", "text": "서로 존중해 주세요", "hint": ""},
                         {"id": "2", "text": "광고는 올리지 마세요", "hint": ""}]
        assert (await (await client.get("/api/v1/instance")).json())["rules"] == rules
        assert (await (await client.get("/api/v2/instance")).json())["rules"] == rules
        assert await (await client.get("/api/v1/instance/peers")).json() == ["another.example", "remote.example"]
        weeks = await (await client.get("/api/v1/instance/activity")).json()
    assert len(weeks) == 12 and all(set(w) == {"week", "statuses", "logins", "registrations"} for w in weeks)
    assert all(isinstance(v, str) and v.isdigit() for w in weeks for v in w.values())
    assert [int(w["week"]) for w in weeks] == sorted((int(w["week"]) for w in weeks), reverse=True)
    assert int(weeks[0]["week"]) % 604800 == 345600  # a Monday 00:00 UTC (1970-01-05 was one)
    assert (weeks[0]["statuses"], weeks[0]["registrations"]) == ("1", "1")  # alice's post, alice herself
    assert all(w["statuses"] == w["registrations"] == "0" for w in weeks[1:])


async def test_version_is_mastodon_4_3_for_mastodon_py(client):
    version = (await (await client.get("/api/v1/instance/")).json())["version"]
    assert version.startswith("4.3.0 (compatible; fedserver ")
    from mastodon import Mastodon

    normalized = Mastodon._Mastodon__normalize_version_string(None, version)  # Mastodon.py's own parsing
    assert tuple(parse_version_string(normalized)) == (4, 3, 0)


async def test_startup_stubs(client, auth):
    assert await (await client.get("/api/v1/custom_emojis")).json() == []
    for path in ("/api/v1/lists", "/api/v1/filters", "/api/v2/filters", "/api/v1/announcements"):
        response = await client.get(path, headers=auth)
        assert response.status == 200 and await response.json() == [], path
        assert (await client.get(path)).status == 401


async def test_default_avatar_and_header_are_real_pngs(client, auth):
    me = await (await client.get("/api/v1/accounts/verify_credentials", headers=auth)).json()
    for url in (me["avatar"], me["header"]):
        response = await client.get(url.removeprefix("http://shop.test"))
        assert response.status == 200 and response.content_type == "image/png"
        assert (await response.read()).startswith(b"\x89PNG\r\n\x1a\n")


# verify_credentials and update_credentials


async def test_verify_credentials_is_a_credential_account(client, auth, alice, pool, bob):
    await follow(pool, bob.id, alice.id, "pending")
    body = await (await client.get("/api/v1/accounts/verify_credentials", headers=auth)).json()
    check(body, CREDENTIAL_ACCOUNT)
    assert body["id"] == str(alice.id) and body["acct"] == "alice" and body["display_name"] == "앨리스 공방"
    assert body["url"] == "http://shop.test/@alice" and body["created_at"].endswith("T00:00:00.000Z")
    assert body["source"]["privacy"] == "public" and body["source"]["follow_requests_count"] == 1
    assert body["last_status_at"] is None and body["statuses_count"] == 0


async def test_update_credentials_with_a_form(client, auth, alice):
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth, data={
        "display_name": "새 이름", "note": "<b>물레</b> & 가마\n\n둘째 문단", "locked": "1",
        "source[privacy]": "unlisted", "source[sensitive]": "true", "source[language]": "ko"})
    assert response.status == 200, await response.text()
    body = await response.json()
    check(body, CREDENTIAL_ACCOUNT)
    assert body["display_name"] == "새 이름" and body["locked"] is True
    assert body["note"] == "<p>&lt;b&gt;물레&lt;/b&gt; &amp; 가마</p><p>둘째 문단</p>"
    assert body["source"]["note"].startswith("<b>물레</b> & 가마")
    assert (body["source"]["privacy"], body["source"]["sensitive"], body["source"]["language"]) == (
        "unlisted", True, "ko")
    prefs = await (await client.get("/api/v1/preferences", headers=auth)).json()
    assert prefs["posting:default:visibility"] == "unlisted" and prefs["posting:default:language"] == "ko"


async def test_update_credentials_with_multipart_and_json(client, auth):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("display_name", "Multipart")
    form.add_field("locked", "false")
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth, data=form)
    assert (await response.json())["display_name"] == "Multipart"
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth,
                                  json={"note": "json bio", "source": {"privacy": "private"}, "discoverable": False})
    body = await response.json()
    assert body["note"] == "<p>json bio</p>" and body["source"]["privacy"] == "private"
    assert body["discoverable"] is False and body["display_name"] == "Multipart"


@pytest.mark.parametrize(("data", "message"), [
    ({"display_name": "가" * 31, "note": "fine"}, "display_name is too long (maximum is 30 characters)"),
    ({"note": "x" * 501, "display_name": "fine"}, "note is too long (maximum is 500 characters)"),
    ({"display_name": "bad\x07name"}, "control characters"),
    ({"source[privacy]": "everyone", "display_name": "fine"}, "source[privacy] must be one of"),
    ({"source[language]": "korean"}, "ISO 639"),
    ({"avatar": "x"}, "avatar cannot be changed"),
])
async def test_update_credentials_refuses_bad_values_and_writes_nothing(client, auth, pool, alice, data, message):
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth, data=data)
    assert response.status == 422
    assert message in (await response.json())["error"]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT display_name, summary FROM actors WHERE id = $1", alice.id)
        assert (row["display_name"], row["summary"]) == ("앨리스 공방", "")
        assert await conn.fetchval("SELECT count(*) FROM account_preferences") == 0


async def test_display_name_of_30_characters_is_fine(client, auth):
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth, data={"display_name": "가" * 30})
    assert response.status == 200


async def test_profile_update_is_sent_to_remote_followers(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    response = await client.patch("/api/v1/accounts/update_credentials", headers=auth,
                                  data={"display_name": "Federated", "locked": "true"})
    assert response.status == 200
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT inbox_uri, body FROM {DELIVERED}")
    assert [r["inbox_uri"] for r in rows] == ["https://remote.example/inbox"]
    update = rows[0]["body"]
    assert update["type"] == "Update" and update["object"]["name"] == "Federated"
    assert update["object"]["manuallyApprovesFollowers"] is True


async def test_preferences_only_change_is_not_federated(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    await client.patch("/api/v1/accounts/update_credentials", headers=auth, data={"source[sensitive]": "1"})
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 0


# Accounts by id and handle


async def test_get_account_local_and_remote(client, alice, pool):
    body = await (await client.get(f"/api/v1/accounts/{alice.id}")).json()
    check(body, ACCOUNT)
    assert body["acct"] == "alice" and "source" not in body
    carol = await remote_actor(pool)
    remote = await (await client.get(f"/api/v1/accounts/{carol}")).json()
    check(remote, ACCOUNT)
    assert remote["acct"] == "carol@remote.example" and remote["note"] == "<p>remote bio</p>"


async def test_account_counts(client, alice, bob, pool):
    carol = await remote_actor(pool)
    await follow(pool, carol, alice.id)
    await follow(pool, bob.id, alice.id, "pending")
    await follow(pool, alice.id, carol)
    async with pool.acquire() as conn:
        await conn.execute("""INSERT INTO objects (uri, object_type, actor_id, is_local, content, published_at)
                              VALUES ('http://shop.test/s/1', 'Note', $1, true, 'x', '2026-03-04T05:06:07Z')""",
                           alice.id)
    body = await (await client.get(f"/api/v1/accounts/{alice.id}")).json()
    assert (body["followers_count"], body["following_count"], body["statuses_count"]) == (1, 1, 1)
    assert body["last_status_at"] == "2026-03-04"


@pytest.mark.parametrize("raw", ["999999", "abc", "1" * 30, "-1"])
async def test_unknown_account_is_404(client, alice, raw):
    response = await client.get(f"/api/v1/accounts/{raw}")
    assert response.status == 404 and await response.json() == {"error": "Record not found"}


async def test_instance_actor_and_deleted_accounts_are_not_shown(client, pool, publisher, alice, bob):
    from fedserver.accounts import delete_account

    async with pool.acquire() as conn:
        instance_id = await conn.fetchval("SELECT actor_id FROM local_accounts WHERE role = 'instance'")
    assert (await client.get(f"/api/v1/accounts/{instance_id}")).status == 404
    await delete_account(pool, publisher, "bob")
    assert (await client.get(f"/api/v1/accounts/{bob.id}")).status == 404
    assert (await client.get("/api/v1/accounts/lookup", params={"acct": "bob"})).status == 404


@pytest.mark.parametrize("acct", ["alice", "@alice", "ALICE", "alice@shop.test", "@alice@SHOP.test"])
async def test_lookup_local(client, alice, acct):
    response = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
    assert response.status == 200
    body = await response.json()
    check(body, ACCOUNT)
    assert body["id"] == str(alice.id)


async def test_lookup_known_remote_and_unknown(client, alice, pool):
    carol = await remote_actor(pool)
    body = await (await client.get("/api/v1/accounts/lookup", params={"acct": "carol@remote.example"})).json()
    assert body["id"] == str(carol) and body["acct"] == "carol@remote.example"
    assert (await client.get("/api/v1/accounts/lookup", params={"acct": "dave@remote.example"})).status == 404
    missing = await client.get("/api/v1/accounts/lookup")
    assert missing.status == 400 and "acct is required" in (await missing.json())["error"]


# Relationships


async def test_relationships(client, auth, alice, bob, pool):
    carol = await remote_actor(pool)
    dave = await remote_actor(pool, "dave")
    await follow(pool, alice.id, carol)
    await follow(pool, carol, alice.id, "pending")
    await follow(pool, alice.id, dave, "pending")
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO blocks (actor_id, target_id) VALUES ($1, $2)", alice.id, bob.id)
    response = await client.get(
        f"/api/v1/accounts/relationships?id[]={dave}&id[]={carol}&id[]=999999&id[]=abc&id[]={bob.id}", headers=auth)
    body = await response.json()
    for item in body:
        check(item, RELATIONSHIP)
    assert [r["id"] for r in body] == [str(dave), str(carol), str(bob.id)]
    by_id = {r["id"]: r for r in body}
    assert by_id[str(carol)]["following"] and by_id[str(carol)]["requested_by"]
    assert not by_id[str(carol)]["followed_by"]
    assert by_id[str(dave)]["requested"] and not by_id[str(dave)]["following"]
    assert by_id[str(bob.id)]["blocking"]
    single = await (await client.get(f"/api/v1/accounts/relationships?id={carol}", headers=auth)).json()
    assert [r["id"] for r in single] == [str(carol)]


# Preferences and markers


async def test_preferences_defaults(client, auth):
    body = await (await client.get("/api/v1/preferences", headers=auth)).json()
    check(body, PREFERENCES)
    assert body == {"posting:default:visibility": "public", "posting:default:sensitive": False,
                    "posting:default:language": None, "reading:expand:media": "default",
                    "reading:expand:spoilers": False}


async def test_markers_are_stored_and_versioned(client, auth, pool, oauth_app, bob):
    assert await (await client.get("/api/v1/markers?timeline[]=home", headers=auth)).json() == {}
    first = await (await client.post("/api/v1/markers", headers=auth, data={"home[last_read_id]": "103"})).json()
    check(first["home"], MARKER)
    assert first["home"]["last_read_id"] == "103" and first["home"]["version"] == 1
    second = await (await client.post("/api/v1/markers", headers=auth, json={
        "home": {"last_read_id": "110"}, "notifications": {"last_read_id": "7"}})).json()
    assert second["home"]["version"] == 2 and second["notifications"]["last_read_id"] == "7"
    both = await (await client.get("/api/v1/markers?timeline[]=home&timeline[]=notifications",
                                   headers=auth)).json()
    assert set(both) == {"home", "notifications"} and both["home"]["last_read_id"] == "110"
    other = await mint_token(pool, oauth_app, bob.id)
    assert await (await client.get("/api/v1/markers", headers={"Authorization": f"Bearer {other}"})).json() == {}
    empty = await client.post("/api/v1/markers", headers=auth, data={})
    assert empty.status == 422
