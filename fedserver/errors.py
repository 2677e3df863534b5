"""One place that turns exceptions into HTTP responses, so handlers raise and never build error JSON.

A browser (its `Accept` ranks a web page above JSON) gets an HTML error page in its
language; everyone else (API clients, ActivityPub peers, a request without `Accept`)
and every request to the client API or the OAuth token and revocation endpoints gets
JSON `{"error": message}`. Status and headers are the same either way.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .datadir import DataDirError
from .db import database_down
from .templates import PAGES, error_page, prefers_html

log = logging.getLogger("fedserver.web")

# Seconds a client is asked to wait when the database is out of reach (it restarts in a few).
DATABASE_RETRY_AFTER = 10

# Machine endpoints: JSON whatever the Accept header says.
_JSON_ONLY = ("/api/", "/oauth/token", "/oauth/revoke", "/metrics")


class HTTPError(Exception):
    """An error with a status and a message shown to the client as `{"error": message}`."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The JSON error body every API path uses."""
    return web.json_response({"error": message}, status=status, headers=headers)


def _wants_page(request: web.Request) -> bool:
    return PAGES in request.config_dict and not request.path.startswith(_JSON_ONLY) and prefers_html(request)


def error_response(request: web.Request, status: int, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The error as a page for a browser, as JSON for everyone else."""
    if _wants_page(request):
        return error_page(request, status, message, headers)
    return json_error(status, message, headers)


NUL_REFUSED = "the request holds a NUL character (U+0000), which no text here may contain"


def holds_nul(value: object) -> bool:
    """Whether a parsed value (strings, lists and objects of them, as JSON or a form gives) holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_nul(v) for v in value)
    return False


@web.middleware
async def nul_middleware(request: web.Request, handler):
    """Refuse a path or query (400) or an urlencoded form (422) holding U+0000: PostgreSQL stores no such text,
    and it would otherwise fail in a statement as a 500. (JSON and multipart bodies: fedserver.api.params.)"""
    if "\x00" in request.path or holds_nul(list(request.query.items())):
        raise HTTPError(400, NUL_REFUSED)
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        if holds_nul(list((await request.post()).items())):  # read once: handlers get aiohttp's cached form
            raise HTTPError(422, NUL_REFUSED)
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Map HTTPError and aiohttp's own HTTP exceptions to error responses; log and hide anything unexpected."""
    try:
        return await handler(request)
    except HTTPError as exc:
        return error_response(request, exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error_response(request, exc.status, reason, {k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except DataDirError as exc:  # the data directory stopped taking writes: the log line says how to fix it
        log.error("%s", exc, extra={"method": request.method, "path": request.path})
        return error_response(request, 503, "the server cannot store files right now; try again later")
    except Exception as exc:
        if database_down(exc):  # a restart or an outage: the client (a peer, an app) tries again shortly
            log.warning("database unavailable: %s", exc or type(exc).__name__,
                        extra={"method": request.method, "path": request.path})
            return error_response(request, 503, "the server cannot reach its database right now; try again shortly",
                                  {"Retry-After": str(DATABASE_RETRY_AFTER)})
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(request, 500, "internal server error")
