"""Reports (API, Flag out and in) and the operator's moderation: refused at the inbox, never fetched, hidden."""

from __future__ import annotations

import json

import pytest

from fedserver.moderation import Moderation, ModerationError, act_on_account, act_on_domain, resolve_report
from fedserver.net.http import FetchError, HttpClient
from fedserver.repo import moderation as moderation_repo
from tests.api.conftest import mint_token
from tests.api.inbound import PUBLIC, carol, fed_api  # noqa: F401 (fixtures)
from tests.api.status_support import bob_auth, count, follow, get_json, post  # noqa: F401
from tests.support.database import DELIVERED
from tests.support.remote import signed_post


async def _known_carol(carol, pool, alice) -> tuple[int, dict]:
    """carol, followed by alice, with one public post stored here."""
    assert await carol.send({"type": "Follow", "object": alice.uri}) == ["done"]
    carol_id = await carol.actor_id()
    await follow(pool, alice.id, carol_id)
    note = await carol.create(carol.note("hello from carol"))
    return carol_id, note


async def _status_id(pool, uri: str) -> int:
    return await count(pool, "SELECT id FROM objects WHERE uri = $1", uri)


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# Reports


async def test_a_forwarded_report_is_stored_and_sent_as_a_flag_by_the_instance(fed_api, carol, pool, alice,
                                                                                oauth_app):
    headers = _auth(await mint_token(pool, oauth_app, alice.id))
    carol_id, note = await _known_carol(carol, pool, alice)
    status_id = await _status_id(pool, note["id"])
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM deliveries")
    response = await fed_api.post("/api/v1/reports", headers=headers, json={
        "account_id": str(carol_id), "status_ids": [str(status_id)], "comment": "스팸입니다", "category": "spam",
        "forward": True})
    report = await response.json()
    assert response.status == 200, report
    assert (report["category"], report["comment"], report["forwarded"], report["action_taken"]) == (
        "spam", "스팸입니다", True, False)
    assert report["status_ids"] == [str(status_id)] and report["target_account"]["id"] == str(carol_id)
    async with pool.acquire() as conn:
        [flag] = await conn.fetch(f"SELECT b.body, inbox_uri FROM {DELIVERED}")
    body = flag["body"] if isinstance(flag["body"], dict) else json.loads(flag["body"])
    assert flag["inbox_uri"] == f"{carol.uri}/inbox"
    assert body["type"] == "Flag" and body["object"] == [carol.uri, note["id"]] and body["content"] == "스팸입니다"
    assert body["actor"].endswith("/actor") and alice.uri not in json.dumps(body)  # the reporter stays unnamed
    [stored] = await moderation_repo_reports(pool)
    assert (stored.reporter_id, stored.target_id, stored.forwarded, stored.flag_uri) == (
        alice.id, carol_id, True, body["id"])


async def moderation_repo_reports(pool):
    async with pool.acquire() as conn:
        return await moderation_repo.list_reports(conn, resolved=True)


async def test_reports_refuse_bad_input_and_store_nothing(fed_api, carol, pool, alice, bob, oauth_app):
    headers = _auth(await mint_token(pool, oauth_app, alice.id))
    carol_id, note = await _known_carol(carol, pool, alice)
    bobs = await post(fed_api, _auth(await mint_token(pool, oauth_app, bob.id)), "bob's post")
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM deliveries")
    cases = [
        ({"account_id": str(carol_id), "status_ids": [bobs["id"]]}, 422, "not a post of the reported account"),
        ({"account_id": str(carol_id), "category": "rude"}, 422, "category must be one of"),
        ({"account_id": str(carol_id), "category": "violation"}, 422, "names the rules"),
        ({"account_id": str(carol_id), "category": "violation", "rule_ids": ["7"]}, 422, "no rule 7"),
        ({"account_id": str(carol_id), "comment": "x" * 1001}, 422, "more than 1000"),
        ({"account_id": str(alice.id)}, 422, "yourself"),
        ({"account_id": "999999"}, 404, "Record not found"),
        ({}, 422, "account_id is required"),
    ]
    for body, status, words in cases:
        response = await fed_api.post("/api/v1/reports", headers=headers, json=body)
        answer = await response.json()
        assert response.status == status and words in answer["error"], (body, answer)
    read_only = _auth(await mint_token(pool, oauth_app, alice.id, ("read",)))
    response = await fed_api.post("/api/v1/reports", headers=read_only, json={"account_id": str(carol_id)})
    assert response.status == 403
    assert await count(pool, "SELECT count(*) FROM reports") == 0
    assert await count(pool, "SELECT count(*) FROM deliveries") == 0


