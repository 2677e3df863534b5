"""The outbound HTTP client: signed ActivityPub fetches, deliveries and WebFinger, with limits.

Every URL, first and after each redirect, passes `check_url`, and every connection is made
through `GuardedResolver`, so private and special-use addresses are refused at connect time
(security checklist row F). Bodies are capped at 1 MiB, redirects at 3, and each call at the
total timeout (row G). Fetched documents must carry an ActivityPub content type and an `id`
equal to the final URL, with no redirect to another origin (row C).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.utils
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from fedserver import __version__
from fedserver.signatures import (
    parse_accept_signature,
    sign_request,
    sign_request_rfc9421,
)

from .ssrf import FetchError, ForbiddenAddressError, GuardedResolver, check_url

if TYPE_CHECKING:
    from fedserver.config import Settings

log = logging.getLogger("fedserver.federation")

MAX_BODY_BYTES = 1024 * 1024  # Mastodon's MAX_JSON_SIZE; also aiohttp's default client_max_size
MAX_REDIRECTS = 3             # Mastodon's Request follows at most 3 hops
MAX_DELIVERY_BODY = 4096      # enough of an inbox's error answer to log
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
ACTIVITY_JSON = "application/activity+json"
ACCEPT_ACTIVITYPUB = f'{ACTIVITY_JSON}, application/ld+json; profile="{AS_CONTEXT}"'
ACCEPT_JRD = "application/jrd+json, application/json"  # what Mastodon's WebFinger client sends
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 4xx answers worth retrying (Mastodon's response_error_unsalvageable? spares these too).
TEMPORARY_4XX = frozenset({401, 408, 429})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Signer:
    """Who signs a request: the keyId URL and the matching RSA private key (PEM)."""

    key_id: str
    private_key_pem: str = field(repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    """What came of one inbox POST; status None means no HTTP answer and `error` says why."""

    status: int | None
    body: bytes = b""  # at most MAX_DELIVERY_BODY bytes
    retry_after: str | None = None
    error: str | None = None
    permanent: bool = False  # with status None: the URL itself was refused, retrying cannot help

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class FetchBudget:
    """How many remote fetches one unit of work (an inbox activity, a lookup) may make."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> None:
        """Consume one fetch; raise FetchError when none are left."""
        # Not permanent: the work is deferred and retried later, when caches may be warmer.
        if self.used >= self.limit:
            raise FetchError("fetch budget exhausted")
        self.used += 1


def is_activitypub_content_type(value: str | None) -> bool:
    """activity+json, or ld+json with the activitystreams profile (Mastodon's valid_activitypub_content_type?)."""
    if not value:
        return False
    message = email.message.Message()
    message["Content-Type"] = value
    media_type = message.get_content_type()
    if media_type == ACTIVITY_JSON:
        return True
    if media_type != "application/ld+json":
        return False
    profile = message.get_param("profile")
    if isinstance(profile, tuple):
        profile = email.utils.collapse_rfc2231_value(profile)
    return isinstance(profile, str) and AS_CONTEXT in profile.split()


def parse_handle(handle: str) -> tuple[str, str]:
    """Split `@name@host`, `name@host` or `acct:name@host` into (name, lowercased host); raise FetchError."""
    text = handle.strip().removeprefix("acct:").removeprefix("@")
    name, sep, host = text.partition("@")
    if not sep or not name or not host or "@" in host or any(ch in text for ch in "/?#\\ \t\r\n"):
        raise FetchError(f"not a handle: {handle!r}", permanent=True)
    return name, host.lower()


MAX_CONNECTIONS = 100
MAX_CONNECTIONS_PER_HOST = 16


