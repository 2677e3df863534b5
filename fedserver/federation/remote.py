"""Remote actors: fetch, validate and store them; find the key that signed a request.

Keys are looked up by `keyId`, first in memory, then in the database, and only then
fetched from their origin with a signed GET by the instance actor. A sender-pushed
actor Update never changes a stored key (checklist #11): only our own fetch does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import asyncpg

from activities.actor import Actor
from activities.parse import ParseError, RemoteActor, parse_actor, ref
from activities.urls import BadId, id_host, same_origin

from ..net.http import FetchBudget, FetchError, HttpClient, Signer
from ..repo import actors as actors_repo
from ..repo.remote_actors import KeyClaimed, get_actor_by_key_id, upsert_remote_actor
from ..signatures import key_owner_url, load_public_key
from ..signatures.common import SignatureError

log = logging.getLogger("fedserver.federation.remote")

REFRESH_AFTER_SECONDS = 60
_CACHE_SIZE = 4096
_CACHE_TTL = 300.0
# Key fetches run while an unauthenticated request waits: at most this many at once, and this
# many per host, so a host that stalls (or a flood of made-up key ids) cannot take every slot.
# A request that finds no slot is answered 503 with Retry-After; identical fetches are shared.
MAX_KEY_FETCHES = 32
MAX_KEY_FETCHES_PER_HOST = 4


@dataclass(frozen=True)
class SignerKey:
    """The owner of a key and the loaded key itself."""

    actor_uri: str
    key: object
    fetched_at: float


class KeyResolver:
    """Find the key for a `keyId`: memory, then database, then a signed fetch from its origin."""

    def __init__(self, pool: asyncpg.Pool, http: HttpClient, signer: Signer):
        self.pool = pool
        self.http = http
        self.signer = signer
        self._cache: OrderedDict[str, tuple[float, SignerKey]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[SignerKey]] = {}
        self._per_host: Counter[str] = Counter()

    def _remember(self, key_id: str, value: SignerKey) -> SignerKey:
        self._cache[key_id] = (time.monotonic(), value)
        self._cache.move_to_end(key_id)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    async def cached_or_stored(self, key_id: str) -> SignerKey | None:
        """The key without any network request, or None."""
        hit = self._cache.get(key_id)
        if hit and time.monotonic() - hit[0] < _CACHE_TTL:
            return hit[1]
        async with self.pool.acquire() as conn:
            actor = await get_actor_by_key_id(conn, key_id)
        if actor is None or actor.is_local:
            return None
        fetched = actor.updated_at.timestamp()
        return self._remember(key_id, SignerKey(actor.uri, load_public_key(actor.public_key_pem).key, fetched))

    async def fetch(self, key_id: str) -> SignerKey:
        """Fetch the key's owner from its origin and store it; raises FetchError or SignatureError.

        Callers asking for the same key share one fetch. Past the caps (all fetches, fetches to
        the key's host) the call fails at once with a temporary FetchError (503 to the sender).
        """
        shared = self._in_flight.get(key_id)
        if shared is None:
            host = _host(key_id)
            if len(self._in_flight) >= MAX_KEY_FETCHES or self._per_host[host] >= MAX_KEY_FETCHES_PER_HOST:
                raise FetchError(f"too many key fetches in flight{' to ' + host if host else ''}; retry later")
            shared = self._in_flight[key_id] = asyncio.ensure_future(self._fetch(key_id))
            self._per_host[host] += 1
            shared.add_done_callback(lambda done, key_id=key_id, host=host: self._fetched(done, key_id, host))
        return await asyncio.shield(shared)  # one caller giving up does not cancel the others' fetch

    def _fetched(self, done: asyncio.Future, key_id: str, host: str) -> None:
        if not done.cancelled():
            done.exception()  # seen here, even when every caller gave up waiting
        self._in_flight.pop(key_id, None)
        self._per_host[host] -= 1
        if self._per_host[host] <= 0:
            del self._per_host[host]

    async def _fetch(self, key_id: str) -> SignerKey:
        actor = await self._fetch_owner(key_id)
        try:
            key = load_public_key(actor.public_key_pem).key
        except SignatureError as exc:
            raise FetchError(f"the signer's key is unusable: {exc}", permanent=True) from None
        async with self.pool.acquire() as conn:  # the key id itself led to this actor: it may take the key over
            await upsert_remote_actor(conn, actor, key_verified=True)
        return self._remember(key_id, SignerKey(actor.id, key, time.time()))

    async def _fetch_owner(self, key_id: str) -> RemoteActor:
        budget = FetchBudget(3)
        document = await self.http.fetch_activitypub(key_owner_url(key_id), signer=self.signer, budget=budget)
        if isinstance(document.get("publicKeyPem"), str) and not document.get("inbox"):
            # A separate key document (GoToSocial style): it must be the key asked for
            # and name an owner that links back to it (checklist #13).
            if document.get("id") != key_id:
                raise FetchError("the key document's id is not the keyId", permanent=True)
            owner = ref(document.get("owner"))
            if not owner or not same_origin(owner, key_id):
                raise FetchError("the key document has no owner on its own server", permanent=True)
            document = await self.http.fetch_activitypub(owner, signer=self.signer, budget=budget)
        try:
            actor = parse_actor(document)
        except ParseError as exc:
            raise FetchError(f"the signer is not a valid actor: {exc}", permanent=True) from None
        if actor.key_id != key_id:
            raise FetchError("the actor does not publish the key that signed the request", permanent=True)
        return actor

    def forget(self, key_id: str) -> None:
        """Drop a cached key (after a verification failure or a Delete)."""
        self._cache.pop(key_id, None)

    @staticmethod
    def may_refresh(found: SignerKey) -> bool:
        """Refetch after a failed verification at most once a minute per key (key rotation)."""
        return time.time() - found.fetched_at > REFRESH_AFTER_SECONDS


def _host(key_id: str) -> str:
    try:
        return id_host(key_id)
    except BadId:
        return ""


async def fetch_remote_actor(http: HttpClient, signer: Signer, url: str,
                             budget: FetchBudget | None = None) -> RemoteActor:
    """Fetch and validate an actor document by URL."""
    document = await http.fetch_activitypub(url, signer=signer, budget=budget)
    try:
        return parse_actor(document)
    except ParseError as exc:
        raise FetchError(f"not a valid actor: {exc}", permanent=True) from None


async def ensure_remote_actor(pool: asyncpg.Pool, http: HttpClient, signer: Signer, uri: str,
                              budget: FetchBudget | None = None) -> Actor:
    """The stored actor, fetched and stored first if unknown."""
    async with pool.acquire() as conn:
        actor = await actors_repo.get_actor_by_uri(conn, uri)
    return actor if actor is not None else await _fetch_and_store_actor(pool, http, signer, uri, budget)


async def ensure_remote_actors(pool: asyncpg.Pool, http: HttpClient, signer: Signer, uris: list[str],
                               budget: FetchBudget | None = None) -> dict[str, Actor | FetchError]:
    """`ensure_remote_actor` for many: the stored ones in one statement, the unknown fetched one by one."""
    async with pool.acquire() as conn:
        found: dict[str, Actor | FetchError] = dict(await actors_repo.get_actors_by_uris(conn, uris))
    for uri in uris:
        if uri not in found:
            try:
                found[uri] = await _fetch_and_store_actor(pool, http, signer, uri, budget)
            except FetchError as exc:
                found[uri] = exc
    return found


async def _fetch_and_store_actor(pool: asyncpg.Pool, http: HttpClient, signer: Signer, uri: str,
                                 budget: FetchBudget | None) -> Actor:
    remote = await fetch_remote_actor(http, signer, uri, budget)
    if remote.id != uri:
        raise FetchError("the actor's id is not the URL it was fetched from", permanent=True)
    async with pool.acquire() as conn:
        try:
            return await upsert_remote_actor(conn, remote)
        except KeyClaimed as exc:
            log.warning("refused an actor that claims another actor's key: %s", exc, extra={"actor": uri})
            raise FetchError(str(exc), permanent=True) from None
