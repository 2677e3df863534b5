"""Remote actors: fetch, validate and store them; find the key that signed a request.

Keys are looked up by `keyId`, first in memory, then in the database, and only then
fetched from their origin with a signed GET by the instance actor. A sender-pushed
actor Update never changes a stored key (checklist #11): only our own fetch does.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg

from activities.actor import Actor
from activities.parse import ParseError, RemoteActor, parse_actor, ref
from activities.urls import same_origin

from ..net.http import FetchBudget, FetchError, HttpClient, Signer
from ..repo import actors as actors_repo
from ..signatures import key_owner_url, load_public_key
from ..signatures.common import SignatureError

log = logging.getLogger("fedserver.federation.remote")

REFRESH_AFTER_SECONDS = 60
_CACHE_SIZE = 4096
_CACHE_TTL = 300.0


async def upsert_remote_actor(conn: asyncpg.Connection, actor: RemoteActor, *, update_key: bool = True) -> Actor:
    """Insert or refresh a remote actor row; `update_key=False` keeps the stored key."""
    key_sql = "key_id = EXCLUDED.key_id, public_key_pem = EXCLUDED.public_key_pem," if update_key else ""
    row_id = await conn.fetchval(
        f"""INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, summary, url,
                   inbox_uri, outbox_uri, shared_inbox_uri, followers_uri, following_uri, featured_uri,
                   key_id, public_key_pem, manually_approves_followers, discoverable, indexable,
                   icon_url, image_url, fetched_at)
            VALUES ($1, false, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                    $19, $20, now())
            ON CONFLICT (uri) DO UPDATE SET
                username = EXCLUDED.username, actor_type = EXCLUDED.actor_type,
                display_name = EXCLUDED.display_name, summary = EXCLUDED.summary, url = EXCLUDED.url,
                inbox_uri = EXCLUDED.inbox_uri, outbox_uri = EXCLUDED.outbox_uri,
                shared_inbox_uri = EXCLUDED.shared_inbox_uri, followers_uri = EXCLUDED.followers_uri,
                following_uri = EXCLUDED.following_uri, featured_uri = EXCLUDED.featured_uri, {key_sql}
                manually_approves_followers = EXCLUDED.manually_approves_followers,
                discoverable = EXCLUDED.discoverable, indexable = EXCLUDED.indexable,
                icon_url = EXCLUDED.icon_url, image_url = EXCLUDED.image_url,
                fetched_at = CASE WHEN $21 THEN now() ELSE actors.fetched_at END, updated_at = now()
            WHERE NOT actors.is_local
            RETURNING id""",
        actor.id, actor.username, actor.domain, actor.type, actor.display_name, actor.summary, actor.url,
        actor.inbox, actor.outbox, actor.shared_inbox, actor.followers, actor.following, actor.featured,
        actor.key_id, actor.public_key_pem, actor.manually_approves_followers, actor.discoverable,
        actor.indexable, actor.icon_url, actor.image_url, update_key,
    )
    if row_id is None:
        raise ParseError("that id belongs to a local actor")
    return await actors_repo.get_actor_by_uri(conn, actor.id)  # type: ignore[return-value]


async def get_actor_by_key_id(conn: asyncpg.Connection, key_id: str) -> Actor | None:
    """The non-deleted actor whose key has this id."""
    row = await conn.fetchrow("SELECT uri FROM actors WHERE key_id = $1 AND deleted_at IS NULL LIMIT 1", key_id)
    return await actors_repo.get_actor_by_uri(conn, row["uri"]) if row else None


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
        """Fetch the key's owner from its origin and store it; raises FetchError or SignatureError."""
        actor = await self._fetch_owner(key_id)
        try:
            key = load_public_key(actor.public_key_pem).key
        except SignatureError as exc:
            raise FetchError(f"the signer's key is unusable: {exc}", permanent=True) from None
        async with self.pool.acquire() as conn:
            await upsert_remote_actor(conn, actor)
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
    if actor is not None:
        return actor
    remote = await fetch_remote_actor(http, signer, uri, budget)
    if remote.id != uri:
        raise FetchError("the actor's id is not the URL it was fetched from", permanent=True)
    async with pool.acquire() as conn:
        return await upsert_remote_actor(conn, remote)
