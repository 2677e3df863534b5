"""`/metrics` on a real socket and the real test database, read back with Prometheus' own text parser.

Requests are counted by route pattern; the queue depths, the failing domain and the rewards log's
lag come from rows made the real way (a signed inbox POST, posts delivered by the delivery worker
to a loopback receiver that answers 503, entries appended to the log); the token rules are checked
from loopback and from this machine's own non-loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from fedserver.accounts import create_account, validate_new_account
from fedserver.app import create_app
from fedserver.config import MetricsSettings, Settings, load_settings
from fedserver.federation import commands
from fedserver.federation.delivery import DeliveryWorker
from fedserver.net.http import HttpClient
from rewards.logstore import append_entries
from tests.support.receivers import Receiver, add_remote_followers, start_receivers, wait_for
from tests.support.remote import RemoteServer, signed_post

AS = "https://www.w3.org/ns/activitystreams"
TOKEN = "0f3c9a7e5b1d4c2a8e6f0b9d7c5a3e1f"

Samples = dict[tuple[str, frozenset], float]


def with_metrics(settings: Settings, **values) -> Settings:
    return settings.model_copy(update={"metrics": MetricsSettings(**values)})


@contextlib.asynccontextmanager
async def serve(settings: Settings, pool, host: str = "127.0.0.1") -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, pool), host=host)) as client:
        yield client


async def scrape(client: TestClient, **headers: str) -> tuple[set[str], Samples]:
    """Family names and every sample of one scrape, as Prometheus' parser reads them."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(await response.text()))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, method: str = "GET", status: str = "2xx") -> float:
    return value(samples, "fedserver_http_requests_total", route=route, method=method, status=status)


@pytest.fixture
async def alice(pool, settings):
    return await create_account(pool, settings, validate_new_account(username="alice"))


@pytest.fixture
async def remote():
    server = await RemoteServer().start()
    server.add_actor("bob")
    yield server
    await server.close()


@pytest.fixture
async def receivers(alice) -> AsyncIterator[tuple[Receiver, Receiver]]:
    keys = {alice.key_id: alice.public_key_pem}
    (down,) = await start_receivers(1, keys, script=lambda path, n: (503, {}))
    (up,) = await start_receivers(1, keys)
    yield down, up
    await down.close()
    await up.close()


async def _deliver_once(pool, settings: Settings, down: Receiver, up: Receiver) -> None:
    """Run the delivery worker until `up` has its deliveries and `down` has failed once (its retry is minutes away)."""
    async def settled() -> bool:
        failing = await pool.fetchval("SELECT failing_since IS NOT NULL FROM delivery_domains WHERE domain = $1",
                                      down.domain)
        delivered = await pool.fetchval("SELECT count(*) FROM deliveries WHERE domain = $1 AND state = 'delivered'",
                                        up.domain)
        return bool(failing) and delivered == 2

    async with HttpClient(settings, allow_private=True) as http:
        stop = asyncio.Event()
        task = asyncio.create_task(DeliveryWorker(pool, settings, http).run(stop))
        try:
            await wait_for(settled, 15, "one failed delivery to the 503 receiver and two delivered")
        finally:
            stop.set()
            await task


