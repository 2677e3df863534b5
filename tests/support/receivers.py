"""Loopback inbox servers for delivery tests: they verify each POST's draft-cavage signature
against the sender's public key, count what arrives, and answer as scripted.

Each receiver is one "instance" (its own host:port, so its own delivery domain) with a
shared inbox at /inbox and personal inboxes at /users/NAME/inbox. It can also serve
actor and post documents and WebFinger, so the server under test can look things up.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedserver.signatures import (
    SignatureError, generate_rsa_keypair, load_public_key, parse_request_signature, verify_parsed,
)

AP = "application/activity+json"
_PUBLIC_PEM: list[str] = []


def spare_public_pem() -> str:
    """One real public key for remote actors whose key the tests never use."""
    if not _PUBLIC_PEM:
        _PUBLIC_PEM.append(generate_rsa_keypair()[1])
    return _PUBLIC_PEM[0]


@dataclass(frozen=True)
class Hit:
    """One POST that arrived."""

    path: str
    activity_id: str | None
    activity_type: str | None
    body: dict | None
    verified: bool
    at: float


# (inbox path, number of earlier POSTs to this receiver) -> (status, headers)
Script = Callable[[str, int], tuple[int, dict[str, str]]]


@dataclass
class Receiver:
    """A loopback instance that receives deliveries."""

    keys: dict[str, str] = field(default_factory=dict)  # keyId -> public key PEM
    delay: float = 0.0
    script: Script | None = None
    documents: dict[str, dict] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    server: TestServer | None = None

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/inbox", self._inbox)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/{tail:.*}", self._document)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def verified(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.verified]

    def unique(self) -> set[tuple[str, str | None]]:
        """What an inbox that dedupes by activity id processes: one per (inbox, activity id)."""
        return {(hit.path, hit.activity_id) for hit in self.verified()}

    def duplicates(self) -> collections.Counter:
        counts = collections.Counter((hit.path, hit.activity_id) for hit in self.verified())
        return collections.Counter({key: n - 1 for key, n in counts.items() if n > 1})

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        verified = self._verify(request, body)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        earlier = len(self.hits)
        self.hits.append(Hit(request.path, doc.get("id") if isinstance(doc, dict) else None,
                             doc.get("type") if isinstance(doc, dict) else None, doc, verified, time.monotonic()))
        if self.delay:
            await asyncio.sleep(self.delay)
        if not verified:
            return web.json_response({"error": "bad signature"}, status=401)
        status, headers = self.script(request.path, earlier) if self.script else (202, {})
        return web.Response(status=status, headers=headers)

    def _verify(self, request: web.Request, body: bytes) -> bool:
        try:
            parsed = parse_request_signature(request.method, request.raw_path, request.headers.items(), body,
                                             scheme="http", authority=request.host)
            pem = self.keys.get(parsed.key_id)
            if pem is None:
                return False
            verify_parsed(parsed, load_public_key(pem))
            return parsed.scheme == "draft-cavage"
        except SignatureError:
            return False

    async def _webfinger(self, request: web.Request) -> web.Response:
        resource = parse_qs(request.query_string).get("resource", [""])[0]
        name = resource.removeprefix("acct:").split("@", 1)[0]
        uri = f"{self.base}/users/{name}"
        if f"/users/{name}" not in self.documents:
            raise web.HTTPNotFound()
        return web.json_response({"subject": resource, "links": [{"rel": "self", "type": AP, "href": uri}]},
                                 content_type="application/jrd+json")

    async def _document(self, request: web.Request) -> web.Response:
        document = self.documents.get(request.path)
        if document is None:
            raise web.HTTPNotFound()
        return web.Response(body=json.dumps(document).encode(), headers={"Content-Type": AP})

    def add_actor(self, name: str, *, shared_inbox: bool = True) -> dict:
        """Serve an actor document at /users/NAME and return it."""
        uri = f"{self.base}/users/{name}"
        doc = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": name, "name": name.title(),
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": spare_public_pem()},
        }
        if shared_inbox:
            doc["endpoints"] = {"sharedInbox": f"{self.base}/inbox"}
        self.documents[f"/users/{name}"] = doc
        return doc


async def start_receivers(count: int, keys: dict[str, str], **kwargs) -> list[Receiver]:
    return [await Receiver(keys=keys, **kwargs).start() for _ in range(count)]


async def add_remote_followers(conn: asyncpg.Connection, followee_id: int, receiver: Receiver, count: int, *,
                               shared_inbox: bool = True, prefix: str = "f") -> list[int]:
    """Insert `count` remote actors on `receiver` that follow `followee_id` (accepted); returns their ids."""
    base = receiver.base
    names = [f"{prefix}{i}" for i in range(count)]
    rows = await conn.fetch(
        """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, shared_inbox_uri,
                               followers_uri, key_id, public_key_pem)
           SELECT $1 || '/users/' || n, false, n, $2, 'Person', $1 || '/users/' || n || '/inbox',
                  CASE WHEN $3 THEN $1 || '/inbox' END, $1 || '/users/' || n || '/followers',
                  $1 || '/users/' || n || '#main-key', $4
           FROM unnest($5::text[]) AS n RETURNING id""",
        base, receiver.domain, shared_inbox, spare_public_pem(), names,
    )
    ids = [row["id"] for row in rows]
    await conn.execute(
        """INSERT INTO follows (follower_id, followee_id, state, accepted_at, activity_uri)
           SELECT f, $1, 'accepted', now(), 'urn:test:follow:' || f FROM unnest($2::bigint[]) AS f""",
        followee_id, ids,
    )
    return ids


async def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `condition` (sync or async) until truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
