"""WebFinger, host-meta, NodeInfo and actor documents over real HTTP on a real database."""

from __future__ import annotations

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedserver.accounts import create_account, delete_account, ensure_instance_actor, validate_new_account
from tests.conftest import TEST_DOMAIN
from tests.support.nodeinfo_schema import nodeinfo_schema

AP = {"Accept": "application/activity+json"}
# Every actor field that the federation reference lists for Mastodon interop.
ACTOR_FIELDS = {
    "@context", "id", "type", "preferredUsername", "name", "summary", "url", "published", "inbox", "outbox",
    "followers", "following", "featured", "featuredTags", "endpoints", "manuallyApprovesFollowers",
    "discoverable", "indexable", "publicKey",
}


@pytest.fixture
async def alice(pool, settings):
    await ensure_instance_actor(pool, settings)
    return await create_account(pool, settings, validate_new_account(username="alice", display_name="앨리스 공방"))


async def test_webfinger_self_link_leads_to_an_actor_mastodon_accepts(client, alice):
    response = await client.get("/.well-known/webfinger", params={"resource": f"acct:alice@{TEST_DOMAIN}"})
    assert response.status == 200
    assert response.content_type == "application/jrd+json"
    jrd = await response.json()
    assert jrd["subject"] == f"acct:alice@{TEST_DOMAIN}"
    self_link = next(link for link in jrd["links"] if link["rel"] == "self")
    assert self_link["type"] == "application/activity+json"
    actor_url = self_link["href"]
    assert actor_url == f"https://{TEST_DOMAIN}/users/alice"

    # The test server answers on loopback; ask for the path of the actor's id.
    response = await client.get("/users/alice", headers=AP)
    assert response.status == 200
    assert response.content_type == "application/activity+json"
    actor = await response.json()
    missing = ACTOR_FIELDS - set(actor)
    assert not missing, f"actor lacks {missing}"
    assert actor["id"] == actor_url
    assert actor["type"] == "Person"
    assert actor["preferredUsername"] == "alice"
    assert actor["name"] == "앨리스 공방"
    assert actor["inbox"] == f"{actor_url}/inbox"
    assert actor["endpoints"]["sharedInbox"] == f"https://{TEST_DOMAIN}/inbox"
    assert actor["publicKey"]["id"] == f"{actor_url}#main-key"
    assert actor["publicKey"]["owner"] == actor_url
    key = load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    # Round trip Mastodon performs: preferredUsername@host must find the same actor.
    back = await (await client.get("/.well-known/webfinger",
                                   params={"resource": f"acct:{actor['preferredUsername']}@{TEST_DOMAIN}"})).json()
    assert next(link["href"] for link in back["links"] if link["rel"] == "self") == actor["id"]


async def test_webfinger_accepts_the_actor_url_and_is_case_insensitive(client, alice):
    for resource in (f"https://{TEST_DOMAIN}/users/alice", f"https://{TEST_DOMAIN}/@alice",
                     f"acct:ALICE@{TEST_DOMAIN}", f"alice@{TEST_DOMAIN}"):
        response = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status == 200, resource
        assert (await response.json())["aliases"][0] == f"https://{TEST_DOMAIN}/users/alice"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"resource": "acct:nobody"}, 400),
        ({"resource": "acct:@"}, 400),
        ({"resource": f"acct:nobody@{TEST_DOMAIN}"}, 404),
        ({"resource": "acct:alice@elsewhere.example"}, 404),
        ({"resource": "https://elsewhere.example/users/alice"}, 404),
        ({"resource": f"https://{TEST_DOMAIN}/objects/1"}, 404),
    ],
)
async def test_webfinger_errors_as_mastodon_answers_them(client, alice, params, status):
    response = await client.get("/.well-known/webfinger", params=params)
    assert response.status == status
    assert "error" in await response.json()


async def test_deleted_account_is_gone(client, alice, pool, publisher):
    await delete_account(pool, publisher, "alice")
    response = await client.get("/.well-known/webfinger", params={"resource": f"acct:alice@{TEST_DOMAIN}"})
    assert response.status == 410
    response = await client.get("/users/alice", headers=AP)
    assert response.status == 410
    assert (await response.json())["type"] == "Tombstone"
    response = await client.get("/users/alice", headers={"Accept": "text/html"})
    assert response.status == 410


