"""Local posts and activities at their ids: JSON for ActivityPub clients, a simple page for browsers.

Public and unlisted items are readable by anyone. Private (followers-only) and direct items
are served only to a request signed by a known actor who is addressed (or, for private
items, follows the author); everyone else gets 404, so their existence is not revealed.
"""

from __future__ import annotations

from aiohttp import web

from activities.actor import build_tombstone
from activities.parse import audience

from ..app_keys import POOL, SETTINGS
from ..auth.signed import signed_reader
from ..documents import activity_response, wants_activitypub
from ..errors import HTTPError
from ..repo import actors as actors_repo
from ..repo import outgoing as outgoing_repo
from ..repo import published as published_repo
from ..repo import statuses as statuses_repo
from ..repo.pages import PagePost
from ..templates import cached_page, render_page
from ..templates.render import excerpt

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


@cached_page
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
        response = await _status_page(request, post)
    if headers_private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


async def _status_page(request: web.Request, post: statuses_repo.StoredObject) -> web.Response:
    """A post or an article as a page, with its author, images and link preview."""
    doc = post.data
    async with request.config_dict[POOL].acquire() as conn:
        author = await actors_repo.get_actor_by_id(conn, post.actor_id)
    if author is None:
        raise HTTPError(404, "no such post")
    shown = PagePost(id=post.id, uri=post.uri, object_type=post.object_type, author_id=author.id,
                     name=_text(doc.get("name")), summary=_text(doc.get("summary")),
                     content=_text(doc.get("content")) or "", data=doc, published_at=post.published_at,
                     updated_at=None)
    name = author.display_name or author.username
    if shown.name:
        title = shown.name
    else:  # a short post: who said it and how it begins, as Mastodon titles a post page
        title = f"{name}: {excerpt(shown.content, 60)}" if shown.content else name
    return render_page(request, "status.html", post=shown, author=author, title=title)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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
