"""Mastodon API entities built from what the repositories return. Pure: models in, JSON-ready dicts out.

Field lists follow docs.joinmastodon.org/entities (see `reference/mastodon-client-api.md` §2.5);
ids are strings, datetimes have three digits of milliseconds.
"""

from __future__ import annotations

import hashlib

from activities.actor import Actor
from activities.sanitize import html_to_text

from ..config import Settings
from ..repo.api_accounts import AccountStats, RelationshipRow
from ..repo.api_settings import Marker, Preferences
from ..repo.moderation import DomainAction, ReportRow
from ..repo.oauth import OAuthApp
from . import limits
from .wire import api_date, api_datetime, api_midnight

DEFAULT_AVATAR_PATH = "/avatars/original/missing.png"
DEFAULT_HEADER_PATH = "/headers/original/missing.png"
_BOT_TYPES = ("Service", "Application")


def account(actor: Actor, stats: AccountStats, settings: Settings) -> dict:
    """An Account: every field Mastodon documents as required, plus the newer optional ones."""
    avatar = actor.icon_url or f"{settings.base_url}{DEFAULT_AVATAR_PATH}"
    header = actor.image_url or f"{settings.base_url}{DEFAULT_HEADER_PATH}"
    return {
        "id": str(actor.id),
        "username": actor.username,
        "acct": actor.username if actor.is_local else f"{actor.username}@{actor.domain}",
        "url": actor.url or actor.uri,
        "uri": actor.uri,
        "display_name": actor.display_name,
        "note": actor.summary,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "locked": actor.manually_approves_followers,
        "fields": [],
        "emojis": [],
        "bot": actor.actor_type in _BOT_TYPES,
        "group": actor.actor_type == "Group",
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
        "noindex": not actor.indexable,
        "hide_collections": False,
        "memorial": False,
        "roles": [],
        "created_at": api_midnight(actor.created_at),
        "last_status_at": api_date(stats.last_status_at) if stats.last_status_at else None,
        "statuses_count": stats.statuses_count,
        "followers_count": stats.followers_count,
        "following_count": stats.following_count,
    }


def role(role_name: str) -> dict:
    """The Role of a local account (CredentialAccount.role)."""
    admin = role_name == "admin"
    return {"id": "3" if admin else "-99", "name": "Admin" if admin else "", "color": "",
            "permissions": "1" if admin else "0", "highlighted": admin}


def credential_account(actor: Actor, stats: AccountStats, settings: Settings, *, preferences: Preferences,
                       follow_requests: int, role_name: str) -> dict:
    """The caller's own Account with `source` (what the profile editor shows) and `role`."""
    body = account(actor, stats, settings)
    body["source"] = {
        "note": html_to_text(actor.summary) if actor.summary else "",
        "fields": [],
        "privacy": preferences.posting_visibility,
        "sensitive": preferences.posting_sensitive,
        "language": preferences.posting_language or "",
        "follow_requests_count": follow_requests,
        "hide_collections": False,
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
    }
    body["role"] = role(role_name)
    return body


def relationship(target_id: int, row: RelationshipRow) -> dict:
    """A Relationship between the caller and one account."""
    return {
        "id": str(target_id),
        "following": row.following == "accepted",
        "showing_reblogs": row.following == "accepted",
        "notifying": False,
        "languages": None,
        "followed_by": row.followed_by == "accepted",
        "blocking": row.blocking,
        "blocked_by": row.blocked_by,
        "muting": row.muting,
        "muting_notifications": row.muting_notifications,
        "requested": row.following == "pending",
        "requested_by": row.followed_by == "pending",
        "domain_blocking": row.domain_blocking,
        "endorsed": False,
        "note": "",
    }


def domain_block(action: DomainAction) -> dict:
    """A DomainBlock of the instance: the domain, its SHA-256 digest, `silence` or `suspend`, and the reason."""
    return {"domain": action.domain, "digest": hashlib.sha256(action.domain.encode()).hexdigest(),
            "severity": action.severity, "comment": action.public_comment}


def report(row: ReportRow, target_account: dict) -> dict:
    """A Report, as its reporter sees it."""
    return {
        "id": str(row.id),
        "action_taken": row.resolved_at is not None,
        "action_taken_at": api_datetime(row.resolved_at) if row.resolved_at else None,
        "category": row.category,
        "comment": row.comment,
        "forwarded": row.forwarded,
        "created_at": api_datetime(row.created_at),
        "status_ids": [str(i) for i in row.status_ids] or None,
        "rule_ids": [str(i) for i in row.rule_ids] or None,
        "target_account": target_account,
    }