async def test_instance_actor_is_an_application_found_by_webfinger(client, alice):
    response = await client.get("/.well-known/webfinger", params={"resource": "acct:shop.test@shop.test"})
    assert response.status == 200
    href = next(link["href"] for link in (await response.json())["links"] if link["rel"] == "self")
    assert href == f"https://{TEST_DOMAIN}/actor"
    actor = await (await client.get("/actor", headers=AP)).json()
    assert actor["id"] == href and actor["type"] == "Application"
    assert actor["publicKey"]["owner"] == href


async def test_actor_is_served_as_json_ld_with_the_profile_when_asked(client, alice):
    response = await client.get("/users/alice", headers={
        "Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith(
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
    assert response.headers["Vary"] == "Accept"


async def test_browsers_get_the_html_profile_at_the_same_url(client, alice):
    for path in ("/users/alice", "/@alice"):
        response = await client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                                                   "Accept-Language": "en-US,en;q=0.9"})
        assert response.status == 200
        assert response.content_type == "text/html"
        body = await response.text()
        assert "앨리스 공방" in body and f"@alice@{TEST_DOMAIN}" in body and "Followers" in body
    korean = await (await client.get("/@alice", headers={"Accept": "text/html"})).text()
    assert "팔로워" in korean
    response = await client.get("/@alice", headers=AP, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == f"https://{TEST_DOMAIN}/users/alice"
    missing = await client.get("/@nobody", headers={"Accept": "text/html"})
    assert missing.status == 404 and missing.content_type == "text/html"


async def test_collections_are_paged_ordered_collections_with_totals(client, alice, pool, settings):
    bob = await create_account(pool, settings, validate_new_account(username="bob"))
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO follows (follower_id, followee_id, state) VALUES ($1, $2, 'accepted')", bob.id, alice.id
        )
    for kind, total in (("followers", 1), ("following", 0), ("outbox", 0)):
        response = await client.get(f"/users/alice/{kind}", headers=AP)
        assert response.status == 200
        collection = await response.json()
        assert collection["type"] == "OrderedCollection"
        assert collection["id"] == f"https://{TEST_DOMAIN}/users/alice/{kind}"
        assert collection["totalItems"] == total
    page = await (await client.get("/users/alice/followers?page=1", headers=AP)).json()
    assert page["type"] == "OrderedCollectionPage"
    assert page["orderedItems"] == [bob.uri]
    assert page["partOf"] == f"https://{TEST_DOMAIN}/users/alice/followers"
    assert "next" not in page
    bad = await client.get("/users/alice/followers?page=-1", headers=AP)
    assert bad.status == 400
    featured = await (await client.get("/users/alice/collections/featured", headers=AP)).json()
    assert featured["type"] == "OrderedCollection" and featured["totalItems"] == 0
    unknown = await client.get("/users/nobody/followers", headers=AP)
    assert unknown.status == 404 and "error" in await unknown.json()


async def test_nodeinfo_documents_validate_against_the_published_schemas(client, alice):
    index = await (await client.get("/.well-known/nodeinfo")).json()
    rels = {link["rel"]: link["href"] for link in index["links"]}
    for version in ("2.0", "2.1"):
        href = rels[f"http://nodeinfo.diaspora.software/ns/schema/{version}"]
        assert href == f"https://{TEST_DOMAIN}/nodeinfo/{version}"
        response = await client.get(f"/nodeinfo/{version}")
        assert response.status == 200
        document = await response.json(content_type=None)
        jsonschema.Draft4Validator(nodeinfo_schema(version)).validate(document)
        assert document["usage"]["users"]["total"] == 1
        assert document["openRegistrations"] is False
    assert (await client.get("/nodeinfo/1.0")).status == 404


def test_the_nodeinfo_schema_check_rejects_a_wrong_document():
    """The schema check above can fail: a document shaped like the pre-2.0 draft does."""
    bad = {"version": "2.0", "software": {"name": "Fed Server", "version": "1"}, "protocols": {"inbound": []},
           "services": {"inbound": [], "outbound": []}, "openRegistrations": False, "usage": {"users": {}},
           "metadata": {}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(nodeinfo_schema("2.0")).validate(bad)


async def test_host_meta_points_to_webfinger(client):
    response = await client.get("/.well-known/host-meta")
    assert response.status == 200
    assert response.content_type == "application/xrd+xml"
    body = await response.text()
    assert f'template="https://{TEST_DOMAIN}/.well-known/webfinger?resource={{uri}}"' in body


async def test_healthz_checks_the_database(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok", "database": "ok"}


async def test_unknown_paths_and_methods_get_json_errors(client):
    response = await client.get("/no/such/path")
    assert response.status == 404 and "error" in await response.json()
    response = await client.post("/.well-known/webfinger")
    assert response.status == 405 and "error" in await response.json()
