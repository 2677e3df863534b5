"""The streaming API over real HTTP and WebSockets, with events from real PostgreSQL NOTIFY: the user, public,
hashtag and direct streams, the event-stream endpoints, authentication, revocation, Mastodon.py and masto.js."""
# ruff: noqa: F811 - the fixtures of tests/api are imported by name, and pytest passes them as arguments

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedserver.api.stream_hub import STREAM_HUB
from fedserver.app import create_app
from fedserver.federation import commands
from storefront import messages
from tests.api.conftest import alice, auth, bob, mint_token, oauth_app, settings, token  # noqa: F401 (fixtures)
from tests.api.inbound import carol, fed_api  # noqa: F401 (fixtures)
from tests.api.status_support import act, bob_auth, follow, get_json, post  # noqa: F401 (fixtures)
from tests.support.instance import free_port
from tests.support.peer import ensure_peer_installed

WAIT = 5.0
PEER = Path(__file__).resolve().parents[1] / "peer"


async def next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float = WAIT) -> dict:
    """The next text message as JSON (events, and errors, are both JSON objects)."""
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def subscribed(ws: aiohttp.ClientWebSocketResponse, stream: str, **params) -> None:
    """Subscribe, and wait until the server has taken it: messages are handled in order, so the answer to
    a bad subscription sent right after means the first one is in place."""
    await ws.send_json({"type": "subscribe", "stream": stream, **params})
    await ws.send_json({"type": "subscribe", "stream": "no-such-stream"})
    assert "error" in await next_event(ws)


async def no_event(ws: aiohttp.ClientWebSocketResponse, wait: float = 0.4) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=wait)


async def test_user_stream_gets_followed_posts_favourites_and_deletions(client, auth, bob_auth, alice, bob, pool,
                                                                       publisher):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    async with client.ws_connect("/api/v1/streaming", headers=auth) as ws:
        await subscribed(ws, "user")
        theirs = await post(client, bob_auth, "새 찻잔이 나왔어요")
        event = await next_event(ws)
        assert event["stream"] == ["user"] and event["event"] == "update"
        status = json.loads(event["payload"])
        assert status["id"] == theirs["id"] and "찻잔" in status["content"]
        assert status["account"]["username"] == "bob" and status["favourited"] is False

        mine = await post(client, auth, "my own post")
        assert json.loads((await next_event(ws))["payload"])["id"] == mine["id"]  # own posts are home too
        await act(client, bob_auth, mine["id"], "favourite")
        event = await next_event(ws)
        assert event["event"] == "notification"
        notification = json.loads(event["payload"])
        assert notification["type"] == "favourite" and notification["account"]["username"] == "bob"
        assert notification["status"]["id"] == mine["id"]

        response = await client.delete(f"/api/v1/statuses/{theirs['id']}", headers=bob_auth)
        assert response.status == 200
        assert await next_event(ws) == {"stream": ["user"], "event": "delete", "payload": theirs["id"]}


async def test_a_boost_by_a_followed_account_reaches_the_user_stream(client, auth, bob_auth, alice, bob, pool,
                                                                    publisher, settings):
    from fedserver.accounts import create_account, validate_new_account

    await create_account(pool, settings, validate_new_account(username="dave"))
    dave_post = await commands.create_post(pool, publisher, "dave", "dave's pottery")
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    async with pool.acquire() as conn:
        dave_post_id = str(await conn.fetchval("SELECT id FROM objects WHERE uri = $1", dave_post))
    async with client.ws_connect("/api/v1/streaming?stream=user", headers=auth) as ws:
        boost = await act(client, bob_auth, dave_post_id, "reblog")
        status = json.loads((await next_event(ws))["payload"])
        assert status["id"] == boost["id"] and status["reblog"]["id"] == dave_post_id
        assert status["account"]["username"] == "bob"


