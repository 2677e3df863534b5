"""Required fields of Mastodon API entities (reference/mastodon-client-api.md §2, docs.joinmastodon.org/entities).

`check(obj, SCHEMA)` fails on a missing field or a wrong type. A type is a Python type, a nested
schema dict, or one of the names below; a trailing `?` allows null.
"""

from __future__ import annotations

import re

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ACCOUNT = {
    "id": "id", "username": str, "acct": str, "uri": str, "url": "str?", "display_name": str, "note": str,
    "avatar": "url", "avatar_static": "url", "header": "url", "header_static": "url",
    "locked": bool, "bot": bool, "group": bool, "discoverable": "bool?", "noindex": "bool?",
    "fields": list, "emojis": list, "created_at": "datetime", "last_status_at": "date?",
    "statuses_count": int, "followers_count": int, "following_count": int,
}
CREDENTIAL_ACCOUNT = {
    **ACCOUNT,
    "source": {"note": str, "fields": list, "privacy": str, "sensitive": bool, "language": "str?",
               "follow_requests_count": int},
    "role": {"id": str, "name": str, "color": str, "permissions": str, "highlighted": bool},
}
RELATIONSHIP = {
    "id": "id", "following": bool, "showing_reblogs": bool, "notifying": bool, "languages": "list?",
    "followed_by": bool, "blocking": bool, "blocked_by": bool, "muting": bool, "muting_notifications": bool,
    "requested": bool, "requested_by": bool, "domain_blocking": bool, "endorsed": bool, "note": str,
}
APPLICATION = {
    "id": "id", "name": str, "website": "str?", "scopes": list, "redirect_uri": str, "redirect_uris": list,
    "vapid_key": str,
}
REGISTERED_APPLICATION = {**APPLICATION, "client_id": str, "client_secret": str, "client_secret_expires_at": int}
TOKEN = {"access_token": str, "token_type": str, "scope": str, "created_at": int}
_STATUS_LIMITS = {"max_characters": int, "max_media_attachments": int, "characters_reserved_per_url": int}
_MEDIA_LIMITS = {"supported_mime_types": list, "image_size_limit": int, "image_matrix_limit": int,
                 "video_size_limit": int, "video_frame_rate_limit": int, "video_matrix_limit": int}
_POLL_LIMITS = {"max_options": int, "max_characters_per_option": int, "min_expiration": int, "max_expiration": int}
_ACCOUNT_LIMITS = {"max_featured_tags": int, "max_pinned_statuses": int}
INSTANCE_V1 = {
    "uri": str, "title": str, "short_description": str, "description": str, "email": str, "version": str,
    "urls": dict, "stats": {"user_count": int, "status_count": int, "domain_count": int}, "thumbnail": "str?",
    "languages": list, "registrations": bool, "approval_required": bool, "invites_enabled": bool,
    "configuration": {"accounts": _ACCOUNT_LIMITS, "statuses": _STATUS_LIMITS, "media_attachments": _MEDIA_LIMITS,
                      "polls": _POLL_LIMITS},
    "contact_account": "dict?", "rules": list,
}
INSTANCE_V2 = {
    "domain": str, "title": str, "version": str, "source_url": str, "description": str,
    "usage": {"users": {"active_month": int}}, "thumbnail": {"url": "url"}, "icon": list, "languages": list,
    "configuration": {"urls": dict, "vapid": {"public_key": str}, "accounts": _ACCOUNT_LIMITS,
                      "statuses": _STATUS_LIMITS, "media_attachments": {**_MEDIA_LIMITS, "description_limit": int},
                      "polls": _POLL_LIMITS, "translation": {"enabled": bool}},
    "registrations": {"enabled": bool, "approval_required": bool, "message": "str?"},
    "api_versions": {"mastodon": int}, "contact": {"email": str, "account": "dict?"}, "rules": list,
}
PREFERENCES = {
    "posting:default:visibility": str, "posting:default:sensitive": bool, "posting:default:language": "str?",
    "reading:expand:media": str, "reading:expand:spoilers": bool,
}
MARKER = {"last_read_id": str, "version": int, "updated_at": "datetime"}
OAUTH_METADATA = {
    "issuer": "url", "authorization_endpoint": "url", "token_endpoint": "url", "revocation_endpoint": "url",
    "app_registration_endpoint": "url", "scopes_supported": list, "response_types_supported": list,
    "grant_types_supported": list, "code_challenge_methods_supported": list,
    "token_endpoint_auth_methods_supported": list,
}