def application(app: OAuthApp, secret: str | None) -> dict:
    """An Application; the secret only right after registration."""
    body = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": list(app.scopes),
        "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": list(app.redirect_uris),
        "vapid_key": "",
    }
    if secret is not None:
        body.update(client_id=app.client_id, client_secret=secret, client_secret_expires_at=0)
    return body


def preferences(prefs: Preferences) -> dict:
    """GET /api/v1/preferences."""
    return {
        "posting:default:visibility": prefs.posting_visibility,
        "posting:default:sensitive": prefs.posting_sensitive,
        "posting:default:language": prefs.posting_language,
        "reading:expand:media": prefs.expand_media,
        "reading:expand:spoilers": prefs.expand_spoilers,
    }


def marker(item: Marker) -> dict:
    """One Marker."""
    return {"last_read_id": item.last_read_id, "version": item.version, "updated_at": api_datetime(item.updated_at)}


def _configuration_v1() -> dict:
    return {
        "accounts": {"max_featured_tags": limits.MAX_FEATURED_TAGS, "max_pinned_statuses": limits.MAX_PINNED},
        "statuses": {"max_characters": limits.MAX_STATUS_CHARS, "max_media_attachments": limits.MAX_MEDIA,
                     "characters_reserved_per_url": limits.CHARS_PER_URL},
        "media_attachments": {
            "supported_mime_types": list(limits.MEDIA_TYPES), "description_limit": limits.MAX_MEDIA_DESCRIPTION,
            "image_size_limit": limits.IMAGE_SIZE_LIMIT, "image_matrix_limit": limits.IMAGE_MATRIX_LIMIT,
            "video_size_limit": 0, "video_frame_rate_limit": 0, "video_matrix_limit": 0,
        },
        "polls": {"max_options": limits.POLL_OPTIONS, "max_characters_per_option": limits.POLL_OPTION_CHARS,
                  "min_expiration": limits.POLL_MIN_SECONDS, "max_expiration": limits.POLL_MAX_SECONDS},
    }


def version_string() -> str:
    """A version Mastodon.py parses as Mastodon 4.3.0 (text before the first space), naming us after it."""
    import fedserver

    return f"{limits.MASTODON_COMPAT} (compatible; fedserver {fedserver.__version__})"


def streaming_url(settings: Settings) -> str:
    """Where the streaming API is (clients add /api/v1/streaming): wss:// on an https instance, as Mastodon."""
    return f"{'wss' if settings.instance.scheme == 'https' else 'ws'}://{settings.instance.domain}"


def instance_v1(settings: Settings, *, users: int, statuses: int, domains: int) -> dict:
    """GET /api/v1/instance. Clients open a stream only when `urls.streaming_api` is set."""
    inst = settings.instance
    return {
        "uri": inst.domain,
        "title": inst.name,
        "short_description": inst.description,
        "description": inst.description,
        "email": "",
        "version": version_string(),
        "urls": {"streaming_api": streaming_url(settings)},
        "stats": {"user_count": users, "status_count": statuses, "domain_count": domains},
        "thumbnail": f"{settings.base_url}{DEFAULT_HEADER_PATH}",
        "languages": list(inst.languages),
        "registrations": inst.registrations != "closed",
        "approval_required": inst.registrations == "approval",
        "invites_enabled": False,
        "configuration": _configuration_v1(),
        "contact_account": None,
        "rules": rules(settings),
    }


def rules(settings: Settings) -> list[dict]:
    """The server's rules as Mastodon's Rule entities (ids are their positions, from 1)."""
    return [{"id": str(n), "text": text, "hint": ""} for n, text in enumerate(settings.instance.rules, start=1)]


def instance_v2(settings: Settings, *, active_month: int) -> dict:
    """GET /api/v2/instance, with `api_versions` (Mastodon.py warns without it from 4.3 on)."""
    inst, base = settings.instance, settings.base_url
    configuration = {
        "urls": {"about": f"{base}/about", "privacy_policy": None, "terms_of_service": None,
                 "streaming": streaming_url(settings)},
        "vapid": {"public_key": ""},
        "translation": {"enabled": False},
        "limited_federation": False,
        **_configuration_v1(),
    }
    return {
        "domain": inst.domain,
        "title": inst.name,
        "version": version_string(),
        "source_url": base,  # no public repository yet: the instance itself
        "description": inst.description,
        "usage": {"users": {"active_month": active_month}},
        "thumbnail": {"url": f"{base}{DEFAULT_HEADER_PATH}"},
        "icon": [],
        "languages": list(inst.languages),
        "configuration": configuration,
        "registrations": {"enabled": inst.registrations != "closed",
                          "approval_required": inst.registrations == "approval", "message": None, "url": None},
        "api_versions": {"mastodon": limits.MASTODON_API_VERSION},
        "contact": {"email": "", "account": None},
        "rules": rules(settings),
    }