async def test_a_remote_post_from_the_inbox_reaches_the_followers_stream(fed_api, carol, alice, token, pool):
    assert await carol.send({"type": "Follow", "object": alice.uri}) == ["done"]  # carol becomes known here
    await follow(pool, alice.id, await carol.actor_id())
    async with fed_api.ws_connect("/api/v1/streaming?stream=user", params={"access_token": token}) as ws:
        note = await carol.create(carol.note("<p>from another server</p>"))
        status = json.loads((await next_event(ws))["payload"])
        assert status["uri"] == note["id"] and status["account"]["acct"].startswith("carol@")
        await carol.send({"type": "Delete", "object": note["id"]})
        event = await next_event(ws)
        assert event["event"] == "delete" and event["payload"] == status["id"]


async def test_user_stream_leaves_out_posts_of_accounts_not_followed_and_private_posts_to_others(
        client, auth, bob_auth, alice, bob):
    async with client.ws_connect("/api/v1/streaming?stream=user", headers=auth) as ws:
        await post(client, bob_auth, "not followed")
        await post(client, bob_auth, "private", visibility="private")
        await no_event(ws)


async def test_public_local_stream_is_open_to_anonymous_readers_and_shows_only_public_posts(client, auth):
    async with client.ws_connect("/api/v1/streaming?stream=public:local") as ws:
        await post(client, auth, "unlisted", visibility="unlisted")
        public = await post(client, auth, "public #도자기")
        event = await next_event(ws)
        assert event["stream"] == ["public:local"] and event["event"] == "update"
        status = json.loads(event["payload"])
        assert status["id"] == public["id"] and "favourited" not in status  # anonymous: no viewer flags
        await no_event(ws)


async def test_hashtag_stream_by_tag(client, auth, token):
    async with client.ws_connect("/api/v1/streaming", params={"access_token": token}) as ws:
        await subscribed(ws, "hashtag", tag="#도자기")
        await post(client, auth, "other #tea")
        tagged = await post(client, auth, "new #도자기 pieces")
        event = await next_event(ws)
        assert event["stream"] == ["hashtag", "도자기"] and json.loads(event["payload"])["id"] == tagged["id"]


async def test_edits_reach_the_stream_as_status_update(client, auth, bob_auth, alice, bob, pool, publisher):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    theirs = await post(client, bob_auth, "first version")
    async with client.ws_connect("/api/v1/streaming?stream=user", headers=auth) as ws:
        response = await client.put(f"/api/v1/statuses/{theirs['id']}", headers=bob_auth,
                                    json={"status": "second version"})
        assert response.status == 200, await response.text()
        event = await next_event(ws)
        assert event["event"] == "status.update" and "second version" in json.loads(event["payload"])["content"]


async def test_direct_stream_gets_a_conversation(client, auth, bob_auth, alice, bob):
    async with client.ws_connect("/api/v1/streaming?stream=direct", headers=auth) as ws:
        dm = await post(client, bob_auth, "@alice a private word", visibility="direct")
        event = await next_event(ws)
        assert event["stream"] == ["direct"] and event["event"] == "conversation"
        conversation = json.loads(event["payload"])
        assert conversation["last_status"]["id"] == dm["id"] and conversation["unread"] is True
        assert [a["username"] for a in conversation["accounts"]] == ["bob"]


async def test_an_order_notice_reaches_the_user_stream_as_an_update_and_a_mention(client, auth, alice, pool, publisher):
    # A notice (a move made on another server, told to the local party) is written in one statement, its stream
    # events with it: one home `update` and one `mention` notification, at the commit and not before.
    async with client.ws_connect("/api/v1/streaming", headers=auth) as ws:
        await subscribed(ws, "user")
        async with pool.acquire() as conn, conn.transaction():
            uri = await messages.notify_local(conn, publisher, alice, "주문이 발송되었습니다", "https://shop.example/orders/1")
            await no_event(ws, 0.3)
        update = await next_event(ws)
        assert update["event"] == "update" and "발송" in json.loads(update["payload"])["content"]
        notification = await next_event(ws)
        assert notification["event"] == "notification"
        payload = json.loads(notification["payload"])
        assert payload["type"] == "mention" and payload["status"]["uri"] == uri
        await no_event(ws)


