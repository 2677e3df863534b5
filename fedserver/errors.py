"""One place that turns exceptions into HTTP responses, so handlers raise and never build error JSON."""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger("fedserver.web")


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


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Map HTTPError and aiohttp's own HTTP exceptions to JSON; log and hide anything unexpected."""
    try:
        return await handler(request)
    except HTTPError as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return json_error(exc.status, reason, {k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return json_error(500, "internal server error")
