"""Follow, unfollow, followers and following: in process, then with Mastodon.py and toot across two instances."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from fedserver.accounts import create_account, validate_new_account
from tests.api.conftest import mint_token
from tests.api.schemas import ACCOUNT, RELATIONSHIP, check

PASSWORD = "correct horse battery staple"


async def remote_actor(pool, name: str = "carol", domain: str = "remote.example") -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, summary, url,
                                   inbox_uri, shared_inbox_uri, key_id, public_key_pem)
               VALUES ($1, false, $2, $3, 'Person', $2, '', $1, $1 || '/inbox',
                       'https://' || $3 || '/inbox', $1 || '#main-key', 'PEM') RETURNING id""",
            f"https://{domain}/users/{name}", name, domain)


async def add_follow(pool, follower: int, followee: int, state: str = "accepted") -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, $3) RETURNING id",
            follower, followee, state)


async def follow_state(pool, follower: int, followee: int) -> str | None:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT state FROM follows WHERE follower_id = $1 AND followee_id = $2",
                                   follower, followee)


async def post(client, path: str, headers: dict):
    response = await client.post(path, headers=headers)
    return response.status, await response.json()


# POST /api/v1/accounts/:id/follow


async def test_following_a_local_unlocked_account_is_immediate_and_idempotent(client, auth, pool, alice, bob):
    status, body = await post(client, f"/api/v1/accounts/{bob.id}/follow", auth)
    assert status == 200, body
    check(body, RELATIONSHIP)
    assert body["id"] == str(bob.id) and body["following"] is True and body["requested"] is False
    assert await follow_state(pool, alice.id, bob.id) == "accepted"
    status, again = await post(client, f"/api/v1/accounts/{bob.id}/follow", auth)
    assert status == 200 and again == body
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM follows WHERE follower_id = $1", alice.id) == 1


async def test_following_a_locked_local_account_is_a_request(client, auth, pool, alice, bob):
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET manually_approves_followers = true WHERE id = $1", bob.id)
    status, body = await post(client, f"/api/v1/accounts/{bob.id}/follow", auth)
    assert status == 200 and body["requested"] is True and body["following"] is False
    assert await follow_state(pool, alice.id, bob.id) == "pending"
    status, again = await post(client, f"/api/v1/accounts/{bob.id}/follow", auth)
    assert status == 200 and again["requested"] is True


async def test_following_a_remote_account_is_requested_until_the_accept(client, auth, pool, alice):
    carol = await remote_actor(pool)
    status, body = await post(client, f"/api/v1/accounts/{carol}/follow", auth)
    assert status == 200, body
    check(body, RELATIONSHIP)
    assert body["requested"] is True and body["following"] is False
    async with pool.acquire() as conn:
        follow_uri = await conn.fetchval("SELECT activity_uri FROM follows WHERE follower_id = $1", alice.id)
        stored = await conn.fetchval("SELECT activity_type FROM activities WHERE uri = $1", follow_uri)
        assert stored == "Follow"
        await conn.execute("UPDATE follows SET state = 'accepted' WHERE follower_id = $1", alice.id)
    _, after = await post(client, f"/api/v1/accounts/{carol}/follow", auth)
    assert after["following"] is True and after["requested"] is False


async def test_follow_refuses_self_and_unknown_accounts(client, auth, alice):
    status, body = await post(client, f"/api/v1/accounts/{alice.id}/follow", auth)
    assert status == 422 and "error" in body
    for bad in ("999999", "abc"):
        status, body = await post(client, f"/api/v1/accounts/{bad}/follow", auth)
        assert status == 404 and body == {"error": "Record not found"}


@pytest.mark.parametrize("path", ["follow", "unfollow"])
async def test_follow_and_unfollow_need_a_user_token_with_a_follow_scope(client, pool, oauth_app, alice, bob, path):
    url = f"/api/v1/accounts/{bob.id}/{path}"
    assert (await client.post(url)).status == 401
    read_only = await mint_token(pool, oauth_app, alice.id, ("read",))
    assert (await client.post(url, headers={"Authorization": f"Bearer {read_only}"})).status == 403
    app_token = await mint_token(pool, oauth_app, None, ("follow",))
    assert (await client.post(url, headers={"Authorization": f"Bearer {app_token}"})).status == 422
    for scopes in (("write:follows",), ("follow",), ("write",)):
        token = await mint_token(pool, oauth_app, alice.id, scopes)
        status, body = await post(client, url, {"Authorization": f"Bearer {token}"})
        assert status == 200, (scopes, body)
        check(body, RELATIONSHIP)


