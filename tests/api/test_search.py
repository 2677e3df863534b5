"""GET /api/v2/search: Korean full-text search by character n-grams, accounts, hashtags, and `resolve=true`.

`resolve` is tested against a second real `fedserver run` on loopback, and (checklist 36) refused
at connect time for internal addresses in production mode.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from activities.parse import parse_post
from fedserver.config import FederationSettings
from fedserver.repo import interactions
from tests.api.conftest import PASSWORD, mint_token
from tests.api.schemas import ACCOUNT, SEARCH_RESULTS, TAG_ENTITY, check, check_status
from tests.api.status_support import bob_auth, follow, post, remote_actor  # noqa: F401  (bob_auth: a fixture)
from tests.support.instance import Instance, free_port, instance_env


async def search(client, auth: dict | None = None, *, expect: int = 200, **params) -> dict:
    """GET /api/v2/search with `params`; checks the status and the shape of every result."""
    response = await client.get("/api/v2/search", headers=auth or {}, params=params)
    body = await response.json()
    assert response.status == expect, body
    if expect == 200:
        check(body, SEARCH_RESULTS)
        for account in body["accounts"]:
            check(account, ACCOUNT)
        for status in body["statuses"]:
            check_status(status, signed_in=auth is not None)
        for tag in body["hashtags"]:
            check(tag, TAG_ENTITY)
    return body


def texts(body: dict) -> list[str]:
    return [s["content"] for s in body["statuses"]]


async def test_korean_phrase_finds_posts_with_particles_or_without_spaces(client, auth, bob_auth):
    workshop = await post(client, auth, "오늘 도자기 공방에서 찻잔을 빚었어요")
    glass = await post(client, auth, "유리 공방 체험 안내")
    joined = await post(client, bob_auth, "도자기공방 전시가 열립니다")
    await post(client, auth, "도자기 공방 비밀 이야기", visibility="private")
    await post(client, auth, "도자기 공방 편지", visibility="direct")

    found = await search(client, auth, q="도자기 공방", type="statuses")
    assert [s["id"] for s in found["statuses"]] == [joined["id"], workshop["id"]]  # newest first
    assert glass["id"] not in [s["id"] for s in found["statuses"]]
    assert (await search(client, auth, q="도자기공방"))["statuses"] == found["statuses"]
    assert [s["id"] for s in (await search(client, auth, q="공방 유리"))["statuses"]] == [glass["id"]]
    assert (await search(client, auth, q="도자기 유리"))["statuses"] == []
    assert [s["id"] for s in (await search(client, q="찻잔"))["statuses"]] == [workshop["id"]]  # anonymous too


async def test_mixed_korean_and_english_and_case(client, auth, bob_auth):
    mixed = await post(client, bob_auth, "Pottery class 도자기 수업 at the Studio!")
    await post(client, auth, "pottery wheel for sale")
    assert [s["id"] for s in (await search(client, auth, q="POTTERY 도자기"))["statuses"]] == [mixed["id"]]
    assert [s["id"] for s in (await search(client, auth, q="studio"))["statuses"]] == [mixed["id"]]
    assert len((await search(client, auth, q="pottery"))["statuses"]) == 2
    assert (await search(client, auth, q="potters"))["statuses"] == []
    assert (await search(client, auth, q="ｐｏｔｔｅｒｙ 도자기"))["statuses"][0]["id"] == mixed["id"]  # NFKC


async def test_one_character_and_punctuation_queries(client, auth):
    tea = await post(client, auth, "찻잔 세트")
    await post(client, auth, "유리병")
    assert [s["id"] for s in (await search(client, auth, q="찻"))["statuses"]] == [tea["id"]]
    assert len((await search(client, auth, q="유"))["statuses"]) == 1
    assert (await search(client, auth, q="!!! ..."))["statuses"] == []
    assert await search(client, auth, q="") == {"accounts": [], "statuses": [], "hashtags": []}


async def test_statuses_search_pages_and_filters_by_account(client, auth, bob_auth, bob):
    mine = [await post(client, auth, f"가마 소성 일지 {i}") for i in range(3)]
    bobs = await post(client, bob_auth, "가마 소성 준비")
    first = await search(client, auth, q="가마 소성", type="statuses", limit="2")
    second = await search(client, auth, q="가마 소성", type="statuses", limit="2", offset="2")
    assert [s["id"] for s in first["statuses"] + second["statuses"]] == [bobs["id"], *[m["id"] for m in mine[::-1]]]
    by_bob = await search(client, auth, q="가마", account_id=str(bob.id))
    assert [s["id"] for s in by_bob["statuses"]] == [bobs["id"]]


async def test_deleted_blocked_and_non_indexable_posts_are_not_found(client, auth, bob_auth, pool, alice, bob):
    gone = await post(client, bob_auth, "백자 달항아리 판매")
    await post(client, bob_auth, "백자 찻사발")
    assert (await client.delete(f"/api/v1/statuses/{gone['id']}", headers=bob_auth)).status == 200
    assert len((await search(client, auth, q="백자"))["statuses"]) == 1

    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET indexable = false WHERE id = $1", bob.id)
    assert (await search(client, auth, q="백자"))["statuses"] == []
    assert len((await search(client, bob_auth, q="백자"))["statuses"]) == 1  # one's own posts stay findable
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET indexable = true WHERE id = $1", bob.id)
        await conn.execute("INSERT INTO blocks (actor_id, target_id) VALUES ($1, $2)", bob.id, alice.id)
    assert (await search(client, auth, q="백자"))["statuses"] == []
    assert len((await search(client, q="백자"))["statuses"]) == 1


async def test_remote_posts_are_indexed_when_stored_and_when_edited(client, auth, pool):
    carol = await remote_actor(pool, "carol", "remote.example")
    doc = {"id": "https://remote.example/notes/1", "type": "Note", "attributedTo": "https://remote.example/users/carol",
           "content": "<p>분청사기 <b>워크숍</b> 모집</p>", "to": ["https://www.w3.org/ns/activitystreams#Public"],
           "published": "2026-11-01T10:00:00Z"}
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET indexable = true WHERE id = $1", carol)
        assert await interactions.insert_remote_post(conn, parse_post(doc), carol)
    found = await search(client, auth, q="분청사기 워크숍")
    assert [s["uri"] for s in found["statuses"]] == [doc["id"]]
    async with pool.acquire() as conn:
        assert await interactions.update_remote_post(conn, parse_post({**doc, "content": "<p>청자 수업</p>"}), carol)
    assert (await search(client, auth, q="분청사기"))["statuses"] == []
    assert len((await search(client, auth, q="청자 수업"))["statuses"]) == 1


async def test_account_search_by_prefix_display_name_and_handle(client, auth, pool, bob):
    kim = await remote_actor(pool, "Kim", "far.example")
    for q in ("ali", "ALI", "@alice", "앨리스", "공방", "alice@shop.test", "@Alice@SHOP.TEST"):
        found = await search(client, auth, q=q, type="accounts")
        assert [a["acct"] for a in found["accounts"]][:1] == ["alice"], q
        assert found["statuses"] == [] and found["hashtags"] == []
    for q in ("kim@far.example", "@KIM@far.example", "Ki"):
        found = await search(client, auth, q=q)
        assert [a["acct"] for a in found["accounts"]] == ["Kim@far.example"], q
        assert found["accounts"][0]["id"] == str(kim)
    assert (await search(client, auth, q="kim@elsewhere.example"))["accounts"] == []
    assert (await search(client, auth, q="%"))["accounts"] == []  # LIKE wildcards are literal
    assert [a["acct"] for a in (await search(client, q="bo"))["accounts"]] == ["bob"]


async def test_following_only_accounts(client, auth, pool, alice, bob):
    assert (await search(client, auth, q="bob", following="true"))["accounts"] == []
    await follow(pool, alice.id, bob.id)
    assert [a["acct"] for a in (await search(client, auth, q="bob", following="true"))["accounts"]] == ["bob"]


async def test_hashtag_search_by_prefix_shortest_first(client, auth):
    await post(client, auth, "오늘의 작업 #도자기수업 #도자기")
    await post(client, auth, "#Pottery #도예")
    found = await search(client, auth, q="도자", type="hashtags")
    assert [t["name"] for t in found["hashtags"]] == ["도자기", "도자기수업"]
    assert found["hashtags"][0]["url"].endswith("/tags/%EB%8F%84%EC%9E%90%EA%B8%B0")
    assert [t["name"] for t in (await search(client, auth, q="#POTTERY"))["hashtags"]] == ["pottery"]
    assert (await search(client, auth, q="도자기 공방", type="hashtags"))["hashtags"] == []


async def test_search_parameters_and_scopes(client, pool, oauth_app, alice, auth):
    await search(client, auth, expect=400)  # no q
    assert "type" in (await search(client, auth, q="x", type="people", expect=422))["error"]
    assert (await search(client, auth, q="x", limit="many", expect=400))["error"] == "limit must be a number"
    no_search = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, scopes=('write',))}"}
    await search(client, no_search, q="x", expect=403)
    scoped = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, scopes=('read:search',))}"}
    await search(client, scoped, q="x", resolve="true")
    await search(client, q="x", resolve="true", expect=401)
    app_only = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, None, scopes=('read',))}"}
    await search(client, app_only, q="x")
    await search(client, app_only, q="x", resolve="true", expect=422)


class CountingServer:
    """A TCP listener on loopback that counts connections (each is closed at once)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