class HttpClient:
    """An aiohttp ClientSession with the SSRF guard, limits and signing; all outbound HTTP goes through one.

    A server process has two: one for what its web requests fetch (signers' keys, lookups), one
    for its workers (deliveries, fetches while processing), so neither can starve the other.
    """

    def __init__(
        self, settings: Settings | None = None, *, base_url: str | None = None, allow_private: bool | None = None,
        connect_timeout: float = 5.0, total_timeout: float | None = None, max_body: int = MAX_BODY_BYTES,
        resolver: AbstractResolver | None = None, ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # base_url and allow_private default to the settings' base_url and
        # [federation] allow_private_addresses. resolver None means GuardedResolver over
        # getaddrinfo (production); tests pass one that maps public-looking names to loopback
        # servers (wrapped in GuardedResolver when the guard is under test); ssl_context adds a CA.
        if settings is not None:
            base_url = base_url or settings.base_url
            allow_private = settings.federation.allow_private_addresses if allow_private is None else allow_private
        if base_url is None:
            raise ValueError("HttpClient needs settings or base_url")
        if total_timeout is None:  # [federation] request_timeout_seconds, 30 s by default
            total_timeout = settings.federation.request_timeout_seconds if settings is not None else 30.0
        self.allow_private = bool(allow_private)
        self.user_agent = f"fedserver/{__version__} (+{base_url})"
        self.max_body = max_body
        self._timeouts = (connect_timeout, total_timeout)
        self._resolver = resolver
        self._owned_resolver: AbstractResolver | None = None
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        # Asked before every request with the target's `host[:port]` and URL: a reason refuses it (a domain
        # or an actor the operator blocked, fedserver.moderation), None lets it go. Set by whoever composes
        # the client.
        self.host_policy: Callable[[str, str], Awaitable[str | None]] | None = None

    async def start(self) -> None:
        """Create the session (call once, inside the running loop)."""
        if self._session is not None:
            raise RuntimeError("HttpClient already started")
        if self._resolver is None:
            self._owned_resolver = GuardedResolver(allow_private=self.allow_private)
        connector = aiohttp.TCPConnector(
            resolver=self._resolver or self._owned_resolver,
            use_dns_cache=False,  # resolve (and so check) for every new connection
            ssl=self._ssl_context or True,
            limit=MAX_CONNECTIONS,
            limit_per_host=MAX_CONNECTIONS_PER_HOST,  # one slow or stalling host cannot take them all
        )
        connect, total = self._timeouts
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": self.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    async def close(self) -> None:
        """Close the session and the resolver this client created."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._owned_resolver is not None:
            await self._owned_resolver.close()
            self._owned_resolver = None

    async def __aenter__(self) -> HttpClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch_activitypub(
        self, url: str | URL, *, signer: Signer | None, budget: FetchBudget | None = None,
    ) -> dict[str, Any]:
        """GET an ActivityPub document (signed when `signer` is given); raise FetchError."""
        final, body, _ = await self._fetch(url, ACCEPT_ACTIVITYPUB, signer, budget, activitypub=True)
        document = _json_object(body, final)
        if not _id_matches(document.get("id"), final):
            # Mastodon's fetch_resource requires json['id'] == uri (CVE-2024-23832 class).
            raise FetchError(f"document id {document.get('id')!r} is not its URL {final}", permanent=True)
        return document

    async def get_jrd(self, url: str | URL, *, budget: FetchBudget | None = None) -> dict[str, Any]:
        """GET a WebFinger JRD, unsigned; redirects may change host, each hop re-checked; raise FetchError."""
        return (await self.get_jrd_dated(url, budget=budget))[0]

    async def get_jrd_dated(self, url: str | URL, *, budget: FetchBudget | None = None) -> tuple[dict[str, Any],
                                                                                                 str | None]:
        """`get_jrd`, also returning the answer's `Date` header (`fedserver doctor` compares clocks with it)."""
        # Mastodon's WebFinger client follows redirects too (apex domain -> social.host setups).
        final, body, date = await self._fetch(url, ACCEPT_JRD, None, budget, activitypub=False)
        return _json_object(body, final), date

    async def post_activity(self, url: str | URL, body: bytes, *, signer: Signer) -> DeliveryResult:
        """POST a signed activity to an inbox without following redirects; never raises FetchError."""
        try:
            target = check_url(url, allow_private=self.allow_private)
            with _translated_errors(target):
                async with asyncio.timeout(self._timeouts[1]):
                    return await self._post(target, body, signer)
        except FetchError as exc:
            return DeliveryResult(status=None, error=exc.reason, permanent=exc.permanent)

    async def iterate_collection(
        self, url: str | URL, *, signer: Signer | None, budget: FetchBudget | None,
        max_pages: int = 10, max_items: int = 1000,
    ) -> AsyncIterator[Any]:
        """Yield items of an (Ordered)Collection along first/next; stop at the caps, on a loop or another origin."""
        # A page that cannot be fetched, or an exhausted budget, raises FetchError after the items so far.
        collection = await self.fetch_activitypub(url, signer=signer, budget=budget)
        home = URL(collection["id"])
        seen = {home}
        page: dict[str, Any] | None = collection
        link = collection.get("first")
        yielded = pages = 0
        while page is not None:
            for item in _items(page):
                if yielded >= max_items:
                    return
                yield item
                yielded += 1
            if pages >= max_pages or yielded >= max_items:
                return
            page = await self._next_page(link, home, seen, signer, budget)
            pages += 1
            link = page.get("next") if page is not None else None

    async def resolve_handle(self, handle: str, *, scheme: str, budget: FetchBudget | None = None) -> str:
        """The actor URL of `@name@host` via WebFinger's `self` link; raise FetchError."""
        # scheme: https in production; http only for local clusters (check_url enforces that).
        name, host = parse_handle(handle)
        try:
            url = URL.build(scheme=scheme, authority=host, path="/.well-known/webfinger",
                            query={"resource": f"acct:{name}@{host}"})
        except (ValueError, TypeError):
            raise FetchError(f"not a handle: {handle!r}", permanent=True) from None
        jrd = await self.get_jrd(url, budget=budget)
        return _self_link(jrd, handle)

    async def _fetch(
        self, url: str | URL, accept: str, signer: Signer | None, budget: FetchBudget | None, *, activitypub: bool,
    ) -> tuple[URL, bytes, str | None]:
        """One budgeted GET: URL check, redirects, deadline and size cap; return (final URL, body, Date header).

        ActivityPub documents may not be redirected to another origin and must carry an AP content type.
        """
        if budget is not None:
            budget.take()
        start = check_url(url, allow_private=self.allow_private)
        with _translated_errors(start):
            async with asyncio.timeout(self._timeouts[1]):
                final, response = await self._follow(start, accept, signer, cross_origin=not activitypub)
                async with response:
                    _check_status(response, final)
                    if activitypub:
                        _check_activitypub_type(response, final)
                    return final, await _read_capped(response, self.max_body), response.headers.get("Date")

    async def _follow(
        self, url: URL, accept: str, signer: Signer | None, *, cross_origin: bool,
    ) -> tuple[URL, aiohttp.ClientResponse]:
        """Send GETs until a non-redirect answer, at most MAX_REDIRECTS hops, none seen twice."""
        current, seen = url, {url}
        for _hop in range(MAX_REDIRECTS + 1):
            response = await self._send("GET", current, accept=accept, signer=signer)
            if response.status not in REDIRECT_STATUSES:
                return current, response
            location = response.headers.get("Location", "")
            response.close()  # never read a redirect's body
            current = self._redirect_target(current, location, cross_origin)
            if current in seen:
                raise FetchError(f"redirect loop at {current}", permanent=True)
            seen.add(current)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}", permanent=True)

    def _redirect_target(self, current: URL, location: str, cross_origin: bool) -> URL:
        """Resolve a Location against the current URL and vet it like a first URL."""
        if not location:
            raise FetchError(f"redirect from {current} has no Location", permanent=True)
        try:
            joined = current.join(URL(location))
        except (ValueError, TypeError):
            raise FetchError(f"redirect from {current} has a malformed Location", permanent=True) from None
        target = check_url(joined, allow_private=self.allow_private)
        if not cross_origin and _origin(target) != _origin(current):
            # Akkoma and Pleroma 2.9.1 refuse these too: a redirect must not let one host pose as another.
            raise FetchError(f"redirect from {current} to another origin ({target}) refused", permanent=True)
        return target

    async def _post(self, url: URL, body: bytes, signer: Signer) -> DeliveryResult:
        """Send the signed POST and keep status, Retry-After and the start of the body.

        Signed draft-cavage first, as Mastodon does. A 401 that names the RFC 9421 signature it
        wants (`Accept-Signature`, as Fedify's inboxChallengePolicy sends) is answered once
        with that signature.
        """
        response = await self._send("POST", url, body=body, content_type=ACTIVITY_JSON, signer=signer)
        async with response:
            prefix = await _read_up_to(response, MAX_DELIVERY_BODY)
            wanted = response.headers.get("Accept-Signature") if response.status == 401 else None
        if wanted:
            requested = _requested_components(wanted)
            if requested is not None:
                response = await self._send("POST", url, body=body, content_type=ACTIVITY_JSON, signer=signer,
                                            rfc9421=requested)
                async with response:
                    prefix = await _read_up_to(response, MAX_DELIVERY_BODY)
        return DeliveryResult(status=response.status, body=prefix, retry_after=response.headers.get("Retry-After"))

    async def _send(
        self, method: str, url: URL, *, accept: str | None = None, body: bytes | None = None,
        content_type: str | None = None, signer: Signer | None = None, rfc9421: tuple | None = None,
    ) -> aiohttp.ClientResponse:
        """One request, no redirects; the Host header is set here so the signature covers what is sent."""
        if self._session is None:
            raise RuntimeError("HttpClient.start() was not called")
        headers = {"Host": url.host_port_subcomponent or ""}
        if self.host_policy is not None and (refused := await self.host_policy(headers["Host"].lower(), str(url))):
            raise FetchError(refused, permanent=True)
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        if signer is not None and rfc9421 is not None:
            headers.update(sign_request_rfc9421(
                method, url.raw_path_qs, headers, body or b"", key_id=signer.key_id,
                private_key=signer.private_key_pem, scheme=url.scheme, authority=headers["Host"],
                components=rfc9421 or None))
        elif signer is not None:
            # draft-cavage rsa-sha256 first, as Mastodon signs: GET covers (request-target) host
            # date accept; POST covers (request-target) host date digest content-type.
            headers.update(sign_request(method, url.raw_path_qs, headers, body or b"",
                                        key_id=signer.key_id, private_key=signer.private_key_pem))
        return await self._session.request(method, url, headers=headers, data=body, allow_redirects=False)

    async def _next_page(
        self, link: Any, home: URL, seen: set[URL], signer: Signer | None, budget: FetchBudget | None,
    ) -> dict[str, Any] | None:
        """The next collection page (embedded or fetched), or None at the end, on a loop or off-origin."""
        if isinstance(link, dict):  # Mastodon embeds the first page of `replies`
            page_id = link.get("id")
            if isinstance(page_id, str) and _mark_seen(page_id, seen) is None:
                return None
            return link
        if not isinstance(link, str):
            return None
        target = _mark_seen(link, seen)
        if target is None:
            log.info("collection %s: page %s seen before, stopping", home, link)
            return None
        if _origin(target) != _origin(home):
            log.info("collection %s: page %s is on another origin, stopping", home, link)
            return None
        return await self.fetch_activitypub(target, signer=signer, budget=budget)