_DIMENSIONS = {"width": int, "height": int, "size": str, "aspect": float}
# A local upload's MediaAttachment: with both sizes and the focus in `meta`.
UPLOADED_MEDIA = {
    "id": "id", "type": str, "url": "url", "preview_url": "url", "remote_url": "str?", "description": "str?",
    "blurhash": str, "meta": {"original": _DIMENSIONS, "small": _DIMENSIONS, "focus": {"x": float, "y": float}},
}
SEARCH_RESULTS = {"accounts": list, "statuses": list, "hashtags": list}
# Statuses, notifications and their parts (docs.joinmastodon.org/entities; Tusky's `entity/Status.kt`).
MENTION = {"id": "id", "username": str, "url": "url", "acct": str}
TAG = {"name": str, "url": "url"}
TAG_ENTITY = {**TAG, "history": list}
MEDIA_ATTACHMENT = {"id": "id", "type": str, "url": "url", "preview_url": "str?", "remote_url": "str?",
                    "meta": "dict?", "description": "str?", "blurhash": "str?"}
STATUS = {
    "id": "id", "uri": str, "url": "str?", "created_at": "datetime", "account": ACCOUNT, "content": str,
    "visibility": str, "sensitive": bool, "spoiler_text": str, "media_attachments": list, "application": "dict?",
    "mentions": list, "tags": list, "emojis": list, "reblogs_count": int, "favourites_count": int,
    "replies_count": int, "reblog": "dict?", "in_reply_to_id": "id?", "in_reply_to_account_id": "id?",
    "language": "str?", "text": "str?", "edited_at": "datetime?", "card": "dict?", "poll": "dict?",
    "filtered": list,
}
VIEWER_STATUS = {**STATUS, "favourited": bool, "reblogged": bool, "muted": bool, "bookmarked": bool, "pinned": bool}
NOTIFICATION = {"id": "id", "type": str, "created_at": "datetime", "account": ACCOUNT}
CONTEXT = {"ancestors": list, "descendants": list}
STATUS_SOURCE = {"id": "id", "text": str, "spoiler_text": str}
VISIBILITIES = ("public", "unlisted", "private", "direct")
NOTIFICATION_TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update")


def check_status(body, *, signed_in: bool = True) -> None:
    """A Status with every required field, its parts included (and the boosted Status of a boost)."""
    check(body, VIEWER_STATUS if signed_in else STATUS)
    assert body["visibility"] in VISIBILITIES
    for item in body["mentions"]:
        check(item, MENTION)
    for item in body["tags"]:
        check(item, TAG)
    for item in body["media_attachments"]:
        check(item, MEDIA_ATTACHMENT)
    if body["reblog"] is not None:
        check_status(body["reblog"], signed_in=signed_in)
    if not signed_in:
        assert "favourited" not in body


def check_notification(body) -> None:
    """A Notification, with its Status for the types about a post."""
    check(body, NOTIFICATION)
    assert body["type"] in NOTIFICATION_TYPES
    if body["type"] in ("mention", "status", "reblog", "favourite", "poll", "update"):
        check_status(body["status"])


def _type_ok(value, kind) -> bool:
    if isinstance(kind, str) and kind.endswith("?"):
        return value is None or _type_ok(value, kind[:-1])
    if kind == "id":
        return isinstance(value, str) and value.isdigit()
    if kind == "url":
        return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 10
    if kind == "datetime":
        return isinstance(value, str) and bool(DATETIME.match(value))
    if kind == "date":
        return isinstance(value, str) and bool(DATE.match(value))
    if kind in ("str", "bool", "list", "dict"):
        kind = {"str": str, "bool": bool, "list": list, "dict": dict}[kind]
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def problems(obj, schema: dict, path: str = "") -> list[str]:
    """Every missing or mistyped field, as readable strings."""
    if not isinstance(obj, dict):
        return [f"{path or 'entity'} is {type(obj).__name__}, not an object"]
    found = []
    for name, kind in schema.items():
        where = f"{path}.{name}" if path else name
        if name not in obj:
            found.append(f"{where} is missing")
        elif isinstance(kind, dict):
            found += problems(obj[name], kind, where)
        elif not _type_ok(obj[name], kind):
            found.append(f"{where}={obj[name]!r} is not {getattr(kind, '__name__', kind)}")
    return found


def check(obj, schema: dict) -> None:
    """Assert that `obj` carries every required field with the right type."""
    found = problems(obj, schema)
    assert not found, "; ".join(found)
