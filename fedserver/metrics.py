"""`/metrics`: Prometheus metrics of this web process and of the instance's queues and rewards log.

Switched on by `[metrics] enabled` (off: no route, no middleware, `/metrics` answers 404).
`[metrics] token` set: a scraper sends `Authorization: Bearer TOKEN`. Empty: only a loopback
peer may scrape, and only directly: a request that came through a proxy (it carries
`Forwarded`, `X-Forwarded-For` or `X-Real-IP`) is refused, because a proxy on the same host
would otherwise make every visitor look like loopback.

Each application has its own `CollectorRegistry` (tests run several apps in one process).
Requests are counted and timed by a middleware, labelled by the matched route's pattern
(`/users/{name}/inbox`), never by the raw path. What the database knows (queue depths,
failing domains, the rewards log's progress) and the pool's use are read when scraped: the
database part is two bounded statements; if they fail, those families are left out and
`fedserver_metrics_database_up` is 0.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .app_keys import POOL, SETTINGS
from .config import Settings
from .errors import HTTPError
from .repo.metrics import QUEUES, Backlog, FailingDomain, get_backlog, get_failing_domains

log = logging.getLogger("fedserver.metrics")

UNMATCHED = "unmatched"  # the route label of requests no route matched (404, 405): one value, whatever the path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others are labelled "other"
FAILING_DOMAINS_SHOWN = 20  # per-domain series: the domains failing longest
SCRAPE_TIMEOUT = 5.0  # seconds for taking a connection and for each statement
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


class Metrics:
    """One application's registry: requests by route, method and status class, and the process's figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fedserver_http_requests", "HTTP requests answered, by route pattern, method and status class.",
            ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "fedserver_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern and method.",
            ["route", "method"], registry=self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        """Count and time one answered request."""
        route, method = route_label(request), request.method if request.method in METHODS else "other"
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.latency.labels(route, method).observe(seconds)


METRICS = web.AppKey("metrics", Metrics)


def route_label(request: web.Request) -> str:
    """The matched route's pattern (`/users/{name}/inbox`), or `unmatched`."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Count and time every request; outermost, so it sees the status the error middleware chose."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects pass through the error middleware as exceptions
        request.config_dict[METRICS].observe(request, exc.status, time.perf_counter() - started)
        raise
    except Exception:
        request.config_dict[METRICS].observe(request, 500, time.perf_counter() - started)
        raise
    request.config_dict[METRICS].observe(request, response.status, time.perf_counter() - started)
    return response


def setup_metrics(app: web.Application, settings: Settings) -> None:
    """With `[metrics] enabled`: a registry, the request middleware (put first) and the `/metrics` route."""
    if not settings.metrics.enabled:
        return
    app[METRICS] = Metrics()
    app.middlewares.insert(0, metrics_middleware)
    app.router.add_get("/metrics", metrics_get)


def _from_loopback(request: web.Request) -> bool:
    """The TCP peer is this machine and no proxy forwarded the request (X-Forwarded-For never grants access)."""
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback and not any(name in request.headers for name in _PROXY_HEADERS)


def check_scraper(request: web.Request, token: str) -> None:
    """Raise 401 without the right bearer token (when one is set), 403 from anywhere but loopback (when not)."""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPError(401, "metrics need the bearer token set in [metrics] token",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    elif not _from_loopback(request):
        raise HTTPError(403, "metrics are served only to loopback while [metrics] token is empty")


@dataclass(frozen=True)
class _Collectors:
    """Several collectors read as one registry, for one scrape."""

    parts: tuple

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: Iterable[tuple[str, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


@dataclass(frozen=True)
class PoolUse:
    """The database pool of this process, read just before the scrape takes a connection."""

    size: int
    in_use: int
    max_size: int

    @classmethod
    def of(cls, pool: asyncpg.Pool) -> PoolUse:
        return cls(pool.get_size(), pool.get_size() - pool.get_idle_size(), pool.get_max_size())

    def collect(self) -> Iterator[Metric]:
        yield _gauge("fedserver_db_pool_size", "Connections the database pool of this process holds open.", self.size)
        yield _gauge("fedserver_db_pool_in_use", "Connections of this process's pool in use (not idle).", self.in_use)
        yield _gauge("fedserver_db_pool_max_size", "Most connections the pool of this process may open.",
                     self.max_size)


@dataclass(frozen=True)
class DatabaseView:
    """What the database said at this scrape; `backlog` is None when it could not be read."""

    backlog: Backlog | None
    failing: list[FailingDomain]

    def collect(self) -> Iterator[Metric]:
        yield _gauge("fedserver_metrics_database_up", "1 if this scrape could read the database, 0 if not.",
                     1 if self.backlog else 0)
        if self.backlog is None:
            return
        b = self.backlog
        yield _labelled("fedserver_queue_depth", "Jobs still queued (due, running or waiting to retry), by queue.",
                        "queue", [(name, b.queued[name]) for name in QUEUES])
        yield _gauge("fedserver_delivery_failing_domains",
                     "Receiving domains whose latest delivery attempt failed.", b.failing_domains)
        yield _gauge("fedserver_delivery_paused_domains",
                     "Failing domains paused (failing longer than pause_failing_domain_after_days).", b.paused_domains)
        yield _labelled("fedserver_delivery_domain_failing_seconds",
                        f"How long each failing domain has failed (the {FAILING_DOMAINS_SHOWN} failing longest).",
                        "domain", [(d.domain, d.failing_seconds) for d in self.failing])
        yield _labelled("fedserver_delivery_domain_queued",
                        f"Deliveries queued to each failing domain (the {FAILING_DOMAINS_SHOWN} failing longest).",
                        "domain", [(d.domain, d.queued) for d in self.failing])
        yield _labelled("fedserver_rewards_log_size",
                        "Rewards log entries by stage: sequenced, integrated into the tree, signed, published "
                        "(in a checkpoint that reached the witness quorum).", "stage",
                        [("sequenced", b.log_sequenced), ("integrated", b.log_integrated), ("signed", b.log_signed),
                         ("published", b.log_published)])
        yield _gauge("fedserver_rewards_witness_lag_entries",
                     "Rewards log entries not yet covered by a witness-cosigned (published) checkpoint.",
                     max(0, b.log_sequenced - b.log_published))
        yield _gauge("fedserver_rewards_witness_lag_seconds",
                     "Age of the oldest rewards log entry not yet covered by a published checkpoint (0: none).",
                     b.unwitnessed_age_seconds)


async def read_database(pool: asyncpg.Pool, settings: Settings) -> DatabaseView:
    """The queue and log figures, or an empty view (logged) when the database cannot answer now."""
    pause_after = settings.federation.pause_failing_domain_after_days * 86400.0
    try:
        async with pool.acquire(timeout=SCRAPE_TIMEOUT) as conn:
            backlog = await get_backlog(conn, pause_after_seconds=pause_after, timeout=SCRAPE_TIMEOUT)
            failing = await get_failing_domains(conn, limit=FAILING_DOMAINS_SHOWN, timeout=SCRAPE_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("metrics left out what the database holds: %s", exc or type(exc).__name__)
        return DatabaseView(None, [])
    return DatabaseView(backlog, failing)


async def metrics_get(request: web.Request) -> web.Response:
    """The Prometheus text format (OpenMetrics when the scraper asks for it)."""
    settings = request.config_dict[SETTINGS]
    check_scraper(request, settings.metrics.token)
    pool = request.config_dict[POOL]
    pool_use = PoolUse.of(pool)
    database = await read_database(pool, settings)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(_Collectors((request.config_dict[METRICS].registry, pool_use, database)))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
