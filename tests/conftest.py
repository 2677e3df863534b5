"""Fixtures: real PostgreSQL (the configured server or an embedded one), real HTTP."""

from __future__ import annotations

import itertools
import threading

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedserver import accounts, passwords
from fedserver.accounts import create_account, validate_new_account
from fedserver.app import build_publisher, create_app
from fedserver.config import load_settings
from fedserver.db import init_connection, reset_connection
from tests.support.database import start_cluster, stop_cluster

TEST_DOMAIN = "shop.test"


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes():
    """Accounts made in this process hash their passwords with scrypt at a thousandth of the production
    work (n=2**10, p=1: about 1 ms instead of 0.3 s), so hundreds of accounts do not cost minutes. The
    hashes name their parameters, so verifying works as in production; servers the tests start as
    processes keep the production cost, and tests/unit/test_passwords.py checks it."""
    passwords.COST = (2**10, 8, 1)
    yield
    passwords.COST = passwords.PRODUCTION_COST


ACCOUNT_KEYS = 64  # key pairs in the rolling set: more than any one test makes accounts in this process


@pytest.fixture(scope="session", autouse=True)
def _reused_account_keys():
    """Accounts made in this process take their RSA-2048 pairs, made by the production function, from a rolling
    set of ACCOUNT_KEYS instead of a fresh pair each (50-70 ms apiece, for well over a thousand accounts a run).
    Any ACCOUNT_KEYS accounts made one after another have distinct pairs, so those of one test never share a key;
    servers the tests start as processes make their own keys."""
    made: list[tuple[str, str]] = []
    turns = itertools.count()
    lock = threading.Lock()  # create_account makes its pair in a worker thread
    original = accounts.generate_rsa_keypair

    def keypair(bits: int = 2048) -> tuple[str, str]:
        if bits != 2048:
            return original(bits)
        with lock:
            turn = next(turns) % ACCOUNT_KEYS
            if turn == len(made):
                made.append(original())
            return made[turn]

    accounts.generate_rsa_keypair = keypair
    yield
    accounts.generate_rsa_keypair = original


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """The PostgreSQL server for the whole session, with a migrated template database."""
    cluster = start_cluster(tmp_path_factory.mktemp("pg"))
    yield cluster
    stop_cluster(cluster)


@pytest.fixture
async def db_url(pg_cluster):
    """A fresh, migrated database for one test, dropped afterwards."""
    url = await pg_cluster.create_database()
    yield url
    await pg_cluster.drop_database(url)


@pytest.fixture
def settings(db_url, tmp_path):
    """Settings for an instance at https://shop.test on the test database."""
    return load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": TEST_DOMAIN,
        "FEDSERVER_DATABASE__URL": db_url,
        "FEDSERVER_STORAGE__DATA_DIR": str(tmp_path / "data"),
    })


@pytest.fixture
def publisher(settings):
    """Publishing for the test instance, with every package's hooks (as the server composes it)."""
    return build_publisher(settings)


@pytest.fixture
async def pool(db_url):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=5, init=init_connection, reset=reset_connection)
    yield pool
    await pool.close()


@pytest.fixture
async def client(settings, pool):
    """An HTTP client talking to the app served on a real loopback socket."""
    server = TestServer(create_app(settings, pool), host="127.0.0.1")
    async with TestClient(server) as client:
        yield client


@pytest.fixture
def fed_settings(settings):
    """The test instance, allowed to fetch from the loopback servers a test starts."""
    federation = settings.federation.model_copy(update={"allow_private_addresses": True})
    return settings.model_copy(update={"federation": federation})


@pytest.fixture
async def fed_client(fed_settings, pool):
    """A client for an instance with the account alice that federates with loopback test servers."""
    await create_account(pool, fed_settings, validate_new_account(username="alice"))
    server = TestServer(create_app(fed_settings, pool), host="127.0.0.1")
    async with TestClient(server) as client:
        yield client
