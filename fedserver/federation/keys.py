"""App keys and the per-process federation context (HTTP client, key cache, inbox batcher)."""

from __future__ import annotations

from aiohttp import web

from ..accounts import ensure_instance_actor
from ..app_keys import HTTP, INSTANCE_SIGNER, MODERATION, POOL, SETTINGS
from ..net.http import HttpClient, Signer
from ..repo import actors as actors_repo
from .ingest import IngestBatcher
from .remote import KeyResolver

KEYS = web.AppKey("keys", KeyResolver)
INGEST = web.AppKey("ingest", IngestBatcher)


async def instance_signer(pool, settings) -> Signer:
    """The instance actor's key (created on first use), which signs server-to-server fetches."""
    await ensure_instance_actor(pool, settings)
    async with pool.acquire() as conn:
        account = await actors_repo.get_instance_account(conn)
    return Signer(key_id=account.actor.key_id, private_key_pem=account.private_key_pem)


def federation_context(shared_http: HttpClient | None = None):
    """cleanup_ctx: the HTTP client (shared with the workers when given), key resolver and inbox batcher."""

    async def context(app: web.Application):
        settings, pool = app[SETTINGS], app[POOL]
        http = shared_http or HttpClient(settings)
        if shared_http is None:
            http.host_policy = app[MODERATION].refusal
            await http.start()
        try:
            async for _ in _federation(app, pool, settings, http):
                yield
        finally:
            if shared_http is None:
                await http.close()

    return context


async def _federation(app: web.Application, pool, settings, http: HttpClient):
    signer = await instance_signer(pool, settings)
    batcher = IngestBatcher(pool)
    batcher.start()
    app[HTTP] = http
    app[INSTANCE_SIGNER] = signer
    app[KEYS] = KeyResolver(pool, http, signer)
    app[INGEST] = batcher
    try:
        yield
    finally:
        await batcher.stop()
