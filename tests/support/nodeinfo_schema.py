"""The published NodeInfo 2.0 and 2.1 JSON schemas (draft-04), transcribed.

Source: nodeinfo.diaspora.software/ns/schema/2.0 and /2.1 (repository jhass/nodeinfo,
`schemas/2.x/schema.json`). The two versions differ only in `version` and in the
optional `software.repository` and `software.homepage` of 2.1.
"""

from __future__ import annotations

PROTOCOLS = ["activitypub", "buddycloud", "dfrn", "diaspora", "libertree", "ostatus", "pumpio", "tent", "xmpp",
             "zot"]
INBOUND_SERVICES = ["atom1.0", "gnusocial", "imap", "pnut", "pop3", "pumpio", "rss2.0", "twitter"]
OUTBOUND_SERVICES = [
    "acropolis", "atom1.0", "blogger", "buddycloud", "diaspora", "dreamwidth", "drupal", "facebook", "friendica",
    "gnusocial", "google", "insanejournal", "libertree", "linkedin", "livejournal", "mediagoblin", "myspace",
    "pinterest", "pnut", "posterous", "pumpio", "redmatrix", "rss2.0", "smtp", "tent", "tumblr", "twitter",
    "wordpress", "xmpp",
]
_COUNT = {"type": "integer", "minimum": 0}


def nodeinfo_schema(version: str) -> dict:
    """The schema document for NodeInfo `version` ("2.0" or "2.1")."""
    software = {"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}, "version": {"type": "string"}}
    if version == "2.1":
        software |= {"repository": {"type": "string"}, "homepage": {"type": "string"}}
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "id": f"http://nodeinfo.diaspora.software/ns/schema/{version}#",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "software", "protocols", "services", "openRegistrations", "usage", "metadata"],
        "properties": {
            "version": {"enum": [version]},
            "software": {"type": "object", "additionalProperties": False, "required": ["name", "version"],
                         "properties": software},
            "protocols": {"type": "array", "minItems": 1, "items": {"enum": PROTOCOLS}},
            "services": {
                "type": "object", "additionalProperties": False, "required": ["inbound", "outbound"],
                "properties": {
                    "inbound": {"type": "array", "minItems": 0, "items": {"enum": INBOUND_SERVICES}},
                    "outbound": {"type": "array", "minItems": 0, "items": {"enum": OUTBOUND_SERVICES}},
                },
            },
            "openRegistrations": {"type": "boolean"},
            "usage": {
                "type": "object", "additionalProperties": False, "required": ["users"],
                "properties": {
                    "users": {"type": "object", "additionalProperties": False, "properties": {
                        "total": _COUNT, "activeHalfyear": _COUNT, "activeMonth": _COUNT}},
                    "localPosts": _COUNT,
                    "localComments": _COUNT,
                },
            },
            "metadata": {"type": "object", "minProperties": 0, "additionalProperties": True},
        },
    }