async def test_a_flag_from_another_server_becomes_a_report_once(fed_api, carol, pool, alice, oauth_app):
    mine = await post(fed_api, _auth(await mint_token(pool, oauth_app, alice.id)), "a post")
    flag_id = carol.new_id("flags")
    flag = {"id": flag_id, "type": "Flag", "object": [alice.uri, mine["uri"]], "content": "<p>this is spam</p>"}
    assert await carol.send(flag) == ["done"]
    assert await carol.send(flag) == []  # the same id: stored once at the inbox
    [report] = await moderation_repo_reports(pool)
    assert (report.target_id, report.status_ids, report.comment, report.is_remote, report.flag_uri) == (
        alice.id, [int(mine["id"])], "this is spam", True, flag_id)
    nobody = {"type": "Flag", "object": ["https://elsewhere.example/users/x"], "content": "?"}
    assert await carol.send(nobody) == ["ignored"]
    done = await resolve_report(pool, report.id, "admin", "talked to alice")
    assert done == f"resolved report {report.id}"
    with pytest.raises(ModerationError, match="already resolved"):
        await resolve_report(pool, report.id, "admin")
    with pytest.raises(ModerationError, match="no report 999"):
        await resolve_report(pool, 999, "admin")


# The operator's moderation


async def test_a_blocked_domain_is_refused_at_the_inbox_never_fetched_and_hidden(fed_api, carol, pool, alice,
                                                                                  fed_settings, oauth_app):
    headers = _auth(await mint_token(pool, oauth_app, alice.id))
    carol_id, note = await _known_carol(carol, pool, alice)
    assert [s["uri"] for s in await get_json(fed_api, "/api/v1/timelines/public", headers)] == [note["id"]]
    host = carol.uri.split("/")[2]
    # Queued before the block, processed after it: dropped.
    body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "id": carol.new_id("a"),
                       "type": "Create", "actor": carol.uri, "object": carol.note("late"), "to": [PUBLIC]}).encode()
    response = await fed_api.post("/inbox", data=body,
                                  headers=signed_post(carol.keys, "/inbox", f"127.0.0.1:{fed_api.port}", body))
    assert response.status == 202
    done = await act_on_domain(pool, f"http://{host}/", "block", "cli:test", "spam wave", fed_settings.instance.domain)
    assert done == f"blocked {host}; 2 follows ended"
    assert await count(pool, "SELECT count(*) FROM follows") == 0
    from tests.support.processing import process_all
    assert await process_all(pool, fed_settings) == ["ignored"]
    assert await count(pool, "SELECT count(*) FROM objects WHERE content LIKE '%late%'") == 0
    # Refused at the inbox before its signature is even checked: nothing stored, no key fetched.
    before = await count(pool, "SELECT count(*) FROM inbox_items")
    carol.server.requests.clear()
    body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "id": carol.new_id("a"),
                       "type": "Like", "actor": carol.uri, "object": alice.uri}).encode()
    fed_api.app[MODERATION_KEY()].invalidate()
    response = await fed_api.post("/inbox", data=body,
                                  headers=signed_post(carol.keys, "/inbox", f"127.0.0.1:{fed_api.port}", body))
    assert response.status == 403 and "blocked by this server's moderation" in (await response.json())["error"]
    assert await count(pool, "SELECT count(*) FROM inbox_items") == before and carol.server.requests == []
    # Never fetched.
    async with HttpClient(fed_settings) as http:
        http.host_policy = Moderation(pool).refusal
        with pytest.raises(FetchError, match="blocked by this server's moderation"):
            await http.fetch_activitypub(carol.uri, signer=None)
    assert carol.server.requests == []
    # Its posts are hidden, it leaves the peers, and the block is published with its reason.
    assert await get_json(fed_api, "/api/v1/timelines/public", headers) == []
    await get_json(fed_api, f"/api/v1/statuses/{await _status_id(pool, note['id'])}", headers, expect=404)
    assert host not in await get_json(fed_api, "/api/v1/instance/peers")
    [published] = await get_json(fed_api, "/api/v1/instance/domain_blocks")
    assert (published["domain"], published["severity"], published["comment"]) == (host, "suspend", "spam wave")
    assert len(published["digest"]) == 64
    # Lifted: visible again (follows stay ended), and the log says who did what and why.
    await act_on_domain(pool, host, "unblock", "cli:test", "", fed_settings.instance.domain)
    assert len(await get_json(fed_api, "/api/v1/timelines/public", headers)) == 1
    async with pool.acquire() as conn:
        log = await moderation_repo.read_log(conn, 10)
    assert [(r.moderator, r.action, r.target, r.reason) for r in log] == [
        ("cli:test", "domain.unblock", host, ""), ("cli:test", "domain.block", host, "spam wave")]


def MODERATION_KEY():  # noqa: N802 (the app key, imported late so the module imports without the app)
    from fedserver.app_keys import MODERATION
    return MODERATION


