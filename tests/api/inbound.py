"""A remote actor that sends signed activities to the instance's inbox, processed by the real worker code."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedserver.app import create_app
from tests.support.processing import process_all
from tests.support.remote import RemoteServer, signed_post

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"


class Remote:
    """carol on a loopback server: builds and sends activities, then runs the inbox worker."""

    def __init__(self, client: TestClient, server: RemoteServer, pool, settings):
        self.client, self.server, self.pool, self.settings = client, server, pool, settings
        self.keys = server.actors["carol"]
        self.uri = self.keys.uri

    def new_id(self, kind: str) -> str:
        return f"{self.server.base}/{kind}/{time.time_ns()}"

    def note(self, content: str, *, to: list[str] | None = None, cc: list[str] | None = None,
             in_reply_to: str | None = None, tags: list[dict] | None = None) -> dict:
        return {"id": self.new_id("notes"), "type": "Note", "attributedTo": self.uri, "content": content,
                "to": to if to is not None else [PUBLIC], "cc": cc if cc is not None else [f"{self.uri}/followers"],
                "inReplyTo": in_reply_to, "tag": tags or [], "published": "2026-11-25T10:00:00Z"}

    async def send(self, activity: dict) -> list[str]:
        """POST the signed activity to the shared inbox and process the queue; returns the outcomes."""
        activity = {"@context": AS, "actor": self.uri, "id": self.new_id("activities"), **activity}
        body = json.dumps(activity).encode()
        headers = signed_post(self.keys, "/inbox", f"127.0.0.1:{self.client.port}", body)
        response = await self.client.post("/inbox", data=body, headers=headers)
        assert response.status == 202, await response.text()
        return await process_all(self.pool, self.settings)

    async def create(self, note: dict) -> dict:
        assert await self.send({"type": "Create", "object": note, "to": note["to"], "cc": note["cc"]}) == ["done"]
        return note

    async def actor_id(self) -> int:
        async with self.pool.acquire() as conn:
            return await conn.fetchval("SELECT id FROM actors WHERE uri = $1", self.uri)


@pytest.fixture
async def fed_api(fed_settings, pool):
    """The instance, allowed to fetch from loopback (remote keys, boosted posts)."""
    client = TestClient(TestServer(create_app(fed_settings, pool), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def carol(fed_api, pool, fed_settings):
    server = await RemoteServer().start()
    server.add_actor("carol")
    yield Remote(fed_api, server, pool, fed_settings)
    await server.close()