async def test_event_stream_endpoint_sends_updates_and_heartbeats(client, auth, bob_auth, alice, bob, pool,
                                                                  publisher, monkeypatch):
    from fedserver.api import streaming

    monkeypatch.setattr(streaming, "HEARTBEAT_SECONDS", 0.2)
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    response = await client.get("/api/v1/streaming/user", headers=auth)
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    assert await response.content.readline() == b":)\n"
    assert await asyncio.wait_for(response.content.readline(), WAIT) == b":thump\n"
    theirs = await post(client, bob_auth, "over event-stream")
    lines = []
    while not lines or lines[-1] != b"\n":
        line = await asyncio.wait_for(response.content.readline(), WAIT)
        if not line.startswith(b":"):
            lines.append(line)
    assert lines[0] == b"event: update\n"
    assert json.loads(lines[1].removeprefix(b"data: "))["id"] == theirs["id"]
    response.close()


async def test_health_and_the_instance_announces_the_streaming_url(client):
    response = await client.get("/api/v1/streaming/health")
    assert response.status == 200 and await response.text() == "OK"
    assert response.headers["Content-Type"].startswith("text/plain")
    v1 = await get_json(client, "/api/v1/instance")
    v2 = await get_json(client, "/api/v2/instance")
    assert v1["urls"]["streaming_api"] == "ws://shop.test"
    assert v2["configuration"]["urls"]["streaming"] == "ws://shop.test"


async def test_bad_subscriptions_are_answered_with_error_events(client, token):
    async with client.ws_connect("/api/v1/streaming") as ws:  # anonymous
        await ws.send_json({"type": "subscribe", "stream": "nonsense"})
        assert (await next_event(ws))["error"].startswith("Unknown stream type")
        await ws.send_json({"type": "subscribe", "stream": "user"})
        assert await next_event(ws) == {"error": "Missing access token", "status": 401}
        await ws.send_json({"type": "subscribe", "stream": "hashtag"})
        assert (await next_event(ws))["status"] == 400
        await ws.send_str("not json")
        assert await next_event(ws) == {"error": "Invalid JSON", "status": 400}
        await ws.send_json({"type": "subscribe", "stream": "list", "list": "1"})
        assert await next_event(ws) == {"error": "Missing access token", "status": 401}


async def test_user_streams_need_a_valid_token_with_the_read_scope(client, pool, oauth_app, alice):
    for path in ("/api/v1/streaming/user", "/api/v1/streaming?stream=user"):
        response = await client.get(path)
        assert response.status == 401, path
    response = await client.get("/api/v1/streaming/public", params={"access_token": "wrong"})
    assert response.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await client.ws_connect("/api/v1/streaming?stream=user")
    assert raised.value.status == 401
    write_only = await mint_token(pool, oauth_app, alice.id, scopes=("write",))
    response = await client.get("/api/v1/streaming/user", headers={"Authorization": f"Bearer {write_only}"})
    assert response.status == 403
    assert (await client.get("/api/v1/streaming/nonsense")).status == 404


async def test_the_token_may_come_as_the_websocket_protocol(client, auth, token):
    async with client.ws_connect("/api/v1/streaming?stream=user", protocols=(token,)) as ws:
        assert ws.protocol == token
        mine = await post(client, auth, "hello")
        assert json.loads((await next_event(ws))["payload"])["id"] == mine["id"]


