"""ActivityPub documents at their ids: content negotiation between ActivityPub clients and browsers, and the
JSON response for them (shared by the public documents and the storefront)."""

from __future__ import annotations

import json

from aiohttp import web

from .templates.negotiation import accept_entries

ACTIVITY_JSON = "application/activity+json"
LD_JSON_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
_AP_TYPES = ("application/activity+json", "application/ld+json")


def _accept_entries(request: web.Request) -> list[tuple[str, float]]:
    return accept_entries(request.headers.get("Accept", ""))


def wants_activitypub(request: web.Request) -> bool:
    """True when the client asks for an ActivityPub document (or plain JSON) rather than a page."""
    best_ap = max((q for media, q in _accept_entries(request) if media in _AP_TYPES or media == "application/json"),
                  default=0.0)
    best_html = max((q for media, q in _accept_entries(request) if media in ("text/html", "application/xhtml+xml")),
                    default=0.0)
    return best_ap > 0 and best_ap >= best_html


def activity_response(request: web.Request, document: dict, *, status: int = 200,
                      cache_seconds: int = 60) -> web.Response:
    """Serve a document as `application/activity+json`, or as JSON-LD when that is what was asked for."""
    entries = dict(_accept_entries(request))
    ld_only = entries.get("application/ld+json", 0) > 0 and entries.get(ACTIVITY_JSON, 0) == 0
    response = web.Response(
        body=json.dumps(document, ensure_ascii=False).encode(),
        status=status,
        headers={
            "Content-Type": (LD_JSON_PROFILE if ld_only else ACTIVITY_JSON) + "; charset=utf-8",
            "Vary": "Accept",
            "Cache-Control": f"max-age={cache_seconds}, public" if status == 200 else "no-store",
            "Access-Control-Allow-Origin": "*",
        },
    )
    return response
