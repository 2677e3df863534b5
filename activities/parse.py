"""Parse inbound ActivityPub JSON into small typed models, with the limits peers must respect.

JSON-LD is read as plain compacted JSON, as Mastodon does: unknown `@context` entries
and `proof` fields are tolerated and never grant authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .context import PUBLIC
from .sanitize import MAX_NAME, MAX_SUMMARY, MAX_TAGS, ContentTooLarge, sanitize_html, truncate_text
from .urls import BadId, id_host, same_origin

MAX_DEPTH = 32
MAX_RECIPIENTS = 5_000
ACTOR_TYPES = frozenset({"Person", "Organization", "Application", "Service", "Group"})
POST_TYPES = frozenset({"Note", "Article", "Question", "Page"})
_PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})


class ParseError(ValueError):
    """The document is not acceptable; the message says why (shown to the sender)."""


def check_shape(value: object, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse documents nested deeper than `max_depth` without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ParseError(f"document nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def cannot_nest_too_deep(text: bytes | str) -> bool:
    """True when the JSON text has at most MAX_DEPTH opening brackets, so no value in it can
    nest deeper (brackets inside strings only make this answer False more often)."""
    if isinstance(text, str):
        return text.count("{") + text.count("[") <= MAX_DEPTH
    return text.count(b"{") + text.count(b"[") <= MAX_DEPTH


def ref(value: object) -> str | None:
    """The id of a reference that is either a URL string or an object with `id`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


_AUDIENCE = ("to", "cc", "bto", "bcc", "audience")


def audience(doc: dict) -> list[str]:
    """All addressees (to, cc, bto, bcc, audience) as ids, bounded."""
    out: list[str] = []
    for key in _AUDIENCE:
        items = _as_list(doc.get(key))
        if len(out) + len(items) > MAX_RECIPIENTS:
            raise ParseError(f"more than {MAX_RECIPIENTS} recipients")
        out.extend(r for r in (ref(i) for i in items) if r)
    return out


def _check_audience_size(doc: dict) -> None:
    count = 0
    for key in _AUDIENCE:
        value = doc.get(key)
        if value is not None:
            count += len(value) if isinstance(value, list) else 1
    if count > MAX_RECIPIENTS:
        raise ParseError(f"more than {MAX_RECIPIENTS} recipients")


@dataclass(frozen=True)
class InboundActivity:
    """An activity as received: its id, type, actor, and its object (a reference or embedded)."""

    id: str
    type: str
    actor: str
    object_id: str | None
    object: dict | None
    raw: dict

    @property
    def object_type(self) -> str | None:
        kind = self.object.get("type") if isinstance(self.object, dict) else None
        return kind if isinstance(kind, str) else None  # a list or object would break set and dict lookups


def _required_id(doc: dict, key: str) -> str:
    value = ref(doc.get(key))
    if not value:
        raise ParseError(f"`{key}` is required")
    try:
        id_host(value)
    except BadId as exc:
        raise ParseError(f"`{key}`: {exc}") from None
    return value


MAX_FLAG_OBJECTS = 51  # the account and at most 50 posts


def parse_activity(doc: object, *, shallow: bool = False) -> InboundActivity:
    """Validate the envelope of an inbound activity.

    `shallow=True` says the caller has proved the document cannot nest deeper than
    MAX_DEPTH (see `cannot_nest_too_deep`), which skips walking it.
    """
    if not isinstance(doc, dict):
        raise ParseError("an activity must be a JSON object")
    if not shallow:
        check_shape(doc)
    kind = doc.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise ParseError("`type` must be a short string")
    activity_id = _required_id(doc, "id")
    actor = _required_id(doc, "actor")
    obj = doc.get("object")
    if isinstance(obj, list):
        # A Flag names the reported account and its posts (Mastodon sends a list); nothing else here may.
        if kind != "Flag" or not obj or len(obj) > MAX_FLAG_OBJECTS:
            raise ParseError("activities with several objects are not supported" if kind != "Flag" else
                             f"a Flag names 1 to {MAX_FLAG_OBJECTS} objects")
        obj = obj[0]
    object_id = ref(obj)
    _check_audience_size(doc)
    return InboundActivity(
        id=activity_id, type=kind, actor=actor, object_id=object_id,
        object=obj if isinstance(obj, dict) else None, raw=doc,
    )


@dataclass(frozen=True)
class RemoteActor:
    """What we keep of a remote actor document."""

    id: str
    type: str
    username: str
    domain: str
    display_name: str
    summary: str
    url: str | None
    inbox: str
    outbox: str | None
    shared_inbox: str | None
    followers: str | None
    following: str | None
    featured: str | None
    key_id: str
    public_key_pem: str
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    icon_url: str | None
    image_url: str | None


def _opt_url(value: object) -> str | None:
    url = ref(value)
    if url is None and isinstance(value, dict):
        url = ref(value.get("url")) if not isinstance(value.get("url"), list) else None
    if url is None:
        return None
    try:
        id_host(url)
    except BadId:
        return None
    return url