async def test_revoking_the_token_closes_its_streams(client, oauth_app, token):
    async with client.ws_connect("/api/v1/streaming?stream=user", params={"access_token": token}) as ws:
        response = await client.post("/oauth/revoke", data={"client_id": oauth_app.client_id,
                                                             "client_secret": oauth_app.secret, "token": token})
        assert response.status == 200
        assert await next_event(ws) == {"error": "The access token was revoked", "status": 401}
        msg = await ws.receive(timeout=WAIT)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_the_periodic_check_closes_streams_of_tokens_that_died_another_way(client, pool, token, auth):
    async with client.ws_connect("/api/v1/streaming?stream=user", headers=auth) as ws:
        response = await client.get("/api/v1/streaming/user", headers=auth)
        assert await response.content.readline() == b":)\n"
        async with pool.acquire() as conn:  # e.g. the account was suspended: no revoke call, no kill event
            await conn.execute("UPDATE oauth_tokens SET revoked_at = now()")
        await client.app[STREAM_HUB].recheck_tokens()
        assert (await next_event(ws))["error"] == "The access token was revoked"
        assert (await ws.receive(timeout=WAIT)).type == aiohttp.WSMsgType.CLOSE
        rest = await asyncio.wait_for(response.content.read(), WAIT)
        assert rest.startswith(b"event: error\n")