# POST /api/v1/accounts/:id/unfollow


async def test_unfollow_removes_the_follow_and_is_idempotent(client, auth, pool, alice, bob):
    await post(client, f"/api/v1/accounts/{bob.id}/follow", auth)
    status, body = await post(client, f"/api/v1/accounts/{bob.id}/unfollow", auth)
    assert status == 200
    check(body, RELATIONSHIP)
    assert body["following"] is False and body["requested"] is False
    assert await follow_state(pool, alice.id, bob.id) is None
    status, again = await post(client, f"/api/v1/accounts/{bob.id}/unfollow", auth)
    assert status == 200 and again == body


async def test_unfollow_withdraws_a_remote_request_with_an_undo(client, auth, pool, alice):
    carol = await remote_actor(pool)
    await post(client, f"/api/v1/accounts/{carol}/follow", auth)
    status, body = await post(client, f"/api/v1/accounts/{carol}/unfollow", auth)
    assert status == 200 and body["requested"] is False and body["following"] is False
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM activities WHERE activity_type = 'Undo'") == 1


async def test_unfollow_of_an_unknown_account_is_404(client, auth, alice):
    status, body = await post(client, "/api/v1/accounts/999999/unfollow", auth)
    assert status == 404 and body == {"error": "Record not found"}


# GET /api/v1/accounts/:id/followers and /following


@pytest.fixture
async def crowd(pool, settings, alice, bob):
    """Four remote accounts and bob following alice (accepted, in this order), one pending; alice follows two."""
    remotes = [await remote_actor(pool, f"r{n}") for n in range(4)]
    followers = [bob.id, *remotes]
    for actor_id in followers:
        await add_follow(pool, actor_id, alice.id)
    pending = await remote_actor(pool, "waiting")
    await add_follow(pool, pending, alice.id, "pending")
    for actor_id in remotes[:2]:
        await add_follow(pool, alice.id, actor_id)
    await add_follow(pool, alice.id, remotes[2], "pending")
    return followers, remotes[:2]


async def _ids(response) -> list[int]:
    body = await response.json()
    for account in body:
        check(account, ACCOUNT)
    return [int(a["id"]) for a in body]


async def test_followers_newest_first_accepted_only(client, alice, crowd):
    followers, _ = crowd
    response = await client.get(f"/api/v1/accounts/{alice.id}/followers")  # public, as on Mastodon
    assert response.status == 200
    assert await _ids(response) == list(reversed(followers))
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' not in response.headers["Link"]


async def test_following_lists_accepted_follows_with_a_token(client, auth, alice, crowd):
    _, followed = crowd
    response = await client.get(f"/api/v1/accounts/{alice.id}/following", headers=auth)
    assert response.status == 200 and await _ids(response) == list(reversed(followed))


async def test_followers_page_with_link_header_and_cursors(client, pool, alice, crowd):
    followers, _ = crowd
    newest_first = list(reversed(followers))
    async with pool.acquire() as conn:
        rows = dict(await conn.fetch("SELECT follower_id, id FROM follows WHERE followee_id = $1", alice.id))
    path = f"/api/v1/accounts/{alice.id}/followers"
    first = await client.get(f"{path}?limit=2")
    assert await _ids(first) == newest_first[:2]
    link = first.headers["Link"]
    assert link.startswith(f'<http://shop.test{path}?limit=2&max_id={rows[newest_first[1]]}>; rel="next"')
    assert f'<http://shop.test{path}?limit=2&min_id={rows[newest_first[0]]}>; rel="prev"' in link
    second = await client.get(f"{path}?limit=2&max_id={rows[newest_first[1]]}")
    assert await _ids(second) == newest_first[2:4]
    since = await client.get(f"{path}?since_id={rows[newest_first[2]]}")
    assert await _ids(since) == newest_first[:2]
    forward = await client.get(f"{path}?limit=2&min_id={rows[newest_first[4]]}")
    assert await _ids(forward) == newest_first[2:4]  # the two just above the cursor, shown newest first
    empty = await client.get(f"{path}?max_id={rows[newest_first[4]]}")
    assert await empty.json() == [] and "Link" not in empty.headers


async def test_follow_lists_errors(client, pool, oauth_app, alice):
    for path in ("followers", "following"):
        response = await client.get(f"/api/v1/accounts/999999/{path}")
        assert response.status == 404 and await response.json() == {"error": "Record not found"}
        write_only = await mint_token(pool, oauth_app, alice.id, ("write",))
        response = await client.get(f"/api/v1/accounts/{alice.id}/{path}",
                                    headers={"Authorization": f"Bearer {write_only}"})
        assert response.status == 403
        response = await client.get(f"/api/v1/accounts/{alice.id}/{path}?max_id=x")
        assert response.status == 400


