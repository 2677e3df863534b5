"""Which remote actor signed a GET: for documents only their audience may read (private posts, orders)."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..repo.remote_actors import get_actor_by_key_id
from ..signatures import SignatureError, parse_request_signature, verify_parsed


async def signed_reader(request: web.Request) -> str | None:
    """The actor id of a verified signer whose key we already know, else None (no network I/O)."""
    if "Signature" not in request.headers and "Signature-Input" not in request.headers:
        return None
    settings = request.config_dict[SETTINGS]
    try:
        parsed = parse_request_signature(request.method, request.raw_path, request.headers.items(), b"",
                                         scheme=settings.instance.scheme, authority=request.host)
        async with request.config_dict[POOL].acquire() as conn:
            actor = await get_actor_by_key_id(conn, parsed.key_id)
        if actor is None:
            return None
        verify_parsed(parsed, actor.public_key_pem)
    except SignatureError:
        return None
    return actor.uri