def _requested_components(header: str) -> tuple | None:
    """What an Accept-Signature asks for (first label) plus what any verifier needs, or None if unusable."""
    try:
        wanted = parse_accept_signature(header)
    except ValueError:
        return None
    first = next(iter(wanted.values()), None)
    if first is None:
        return None
    names = list(first.component_names)
    # Mastodon and Fedify need these on a POST, whatever else a peer asks for.
    for required in ("@method", "@target-uri", "@authority", "content-digest"):
        if required not in names:
            names.append(required)
    return tuple(names)


@contextlib.contextmanager
def _translated_errors(url: URL) -> Iterator[None]:
    """Turn aiohttp and timeout exceptions into FetchError, temporary unless a rule refused the address."""
    try:
        yield
    except FetchError:
        raise
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ForbiddenAddressError):
            raise FetchError(exc.os_error.reason, permanent=True) from None
        raise FetchError(f"cannot connect to {url.host}: {exc.os_error}") from None
    except TimeoutError:
        raise FetchError(f"request to {url.host} timed out") from None
    except aiohttp.InvalidURL as exc:
        raise FetchError(f"invalid URL: {exc}", permanent=True) from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"request to {url.host} failed: {exc!r}") from None


def _check_status(response: aiohttp.ClientResponse, url: URL) -> None:
    """2xx passes; 5xx and 401/408/429 are temporary; other answers (404, 410, ...) permanent."""
    status = response.status
    if 200 <= status < 300:
        return
    permanent = status < 500 and status not in TEMPORARY_4XX
    raise FetchError(f"{url} answered HTTP {status}", status=status, permanent=permanent)


