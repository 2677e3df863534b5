"""The outbound HTTP client against real loopback servers: security checklist #8, #9, #29-#31, #34, #35.

Clients with allow_private=True reach the loopback servers directly; production-mode clients
(allow_private=False) reach them only through a test resolver that maps public-looking names
(public.example) to a TLS server signed by a throwaway CA, so the refusals below are made by
the production rules and not by a missing route.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from fedserver.config import FederationSettings, InstanceSettings, Settings
from fedserver.net.http import (
    ACTIVITY_JSON,
    DeliveryResult,
    FetchBudget,
    FetchError,
    HttpClient,
    Signer,
)
from fedserver.net.ssrf import ForbiddenAddressError, GuardedResolver, check_url
from fedserver.signatures import (
    generate_rsa_keypair,
    parse_request_signature,
    verify_parsed,
)
from tests.support.http_peers import (
    ConnectionCounter,
    FakeResolver,
    RoutingResolver,
    document,
    host_of,
    make_tls,
    redirect,
    serve,
    serves_document,
    streaming_handler,
)

MiB = 1024 * 1024
LD_JSON_AS = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BASE_URL = "https://shop.test"


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_rsa_keypair(2048)


@pytest.fixture(scope="module")
def tls():
    return make_tls(["public.example", "rebind.example"])


def local_client(**options) -> HttpClient:
    """A client for local clusters and tests: loopback, http and any port allowed."""
    return HttpClient(base_url=BASE_URL, allow_private=True, **options)


def production_client(resolver=None, tls=None, **options) -> HttpClient:
    """A production-mode client; `resolver` stands in for DNS."""
    return HttpClient(base_url=BASE_URL, allow_private=False, resolver=resolver,
                      ssl_context=tls.client if tls else None, **options)


# --- #8: content types --------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/json", "text/html; charset=utf-8", "image/png",
                                          "application/ld+json", "application/ld+json; profile=\"https://x.example\""])
async def test_fetch_refuses_documents_not_served_as_activitypub(content_type):
    async def handler(request):
        return document(request, content_type=content_type)
    async with serve({"/doc": handler}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="not ActivityPub JSON") as caught:
            await client.fetch_activitypub(peer.url("/doc"), signer=None)
    assert caught.value.permanent


@pytest.mark.parametrize("content_type", [ACTIVITY_JSON, "application/activity+json; charset=utf-8", LD_JSON_AS])
async def test_fetch_accepts_activitypub_content_types(content_type):
    async def handler(request):
        return document(request, content_type=content_type)
    async with serve({"/doc": handler}) as peer, local_client() as client:
        doc = await client.fetch_activitypub(peer.url("/doc"), signer=None)
    assert doc["id"] == peer.url("/doc")


# --- #9: id must be the final URL; no redirect to another host --------------------------------

async def test_fetch_refuses_document_whose_id_is_not_its_url():
    async def handler(request):
        return document(request, id=str(request.url.with_path("/someone-else")))
    async with serve({"/actor": handler}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="is not its URL") as caught:
            await client.fetch_activitypub(peer.url("/actor"), signer=None)
    assert caught.value.permanent


async def test_fetch_after_redirect_requires_id_of_final_url():
    async def claims_old(request):
        return document(request, id=str(request.url.with_path("/old")))
    async with serve({"/old": redirect("/new"), "/new": claims_old, "/moved": redirect("/doc"),
                      "/doc": serves_document}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="is not its URL"):
            await client.fetch_activitypub(peer.url("/old"), signer=None)
        doc = await client.fetch_activitypub(peer.url("/moved"), signer=None)
    assert doc["id"] == peer.url("/doc")


async def test_fetch_refuses_redirect_to_another_host():
    async def to_localhost(request):  # the same server and port under another host name
        raise web.HTTPFound(f"http://localhost:{request.url.port}/doc")
    async with serve({"/start": to_localhost, "/doc": serves_document}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="another origin") as caught:
            await client.fetch_activitypub(peer.url("/start"), signer=None)
    assert caught.value.permanent and peer.hits["/doc"] == 0


# --- #29: collections ------------------------------------------------------------------------------

def collection_routes(items_per_page: int, next_of) -> dict:
    async def collection(request):
        return document(request, type="OrderedCollection", first=str(request.url.with_path("/page/0")))

    async def page(request):
        number = int(request.match_info["n"])
        items = [f"{request.url}#item{i}" for i in range(items_per_page)]
        return document(request, type="OrderedCollectionPage", orderedItems=items,
                        next=str(request.url.with_path(f"/page/{next_of(number)}")))
    return {"/coll": collection, "/page/{n}": page}


async def test_collection_whose_next_loops_is_read_once():
    async with serve(collection_routes(2, lambda n: (n + 1) % 3)) as peer, local_client() as client:
        items = [item async for item in client.iterate_collection(
            peer.url("/coll"), signer=None, budget=FetchBudget(50))]
    assert len(items) == 6 and len(set(items)) == 6
    assert [peer.hits[f"/page/{n}"] for n in range(3)] == [1, 1, 1]


async def test_endless_collection_stops_at_page_and_item_caps():
    async with serve(collection_routes(3, lambda n: n + 1)) as peer, local_client() as client:
        by_pages = [item async for item in client.iterate_collection(
            peer.url("/coll"), signer=None, budget=FetchBudget(50), max_pages=10)]
        assert len(by_pages) == 30 and peer.hits["/page/10"] == 0
        before = sum(peer.hits.values())
        by_items = [item async for item in client.iterate_collection(
            peer.url("/coll"), signer=None, budget=FetchBudget(50), max_items=7)]
    assert len(by_items) == 7
    assert sum(peer.hits.values()) - before == 4  # the collection and pages 0-2, no more


async def test_collection_pages_on_another_origin_are_not_followed():
    async def collection(request):  # the first page is embedded, as Mastodon does for replies
        first = {"type": "CollectionPage", "items": ["a"], "next": f"http://localhost:{request.url.port}/page"}
        return document(request, type="Collection", first=first)
    async with serve({"/coll": collection, "/page": serves_document}) as peer, local_client() as client:
        items = [item async for item in client.iterate_collection(peer.url("/coll"), signer=None, budget=None)]
    assert items == ["a"] and peer.hits["/page"] == 0


async def test_fetch_budget_stops_fetching_when_exhausted():
    async with serve(collection_routes(1, lambda n: n + 1)) as peer, local_client() as client:
        with pytest.raises(FetchError, match="fetch budget exhausted"):
            async for _item in client.iterate_collection(peer.url("/coll"), signer=None, budget=FetchBudget(3)):
                pass
    assert sum(peer.hits.values()) == 3


# --- #30: size limits ----------------------------------------------------------------------------

@pytest.mark.parametrize(("declared", "reason"), [(50 * 1000 * 1000, "declares 50000000 bytes"),
                                                  (None, "more than the 1048576-byte limit")],
                         ids=["declared-50MB", "endless-chunked"])
async def test_oversized_response_is_aborted_at_1_mib(declared, reason):
    state = {"written": 0, "done": asyncio.Event()}
    async with serve({"/big": streaming_handler(state, declared=declared)}) as peer, local_client() as client:
        started = time.monotonic()
        with pytest.raises(FetchError, match=reason) as caught:
            await client.fetch_activitypub(peer.url("/big"), signer=None)
        elapsed = time.monotonic() - started
        await asyncio.wait_for(state["done"].wait(), 5)  # the server saw the connection drop
    assert caught.value.permanent
    assert elapsed < 3
    assert state["written"] < 32 * MiB  # the peer stopped long before its 200 MiB


async def test_body_of_exactly_1_mib_is_accepted_and_one_byte_more_refused():
    async def padded(request):
        head = json.dumps({"id": str(request.url), "type": "Note", "content": ""}).encode()
        body = head[:-2] + b"x" * (int(request.match_info["size"]) - len(head)) + head[-2:]
        response = web.Response(body=body, headers={"Content-Type": ACTIVITY_JSON})
        response.enable_chunked_encoding()  # no Content-Length: the stream check decides
        return response
    async with serve({"/size/{size}": padded}) as peer, local_client() as client:
        doc = await client.fetch_activitypub(peer.url(f"/size/{MiB}"), signer=None)
        assert len(doc["content"]) > MiB - 100
        with pytest.raises(FetchError, match="more than the"):
            await client.fetch_activitypub(peer.url(f"/size/{MiB + 1}"), signer=None)


# --- #31: redirect loops and chains ------------------------------------------------------------

async def test_redirect_loop_is_aborted():
    async with serve({"/self": redirect("/self"), "/a": redirect("/b"), "/b": redirect("/a")}) as peer, \
            local_client() as client:
        for path in ("/self", "/a"):
            with pytest.raises(FetchError, match="redirect loop") as caught:
                await client.fetch_activitypub(peer.url(path), signer=None)
            assert caught.value.permanent
    assert peer.hits["/self"] == 1 and peer.hits["/a"] == 1


async def test_chain_of_four_redirects_is_aborted_and_three_are_followed():
    routes = {f"/r{n}": redirect(f"/r{n + 1}") for n in range(4)}
    async with serve({**routes, "/r4": serves_document}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="more than 3 redirects"):
            await client.fetch_activitypub(peer.url("/r0"), signer=None)
        assert peer.hits["/r4"] == 0
        doc = await client.fetch_activitypub(peer.url("/r1"), signer=None)
    assert doc["id"] == peer.url("/r4")


# --- #34: special-use addresses, at check time and at connect time ---------------------------

SPECIAL_USE = [
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "127.0.0.1", "169.254.169.254", "172.16.5.4",
    "192.0.0.9", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.51.100.7",
    "203.0.113.9", "224.0.0.251", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1", "100::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:2::1", "2001:db8::1", "2002:7f00:1::", "fc00::1",
    "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1",
]
PUBLIC = ["1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:1.1.1.1"]


def literal_url(ip: str) -> str:
    return f"https://[{ip}]/actor" if ":" in ip else f"https://{ip}/actor"


@pytest.mark.parametrize("ip", SPECIAL_USE)
async def test_special_use_address_is_refused_by_check_url_and_resolver(ip):
    with pytest.raises(FetchError, match="private or special-use"):
        check_url(literal_url(ip), allow_private=False)
    guard = GuardedResolver(FakeResolver.fixed("host.example", ip, 443))
    with pytest.raises(ForbiddenAddressError):
        await guard.resolve("host.example", 443)


@pytest.mark.parametrize("ip", PUBLIC)
async def test_public_address_passes_check_url_and_resolver(ip):
    assert check_url(literal_url(ip), allow_private=False).scheme == "https"
    guard = GuardedResolver(FakeResolver.fixed("host.example", ip, 443))
    assert [r["host"] for r in await guard.resolve("host.example", 443)] == [ip]


async def test_resolver_drops_private_answers_among_public_ones():
    guard = GuardedResolver(FakeResolver({"mixed.example": [[("10.0.0.1", 443), ("1.1.1.1", 443), ("::1", 443)]]}))
    assert [r["host"] for r in await guard.resolve("mixed.example", 443)] == ["1.1.1.1"]


async def test_dns_rebinding_is_blocked_at_connect_time(tls):
    async with ConnectionCounter() as counter:
        dns = FakeResolver({"rebind.example": [[("93.184.215.14", 443)], [("127.0.0.1", counter.port)]]})
        guard = GuardedResolver(dns)
        assert [r["host"] for r in await guard.resolve("rebind.example", 443)] == ["93.184.215.14"]  # a check passes
        async with production_client(resolver=guard, tls=tls) as client:  # ...then the name is re-pointed
            with pytest.raises(FetchError, match="private or special-use") as caught:
                await client.fetch_activitypub("https://rebind.example/actor", signer=None)
    assert caught.value.permanent
    assert dns.calls == ["rebind.example", "rebind.example"]
    assert counter.count == 0


async def test_production_client_reaches_a_public_name_over_https(tls):
    # The positive control for the tests below: the TLS route to public.example works.
    async with serve({"/actor": serves_document}, ssl_context=tls.server) as peer:
        async with production_client(FakeResolver.fixed("public.example", "127.0.0.1", peer.port), tls) as client:
            doc = await client.fetch_activitypub("https://public.example/actor", signer=None)
    assert doc["id"] == "https://public.example/actor"


GETS = {"fetch_activitypub": lambda client, url: client.fetch_activitypub(url, signer=None),
        "get_jrd": lambda client, url: client.get_jrd(url)}


@pytest.mark.parametrize("get", GETS.values(), ids=GETS.keys())
@pytest.mark.parametrize("target", ["https://127.0.0.1:{port}/x", "https://[::ffff:127.0.0.1]:{port}/x"])
async def test_redirect_to_private_address_is_refused_on_every_hop(tls, get, target):
    # The hop target is an IP literal, which aiohttp never resolves: only the per-hop check_url
    # stands between the redirect and the counting server. get_jrd allows cross-host redirects,
    # so its refusal can only come from the address rule.
    async with ConnectionCounter() as counter, serve({"/start": redirect(target.format(port=counter.port))},
                                                    ssl_context=tls.server) as peer:
        async with production_client(FakeResolver.fixed("public.example", "127.0.0.1", peer.port), tls) as client:
            with pytest.raises(FetchError, match="private or special-use"):
                await get(client, "https://public.example/start")
    assert peer.hits["/start"] == 1 and counter.count == 0


async def test_redirect_to_name_rebound_to_private_address_is_refused(tls):
    async with ConnectionCounter() as counter, serve({"/start": redirect("https://rebind.example/x")},
                                                    ssl_context=tls.server) as peer:
        dns = RoutingResolver(
            {"public.example": FakeResolver.fixed("public.example", "127.0.0.1", peer.port)},
            default=GuardedResolver(FakeResolver.fixed("rebind.example", "127.0.0.1", counter.port)))
        async with production_client(dns, tls) as client:
            with pytest.raises(FetchError, match="private or special-use"):
                await client.get_jrd("https://public.example/start")
    assert peer.hits["/start"] == 1 and counter.count == 0


async def test_redirect_downgrading_to_http_is_refused(tls):
    async with serve({"/a": redirect("http://public.example/b"), "/b": serves_document},
                     ssl_context=tls.server) as peer:
        async with production_client(FakeResolver.fixed("public.example", "127.0.0.1", peer.port), tls) as client:
            with pytest.raises(FetchError, match="scheme http is not allowed"):
                await client.fetch_activitypub("https://public.example/a", signer=None)
    assert peer.hits["/b"] == 0


# --- #35: schemes, ports, user info, odd hosts -------------------------------------------------

REFUSED_URLS = [
    "data:application/activity+json,{}", "file:///etc/passwd", "gopher://example.com/_x", "ftp://example.com/x",
    "http://example.com/actor", "https://example.com:8443/actor", "https://user:pw@example.com/actor",
    "https://@example.com/actor", "https://localhost/actor", "https://2130706433/actor", "https://127.1/actor",
    "https:///actor", "https://exa mple.com/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_dangerous_url_is_refused_before_any_connection(url, keypair):
    dns = FakeResolver({})
    signer = Signer("https://shop.test/actor#main-key", keypair[0])
    async with production_client(dns) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch_activitypub(url, signer=signer)
        assert caught.value.permanent
        with pytest.raises(FetchError):
            await client.get_jrd(url)
        result = await client.post_activity(url, b"{}", signer=signer)
    assert result.status is None and result.permanent
    assert dns.calls == []


async def test_loopback_url_in_production_mode_makes_no_connection():
    async with ConnectionCounter() as counter, production_client() as client:
        for url in (f"http://127.0.0.1:{counter.port}/", f"https://127.0.0.1:{counter.port}/"):
            with pytest.raises(FetchError):
                await client.fetch_activitypub(url, signer=None)
    assert counter.count == 0


# --- signing, statuses, delivery, WebFinger ---------------------------------------------------

def test_client_takes_base_url_and_private_switch_from_settings():
    settings = Settings(instance=InstanceSettings(domain="shop.test"),
                        federation=FederationSettings(allow_private_addresses=True))
    client = HttpClient(settings)
    assert client.allow_private and client.user_agent.endswith("(+https://shop.test)")
    assert not HttpClient(Settings()).allow_private


async def test_signed_fetch_carries_verifiable_draft_cavage_signature(keypair):
    seen = {}

    async def handler(request):
        parsed = parse_request_signature("GET", request.raw_path, request.headers, b"")
        verify_parsed(parsed, keypair[1])
        seen.update(covered=parsed.covered, key_id=parsed.key_id, agent=request.headers["User-Agent"],
                    accept=request.headers["Accept"])
        return document(request)
    async with serve({"/actor": handler}) as peer, local_client() as client:
        await client.fetch_activitypub(peer.url("/actor?page=1"), signer=Signer("https://shop.test/i#k", keypair[0]))
    assert seen["covered"] == ("(request-target)", "host", "date", "accept")
    assert seen["key_id"] == "https://shop.test/i#k"
    assert seen["agent"].startswith("fedserver/") and seen["agent"].endswith("(+https://shop.test)")
    assert seen["accept"].startswith("application/activity+json")


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (410, True), (403, True), (401, False),
                                                   (429, False), (500, False), (503, False)])
async def test_fetch_error_statuses_are_permanent_or_temporary(status, permanent):
    async def handler(request):
        return web.Response(status=status)
    async with serve({"/x": handler}) as peer, local_client() as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch_activitypub(peer.url("/x"), signer=None)
    assert (caught.value.status, caught.value.permanent) == (status, permanent)


async def test_post_activity_is_signed_and_reports_status_and_short_body(keypair):
    seen = {}

    async def inbox(request):
        body = await request.read()
        parsed = parse_request_signature("POST", request.raw_path, request.headers, body)
        verify_parsed(parsed, keypair[1])
        seen.update(covered=parsed.covered, body=body, content_type=request.headers["Content-Type"])
        return web.Response(status=202, body=b"y" * 10_000)
    async with serve({"/inbox": inbox}) as peer, local_client() as client:
        result = await client.post_activity(peer.url("/inbox"), b'{"type":"Like"}', signer=Signer("k", keypair[0]))
    assert result.ok and result.status == 202 and len(result.body) == 4096
    assert seen["covered"] == ("(request-target)", "host", "date", "digest", "content-type")
    assert seen["body"] == b'{"type":"Like"}' and seen["content_type"] == ACTIVITY_JSON


async def test_post_activity_returns_retry_after_and_does_not_follow_redirects(keypair):
    async def busy(request):
        return web.Response(status=503, headers={"Retry-After": "120"})
    async with serve({"/busy": busy, "/moved": redirect("/busy")}) as peer, local_client() as client:
        signer = Signer("k", keypair[0])
        busy_result = await client.post_activity(peer.url("/busy"), b"{}", signer=signer)
        moved_result = await client.post_activity(peer.url("/moved"), b"{}", signer=signer)
    assert (busy_result.status, busy_result.retry_after) == (503, "120")
    assert moved_result.status == 302 and peer.hits["/busy"] == 1


async def test_network_errors_and_timeouts_are_temporary(keypair):
    async def slow(request):
        await asyncio.sleep(3)
        return document(request)
    async with ConnectionCounter() as closed:
        pass  # its port is now closed
    async with serve({"/slow": slow}) as peer, local_client(total_timeout=0.5) as client:
        signer = Signer("k", keypair[0])
        refused = await client.post_activity(f"http://127.0.0.1:{closed.port}/inbox", b"{}", signer=signer)
        timed_out = await client.post_activity(peer.url("/slow"), b"{}", signer=signer)
        with pytest.raises(FetchError, match="timed out") as caught:
            await client.fetch_activitypub(peer.url("/slow"), signer=None)
    assert refused == DeliveryResult(status=None, error=refused.error) and refused.error
    assert timed_out.status is None and "timed out" in (timed_out.error or "") and not timed_out.permanent
    assert not caught.value.permanent


async def test_resolve_handle_follows_webfinger_self_link():
    seen = {}

    async def webfinger(request):
        seen.update(resource=request.query["resource"], accept=request.headers["Accept"])
        links = [{"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": "http://x/@a"},
                 {"rel": "self", "type": ACTIVITY_JSON, "href": str(request.url.with_path("/users/alice"))}]
        return web.json_response({"subject": request.query["resource"], "links": links},
                                 content_type="application/jrd+json")
    async with serve({"/.well-known/webfinger": webfinger}) as peer, local_client() as client:
        host = host_of(peer.url("/"))
        assert await client.resolve_handle(f"@alice@{host}", scheme="http") == peer.url("/users/alice")
        assert await client.resolve_handle(f"alice@{host}", scheme="http") == peer.url("/users/alice")
    assert seen == {"resource": f"acct:alice@{host}", "accept": "application/jrd+json, application/json"}


async def test_resolve_handle_without_activitypub_link_or_in_production_over_http_fails():
    async def webfinger(request):
        return web.json_response({"subject": "acct:a@b", "links": [{"rel": "self", "type": "text/html", "href": "x"}]})
    async with serve({"/.well-known/webfinger": webfinger}) as peer, local_client() as client:
        with pytest.raises(FetchError, match="no ActivityPub self link"):
            await client.resolve_handle(f"@alice@{host_of(peer.url('/'))}", scheme="http")
    dns = FakeResolver({})
    async with production_client(dns) as client:
        for handle in ("@alice@social.example", "@alice", "alice@", "@a@b@c", "a/b@host"):
            with pytest.raises(FetchError):
                await client.resolve_handle(handle, scheme="http")
    assert dns.calls == []
