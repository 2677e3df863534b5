"""Reading a new post or an edit from a request (JSON, form or multipart), with Mastodon's limits.

Text length counts as Mastodon counts it: a URL is `characters_reserved_per_url` long whatever
its length, and `@name@domain` counts as `@name`; the content warning counts too.
"""

from __future__ import annotations

import re

from activities.build import VISIBILITIES
from activities.text import MENTION_RE

from ..errors import HTTPError
from ..federation.posting import PostOptions
from .limits import CHARS_PER_URL, MAX_MEDIA, MAX_STATUS_CHARS
from .params import Params
from .status_service import StatusDraft
from .wire import parse_id

_URL = re.compile(r"https?://[^\s<>\"']+")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_IDEMPOTENCY_KEY = 200
_UNSUPPORTED = {"poll": "polls are not supported yet"}  # `scheduled_at`: api/scheduled.py


def count_characters(text: str) -> int:
    """Length of a post as Mastodon measures it."""
    text = _URL.sub("x" * CHARS_PER_URL, text)
    return len(MENTION_RE.sub(lambda m: "@" + m.group(1), text))


def _media_ids(params: Params) -> tuple[int, ...]:
    raw = params.strings("media_ids", max_items=MAX_MEDIA + 16)
    if len(raw) > MAX_MEDIA:
        raise HTTPError(422, f"Validation failed: a post can have at most {MAX_MEDIA} media attachments")
    try:
        return tuple(dict.fromkeys(parse_id(value, "media_ids[]") or 0 for value in raw if value != ""))
    except HTTPError as exc:
        raise HTTPError(422, f"Validation failed: {exc.message}") from None


def _language(params: Params) -> str | None:
    language = params.string("language", max_len=20)
    if not language:
        return None
    language = language.strip().lower()
    if not _LANGUAGE.match(language):
        raise HTTPError(422, "Validation failed: language must be an ISO 639 code such as ko or en")
    return language


def _visibility(params: Params) -> str | None:
    visibility = params.string("visibility", max_len=20)
    if visibility in (None, ""):
        return None
    if visibility not in VISIBILITIES:
        raise HTTPError(422, f"Validation failed: visibility must be one of {', '.join(VISIBILITIES)}")
    return visibility


def idempotency_key(headers) -> str | None:
    """The `Idempotency-Key` header, if sent (422 when absurdly long)."""
    key = (headers.get("Idempotency-Key") or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise HTTPError(422, f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
    return key or None


def parse_draft(params: Params, *, key: str | None, app_id: int | None, editing: bool = False) -> StatusDraft:
    """A post's parameters, validated before anything is written (422 otherwise)."""
    for name, message in _UNSUPPORTED.items():
        if params.raw(name) not in (None, "", {}):
            raise HTTPError(422, f"Validation failed: {message}")
    text = params.string("status", max_len=MAX_STATUS_CHARS * 20) or ""
    spoiler = params.string("spoiler_text", max_len=MAX_STATUS_CHARS * 20) or ""
    media_ids = () if editing else _media_ids(params)
    if not text.strip() and not media_ids:
        raise HTTPError(422, "Validation failed: Text can't be blank")
    if count_characters(text) + len(spoiler) > MAX_STATUS_CHARS:
        raise HTTPError(422, f"Validation failed: Text character limit of {MAX_STATUS_CHARS} exceeded")
    reply = params.string("in_reply_to_id", max_len=40)
    options = PostOptions(spoiler_text=spoiler.strip(), sensitive=bool(params.boolean("sensitive")),
                          language=_language(params), media_ids=media_ids, idempotency_key=key, app_id=app_id)
    return StatusDraft(text=text, visibility=None if editing else _visibility(params),
                       in_reply_to_id=None if editing else _reply_id(reply), options=options)


def _reply_id(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return parse_id(raw, "in_reply_to_id")
    except HTTPError:
        raise HTTPError(404, "Record not found") from None