async def test_metrics_count_requests_by_route_and_show_queues_failing_domains_and_log_lag(
        pool, fed_settings, publisher, alice, remote, receivers):
    down, up = receivers
    async with pool.acquire() as conn:
        await add_remote_followers(conn, alice.id, down, 2)  # one shared inbox: one delivery per post
        await add_remote_followers(conn, alice.id, up, 1, prefix="u")
    await commands.create_post(pool, publisher, "alice", "first")
    await commands.create_post(pool, publisher, "alice", "second")
    await _deliver_once(pool, fed_settings, down, up)

    async with serve(with_metrics(fed_settings, enabled=True), pool) as client:
        _, before = await scrape(client)
        for _ in range(3):
            assert (await client.get("/users/alice", headers={"Accept": "application/activity+json"})).status == 200
        assert (await client.get("/no/such/page-x1")).status == 404
        assert (await client.get("/api/v1/instance")).status == 200  # a sub-application's route
        assert (await client.get("/api/v1/no-such-x2")).status == 404
        create = {"@context": AS, "id": f"{remote.actors['bob'].uri}/creates/1", "type": "Create",
                  "actor": remote.actors["bob"].uri, "to": [f"{AS}#Public"],
                  "object": {"id": f"{remote.actors['bob'].uri}/notes/1", "type": "Note", "content": "hi",
                             "attributedTo": remote.actors["bob"].uri, "to": [f"{AS}#Public"]}}
        body = json.dumps(create).encode()
        unsigned = await client.post("/users/alice/inbox", data=body,
                                     headers={"Content-Type": "application/activity+json"})
        assert unsigned.status == 401, await unsigned.text()
        response = await client.post("/inbox", data=body, headers=signed_post(
            remote.actors["bob"], "/inbox", f"127.0.0.1:{client.port}", body))
        assert response.status == 202, await response.text()
        async with pool.acquire() as conn, conn.transaction():
            await append_entries(conn, [b"leaf one", b"leaf two"])
        names, after = await scrape(client)

    # Requests: by route pattern, method and status class; exactly the ones made, the first scrape included.
    assert requests(after, "/users/{name}") - requests(before, "/users/{name}") == 3
    assert value(after, "fedserver_http_request_duration_seconds_count", route="/users/{name}", method="GET") == 3
    assert requests(after, "unmatched", status="4xx") == 2  # never the raw paths
    assert requests(after, "/api/v1/instance") == 1
    assert requests(after, "/users/{name}/inbox", "POST", "4xx") == 1
    assert requests(after, "/inbox", "POST") == 1
    assert requests(before, "/metrics") == 0 and requests(after, "/metrics") == 1
    routes = {dict(labels)["route"] for name, labels in after if name == "fedserver_http_requests_total"}
    assert routes == {"/metrics", "/users/{name}", "unmatched", "/api/v1/instance", "/users/{name}/inbox", "/inbox"}

    # Queues: the stored inbox item, and the two posts still waiting for the failing domain.
    assert value(after, "fedserver_queue_depth", queue="inbox") == 1
    assert value(after, "fedserver_queue_depth", queue="delivery") == 2
    assert value(after, "fedserver_queue_depth", queue="receipt_delivery") == 0
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE state = 'queued' AND domain = $1",
                               down.domain) == 2

    # Delivery failures by domain: the 503 receiver only.
    assert value(after, "fedserver_delivery_failing_domains") == 1
    assert value(after, "fedserver_delivery_paused_domains") == 0
    assert value(after, "fedserver_delivery_domain_queued", domain=down.domain) == 2
    assert 0 <= value(after, "fedserver_delivery_domain_failing_seconds", domain=down.domain) < 60
    assert {dict(labels)["domain"] for name, labels in after if name == "fedserver_delivery_domain_queued"} \
        == {down.domain}

    # The rewards log: two entries sequenced, none integrated or published, so both are witness lag.
    assert value(after, "fedserver_rewards_log_size", stage="sequenced") == 2
    assert value(after, "fedserver_rewards_log_size", stage="published") == 0
    assert value(after, "fedserver_rewards_witness_lag_entries") == 2
    assert 0 < value(after, "fedserver_rewards_witness_lag_seconds") < 60
    assert value(before, "fedserver_rewards_witness_lag_seconds") == 0

    # The pool (the test's: at most 5 connections) and the process.
    assert value(after, "fedserver_db_pool_max_size") == 5
    assert 0 <= value(after, "fedserver_db_pool_in_use") <= value(after, "fedserver_db_pool_size") <= 5
    assert value(after, "fedserver_metrics_database_up") == 1
    assert {"process_cpu_seconds", "python_info", "fedserver_http_request_duration_seconds"} <= names


async def test_metrics_speak_openmetrics_when_asked(pool, settings):
    async with serve(with_metrics(settings, enabled=True), pool) as client:
        response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        families = {f.name: f for f in openmetrics_families(await response.text())}
    assert families["fedserver_queue_depth"].type == "gauge"
    assert families["fedserver_http_requests"].type == "counter"


def test_metrics_keys_come_from_the_environment():
    settings = load_settings(environ={"FEDSERVER_METRICS__ENABLED": "true", "FEDSERVER_METRICS__TOKEN": TOKEN})
    assert (settings.metrics.enabled, settings.metrics.token) == (True, TOKEN)
    assert load_settings(environ={}).metrics == MetricsSettings(enabled=False, token="")


async def test_metrics_are_absent_unless_enabled(pool, settings):
    async with serve(settings, pool) as client:
        response = await client.get("/metrics")
        assert response.status == 404
        assert "error" in await response.json()
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 404


async def test_a_set_token_is_required_even_from_loopback(pool, settings):
    async with serve(with_metrics(settings, enabled=True, token=TOKEN), pool) as client:
        missing = await client.get("/metrics")
        assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in (await missing.json())["error"]
        for wrong in (f"Bearer {TOKEN[:-1]}x", f"Bearer {TOKEN}0", f"Basic {TOKEN}", TOKEN):
            response = await client.get("/metrics", headers={"Authorization": wrong})
            assert response.status == 401, wrong
            assert "error" in await response.json()
        _, samples = await scrape(client, Authorization=f"Bearer {TOKEN}")
    assert requests(samples, "/metrics", status="4xx") == 5


async def test_without_a_token_only_a_direct_loopback_peer_may_scrape(pool, settings):
    async with serve(with_metrics(settings, enabled=True), pool) as client:
        await scrape(client)
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            # A proxy on this machine connects from loopback: what it forwards is refused, whatever it claims.
            response = await client.get("/metrics", headers={header: "127.0.0.1"})
            assert response.status == 403, header
            assert "loopback" in (await response.json())["error"]


def _own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_without_a_token_a_peer_elsewhere_is_refused_and_with_it_admitted(pool, settings):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    for metrics, status in (({}, 403), ({"token": TOKEN}, 200)):
        async with serve(with_metrics(settings, enabled=True, **metrics), pool, host=address) as client, \
                aiohttp.ClientSession() as session, \
                session.get(f"http://{address}:{client.port}/metrics",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == status, await response.text()
            assert response.headers["Content-Type"].startswith("text/plain" if status == 200 else "application/json")