def _image_url(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return _opt_url(value.get("url"))
    return _opt_url(value)


def _sanitized(html: str) -> str:
    """`sanitize_html`, refusing as ParseError what it cannot take: too long, or lone surrogates
    (a JSON `\\ud800` escape decodes to one; nh3 cannot encode them)."""
    try:
        return sanitize_html(html)
    except ContentTooLarge as exc:
        raise ParseError(str(exc)) from None
    except UnicodeEncodeError:
        raise ParseError("text with unpaired surrogates is not accepted") from None


def parse_actor(doc: object) -> RemoteActor:
    """Validate a fetched actor document: type, inbox, and a key owned by the actor."""
    if not isinstance(doc, dict):
        raise ParseError("an actor must be a JSON object")
    check_shape(doc)
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in ACTOR_TYPES:  # a list or object is unhashable
        raise ParseError(f"not an actor type: {str(kind)[:40]}")
    actor_id = _required_id(doc, "id")
    inbox = _required_id(doc, "inbox")
    username = doc.get("preferredUsername")
    if not isinstance(username, str) or not username or len(username) > 255:
        raise ParseError("`preferredUsername` is required")
    key = doc.get("publicKey")
    if isinstance(key, list):
        key = next((k for k in key if isinstance(k, dict) and ref(k.get("owner")) == actor_id), None)
    if not isinstance(key, dict) or not isinstance(key.get("publicKeyPem"), str) or not ref(key):
        raise ParseError("`publicKey` with `id` and `publicKeyPem` is required")
    if ref(key.get("owner")) not in (None, actor_id):
        raise ParseError("the actor's key is owned by another actor")
    if not same_origin(ref(key), actor_id):  # a key elsewhere could be anyone's: never take it on the actor's word
        raise ParseError("the actor's key is not on the actor's own server")
    endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
    name = doc.get("name") if isinstance(doc.get("name"), str) else ""
    summary = doc.get("summary") if isinstance(doc.get("summary"), str) else ""
    return RemoteActor(
        id=actor_id, type=kind, username=username, domain=id_host(actor_id),
        display_name=truncate_text(name, MAX_NAME),
        summary=_sanitized(truncate_text(summary, MAX_SUMMARY)),
        url=_opt_url(doc.get("url")), inbox=inbox, outbox=_opt_url(doc.get("outbox")),
        shared_inbox=_opt_url(endpoints.get("sharedInbox")), followers=_opt_url(doc.get("followers")),
        following=_opt_url(doc.get("following")), featured=_opt_url(doc.get("featured")),
        key_id=ref(key), public_key_pem=key["publicKeyPem"],
        manually_approves_followers=doc.get("manuallyApprovesFollowers") is True,
        discoverable=doc.get("discoverable") is True, indexable=doc.get("indexable") is True,
        icon_url=_image_url(doc.get("icon")), image_url=_image_url(doc.get("image")),
    )


@dataclass(frozen=True)
class RemotePost:
    """A remote Note or Article, sanitized and ready to store."""

    id: str
    type: str
    attributed_to: str
    content: str
    name: str | None
    summary: str | None
    url: str | None
    in_reply_to: str | None
    visibility: str
    published: datetime
    updated: datetime | None
    mentions: tuple[str, ...]
    raw: dict


def parse_datetime(value: object) -> datetime | None:
    """An xsd:dateTime as an aware datetime, or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def visibility_of(doc: dict, followers_uri: str | None) -> str:
    """Mastodon's rule: Public in `to` is public, in `cc` unlisted; followers only is private; else direct."""
    to = {ref(v) for v in _as_list(doc.get("to"))}
    cc = {ref(v) for v in _as_list(doc.get("cc"))}
    if to & _PUBLIC_ALIASES:
        return "public"
    if cc & _PUBLIC_ALIASES:
        return "unlisted"
    if followers_uri and followers_uri in (to | cc):
        return "private"
    return "direct"


def parse_post(doc: object, *, followers_uri: str | None = None, shallow: bool = False) -> RemotePost:
    """Validate and sanitize a remote post (Note, Article, Question, Page).

    `shallow=True`: the caller has checked the nesting already (the post is the object of an
    activity `parse_activity` walked), which skips walking it again.
    """
    if not isinstance(doc, dict):
        raise ParseError("the object must be embedded as a JSON object")
    if not shallow:
        check_shape(doc)
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in POST_TYPES:  # a list or object is unhashable
        raise ParseError(f"unsupported object type: {str(kind)[:40]}")
    post_id = _required_id(doc, "id")
    author = _required_id(doc, "attributedTo")
    tags = _as_list(doc.get("tag"))
    if len(tags) > MAX_TAGS:
        raise ParseError(f"more than {MAX_TAGS} tags")
    content = doc.get("content") if isinstance(doc.get("content"), str) else ""
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    summary = doc.get("summary") if isinstance(doc.get("summary"), str) else None
    mentions = tuple(
        href for tag in tags
        if isinstance(tag, dict) and tag.get("type") == "Mention" and isinstance(href := tag.get("href"), str)
    )
    return RemotePost(
        id=post_id, type=kind, attributed_to=author,
        content=_sanitized(content),
        name=truncate_text(name, MAX_NAME) if name else None,
        summary=_sanitized(truncate_text(summary, MAX_SUMMARY)) if summary else None,
        url=_opt_url(doc.get("url")), in_reply_to=ref(doc.get("inReplyTo")),
        visibility=visibility_of(doc, followers_uri),
        published=parse_datetime(doc.get("published")) or datetime.now(timezone.utc),
        updated=parse_datetime(doc.get("updated")),
        mentions=mentions, raw=doc,
    )
