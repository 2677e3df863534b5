"""Serving uploaded media at /media/<name>: only names we generated, only with an image Content-Type.

Checklist 14 and 39 (CVE-2024-25623 class): whatever bytes a client sent, what comes back
from our origin is a re-encoded image labelled with its image type, `nosniff`, inline, and
sandboxed by CSP, so it can never be taken for an ActivityPub document or an HTML page.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..app_keys import MEDIA_SLOTS, SETTINGS
from ..errors import HTTPError
from ..media import storage
from ..media.service import MEDIA_PATH, PROCESSING_SLOTS

NOT_FOUND = "Record not found"
_YEAR = 365 * 24 * 3600


def media_headers(name: str) -> dict[str, str]:
    """What every media answer carries: its image type and the headers that keep browsers from guessing."""
    return {
        "Content-Type": storage.media_type_of(name),
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": f"public, max-age={_YEAR}, immutable",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


async def media_file_get(request: web.Request) -> web.StreamResponse:
    """One stored file, or a JSON 404 for any name we did not generate."""
    name = request.match_info["name"]
    directory = storage.media_dir(request.config_dict[SETTINGS].storage.data_dir)
    path = storage.path_for(directory, name)
    if path is None or not path.is_file():
        raise HTTPError(404, NOT_FOUND)
    return web.FileResponse(path, headers=media_headers(name))


def setup(app: web.Application) -> None:
    """The /media route and the per-process limit on concurrent image processing."""
    app[MEDIA_SLOTS] = asyncio.Semaphore(PROCESSING_SLOTS)
    app.router.add_get(f"{MEDIA_PATH}/{{name}}", media_file_get)
