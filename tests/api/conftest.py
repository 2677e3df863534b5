"""Fixtures for the client API: accounts with passwords, registered apps, tokens, app clients with settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedserver.accounts import (
    create_account,
    ensure_instance_actor,
    validate_new_account,
)
from fedserver.api.oauth_service import OOB, issue_token, register_app
from fedserver.app import create_app
from fedserver.config import ApiSettings, Settings

PASSWORD = "correct horse battery staple"
ALL = ("read", "write", "follow", "push")


@dataclass
class RegisteredApp:
    app: object
    client_id: str
    secret: str


@pytest.fixture
async def alice(pool, settings):
    """A local account with a password and an email."""
    await ensure_instance_actor(pool, settings)
    actor = await create_account(pool, settings, validate_new_account(
        username="alice", display_name="앨리스 공방", password=PASSWORD))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE local_accounts SET email = 'alice@example.com' WHERE actor_id = $1", actor.id)
    return actor


@pytest.fixture
async def bob(pool, settings, alice):
    """A second local account, without a password."""
    return await create_account(pool, settings, validate_new_account(username="bob", display_name="Bob"))


@pytest.fixture
async def oauth_app(pool) -> RegisteredApp:
    """An app registered for the usual scopes, out-of-band and a custom-scheme redirect."""
    app, secret = await register_app(pool, name="Test app", website="https://app.example",
                                     redirect_uris=[OOB, "myapp://cb"], scopes=ALL)
    return RegisteredApp(app, app.client_id, secret)


async def mint_token(pool, registered: RegisteredApp, account_id: int | None, scopes=ALL) -> str:
    """A token issued directly (skips the ~0.3 s password check)."""
    async with pool.acquire() as conn:
        grant = await issue_token(conn, registered.app, account_id, tuple(scopes))
    return grant.access_token


@pytest.fixture
async def token(pool, oauth_app, alice) -> str:
    """alice's token with read, write, follow and push."""
    return await mint_token(pool, oauth_app, alice.id)


@pytest.fixture
def auth(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


def with_api(settings: Settings, **changes) -> Settings:
    """The settings with some [api] keys changed."""
    return settings.model_copy(update={"api": ApiSettings(**{**settings.api.model_dump(), **changes})})


@pytest.fixture
async def make_client(pool):
    """Build extra clients (with their own settings) on the same database; closed at the end."""
    clients: list[TestClient] = []

    async def make(settings: Settings) -> TestClient:
        client = TestClient(TestServer(create_app(settings, pool), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def settings(db_url, tmp_path):
    """http://shop.test: the login page's CSRF cookie is Secure only on https, and the test server is http."""
    from fedserver.config import load_settings
    from tests.conftest import TEST_DOMAIN

    return load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": TEST_DOMAIN,
        "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_DATABASE__URL": db_url,
        "FEDSERVER_STORAGE__DATA_DIR": str(tmp_path / "data"),
    })
