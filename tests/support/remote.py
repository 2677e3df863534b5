"""A hand-built remote server on loopback for negative tests: actors whose keys the test holds.

It serves real actor documents over real HTTP so the server under test fetches keys the
way it would from any peer, and lets a test play an attacker (sign with one actor's key
while claiming another, serve a wrong content type, a key document with a wrong id...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from fedserver.signatures import generate_rsa_keypair, sign_request

AP = "application/activity+json"


@dataclass
class RemoteActorKeys:
    name: str
    uri: str
    key_id: str
    private_pem: str
    public_pem: str


@dataclass
class RemoteServer:
    """Actors at http://127.0.0.1:PORT/users/NAME, with switches for misbehaviour."""

    server: TestServer | None = None
    actors: dict[str, RemoteActorKeys] = field(default_factory=dict)
    content_type: str = AP
    key_documents: bool = False  # serve keys as separate documents (GoToSocial style)
    wrong_key_document_id: bool = False
    requests: list[str] = field(default_factory=list)
    extra_routes: dict[str, dict] = field(default_factory=dict)

    async def start(self) -> "RemoteServer":
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_get("/users/{name}/main-key", self._key)
        app.router.add_get("/{tail:.*}", self._extra)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server:
            await self.server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def add_actor(self, name: str) -> RemoteActorKeys:
        private_pem, public_pem = generate_rsa_keypair()
        uri = f"{self.base}/users/{name}"
        key_id = f"{uri}/main-key" if self.key_documents else f"{uri}#main-key"
        keys = RemoteActorKeys(name, uri, key_id, private_pem, public_pem)
        self.actors[name] = keys
        return keys

    def actor_document(self, keys: RemoteActorKeys, **overrides) -> dict:
        doc = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": keys.uri, "type": "Person", "preferredUsername": keys.name, "name": keys.name.title(),
            "inbox": f"{keys.uri}/inbox", "outbox": f"{keys.uri}/outbox", "followers": f"{keys.uri}/followers",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": keys.key_id, "owner": keys.uri, "publicKeyPem": keys.public_pem},
        }
        doc.update(overrides)
        return doc

    def _respond(self, document: dict) -> web.Response:
        return web.Response(body=json.dumps(document).encode(), headers={"Content-Type": self.content_type})

    async def _actor(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        keys = self.actors.get(request.match_info["name"])
        if keys is None:
            raise web.HTTPNotFound()
        return self._respond(self.actor_document(keys))

    async def _key(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        keys = self.actors.get(request.match_info["name"])
        if keys is None:
            raise web.HTTPNotFound()
        key_id = keys.key_id + ("-other" if self.wrong_key_document_id else "")
        return self._respond({"@context": "https://w3id.org/security/v1", "id": key_id, "type": "Key",
                              "owner": keys.uri, "publicKeyPem": keys.public_pem})

    async def _extra(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        document = self.extra_routes.get(request.path)
        if document is None:
            raise web.HTTPNotFound()
        return self._respond(document)


def signed_post(keys: RemoteActorKeys, url_path: str, host: str, body: bytes, **kwargs) -> dict:
    """Headers for a POST signed by `keys` the way Mastodon signs it."""
    headers = {"Content-Type": AP}
    headers.update(sign_request("POST", url_path, headers, body, key_id=keys.key_id,
                                private_key=keys.private_pem, host=host, **kwargs))
    return headers