async def test_follow_lists_skip_deleted_accounts(client, pool, settings, alice, bob):
    dave = await create_account(pool, settings, validate_new_account(username="dave"))
    await add_follow(pool, bob.id, alice.id)
    await add_follow(pool, dave.id, alice.id)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET deleted_at = now() WHERE id = $1", dave.id)
    assert await _ids(await client.get(f"/api/v1/accounts/{alice.id}/followers")) == [bob.id]


# Real clients across two instances


TOOT = str(Path(sys.executable).parent / "toot")


def _toot(*args: str, home: Path) -> subprocess.CompletedProcess:
    environ = {"XDG_CONFIG_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([TOOT, *args], env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_mastodon_py_and_toot_follow_across_instances(pg_cluster, tmp_path):
    from mastodon import Mastodon

    from tests.support.database import query
    from tests.support.instance import Instance, free_port, instance_env
    from tests.support.peer import wait_for

    started: list[tuple[Instance, str]] = []
    try:
        for label, names in (("a", ("alice", "carol")), ("b", ("bob",))):
            db_url = asyncio.run(pg_cluster.create_database())
            port = free_port()
            root = tmp_path / label
            root.mkdir()
            env = instance_env(database_url=db_url, data_dir=root / "data", port=port,
                               extra={"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.01"})
            instance = Instance(port=port, env=env, cwd=root, log_path=root / "server.log")
            started.append((instance, db_url))
            for name in names:
                created = instance.command("account", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
                assert created.returncode == 0, created.stderr
            instance.start()
        (a, _), (b, b_db) = started
        b_host = f"127.0.0.1:{b.port}"

        def followers_of_bob_on_b(name: str):
            return query(b_db, """SELECT f.state FROM follows f JOIN actors x ON x.id = f.follower_id
                                  JOIN actors y ON y.id = f.followee_id
                                  WHERE x.uri = $1 AND y.username = 'bob' AND y.is_local""",
                         f"{a.base_url}/users/{name}")

        # Mastodon.py: resolve bob through search, follow, and see `following` once B's Accept arrived.
        client_id, secret = Mastodon.create_app("follow-test", api_base_url=a.base_url)
        app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=a.base_url)
        api = Mastodon(access_token=app.log_in("alice", PASSWORD, allow_http=True), api_base_url=a.base_url)
        [found] = api.search_v2(f"@bob@{b_host}", resolve=True).accounts
        assert found.acct == f"bob@{b_host}"
        relation = api.account_follow(found.id)
        assert str(relation.id) == str(found.id) and (relation.requested or relation.following)
        wait_for(lambda: [r for r in followers_of_bob_on_b("alice") if r["state"] == "accepted"],
                 what="alice as bob's follower on B")
        wait_for(lambda: api.account_relationships(found.id)[0].following, what="the Accept on A")
        assert [acc.acct for acc in api.account_following(api.me().id)] == [f"bob@{b_host}"]

        # toot: `toot follow` resolves through /api/v2/search, then posts to /follow.
        home = tmp_path / "toot"
        login = _toot("login_cli", "--instance", a.base_url, "--email", "carol", "--password", PASSWORD, home=home)
        assert login.returncode == 0, login.stdout + login.stderr
        followed = _toot("follow", f"bob@{b_host}", home=home)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        wait_for(lambda: followers_of_bob_on_b("carol"), what="carol's follow on B")

        b_app = Mastodon(**dict(zip(("client_id", "client_secret"),
                                    Mastodon.create_app("b", api_base_url=b.base_url))), api_base_url=b.base_url)
        b_api = Mastodon(access_token=b_app.log_in("bob", PASSWORD, allow_http=True), api_base_url=b.base_url)
        wait_for(lambda: len(b_api.account_followers(b_api.me().id)) == 2, what="two followers listed on B")
        assert {acc.acct for acc in b_api.account_followers(b_api.me().id)} == {
            f"alice@127.0.0.1:{a.port}", f"carol@127.0.0.1:{a.port}"}

        unfollowed = _toot("unfollow", f"bob@{b_host}", home=home)
        assert unfollowed.returncode == 0, unfollowed.stdout + unfollowed.stderr
        wait_for(lambda: not followers_of_bob_on_b("carol"), what="carol's Undo on B")
    finally:
        for instance, db_url in started:
            instance.terminate()
            asyncio.run(pg_cluster.drop_database(db_url))