async def test_domain_actions_refuse_bad_and_own_domains(pool, settings):
    for bad, words in (("not a domain", "expected a domain"), (settings.instance.domain, "own domain"), ("", "domain")):
        with pytest.raises(ModerationError, match=words):
            await act_on_domain(pool, bad, "block", "cli:test", "", settings.instance.domain)
    with pytest.raises(ModerationError, match="neither blocked nor silenced"):
        await act_on_domain(pool, "example.com", "unblock", "cli:test", "", settings.instance.domain)
    with pytest.raises(ModerationError, match="more than 1000"):
        await act_on_domain(pool, "example.com", "block", "cli:test", "x" * 1001, settings.instance.domain)
    assert await count(pool, "SELECT count(*) FROM domain_moderation") == 0
    assert await count(pool, "SELECT count(*) FROM moderation_log") == 0


async def test_silence_keeps_an_account_out_of_public_timelines_only(fed_api, carol, pool, alice, fed_settings,
                                                                     oauth_app):
    headers = _auth(await mint_token(pool, oauth_app, alice.id))
    carol_id, note = await _known_carol(carol, pool, alice)
    async with pool.acquire() as conn:
        actor = await conn.fetchrow("SELECT id FROM actors WHERE id = $1", carol_id)
    from fedserver.repo.actors import get_actor_by_id
    async with pool.acquire() as conn:
        carol_actor = await get_actor_by_id(conn, actor["id"])
    await act_on_account(pool, carol_actor, "silence", "admin", "noisy", fed_settings.instance.domain)
    assert await get_json(fed_api, "/api/v1/timelines/public", headers) == []
    assert [s["uri"] for s in await get_json(fed_api, "/api/v1/timelines/home", headers)] == [note["id"]]
    assert await count(pool, "SELECT count(*) FROM follows") == 2  # silencing ends nothing
    await act_on_account(pool, carol_actor, "suspend", "admin", "spam", fed_settings.instance.domain)
    assert await get_json(fed_api, "/api/v1/timelines/home", headers) == []
    carol.server.requests.clear()
    async with HttpClient(fed_settings) as http:  # neither the actor nor anything below its id is fetched
        http.host_policy = Moderation(pool).refusal
        for url in (carol.uri, f"{carol.uri}/statuses/1"):
            with pytest.raises(FetchError, match="suspended by this server's moderation"):
                await http.fetch_activitypub(url, signer=None)
    assert carol.server.requests == []
    assert await count(pool, "SELECT count(*) FROM follows") == 0
    fed_api.app[MODERATION_KEY()].invalidate()
    body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "id": carol.new_id("a"),
                       "type": "Follow", "actor": carol.uri, "object": alice.uri}).encode()
    response = await fed_api.post("/inbox", data=body,
                                  headers=signed_post(carol.keys, "/inbox", f"127.0.0.1:{fed_api.port}", body))
    assert response.status == 403 and "suspended" in (await response.json())["error"]
    await act_on_account(pool, carol_actor, "unsuspend", "admin", "", fed_settings.instance.domain)
    assert len(await get_json(fed_api, "/api/v1/timelines/public", headers)) == 1


async def test_a_suspended_local_account_cannot_use_its_token_or_log_in(client, pool, settings, oauth_app, alice):
    token = _auth(await mint_token(pool, oauth_app, alice.id))
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=token)).status == 200
    await act_on_account(pool, alice, "suspend", "admin", "abuse", settings.instance.domain)
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=token)).status == 401
    await act_on_account(pool, alice, "unsuspend", "admin", "", settings.instance.domain)
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=token)).status == 200


async def test_domain_blocks_are_not_published_when_switched_off(make_client, settings, pool):
    quiet = settings.model_copy(update={"instance": settings.instance.model_copy(
        update={"publish_domain_blocks": False})})
    await act_on_domain(pool, "spam.example", "silence", "admin", "", settings.instance.domain)
    client = await make_client(quiet)
    response = await client.get("/api/v1/instance/domain_blocks")
    assert response.status == 404


async def test_the_directory_lists_discoverable_accounts_and_leaves_out_the_moderated(client, pool, settings, alice,
                                                                                     bob):
    from fedserver.accounts import create_account, validate_new_account

    hidden = await create_account(pool, settings, validate_new_account(username="hidden"))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actors SET discoverable = false WHERE id = $1", hidden.id)
    await act_on_account(pool, bob, "silence", "admin", "", settings.instance.domain)
    body = await get_json(client, "/api/v1/directory", order="new", local="true")
    assert [a["username"] for a in body] == ["alice"]
    await act_on_account(pool, bob, "unsuspend", "admin", "", settings.instance.domain)
    assert [a["username"] for a in await get_json(client, "/api/v1/directory", order="new")] == ["bob", "alice"]
    assert [a["username"] for a in await get_json(client, "/api/v1/directory", order="new", limit="1",
                                                  offset="1")] == ["alice"]
    for bad in ({"order": "best"}, {"limit": "x"}, {"offset": "-1"}):
        await get_json(client, "/api/v1/directory", expect=400, **bad)
