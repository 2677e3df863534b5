"""The inbox's negative tests (security checklist §5: P0 1–7, 10–13; limits 25–28).

Each refused request must leave no row behind. The sender is a real HTTP server on
loopback (tests/support/remote.py) whose keys the test holds, so it can play an attacker.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedserver.federation.keys import instance_signer
from fedserver.federation.remote import ensure_remote_actor
from fedserver.net.http import FetchError, HttpClient
from fedserver.signatures import generate_rsa_keypair
from tests.conftest import TEST_DOMAIN
from tests.support.processing import process_all as _process_all
from tests.support.remote import AP, RemoteActorKeys, RemoteServer, signed_post

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.fixture
async def remote():
    server = await RemoteServer().start()
    server.add_actor("mallory")
    server.add_actor("bob")
    yield server
    await server.close()


ALICE = f"https://{TEST_DOMAIN}/users/alice"


def _note_create(remote: RemoteServer, actor: str = "bob", *, object_host: str | None = None, **extra) -> dict:
    uri = remote.actors[actor].uri
    base = object_host or remote.base
    stamp = time.time_ns()
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/activities/{stamp}", "type": "Create", "actor": uri,
        "object": {"id": f"{base}/notes/{stamp}", "type": "Note", "attributedTo": uri,
                   "content": "<p>hello</p>", "to": [ALICE]},
        "to": [ALICE], **extra,
    }


async def _post(client, signer, activity: dict | bytes, *, path: str = "/users/alice/inbox",
                tamper: bytes | None = None, headers: dict | None = None, **sign_kwargs):
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    host = f"127.0.0.1:{client.port}"
    signed = signed_post(signer, path, host, body, **sign_kwargs)
    signed.update(headers or {})
    return await client.post(path, data=tamper if tamper is not None else body, headers=signed)


async def _rows(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM inbox_items")


async def test_valid_signed_activity_is_stored_once_and_answered_202(fed_client, remote, pool):
    activity = _note_create(remote)
    response = await _post(fed_client, remote.actors["bob"], activity)
    assert response.status == 202, await response.text()
    assert await _rows(pool) == 1


async def test_p0_01_key_of_another_actor_is_refused(fed_client, remote, pool):
    activity = _note_create(remote, "bob")
    response = await _post(fed_client, remote.actors["mallory"], activity)
    assert response.status == 401
    assert "signer and the actor do not match" in (await response.json())["error"]
    assert await _rows(pool) == 0


async def test_p0_02_object_from_another_host_is_refused(fed_client, remote, pool):
    activity = _note_create(remote, object_host="http://elsewhere.example")
    response = await _post(fed_client, remote.actors["bob"], activity)
    assert response.status == 400
    assert "not on the actor's server" in (await response.json())["error"]
    activity = _note_create(remote)
    activity["id"] = "http://elsewhere.example/activities/1"
    response = await _post(fed_client, remote.actors["bob"], activity)
    assert response.status == 400
    assert await _rows(pool) == 0


async def test_p0_03_body_changed_after_signing_is_refused(fed_client, remote, pool):
    activity = _note_create(remote)
    body = json.dumps(activity).encode()
    response = await _post(fed_client, remote.actors["bob"], body, tamper=body.replace(b"hello", b"HELLO"))
    assert response.status == 401
    assert "digest" in (await response.json())["error"].lower()
    assert await _rows(pool) == 0


async def test_p0_04_signature_must_cover_digest_and_date(fed_client, remote, pool):
    """Signed by httpsig (an independent implementation) over too few headers."""
    import httpsig

    from fedserver.signatures import digest_header, http_date

    activity = _note_create(remote)
    body = json.dumps(activity).encode()
    keys = remote.actors["bob"]
    for covered, expected in ((["(request-target)", "host", "date", "content-type"], "digest"),
                              (["(request-target)", "host", "digest", "content-type"], "date")):
        headers = {"Host": f"127.0.0.1:{fed_client.port}", "Date": http_date(), "Digest": digest_header(body),
                   "Content-Type": AP}
        signer = httpsig.HeaderSigner(keys.key_id, keys.private_pem, algorithm="rsa-sha256", headers=covered)
        signed = signer.sign(headers, method="POST", path="/users/alice/inbox")
        signed["Signature"] = signed.pop("authorization").removeprefix("Signature ")
        response = await fed_client.post("/users/alice/inbox", data=body, headers=signed)
        assert response.status == 401
        assert expected in (await response.json())["error"]
    assert await _rows(pool) == 0


async def test_p0_05_date_outside_the_window_is_refused(fed_client, remote, pool):
    for skew in (-2 * 3600, 2 * 3600):
        response = await _post(fed_client, remote.actors["bob"], _note_create(remote), now=time.time() + skew)
        assert response.status == 401
        assert "date" in (await response.json())["error"]
    assert await _rows(pool) == 0


async def test_p0_06_replayed_request_has_no_second_effect(fed_client, remote, pool):
    activity = _note_create(remote)
    body = json.dumps(activity).encode()
    host = f"127.0.0.1:{fed_client.port}"
    headers = signed_post(remote.actors["bob"], "/users/alice/inbox", host, body)
    for _ in range(2):
        response = await fed_client.post("/users/alice/inbox", data=body, headers=headers)
        assert response.status == 202
    assert await _rows(pool) == 1


async def test_p0_07_host_tricks_do_not_match(fed_client, remote, pool):
    keys = remote.actors["bob"]
    port = remote.server.port
    for forged in (f"http://127.0.0.1:{port}.evil.example/notes/1", f"http://127.0.0.1:{port}@evil.example/n/1",
                   f"http://evil.example/127.0.0.1:{port}/notes/1"):
        activity = _note_create(remote)
        activity["object"]["id"] = forged
        response = await _post(fed_client, keys, activity)
        assert response.status == 400, forged
    assert await _rows(pool) == 0


async def test_p0_08_key_served_with_a_wrong_content_type_is_refused(fed_client, remote, pool):
    remote.content_type = "application/json"
    response = await _post(fed_client, remote.actors["bob"], _note_create(remote))
    assert response.status == 401
    assert "not ActivityPub JSON" in (await response.json())["error"]
    assert await _rows(pool) == 0


async def test_p0_10_remote_activity_with_a_local_id_is_refused(fed_client, remote, pool):
    activity = _note_create(remote)
    activity["object"]["id"] = f"https://{TEST_DOMAIN}/users/alice/statuses/1"
    response = await _post(fed_client, remote.actors["bob"], activity)
    assert response.status == 400
    activity = _note_create(remote)
    activity["id"] = f"https://{TEST_DOMAIN}/activities/1"
    response = await _post(fed_client, remote.actors["bob"], activity)
    assert response.status == 400
    assert await _rows(pool) == 0


async def test_p0_12_ld_signature_grants_no_authority(fed_client, remote, pool):
    """An LD signature and a remapping @context change nothing: the HTTP signer must be the actor."""
    activity = _note_create(remote, "bob")
    activity["@context"] = ["https://www.w3.org/ns/activitystreams", {"actor": "as:object"}]
    activity["signature"] = {"type": "RsaSignature2017", "creator": activity["actor"] + "#main-key",
                             "signatureValue": "AAAA"}
    response = await _post(fed_client, remote.actors["mallory"], activity)
    assert response.status == 401
    assert await _rows(pool) == 0


async def test_p0_13_key_document_with_another_id_is_refused(fed_client, pool):
    remote = await RemoteServer(key_documents=True, wrong_key_document_id=True).start()
    try:
        remote.add_actor("bob")
        response = await _post(fed_client, remote.actors["bob"], _note_create(remote))
        assert response.status == 401
        assert "is not its URL" in (await response.json())["error"]
    finally:
        await remote.close()
    assert await _rows(pool) == 0


async def test_separate_key_documents_are_accepted_when_linked(fed_client, pool):
    remote = await RemoteServer(key_documents=True).start()
    try:
        remote.add_actor("bob")
        response = await _post(fed_client, remote.actors["bob"], _note_create(remote))
        assert response.status == 202, await response.text()
    finally:
        await remote.close()


async def test_unknown_signer_server_answers_503_so_the_sender_retries(fed_client, pool):
    remote = await RemoteServer().start()
    keys = remote.add_actor("bob")
    activity = _note_create(remote)
    await remote.close()  # the signer's server is down: its key cannot be fetched now
    response = await _post(fed_client, keys, activity)
    assert response.status == 503
    assert response.headers.get("Retry-After")
    assert await _rows(pool) == 0


async def test_limit_25_body_over_one_mebibyte_is_refused_before_parsing(fed_client, pool):
    body = b"{" + b" " * (1024 * 1024) + b"}"
    response = await fed_client.post("/users/alice/inbox", data=body, headers={"Content-Type": AP})
    assert response.status == 413
    assert await _rows(pool) == 0


async def test_limit_26_deep_nesting_and_huge_recipient_lists_are_refused(fed_client, remote, pool):
    deep = json.dumps(_note_create(remote)).encode()
    body = deep[:-1] + b', "extra": ' + b'{"x": ' * 10_000 + b"1" + b"}" * 10_000 + b"}"
    response = await _post(fed_client, remote.actors["bob"], body)
    assert response.status == 400
    wide = _note_create(remote)
    wide["to"] = [f"https://x.example/u/{i}" for i in range(100_000)]
    body = json.dumps(wide).encode()
    assert len(body) < 4 * 1024 * 1024
    response = await _post(fed_client, remote.actors["bob"], body[: 1024 * 1024] if len(body) > 1024 * 1024
                           else body)
    assert response.status in (400, 413)
    few = _note_create(remote)
    few["to"] = [f"https://x.example/u/{i}" for i in range(6_000)]
    response = await _post(fed_client, remote.actors["bob"], few)
    assert response.status == 400
    assert "recipients" in (await response.json())["error"]
    assert await _rows(pool) == 0


async def test_wrong_content_type_and_bad_json_are_refused(fed_client, remote, pool):
    response = await fed_client.post("/users/alice/inbox", data=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    response = await fed_client.post("/users/alice/inbox", data=b"{nope", headers={"Content-Type": AP})
    assert response.status == 400
    response = await fed_client.post("/users/alice/inbox", data=b"[]", headers={"Content-Type": AP})
    assert response.status == 400
    # NaN is Python's extension, not JSON: refused up front, not left to fail the batch insert.
    nan = json.dumps(_note_create(remote, extra_number=float("nan"))).encode()
    assert b"NaN" in nan
    response = await _post(fed_client, remote.actors["bob"], nan)
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    unsigned = json.dumps(_note_create(remote)).encode()
    response = await fed_client.post("/users/alice/inbox", data=unsigned, headers={"Content-Type": AP})
    assert response.status == 401
    assert (await response.json())["error"] == "no signature"
    assert await _rows(pool) == 0


async def test_inbox_of_an_unknown_account_is_404(fed_client, remote, pool):
    response = await _post(fed_client, remote.actors["bob"], _note_create(remote), path="/users/nobody/inbox")
    assert response.status == 404
    assert await _rows(pool) == 0


async def test_p0_11_pushed_actor_update_does_not_change_the_key(fed_client, remote, pool, fed_settings):
    keys = remote.actors["bob"]
    assert (await _post(fed_client, keys, _note_create(remote))).status == 202
    other_private, other_public = __import__("fedserver.signatures", fromlist=["x"]).generate_rsa_keypair()
    update = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/updates/1",
              "type": "Update", "actor": keys.uri,
              "object": remote.actor_document(keys, name="Bob Renamed",
                                              publicKey={"id": keys.key_id, "owner": keys.uri,
                                                         "publicKeyPem": other_public})}
    assert (await _post(fed_client, keys, update)).status == 202
    await _process_all(pool, fed_settings)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT display_name, public_key_pem FROM actors WHERE uri = $1", keys.uri)
    assert row["display_name"] == "Bob Renamed"
    assert row["public_key_pem"] == keys.public_pem


async def test_limit_27_over_long_fields_are_truncated_and_huge_content_refused(fed_client, remote, pool,
                                                                                fed_settings):
    keys = remote.actors["bob"]
    long_name = "가" * 10_000
    remote.actors["bob"] = keys
    update = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/updates/2",
              "type": "Update", "actor": keys.uri,
              "object": remote.actor_document(keys, name=long_name, summary="<p>" + "x" * 20_000 + "</p>")}
    assert (await _post(fed_client, keys, update)).status == 202
    big = _note_create(remote)
    big["object"]["content"] = "<p>" + "y" * 150_000 + "</p>"
    assert (await _post(fed_client, keys, big)).status == 202
    outcomes = await _process_all(pool, fed_settings)
    assert sorted(outcomes) == ["done", "failed"]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT display_name, summary FROM actors WHERE uri = $1", keys.uri)
        stored = await conn.fetchval("SELECT count(*) FROM objects WHERE NOT is_local")
        reason = await conn.fetchval("SELECT last_error FROM inbox_items WHERE state = 'failed'")
    assert len(row["display_name"]) == 100
    assert len(row["summary"]) <= 5_100
    assert stored == 0
    assert "100000" in reason.replace(",", "") or "too" in reason


async def test_limit_28_fetches_stop_at_the_budget(fed_client, remote, pool, fed_settings):
    """A Create naming its object only by id, on a server that answers with an endless reply chain."""
    keys = remote.actors["bob"]
    for i in range(200):
        remote.extra_routes[f"/notes/chain{i}"] = {
            "@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/notes/chain{i}",
            "type": "Note", "attributedTo": keys.uri, "content": f"<p>{i}</p>", "to": [ALICE],
            "inReplyTo": f"{remote.base}/notes/chain{i + 1}",
        }
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/activities/chain",
                "type": "Create", "actor": keys.uri, "object": f"{remote.base}/notes/chain0", "to": [ALICE]}
    assert (await _post(fed_client, keys, activity)).status == 202
    before = len(remote.requests)
    outcomes = await _process_all(pool, fed_settings)
    assert outcomes == ["done"]
    assert len(remote.requests) - before <= 20


async def test_p0_14_nothing_under_our_origin_serves_planted_json_as_activitypub(fed_client, pool, fed_settings):
    """CVE-2024-25623 class: attacker-chosen bytes must never come back as an ActivityPub document.

    Uploads go through the real endpoint: JSON, JSON-LD and HTML bodies, a JSON file under an
    image name, and a JPEG+HTML polyglot are refused (422) with no file and no row; an image
    that is accepted comes back re-encoded, labelled image/*, `nosniff`. Error answers that
    echo a path are plain JSON, which a fetcher following Mastodon's rules refuses as an AP object.
    """
    from aiohttp import FormData
    from PIL import Image

    from fedserver.api.oauth_service import issue_token, register_app
    from fedserver.net.http import is_activitypub_content_type

    app, _ = await register_app(pool, name="p0-14", website=None, redirect_uris=["urn:ietf:wg:oauth:2.0:oob"],
                                scopes=("write",))
    async with pool.acquire() as conn:
        alice_id = await conn.fetchval("SELECT id FROM actors WHERE username = 'alice' AND is_local")
        grant = await issue_token(conn, app, alice_id, ("write",))
    auth = {"Authorization": f"Bearer {grant.access_token}"}
    planted = '{"@context":"https://www.w3.org/ns/activitystreams","id":"https://shop.test/users/x",' \
              '"type":"Person","inbox":"https://evil.example/i"}'

    for ctype in ("application/json", "application/activity+json", "application/ld+json"):
        response = await fed_client.post("/api/v2/media", data=planted.encode(), headers={**auth, "Content-Type": ctype})
        assert response.status == 422 and response.content_type == "application/json"
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(jpeg, "JPEG")
    polyglot = jpeg.getvalue() + b"<html><script>alert(1)</script></html>" + planted.encode()
    for data, name, ctype in ((planted.encode(), "actor.json", "application/activity+json"),
                              (planted.encode(), "actor.png", "image/png"),
                              (polyglot, "photo.html", "text/html"), (polyglot, "photo.jpg", "image/jpeg")):
        form = FormData()
        form.add_field("file", data, filename=name, content_type=ctype)
        response = await fed_client.post("/api/v2/media", data=form, headers=auth)
        assert response.status == 422, (name, await response.text())
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM media_attachments") == 0
    media_dir = fed_settings.storage.data_dir / "media"
    assert not media_dir.exists() or not any(media_dir.iterdir())

    form = FormData()
    form.add_field("file", jpeg.getvalue(), filename="actor.json.jpg", content_type="application/activity+json")
    accepted = await (await fed_client.post("/api/v2/media", data=form, headers=auth)).json()
    served_paths = ["/media/" + accepted[key].rsplit("/media/", 1)[1] for key in ("url", "preview_url")]
    for path in served_paths:
        response = await fed_client.get(path, headers={"Accept": "application/activity+json"})
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert not is_activitypub_content_type(response.headers["Content-Type"])
        assert (await response.read()).startswith(b"\xff\xd8")

    for path in (f"/users/{planted}", f"/media/{planted}.json", "/users/alice/statuses/1.json",
                 served_paths[0] + ".json", served_paths[0].replace(".jpg", ".json")):
        response = await fed_client.get(path, headers={"Accept": "application/activity+json"})
        assert response.status in (404, 400)
        assert response.content_type == "application/json"


async def test_an_activity_postgresql_always_refuses_gets_a_400_not_a_503_and_is_logged(
        fed_client, remote, pool, caplog):
    """A lone UTF-16 surrogate is valid JSON to Python but never to PostgreSQL's jsonb: retrying cannot help."""
    create = _note_create(remote)
    body = json.dumps(create).replace("<p>hello</p>", "<p>\\ud800</p>").encode()
    with caplog.at_level("WARNING", logger="fedserver.federation.inbox"):
        response = await _post(fed_client, remote.actors["bob"], body)
    assert response.status == 400, await response.text()
    assert "cannot be stored" in (await response.json())["error"]
    assert await _rows(pool) == 0
    assert any("refused by the database" in record.getMessage() for record in caplog.records)
    # The same sender's valid activity right after is stored as usual.
    assert (await _post(fed_client, remote.actors["bob"], _note_create(remote))).status == 202
    assert await _rows(pool) == 1


async def test_an_actor_claiming_anothers_key_id_is_refused_and_never_takes_it_over(fed_client, remote, pool,
                                                                                     fed_settings):
    victim = remote.actors["bob"]
    elsewhere = await RemoteServer().start()
    try:
        private_pem, public_pem = generate_rsa_keypair()
        eve = elsewhere.actors["eve"] = RemoteActorKeys("eve", f"{elsewhere.base}/users/eve", victim.key_id,
                                                        private_pem, public_pem)
        twin = remote.actors["twin"] = RemoteActorKeys("twin", f"{remote.base}/users/twin", victim.key_id,
                                                       private_pem, public_pem)
        async with HttpClient(fed_settings) as http:
            signer = await instance_signer(pool, fed_settings)
            with pytest.raises(FetchError, match="own server"):  # as a search would resolve it
                await ensure_remote_actor(pool, http, signer, eve.uri)
            assert (await _post(fed_client, victim, _note_create(remote))).status == 202  # the victim is known now
            with pytest.raises(FetchError, match="another actor"):  # same host, the victim's key id
                await ensure_remote_actor(pool, http, signer, twin.uri)
        assert await pool.fetchval("SELECT count(*) FROM actors WHERE uri = ANY($1::text[])", [eve.uri, twin.uri]) == 0
        assert (await _post(fed_client, victim, _note_create(remote))).status == 202
        forged = await _post(fed_client, eve, _note_create(elsewhere, "eve"))  # eve's key under the victim's id
        assert forged.status == 401
        assert await pool.fetchval("SELECT key_id FROM actors WHERE uri = $1", victim.uri) == victim.key_id
    finally:
        await elsewhere.close()


async def test_a_stalling_key_host_takes_no_more_than_its_share_of_key_fetches(fed_client, remote, pool):
    release = asyncio.Event()

    async def stall(_request):
        await release.wait()
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", stall)
    stalling = TestServer(app, host="127.0.0.1")
    await stalling.start_server()
    base = f"http://127.0.0.1:{stalling.port}"
    try:
        signers = []
        for i in range(110):  # more than aiohttp's 100 connections in all
            private_pem, public_pem = generate_rsa_keypair() if i == 0 else (signers[0].private_pem, "")
            uri = f"{base}/users/s{i}"
            signers.append(RemoteActorKeys(f"s{i}", uri, f"{uri}#main-key", private_pem, public_pem))
        flood = [asyncio.ensure_future(_post(fed_client, keys, {**_note_create(remote), "actor": keys.uri}))
                 for keys in signers]
        await asyncio.sleep(1)
        # A new signer elsewhere still gets its key fetched and its activity stored.
        legit = await asyncio.wait_for(_post(fed_client, remote.actors["bob"], _note_create(remote)), 15)
        assert legit.status == 202
        refused = [task.result().status for task in flood if task.done()]
        assert refused and set(refused) == {503} and len(refused) >= 110 - 4
        assert all(task.result().headers["Retry-After"] for task in flood if task.done())
    finally:
        release.set()
        await asyncio.gather(*flood, return_exceptions=True)
        await stalling.close()
    assert await _rows(pool) == 1


async def test_requests_waiting_for_the_same_unknown_key_share_one_fetch(fed_client, remote, pool):
    bob = remote.actors["bob"]
    answers = await asyncio.gather(*(_post(fed_client, bob, _note_create(remote)) for _ in range(8)))
    assert [a.status for a in answers] == [202] * 8 and await _rows(pool) == 8
    assert remote.requests.count(bob.uri.removeprefix(remote.base)) == 1