def _check_activitypub_type(response: aiohttp.ClientResponse, url: URL) -> None:
    """Mastodon >= 4.2.5 discards documents of any other type (checklist #8)."""
    content_type = response.headers.get("Content-Type")
    if not is_activitypub_content_type(content_type):
        raise FetchError(f"{url} is served as {content_type!r}, not ActivityPub JSON",
                         status=response.status, permanent=True)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing a declared or actual size above `limit` (reads at most limit + 1 bytes)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise FetchError(f"{response.url} declares {declared} bytes, over the {limit}-byte limit", permanent=True)
    body = await _read_up_to(response, limit + 1)
    if len(body) > limit:
        response.close()  # drop the connection: an endless body must not be drained
        raise FetchError(f"{response.url} sent more than the {limit}-byte limit", permanent=True)
    return body


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the (decompressed) body, read in chunks."""
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _json_object(body: bytes, url: URL) -> dict[str, Any]:
    """Parse a JSON object; raise a permanent FetchError for anything else."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError(f"{url} did not return valid JSON", permanent=True) from None
    if not isinstance(value, dict):
        raise FetchError(f"{url} returned JSON that is not an object", permanent=True)
    return value


def _id_matches(value: Any, url: URL) -> bool:
    """True when a document's `id` is exactly the (fragment-less) URL it was served at."""
    if not isinstance(value, str):
        return False
    try:
        return URL(value) == url
    except (ValueError, TypeError):
        return False


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    """Scheme, host and effective port."""
    return url.scheme, url.host, url.port


def _mark_seen(link: str, seen: set[URL]) -> URL | None:
    """Record a page URL; None if it is malformed or was seen before (a loop)."""
    try:
        target = URL(link).with_fragment(None)
    except (ValueError, TypeError):
        return None
    if target in seen:
        return None
    seen.add(target)
    return target


def _items(page: dict[str, Any]) -> list[Any]:
    """A page's orderedItems or items, as a list."""
    items = page.get("orderedItems", page.get("items"))
    if isinstance(items, list):
        return items
    return [] if items is None else [items]


def _self_link(jrd: dict[str, Any], handle: str) -> str:
    """The href of the first `self` link with an ActivityPub type."""
    links = jrd.get("links")
    for link in links if isinstance(links, list) else []:
        if (isinstance(link, dict) and link.get("rel") == "self"
                and is_activitypub_content_type(link.get("type")) and isinstance(link.get("href"), str)):
            return link["href"]
    raise FetchError(f"WebFinger answer for {handle} has no ActivityPub self link", permanent=True)
