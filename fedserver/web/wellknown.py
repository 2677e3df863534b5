"""Discovery: WebFinger, host-meta and NodeInfo 2.0/2.1."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

from aiohttp import web

import fedserver
from activities.actor import INSTANCE_ACTOR_PATH, Actor

from ..app_keys import POOL, SETTINGS
from ..config import Settings
from ..errors import HTTPError
from ..repo import actors as actors_repo

NODEINFO_VERSIONS = ("2.0", "2.1")
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/{}"
JRD = "application/jrd+json"
_CORS = {"Access-Control-Allow-Origin": "*"}


def build_jrd(actor: Actor, domain: str) -> dict:
    """The WebFinger answer for one actor."""
    links = [{"rel": "self", "type": "application/activity+json", "href": actor.uri}]
    if actor.url:
        links.insert(0, {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": actor.url})
    aliases = [actor.uri] + ([actor.url] if actor.url and actor.url != actor.uri else [])
    return {"subject": f"acct:{actor.username}@{domain}", "aliases": aliases, "links": links}


def _username_from_resource(resource: str, settings: Settings) -> str:
    """The local name a WebFinger resource points at; HTTPError 400/404 when it cannot be ours."""
    resource = unquote(resource).strip()
    if resource.startswith(("http://", "https://")):
        return _username_from_url(resource, settings)
    account = resource[5:] if resource.lower().startswith("acct:") else resource
    account = account.lstrip("@")
    username, sep, domain = account.rpartition("@")
    if not sep or not username or not domain:
        raise HTTPError(400, "resource must be acct:name@domain or an actor URL")
    if domain.lower() != settings.instance.domain:
        raise HTTPError(404, f"{domain} is not this server's domain")
    return username


def _username_from_url(resource: str, settings: Settings) -> str:
    parts = urlsplit(resource)
    if parts.netloc.lower() != settings.instance.domain:
        raise HTTPError(404, "that URL is not on this server")
    path = parts.path.rstrip("/")
    if path == INSTANCE_ACTOR_PATH:
        return settings.hostname
    for prefix in ("/users/", "/@"):
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            return path[len(prefix):]
    raise HTTPError(404, "that URL is not an account on this server")


async def webfinger_get(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    resource = request.query.get("resource", "")
    if not resource:
        raise HTTPError(400, "the resource parameter is required")
    username = _username_from_resource(resource, settings)
    async with request.config_dict[POOL].acquire() as conn:
        instance = await actors_repo.get_instance_account(conn)
        if instance and username.lower() == instance.actor.username.lower():
            actor = instance.actor
        else:
            actor = await actors_repo.get_shown_local_actor(conn, username)
    if actor is None:
        raise HTTPError(404, f"no account named {username} here", headers=_CORS)
    if actor.deleted_at is not None:
        raise HTTPError(410, f"the account {username} was deleted", headers=_CORS)
    return web.json_response(
        build_jrd(actor, settings.instance.domain),
        content_type=JRD,
        headers={**_CORS, "Cache-Control": "max-age=259200, public", "Vary": "Accept"},
    )


async def host_meta_get(request: web.Request) -> web.Response:
    base = request.config_dict[SETTINGS].base_url
    template = f"{base}/.well-known/webfinger?resource={{uri}}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template={quoteattr(template)}/>\n'
        "</XRD>\n"
    )
    return web.Response(text=body, content_type="application/xrd+xml", headers=_CORS)


async def host_meta_json_get(request: web.Request) -> web.Response:
    base = request.config_dict[SETTINGS].base_url
    links = [{"rel": "lrdd", "template": f"{base}/.well-known/webfinger?resource={{uri}}"}]
    return web.json_response({"links": links}, headers=_CORS)


async def nodeinfo_index_get(request: web.Request) -> web.Response:
    base = request.config_dict[SETTINGS].base_url
    links = [{"rel": NODEINFO_SCHEMA.format(v), "href": f"{base}/nodeinfo/{v}"} for v in NODEINFO_VERSIONS]
    return web.json_response({"links": links}, headers=_CORS)


async def _usage(pool) -> dict:
    async with pool.acquire() as conn:
        total = await actors_repo.count_local_users(conn)
        posts = await actors_repo.count_local_posts(conn)
        month, halfyear = await actors_repo.count_active_local_users(conn)
    users = {"total": total, "activeHalfyear": halfyear, "activeMonth": month}
    return {"users": users, "localPosts": posts}


def build_nodeinfo(version: str, settings: Settings, usage: dict) -> dict:
    """A NodeInfo document of the given schema version."""
    return {
        "version": version,
        "software": {"name": "fedserver", "version": fedserver.__version__},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": settings.instance.registrations == "open",
        "usage": usage,
        "metadata": {"nodeName": settings.instance.name, "nodeDescription": settings.instance.description},
    }


async def nodeinfo_get(request: web.Request) -> web.Response:
    version = request.match_info["version"]
    if version not in NODEINFO_VERSIONS:
        raise HTTPError(404, f"NodeInfo {version} is not served; use 2.0 or 2.1")
    settings = request.config_dict[SETTINGS]
    document = build_nodeinfo(version, settings, await _usage(request.config_dict[POOL]))
    profile = f'application/json; profile="{NODEINFO_SCHEMA.format(version)}#"'
    return web.Response(
        body=json.dumps(document).encode(),
        headers={**_CORS, "Content-Type": profile, "Cache-Control": "max-age=1800"},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/webfinger", webfinger_get)
    app.router.add_get("/.well-known/host-meta", host_meta_get)
    app.router.add_get("/.well-known/host-meta.json", host_meta_json_get)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_index_get)
    app.router.add_get("/nodeinfo/{version}", nodeinfo_get)

