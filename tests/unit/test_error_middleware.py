"""The error middleware: a database out of reach is 503 with Retry-After, a bug is a 500, a full disk is not an outage."""

from __future__ import annotations

import errno

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fedserver.db import database_down
from fedserver.errors import DATABASE_RETRY_AFTER, error_middleware


def _raising(exc: BaseException):
    async def handler(_request: web.Request) -> web.Response:
        raise exc
    return handler


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    FileNotFoundError(errno.ENOENT, "No such file or directory"),  # the Unix socket is gone while it restarts
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    TimeoutError(),
])
async def test_a_database_out_of_reach_is_503_with_retry_after(exc):
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", _raising(exc))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/", headers={"Accept": "application/json"})
        assert response.status == 503
        assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert "database" in (await response.json())["error"]


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    PermissionError(errno.EACCES, "Permission denied"),
    asyncpg.UniqueViolationError("duplicate key"),
    KeyError("bug"),
])
async def test_other_errors_are_a_500_not_an_outage(exc):
    assert not database_down(exc)
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", _raising(exc))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/", headers={"Accept": "application/json"})
        assert response.status == 500 and "Retry-After" not in response.headers