async def test_shutdown_closes_open_streams_quickly(settings, pool, token):
    server = TestServer(create_app(settings, pool), host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    ws = await client.ws_connect("/api/v1/streaming?stream=public")
    sse = await client.get("/api/v1/streaming/public")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.close()
    assert loop.time() - started < 3
    assert ws.closed or (await ws.receive(timeout=WAIT)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                                  aiohttp.WSMsgType.CLOSING)
    sse.close()


async def test_mastodon_py_stream_user_receives_an_update(db_url, tmp_path, pool, alice, oauth_app, monkeypatch):
    from mastodon import Mastodon, StreamListener

    from fedserver.api import streaming
    from fedserver.config import load_settings

    monkeypatch.setattr(streaming, "HEARTBEAT_SECONDS", 0.3)  # Mastodon.py's reader notices the close on a heartbeat

    port = free_port()
    local = load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{port}", "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_DATABASE__URL": db_url, "FEDSERVER_STORAGE__DATA_DIR": str(tmp_path / "data")})
    token = await mint_token(pool, oauth_app, alice.id)
    async with TestClient(TestServer(create_app(local, pool), host="127.0.0.1", port=port)) as client:
        received: list = []
        heard = threading.Event()

        class Listener(StreamListener):
            def on_update(self, status):
                received.append(status)
                heard.set()

        api = Mastodon(access_token=token, api_base_url=f"http://127.0.0.1:{port}", version_check_mode="none")
        handle = await asyncio.to_thread(api.stream_user, Listener(), run_async=True, reconnect_async=False)
        try:
            for _ in range(50):  # the stream is open once the hub has a subscriber
                if client.app[STREAM_HUB].connected:
                    break
                await asyncio.sleep(0.1)
            mine = await post(client, {"Authorization": f"Bearer {token}"}, "from the API, heard by Mastodon.py")
            for _ in range(50):
                if heard.is_set():
                    break
                await asyncio.sleep(0.1)
            assert received and str(received[0]["id"]) == mine["id"]
            assert "heard by Mastodon.py" in received[0]["content"]
        finally:
            await asyncio.to_thread(handle.close)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
async def test_masto_js_user_stream_receives_an_update(client, auth, token, alice):
    await asyncio.to_thread(ensure_peer_installed)  # masto.js is one of the peer's pinned packages
    node = await asyncio.create_subprocess_exec(
        "node", str(PEER / "masto_stream.mjs"), f"ws://127.0.0.1:{client.port}", token, "heard-by-masto-js",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=PEER)
    try:
        hub = client.app[STREAM_HUB]
        for _ in range(100):  # until masto.js's subscription has reached the server
            if alice.id in hub.router.accounts_on("user"):
                break
            await asyncio.sleep(0.1)
        mine = await post(client, auth, "heard-by-masto-js")
        out, err = await asyncio.wait_for(node.communicate(), 25)
        assert node.returncode == 0, err.decode()
        assert json.loads(out) == {"id": mine["id"], "stream": ["user"]}
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()


async def test_mutes_blocks_and_silences_keep_posts_and_notifications_off_the_streams(client, auth, bob_auth, alice,
                                                                                     bob, pool, publisher, settings):
    from fedserver.moderation import act_on_account

    await commands.follow(pool, publisher, None, "alice", bob.uri)
    response = await client.post(f"/api/v1/accounts/{bob.id}/mute", headers=auth, json={})
    assert response.status == 200
    mine = await post(client, auth, "alice's post")
    async with client.ws_connect("/api/v1/streaming?stream=user", headers=auth) as ws:
        await post(client, bob_auth, "from a muted account")
        await act(client, bob_auth, mine["id"], "favourite")
        await no_event(ws)
    await client.post(f"/api/v1/accounts/{bob.id}/unmute", headers=auth)
    async with client.ws_connect("/api/v1/streaming?stream=public:local") as ws:
        await act_on_account(pool, bob, "silence", "test", "", settings.instance.domain)
        await post(client, bob_auth, "from a silenced account")
        await no_event(ws)
        await post(client, auth, "from alice")
        assert json.loads((await next_event(ws))["payload"])["content"] == "<p>from alice</p>"


async def test_a_list_stream_gets_its_members_posts_and_only_its_owner_may_subscribe(client, auth, bob_auth, alice,
                                                                                    bob, pool, publisher, settings):
    from fedserver.accounts import create_account, validate_new_account

    dave = await create_account(pool, settings, validate_new_account(username="dave"))
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    await commands.follow(pool, publisher, None, "alice", dave.uri)  # followed, but not on the list
    response = await client.post("/api/v1/lists", headers=auth, json={"title": "도예가들"})
    listed = await response.json()
    assert response.status == 200, listed
    response = await client.post(f"/api/v1/lists/{listed['id']}/accounts", headers=auth,
                                 json={"account_ids": [str(bob.id)]})
    assert response.status == 200, await response.json()
    async with client.ws_connect("/api/v1/streaming", headers=bob_auth) as ws:  # bob may not read alice's list
        await ws.send_json({"type": "subscribe", "stream": "list", "list": listed["id"]})
        assert await next_event(ws) == {"error": "Record not found", "status": 404}
        await ws.send_json({"type": "subscribe", "stream": "list", "list": "999999"})
        assert await next_event(ws) == {"error": "Record not found", "status": 404}
    async with client.ws_connect(f"/api/v1/streaming?stream=list&list={listed['id']}", headers=auth) as ws:
        theirs = await post(client, bob_auth, "새 가마")
        event = await next_event(ws)
        assert event["stream"] == ["list", listed["id"]] and event["event"] == "update"
        assert json.loads(event["payload"])["id"] == theirs["id"]
        await commands.create_post(pool, publisher, "dave", "not on the list")
        await no_event(ws)


async def test_an_exclusive_list_stream_gets_posts_that_skip_the_home_timeline(client, auth, bob_auth, alice, bob,
                                                                              pool, publisher):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    response = await client.post("/api/v1/lists", headers=auth, json={"title": "only here", "exclusive": True})
    listed = await response.json()
    await client.post(f"/api/v1/lists/{listed['id']}/accounts", headers=auth, json={"account_ids": [str(bob.id)]})
    async with client.ws_connect("/api/v1/streaming", headers=auth) as ws:
        await subscribed(ws, "user")
        await subscribed(ws, "list", list=listed["id"])
        theirs = await post(client, bob_auth, "exclusive")
        event = await next_event(ws)
        assert event["stream"] == ["list", listed["id"]] and json.loads(event["payload"])["id"] == theirs["id"]
        await no_event(ws)  # and not on the user stream: it skipped the home timeline
