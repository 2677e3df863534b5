"""Local posts and activities at their ids: JSON for ActivityPub clients, a simple page for browsers.

Public and unlisted items are readable by anyone. Private (followers-only) and direct items
are served only to a request signed by a known actor who is addressed (or, for private
items, follows the author); everyone else gets 404, so their existence is not revealed.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from activities.actor import build_tombstone
from activities.parse import audience

from ..app_keys import POOL, SETTINGS
from ..auth.signed import signed_reader
from ..documents import activity_response, wants_activitypub
from ..errors import HTTPError
from ..repo import outgoing as outgoing_repo
from ..repo import published as published_repo
from ..repo import statuses as statuses_repo
from ..templates import render_page

_CONTEXT_FREE = ("public", "unlisted")


async def _may_read(request: web.Request, visibility: str, document: dict, author_id: int) -> bool:
    """Anyone for public/unlisted; addressees (and followers, for private) when signed."""
    if visibility in _CONTEXT_FREE:
        return True
    reader = await signed_reader(request)
    if reader is None:
        return False
    if reader in audience(document):
        return True
    if visibility != "private":
        return False
    async with request.config_dict[POOL].acquire() as conn:
        return await outgoing_repo.is_accepted_follower(conn, reader, author_id)


def _own_uri(request: web.Request, *parts: str) -> str:
    settings = request.config_dict[SETTINGS]
    return f"{settings.base_url}/users/{request.match_info['name']}/" + "/".join(parts)


async def status_get(request: web.Request) -> web.Response:
    """`/users/{name}/statuses/{id}`: a local post, 410 with a Tombstone once deleted."""
    uri = _own_uri(request, "statuses", request.match_info["id"])
    async with request.config_dict[POOL].acquire() as conn:
        post = await statuses_repo.get_object_by_uri(conn, uri)
    if post is None or not post.is_local or post.actor_id is None:
        raise HTTPError(404, "no such post")
    if post.deleted_at is not None:
        return activity_response(request, build_tombstone(uri, post.object_type, post.deleted_at), status=410)
    if not await _may_read(request, post.visibility, post.data, post.actor_id):
        raise HTTPError(404, "no such post")
    headers_private = post.visibility not in _CONTEXT_FREE
    if wants_activitypub(request):
        response = activity_response(request, post.data, cache_seconds=0 if headers_private else 60)
    else:
        response = _status_page(request, post)
    if headers_private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _status_page(request: web.Request, post: statuses_repo.StoredObject) -> web.Response:
    """A simple HTML view of a post."""
    doc = post.data
    return render_page(request, "status.html", uri=post.uri, title=doc.get("name") or post.author_uri or "",
                       summary=doc.get("summary") or "", content=doc.get("content") or "",
                       author_uri=post.author_uri or "", published=_published(doc))


def _published(doc: dict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(doc.get("published") or "")
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


async def activity_get(request: web.Request) -> web.Response:
    """`/users/{name}/activities/{kind}/{id}`: an activity a local actor published."""
    info = request.match_info
    uri = _own_uri(request, "activities", info["kind"], info["id"])
    async with request.config_dict[POOL].acquire() as conn:
        activity = await published_repo.get_activity_by_uri(conn, uri)
        post = (await statuses_repo.get_object_by_uri(conn, activity.object_uri)
                if activity and activity.activity_type == "Create" and activity.object_uri else None)
    if activity is None or not await _may_read(request, activity.visibility, activity.data, activity.actor_id):
        raise HTTPError(404, "no such activity")
    if post is not None and post.deleted_at is not None:
        return activity_response(request, build_tombstone(uri, "Create", post.deleted_at), status=410)
    response = activity_response(request, activity.data)
    if activity.visibility not in _CONTEXT_FREE:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/users/{name}/statuses/{id:[0-9]{1,20}}", status_get)
    app.router.add_get("/users/{name}/activities/{kind:[a-z]{1,20}}/{id:[0-9]{1,20}}", activity_get)
