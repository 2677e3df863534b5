"""Media endpoints: POST /api/v2/media and /api/v1/media (upload), GET and PUT /api/v1/media/:id.

The upload body is streamed part by part with its own cap (`[media] max_image_bytes`), not
buffered under the server's 1 MiB `client_max_size`. Only multipart/form-data carries a
file; a JSON body is refused with 422 (checklist 14). Processing is synchronous, so the
answer is 200 with `url` set (clients that poll for 202 never need to).
"""

from __future__ import annotations

from aiohttp import web

from ..app_keys import MEDIA_SLOTS, POOL, SETTINGS
from ..errors import HTTPError
from ..media.entity import MAX_DESCRIPTION, media_attachment
from ..media.service import (
    MediaRefused,
    Upload,
    describe_media,
    get_media,
    parse_focus,
    upload_media,
)
from ..multipart import read_form
from .auth import require_scopes, require_user
from .params import body_params
from .wire import id_or_none

NOT_FOUND = "Record not found"
_TEXT_FIELDS = ("description", "focus")
_FILE_FIELDS = ("file", "thumbnail")


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """The upload a client sent as multipart/form-data; 422 for anything else, 400 for a broken body."""
    if request.content_type != "multipart/form-data":
        raise HTTPError(422, "upload the image as multipart/form-data in a field named file")
    texts, files = await read_form(request, text_fields=_TEXT_FIELDS, file_fields=_FILE_FIELDS, max_file_bytes=max_bytes)
    if "file" not in files or not files["file"][0]:
        raise HTTPError(422, "file is required (an image: JPEG, PNG, GIF or WebP)")
    data, filename = files["file"]
    thumbnail, thumbnail_name = files.get("thumbnail", (None, None))
    description = texts.get("description", request.query.get("description"))
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise HTTPError(422, f"description is too long (maximum is {MAX_DESCRIPTION} characters)")
    return Upload(data=data, filename=filename, thumbnail=thumbnail or None, thumbnail_filename=thumbnail_name,
                  description=description, focus=_focus(texts.get("focus", request.query.get("focus"))))


def _focus(raw: str | None) -> tuple[float, float] | None:
    try:
        return parse_focus(raw)
    except MediaRefused as exc:
        raise HTTPError(exc.status, exc.message) from None


@require_scopes("write:media")
async def media_post(request: web.Request) -> web.Response:
    """Upload an image (v2 and the v1 Mastodon.py uses for old servers); 200 with the MediaAttachment."""
    caller = require_user(request)
    settings = request.config_dict[SETTINGS]
    upload = await read_upload(request, settings.media.max_image_bytes)
    try:
        stored = await upload_media(request.config_dict[POOL], settings, request.config_dict[MEDIA_SLOTS],
                                    caller.account_id, upload)
    except MediaRefused as exc:
        raise HTTPError(exc.status, exc.message) from None
    return web.json_response(media_attachment(stored))


@require_scopes("write:media")
async def media_get(request: web.Request) -> web.Response:
    """One's own upload not yet attached to a status; 404 for anything else, as Mastodon."""
    caller = require_user(request)
    media_id = id_or_none(request.match_info["id"])
    stored = await get_media(request.config_dict[POOL], caller.account_id, media_id) if media_id else None
    if stored is None:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(media_attachment(stored))


@require_scopes("write:media")
async def media_put(request: web.Request) -> web.Response:
    """Change the description and/or focus of one's own unattached upload."""
    caller = require_user(request)
    media_id = id_or_none(request.match_info["id"])
    params = await body_params(request)
    if "thumbnail" in params:
        raise HTTPError(422, "the thumbnail cannot be changed after the upload")
    description = params.string("description", max_len=MAX_DESCRIPTION)
    focus = _focus(params.string("focus", max_len=64))
    try:
        stored = await describe_media(request.config_dict[POOL], caller.account_id, media_id or 0,
                                      description=description, set_description="description" in params,
                                      focus=focus) if media_id else None
    except MediaRefused as exc:
        raise HTTPError(exc.status, exc.message) from None
    if stored is None:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(media_attachment(stored))


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_post("/v2/media", media_post)
    api.router.add_post("/v1/media", media_post)
    api.router.add_get(r"/v1/media/{id}", media_get)
    api.router.add_put(r"/v1/media/{id}", media_put)
