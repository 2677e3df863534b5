"""`POST /users/{name}/inbox` and `POST /inbox`: check, verify, store once, answer 202.

Order of checks (each failure answers before anything is stored): body size (413),
content type (415), JSON (400), envelope and limits (400), HTTP signature (401; 503
when the signer's key cannot be fetched right now, so the sender retries), signer bound
to `actor` (401), origin rules (400), then one durable insert, unique on the activity id.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from activities.parse import (
    InboundActivity,
    ParseError,
    cannot_nest_too_deep,
    parse_activity,
)
from activities.urls import BadId, id_host

from ..app_keys import MODERATION, POOL, SETTINGS
from ..db import database_down
from ..errors import HTTPError
from ..net.http import FetchError
from ..repo import actors as actors_repo
from ..signatures import SignatureError, parse_request_signature, verify_parsed
from ..repo.inbox import InboxRow
from .ingest import RowRefused
from .keys import INGEST, KEYS
from .remote import KeyResolver, SignerKey

log = logging.getLogger("fedserver.federation.inbox")

MAX_BODY = 1_048_576
ACCEPTED_TYPES = ("application/activity+json", "application/ld+json", "application/json")
# Activities whose embedded object must come from the actor's own server.
_OWN_OBJECT_TYPES = frozenset({"Create", "Update", "Delete"})
# Objects two servers share, whose id is on either one: an order's Agreement (FEP-0837) is minted by the
# buyer's server and updated by both parties; its handler accepts a move only from the right party.
_SHARED_OBJECT_TYPES = frozenset({"Agreement"})


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise HTTPError(413, f"activities are limited to {MAX_BODY} bytes")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise HTTPError(413, f"activities are limited to {MAX_BODY} bytes")
    return body


def _check_content_type(request: web.Request) -> None:
    if request.content_type not in ACCEPTED_TYPES:
        raise HTTPError(415, "send activities as application/activity+json")


def _not_json(name: str) -> None:
    """NaN and Infinity are Python's extensions, not JSON (and PostgreSQL's jsonb refuses them)."""
    raise ValueError(f"{name} is not JSON")


# One decoder for every request: json.loads with an option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def _parse(body: bytes) -> tuple[InboundActivity, str]:
    """The activity and its JSON text (stored as received)."""
    if b"\\u0000" in body:
        # PostgreSQL's jsonb cannot hold NUL; refuse it here rather than fail a whole batch.
        raise HTTPError(400, "NUL characters (\\u0000) are not accepted")
    try:
        text = body.decode("utf-8")
        document = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise HTTPError(400, "the body is not valid UTF-8 JSON") from None
    try:
        return parse_activity(document, shallow=cannot_nest_too_deep(body)), text
    except ParseError as exc:
        raise HTTPError(400, str(exc)) from None


def _check_origin(activity: InboundActivity, local_domain: str) -> None:
    """Trust an id only on the signer's own server; never accept ids on our domain from outside."""
    actor_host = id_host(activity.actor)
    if actor_host == local_domain:
        raise HTTPError(400, "the actor is on this server's domain")
    if id_host(activity.id) != actor_host:
        raise HTTPError(400, "the activity id is not on the actor's server")
    shared = activity.object_type in _SHARED_OBJECT_TYPES
    if activity.type in _OWN_OBJECT_TYPES and activity.object_id and not shared:
        try:
            object_host = id_host(activity.object_id)
        except BadId:
            raise HTTPError(400, "the object id is not a URL") from None
        if object_host != actor_host:
            raise HTTPError(400, "the object is not on the actor's server")
    if activity.object is not None and activity.type == "Create":
        author = activity.object.get("attributedTo")
        author = author.get("id") if isinstance(author, dict) else author
        if author is not None and author != activity.actor:
            raise HTTPError(400, "the object is attributed to another actor")


async def _signer_key(request: web.Request, parsed, keys: KeyResolver) -> SignerKey:
    """Verify the signature, refetching the key once when a stored key no longer matches."""
    found = await keys.cached_or_stored(parsed.key_id)
    if found is not None:
        try:
            verify_parsed(parsed, found.key)
            return found
        except SignatureError:
            if not keys.may_refresh(found):
                raise
            keys.forget(parsed.key_id)
    try:
        fresh = await keys.fetch(parsed.key_id)
    except FetchError as exc:
        if exc.permanent:
            raise HTTPError(401, f"could not get the signer's key: {exc.reason}") from None
        raise HTTPError(503, f"the signer's key cannot be fetched right now: {exc.reason}",
                        headers={"Retry-After": "60"}) from None
    verify_parsed(parsed, fresh.key)
    return fresh


async def _is_self_delete_of_unknown_actor(request: web.Request, activity: InboundActivity) -> bool:
    """Mastodon answers 202 to Delete{actor} from an actor it never knew, without fetching it."""
    if activity.type != "Delete" or activity.object_id != activity.actor:
        return False
    async with request.config_dict[POOL].acquire() as conn:
        return await actors_repo.get_actor_by_uri(conn, activity.actor) is None


async def _recipient(request: web.Request) -> int | None:
    name = request.match_info.get("name")
    if name is None:
        return None
    async with request.config_dict[POOL].acquire() as conn:
        actor = await actors_repo.get_local_actor_by_username(conn, name)
    if actor is None or actor.deleted_at is not None:
        raise HTTPError(404 if actor is None else 410, f"no account named {name} here")
    return actor.id


async def inbox_post(request: web.Request) -> web.Response:
    config = request.config_dict  # a new ChainMap proxy on every access: read it once
    settings = config[SETTINGS]
    if not settings.federation.enabled:
        raise HTTPError(403, "federation is switched off on this server")
    body = await _read_body(request)
    _check_content_type(request)
    activity, text = _parse(body)
    if refused := await config[MODERATION].refuses_actor(activity.actor):
        # Before the signature: no key is fetched from a blocked server, and nothing is stored.
        raise HTTPError(403, refused)
    recipient = await _recipient(request)
    try:
        parsed = parse_request_signature(
            request.method, request.raw_path, request.headers, body,
            scheme=settings.instance.scheme, authority=request.host,
        )
    except SignatureError as exc:
        raise HTTPError(401, str(exc)) from None
    if await _is_self_delete_of_unknown_actor(request, activity):
        return web.Response(status=202)
    try:
        signer = await _signer_key(request, parsed, config[KEYS])
    except SignatureError as exc:
        raise HTTPError(401, str(exc)) from None
    if signer.actor_uri != activity.actor:
        raise HTTPError(401, "the signer and the actor do not match")
    _check_origin(activity, settings.instance.domain)
    row = InboxRow(activity.id, activity.type, activity.actor, recipient, text, parsed.key_id)
    try:
        await config[INGEST].submit(row)
    except RowRefused as exc:
        log.warning("inbox activity refused by the database", extra={"activity": activity.id, "error": str(exc)})
        raise HTTPError(400, f"the activity cannot be stored: {exc}") from None
    except Exception as exc:  # the database is unreachable or stopping: the sender retries later
        # An outage is logged once per batch by the ingest; anything else here is worth its traceback.
        log.warning("inbox activity could not be stored: %s", exc or type(exc).__name__,
                    exc_info=None if database_down(exc) else exc, extra={"activity": activity.id})
        raise HTTPError(503, "the activity could not be stored right now", headers={"Retry-After": "30"}) from None
    return web.Response(status=202)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/inbox", inbox_post)
    app.router.add_post("/users/{name}/inbox", inbox_post)