async def test_resolve_refuses_internal_addresses_in_production(client, auth, settings):
    """Checklist 36: search-by-URL aimed at internal hosts is blocked before any byte is sent."""
    assert settings.federation.allow_private_addresses is False
    listener = CountingServer()
    try:
        for q in ("http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/latest/meta-data/",
                  f"https://127.0.0.1:{listener.port}/users/admin", f"http://127.0.0.1:{listener.port}/users/admin",
                  "https://[::ffff:127.0.0.1]/users/x", "https://0.0.0.0/users/x",
                  f"admin@127.0.0.1:{listener.port}", "admin@169.254.169.254"):
            found = await search(client, auth, q=q, resolve="true")
            assert found == {"accounts": [], "statuses": [], "hashtags": []}, q
        assert listener.connections == 0
    finally:
        listener.sock.close()


@pytest.fixture
async def peer(pg_cluster, tmp_path):
    """A second real instance (`fedserver run`) on loopback with the account carol and one public post."""
    db_url = await pg_cluster.create_database()
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "peer", port=port)
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "peer.log")
    created = await asyncio.to_thread(inst.command, "account", "create", "carol", "--display-name", "캐롤 도예",
                                      "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    posted = await asyncio.to_thread(inst.command, "post", "carol", "청자 상감 기법 시연회에 초대합니다")
    assert posted.returncode == 0, posted.stderr
    inst.post_url = posted.stdout.strip()
    await asyncio.to_thread(inst.start)
    yield inst
    inst.kill()
    await pg_cluster.drop_database(db_url)


@pytest.mark.slow
async def test_resolve_fetches_a_remote_account_and_post_from_a_real_peer(make_client, settings, auth, peer, pool):
    federating = settings.model_copy(update={"federation": FederationSettings(allow_private_addresses=True)})
    client = await make_client(federating)
    domain = f"127.0.0.1:{peer.port}"

    assert (await search(client, auth, q=f"carol@{domain}"))["accounts"] == []  # unknown without resolve
    found = await search(client, auth, q=f"@CAROL@{domain}", type="accounts", resolve="true")
    [carol] = found["accounts"]
    assert carol["acct"] == f"carol@{domain}" and carol["display_name"] == "캐롤 도예"
    assert carol["acct"].lower() == f"carol@{domain}".lower()  # what toot `follow` matches on
    again = await search(client, auth, q=f"carol@{domain}")  # now known, no resolve needed
    assert [a["id"] for a in again["accounts"]] == [carol["id"]]

    by_url = await search(client, auth, q=peer.post_url, resolve="true")
    [status] = by_url["statuses"]
    assert status["uri"] == peer.post_url and status["account"]["acct"] == f"carol@{domain}"
    assert "청자 상감 기법" in status["content"]
    assert [s["uri"] for s in (await search(client, auth, q="상감 기법"))["statuses"]] == [peer.post_url]

    actor_url = f"http://{domain}/users/carol"
    assert [a["id"] for a in (await search(client, auth, q=actor_url, resolve="true"))["accounts"]] == [carol["id"]]
    missing = await search(client, auth, q=f"http://{domain}/users/carol/statuses/1", resolve="true")
    assert missing == {"accounts": [], "statuses": [], "hashtags": []}
    assert (await search(client, auth, q=f"nobody@{domain}", resolve="true"))["accounts"] == []


